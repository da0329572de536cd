/* hr_bench: prefill and decode throughput of headroom's forward pass.
 *
 * Mirrors bench/bench_ref.py exactly (same token ids, same phases) so the
 * two can be compared line by line; bench/bench_forward.sh runs both.
 *   prefill N  : one hr_forward over N fresh tokens, last position's logits
 *   decode  M  : after an untimed P-token prompt, M single-token forwards,
 *                each producing the logits of its token
 * Each phase is preceded by one untimed warm-up (page faults of the mapped
 * weights, first-touch of the KV cache) and repeated; best and median times
 * are printed as "RESULT" lines.
 */
#include "headroom/context.h"
#include "headroom/model.h"
#include "core/internal.h"
#include "engine/kernels_isa.h"
#include "model/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PREFILL 16

typedef struct {
    const char *model;
    int threads, repeats, prompt, decode, blas, bf16_dot, int8_dot;
    int prefill[MAX_PREFILL];
    int n_prefill;
} options;

/* The benchmark's token stream, shared with bench_ref.py. */
static int32_t bench_token(int i, int vocab) {
    return (int32_t)(((uint64_t)i * 2654435761ull + 12345ull) % (uint64_t)vocab);
}

static int g_blas;     /* labels results of the OpenBLAS-prefill variant */
static int g_bf16_dot; /* labels results of the bf16-dot variant */
static int g_int8_dot; /* labels results of the int8-dot variant */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *phase, int n, double *t, int reps) {
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    double med = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
    printf("RESULT impl=headroom%s%s%s phase=%s n=%d best_s=%.6f median_s=%.6f tok_s=%.2f\n", g_blas ? "-blas" : "",
           g_bf16_dot ? "-bf16dot" : "", g_int8_dot ? "-int8dot" : "", phase, n, t[0], med, n / t[0]);
    fflush(stdout);
}

static hr_status time_prefill(hr_context *ctx, const int32_t *tok, int n, float *logits, double *sec) {
    hr_status st = hr_context_truncate(ctx, 0);
    if (st < 0) return st;
    double t0 = hr_time_now();
    st = hr_forward(ctx, tok, n, logits, false);
    *sec = hr_time_now() - t0;
    return st;
}

static hr_status time_decode(hr_context *ctx, const int32_t *tok, int prompt, int m, float *logits, double *sec) {
    hr_status st = hr_context_truncate(ctx, 0);
    if (st == HR_OK) st = hr_forward(ctx, tok, prompt, logits, false);
    double t0 = hr_time_now();
    for (int i = 0; i < m && st == HR_OK; i++) st = hr_forward(ctx, tok + prompt + i, 1, logits, false);
    *sec = hr_time_now() - t0;
    return st;
}

static hr_status bench(const options *o, hr_context *ctx, const int32_t *tok, float *logits) {
    double *t = malloc((size_t)o->repeats * sizeof *t); // (repeats)
    if (!t) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_status st = HR_OK;
    for (int p = 0; p < o->n_prefill && st == HR_OK; p++) {
        double warm;
        st = time_prefill(ctx, tok, o->prefill[p], logits, &warm);
        for (int r = 0; r < o->repeats && st == HR_OK; r++) st = time_prefill(ctx, tok, o->prefill[p], logits, &t[r]);
        if (st == HR_OK) report("prefill", o->prefill[p], t, o->repeats);
    }
    if (o->decode > 0 && st == HR_OK) {
        double warm;
        st = time_decode(ctx, tok, o->prompt, o->decode, logits, &warm);
        for (int r = 0; r < o->repeats && st == HR_OK; r++)
            st = time_decode(ctx, tok, o->prompt, o->decode, logits, &t[r]);
        if (st == HR_OK) report("decode", o->decode, t, o->repeats);
    }
    free(t);
    return st;
}

static hr_status run(const options *o) {
    hr_model *m = NULL;
    hr_context *ctx = NULL;
    int32_t *tok = NULL;  // (n_tok)
    float *logits = NULL; // (vocab)
    hr_status st = hr_model_load(o->model, &m);
    if (st < 0) return st;
    const hr_config *c = hr_model_config(m);
    int n_tok = o->prompt + o->decode;
    for (int p = 0; p < o->n_prefill; p++) n_tok = o->prefill[p] > n_tok ? o->prefill[p] : n_tok;
    if (n_tok > c->seq_len) {
        hr_model_free(m);
        return hr_err(HR_ERR_RANGE, "benchmark needs %d positions, model has %d", n_tok, c->seq_len);
    }
    hr_context_params p = hr_context_default_params();
    p.n_threads = o->threads;
    p.blas_prefill = o->blas != 0;
    p.bf16_dot = o->bf16_dot != 0;
    p.int8_dot = o->int8_dot != 0;
    p.n_ctx = n_tok;
    st = hr_context_new(m, &p, &ctx);
    tok = malloc((size_t)n_tok * sizeof *tok);
    logits = malloc((size_t)c->vocab_size * sizeof *logits);
    if (st == HR_OK && (!tok || !logits)) st = hr_err(HR_ERR_NOMEM, "out of memory");
    if (st == HR_OK) {
        for (int i = 0; i < n_tok; i++) tok[i] = bench_token(i, c->vocab_size);
        printf("# headroom: %s, %d threads, n_ctx %d%s%s\n", o->model, o->threads, n_tok,
               o->bf16_dot ? (hr_cpu_bf16_hw() ? ", bf16 dot (VDPBF16PS)" : ", bf16 dot (emulated)") : "",
               o->int8_dot ? (hr_cpu_int8_hw() ? ", int8 dot (VPDPBUSD)" : ", int8 dot (emulated)") : "");
        st = bench(o, ctx, tok, logits);
    }
    free(logits);
    free(tok);
    hr_context_free(ctx);
    hr_model_free(m);
    return st;
}

static int parse_list(const char *s, options *o) {
    o->n_prefill = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v <= 0 || v > 1 << 20 || o->n_prefill == MAX_PREFILL) return -1;
        o->prefill[o->n_prefill++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, options *o) {
    *o = (options){.threads = 2, .repeats = 5, .prompt = 64, .decode = 64, .prefill = {128, 512}, .n_prefill = 2};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            o->model = a;
            continue;
        }
        if (i + 1 >= argc) return -1;
        const char *v = argv[++i];
        if (strcmp(a, "--threads") == 0) o->threads = atoi(v);
        else if (strcmp(a, "--blas") == 0) o->blas = atoi(v);
        else if (strcmp(a, "--bf16-dot") == 0) o->bf16_dot = atoi(v);
        else if (strcmp(a, "--int8-dot") == 0) o->int8_dot = atoi(v);
        else if (strcmp(a, "--repeats") == 0) o->repeats = atoi(v);
        else if (strcmp(a, "--prompt") == 0) o->prompt = atoi(v);
        else if (strcmp(a, "--decode") == 0) o->decode = atoi(v);
        else if (strcmp(a, "--prefill") == 0) {
            if (parse_list(v, o) < 0) return -1;
        } else return -1;
    }
    if (!o->model || o->repeats < 1 || o->prompt < 1 || o->decode < 0 || o->threads < 0) return -1;
    return 0;
}

int main(int argc, char **argv) {
    options o;
    if (parse_args(argc, argv, &o) < 0) {
        fprintf(stderr, "usage: hr_bench MODEL [--threads 2] [--prefill 128,512] [--prompt 64]\n"
                        "         [--decode 64] [--repeats 5] [--blas 0|1] [--bf16-dot 0|1] [--int8-dot 0|1]\n");
        return 2;
    }
    g_blas = o.blas;
    g_bf16_dot = o.bf16_dot;
    g_int8_dot = o.int8_dot;
    hr_status st = run(&o);
    if (st < 0) {
        fprintf(stderr, "hr_bench: %s: %s\n", hr_status_str(st), hr_last_error());
        return 1;
    }
    return 0;
}
