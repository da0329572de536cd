/* Optimised kernels against their naive references. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/kernels.h"
#include "threads/pool.h"

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((float)(*s >> 8) / (float)(1u << 24)) * 2.0f - 1.0f;
}

static float *rand_buf(size_t n, unsigned seed) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = frand(&seed);
    return p;
}

static void matmul_matches_reference_for_gemv_and_gemm_shapes(void) {
    int shapes[][3] = {{1, 64, 64}, {1, 67, 13}, {1, 576, 1536}, {3, 64, 172}, {17, 100, 33}, {64, 576, 192}};
    for (int threads = 1; threads <= 3; threads++) {
        hr_pool *pool = NULL;
        hr_pool_new(threads, &pool);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int n = shapes[s][0], din = shapes[s][1], dout = shapes[s][2];
            float *x = rand_buf((size_t)n * din, 1), *w = rand_buf((size_t)dout * din, 2);
            float *y = calloc((size_t)n * dout, 4), *yr = calloc((size_t)n * dout, 4);
            hr_matmul(pool, y, x, w, n, din, dout);
            hr_matmul_ref(yr, x, w, n, din, dout);
            char label[64];
            snprintf(label, sizeof label, "matmul %dx%dx%d, %d threads", n, din, dout, threads);
            double d = hr_t_maxdiff(label, y, yr, (size_t)n * dout);
            CHECK(d < 1e-4, "%s: %g", label, d);
            free(x), free(w), free(y), free(yr);
        }
        hr_pool_free(pool);
    }
}

static void gemv_rows_matches_reference_on_a_row_range(void) {
    int din = 77;
    float *x = rand_buf((size_t)din, 3), *w = rand_buf((size_t)din * 50, 4);
    float y[50] = {0}, yr[50] = {0};
    hr_gemv_rows(y, x, w, din, 5, 43);
    hr_gemv_rows_ref(yr, x, w, din, 5, 43);
    CHECK(hr_t_maxdiff("gemv rows 5..43", y, yr, 50) < 1e-5, "mismatch");
    CHECK(y[4] == 0 && y[43] == 0, "wrote outside the row range");
    free(x), free(w);
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

static void attention_scores_and_values_on_transposed_cache_match_references(void) {
    int cases[][3] = {{12, 40, 33}, {64, 300, 257}, {8, 16, 1}, {6, 90, 64}};
    for (int c = 0; c < 4; c++) {
        int hd = cases[c][0], ld = cases[c][1], len = cases[c][2];
        float *q = rand_buf((size_t)hd, 30), *kt = rand_buf((size_t)hd * ld, 31);
        float *s = calloc((size_t)ld, 4), *r = calloc((size_t)ld, 4), *o = calloc((size_t)hd, 4), *od = calloc((size_t)hd, 4);
        hr_attn_scores(s, q, kt, ld, hd, len, 0.5f);
        hr_attn_scores_ref(r, q, kt, ld, hd, len, 0.5f);
        CHECK(hr_t_maxdiff("attention scores", s, r, (size_t)len) < 1e-5, "case %d", c);
        hr_attn_values(o, s, kt, ld, hd, len);
        for (int d = 0; d < hd; d++) od[d] = hr_dot(s, kt + (size_t)d * ld, len);
        CHECK(hr_t_maxdiff("attention values vs hr_dot", o, od, (size_t)hd) == 0, "case %d not bit-identical", c);
        free(q), free(kt), free(s), free(r), free(o), free(od);
    }
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

int main(void) {
    RUN(matmul_matches_reference_for_gemv_and_gemm_shapes);
    RUN(gemv_rows_matches_reference_on_a_row_range);
    RUN(rope_with_tables_matches_reference);
    RUN(layernorm_matches_reference);
    RUN(softmax_sums_to_one_and_survives_large_inputs);
    RUN(vectorised_softmax_matches_double_precision_reference);
    RUN(attention_scores_and_values_on_transposed_cache_match_references);
    RUN(pool_runs_every_task_exactly_once);
    TEST_MAIN_END();
}
