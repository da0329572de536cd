/* headroom influence: AttentionInfluence (hr_influence_run) — each
 * document's loss with and without masked heads — written as JSONL that a
 * later run with --resume continues. */
#include "commands.h"
#include "common.h"
#include "heads_mask.h"

#include "headroom/evaluate.h"
#include "headroom/scores.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const cli_opt k_opts[] = {
    {"text", 'f', "FILE", "the documents, separated by blank lines (or --corpus)"},
    {"split", 0, "MARKER", "documents are separated by lines that are exactly MARKER instead"},
    {"corpus", 0, "DIR|FILE.jsonl", "the documents: a folder of .txt files, or JSONL with a \"text\" field a line"},
    {"mask-top", 0, "K", "mask the K heads --by ranks first in --scores (e.g. --by retrieval)"},
    {"by", 0, "METHOD", "head-lab method of --mask-top (or a method of --scores, e.g. ph3-memory)"},
    {"scores", 0, "heads.json",
     "head scores of --mask-top (from 'headroom heads'; default: the head lab runs METHOD on the\n"
     "text, or --calib, with the defaults of 'headroom heads')"},
    {"needles", 0, "KIND", "--mask-top without --scores: retrieval needles, random (default) or natural"},
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
    .usage = "[MODEL] --text FILE|--corpus DIR|FILE.jsonl --mask-heads L.H,...|--mask-top K --by METHOD\n"
             "       [--scores heads.json] --out FILE.jsonl [--resume] [--max-docs N]",
    .summary = "AttentionInfluence (Hua et al. 2025): for every document of the text, the mean NLL of its tokens\n"
               "with the model as it is and with the given heads masked (e.g. the retrieval heads of\n"
               "'headroom heads --needles natural'), and influence = (masked - base) / base: how much the\n"
               "document needs those heads. Results are written as they come (the file is rewritten\n"
               "atomically every 16 documents); --resume continues after the last complete line of an\n"
               "earlier run with the same model, text, heads and options.",
    .opts = k_opts,
    .n_opts = sizeof k_opts / sizeof k_opts[0],
    .example = "  headroom influence -f ../shared/data/text/tinystories_val.txt --mask-heads 4.0,4.1,4.2,4.3 \\\n"
               "      --max-docs 200 -o influence.jsonl\n"
               "  headroom influence --corpus docs/ --mask-top 4 --by retrieval --scores lab/heads.json -o infl.jsonl",
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
    int top_doc[5]; /* the highest influences so far, highest first */
    double top[5];
    int n_top;
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
    if (w->n_top < 5 || d->influence > w->top[w->n_top - 1]) { /* the top five, highest first */
        int at = w->n_top < 5 ? w->n_top++ : 4;
        for (; at > 0 && w->top[at - 1] < d->influence; at--)
            w->top[at] = w->top[at - 1], w->top_doc[at] = w->top_doc[at - 1];
        w->top[at] = d->influence, w->top_doc[at] = d->index;
    }
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
    hr_corpus *corpus;
    int32_t *calib;
    size_t n_calib;
    char *text;
    char model_path[PATH_MAX + 64];
} influence_state;

/* The scores of --mask-top without --scores: the head lab runs METHOD on
 * the text (or --calib) with the defaults of `headroom heads`. */
static int compute_scores(const cli_args *a, influence_state *s, const char *by, hr_scores **sc) {
    const char *calib = cli_value(&k_spec, a, "calib"), *path = calib ? calib : cli_value(&k_spec, a, "text");
    const char *needles = cli_value(&k_spec, a, "needles");
    if (!path) return cli_error("--mask-top without --scores runs the head lab on a text: give --calib FILE");
    if (hr_heads_method_index(by) < 0)
        return cli_error("--by '%s' is not a head-lab method: give the file that scores it with --scores", by);
    hr_heads_params hp = hr_heads_default_params();
    hp.natural_needles = needles && !strcmp(needles, "natural");
    char *text = NULL;
    size_t len = 0;
    if (cli_read_text(path, &text, &len)) return CLI_FAIL;
    fprintf(stderr,
            "influence: no --scores: computing '%s' with the head lab on %s (the defaults of 'headroom heads'%s)\n", by,
            path, hp.natural_needles ? ", natural needles" : "");
    int rc = hr_scores_compute(s->model, s->tok, text, len, &hp, by, 0, sc) == HR_OK ? CLI_OK
                                                                                     : cli_lib_error("--mask-top --by");
    free(text);
    return rc;
}

/* --mask-top K --by METHOD [--scores heads.json]: the K heads the method
 * ranks first (hr_scores_top_heads), gated to 0. */
static int mask_top(const cli_args *a, influence_state *s, long k) {
    const char *by = cli_value(&k_spec, a, "by"), *path = cli_value(&k_spec, a, "scores");
    const char *needles = cli_value(&k_spec, a, "needles");
    if (!by) return cli_error("--mask-top needs --by METHOD (and --scores heads.json, or the method is computed)");
    if (cli_value(&k_spec, a, "mask-heads") || cli_value(&k_spec, a, "mean-heads") || cli_value(&k_spec, a, "gates"))
        return cli_error("--mask-top replaces --mask-heads, --mean-heads and --gates: give one of them");
    if (needles && path) return cli_error("--needles is for the head lab run on the fly, not for --scores");
    if (needles && strcmp(needles, "random") && strcmp(needles, "natural"))
        return cli_error("--needles '%s': random or natural", needles);
    hr_scores *sc = NULL;
    char *list = NULL;
    int rc = CLI_OK;
    if (!path) {
        rc = compute_scores(a, s, by, &sc);
        if (rc == CLI_OK && hr_scores_top_heads(sc, by, (int)k, &list) != HR_OK) rc = cli_lib_error("--mask-top");
    } else if (hr_scores_new(hr_model_config(s->model), &sc) != HR_OK || hr_scores_read_heads(sc, path) != HR_OK ||
               hr_scores_top_heads(sc, by, (int)k, &list) != HR_OK) {
        rc = cli_lib_error("--mask-top");
    }
    hr_head_mask_params mp = hr_head_mask_default_params();
    mp.mask_heads = list;
    if (rc == CLI_OK && hr_head_mask_new(hr_model_config(s->model), &mp, &s->mask) != HR_OK)
        rc = cli_lib_error("--mask-top");
    if (rc == CLI_OK) fprintf(stderr, "influence: masking the top %ld heads by %s: %s\n", k, by, list);
    hr_free(list);
    hr_scores_free(sc);
    return rc;
}

static int setup(const cli_args *a, hr_influence_params *p, influence_state *s) {
    const char *text_path = cli_value(&k_spec, a, "text"), *out = cli_value(&k_spec, a, "out");
    const char *corpus = cli_value(&k_spec, a, "corpus");
    long ctx = 0, max_docs = 0, threads = 0, top = 0;
    if (cli_get_int(&k_spec, a, "ctx", 2, INT_MAX, &ctx) ||
        cli_get_int(&k_spec, a, "max-docs", 1, INT_MAX, &max_docs) ||
        cli_get_int(&k_spec, a, "threads", 0, 4096, &threads) || cli_get_int(&k_spec, a, "mask-top", 1, INT_MAX, &top))
        return CLI_FAIL;
    if ((!text_path == !corpus) || !out)
        return cli_error("--text FILE or --corpus DIR|FILE.jsonl, and --out FILE.jsonl, are required "
                         "(see 'headroom influence --help')");
    if (corpus && cli_value(&k_spec, a, "split")) return cli_error("--split applies to --text, not to --corpus");
    if ((cli_value(&k_spec, a, "by") || cli_value(&k_spec, a, "scores") || cli_value(&k_spec, a, "needles")) && !top)
        return cli_error("--by, --scores and --needles choose the heads of --mask-top K");
    p->split = cli_value(&k_spec, a, "split");
    p->max_tokens = (int)ctx, p->max_docs = (int)max_docs, p->n_threads = (int)threads;
    bool resume = cli_value(&k_spec, a, "resume") != NULL;
    const char *inputs[] = {text_path ? text_path : corpus, cli_value(&k_spec, a, "gates"),
                            cli_value(&k_spec, a, "calib"), cli_value(&k_spec, a, "scores"), NULL};
    if (cli_resolve_model(a, s->model_path, sizeof s->model_path) ||
        cli_check_output(out, HR_OUT_FILE, "{\"format\":\"headroom.influence\"",
                         resume || cli_value(&k_spec, a, "force"), s->model_path, cli_value(&k_spec, a, "tokenizer"),
                         inputs))
        return CLI_FAIL;
    if (corpus && hr_corpus_read(corpus, &s->corpus) != HR_OK) return cli_lib_error("--corpus");
    if (cli_load_model(s->model_path, &s->model) ||
        cli_load_tokenizer(s->model_path, s->model, cli_value(&k_spec, a, "tokenizer"), &s->tok) ||
        (text_path && cli_read_text(text_path, &s->text, &p->text_len)))
        return CLI_FAIL;
    p->text = s->text;
    p->corpus = s->corpus;
    if (top) {
        if (mask_top(a, s, top)) return CLI_FAIL;
    } else if (cli_head_mask(&k_spec, a, s->model, s->tok, text_path, 0, 0, &s->mask, &s->calib, &s->n_calib)) {
        return CLI_FAIL;
    }
    if (!s->mask) return cli_error("give the heads to mask: --mask-heads, --mean-heads, --gates or --mask-top");
    if (corpus && hr_head_mask_needs_means(s->mask) && !s->calib)
        return cli_error("--mean-heads over a --corpus needs --calib FILE (the text of the heads' means)");
    p->heads = s->mask;
    p->calib_tokens = s->calib, p->n_calib_tokens = s->n_calib;
    return CLI_OK;
}

/* The header, and with --resume what an earlier run wrote. */
static int start_file(const cli_args *a, const char *text_path, hr_influence_params *p, influence_state *s, writer *w) {
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
    writer w;
    memset(&w, 0, sizeof w);
    w.out = cli_value(&k_spec, &a, "out");
    int rc = setup(&a, &p, &s);
    const char *source =
        cli_value(&k_spec, &a, "text") ? cli_value(&k_spec, &a, "text") : cli_value(&k_spec, &a, "corpus");
    if (rc == CLI_OK) rc = start_file(&a, source, &p, &s, &w);
    int n_docs = 0;
    p.on_doc = on_doc;
    p.user_data = &w;
    if (isatty(STDERR_FILENO)) p.progress = progress_tty;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (rc == CLI_OK && hr_influence_run(s.model, s.tok, &p, &n_docs) != HR_OK)
        rc = w.failed ? cli_error("cannot write %s", w.out) : cli_lib_error("influence failed");
    if (w.n && flush(&w) != CLI_OK) rc = CLI_FAIL; /* what was scored is kept, also after an error */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (rc == CLI_OK) {
        printf("influence: %d documents scored (%d in the %s, from document %d), mean influence %.5f; wrote %s\n", w.n,
               n_docs, s.corpus ? "corpus" : "text", p.first_doc, w.n ? w.sum / w.n : NAN, w.out);
        printf("throughput: %.1f documents/s (%.2f s)\n", secs > 0 ? w.n / secs : 0.0, secs);
        for (int i = 0; i < w.n_top; i++)
            printf("rank %d: document %d, influence %.5f\n", i + 1, w.top_doc[i], w.top[i]);
    }
    free(w.buf);
    free(s.text);
    hr_head_mask_free(s.mask);
    hr_corpus_free(s.corpus);
    hr_free(s.calib);
    hr_tokenizer_free(s.tok);
    hr_model_free(s.model);
    return rc;
}
