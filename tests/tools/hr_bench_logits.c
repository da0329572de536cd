/* hr_bench_logits: the C side of bench/bench_python.sh — what
 * headroom.Model.logits(ids) does, called from C: one hr_forward over n
 * fresh tokens writing every position's logits ((n, vocab) floats) into a
 * buffer the caller owns, in a context like the Python package's (n_ctx =
 * seq_len, n_batch = seq_len). Tokens are bench/bench_python.py's
 * (i * 2654435761 + 12345) mod vocab. After one untimed warm-up, each of
 * --repeats runs is timed; prints "RESULT impl=c ... best_s median_s".
 *
 * usage: hr_bench_logits MODEL [--n 128] [--threads 2] [--repeats 20]
 */
#include "headroom/context.h"
#include "headroom/model.h"
#include "core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static hr_status run(const char *path, int n, int threads, int repeats) {
    hr_model *m = NULL;
    hr_context *ctx = NULL;
    int32_t *tok = NULL;  // (n)
    float *logits = NULL; // (n, vocab)
    double *t = NULL;     // (repeats) seconds
    hr_status st = hr_model_load(path, &m);
    if (st != HR_OK) return st;
    int vocab = hr_config_vocab_size(hr_model_config(m)), seq = hr_config_seq_len(hr_model_config(m));
    hr_context_params p = hr_context_default_params();
    p.n_threads = threads;
    p.n_batch = seq;
    if (n > seq) st = hr_err(HR_ERR_RANGE, "%d tokens exceed the model's context %d", n, seq);
    if (st == HR_OK) st = hr_context_new(m, &p, &ctx);
    tok = malloc(sizeof *tok * (size_t)n);
    logits = malloc(sizeof *logits * (size_t)n * (size_t)vocab);
    t = malloc(sizeof *t * (size_t)repeats);
    if (st == HR_OK && (!tok || !logits || !t)) st = hr_err(HR_ERR_NOMEM, "out of memory");
    for (int i = 0; st == HR_OK && i < n; i++)
        tok[i] = (int32_t)(((uint64_t)i * 2654435761ull + 12345ull) % (uint64_t)vocab);
    for (int r = -1; st == HR_OK && r < repeats; r++) { /* r = -1: the warm-up */
        double t0 = hr_time_now();
        st = hr_context_truncate(ctx, 0);
        if (st == HR_OK) st = hr_forward(ctx, tok, n, logits, true);
        if (r >= 0) t[r] = hr_time_now() - t0;
    }
    if (st == HR_OK) {
        qsort(t, (size_t)repeats, sizeof *t, cmp_double);
        double med = repeats % 2 ? t[repeats / 2] : 0.5 * (t[repeats / 2 - 1] + t[repeats / 2]);
        printf("RESULT impl=c what=logits n=%d threads=%d best_s=%.6f median_s=%.6f\n", n, threads, t[0], med);
    }
    free(t);
    free(logits);
    free(tok);
    hr_context_free(ctx);
    hr_model_free(m);
    return st;
}

int main(int argc, char **argv) {
    const char *model = NULL;
    int n = 128, threads = 2, repeats = 20, bad = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] != '-') model = argv[i];
        else if (i + 1 < argc && !strcmp(argv[i], "--n")) n = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--threads")) threads = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--repeats")) repeats = atoi(argv[++i]);
        else bad = 1;
    }
    if (bad || !model || n < 1 || threads < 0 || repeats < 1) {
        fprintf(stderr, "usage: hr_bench_logits MODEL [--n 128] [--threads 2] [--repeats 20]\n");
        return 2;
    }
    hr_status st = run(model, n, threads, repeats);
    if (st != HR_OK) fprintf(stderr, "hr_bench_logits: %s: %s\n", hr_status_str(st), hr_last_error());
    return st == HR_OK ? 0 : 1;
}
