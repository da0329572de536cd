/* headroom heads: the head lab — score every attention head by every
 * method, score layers, write JSON/CSV, heatmaps and report.html. */
#include "commands.h"
#include "common.h"

#include "headroom/context.h"
#include "headroom/heads.h"
#include "headroom/report.h"
#include "headroom/study.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const cli_opt k_opts[] = {
    {"text", 'f', "FILE", "UTF-8 calibration text (required)"},
    {"out", 'o', "DIR", "output directory, created if missing (required)"},
    {"methods", 'm', "LIST", "comma-separated method ids or 'all' (default all)"},
    {"tokens", 'n', "N", "calibration tokens, in whole windows (default " CLI_STR(HR_CALIB_HEADS_TOKENS) ")"},
    {"window", 0, "W", "tokens per calibration window incl. BOS (default min(seq_len, " CLI_STR(HR_CALIB_WINDOW) "))"},
    {"seed", 's', "S", "seed of the generated inputs (default 0)"},
    {"mean-ablation", 0, NULL, "ablation replaces a head by its mean output instead of zero"},
    {"needles", 0, "KIND", "retrieval needles: random (tokens, default) or natural (recurring text spans)"},
    CLI_THREADS_OPTION,
    {"top", 0, "K", "attention-pattern pictures of the K most important heads (default 4)"},
    CLI_TOKENIZER_OPTION,
    {"list", 0, NULL, "list the methods with their papers and exit"},
    CLI_FORCE_OPTION,
};

static const cli_spec k_spec = {
    .name = "heads",
    .usage = "[MODEL] --text FILE --out DIR [options]",
    .summary = "Instruments every attention head and scores it by each method (see --list):\n"
               "exact single-head ablation (loss and KL), AMP, FDTM, attention statistics (entropy,\n"
               "confidence, sink, streaming, distance, influence, pattern), induction / previous-token /\n"
               "duplicate scores on repeated random tokens, retrieval on needle-in-a-haystack prompts and\n"
               "successor heads; plus layer metrics (block influence, sublayer change, sublayer-removal KL).\n"
               "Writes heads.json, heads.csv, layers.json, heads_<method>.png (layers x heads),\n"
               "pattern_L<l>_H<h>.png and report.html into DIR. Same inputs and seed give identical JSON.\n"
               "Progress goes to stderr when stderr is a terminal.",
    .opts = k_opts,
    .n_opts = sizeof k_opts / sizeof k_opts[0],
    .example = "  headroom heads --text ../shared/data/text/tinystories_val.txt --out heads-out\n"
               "  headroom heads model.gguf -f wiki.txt --methods ablation,sink,induction --tokens 512 -o out",
    .max_positional = 1,
};

typedef struct {
    const char *text_path, *out_dir, *tokenizer, *methods;
    long tokens, window, threads, top;
    uint64_t seed;
    bool mean_ablation, natural_needles;
} heads_opts;

static int read_opts(const cli_args *a, heads_opts *o, bool *selected) {
    memset(o, 0, sizeof *o);
    o->text_path = cli_value(&k_spec, a, "text");
    o->out_dir = cli_value(&k_spec, a, "out");
    o->tokenizer = cli_value(&k_spec, a, "tokenizer");
    o->methods = cli_value(&k_spec, a, "methods");
    o->tokens = HR_CALIB_HEADS_TOKENS;
    o->top = 4;
    o->mean_ablation = cli_value(&k_spec, a, "mean-ablation") != NULL;
    const char *needles = cli_value(&k_spec, a, "needles");
    if (needles && strcmp(needles, "random") && strcmp(needles, "natural"))
        return cli_error("--needles '%s': random or natural", needles);
    o->natural_needles = needles && !strcmp(needles, "natural");
    if (cli_get_int(&k_spec, a, "tokens", 1, INT_MAX, &o->tokens) ||
        cli_get_int(&k_spec, a, "window", 4, INT_MAX, &o->window) ||
        cli_get_int(&k_spec, a, "threads", 0, 4096, &o->threads) || cli_get_int(&k_spec, a, "top", 0, 64, &o->top) ||
        cli_get_u64(&k_spec, a, "seed", &o->seed))
        return CLI_FAIL;
    if (hr_heads_parse_methods(o->methods ? o->methods : "all", selected) != HR_OK)
        return cli_error("%s (see 'headroom heads --list')", hr_last_error());
    if (!o->text_path) return cli_error("--text FILE is required (see 'headroom heads --help')");
    if (!o->out_dir) return cli_error("--out DIR is required (see 'headroom heads --help')");
    return CLI_OK;
}

static void list_methods(void) {
    for (int i = 0; i < hr_heads_n_methods(); i++) {
        const hr_head_method_info *m = hr_heads_method_info(i);
        printf("%-12s %s\n             paper:   %s\n             formula: %s\n             use:     %s\n", m->id,
               m->name, m->paper, m->formula, m->good_for);
    }
}

/* Checks the output folder (never an input, empty or an earlier head-lab
 * output unless --force, writable), then creates it. */
static int prepare_out_dir(const cli_args *a, const heads_opts *o) {
    char model_path[PATH_MAX + 64];
    const char *dir = o->out_dir;
    const char *inputs[] = {o->text_path, o->tokenizer, NULL};
    if (cli_resolve_model(a, model_path, sizeof model_path) ||
        cli_check_output(dir, HR_OUT_FOLDER, "heads.json", cli_value(&k_spec, a, "force") != NULL, model_path,
                         o->tokenizer, inputs))
        return CLI_FAIL;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return cli_error("cannot create --out %s: %s", dir, strerror(errno));
    return CLI_OK;
}

static int progress_tty(int64_t done, int64_t total, void *ud) {
    (void)ud;
    fprintf(stderr, "\rheads: %5.1f%%", total ? 100.0 * (double)done / (double)total : 100.0);
    if (done >= total) fputc('\n', stderr);
    fflush(stderr);
    return 0;
}

typedef struct {
    hr_model *model;
    hr_tokenizer *tok;
    hr_context *ctx;
    char *text;
    int32_t *ids; /* (n_ids) text tokens, no BOS */
    size_t n_ids;
    hr_heads_result *res;
    char model_path[PATH_MAX + 64];
} heads_state;

static void state_free(heads_state *s) {
    hr_heads_result_free(s->res);
    free(s->ids);
    free(s->text);
    hr_context_free(s->ctx);
    hr_tokenizer_free(s->tok);
    hr_model_free(s->model);
}

static int setup(const cli_args *a, const heads_opts *o, heads_state *s) {
    size_t len = 0;
    if (cli_read_text(o->text_path, &s->text, &len) || cli_resolve_model(a, s->model_path, sizeof s->model_path) ||
        cli_load_model(s->model_path, &s->model) ||
        cli_load_tokenizer(s->model_path, s->model, o->tokenizer, &s->tok))
        return CLI_FAIL;
    hr_encode_params ep = hr_encode_default_params();
    ep.add_bos = false;
    if (hr_tokenizer_encode(s->tok, s->text, len, &ep, &s->ids, &s->n_ids) != HR_OK)
        return cli_lib_error("cannot tokenize the text");
    int seq = hr_config_seq_len(hr_model_config(s->model));
    if (o->window > seq) return cli_error("--window %ld exceeds the model's context length %d", o->window, seq);
    hr_context_params cp = hr_context_default_params();
    cp.n_threads = (int)o->threads;
    if (hr_context_new(s->model, &cp, &s->ctx) != HR_OK) return cli_lib_error("cannot create context");
    return CLI_OK;
}

static int analyse(const heads_opts *o, const bool *selected, heads_state *s) {
    hr_heads_params p = hr_heads_default_params();
    p.tokens = s->ids;
    p.n_tokens = s->n_ids;
    int32_t bos = hr_tokenizer_bos(s->tok);
    p.bos = bos >= 0 ? bos : 0;
    p.window = (int)o->window;
    p.max_tokens = (int)o->tokens;
    p.seed = o->seed;
    p.mean_ablation = o->mean_ablation;
    p.natural_needles = o->natural_needles;
    p.tok = s->tok;
    if (isatty(STDERR_FILENO)) p.progress = progress_tty;
    if (hr_heads_run(s->ctx, &p, selected, &s->res) != HR_OK) return cli_lib_error("head analysis failed");
    for (int i = 0; i < hr_heads_n_methods(); i++)
        if (selected[i] && hr_heads_result_note(s->res, i)[0])
            fprintf(stderr, "headroom: note: %s skipped: %s\n", hr_heads_method_info(i)->id,
                    hr_heads_result_note(s->res, i));
    return CLI_OK;
}

static int write_outputs(const heads_opts *o, heads_state *s) {
    hr_lab_report_params rp = hr_lab_report_default_params();
    rp.model_path = s->model_path;
    rp.text_path = o->text_path;
    rp.seed = o->seed;
    rp.top = (int)o->top;
    rp.text_tokens = s->ids;
    rp.n_text_tokens = s->n_ids;
    int32_t bos = hr_tokenizer_bos(s->tok);
    rp.bos = bos >= 0 ? bos : 0;
    int n_pictures = 0;
    if (hr_report_head_lab(o->out_dir, s->res, s->ctx, s->model, &rp, &n_pictures) != HR_OK)
        return cli_lib_error("cannot write the head-lab outputs");
    printf("heads: %d calibration tokens (window %d); wrote heads.json, heads.csv, layers.json, %d pictures, "
           "report.html to %s\n",
           hr_heads_result_n_calib_tokens(s->res), hr_heads_result_window(s->res), n_pictures, o->out_dir);
    return CLI_OK;
}

int cmd_heads(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&k_spec, argc, argv, &a) != CLI_OK) return CLI_FAIL;
    if (a.help) {
        cli_print_help(&k_spec);
        return CLI_OK;
    }
    if (cli_value(&k_spec, &a, "list")) {
        list_methods();
        return CLI_OK;
    }
    heads_opts o;
    bool *selected = calloc((size_t)hr_heads_n_methods(), sizeof(bool));
    if (!selected) return cli_error("out of memory");
    heads_state s;
    memset(&s, 0, sizeof s);
    int rc = read_opts(&a, &o, selected);
    if (rc == CLI_OK) rc = prepare_out_dir(&a, &o);
    if (rc == CLI_OK) rc = setup(&a, &o, &s);
    if (rc == CLI_OK) rc = analyse(&o, selected, &s);
    if (rc == CLI_OK) rc = write_outputs(&o, &s);
    state_free(&s);
    free(selected);
    return rc;
}
