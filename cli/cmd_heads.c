/* headroom heads: the head lab — score every attention head by every
 * method, score layers, write JSON/CSV, heatmaps and report.html. */
#include "commands.h"
#include "common.h"

#include "headroom/context.h"
#include "headroom/heads.h"
#include "headroom/report.h"

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
    {"tokens", 'n', "N", "calibration tokens, in whole windows (default 1024)"},
    {"window", 0, "W", "tokens per calibration window incl. BOS (default min(seq_len, 256))"},
    {"seed", 's', "S", "seed of the generated inputs (default 0)"},
    {"mean-ablation", 0, NULL, "ablation replaces a head by its mean output instead of zero"},
    {"threads", 't', "K", "worker threads; 0 = all cores (default 0)"},
    {"top", 0, "K", "attention-pattern pictures of the K most important heads (default 4)"},
    {"tokenizer", 0, "PATH", "tokenizer file (default: beside the model, or the GGUF)"},
    {"list", 0, NULL, "list the methods with their papers and exit"},
    {"force", 0, NULL, "replace an existing output that is not an earlier headroom output of the same kind"},
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
    bool mean_ablation;
} heads_opts;

static int read_opts(const cli_args *a, heads_opts *o, bool *selected) {
    memset(o, 0, sizeof *o);
    o->text_path = cli_value(&k_spec, a, "text");
    o->out_dir = cli_value(&k_spec, a, "out");
    o->tokenizer = cli_value(&k_spec, a, "tokenizer");
    o->methods = cli_value(&k_spec, a, "methods");
    o->tokens = 1024;
    o->top = 4;
    o->mean_ablation = cli_value(&k_spec, a, "mean-ablation") != NULL;
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

static int write_atomic(const char *dir, const char *name, const char *data) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return cli_write_file(path, data);
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
    p.tok = s->tok;
    if (isatty(STDERR_FILENO)) p.progress = progress_tty;
    if (hr_heads_run(s->ctx, &p, selected, &s->res) != HR_OK) return cli_lib_error("head analysis failed");
    for (int i = 0; i < hr_heads_n_methods(); i++)
        if (selected[i] && hr_heads_result_note(s->res, i)[0])
            fprintf(stderr, "headroom: note: %s skipped: %s\n", hr_heads_method_info(i)->id,
                    hr_heads_result_note(s->res, i));
    return CLI_OK;
}

/* (n_layers, max_heads) matrix of a method's scores, NaN where absent. */
static float *score_matrix(const heads_state *s, int m, int *rows, int *cols) {
    const hr_config *c = hr_model_config(s->model);
    *rows = hr_config_n_layers(c);
    *cols = hr_config_max_heads(c);
    float *v = malloc(sizeof(float) * (size_t)(*rows) * (*cols ? *cols : 1));
    if (!v) return NULL;
    for (int l = 0; l < *rows; l++)
        for (int h = 0; h < *cols; h++) v[(size_t)l * *cols + h] = (float)hr_heads_score(s->res, m, l, h);
    return v;
}

/* The ranking used to pick heads to draw: ablation if run, else the first method run. */
static int ranking_method(const heads_state *s) {
    int abl = hr_heads_method_index("ablation");
    if (hr_heads_result_has(s->res, abl)) return abl;
    for (int i = 0; i < hr_heads_n_methods(); i++)
        if (hr_heads_result_has(s->res, i)) return i;
    return -1;
}

typedef struct {
    hr_report_image img[80];
    char titles[80][96], paths[80][PATH_MAX];
    int n;
} image_list;

static int heatmaps(const heads_opts *o, heads_state *s, image_list *il) {
    for (int i = 0; i < hr_heads_n_methods() && il->n < 64; i++) {
        if (!hr_heads_result_has(s->res, i)) continue;
        const hr_head_method_info *mi = hr_heads_method_info(i);
        int rows, cols;
        float *v = score_matrix(s, i, &rows, &cols);
        if (!v) return cli_error("out of memory");
        snprintf(il->paths[il->n], PATH_MAX, "%s/heads_%s.png", o->out_dir, mi->id);
        snprintf(il->titles[il->n], sizeof il->titles[0], "%s (%s)", mi->id, mi->name);
        hr_heatmap_params hp = hr_heatmap_default_params();
        hr_status st = hr_png_heatmap(il->paths[il->n], v, rows, cols, &hp);
        free(v);
        if (st != HR_OK) return cli_lib_error("cannot write heatmap");
        il->img[il->n] = (hr_report_image){il->titles[il->n], mi->formula, il->paths[il->n], "methods"};
        il->n++;
    }
    return CLI_OK;
}

static int patterns(const heads_opts *o, heads_state *s, image_list *il) {
    int m = ranking_method(s);
    if (m < 0 || o->top == 0) return CLI_OK;
    int W = hr_heads_result_window(s->res);
    int32_t *win = malloc(sizeof(int32_t) * (size_t)W);
    float *map = malloc(sizeof(float) * (size_t)W * W);
    if (!win || !map) {
        free(win), free(map);
        return cli_error("out of memory");
    }
    int32_t bos = hr_tokenizer_bos(s->tok);
    win[0] = bos >= 0 ? bos : 0;
    memcpy(win + 1, s->ids, sizeof(int32_t) * (size_t)(W - 1));
    int rc = CLI_OK;
    for (int rank = 1; rank <= o->top && rc == CLI_OK && il->n < 80; rank++) {
        int fl = -1, fh = -1;
        for (int l = 0; l < hr_heads_result_n_layers(s->res); l++)
            for (int h = 0; h < hr_heads_result_n_heads(s->res, l); h++)
                if (hr_heads_rank(s->res, m, l, h) == rank) fl = l, fh = h;
        if (fl < 0) break;
        if (hr_heads_attention_map(s->ctx, win, W, fl, fh, map) != HR_OK) {
            rc = cli_lib_error("cannot record attention");
            break;
        }
        snprintf(il->paths[il->n], PATH_MAX, "%s/pattern_L%d_H%d.png", o->out_dir, fl, fh);
        snprintf(il->titles[il->n], sizeof il->titles[0], "head %d.%d (rank %d by %s)", fl, fh, rank,
                 hr_heads_method_info(m)->id);
        hr_heatmap_params hp = hr_heatmap_default_params();
        hp.vmin = 0;
        hp.vmax = 1;
        if (hr_png_heatmap(il->paths[il->n], map, W, W, &hp) != HR_OK) {
            rc = cli_lib_error("cannot write attention pattern");
            break;
        }
        il->img[il->n] = (hr_report_image){il->titles[il->n], "queries (rows) x keys (columns), first window",
                                           il->paths[il->n], "patterns"};
        il->n++;
    }
    free(win);
    free(map);
    return rc;
}

static int write_outputs(const heads_opts *o, heads_state *s) {
    hr_heads_meta meta = {s->model_path, NULL, o->text_path, o->seed};
    char *hj = NULL, *lj = NULL, *csv = NULL;
    if (hr_heads_to_json(s->res, s->model, &meta, &hj, &lj, &csv) != HR_OK) return cli_lib_error("cannot format results");
    int rc = write_atomic(o->out_dir, "heads.json", hj);
    if (rc == CLI_OK) rc = write_atomic(o->out_dir, "heads.csv", csv);
    if (rc == CLI_OK) rc = write_atomic(o->out_dir, "layers.json", lj);
    image_list *il = calloc(1, sizeof *il);
    if (!il) rc = cli_error("out of memory");
    if (rc == CLI_OK) rc = heatmaps(o, s, il);
    if (rc == CLI_OK) rc = patterns(o, s, il);
    if (rc == CLI_OK) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/report.html", o->out_dir);
        if (hr_report_write_html(path, "headroom head lab", hj, lj, il->img, il->n) != HR_OK)
            rc = cli_lib_error("cannot write report.html");
    }
    if (rc == CLI_OK)
        printf("heads: %d calibration tokens (window %d); wrote heads.json, heads.csv, layers.json, %d pictures, "
               "report.html to %s\n",
               hr_heads_result_n_calib_tokens(s->res), hr_heads_result_window(s->res), il->n, o->out_dir);
    free(il);
    free(hj);
    free(lj);
    free(csv);
    return rc;
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
