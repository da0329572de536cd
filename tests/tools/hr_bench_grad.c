/* hr_bench_grad: cost of gradients against the inference forward on the
 * same windows (benchmark, not a test; bench/bench_grad.sh runs it).
 *
 *   hr_bench_grad MODEL --ids FILE --window W --windows K [--threads T]
 *                 [--repeats R] [--what forward,gates,weights,recompute,
 *                  lab:grad,lab:taylor,lab:ablation] [--csv PREFIX]
 *
 * Windows are built as the head lab builds them: [BOS, ids[w*(W-1) ..
 * (w+1)*(W-1))] for w < K (ids: whitespace-separated text token ids, e.g.
 * from `headroom tokenize`). For each measured item prints
 *   RESULT what=<item> seconds=<best of R> cpu_seconds=<best of R> per_window_ms=<...>
 * forward:   hr_forward of every window with all logits (fresh cache each)
 * gates:     hr_grad_accumulate with the head gates selected (the `grad`
 *            head method's work: one forward + backward per window)
 * weights:   every weight tensor selected
 * recompute: gates, with recomputation instead of kept activations
 * lab:M      the head lab's method M alone (hr_heads_run with M selected
 *            and no layer metrics, timed until its progress slot
 *            completes), including the
 *            method's setup (for grad: its parameters, buffers and the
 *            first-touch of its memory); with --csv the scores go to
 *            PREFIX-M.csv (layer,head,M)
 * cpu_seconds is the process's CPU time (all threads): on a shared machine
 * it shows what time slices taken by neighbours hide.
 */
#include "headroom/context.h"
#include "headroom/grad.h"
#include "headroom/heads.h"
#include "headroom/model.h"
#include "core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CPU seconds of the whole process (all threads): with a busy machine's
 * neighbours stealing time, wall time overstates a run, CPU time does not. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int32_t *read_ids(const char *path, size_t *n) {
    FILE *f = fopen(path, "r");
    size_t cap = 1024, k = 0;
    int32_t *ids = malloc(cap * sizeof *ids); // (cap)
    long v;
    while (f && ids && fscanf(f, "%ld", &v) == 1) {
        if (k == cap) {
            int32_t *nid = realloc(ids, (cap *= 2) * sizeof *ids);
            if (!nid) break;
            ids = nid;
        }
        ids[k++] = (int32_t)v;
    }
    if (f) fclose(f);
    *n = k;
    return ids;
}

static double time_forward(const hr_model *m, const int32_t *win, int W, int K, int threads, float *logits) {
    hr_context *ctx = NULL;
    hr_context_params cp = hr_context_default_params();
    cp.n_threads = threads;
    cp.n_ctx = W;
    if (hr_context_new(m, &cp, &ctx) != HR_OK) return -1;
    double t0 = hr_time_now();
    for (int w = 0; w < K; w++) {
        hr_context_truncate(ctx, 0);
        if (hr_forward(ctx, win + (size_t)w * W, W, logits, true) != HR_OK) return -1;
    }
    double dt = hr_time_now() - t0;
    hr_context_free(ctx);
    return dt;
}

typedef struct {
    double t_start, t_done, c_start, c_done; /* wall and CPU clocks */
} lab_clock;

/* Units reach 1000 when the first (only) selected method's slot is done. */
static int lab_progress(int64_t done, int64_t total, void *ud) {
    (void)total;
    lab_clock *lc = ud;
    if (done >= 1000 && lc->t_done == 0) lc->t_done = hr_time_now(), lc->c_done = cpu_now();
    return 0;
}

/* Wall seconds of the method; *cpu its CPU seconds. */
static double time_lab(hr_context *ctx, const char *method, const int32_t *ids, size_t n_ids, int W, int K, int bos,
                       const char *csv, double *cpu) {
    hr_heads_params hp = hr_heads_default_params();
    hp.tokens = ids, hp.n_tokens = n_ids, hp.bos = bos, hp.window = W, hp.max_tokens = W * K;
    /* The method alone: the layer metrics (run after the methods, untimed) would only change the
     * memory state the next repeat starts from (after them a fresh window's buffers cost up to
     * 0.4 s more CPU on the SmolLM shape), which a CLI run, whose layer metrics come last, never sees. */
    hp.no_layer_metrics = true;
    lab_clock lc = {hr_time_now(), 0, cpu_now(), 0};
    hp.progress = lab_progress, hp.progress_ud = &lc;
    bool sel[64] = {false};
    hr_heads_result *r = NULL;
    if (hr_heads_parse_methods(method, sel) != HR_OK || hr_heads_run(ctx, &hp, sel, &r) != HR_OK) return -1;
    int mi = hr_heads_method_index(method);
    FILE *f = csv ? fopen(csv, "w") : NULL;
    if (f) {
        fprintf(f, "layer,head,%s\n", method);
        for (int l = 0; l < hr_heads_result_n_layers(r); l++)
            for (int h = 0; h < hr_heads_result_n_heads(r, l); h++)
                fprintf(f, "%d,%d,%.9g\n", l, h, hr_heads_score(r, mi, l, h));
        fclose(f);
    }
    hr_heads_result_free(r);
    *cpu = lc.c_done - lc.c_start;
    return lc.t_done - lc.t_start;
}

static double time_grad(hr_grad *g, const int32_t *win, int W, int K) {
    hr_grad_zero(g);
    double t0 = hr_time_now();
    for (int w = 0; w < K; w++)
        if (hr_grad_accumulate(g, win + (size_t)w * W, W, 1.0f / K, NULL) != HR_OK) return -1;
    return hr_time_now() - t0;
}

int main(int argc, char **argv) {
    const char *model = NULL, *ids_path = NULL, *what = "forward,gates,weights", *csv = NULL;
    int W = 128, K = 1, threads = 2, repeats = 3, bos = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            model = a;
            continue;
        }
        if (i + 1 >= argc) goto usage;
        const char *v = argv[++i];
        if (!strcmp(a, "--ids")) ids_path = v;
        else if (!strcmp(a, "--window")) W = atoi(v);
        else if (!strcmp(a, "--windows")) K = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--repeats")) repeats = atoi(v);
        else if (!strcmp(a, "--what")) what = v;
        else if (!strcmp(a, "--bos")) bos = atoi(v);
        else if (!strcmp(a, "--csv")) csv = v;
        else goto usage;
    }
    if (!model || !ids_path || W < 2 || K < 1 || repeats < 1) goto usage;
    hr_model *m = NULL;
    if (hr_model_load(model, &m) != HR_OK) {
        fprintf(stderr, "hr_bench_grad: %s\n", hr_last_error());
        return 1;
    }
    size_t n_ids = 0;
    int32_t *ids = read_ids(ids_path, &n_ids);
    if (!ids || n_ids < (size_t)K * (W - 1)) {
        fprintf(stderr, "hr_bench_grad: %zu ids, need %d\n", n_ids, K * (W - 1));
        return 1;
    }
    int32_t *win = malloc(sizeof(int32_t) * (size_t)K * W); // (K, W)
    for (int w = 0; w < K; w++) {
        win[(size_t)w * W] = bos;
        memcpy(win + (size_t)w * W + 1, ids + (size_t)w * (W - 1), sizeof(int32_t) * (size_t)(W - 1));
    }
    int vocab = hr_config_vocab_size(hr_model_config(m));
    float *logits = malloc(sizeof(float) * (size_t)W * vocab); // (W, vocab)
    hr_params *P = NULL;
    hr_params_new(m, NULL, &P);
    const char *items[] = {"forward", "gates", "weights", "recompute"};
    for (int it = 0; it < 4; it++) {
        const char *hit = strstr(what, items[it]);
        if (!hit || (hit > what && hit[-1] == ':')) continue; /* "lab:..." items are not these */
        hr_grad *g = NULL;
        if (it > 0) {
            hr_grad_params gp = hr_grad_default_params();
            gp.n_threads = threads;
            gp.max_tokens = W;
            gp.kinds = it == 2 ? HR_GRAD_WEIGHTS : HR_GRAD_KIND(HR_PARAM_HEAD_GATE);
            gp.recompute = it == 3;
            if (hr_grad_new(P, &gp, &g) != HR_OK) {
                fprintf(stderr, "hr_bench_grad: %s\n", hr_last_error());
                return 1;
            }
        }
        double best = 1e30, best_cpu = 1e30;
        for (int r = 0; r <= repeats; r++) { /* run 0 warms up (packing, first-touch) */
            double c0 = cpu_now();
            double s = it == 0 ? time_forward(m, win, W, K, threads, logits) : time_grad(g, win, W, K);
            double cs = cpu_now() - c0;
            if (s < 0) {
                fprintf(stderr, "hr_bench_grad: %s failed: %s\n", items[it], hr_last_error());
                return 1;
            }
            if (r > 0 && s < best) best = s;
            if (r > 0 && cs < best_cpu) best_cpu = cs;
        }
        printf("RESULT what=%s seconds=%.4f cpu_seconds=%.4f per_window_ms=%.2f bytes=%zu\n", items[it], best, best_cpu,
               1e3 * best / K, g ? hr_grad_bytes(g) : (size_t)0);
        fflush(stdout);
        hr_grad_free(g);
    }
    hr_params_free(P);
    for (const char *s = strstr(what, "lab:"); s; s = strstr(s + 4, "lab:")) {
        char method[32], path[1024];
        size_t len = strcspn(s + 4, ",");
        snprintf(method, sizeof method, "%.*s", (int)len, s + 4);
        snprintf(path, sizeof path, "%s-%s.csv", csv ? csv : "", method);
        hr_context *ctx = NULL;
        hr_context_params cp = hr_context_default_params();
        cp.n_threads = threads;
        cp.n_ctx = W;
        if (hr_context_new(m, &cp, &ctx) != HR_OK) return 1;
        double best = 1e30, best_cpu = 1e30;
        for (int r = 0; r <= repeats; r++) {
            double cs, t = time_lab(ctx, method, ids, n_ids, W, K, bos, csv && r == 0 ? path : NULL, &cs);
            if (t < 0) {
                fprintf(stderr, "hr_bench_grad: lab %s failed: %s\n", method, hr_last_error());
                return 1;
            }
            if (r > 0 && t < best) best = t;
            if (r > 0 && cs < best_cpu) best_cpu = cs;
        }
        printf("RESULT what=lab:%s seconds=%.4f cpu_seconds=%.4f per_window_ms=%.2f\n", method, best, best_cpu,
               1e3 * best / K);
        fflush(stdout);
        hr_context_free(ctx);
    }
    free(logits), free(win), free(ids);
    hr_model_free(m);
    return 0;
usage:
    fprintf(stderr, "usage: hr_bench_grad MODEL --ids FILE --window W --windows K [--threads T] [--repeats R] "
                    "[--what forward,gates,weights,recompute,lab:METHOD...] [--bos ID] [--csv PREFIX]\n");
    return 2;
}
