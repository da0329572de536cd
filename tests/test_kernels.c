/* Optimised kernels against their naive references. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/kernels.h"
#include "engine/kernels_isa.h"
#include "headroom/context.h"
#include "engine/pool.h"
#include "io/hf_internal.h"
#include "typed_util.h"

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((float)(*s >> 8) / (float)(1u << 24)) * 2.0f - 1.0f;
}

static float *rand_buf(size_t n, unsigned seed) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = frand(&seed);
    return p;
}

static float *packed(const float *w, int dout, int din) {
    float *wp = aligned_alloc(64, (hr_packed_floats(dout, din) * sizeof(float) + 63) & ~(size_t)63);
    hr_pack_panels(wp, w, dout, din, 0, (dout + 15) / 16);
    return wp;
}

static size_t n_bits_differ(const float *a, const float *b, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += memcmp(a + i, b + i, sizeof(float)) != 0;
    return bad;
}

/* Shapes cover one token (GEMV), 2-3 tokens (per-token chains), partial
 * 8-token tiles, odd panel counts, d_out not a multiple of 16 and d_in
 * beyond one 256-wide K block. */
static const int shapes[][3] = {{1, 64, 64},    {1, 67, 13},  {1, 576, 1536}, {3, 64, 172}, {17, 100, 33},
                                {64, 576, 192}, {9, 600, 48}, {130, 300, 80}, {8, 513, 16}, {21, 1536, 40}};

static void matmul_matches_double_reference_and_the_fmaf_chain_bit_for_bit(void) {
    for (int threads = 1; threads <= 3; threads++) {
        hr_pool *pool = NULL;
        hr_pool_new(threads, &pool);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int n = shapes[s][0], din = shapes[s][1], dout = shapes[s][2];
            float *x = rand_buf((size_t)n * din, 1), *w = rand_buf((size_t)dout * din, 2), *wp = packed(w, dout, din);
            float *y = calloc((size_t)n * dout, 4), *yr = calloc((size_t)n * dout, 4),
                  *yc = calloc((size_t)n * dout, 4);
            hr_matmul(pool, y, x, hr_panels_f32(wp), n, din, dout);
            hr_matmul_ref(yr, x, w, n, din, dout);
            hr_matmul_packed_ref(yc, x, wp, n, din, dout);
            char label[64];
            snprintf(label, sizeof label, "matmul %dx%dx%d, %d threads", n, din, dout, threads);
            double d = hr_t_maxdiff(label, y, yr, (size_t)n * dout);
            CHECK(d < 1e-4, "%s: %g", label, d);
            size_t bad = n_bits_differ(y, yc, (size_t)n * dout);
            CHECK(bad == 0, "%s: %zu outputs differ from the fmaf chain", label, bad);
            free(x), free(w), free(wp), free(y), free(yr), free(yc);
        }
        hr_pool_free(pool);
    }
}

static void batched_rows_equal_one_token_products_bit_for_bit(void) {
    hr_pool *pool = NULL;
    hr_pool_new(2, &pool);
    int n = 37, din = 333, dout = 70;
    float *x = rand_buf((size_t)n * din, 5), *w = rand_buf((size_t)dout * din, 6), *wp = packed(w, dout, din);
    float *y = calloc((size_t)n * dout, 4), *y1 = calloc((size_t)dout, 4);
    hr_matmul(pool, y, x, hr_panels_f32(wp), n, din, dout);
    size_t bad = 0;
    for (int t = 0; t < n; t++) {
        hr_matmul(pool, y1, x + (size_t)t * din, hr_panels_f32(wp), 1, din, dout);
        bad += n_bits_differ(y + (size_t)t * dout, y1, (size_t)dout);
    }
    CHECK(bad == 0, "%zu outputs of the batch differ from one-token products", bad);
    free(x), free(w), free(wp), free(y), free(y1);
    hr_pool_free(pool);
}

static void one_job_for_several_products_equals_separate_calls(void) {
    hr_pool *pool = NULL;
    hr_pool_new(2, &pool);
    int dims[3] = {96, 40, 33}, din = 70;
    for (int n = 1; n <= 21; n += 10) {
        float *x = rand_buf((size_t)n * din, 40), *w[3], *wp[3], *y[3], *ys[3];
        hr_matmul_out outs[3];
        for (int m = 0; m < 3; m++) {
            w[m] = rand_buf((size_t)dims[m] * din, 41 + m), wp[m] = packed(w[m], dims[m], din);
            y[m] = calloc((size_t)n * dims[m], 4), ys[m] = calloc((size_t)n * dims[m], 4);
            outs[m] = (hr_matmul_out){y[m], w[m], hr_panels_f32(wp[m]), dims[m]};
            hr_matmul(pool, ys[m], x, hr_panels_f32(wp[m]), n, din, dims[m]);
        }
        hr_matmul_multi(pool, x, n, din, outs, 3, false, NULL, NULL);
        size_t bad = 0;
        for (int m = 0; m < 3; m++) bad += n_bits_differ(y[m], ys[m], (size_t)n * dims[m]);
        CHECK(bad == 0, "%d tokens: %zu outputs differ", n, bad);
        for (int m = 0; m < 3; m++) free(w[m]), free(wp[m]), free(y[m]), free(ys[m]);
        free(x);
    }
    hr_pool_free(pool);
}

static void vectorised_swiglu_matches_libm_reference_including_extremes(void) {
    int n = 203;
    float *g = rand_buf((size_t)n, 12), *u = rand_buf((size_t)n, 13), h[203], hr[203];
    for (int i = 0; i < n; i++) g[i] *= 12.0f;
    g[0] = 100.0f, g[1] = -100.0f, g[2] = 0.0f, g[3] = 88.0f, g[4] = -88.0f;
    hr_swiglu(h, g, u, n);
    hr_swiglu_ref(hr, g, u, n);
    double d = 0;
    for (int i = 0; i < n; i++) d = fmax(d, fabs(h[i] - hr[i]) / fmax(1.0, fabs(hr[i])));
    printf("    swiglu: max relative diff %.3g over %d values\n", d, n);
    CHECK(d < 1e-6, "swiglu differs by %g", d);
    free(g), free(u);
}

static void rope_with_tables_matches_reference(void) {
    int heads = 3, hd = 16;
    for (int pos = 0; pos < 600; pos += 37) {
        float *a = rand_buf((size_t)heads * hd, 5), *b = malloc(sizeof(float) * heads * hd);
        memcpy(b, a, sizeof(float) * heads * hd);
        float ct[8], st[8];
        double fr[8];
        hr_rope_freqs(fr, hd, 10000.0f, 0, 0, 0, 0);
        hr_rope_table(ct, st, fr, hd, pos);
        hr_rope(a, heads, hd, ct, st);
        hr_rope_ref(b, heads, hd, pos, 10000.0f);
        double d = 0;
        for (int i = 0; i < heads * hd; i++) d = fmax(d, fabs(a[i] - b[i]));
        CHECK(d < 1e-5, "pos %d diff %g", pos, d);
        free(a), free(b);
    }
}

static void layernorm_matches_reference(void) {
    int dim = 77;
    float *x = rand_buf((size_t)dim, 9), *g = rand_buf((size_t)dim, 10), *b = rand_buf((size_t)dim, 11);
    float y[77], yr[77];
    for (int i = 0; i < dim; i++) x[i] = x[i] * 3 + 5; /* non-zero mean */
    hr_layernorm(y, x, g, b, dim, 1e-5f);
    hr_layernorm_ref(yr, x, g, b, dim, 1e-5f);
    CHECK(hr_t_maxdiff("layernorm", y, yr, (size_t)dim) < 1e-5, "mismatch");
    free(x), free(g), free(b);
}

static void softmax_sums_to_one_and_survives_large_inputs(void) {
    float x[5] = {1000, 1001, 999, -1e30f, 1000};
    hr_softmax(x, 5);
    double s = 0;
    for (int i = 0; i < 5; i++) s += x[i];
    CHECK(fabs(s - 1) < 1e-6, "sum %g", s);
    CHECK(x[1] > x[0] && x[3] == 0, "ordering");
}

static void vectorised_softmax_matches_double_precision_reference(void) {
    int lens[] = {1, 5, 16, 17, 100, 513};
    for (int k = 0; k < 6; k++) {
        int n = lens[k];
        float *a = rand_buf((size_t)n, 20 + k), *b = malloc(sizeof(float) * n);
        for (int i = 0; i < n; i++) a[i] *= 30; /* spread: some weights underflow */
        memcpy(b, a, sizeof(float) * n);
        hr_softmax(a, n);
        hr_softmax_ref(b, n);
        char label[32];
        snprintf(label, sizeof label, "softmax n=%d", n);
        CHECK(hr_t_maxdiff(label, a, b, (size_t)n) < 1e-6, "%s", label);
        free(a), free(b);
    }
}

/* The double-precision log-sum-exp against libm's exp summed in order and
 * against long double; the llama.cpp NLL against a long-double NLL. Rows
 * of logits spread over [-60, 60] (a few entries underflow below -700 after
 * the shift, which must give exactly 0), lengths around the 8-lane blocks. */
static void vectorised_exp_sums_and_log_probabilities_match_references(void) {
    int lens[] = {1, 7, 8, 9, 100, 513, 49152};
    double worst_sum = 0, worst_lse = 0, worst_nll = 0, worst_dot = 0;
    for (int k = 0; k < 7; k++) {
        int n = lens[k];
        float *x = rand_buf((size_t)n, 40 + k), *y = rand_buf((size_t)n, 90 + k);
        for (int i = 0; i < n; i++) x[i] *= 60;
        if (n > 9) x[3] = -1000, x[n - 1] = -2000; /* exp(x - max) < 1e-304: 0 */
        double m = hr_max_f32(x, n);
        long double ms = -INFINITY, ls = 0, dot = 0;
        for (int i = 0; i < n; i++) ms = x[i] > ms ? x[i] : ms;
        for (int i = 0; i < n; i++) ls += expl((long double)x[i] - ms), dot += (long double)x[i] * y[i];
        double s = hr_sum_exp(x, n, m), sr = hr_sum_exp_ref(x, n, m);
        double lse = hr_logsumexp(x, n), lse_ref = (double)(ms + logl(ls));
        double d_sum = fabs(s - sr) / sr, d_lse = fabs(lse - lse_ref);
        int tok = n / 2;
        double nll = hr_token_nll_llamacpp(x, n, tok), nll_ref = (double)(lse_ref - x[tok]);
        double d_nll = fabs(nll - nll_ref), d_nll2 = fabs(hr_token_nll(x, n, tok) - nll_ref);
        double d_dot = fabs(hr_dot_f64(x, y, n) - (double)dot), d_dot_ref = fabs(hr_dot_f64_ref(x, y, n) - (double)dot);
        CHECK(m == (double)ms, "max n=%d", n);
        /* two summation orders of up to 49152 terms: ~sqrt(n) ulps apart */
        CHECK(d_sum <= 1e-13, "sum_exp n=%d: relative difference %.3g", n, d_sum);
        CHECK(d_lse <= 1e-12 * (1 + fabs(lse_ref)), "logsumexp n=%d: %.3g", n, d_lse);
        CHECK(d_nll2 <= 1e-12 * (1 + fabs(nll_ref)), "token_nll n=%d: %.3g", n, d_nll2);
        /* float differences and expf: single-precision rounding of each term */
        CHECK(d_nll <= 1e-5 * (1 + fabs(nll_ref)), "llama.cpp nll n=%d: %.3g", n, d_nll);
        CHECK(d_dot <= 1e-12 * (1 + fabs((double)dot)) && d_dot_ref <= 1e-12 * (1 + fabs((double)dot)), "dot n=%d", n);
        if (d_sum > worst_sum) worst_sum = d_sum;
        if (d_lse > worst_lse) worst_lse = d_lse;
        if (d_nll > worst_nll) worst_nll = d_nll;
        if (d_dot > worst_dot) worst_dot = d_dot;
        free(x), free(y);
    }
    printf("    max differences: sum_exp %.3g (relative, vs libm), logsumexp %.3g, llama.cpp NLL %.3g, dot %.3g "
           "(vs long double)\n",
           worst_sum, worst_lse, worst_nll, worst_dot);
    float small[19]; /* terms below the cut-off are 0 in the vector lanes and the tail; e^0 is exact */
    for (int i = 0; i < 19; i++) small[i] = -800;
    small[5] = 0;
    CHECK(hr_sum_exp(small, 19, 0) == 1.0 && hr_logsumexp(small, 19) == 0.0, "underflowing terms");
}

static void attention_scores_and_values_on_transposed_cache_match_references(void) {
    int cases[][3] = {{12, 40, 33}, {64, 300, 257}, {8, 16, 1}, {6, 90, 64}};
    for (int c = 0; c < 4; c++) {
        int hd = cases[c][0], ld = cases[c][1], len = cases[c][2];
        float *q = rand_buf((size_t)hd, 30), *kt = rand_buf((size_t)hd * ld, 31);
        float *s = calloc((size_t)ld, 4), *r = calloc((size_t)ld, 4), *o = calloc((size_t)hd, 4),
              *od = calloc((size_t)hd, 4);
        hr_attn_scores(s, q, kt, ld, hd, len, 0.5f);
        hr_attn_scores_ref(r, q, kt, ld, hd, len, 0.5f);
        CHECK(hr_t_maxdiff("attention scores", s, r, (size_t)len) < 1e-5, "case %d", c);
        hr_attn_values(o, s, kt, ld, hd, len);
        hr_attn_values_ref(od, s, kt, ld, hd, len);
        CHECK(hr_t_maxdiff("attention values", o, od, (size_t)hd) < 1e-5, "case %d", c);
        free(q), free(kt), free(s), free(r), free(o), free(od);
    }
}

static void multi_query_case(int hd) {
    int ld = 200, ctx = 160, os = hd + 3; /* output rows with 3 sentinel floats after each */
    float *kt = rand_buf((size_t)hd * ld, 20), *vt = rand_buf((size_t)hd * ld, 21), *q = rand_buf((size_t)4 * hd, 22);
    for (int nq = 1; nq <= 4; nq++)
        for (int base = 1; base < ctx - 4; base += 13) { /* causal lengths base+1 .. base+nq, across block edges */
            int len[4];
            for (int i = 0; i < nq; i++) len[i] = base + i + 1;
            float *s = calloc((size_t)4 * ctx, 4), *o = malloc((size_t)4 * os * 4); // (4, os)
            for (int k = 0; k < 4 * os; k++) o[k] = -7.0f;
            float *s1 = calloc((size_t)ctx, 4), o1[66];
            hr_attn_scores_multi(s, (size_t)ctx, q, (size_t)hd, nq, kt, ld, hd, len[nq - 1], 0.3f);
            for (int i = 0; i < nq; i++) hr_softmax(s + (size_t)i * ctx, len[i]);
            hr_attn_values_multi(o, (size_t)os, s, (size_t)ctx, nq, vt, ld, hd, len);
            size_t bad = 0;
            for (int i = 0; i < nq; i++) {
                hr_attn_scores(s1, q + (size_t)i * hd, kt, ld, hd, len[i], 0.3f);
                hr_softmax(s1, len[i]);
                hr_attn_values(o1, s1, vt, ld, hd, len[i]);
                bad += n_bits_differ(s + (size_t)i * ctx, s1, (size_t)len[i]) +
                       n_bits_differ(o + (size_t)i * os, o1, (size_t)hd);
                for (int k = hd; k < os; k++) bad += o[(size_t)i * os + k] != -7.0f;
            }
            CHECK(bad == 0, "head_dim %d, %d queries from length %d: %zu values differ", hd, nq, base + 1, bad);
            free(s), free(o), free(s1);
        }
    free(kt), free(vt), free(q);
}

/* Head dims 24 and 64 and ones that are no multiple of the kernels' group
 * of dims (the last group's stores are masked): outputs past head_dim in
 * each query's row keep their sentinel. */
static void multi_query_attention_equals_one_query_at_a_time_bit_for_bit(void) {
    static const int hds[] = {24, 64, 2, 6, 10, 66};
    for (size_t h = 0; h < sizeof hds / sizeof *hds; h++) multi_query_case(hds[h]);
}

static void pool_runs_every_task_exactly_once(void) {
    hr_pool *pool = NULL;
    CHECK(hr_pool_new(3, &pool) == HR_OK, "pool");
    static int hits[1000];
    for (int rep = 0; rep < 200; rep++) {
        memset(hits, 0, sizeof hits);
        int n = 1 + (rep * 37) % 1000;
        void task(void *arg, int i);
        hr_pool_run(pool, task, hits, n);
        int bad = 0;
        for (int i = 0; i < 1000; i++) bad += hits[i] != (i < n);
        CHECK(bad == 0, "rep %d: %d tasks run wrongly", rep, bad);
    }
    hr_pool_free(pool);
    hr_pool_free(NULL);
}

void task(void *arg, int i) { __atomic_fetch_add(&((int *)arg)[i], 1, __ATOMIC_RELAXED); }

/* Workers finishing one job while the next starts must neither run a task
 * twice nor let the caller return before every task of its job ran: many
 * tiny jobs back to back, each checked right after it returns. */
static void back_to_back_tiny_jobs_run_each_task_once_before_returning(void) {
    hr_pool *pool = NULL;
    CHECK(hr_pool_new(2, &pool) == HR_OK, "pool");
    static int hits[2][8];
    int bad_jobs = 0;
    for (int rep = 0; rep < 200000; rep++) {
        int *h = hits[rep & 1], n = 2 + rep % 7;
        memset(h, 0, sizeof hits[0]);
        hr_pool_run(pool, task, h, n);
        int bad = 0;
        for (int i = 0; i < 8; i++) bad += __atomic_load_n(&h[i], __ATOMIC_RELAXED) != (i < n);
        bad_jobs += bad != 0;
    }
    CHECK(bad_jobs == 0, "%d of 200000 jobs ran a task twice, not at all, or after returning", bad_jobs);
    hr_pool_free(pool);
}

/* bf16, f16, Q8_0 and per-channel int8 panels: the product (every batch size, 1-3 threads)
 * equals, bit for bit, the f32 product over the loader's dequantized
 * weights (hr_dequant_to_f32), and the scalar typed reference; the rotate-
 * half row permutation at packing equals the loader's hr_qk_to_interleaved.
 * Weights include f16 subnormals and zeros (tiny entries); int8 rows get
 * scales from 2^-90 to 2^40 (their products scale * q round). */
static void typed_panels_equal_the_f32_product_over_dequantized_weights(void) {
    /* {1, 67, 70}, {1, 67, 64}: one token (the GEMV), odd d_in over four panels at once and a fifth (bf16 and f16
     * only: 8-bit rows are whole 32-blocks); {19, ..}, {37, ..}, {41, ..}: more tokens than two register tiles, so the
     * GEMM unpacks each K-block to f32 once for them, with partial tiles, panels and K-blocks */
    static const int tshapes[][3] = {{1, 64, 64}, {2, 320, 40}, {3, 96, 13}, {4, 288, 50},  {19, 544, 33},
                                     {9, 64, 16}, {1, 67, 70},  {1, 67, 64}, {37, 288, 35}, {41, 291, 20}};
    for (int t = HR_WT_BF16; t <= HR_WT_I8; t++) {
        double worst = 0;
        size_t bad = 0, bad_ref = 0, bad_perm = 0;
        for (int threads = 1; threads <= 3; threads += 2) {
            hr_pool *pool = NULL;
            hr_pool_new(threads, &pool);
            for (size_t s = 0; s < sizeof tshapes / sizeof tshapes[0]; s++) {
                int n = tshapes[s][0], din = tshapes[s][1], dout = tshapes[s][2];
                if ((t == HR_WT_Q8_0 || t == HR_WT_I8) && din % 32) continue;
                float *x = rand_buf((size_t)n * din, 7), *w = rand_buf((size_t)dout * din, 8);
                for (size_t i = 0; i < (size_t)dout * din; i += 7) w[i] *= i % 2 ? 1e-6f : 0.0f;
                for (int r = 0; t == HR_WT_I8 && r < dout; r++) /* rows of very different sizes */
                    for (int k = 0; k < din; k++) w[(size_t)r * din + k] *= ldexpf(1.0f, (r * 37) % 131 - 90);
                float *deq = malloc((size_t)dout * din * sizeof(float));
                unsigned char *enc = NULL;
                size_t rb = hr_t_encode((hr_wtype)t, w, dout, din, &enc, deq);
                void *tp = hr_t_pack_typed((hr_wtype)t, enc, rb, 0, 0, dout, din);
                float *fp = packed(deq, dout, din);
                float *y = calloc((size_t)n * dout, 4), *yf = calloc((size_t)n * dout, 4),
                      *yt = calloc((size_t)n * dout, 4);
                hr_panels p = {tp, (hr_wtype)t};
                hr_matmul(pool, y, x, p, n, din, dout);
                hr_matmul_packed_ref(yf, x, fp, n, din, dout);
                hr_matmul_panels_ref(yt, x, p, n, din, dout);
                for (size_t i = 0; i < (size_t)n * dout; i++) {
                    double d = fabs((double)y[i] - yf[i]);
                    worst = d > worst ? d : worst;
                }
                bad += n_bits_differ(y, yf, (size_t)n * dout);
                bad_ref += n_bits_differ(yt, yf, (size_t)n * dout);
                if (dout % 16 == 0) { /* rotate-half Q/K rows of heads of 16 */
                    void *pp = hr_t_pack_typed((hr_wtype)t, enc, rb, dout / 16, 16, dout, din);
                    float *tmp = malloc((size_t)16 * din * sizeof(float));
                    hr_qk_to_interleaved(deq, dout / 16, 16, (size_t)din, tmp);
                    float *fpp = packed(deq, dout, din);
                    hr_panels pq = {pp, (hr_wtype)t};
                    hr_matmul(pool, y, x, pq, n, din, dout);
                    hr_matmul_packed_ref(yf, x, fpp, n, din, dout);
                    bad_perm += n_bits_differ(y, yf, (size_t)n * dout);
                    free(pp), free(tmp), free(fpp);
                }
                free(x), free(w), free(deq), free(enc), free(tp), free(fp), free(y), free(yf), free(yt);
            }
            hr_pool_free(pool);
        }
        printf("    %-4s panels vs f32 over the dequantized weights: max |diff| %g, %zu outputs differ "
               "(typed ref %zu, permuted %zu)\n",
               hr_wtype_name((hr_wtype)t), worst, bad, bad_ref, bad_perm);
        CHECK(worst == 0 && bad == 0, "%s: typed product differs from the f32 one", hr_wtype_name((hr_wtype)t));
        CHECK(bad_ref == 0, "%s: typed reference differs", hr_wtype_name((hr_wtype)t));
        CHECK(bad_perm == 0, "%s: permuted rows differ", hr_wtype_name((hr_wtype)t));
    }
    CHECK(hr_packed_bytes(HR_WT_Q8_0, 16, 48) == 0 && hr_wtype_row_bytes(HR_WT_Q8_0, 48) == 0,
          "Q8_0 rows must hold whole 32-blocks");
    CHECK(hr_packed_bytes(HR_WT_I8, 16, 48) == 0 && hr_packed_bytes(HR_WT_I8, 17, 64) == 2 * (64 + 2 * 512),
          "int8 panel sizes");
    CHECK(hr_packed_bytes(HR_WT_Q8_0, 17, 64) == 2 * 2 * 544 && hr_packed_bytes(HR_WT_BF16, 17, 64) == 2 * 16 * 64 * 2,
          "panel sizes");
}

/* ---- the bf16 dot (kernels.h) ---- */

/* The bf16 dot of bf16 panels / the int8 dot of Q8_0 panels in a pool job
 * (hr_matmul_multi with the scratch of wp's dot). */
static void dot_product(hr_pool *pool, float *y, const float *x, hr_panels wp, int n, int din, int dout) {
    uint32_t *xq = wp.t == HR_WT_BF16 ? malloc(sizeof(uint32_t) * (size_t)n * (size_t)((din + 1) / 2)) : NULL;
    hr_q8_act *xa = wp.t == HR_WT_Q8_0 || wp.t == HR_WT_I8 ? malloc(hr_q8_act_bytes(n, din)) : NULL;
    hr_matmul_out o = {y, NULL, wp, dout};
    hr_matmul_multi(pool, x, n, din, &o, 1, false, xq, xa);
    free(xq), free(xa);
}

/* Panels of w (dout, din) in dtype t (free with free()); deq: their f32 values. */
static void *typed_panels(hr_wtype t, const float *w, int dout, int din, float *deq) {
    unsigned char *enc = NULL;
    size_t rb = hr_t_encode(t, w, dout, din, &enc, deq);
    void *tp = hr_t_pack_typed(t, enc, rb, 0, 0, dout, din);
    free(enc);
    return tp;
}

/* Activations round to nearest even with denormals as zero, worked out by
 * hand: bf16 keeps 8 significant bits, so 1 + 2^-8 is a tie to 1 (even)
 * and 1 + 3 * 2^-8 a tie to 1 + 2^-6; 1e-40 (an f32 denormal) reads as 0
 * and -1e-40 as -0; pairs put x[2m] in the high half, and an odd d_in's
 * last low half is zero. */
static void bf16_dot_rounds_activations_to_nearest_even_with_denormals_as_zero(void) {
    static const float v[5] = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, 1e-40f, -1e-40f, -2.5f};
    static const uint32_t e[5] = {0x3F80, 0x3F82, 0x0000, 0x8000, 0xC020}; /* their bf16 bits */
    float x[41];
    uint32_t q[21];
    for (int k = 0; k < 41; k++) x[k] = v[k % 5];
    size_t bad = 0;
    for (int din = 39; din <= 41; din++) { /* vector blocks of 16, then the tail; odd and even d_in */
        hr_bf16_pairs(q, x, 1, din);
        for (int m = 0; m < (din + 1) / 2; m++) {
            uint32_t want = e[(2 * m) % 5] << 16 | (2 * m + 1 < din ? e[(2 * m + 1) % 5] : 0);
            bad += q[m] != want;
        }
    }
    printf("    pairs %08x %08x %08x ..., %zu wrong\n", (unsigned)q[0], (unsigned)q[1], (unsigned)q[2], bad);
    CHECK(bad == 0, "%zu activation pairs differ from the hand-worked bits", bad);
}

/* The bf16 dot's kernels (the CPU's path: VDPBF16PS where it has
 * AVX512-BF16) equal hr_matmul_bf16dot_ref, the one-chain scalar fmaf
 * statement of the arithmetic, bit for bit, for every batch size (GEMV and
 * GEMM), 1 and 3 threads, odd d_in and partial panels; weights include
 * zeros and bf16 denormals, activations zeros and f32 denormals. A batch
 * equals its tokens one at a time (prefill = decode). Against the exact f32
 * product over the same weights the error is the activations' rounding:
 * |diff| <= 2^-8 * sum_k |x_k w_k| (bf16 rounds each x by at most 2^-9
 * relative; the f32 chains add a few 2^-24). */
static void bf16_dot_equals_its_scalar_reference_and_prefill_equals_decode(void) {
    static const int bshapes[][3] = {{1, 64, 64},   {1, 67, 13}, {2, 301, 40},   {3, 96, 13},   {4, 288, 50},
                                     {19, 545, 33}, {9, 64, 16}, {64, 576, 192}, {130, 513, 80}};
    double worst_rel = 0;
    size_t bad = 0, bad_dec = 0, total = 0;
    for (int threads = 1; threads <= 3; threads += 2) {
        hr_pool *pool = NULL;
        hr_pool_new(threads, &pool);
        for (size_t s = 0; s < sizeof bshapes / sizeof bshapes[0]; s++) {
            int n = bshapes[s][0], din = bshapes[s][1], dout = bshapes[s][2];
            float *x = rand_buf((size_t)n * din, 17), *w = rand_buf((size_t)dout * din, 18);
            for (size_t i = 0; i < (size_t)dout * din; i += 7) w[i] *= i % 2 ? 1e-39f : 0.0f; /* bf16 denormals */
            for (size_t i = 3; i < (size_t)n * din; i += 11) x[i] *= i % 2 ? 1e-39f : 0.0f;
            float *deq = malloc((size_t)dout * din * sizeof(float));
            hr_panels p = {typed_panels(HR_WT_BF16, w, dout, din, deq), HR_WT_BF16};
            float *y = calloc((size_t)n * dout, 4), *yr = calloc((size_t)n * dout, 4),
                  *yd = calloc((size_t)n * dout, 4);
            dot_product(pool, y, x, p, n, din, dout);
            hr_matmul_bf16dot_ref(yr, x, p, n, din, dout);
            for (int t = 0; t < n; t++) dot_product(pool, yd + (size_t)t * dout, x + (size_t)t * din, p, 1, din, dout);
            bad += n_bits_differ(y, yr, (size_t)n * dout);
            bad_dec += n_bits_differ(y, yd, (size_t)n * dout);
            total += (size_t)n * dout;
            for (int t = 0; t < n; t++)
                for (int r = 0; r < dout; r++) {
                    double exact = 0, mag = 0;
                    for (int k = 0; k < din; k++) {
                        double xw = (double)x[(size_t)t * din + k] * deq[(size_t)r * din + k];
                        exact += xw, mag += fabs(xw);
                    }
                    double rel = mag > 0 ? fabs(y[(size_t)t * dout + r] - exact) / mag : 0;
                    worst_rel = rel > worst_rel ? rel : worst_rel;
                }
            free(x), free(w), free(deq), free((void *)p.p), free(y), free(yr), free(yd);
        }
        hr_pool_free(pool);
    }
    printf("    kernels: %s%s\n", hr_cpu_path(), hr_cpu_bf16_hw() ? " with VDPBF16PS" : ", pair step emulated");
    printf("    %zu outputs: %zu differ from the reference, %zu from one token at a time; "
           "max |diff| vs the f32 product / sum |x w| = %.3g (bound 2^-8 = %.3g)\n",
           total, bad, bad_dec, worst_rel, 0x1p-8);
    CHECK(bad == 0, "the bf16 dot differs from its reference");
    CHECK(bad_dec == 0, "batched bf16 dot differs from one token at a time");
    CHECK(worst_rel <= 0x1p-8, "bf16 dot vs the f32 product: %g", worst_rel);
}

/* What makes pruning exact: zeroing inputs equals deleting their columns
 * (an 8-wide head and scattered neurons), bit for bit, for the exact f32
 * products and for the bf16 dot of bf16 panels (there the kept columns'
 * k-pairs shift, and still each output is one chain over k in order). */
static void removed_columns_vs_zeroed_inputs(bool bf16_dot) {
    hr_pool *pool = NULL;
    hr_pool_new(2, &pool);
    int n = 19, din = 72, dout = 40, keep[72], n_keep = 0;
    for (int k = 0; k < din; k++)
        if (!(k >= 8 && k < 16) && k % 7 != 3) keep[n_keep++] = k;
    float *x = rand_buf((size_t)n * din, 7), *w = rand_buf((size_t)dout * din, 8);
    float *xs = malloc(sizeof(float) * (size_t)n * n_keep), *ws = malloc(sizeof(float) * (size_t)dout * n_keep);
    for (int t = 0; t < n; t++) {
        int j = 0;
        for (int k = 0; k < din; k++) {
            if (j < n_keep && keep[j] == k) xs[(size_t)t * n_keep + j++] = x[(size_t)t * din + k];
            else x[(size_t)t * din + k] = 0.0f;
        }
    }
    for (int r = 0; r < dout; r++)
        for (int j = 0; j < n_keep; j++) ws[(size_t)r * n_keep + j] = w[(size_t)r * din + keep[j]];
    float *deq = malloc(sizeof(float) * (size_t)dout * din), *deqs = malloc(sizeof(float) * (size_t)dout * n_keep);
    hr_panels p = hr_panels_f32(packed(w, dout, din)), ps = hr_panels_f32(packed(ws, dout, n_keep));
    float *y = calloc((size_t)n * dout, 4), *ys = calloc((size_t)n * dout, 4);
    if (bf16_dot) {
        free((void *)p.p), free((void *)ps.p);
        p = (hr_panels){typed_panels(HR_WT_BF16, w, dout, din, deq), HR_WT_BF16};
        ps = (hr_panels){typed_panels(HR_WT_BF16, ws, dout, n_keep, deqs), HR_WT_BF16};
        dot_product(pool, y, x, p, n, din, dout);
        dot_product(pool, ys, xs, ps, n, n_keep, dout);
    } else {
        hr_matmul(pool, y, x, p, n, din, dout);
        hr_matmul(pool, ys, xs, ps, n, n_keep, dout);
    }
    printf("    %d of %d columns kept\n", n_keep, din);
    hr_t_maxdiff("zeroed vs removed columns", y, ys, (size_t)n * dout);
    CHECK(n_bits_differ(y, ys, (size_t)n * dout) == 0, "removed columns change the result");
    free(x), free(w), free(xs), free(ws), free(deq), free(deqs), free((void *)p.p), free((void *)ps.p), free(y),
        free(ys);
    hr_pool_free(pool);
}
static void removing_columns_equals_zeroing_their_inputs_bit_for_bit(void) { removed_columns_vs_zeroed_inputs(false); }
static void bf16_dot_removing_columns_equals_zeroing_their_inputs(void) { removed_columns_vs_zeroed_inputs(true); }

/* Denormals as VDPBF16PS treats them, worked out by hand: weights that are
 * bf16 denormals read as zero (row 0: y = 0 although x w ~ 1e-19 and the
 * exact kernels give that), products below FLT_MIN flush each step (row 1:
 * w, x ~ 2^-70, x w ~ 2^-140, y = 0), normal rows unchanged (row 2: w = 1,
 * x = 2: y = 2 * d_in). Both the CPU's path and the reference. */
static void bf16_dot_treats_denormal_weights_and_products_as_zero(void) {
    enum { N = 3, DIN = 37, DOUT = 16 };
    float w[DOUT * DIN], x[N * DIN], deq[DOUT * DIN], y[N * DOUT], yr[N * DOUT];
    for (int r = 0; r < DOUT; r++)
        for (int k = 0; k < DIN; k++) w[r * DIN + k] = r == 0 ? 1e-39f : r == 1 ? 0x1p-70f : 1.0f;
    for (int t = 0; t < N; t++)
        for (int k = 0; k < DIN; k++) x[t * DIN + k] = t == 0 ? 1e20f : t == 1 ? 0x1p-70f : 2.0f;
    hr_pool *pool = NULL;
    hr_pool_new(2, &pool);
    hr_panels p = {typed_panels(HR_WT_BF16, w, DOUT, DIN, deq), HR_WT_BF16};
    dot_product(pool, y, x, p, N, DIN, DOUT);
    hr_matmul_bf16dot_ref(yr, x, p, N, DIN, DOUT);
    printf("    y(x 1e20, w 1e-39) = %g, y(2^-70, 2^-70) = %g, y(2, 1) = %g; exact kernels' first: %g\n",
           (double)y[0 * DOUT + 0], (double)y[1 * DOUT + 1], (double)y[2 * DOUT + 2], 1e20 * (double)deq[0] * DIN);
    CHECK(deq[0] != 0.0f && y[0 * DOUT + 0] == 0.0f, "denormal weights must read as zero");
    CHECK(y[1 * DOUT + 1] == 0.0f, "denormal products must flush");
    CHECK(y[2 * DOUT + 2] == 2.0f * DIN, "normal row");
    CHECK(n_bits_differ(y, yr, N * DOUT) == 0, "kernels vs reference");
    free((void *)p.p);
    hr_pool_free(pool);
}

/* ---- the int8 dot (kernels.h) ---- */

/* Activation blocks worked out by hand: amax 127 gives d = 1, id = 1, so q
 * is x rounded half away from zero (0.5 -> 1, -0.5 -> -1, 2.5 -> 3, -126.5
 * -> -127, 0.49999997 -> 0); amax 254 gives d = 2 (q of 3 = 2: 1.5 rounds
 * away); an all-zero block and one whose amax / 127 is below FLT_MIN give
 * d = 0, q = 0; a block holding an inf gives d = NaN, q = 0. */
static void int8_dot_quantizes_activations_per_block_as_llamacpp_rounds(void) {
    float x[5 * 32] = {0};
    static const float v0[9] = {127.0f, 0.5f, -0.5f, 2.5f, -126.5f, 0.49999997f, -1.5f, 3.0f, -0.0f};
    static const int q0[9] = {127, 1, -1, 3, -127, 0, -2, 3, 0};
    for (int i = 0; i < 9; i++) x[i] = v0[i];
    x[32] = -254.0f, x[33] = 3.0f, x[34] = -1.0f;    /* d = 2: q -127, 2 (1.5 away), -1 (-0.5 away) */
    for (int i = 0; i < 32; i++) x[96 + i] = 1e-37f; /* block 3: amax / 127 < FLT_MIN */
    x[128 + 5] = INFINITY;
    hr_q8_act a[5];
    hr_q8_acts(a, x, 1, 5 * 32);
    int bad = 0, sum0 = 0;
    for (int i = 0; i < 9; i++) bad += a[0].q[i] != q0[i], sum0 += q0[i];
    bad += a[0].d != 1.0f || a[0].sum != sum0;
    bad += a[1].d != 2.0f || a[1].q[0] != -127 || a[1].q[1] != 2 || a[1].q[2] != -1 || a[1].sum != -126;
    for (int b = 2; b < 5; b++)
        for (int i = 0; i < 32; i++) bad += a[b].q[i] != 0;
    bad += a[2].d != 0.0f || a[3].d != 0.0f || !isnan(a[4].d) || a[2].sum || a[3].sum || a[4].sum;
    printf("    block 0: d %g, q %d %d %d %d %d %d, sum %d; block 1: d %g; zero / tiny / inf blocks: d %g %g %g; "
           "%d wrong\n",
           (double)a[0].d, a[0].q[0], a[0].q[1], a[0].q[2], a[0].q[3], a[0].q[4], a[0].q[5], (int)a[0].sum,
           (double)a[1].d, (double)a[2].d, (double)a[3].d, (double)a[4].d, bad);
    CHECK(bad == 0, "%d activation blocks differ from the hand-worked values", bad);
}

/* The int8 dot's kernels (the CPU's path, with VPDPBUSD where it has VNNI
 * and with the exact emulation) equal hr_matmul_int8dot_ref bit for bit
 * for every batch size (GEMV and GEMM, partial tiles), 1 and 3 threads,
 * d_in = 32 x odd and even, d_out not a multiple of 16; activations include
 * zero blocks. A batch equals its tokens one at a time (prefill = decode).
 * Against the exact f32 product over the same dequantized weights each
 * output is within its rounding bound: sum over blocks of d_x / 2 * sum
 * |w| (each activation moves by at most d_x / 2) + 1e-5 * sum |x w| (the
 * f32 chains), computed per output in double. */
static void int8_dot_over(hr_wtype dt) {
    static const int ishapes[][3] = {{1, 32, 16},   {1, 96, 13}, {2, 160, 40},   {3, 96, 50},    {4, 288, 50},
                                     {19, 544, 33}, {9, 64, 16}, {64, 576, 192}, {130, 480, 80}, {7, 224, 45}};
    double worst_rel = 0, worst_abs = 0;
    size_t bad = 0, bad_dec = 0, over = 0, total = 0;
    printf("    %s weights\n", hr_wtype_name(dt));
    for (int hw = 1; hw >= 0; hw--) {
        if (hw && hr_cpu_force_int8_hw(1) != HR_OK) continue;
        if (!hw) hr_cpu_force_int8_hw(0);
        for (int threads = 1; threads <= 3; threads += 2) {
            hr_pool *pool = NULL;
            hr_pool_new(threads, &pool);
            for (size_t s = 0; s < sizeof ishapes / sizeof ishapes[0]; s++) {
                int n = ishapes[s][0], din = ishapes[s][1], dout = ishapes[s][2];
                float *x = rand_buf((size_t)n * din, 27), *w = rand_buf((size_t)dout * din, 28);
                for (int t = 0; t < n; t += 3) memset(x + (size_t)t * din + 32 * (t % (din / 32)), 0, 32 * 4);
                float *deq = malloc((size_t)dout * din * sizeof(float));
                hr_panels p = {typed_panels(dt, w, dout, din, deq), dt};
                float *y = calloc((size_t)n * dout, 4), *yr = calloc((size_t)n * dout, 4),
                      *yd = calloc((size_t)n * dout, 4);
                dot_product(pool, y, x, p, n, din, dout);
                hr_matmul_int8dot_ref(yr, x, p, n, din, dout);
                for (int t = 0; t < n; t++)
                    dot_product(pool, yd + (size_t)t * dout, x + (size_t)t * din, p, 1, din, dout);
                bad += n_bits_differ(y, yr, (size_t)n * dout);
                bad_dec += n_bits_differ(y, yd, (size_t)n * dout);
                total += (size_t)n * dout;
                for (int t = 0; t < n; t++)
                    for (int r = 0; r < dout; r++) {
                        double exact = 0, mag = 0, bound = 0;
                        for (int b = 0; b < din / 32; b++) {
                            double amax = 0, wsum = 0;
                            for (int k = 32 * b; k < 32 * b + 32; k++) {
                                double xw = (double)x[(size_t)t * din + k] * deq[(size_t)r * din + k];
                                exact += xw, mag += fabs(xw);
                                amax = fmax(amax, fabs(x[(size_t)t * din + k]));
                                wsum += fabs(deq[(size_t)r * din + k]);
                            }
                            bound += amax / 127 / 2 * wsum;
                        }
                        double d = fabs(y[(size_t)t * dout + r] - exact);
                        over += d > bound + 1e-5 * mag;
                        worst_abs = d > worst_abs ? d : worst_abs;
                        if (mag > 0) worst_rel = d / mag > worst_rel ? d / mag : worst_rel;
                    }
                free(x), free(w), free(deq), free((void *)p.p), free(y), free(yr), free(yd);
            }
            hr_pool_free(pool);
        }
        printf("    kernels: %s%s\n", hr_cpu_path(), hr_cpu_int8_hw() ? " with VPDPBUSD" : ", exact emulation");
    }
    hr_cpu_force_int8_hw(1);
    printf("    %zu outputs: %zu differ from the reference, %zu from one token at a time; vs the f32 product: "
           "max |diff| %.3g, max |diff| / sum |x w| %.3g, %zu over the rounding bound\n",
           total, bad, bad_dec, worst_abs, worst_rel, over);
    CHECK(bad == 0, "the int8 dot differs from its reference");
    CHECK(bad_dec == 0, "batched int8 dot differs from one token at a time");
    CHECK(over == 0, "%zu outputs beyond the activations' rounding bound", over);
}
static void int8_dot_equals_its_scalar_reference_and_prefill_equals_decode(void) { int8_dot_over(HR_WT_Q8_0); }
static void per_channel_int8_dot_equals_its_scalar_reference_and_prefill_equals_decode(void) {
    int8_dot_over(HR_WT_I8);
}

/* Per-channel int8 pruning keeps each row's scale: the int8 bytes of the
 * kept columns with the same scales. Exact product: any columns (a head of
 * 8, scattered ones) removed equals zeroing those inputs bit for bit; the
 * int8 dot: whole 32-blocks removed (other cuts regroup the activation
 * blocks). */
static void per_channel_int8_removing_columns_equals_zeroing_their_inputs(void) {
    hr_pool *pool = NULL;
    hr_pool_new(2, &pool);
    enum { N = 19, DIN = 160, DOUT = 40 };
    for (int dot = 0; dot <= 1; dot++) {
        int keep[DIN], n_keep = 0;
        for (int k = 0; k < DIN; k++)
            if (dot ? (k / 32) % 2 == 0 : !(k >= 8 && k < 16) && k % 7 != 3 && n_keep < 128) /* 128 of 130 */
                keep[n_keep++] = k;
        float *x = rand_buf((size_t)N * DIN, 47), *w = rand_buf((size_t)DOUT * DIN, 48);
        float *xs = malloc(sizeof(float) * N * n_keep), *deq = malloc(sizeof(float) * DOUT * DIN);
        for (int t = 0; t < N; t++)
            for (int k = 0, j = 0; k < DIN; k++) {
                if (j < n_keep && keep[j] == k) xs[t * n_keep + j++] = x[t * DIN + k];
                else x[t * DIN + k] = 0.0f;
            }
        unsigned char *enc = NULL;
        size_t rb = hr_t_encode(HR_WT_I8, w, DOUT, DIN, &enc, deq);
        unsigned char *cut = malloc((size_t)DOUT * n_keep + sizeof(float) * DOUT);
        for (int r = 0; r < DOUT; r++)
            for (int j = 0; j < n_keep; j++) cut[r * n_keep + j] = enc[r * rb + (size_t)keep[j]];
        memcpy(cut + (size_t)DOUT * n_keep, enc + rb * DOUT, sizeof(float) * DOUT); /* the same scales */
        hr_panels p = {hr_t_pack_typed(HR_WT_I8, enc, rb, 0, 0, DOUT, DIN), HR_WT_I8},
                  ps = {hr_t_pack_typed(HR_WT_I8, cut, (size_t)n_keep, 0, 0, DOUT, n_keep), HR_WT_I8};
        float *y = calloc(N * DOUT, 4), *ys = calloc(N * DOUT, 4);
        if (dot) {
            dot_product(pool, y, x, p, N, DIN, DOUT);
            dot_product(pool, ys, xs, ps, N, n_keep, DOUT);
        } else {
            hr_matmul(pool, y, x, p, N, DIN, DOUT);
            hr_matmul(pool, ys, xs, ps, N, n_keep, DOUT);
        }
        printf("    %s: %d of %d columns kept\n", dot ? "int8 dot" : "exact", n_keep, DIN);
        hr_t_maxdiff("zeroed vs removed columns", y, ys, N * DOUT);
        CHECK(n_bits_differ(y, ys, N * DOUT) == 0, "removed columns change the result (%s)", dot ? "dot" : "exact");
        free(x), free(w), free(xs), free(deq), free(enc), free(cut), free((void *)p.p), free((void *)ps.p), free(y),
            free(ys);
    }
    hr_pool_free(pool);
}

/* Pruned = gated for the int8 dot: deleting whole 32-blocks of columns
 * (the kept blocks and their scales unchanged) equals zeroing those inputs,
 * bit for bit (a zero block quantizes to d = 0, q = 0 and adds nothing). */
static void int8_dot_removing_whole_blocks_equals_zeroing_their_inputs(void) {
    hr_pool *pool = NULL;
    hr_pool_new(2, &pool);
    enum { N = 19, DIN = 160, DOUT = 40, KEEP = 96 }; /* blocks 1 and 3 removed */
    float *x = rand_buf((size_t)N * DIN, 37), *w = rand_buf((size_t)DOUT * DIN, 38);
    float *xs = malloc(sizeof(float) * N * KEEP), *ws = malloc(sizeof(float) * DOUT * KEEP);
    for (int t = 0; t < N; t++)
        for (int k = 0, j = 0; k < DIN; k++) {
            if ((k / 32) % 2 == 0) xs[t * KEEP + j++] = x[t * DIN + k];
            else x[t * DIN + k] = 0.0f;
        }
    for (int r = 0; r < DOUT; r++)
        for (int k = 0, j = 0; k < DIN; k++)
            if ((k / 32) % 2 == 0) ws[r * KEEP + j++] = w[r * DIN + k];
    float *deq = malloc(sizeof(float) * DOUT * DIN), *deqs = malloc(sizeof(float) * DOUT * KEEP);
    hr_panels p = {typed_panels(HR_WT_Q8_0, w, DOUT, DIN, deq), HR_WT_Q8_0},
              ps = {typed_panels(HR_WT_Q8_0, ws, DOUT, KEEP, deqs), HR_WT_Q8_0};
    float *y = calloc(N * DOUT, 4), *ys = calloc(N * DOUT, 4);
    dot_product(pool, y, x, p, N, DIN, DOUT);
    dot_product(pool, ys, xs, ps, N, KEEP, DOUT);
    hr_t_maxdiff("zeroed vs removed blocks", y, ys, N * DOUT);
    CHECK(n_bits_differ(y, ys, N * DOUT) == 0, "removed blocks change the result");
    free(x), free(w), free(xs), free(ws), free(deq), free(deqs), free((void *)p.p), free((void *)ps.p), free(y),
        free(ys);
    hr_pool_free(pool);
}

int main(void) {
    RUN(matmul_matches_double_reference_and_the_fmaf_chain_bit_for_bit);
    RUN(typed_panels_equal_the_f32_product_over_dequantized_weights);
    RUN(batched_rows_equal_one_token_products_bit_for_bit);
    RUN(bf16_dot_rounds_activations_to_nearest_even_with_denormals_as_zero);
    RUN(bf16_dot_equals_its_scalar_reference_and_prefill_equals_decode);
    RUN(bf16_dot_removing_columns_equals_zeroing_their_inputs);
    RUN(bf16_dot_treats_denormal_weights_and_products_as_zero);
    RUN(int8_dot_quantizes_activations_per_block_as_llamacpp_rounds);
    RUN(int8_dot_equals_its_scalar_reference_and_prefill_equals_decode);
    RUN(int8_dot_removing_whole_blocks_equals_zeroing_their_inputs);
    RUN(per_channel_int8_dot_equals_its_scalar_reference_and_prefill_equals_decode);
    RUN(per_channel_int8_removing_columns_equals_zeroing_their_inputs);
    RUN(removing_columns_equals_zeroing_their_inputs_bit_for_bit);
    RUN(one_job_for_several_products_equals_separate_calls);
    RUN(vectorised_swiglu_matches_libm_reference_including_extremes);
    RUN(rope_with_tables_matches_reference);
    RUN(layernorm_matches_reference);
    RUN(softmax_sums_to_one_and_survives_large_inputs);
    RUN(vectorised_softmax_matches_double_precision_reference);
    RUN(vectorised_exp_sums_and_log_probabilities_match_references);
    RUN(attention_scores_and_values_on_transposed_cache_match_references);
    RUN(multi_query_attention_equals_one_query_at_a_time_bit_for_bit);
    RUN(pool_runs_every_task_exactly_once);
    RUN(back_to_back_tiny_jobs_run_each_task_once_before_returning);
    TEST_MAIN_END();
}
