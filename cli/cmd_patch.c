/* headroom patch: activation and path patching, attention knockout,
 * direct logit attribution and the logit lens over prompt pairs
 * (hr_patch_run), written as patch.json, heatmaps and report.html
 * (hr_report_patch). */
#include "commands.h"
#include "common.h"
#include "heads_mask.h"

#include "headroom/circuits.h"
#include "headroom/report.h"
#include "headroom/scores.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const cli_opt k_opts[] = {
    {"pairs", 0, "FILE.jsonl", "prompt pairs: {\"clean\", \"corrupt\", \"answer\", \"wrong\"} per line (or *_ids)"},
    {"name-recall", 0, "TEXT", "build name-recall pairs from a text instead (see --n-pairs)"},
    {"letters", 0, "TASKS.jsonl", "build correct-letter pairs from multiple-choice items instead"},
    {"conflict", 0, "TEXT",
     "build knowledge-conflict pairs from a text instead (PH3: memory vs context heads -> ph3.json)"},
    {"ph3", 0, NULL, "--pairs are conflict pairs (answer = context, wrong = memory): write ph3.json"},
    {"min-prob", 0, "P", "with --conflict: the memory answer's least probability without the context (default 0.5)"},
    {"n-pairs", 0, "N", "with --name-recall / --conflict: pairs to build (default 100)"},
    {"seed", 's', "S", "with --name-recall / --conflict: seed of the choice (default 0)"},
    {"what", 0, "LIST", "heads,layers,mlp,resid,positions, all or none (default heads)"},
    {"metric", 0, "NAME", "logit-diff, prob or kl (default logit-diff)"},
    {"direction", 0, "DIR", "denoise (corrupt run, clean activation; default) or noise"},
    {"path", 0, "\"S -> R\"", "path patching: senders (* or L.H,...) -> receivers (logits, L.Hq/k/v, L.mlp)"},
    {"path-mlps", 0, "MODE", "path patching step 1: frozen (default) or recomputed MLPs (IOI)"},
    {"knockout", 0, "\"H : Q -> K\"", "attention knockout: heads (* or L.H,...) : query -> key positions"},
    {"no-dla", 0, NULL, "skip direct logit attribution"},
    {"no-lens", 0, NULL, "skip the logit lens"},
    {"single-token", 0, NULL, "answers of several tokens are an error (default: scored by their first token)"},
    {"out", 'o', "DIR", "output folder, created if missing (required)"},
    CLI_HEAD_MASK_OPTIONS,
    CLI_TOKENIZER_OPTION,
    CLI_THREADS_OPTION,
    CLI_FORCE_OPTION,
};

static const cli_spec k_spec = {
    .name = "patch",
    .usage = "[MODEL] (--pairs FILE.jsonl | --name-recall TEXT | --letters TASKS.jsonl | --conflict TEXT) --out DIR\n"
             "       [--what LIST] [--metric M] [--direction D] [--path SPEC] [--knockout SPEC] [head masks]",
    .summary = "Activation patching over prompt pairs of equal token length: the corrupt prompt is run with one\n"
               "component's activation from the clean run (denoise; noise = the reverse) for every head output,\n"
               "attention output, MLP output and residual stream at every layer and position; the metric\n"
               "(answer - wrong logit difference, answer probability or -KL to the clean run) is normalised so\n"
               "0 = corrupt and 1 = clean. Also path patching (a sender's effect through chosen receivers\n"
               "only), attention knockout, direct logit attribution (frozen final-norm scale) and the logit\n"
               "lens. Writes patch.json, heatmaps, pairs.jsonl (the pairs used, by ids) and report.html; with\n"
               "--conflict (or --ph3) also ph3.json: memory vs context heads by path patching into the logits,\n"
               "a heads.json-style score file for prune / eval / influence --by ph3-memory|ph3-context.\n"
               "Progress goes to stderr when stderr is a terminal.",
    .opts = k_opts,
    .n_opts = sizeof k_opts / sizeof k_opts[0],
    .example = "  headroom patch --name-recall ../shared/data/text/tinystories_val.txt --n-pairs 50 \\\n"
               "      --what heads,resid --path \"* -> logits\" --out patch-out\n"
               "  headroom patch model.gguf --pairs ioi.jsonl --what all --knockout \"*: -1 -> 2..4\" -o out\n"
               "  headroom patch --conflict ../shared/data/text/tinystories_val.txt --what none -o conflict",
    .max_positional = 1,
};

typedef struct {
    const char *pairs, *recall, *letters, *conflict, *out, *tokenizer;
    long n_pairs, threads;
    double min_prob;
    bool ph3;
    uint64_t seed;
    bool force;
    hr_patch_params p;
    hr_pairs_params pp;
} patch_opts;

static int read_opts(const cli_args *a, patch_opts *o) {
    memset(o, 0, sizeof *o);
    o->p = hr_patch_default_params();
    o->pp = hr_pairs_default_params();
    o->pairs = cli_value(&k_spec, a, "pairs");
    o->recall = cli_value(&k_spec, a, "name-recall");
    o->letters = cli_value(&k_spec, a, "letters");
    o->conflict = cli_value(&k_spec, a, "conflict");
    o->ph3 = o->conflict || cli_value(&k_spec, a, "ph3");
    o->min_prob = 0.5;
    o->out = cli_value(&k_spec, a, "out");
    o->tokenizer = cli_value(&k_spec, a, "tokenizer");
    o->force = cli_value(&k_spec, a, "force") != NULL;
    o->n_pairs = 100;
    if (cli_get_int(&k_spec, a, "n-pairs", 1, 100000, &o->n_pairs) ||
        cli_get_int(&k_spec, a, "threads", 0, 4096, &o->threads) || cli_get_u64(&k_spec, a, "seed", &o->seed))
        return CLI_FAIL;
    if (cli_get_float(&k_spec, a, "min-prob", 1e-6, 1, &o->min_prob)) return CLI_FAIL;
    if (!!o->pairs + !!o->recall + !!o->letters + !!o->conflict != 1)
        return cli_error(
            "give one source of pairs: --pairs FILE, --name-recall TEXT, --letters TASKS or --conflict TEXT");
    if (cli_value(&k_spec, a, "ph3") && !o->pairs) return cli_error("--ph3 says what --pairs FILE holds: give --pairs");
    if (cli_value(&k_spec, a, "min-prob") && !o->conflict) return cli_error("--min-prob is for --conflict TEXT");
    if (!o->out) return cli_error("--out DIR is required (see 'headroom patch --help')");
    const char *what = cli_value(&k_spec, a, "what"), *metric = cli_value(&k_spec, a, "metric");
    const char *dir = cli_value(&k_spec, a, "direction"), *mlps = cli_value(&k_spec, a, "path-mlps");
    if (what && hr_patch_parse_what(what, &o->p.what) != HR_OK) return cli_error("--what: %s", hr_last_error());
    if (metric && hr_patch_parse_metric(metric, &o->p.metric) != HR_OK)
        return cli_error("--metric: %s", hr_last_error());
    if (dir && strcmp(dir, "denoise") && strcmp(dir, "noise"))
        return cli_error("--direction '%s': denoise or noise", dir);
    o->p.direction = dir && !strcmp(dir, "noise") ? HR_PATCH_NOISE : HR_PATCH_DENOISE;
    o->p.path = cli_value(&k_spec, a, "path");
    if (o->ph3 && o->p.path && strcmp(o->p.path, "* -> logits") != 0)
        return cli_error("--conflict / --ph3 path-patch every head into the logits: leave --path out (or give "
                         "\"* -> logits\")");
    if (o->ph3 && metric && o->p.metric != HR_METRIC_LOGIT_DIFF)
        return cli_error("--conflict / --ph3 score logit(context) - logit(memory): --metric logit-diff only");
    if (o->ph3 && o->p.direction != HR_PATCH_DENOISE)
        return cli_error(
            "--conflict / --ph3 patch the clean run's heads into the corrupt run: --direction denoise only");
    if (o->ph3) o->p.path = "* -> logits";
    o->p.knockout = cli_value(&k_spec, a, "knockout");
    if (mlps && !o->p.path) return cli_error("--path-mlps is for --path (it would do nothing)");
    if (mlps && strcmp(mlps, "frozen") && strcmp(mlps, "recomputed"))
        return cli_error("--path-mlps '%s': frozen or recomputed", mlps);
    o->p.path_mlps_recomputed = mlps && !strcmp(mlps, "recomputed");
    o->p.dla = !cli_value(&k_spec, a, "no-dla");
    o->p.lens = !cli_value(&k_spec, a, "no-lens");
    o->p.n_threads = (int)o->threads;
    if (cli_value(&k_spec, a, "single-token")) o->pp.answers = HR_ANSWER_SINGLE_TOKEN;
    return CLI_OK;
}

typedef struct {
    hr_model *model;
    hr_tokenizer *tok;
    hr_pairs *pairs;
    hr_head_mask *mask;
    int32_t *calib;
    size_t n_calib;
    hr_patch_result *res;
    char model_path[PATH_MAX + 64];
} patch_state;

static void state_free(patch_state *s) {
    hr_patch_result_free(s->res);
    hr_pairs_free(s->pairs);
    hr_head_mask_free(s->mask);
    hr_free(s->calib);
    hr_tokenizer_free(s->tok);
    hr_model_free(s->model);
}

static int check_out_dir(const cli_args *a, const patch_opts *o, const patch_state *s) {
    const char *inputs[] = {
        o->pairs, o->recall, o->letters, o->conflict, cli_value(&k_spec, a, "gates"), cli_value(&k_spec, a, "calib"),
        NULL};
    return cli_check_output(o->out, HR_OUT_FOLDER, "patch.json", o->force, s->model_path, o->tokenizer, inputs);
}

static const char *pairs_source(const patch_opts *o) {
    return o->pairs ? o->pairs : o->recall ? o->recall : o->letters ? o->letters : o->conflict;
}

/* Reads or builds the pairs: every error names the file (and line). */
static int load_pairs(const patch_opts *o, patch_state *s) {
    const char *path = pairs_source(o);
    char *text = NULL;
    size_t len = 0;
    if (cli_read_text(path, &text, &len)) return CLI_FAIL;
    hr_status st;
    int max_ctx = hr_config_seq_len(hr_model_config(s->model));
    if (o->pairs) {
        st = hr_pairs_parse(text, len, s->tok, &o->pp, &s->pairs);
    } else if (!s->tok) {
        st = HR_ERR_INVALID_ARG;
        hr_free(text);
        return cli_error("building pairs from %s needs a tokenizer (--tokenizer PATH)", path);
    } else if (o->conflict) {
        st = hr_pairs_conflict(s->model, s->tok, text, len, (int)o->n_pairs, (float)o->min_prob, o->seed, &s->pairs);
    } else if (o->recall) {
        st =
            hr_pairs_name_recall(s->tok, text, len, max_ctx < 192 ? max_ctx : 192, (int)o->n_pairs, o->seed, &s->pairs);
    } else {
        hr_mc_task *t = NULL;
        st = hr_mc_parse(text, len, &t);
        if (st == HR_OK) st = hr_pairs_from_choices(s->tok, t, max_ctx, &s->pairs);
        hr_mc_task_free(t);
    }
    free(text);
    if (st != HR_OK) return cli_error("%s: %s", path, hr_last_error());
    return CLI_OK;
}

static int setup(const cli_args *a, const patch_opts *o, patch_state *s) {
    if (cli_resolve_model(a, s->model_path, sizeof s->model_path) || cli_load_model(s->model_path, &s->model))
        return CLI_FAIL;
    const hr_config *c = hr_model_config(s->model);
    /* The specifications are checked before anything is read or written. */
    if (o->p.path && hr_patch_check_path(c, o->p.path) != HR_OK) return cli_error("%s", hr_last_error());
    if (o->p.knockout && hr_patch_check_knockout(c, o->p.knockout) != HR_OK) return cli_error("%s", hr_last_error());
    if (o->tokenizer || !o->pairs) {
        if (cli_load_tokenizer(s->model_path, s->model, o->tokenizer, &s->tok)) return CLI_FAIL;
    } else {
        cli_load_tokenizer_optional(s->model_path, s->model, NULL, &s->tok);
    }
    if (check_out_dir(a, o, s) || load_pairs(o, s) ||
        cli_head_mask(&k_spec, a, s->model, s->tok, o->recall ? o->recall : o->conflict, 0, 0, &s->mask, &s->calib,
                      &s->n_calib))
        return CLI_FAIL;
    /* everything the run needs is checked: now the folder may appear */
    if (mkdir(o->out, 0777) != 0 && errno != EEXIST)
        return cli_error("cannot create --out %s: %s", o->out, strerror(errno));
    return CLI_OK;
}

static int progress_tty(int64_t done, int64_t total, void *ud) {
    (void)ud;
    if (done % 64 && done != total) return 0;
    fprintf(stderr, "\rpatch: %5.1f%%", total ? 100.0 * (double)done / (double)total : 100.0);
    if (done >= total) fputc('\n', stderr);
    fflush(stderr);
    return 0;
}

/* The k cells of a (rows, cols) matrix farthest from 0 (k < 0: farthest
 * from 1, for knockouts), printed as "L.H=value". */
static void print_top(const char *what, const double *v, int rows, int cols, int k) {
    if (!v) return;
    double ref = k < 0 ? 1 : 0;
    k = abs(k);
    printf("%-24s", what);
    bool *used = calloc((size_t)rows * cols, 1);
    for (int i = 0; used && i < k; i++) {
        int best = -1;
        for (int j = 0; j < rows * cols; j++)
            if (!used[j] && !isnan(v[j]) && (best < 0 || fabs(v[j] - ref) > fabs(v[best] - ref))) best = j;
        if (best < 0) break;
        used[best] = 1;
        printf(" %d.%d=%.3f", best / cols, best % cols, v[best]);
    }
    printf("\n");
    free(used);
}

static int run(const patch_opts *o, patch_state *s) {
    hr_patch_params p = o->p;
    p.heads = s->mask;
    p.calib_tokens = s->calib;
    p.n_calib_tokens = s->n_calib;
    if (isatty(STDERR_FILENO)) p.progress = progress_tty;
    double t0 = cli_now();
    if (hr_patch_run(s->model, s->pairs, &p, &s->res) != HR_OK) return cli_lib_error("patching failed");
    const hr_patch_summary *r = hr_patch_result_summary(s->res);
    printf("patch: %d pairs, metric %s (%s): clean %.4f, corrupt %.4f; %lld forward passes in %.2f s\n", r->n_pairs,
           hr_patch_metric_name(r->metric), r->direction == HR_PATCH_NOISE ? "noise" : "denoise", r->clean, r->corrupt,
           (long long)r->forward_passes, cli_now() - t0);
    if (r->warning[0]) fprintf(stderr, "headroom: warning: %s\n", r->warning);
    if (o->ph3)
        printf("conflict: clean prompts answered with the context answer %d, the memory answer %d, other %d (of %d)\n",
               r->clean_top_answer, r->clean_top_wrong, r->n_pairs - r->clean_top_answer - r->clean_top_wrong,
               r->n_pairs);
    print_top("heads (patched)", r->heads, r->n_layers, r->max_heads, 5);
    print_top("path senders", r->path_heads, r->n_layers, r->max_heads, 5);
    if (r->path && !r->path_heads) printf("%-24s %.4f\n", "path", r->path_value);
    print_top("knockout heads", r->knockout_heads, r->n_layers, r->max_heads, -5);
    if (r->knockout && !r->knockout_heads) printf("%-24s %.4f\n", "knockout", r->knockout_value);
    if (r->has_dla) {
        print_top("DLA heads", r->dla_heads, r->n_layers, r->max_heads, 5);
        printf("%-24s logit diff %.4f, sum of parts %.4f\n", "DLA", r->dla_total, r->dla_sum);
    }
    return CLI_OK;
}

static int write_outputs(const patch_opts *o, patch_state *s) {
    hr_patch_meta meta = {s->model_path, pairs_source(o), s->tok};
    int n = 0;
    char *jsonl = NULL, path[PATH_MAX];
    if (hr_report_patch(o->out, s->res, s->model, &meta, &n) != HR_OK) return cli_lib_error("cannot write the report");
    snprintf(path, sizeof path, "%s/pairs.jsonl", o->out);
    if (hr_pairs_to_jsonl(s->pairs, &jsonl) != HR_OK) return cli_lib_error("cannot write the pairs");
    int rc = cli_write_file(path, jsonl);
    hr_free(jsonl);
    if (rc == CLI_OK && o->ph3) {
        char *ph3 = NULL;
        snprintf(path, sizeof path, "%s/ph3.json", o->out);
        if (hr_patch_ph3_json(s->res, s->model, &meta, &ph3) != HR_OK) return cli_lib_error("cannot write ph3.json");
        rc = cli_write_file(path, ph3);
        hr_free(ph3);
        if (rc == CLI_OK) {
            hr_scores *sc = NULL;
            char *mem = NULL, *ctx = NULL;
            if (hr_scores_new(hr_model_config(s->model), &sc) == HR_OK && hr_scores_read_heads(sc, path) == HR_OK &&
                hr_scores_top_heads(sc, "ph3-memory", 4, &mem) == HR_OK &&
                hr_scores_top_heads(sc, "ph3-context", 4, &ctx) == HR_OK)
                printf("ph3: top memory heads %s; top context heads %s\n", mem, ctx);
            hr_free(mem), hr_free(ctx);
            hr_scores_free(sc);
        }
    }
    if (rc == CLI_OK)
        printf("patch: wrote patch.json, pairs.jsonl,%s %d pictures and report.html to %s\n",
               o->ph3 ? " ph3.json," : "", n, o->out);
    return rc;
}

int cmd_patch(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&k_spec, argc, argv, &a) != CLI_OK) return CLI_FAIL;
    if (a.help) {
        cli_print_help(&k_spec);
        return CLI_OK;
    }
    patch_opts o;
    patch_state s;
    memset(&s, 0, sizeof s);
    int rc = read_opts(&a, &o);
    if (rc == CLI_OK) rc = setup(&a, &o, &s);
    if (rc == CLI_OK) rc = run(&o, &s);
    if (rc == CLI_OK) rc = write_outputs(&o, &s);
    state_free(&s);
    return rc;
}
