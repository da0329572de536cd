/* headroom influence: AttentionInfluence (hr_influence_run) — each
 * document's loss with and without masked heads — written as JSONL that a
 * later run with --resume continues. */
#include "commands.h"
#include "common.h"
#include "heads_mask.h"

#include "headroom/evaluate.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const cli_opt k_opts[] = {
    {"text", 'f', "FILE", "the documents, separated by blank lines (required)"},
    {"split", 0, "MARKER", "documents are separated by lines that are exactly MARKER instead"},
    {"out", 'o', "FILE.jsonl", "output: a header line, then one line per document (required)"},
    {"resume", 0, NULL, "continue an --out file an earlier, interrupted run wrote"},
    {"ctx", 'c', "N", "tokens per document incl. BOS, longer ones are cut (default: the model's context)"},
    {"max-docs", 0, "N", "stop after N documents (default: all)"},
    CLI_HEAD_MASK_OPTIONS,
    CLI_TOKENIZER_OPTION,
    CLI_THREADS_OPTION,
    CLI_FORCE_OPTION,
};

static const cli_spec k_spec = {
    .name = "influence",
    .usage = "[MODEL] --text FILE --mask-heads L.H,... --out FILE.jsonl [--resume] [--max-docs N]",
    .summary = "AttentionInfluence (Hua et al. 2025): for every document of the text, the mean NLL of its tokens\n"
               "with the model as it is and with the given heads masked (e.g. the retrieval heads of\n"
               "'headroom heads --needles natural'), and influence = (masked - base) / base: how much the\n"
               "document needs those heads. Results are written as they come (the file is rewritten\n"
               "atomically every 16 documents); --resume continues after the last complete line of an\n"
               "earlier run with the same model, text, heads and options.",
    .opts = k_opts,
    .n_opts = sizeof k_opts / sizeof k_opts[0],
    .example = "  headroom influence -f ../shared/data/text/tinystories_val.txt --mask-heads 4.0,4.1,4.2,4.3 \\\n"
               "      --max-docs 200 -o influence.jsonl",
    .max_positional = 1,
};

enum { FLUSH_EVERY = 16 };

typedef struct {
    const char *out;
    char *buf; /* the file: header and every line so far */
    size_t len, cap;
    int since_flush, n;
    double sum;
    bool failed;
} writer;

static int flush(writer *w) {
    if (!w->buf) return CLI_OK;
    w->since_flush = 0;
    return cli_write_file(w->out, w->buf);
}

static bool append(writer *w, const char *line) {
    size_t n = strlen(line);
    if (w->len + n + 2 > w->cap) {
        size_t cap = (w->len + n + 2) * 2;
        char *nb = realloc(w->buf, cap);
        if (!nb) return false;
        w->buf = nb, w->cap = cap;
    }
    memcpy(w->buf + w->len, line, n);
    w->len += n;
    w->buf[w->len++] = '\n';
    w->buf[w->len] = 0;
    return true;
}

static int on_doc(const hr_influence_doc *d, void *ud) {
    writer *w = ud;
    char *line = NULL;
    if (hr_influence_doc_json(d, &line) != HR_OK || !append(w, line)) w->failed = true;
    hr_free(line);
    w->n++;
    w->sum += d->influence;
    if (!w->failed && ++w->since_flush == FLUSH_EVERY && flush(w) != CLI_OK) w->failed = true;
    return w->failed;
}

static int progress_tty(int64_t done, int64_t total, void *ud) {
    (void)ud;
    fprintf(stderr, "\rinfluence: document %lld of %lld", (long long)done, (long long)total);
    if (done >= total) fputc('\n', stderr);
    fflush(stderr);
    return 0;
}

typedef struct {
    hr_model *model;
    hr_tokenizer *tok;
    hr_head_mask *mask;
    int32_t *calib;
    size_t n_calib;
    char *text;
    char model_path[PATH_MAX + 64];
} influence_state;

static int setup(const cli_args *a, hr_influence_params *p, influence_state *s) {
    const char *text_path = cli_value(&k_spec, a, "text"), *out = cli_value(&k_spec, a, "out");
    long ctx = 0, max_docs = 0, threads = 0;
    if (cli_get_int(&k_spec, a, "ctx", 2, INT_MAX, &ctx) || cli_get_int(&k_spec, a, "max-docs", 1, INT_MAX, &max_docs) ||
        cli_get_int(&k_spec, a, "threads", 0, 4096, &threads))
        return CLI_FAIL;
    if (!text_path || !out) return cli_error("--text FILE and --out FILE.jsonl are required (see 'headroom influence --help')");
    p->split = cli_value(&k_spec, a, "split");
    p->max_tokens = (int)ctx, p->max_docs = (int)max_docs, p->n_threads = (int)threads;
    bool resume = cli_value(&k_spec, a, "resume") != NULL;
    const char *inputs[] = {text_path, cli_value(&k_spec, a, "gates"), cli_value(&k_spec, a, "calib"), NULL};
    if (cli_resolve_model(a, s->model_path, sizeof s->model_path) ||
        cli_check_output(out, HR_OUT_FILE, "{\"format\":\"headroom.influence\"", resume || cli_value(&k_spec, a, "force"),
                         s->model_path, cli_value(&k_spec, a, "tokenizer"), inputs) ||
        cli_load_model(s->model_path, &s->model) ||
        cli_load_tokenizer(s->model_path, s->model, cli_value(&k_spec, a, "tokenizer"), &s->tok) ||
        cli_read_text(text_path, &s->text, &p->text_len))
        return CLI_FAIL;
    p->text = s->text;
    if (cli_head_mask(&k_spec, a, s->model, s->tok, text_path, 0, 0, &s->mask, &s->calib, &s->n_calib)) return CLI_FAIL;
    if (!s->mask) return cli_error("give the heads to mask: --mask-heads, --mean-heads or --gates");
    p->heads = s->mask;
    p->calib_tokens = s->calib, p->n_calib_tokens = s->n_calib;
    return CLI_OK;
}

/* The header, and with --resume what an earlier run wrote. */
static int start_file(const cli_args *a, const char *text_path, hr_influence_params *p, influence_state *s,
                      writer *w) {
    char *header = NULL;
    if (hr_influence_header_json(s->model_path, text_path, p, &header) != HR_OK) return cli_lib_error("header");
    int rc = CLI_OK;
    char *old = NULL;
    size_t len = 0;
    if (cli_value(&k_spec, a, "resume") && access(w->out, F_OK) == 0) {
        int done = 0;
        size_t keep = 0;
        if (hr_read_file(w->out, &old, &len) != HR_OK) rc = cli_lib_error("cannot read --out");
        else if (hr_influence_resume(old, len, header, p, &done, &keep) != HR_OK)
            rc = cli_error("--resume %s: %s", w->out, hr_last_error());
        else {
            old[keep] = 0;
            rc = append(w, old) ? CLI_OK : cli_error("out of memory");
            w->len--, w->buf[w->len] = 0; /* append added a newline the kept lines already end with */
            p->first_doc = done;
            fprintf(stderr, "influence: resuming after %d documents\n", done);
        }
    } else if (!append(w, header)) {
        rc = cli_error("out of memory");
    }
    hr_free(old);
    hr_free(header);
    return rc;
}

int cmd_influence(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&k_spec, argc, argv, &a) != CLI_OK) return CLI_FAIL;
    if (a.help) {
        cli_print_help(&k_spec);
        return CLI_OK;
    }
    hr_influence_params p = hr_influence_default_params();
    influence_state s;
    memset(&s, 0, sizeof s);
    writer w = {cli_value(&k_spec, &a, "out"), NULL, 0, 0, 0, 0, 0, false};
    int rc = setup(&a, &p, &s);
    if (rc == CLI_OK) rc = start_file(&a, cli_value(&k_spec, &a, "text"), &p, &s, &w);
    int n_docs = 0;
    p.on_doc = on_doc;
    p.user_data = &w;
    if (isatty(STDERR_FILENO)) p.progress = progress_tty;
    if (rc == CLI_OK && hr_influence_run(s.model, s.tok, &p, &n_docs) != HR_OK)
        rc = w.failed ? cli_error("cannot write %s", w.out) : cli_lib_error("influence failed");
    if (w.n && flush(&w) != CLI_OK) rc = CLI_FAIL; /* what was scored is kept, also after an error */
    if (rc == CLI_OK)
        printf("influence: %d documents scored (%d in the text, from document %d), mean influence %.5f; wrote %s\n", w.n,
               n_docs, p.first_doc, w.n ? w.sum / w.n : NAN, w.out);
    free(w.buf);
    free(s.text);
    hr_head_mask_free(s.mask);
    hr_free(s.calib);
    hr_tokenizer_free(s.tok);
    hr_model_free(s.model);
    return rc;
}
