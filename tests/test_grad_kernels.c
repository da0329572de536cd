/* Backward kernels against their scalar references (and analytic
 * identities where a kernel has no second implementation). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/grad/grad_kernels.h"
#include "engine/kernels.h"
#include "engine/pool.h"

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((float)(*s >> 8) / (float)(1u << 24)) * 2.0f - 1.0f;
}

static float *rand_buf(size_t n, unsigned seed) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = frand(&seed);
    return p;
}

static size_t n_bits_differ(const float *a, const float *b, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += memcmp(a + i, b + i, sizeof(float)) != 0;
    return bad;
}

/* max |a - b| / max |b| */
static double rel_diff(const char *label, const float *a, const float *b, size_t n) {
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (isnan(e)) return INFINITY;
        d = e > d ? e : d;
        s = fabs(b[i]) > s ? fabs(b[i]) : s;
    }
    double r = s > 0 ? d / s : d;
    printf("    %s: max abs diff %.3g, relative %.3g over %zu values\n", label, d, r, n);
    return r;
}

/* (m, k, nc): token edges, column edges (not multiples of 16 / 32), K beyond
 * one 128-block, a single row and column. */
static const int gemm_shapes[][3] = {{1, 1, 1},     {7, 13, 5},     {8, 64, 32},    {9, 130, 33}, {64, 172, 64},
                                     {65, 64, 172}, {130, 300, 48}, {17, 257, 100}, {3, 512, 576}};

static void gemm_matches_the_fmaf_chain_bit_for_bit_for_every_layout_and_thread_count(void) {
    for (int threads = 1; threads <= 3; threads++) {
        hr_pool *pool = NULL;
        hr_pool_new(threads, &pool);
        for (size_t s = 0; s < sizeof gemm_shapes / sizeof gemm_shapes[0]; s++) {
            int m = gemm_shapes[s][0], k = gemm_shapes[s][1], nc = gemm_shapes[s][2];
            float *a = rand_buf((size_t)m * k, 1 + (unsigned)s), *b = rand_buf((size_t)k * nc, 2);
            float *c0 = rand_buf((size_t)m * nc, 3);
            float *c = malloc(sizeof(float) * (size_t)m * nc), *r = malloc(sizeof(float) * (size_t)m * nc);
            for (int layout = 0; layout < 2; layout++) /* A row-major (dx = dy W) or transposed (dw += dy^T x) */
                for (int acc = 0; acc < 2; acc++) {
                    size_t ai = layout ? 1 : (size_t)k, ap = layout ? (size_t)m : 1;
                    memcpy(c, c0, sizeof(float) * (size_t)m * nc);
                    memcpy(r, c0, sizeof(float) * (size_t)m * nc);
                    hr_gemm(pool, c, (size_t)nc, a, ai, ap, b, (size_t)nc, m, k, nc, acc);
                    hr_gemm_ref(r, (size_t)nc, a, ai, ap, b, (size_t)nc, m, k, nc, acc);
                    size_t bad = n_bits_differ(c, r, (size_t)m * nc);
                    CHECK(bad == 0, "gemm %dx%dx%d layout %d acc %d, %d threads: %zu outputs differ", m, k, nc, layout,
                          acc, threads, bad);
                }
            free(a), free(b), free(c0), free(c), free(r);
        }
        hr_pool_free(pool);
    }
}

static void matmul_backward_equals_double_sums(void) {
    int n = 37, din = 70, dout = 45;
    float *x = rand_buf((size_t)n * din, 4), *w = rand_buf((size_t)dout * din, 5), *dy = rand_buf((size_t)n * dout, 6);
    float *dx = malloc(sizeof(float) * (size_t)n * din), *rx = malloc(sizeof(float) * (size_t)n * din);
    float *dw = calloc((size_t)dout * din, sizeof(float)), *rw = malloc(sizeof(float) * (size_t)dout * din);
    float *db = calloc((size_t)dout, sizeof(float)), *rb = malloc(sizeof(float) * (size_t)dout);
    hr_pool *pool = NULL;
    hr_pool_new(2, &pool);
    hr_matmul_bwd_x(pool, dx, dy, w, n, din, dout, false);
    hr_matmul_bwd_w(pool, dw, dy, x, n, din, dout);
    hr_bias_bwd(db, dy, n, dout);
    for (int t = 0; t < n; t++)
        for (int i = 0; i < din; i++) {
            double s = 0;
            for (int r = 0; r < dout; r++) s += (double)dy[t * dout + r] * w[r * din + i];
            rx[t * din + i] = (float)s;
        }
    for (int r = 0; r < dout; r++) {
        double sb = 0;
        for (int i = 0; i < din; i++) {
            double s = 0;
            for (int t = 0; t < n; t++) s += (double)dy[t * dout + r] * x[t * din + i];
            rw[r * din + i] = (float)s;
        }
        for (int t = 0; t < n; t++) sb += dy[t * dout + r];
        rb[r] = (float)sb;
    }
    CHECK(rel_diff("dx = dy W", dx, rx, (size_t)n * din) < 1e-5, "dx");
    CHECK(rel_diff("dW = dy^T x", dw, rw, (size_t)dout * din) < 1e-5, "dW");
    CHECK(rel_diff("db = sum dy", db, rb, (size_t)dout) < 1e-5, "db");
    hr_pool_free(pool);
    free(x), free(w), free(dy), free(dx), free(rx), free(dw), free(rw), free(db), free(rb);
}

static void norm_backwards_equal_their_jacobian_references(void) {
    for (int layer = 0; layer < 2; layer++) {
        int dims[] = {3, 7, 64, 576}; /* (dim 1 is all cancellation: d/dx of x / |x| is ~0) */
        for (int di = 0; di < 4; di++) {
            int dim = dims[di];
            float *x = rand_buf((size_t)dim, 7 + di), *g = rand_buf((size_t)dim, 8), *dy = rand_buf((size_t)dim, 9);
            float *dx = malloc(sizeof(float) * dim), *rx = malloc(sizeof(float) * dim);
            if (layer) {
                hr_layernorm_bwd(dx, dy, x, g, dim, 1e-5f, false);
                hr_layernorm_bwd_ref(rx, dy, x, g, dim, 1e-5f);
            } else {
                hr_rmsnorm_bwd(dx, dy, x, g, dim, 1e-5f, false);
                hr_rmsnorm_bwd_ref(rx, dy, x, g, dim, 1e-5f);
            }
            char label[64];
            snprintf(label, sizeof label, "%s backward, dim %d", layer ? "layernorm" : "rmsnorm", dim);
            double r = rel_diff(label, dx, rx, (size_t)dim);
            CHECK(r < 1e-5, "%s: %g", label, r);
            free(x), free(g), free(dy), free(dx), free(rx);
        }
    }
}

/* dg = sum_t dy * xhat: checked against the forward, whose output with g
 * and b is exactly xhat * g + b, so d/dg is xhat. */
static void norm_weight_gradients_are_the_normalised_inputs(void) {
    int n = 5, dim = 48;
    float *x = rand_buf((size_t)n * dim, 10), *dy = rand_buf((size_t)n * dim, 11);
    float *ones = malloc(sizeof(float) * dim), *zeros = calloc((size_t)dim, sizeof(float));
    float *xh = malloc(sizeof(float) * (size_t)n * dim);
    for (int i = 0; i < dim; i++) ones[i] = 1;
    for (int layer = 0; layer < 2; layer++) {
        float *dg = calloc((size_t)dim, sizeof(float)), *db = calloc((size_t)dim, sizeof(float));
        float *rg = malloc(sizeof(float) * dim), *rb = malloc(sizeof(float) * dim);
        for (int t = 0; t < n; t++) {
            if (layer) hr_layernorm(xh + t * dim, x + t * dim, ones, zeros, dim, 1e-5f);
            else hr_rmsnorm(xh + t * dim, x + t * dim, ones, dim, 1e-5f);
        }
        if (layer) hr_layernorm_bwd_weight(dg, db, dy, x, n, dim, 1e-5f);
        else hr_rmsnorm_bwd_weight(dg, dy, x, n, dim, 1e-5f);
        for (int i = 0; i < dim; i++) {
            double s = 0, sb = 0;
            for (int t = 0; t < n; t++) s += (double)dy[t * dim + i] * xh[t * dim + i], sb += dy[t * dim + i];
            rg[i] = (float)s, rb[i] = (float)sb;
        }
        CHECK(rel_diff(layer ? "layernorm dg" : "rmsnorm dg", dg, rg, (size_t)dim) < 1e-5, "dg");
        if (layer) CHECK(rel_diff("layernorm db", db, rb, (size_t)dim) < 1e-6, "db");
        free(dg), free(db), free(rg), free(rb);
    }
    free(x), free(dy), free(ones), free(zeros), free(xh);
}

/* RoPE is a rotation: <dy, R x> = <R^T dy, x> and R^T R x = x. */
static void rope_backward_is_the_transposed_rotation(void) {
    int heads = 3, hd = 16;
    double freqs[8];
    float cs[8], sn[8];
    hr_rope_freqs(freqs, hd, 10000.0f, 0, 0, 0, 0);
    hr_rope_table(cs, sn, freqs, hd, 37);
    float *x = rand_buf((size_t)heads * hd, 12), *dy = rand_buf((size_t)heads * hd, 13);
    float *rx = malloc(sizeof(float) * heads * hd), *rtdy = malloc(sizeof(float) * heads * hd);
    memcpy(rx, x, sizeof(float) * heads * hd);
    memcpy(rtdy, dy, sizeof(float) * heads * hd);
    hr_rope(rx, heads, hd, cs, sn);
    hr_rope_bwd(rtdy, heads, hd, cs, sn);
    double lhs = 0, rhs = 0;
    for (int i = 0; i < heads * hd; i++) lhs += (double)dy[i] * rx[i], rhs += (double)rtdy[i] * x[i];
    printf("    <dy, R x> = %.9f, <R^T dy, x> = %.9f\n", lhs, rhs);
    CHECK(fabs(lhs - rhs) < 1e-5, "adjoint: %g vs %g", lhs, rhs);
    hr_rope_bwd(rx, heads, hd, cs, sn);
    CHECK(rel_diff("R^T R x vs x", rx, x, (size_t)heads * hd) < 1e-6, "inverse");
    free(x), free(dy), free(rx), free(rtdy);
}

/* One KV group of n_q query heads: the forward + the two backward kernels
 * against the double reference that recomputes everything. */
static void attention_backward_equals_the_double_reference(void) {
    const int cases[][3] = {{1, 8, 1}, {5, 8, 2}, {17, 8, 3}, {70, 64, 2}, {33, 12, 1}}; /* n, head_dim, n_q */
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int n = cases[ci][0], hd = cases[ci][1], nq = cases[ci][2];
        int ldp = ((n + 15) & ~15) + 16;
        size_t qs = (size_t)nq * hd, hs = (size_t)n * ldp;
        float scale = 1.0f / sqrtf((float)hd);
        float *q = rand_buf((size_t)n * qs, 20), *k = rand_buf((size_t)n * hd, 21), *v = rand_buf((size_t)n * hd, 22);
        float *dout = rand_buf((size_t)n * qs, 23);
        for (size_t i = 0; i < (size_t)n * qs; i++) q[i] *= 3; /* peaked attention */
        float *kt = calloc((size_t)hd * ldp, sizeof(float)), *vt = calloc((size_t)hd * ldp, sizeof(float));
        for (int t = 0; t < n; t++)
            for (int d = 0; d < hd; d++) kt[d * ldp + t] = k[t * hd + d], vt[d * ldp + t] = v[t * hd + d];
        float *p = malloc(sizeof(float) * (size_t)nq * hs), *ds = malloc(sizeof(float) * (size_t)nq * hs);
        for (size_t i = 0; i < (size_t)nq * hs; i++) p[i] = ds[i] = NAN; /* never read above the diagonal */
        float *o = malloc(sizeof(float) * (size_t)n * qs), *dq = malloc(sizeof(float) * (size_t)n * qs);
        float *dk = malloc(sizeof(float) * (size_t)n * hd), *dv = malloc(sizeof(float) * (size_t)n * hd);
        float *rq = malloc(sizeof(float) * (size_t)n * qs), *rk = malloc(sizeof(float) * (size_t)n * hd);
        float *rv = malloc(sizeof(float) * (size_t)n * hd);
        for (int j = 0; j < nq; j++) { /* rows in two chunks, as tasks split them */
            int mid = n / 2;
            hr_attn_fwd(p + j * hs, ldp, o + j * hd, qs, q + j * hd, qs, kt, vt, ldp, hd, n, 0, mid, scale);
            hr_attn_fwd(p + j * hs, ldp, o + j * hd, qs, q + j * hd, qs, kt, vt, ldp, hd, n, mid, n, scale);
            hr_attn_bwd_rows(ds + j * hs, dq + j * hd, qs, p + j * hs, ldp, dout + j * hd, qs, kt, vt, ldp, hd, n, 0,
                             mid, scale);
            hr_attn_bwd_rows(ds + j * hs, dq + j * hd, qs, p + j * hs, ldp, dout + j * hd, qs, kt, vt, ldp, hd, n, mid,
                             n, scale);
        }
        for (int s0 = 0; s0 < n; s0 += 16)
            hr_attn_bwd_keys(dk, dv, (size_t)hd, ds, p, hs, ldp, nq, q, qs, dout, qs, hd, n, s0, s0 + 16, scale);
        hr_attn_bwd_ref(rq, rk, rv, q, qs, k, v, (size_t)hd, dout, qs, nq, hd, n, scale);
        char label[96];
        snprintf(label, sizeof label, "attention n %d, head_dim %d, %d query heads: dq", n, hd, nq);
        CHECK(rel_diff(label, dq, rq, (size_t)n * qs) < 1e-5, "%s", label);
        CHECK(rel_diff("  dk", dk, rk, (size_t)n * hd) < 1e-5, "dk, case %zu", ci);
        CHECK(rel_diff("  dv", dv, rv, (size_t)n * hd) < 1e-5, "dv, case %zu", ci);
        free(q), free(k), free(v), free(dout), free(kt), free(vt), free(p), free(ds), free(o), free(dq), free(dk);
        free(dv), free(rq), free(rk), free(rv);
    }
}

static void activation_backwards_equal_their_references(void) {
    int n = 1000;
    float *gate = rand_buf((size_t)n, 30), *up = rand_buf((size_t)n, 31), *dh = rand_buf((size_t)n, 32);
    for (int i = 0; i < n; i++) gate[i] *= 12, up[i] *= 3;        /* far into both tails */
    gate[0] = 0, gate[1] = -100, gate[2] = 100, gate[3] = 1e-30f; /* sigmoid = silu / gate at its edges */
    float *dg = malloc(sizeof(float) * n), *du = malloc(sizeof(float) * n), *rg = malloc(sizeof(float) * n);
    float *ru = malloc(sizeof(float) * n);
    hr_swiglu_bwd(dg, du, dh, gate, up, n);
    hr_swiglu_bwd_ref(rg, ru, dh, gate, up, n);
    CHECK(rel_diff("swiglu dgate", dg, rg, (size_t)n) < 1e-6, "dgate");
    CHECK(rel_diff("swiglu dup", du, ru, (size_t)n) < 1e-6, "dup");
    memcpy(dg, dh, sizeof(float) * n); /* dgate may overwrite dh in place */
    hr_swiglu_bwd(dg, du, dg, gate, up, n);
    CHECK(rel_diff("swiglu dgate in place", dg, rg, (size_t)n) < 1e-6, "in place");
    hr_gelu_tanh_bwd(dg, dh, gate, n);
    hr_gelu_tanh_bwd_ref(rg, dh, gate, n);
    CHECK(rel_diff("gelu_tanh dx", dg, rg, (size_t)n) < 1e-6, "gelu");
    free(gate), free(up), free(dh), free(dg), free(du), free(rg), free(ru);
}

static void cross_entropy_backward_equals_its_reference_and_survives_underflow(void) {
    int vocab = 1000;
    float *row = rand_buf((size_t)vocab, 40), *ref = malloc(sizeof(float) * vocab);
    for (int v = 0; v < vocab; v++) row[v] *= 8;
    memcpy(ref, row, sizeof(float) * vocab);
    double nll = hr_xent_bwd(row, vocab, 17, 0.25f), rnll = hr_xent_bwd_ref(ref, vocab, 17, 0.25f);
    printf("    NLL %.9f vs reference %.9f\n", nll, rnll);
    CHECK(fabs(nll - rnll) < 1e-6 * fabs(rnll), "nll %g vs %g", nll, rnll);
    CHECK(rel_diff("dlogits", row, ref, (size_t)vocab) < 1e-6, "dlogits");
    for (int v = 0; v < vocab; v++) row[v] = 0;
    row[3] = 200; /* the target's probability underflows float: e^-200 */
    memcpy(ref, row, sizeof(float) * vocab);
    nll = hr_xent_bwd(row, vocab, 5, 1.0f);
    rnll = hr_xent_bwd_ref(ref, vocab, 5, 1.0f);
    printf("    underflowing target: NLL %.6f vs reference %.6f\n", nll, rnll);
    CHECK(isfinite(nll) && fabs(nll - rnll) < 1e-6 * rnll, "nll %g vs %g", nll, rnll);
    CHECK(rel_diff("dlogits, underflow", row, ref, (size_t)vocab) < 1e-6, "dlogits");
    free(row), free(ref);
}

static void embedding_backward_adds_rows_in_token_order(void) {
    int dim = 6, n = 5;
    int32_t tok[5] = {2, 0, 2, 3, 2};
    float *dx = rand_buf((size_t)n * dim, 50), *dtok = calloc(4 * (size_t)dim, sizeof(float));
    float *dpos = calloc((size_t)n * dim, sizeof(float));
    hr_embed_bwd(dtok, dpos, dx, tok, n, dim);
    for (int i = 0; i < dim; i++) {
        float want = ((0.0f + dx[0 * dim + i]) + dx[2 * dim + i]) + dx[4 * dim + i];
        CHECK(dtok[2 * dim + i] == want, "row 2 col %d: %g vs %g", i, dtok[2 * dim + i], want);
        CHECK(dtok[1 * dim + i] == 0, "unused row 1");
        CHECK(dpos[3 * dim + i] == dx[3 * dim + i], "position 3");
    }
    free(dx), free(dtok), free(dpos);
}

int main(void) {
    RUN(gemm_matches_the_fmaf_chain_bit_for_bit_for_every_layout_and_thread_count);
    RUN(matmul_backward_equals_double_sums);
    RUN(norm_backwards_equal_their_jacobian_references);
    RUN(norm_weight_gradients_are_the_normalised_inputs);
    RUN(rope_backward_is_the_transposed_rotation);
    RUN(attention_backward_equals_the_double_reference);
    RUN(activation_backwards_equal_their_references);
    RUN(cross_entropy_backward_equals_its_reference_and_survives_underflow);
    RUN(embedding_backward_adds_rows_in_token_order);
    TEST_MAIN_END();
}
