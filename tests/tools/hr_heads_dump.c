/* hr_heads_dump: runs the head lab once per group of methods and writes, for
 * tests/reference/check_heads_reference.py, the per-head scores and every
 * token sequence the lab ran (the calibration windows and the prompts it
 * drew with its seeded generator), so that an independent reference can
 * recompute the scores on exactly the same inputs.
 *
 * The sequences are recorded by a link seam: this tool is linked with
 * -Wl,--wrap=hr_forward (CMakeLists.txt), so every hr_forward call the
 * library makes goes through __wrap_hr_forward below, which logs the cache
 * position and tokens and calls the real function. Nothing in the library
 * knows about it.
 *
 * --methods takes groups separated by ';' ("a,b;c": one run of a and b,
 * then one of c), so methods that share an input pass run once.
 *
 * Output (text, one record per line):
 *   M <methods>                        a run of one group starts
 *   F <n_past> <n> <tok> <tok> ...     one hr_forward call during that run
 *   S <method> <layer> <head> <score>  score (%.17g; "nan" when absent)
 *   N <method> <note>                  the method was skipped, with its note
 */
#include "headroom/context.h"
#include "headroom/heads.h"
#include "headroom/model.h"
#include "core/internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

hr_status __real_hr_forward(hr_context *ctx, const int32_t *tokens, int n, float *logits, bool all_logits);
hr_status __wrap_hr_forward(hr_context *ctx, const int32_t *tokens, int n, float *logits, bool all_logits);

typedef struct {
    hr_atomic_file af;
    bool open, recording;
    hr_status st; /* first write error */
} dump_out;

static dump_out g_out;

static void out_printf(const char *fmt, ...) HR_PRINTF(1, 2);
static void out_printf(const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (g_out.st != HR_OK) return;
    if (len < 0 || (size_t)len >= sizeof buf) g_out.st = hr_err(HR_ERR_INVALID_ARG, "record too long");
    else g_out.st = hr_atomic_write(&g_out.af, buf, (size_t)len);
}

hr_status __wrap_hr_forward(hr_context *ctx, const int32_t *tokens, int n, float *logits, bool all_logits) {
    if (g_out.recording && ctx && tokens && n > 0) {
        out_printf("F %d %d", hr_context_n_past(ctx), n);
        for (int i = 0; i < n; i++) out_printf(" %d", tokens[i]);
        out_printf("\n");
    }
    return __real_hr_forward(ctx, tokens, n, logits, all_logits);
}

typedef struct {
    const char *model, *ids, *out, *methods;
    hr_heads_params p;
    int threads;
} options;

static void usage(void) {
    fprintf(stderr,
            "usage: hr_heads_dump MODEL --ids FILE --out FILE [--methods LIST[;LIST...]] [--bos ID]\n"
            "         [--window W] [--tokens N] [--seed S] [--rep-len K] [--rep-seqs N]\n"
            "         [--needles N] [--needle-len K] [--natural-needles 0|1] [--fdtm-prompts N] [--fdtm-len N]\n"
            "         [--fdtm-gen N] [--threads N]\n"
            "  --ids: calibration token ids without BOS, separated by blanks\n");
}

static int parse_args(int argc, char **argv, options *o) {
    *o = (options){.methods = "all", .threads = 2};
    o->p = hr_heads_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            o->model = a;
            continue;
        }
        if (i + 1 >= argc) return -1;
        const char *v = argv[++i];
        if (strcmp(a, "--ids") == 0) o->ids = v;
        else if (strcmp(a, "--out") == 0) o->out = v;
        else if (strcmp(a, "--methods") == 0) o->methods = v;
        else if (strcmp(a, "--bos") == 0) o->p.bos = atoi(v);
        else if (strcmp(a, "--window") == 0) o->p.window = atoi(v);
        else if (strcmp(a, "--tokens") == 0) o->p.max_tokens = atoi(v);
        else if (strcmp(a, "--seed") == 0) o->p.seed = strtoull(v, NULL, 10);
        else if (strcmp(a, "--rep-len") == 0) o->p.rep_len = atoi(v);
        else if (strcmp(a, "--rep-seqs") == 0) o->p.rep_seqs = atoi(v);
        else if (strcmp(a, "--needles") == 0) o->p.n_needles = atoi(v);
        else if (strcmp(a, "--needle-len") == 0) o->p.needle_len = atoi(v);
        else if (strcmp(a, "--natural-needles") == 0) o->p.natural_needles = atoi(v) != 0;
        else if (strcmp(a, "--fdtm-prompts") == 0) o->p.fdtm_prompts = atoi(v);
        else if (strcmp(a, "--fdtm-len") == 0) o->p.fdtm_prompt_len = atoi(v);
        else if (strcmp(a, "--fdtm-gen") == 0) o->p.fdtm_gen = atoi(v);
        else if (strcmp(a, "--threads") == 0) o->threads = atoi(v);
        else return -1;
    }
    return o->model && o->ids && o->out ? 0 : -1;
}

/* Reads blank-separated ids into a malloc'ed array (*out, *n). */
static hr_status read_ids(const char *path, int32_t **out, size_t *n) {
    FILE *f = fopen(path, "r");
    if (!f) return hr_err(HR_ERR_IO, "cannot open %s", path);
    size_t cap = 256, len = 0;
    int32_t *ids = malloc(cap * sizeof *ids); // (cap)
    long v;
    hr_status st = ids ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory");
    while (st == HR_OK && fscanf(f, "%ld", &v) == 1) {
        if (len == cap) {
            int32_t *nid = realloc(ids, 2 * cap * sizeof *ids);
            if (!nid) {
                st = hr_err(HR_ERR_NOMEM, "out of memory");
                break;
            }
            ids = nid, cap *= 2;
        }
        ids[len++] = (int32_t)v;
    }
    if (st == HR_OK && !feof(f)) st = hr_err(HR_ERR_FORMAT, "%s: not a list of integers", path);
    fclose(f);
    if (st != HR_OK) {
        free(ids);
        return st;
    }
    *out = ids, *n = len;
    return HR_OK;
}

/* One hr_heads_run of the methods in list (comma-separated ids); records
 * its forwards and writes the scores of those methods. sel: scratch
 * (n_methods). */
static hr_status dump_group(hr_context *ctx, const hr_heads_params *p, const char *list, bool *sel) {
    hr_status st = hr_heads_parse_methods(list, sel);
    if (st != HR_OK) return st;
    hr_heads_result *r = NULL;
    out_printf("M %s\n", list);
    g_out.recording = true;
    st = hr_heads_run(ctx, p, sel, &r);
    g_out.recording = false;
    if (st != HR_OK) {
        hr_err_prefix("%s: ", list);
        return st;
    }
    for (int m = 0; m < hr_heads_n_methods(); m++) {
        if (!sel[m]) continue;
        const char *id = hr_heads_method_info(m)->id;
        if (!hr_heads_result_has(r, m)) out_printf("N %s %s\n", id, hr_heads_result_note(r, m));
        for (int l = 0; l < hr_heads_result_n_layers(r); l++)
            for (int h = 0; h < hr_heads_result_n_heads(r, l); h++) {
                double s = hr_heads_score(r, m, l, h);
                if (isnan(s)) out_printf("S %s %d %d nan\n", id, l, h);
                else out_printf("S %s %d %d %.17g\n", id, l, h, s);
            }
    }
    hr_heads_result_free(r);
    return g_out.st;
}

static hr_status run(options *o) {
    hr_model *m = NULL;
    hr_context *ctx = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    bool *sel = calloc((size_t)hr_heads_n_methods(), sizeof *sel); // (n_methods)
    char *groups = strdup(o->methods);                             // split in place at ';'
    hr_status st = sel && groups ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory");
    if (st == HR_OK) st = read_ids(o->ids, &ids, &n_ids);
    if (st == HR_OK) st = hr_model_load(o->model, &m);
    hr_context_params cp = hr_context_default_params();
    cp.n_threads = o->threads;
    if (st == HR_OK) st = hr_context_new(m, &cp, &ctx);
    if (st == HR_OK) st = hr_atomic_open(o->out, &g_out.af);
    g_out.open = st == HR_OK;
    o->p.tokens = ids;
    o->p.n_tokens = n_ids;
    char *save = NULL;
    for (char *g = st == HR_OK ? strtok_r(groups, ";", &save) : NULL; g && st == HR_OK; g = strtok_r(NULL, ";", &save))
        st = dump_group(ctx, &o->p, g, sel);
    if (g_out.open) {
        if (st == HR_OK) st = hr_atomic_commit(&g_out.af);
        else hr_atomic_abort(&g_out.af);
    }
    free(sel);
    free(groups);
    free(ids);
    hr_context_free(ctx);
    hr_model_free(m);
    return st;
}

int main(int argc, char **argv) {
    options o;
    if (parse_args(argc, argv, &o) < 0) {
        usage();
        return 2;
    }
    hr_status st = run(&o);
    if (st != HR_OK) {
        fprintf(stderr, "hr_heads_dump: %s: %s\n", hr_status_str(st), hr_last_error());
        return 1;
    }
    return 0;
}
