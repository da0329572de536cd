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

static const cli_opt k_opts[] = {
    {"text", 'f', "FILE", "UTF-8 calibration text (required)"},
    {"out", 'o', "DIR", "output directory, created if missing (required)"},
    {"methods", 'm', "LIST",
     "comma-separated method ids, 'default' or 'all' (default: all but ablation,\n"
     "                             ablation_kl, ablation_greedy, fdtm, which re-run the model per head)"},
    {"tokens", 'n', "N", "calibration tokens, in whole windows (default " CLI_STR(HR_CALIB_HEADS_TOKENS) ")"},
    {"window", 0, "W", "tokens per calibration window incl. BOS (default min(seq_len, " CLI_STR(HR_CALIB_WINDOW) "))"},
    {"seed", 's', "S", "seed of the generated inputs (default 0)"},
    {"mean-ablation", 0, NULL, "ablation replaces a head by its mean output instead of zero"},
    {"needles", 0, "KIND", "retrieval needles: random (tokens, default) or natural (recurring text spans)"},
    {"no-layer-metrics", 0, NULL,
     "skip the layer / sublayer metrics and layers.json (~2 forward passes per\n"
     "                             sublayer: most of a cheap run's time on big models)"},
    CLI_THREADS_OPTION,
    {"top", 0, "K", "attention-pattern pictures of the K most important heads (default 4)"},
    {"pattern-prompt", 0, "TEXT",
     "the text of the attention-pattern pictures, first 63 tokens (default: the\n"
     "                             start of the calibration text)"},
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
               "Before it starts it prints what each group of methods will cost (forward-pass equivalents\n"
               "and time, from a measured forward) and what the methods left out would cost; then one\n"
               "progress line per phase (-q silences both).",
    .opts = k_opts,
    .n_opts = sizeof k_opts / sizeof k_opts[0],
    .example = "  headroom heads --text ../shared/data/text/tinystories_val.txt --out heads-out\n"
               "  headroom heads model.gguf -f wiki.txt --methods ablation,sink,induction --tokens 512 -o out",
    .max_positional = 1,
};

typedef struct {
    const char *text_path, *out_dir, *tokenizer, *methods, *pattern_prompt;
    long tokens, window, threads, top;
    uint64_t seed;
    bool mean_ablation, natural_needles, no_layer_metrics;
} heads_opts;

static int read_opts(const cli_args *a, heads_opts *o, bool *selected) {
    memset(o, 0, sizeof *o);
    o->text_path = cli_value(&k_spec, a, "text");
    o->out_dir = cli_value(&k_spec, a, "out");
    o->tokenizer = cli_value(&k_spec, a, "tokenizer");
    o->methods = cli_value(&k_spec, a, "methods");
    o->pattern_prompt = cli_value(&k_spec, a, "pattern-prompt");
    if (o->pattern_prompt && !*o->pattern_prompt) return cli_error("--pattern-prompt is empty");
    if (o->pattern_prompt && cli_utf8_invalid_at(o->pattern_prompt, strlen(o->pattern_prompt)) >= 0)
        return cli_error("--pattern-prompt is not valid UTF-8");
    o->tokens = HR_CALIB_HEADS_TOKENS;
    o->top = 4;
    o->mean_ablation = cli_value(&k_spec, a, "mean-ablation") != NULL;
    o->no_layer_metrics = cli_value(&k_spec, a, "no-layer-metrics") != NULL;
    const char *needles = cli_value(&k_spec, a, "needles");
    if (needles && strcmp(needles, "random") && strcmp(needles, "natural"))
        return cli_error("--needles '%s': random or natural", needles);
    o->natural_needles = needles && !strcmp(needles, "natural");
    if (cli_get_int(&k_spec, a, "tokens", 1, INT_MAX, &o->tokens) ||
        cli_get_int(&k_spec, a, "window", 4, INT_MAX, &o->window) ||
        cli_get_int(&k_spec, a, "threads", 0, 4096, &o->threads) || cli_get_int(&k_spec, a, "top", 0, 64, &o->top) ||
        cli_get_u64(&k_spec, a, "seed", &o->seed))
        return CLI_FAIL;
    if (hr_heads_parse_methods(o->methods ? o->methods : "default", selected) != HR_OK)
        return cli_error("%s (see 'headroom heads --list')", hr_last_error());
    if (!o->text_path) return cli_error("--text FILE is required (see 'headroom heads --help')");
    if (!o->out_dir) return cli_error("--out DIR is required (see 'headroom heads --help')");
    return CLI_OK;
}

static void list_methods(void) {
    for (int i = 0; i < hr_heads_n_methods(); i++) {
        const hr_head_method_info *m = hr_heads_method_info(i);
        printf("%-12s %s%s\n             paper:   %s\n             formula: %s\n             use:     %s\n", m->id,
               m->name, m->opt_in ? " (not in the default set)" : "", m->paper, m->formula, m->good_for);
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

typedef struct {
    hr_model *model;
    hr_tokenizer *tok;
    hr_context *ctx;
    char *text;
    int32_t *ids; /* (n_ids) text tokens, no BOS */
    size_t n_ids;
    int32_t *pattern; /* (n_pattern) --pattern-prompt tokens, no BOS */
    size_t n_pattern;
    hr_heads_result *res;
    char model_path[PATH_MAX + 64];
} heads_state;

static void state_free(heads_state *s) {
    hr_heads_result_free(s->res);
    free(s->ids);
    free(s->pattern);
    free(s->text);
    hr_context_free(s->ctx);
    hr_tokenizer_free(s->tok);
    hr_model_free(s->model);
}

static int setup(const cli_args *a, const heads_opts *o, heads_state *s) {
    size_t len = 0;
    if (cli_read_text(o->text_path, &s->text, &len) || cli_resolve_model(a, s->model_path, sizeof s->model_path) ||
        cli_load_model(s->model_path, &s->model) || cli_load_tokenizer(s->model_path, s->model, o->tokenizer, &s->tok))
        return CLI_FAIL;
    hr_encode_params ep = hr_encode_default_params();
    ep.add_bos = false;
    if (hr_tokenizer_encode(s->tok, s->text, len, &ep, &s->ids, &s->n_ids) != HR_OK)
        return cli_lib_error("cannot tokenize the text");
    if (o->pattern_prompt && hr_tokenizer_encode(s->tok, o->pattern_prompt, strlen(o->pattern_prompt), &ep, &s->pattern,
                                                 &s->n_pattern) != HR_OK)
        return cli_lib_error("cannot tokenize --pattern-prompt");
    if (o->pattern_prompt && s->n_pattern == 0) return cli_error("--pattern-prompt gives no tokens");
    int seq = hr_config_seq_len(hr_model_config(s->model));
    if (o->window > seq) return cli_error("--window %ld exceeds the model's context length %d", o->window, seq);
    hr_context_params cp = hr_context_default_params();
    cp.n_threads = (int)o->threads;
    if (hr_context_new(s->model, &cp, &s->ctx) != HR_OK) return cli_lib_error("cannot create context");
    return CLI_OK;
}

/* "~1.2k" */
static void format_count(double x, char *buf, size_t cap) {
    if (x < 10) snprintf(buf, cap, "%.1f", x);
    else if (x < 1e4) snprintf(buf, cap, "%.0f", x);
    else if (x < 1e6) snprintf(buf, cap, "%.0fk", x / 1e3);
    else snprintf(buf, cap, "%.1fM", x / 1e6);
}

/* "~" the estimate, "<=" at most that */
static void estimate_row(const hr_heads_cost *c) {
    char n[24], t[24];
    const char *q = c->bound ? "<=" : "~";
    format_count(c->passes, n, sizeof n);
    cli_format_seconds(c->seconds, t, sizeof t);
    fprintf(stderr, "  %-22s %s%-*s %s%-*s %s\n", c->phase, q, 9 - (int)strlen(q), n, q, 9 - (int)strlen(q), t,
            c->label);
}

/* What the run will cost, and what the methods left out would: stderr,
 * before the work (not with --quiet). */
static void print_estimate(const heads_opts *o, const hr_heads_estimate *e) {
    char t[24];
    cli_format_seconds(hr_heads_estimate_window_seconds(e), t, sizeof t);
    fprintf(stderr,
            "heads: cost estimate: %d windows of %d tokens; one window forward with every logit takes %s here\n",
            hr_heads_estimate_n_windows(e), hr_heads_estimate_window(e), t);
    fprintf(stderr, "  %-22s %-9s %-9s %s\n", "phase", "passes", "time", "methods");
    int n_rows = hr_heads_estimate_n_rows(e);
    for (int i = 0; i < n_rows; i++)
        if (hr_heads_estimate_row(e, i)->selected) estimate_row(hr_heads_estimate_row(e, i));
    estimate_row(hr_heads_estimate_total(e));
    bool first = true;
    for (int i = 0; i < n_rows; i++) {
        const hr_heads_cost *c = hr_heads_estimate_row(e, i);
        if (c->selected || !strcmp(c->label, "layer metrics")) continue; /* skipped by --no-layer-metrics */
        char n[24];
        format_count(c->passes, n, sizeof n);
        cli_format_seconds(c->seconds, t, sizeof t);
        fprintf(stderr, "%s%s (~%s forward passes, ~%s)",
                first ? (o->methods ? "not selected: " : "not run by default: ") : ", ", c->label, n, t);
        first = false;
    }
    if (!first) fprintf(stderr, " -- add them with --methods%s\n", o->methods ? "" : " default,ID or --methods all");
    if (o->no_layer_metrics) fprintf(stderr, "layer metrics skipped (--no-layer-metrics)\n");
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
    p.no_layer_metrics = o->no_layer_metrics;
    p.natural_needles = o->natural_needles;
    p.tok = s->tok;
    if (cli_progress_enabled()) {
        hr_heads_estimate *e = NULL;
        if (hr_heads_estimate_cost(s->ctx, &p, selected, true, &e) != HR_OK)
            return cli_lib_error("head analysis failed");
        print_estimate(o, e);
        hr_heads_estimate_free(e);
    }
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
    rp.pattern_tokens = s->pattern;
    rp.n_pattern_tokens = s->n_pattern;
    rp.tok = s->tok;
    int n_pictures = 0;
    if (hr_report_head_lab(o->out_dir, s->res, s->ctx, s->model, &rp, &n_pictures) != HR_OK)
        return cli_lib_error("cannot write the head-lab outputs");
    printf("heads: %d calibration tokens (window %d); wrote heads.json, heads.csv, %s%d pictures, "
           "report.html to %s\n",
           hr_heads_result_n_calib_tokens(s->res), hr_heads_result_window(s->res),
           hr_heads_result_has_layer_metrics(s->res) ? "layers.json, " : "", n_pictures, o->out_dir);
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
