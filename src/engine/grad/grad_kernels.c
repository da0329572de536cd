/* Training forward / backward kernels (see grad_kernels.h). */
#include "engine/grad/grad_kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/kernels.h"

#include "engine/kernels_isa.h"

/* ---- matrix products ---- */

void hr_gemm_ref(float *c, size_t ldc, const float *a, size_t ai, size_t ap, const float *b, size_t ldb, int m, int k,
                 int nc, bool accumulate) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < nc; j++) {
            float acc = accumulate ? c[(size_t)i * ldc + j] : 0.0f;
            for (int p = 0; p < k; p++) acc = fmaf(a[(size_t)i * ai + (size_t)p * ap], b[(size_t)p * ldb + j], acc);
            c[(size_t)i * ldc + j] = acc;
        }
}

/* Tasks own blocks of C (up to 128 rows x 64 columns); the kernels'
 * gemm_block (kernels_impl.h) packs B slices and runs register tiles over
 * them. Every chain is unchanged by the blocking, so the block shape only
 * moves work between threads: a product with few row blocks (the backward's
 * dx = dy W over one window's tokens, e.g. 128 x 576) is cut into 32-column
 * blocks, so that 2 threads share 18 tasks instead of 9 (less time waiting
 * for the last task). Long products (the classifier's, k = vocabulary) keep
 * 64 columns: their B rows stream better in 256-byte pieces than in 128. */
enum { GM_MB = 128, GM_NB = 64, GM_NB_MIN = 32, GM_MIN_TASKS = 16, GM_K_SPLIT = 4096 };

typedef struct {
    float *c;
    size_t ldc, ai, ap, ldb;
    const float *a, *b;
    int m, k, nc, nb, nbn; /* nb: columns per block; nbn: column blocks */
    bool accumulate;
    const hr_kernel_table *kt; /* one path for the whole product */
} gemm_job;

/* The blocks run on the kernels' CPU path (kernels_isa.h, kernels_impl.h). */
static void gemm_block(const gemm_job *j, int i0, int i1, int j0, int j1) {
    j->kt->gemm_block(j->c, j->ldc, j->a, j->ai, j->ap, j->b, j->ldb, j->k, i0, i1, j0, j1, j->accumulate);
}

static void gemm_task(void *vp, int t) {
    const gemm_job *j = vp;
    int bi = t / j->nbn, bj = t % j->nbn;
    int i0 = bi * GM_MB, i1 = i0 + GM_MB < j->m ? i0 + GM_MB : j->m;
    int j0 = bj * j->nb, j1 = j0 + j->nb < j->nc ? j0 + j->nb : j->nc;
    gemm_block(j, i0, i1, j0, j1);
}

void hr_gemm(hr_pool *pool, float *c, size_t ldc, const float *a, size_t ai, size_t ap, const float *b, size_t ldb,
             int m, int k, int nc, bool accumulate) {
    if (m <= 0 || nc <= 0) return;
    if (k <= 0) {
        if (!accumulate)
            for (int i = 0; i < m; i++) memset(c + (size_t)i * ldc, 0, sizeof(float) * (size_t)nc);
        return;
    }
    int mb = (m + GM_MB - 1) / GM_MB;
    int nb = mb * ((nc + GM_NB - 1) / GM_NB) < GM_MIN_TASKS && k <= GM_K_SPLIT ? GM_NB_MIN : GM_NB;
    gemm_job j = {c, ldc, ai, ap, ldb, a, b, m, k, nc, nb, (nc + nb - 1) / nb, accumulate, hr_kernels()};
    int n_tasks = mb * j.nbn;
    if (pool && n_tasks > 1) hr_pool_run(pool, gemm_task, &j, n_tasks);
    else
        for (int t = 0; t < n_tasks; t++) gemm_task(&j, t);
}

void hr_matmul_bwd_x(hr_pool *pool, float *dx, const float *dy, const float *w, int n, int d_in, int d_out,
                     bool accumulate) {
    hr_gemm(pool, dx, (size_t)d_in, dy, (size_t)d_out, 1, w, (size_t)d_in, n, d_out, d_in, accumulate);
}

void hr_matmul_bwd_w(hr_pool *pool, float *dw, const float *dy, const float *x, int n, int d_in, int d_out) {
    hr_gemm(pool, dw, (size_t)d_in, dy, 1, (size_t)d_out, x, (size_t)d_in, d_out, n, d_in, true);
}

void hr_bias_bwd(float *db, const float *dy, int n, int d) {
    for (int t = 0; t < n; t++) {
        const float *r = dy + (size_t)t * d;
        for (int i = 0; i < d; i++) db[i] += r[i];
    }
}

/* ---- normalisation ---- */

/* 1/rms exactly as hr_rmsnorm computes it. */
static float rms_inv(const float *x, int dim, float eps) {
    float ss = 0;
    for (int i = 0; i < dim; i++) ss += x[i] * x[i];
    return 1.0f / sqrtf(ss / (float)dim + eps);
}

/* mean and 1/std exactly as hr_layernorm computes them. */
static void ln_stats(const float *x, int dim, float eps, float *mean_out, float *inv_out) {
    float mean = 0, var = 0;
    for (int i = 0; i < dim; i++) mean += x[i];
    mean /= (float)dim;
    for (int i = 0; i < dim; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= (float)dim;
    *mean_out = mean;
    *inv_out = 1.0f / sqrtf(var + eps);
}

void hr_rmsnorm_bwd(float *dx, const float *dy, const float *x, const float *g, int dim, float eps, bool accumulate) {
    /* y_i = x_i inv g_i: dx_j = inv u_j - x_j inv^3 / dim * sum_i u_i x_i, u = dy * g */
    float inv = rms_inv(x, dim, eps);
    double s = 0;
    for (int i = 0; i < dim; i++) s += (double)dy[i] * g[i] * x[i];
    float k = (float)(s * inv * inv * inv / dim);
    for (int i = 0; i < dim; i++) {
        float v = inv * (dy[i] * g[i]) - x[i] * k;
        dx[i] = accumulate ? dx[i] + v : v;
    }
}

void hr_rmsnorm_bwd_ref(float *dx, const float *dy, const float *x, const float *g, int dim, float eps) {
    double ss = 0;
    for (int i = 0; i < dim; i++) ss += (double)x[i] * x[i];
    double inv = 1.0 / sqrt(ss / dim + eps);
    for (int j = 0; j < dim; j++) { /* the Jacobian column by column */
        double acc = 0;
        for (int i = 0; i < dim; i++) {
            double dyi_dxj = ((i == j) ? inv : 0.0) - (double)x[i] * inv * inv * inv * x[j] / dim;
            acc += (double)dy[i] * g[i] * dyi_dxj;
        }
        dx[j] = (float)acc;
    }
}

void hr_layernorm_bwd(float *dx, const float *dy, const float *x, const float *g, int dim, float eps, bool accumulate) {
    /* dx = inv (u - mean(u) - xhat mean(u xhat)), u = dy * g */
    float mean, inv;
    ln_stats(x, dim, eps, &mean, &inv);
    double su = 0, sux = 0;
    for (int i = 0; i < dim; i++) {
        double u = (double)dy[i] * g[i], xh = (double)((x[i] - mean) * inv);
        su += u;
        sux += u * xh;
    }
    float mu = (float)(su / dim), mux = (float)(sux / dim);
    for (int i = 0; i < dim; i++) {
        float xh = (x[i] - mean) * inv;
        float v = inv * (dy[i] * g[i] - mu - xh * mux);
        dx[i] = accumulate ? dx[i] + v : v;
    }
}

void hr_layernorm_bwd_ref(float *dx, const float *dy, const float *x, const float *g, int dim, float eps) {
    double s1 = 0, s2 = 0; /* sum x, sum x^2 */
    for (int i = 0; i < dim; i++) s1 += x[i], s2 += (double)x[i] * x[i];
    double mean = s1 / dim, inv = 1.0 / sqrt(s2 / dim - mean * mean + eps);
    for (int j = 0; j < dim; j++) { /* d xhat_i / d x_j = inv (delta_ij - 1/dim - xhat_i xhat_j / dim) */
        double acc = 0, xj = (x[j] - mean) * inv;
        for (int i = 0; i < dim; i++) {
            double xi = (x[i] - mean) * inv;
            acc += (double)dy[i] * g[i] * inv * (((i == j) ? 1.0 : 0.0) - 1.0 / dim - xi * xj / dim);
        }
        dx[j] = (float)acc;
    }
}

void hr_rmsnorm_bwd_weight(float *dg, const float *dy, const float *x, int n, int dim, float eps) {
    for (int t = 0; t < n; t++) {
        const float *xr = x + (size_t)t * dim, *dr = dy + (size_t)t * dim;
        float inv = rms_inv(xr, dim, eps);
        for (int i = 0; i < dim; i++) dg[i] += dr[i] * (xr[i] * inv);
    }
}

void hr_layernorm_bwd_weight(float *dg, float *db, const float *dy, const float *x, int n, int dim, float eps) {
    for (int t = 0; t < n; t++) {
        const float *xr = x + (size_t)t * dim, *dr = dy + (size_t)t * dim;
        float mean, inv;
        ln_stats(xr, dim, eps, &mean, &inv);
        for (int i = 0; i < dim; i++) dg[i] += dr[i] * ((xr[i] - mean) * inv);
        if (db)
            for (int i = 0; i < dim; i++) db[i] += dr[i];
    }
}

/* ---- RoPE ---- */

void hr_rope_bwd(float *dv, int n_heads, int head_dim, const float *cos_t, const float *sin_t) {
    /* forward: (a, b) -> (a c - b s, a s + b c); backward: the transpose */
    for (int h = 0; h < n_heads; h++) {
        float *p = dv + (size_t)h * head_dim;
        for (int i = 0; i < head_dim / 2; i++) {
            float da = p[2 * i], db = p[2 * i + 1];
            p[2 * i] = da * cos_t[i] + db * sin_t[i];
            p[2 * i + 1] = db * cos_t[i] - da * sin_t[i];
        }
    }
}

/* ---- attention ---- */

enum { ATT_Q = 4 }; /* queries per key/value load, as the inference forward */

void hr_attn_fwd(float *p, int ldp, float *o, size_t os, const float *q, size_t qs, const float *kt, const float *vt,
                 int ldk, int head_dim, int n, int t0, int t1, float scale) {
    (void)n;
    for (int t = t0; t < t1; t += ATT_Q) {
        int nq = t1 - t < ATT_Q ? t1 - t : ATT_Q, len[ATT_Q];
        for (int i = 0; i < nq; i++) len[i] = t + i + 1;
        float *s = p + (size_t)t * ldp;
        hr_attn_scores_multi(s, (size_t)ldp, q + (size_t)t * qs, qs, nq, kt, ldk, head_dim, len[nq - 1], scale);
        for (int i = 0; i < nq; i++) hr_softmax(s + (size_t)i * ldp, len[i]);
        hr_attn_values_multi(o + (size_t)t * os, os, s, (size_t)ldp, nq, vt, ldk, head_dim, len);
    }
}

void hr_attn_bwd_rows(float *ds, float *dq, size_t dqs, const float *p, int ldp, const float *dout, size_t dos,
                      const float *kt, const float *vt, int ldk, int head_dim, int n, int t0, int t1, float scale) {
    (void)n;
    for (int t = t0; t < t1; t += ATT_Q) { /* the forward's kernels, ATT_Q rows per key/value load */
        int nq = t1 - t < ATT_Q ? t1 - t : ATT_Q, len[ATT_Q];
        for (int i = 0; i < nq; i++) len[i] = t + i + 1;
        float *d0 = ds + (size_t)t * ldp;
        hr_attn_scores_multi(d0, (size_t)ldp, dout + (size_t)t * dos, dos, nq, vt, ldk, head_dim, len[nq - 1], 1.0f);
        for (int i = 0; i < nq; i++) { /* dP_s = do . v_s  ->  dS_s = p_s (dP_s - p . dP) */
            float *dr = d0 + (size_t)i * ldp;
            const float *pr = p + (size_t)(t + i) * ldp;
            float d = hr_dot(pr, dr, len[i]);
            for (int s = 0; s < len[i]; s++) dr[s] = pr[s] * (dr[s] - d);
        }
        float *q0 = dq + (size_t)t * dqs;
        hr_attn_values_multi(q0, dqs, d0, (size_t)ldp, nq, kt, ldk, head_dim, len); /* sum_s dS_s k_s */
        for (int i = 0; i < nq; i++)
            for (int k = 0; k < head_dim; k++) q0[(size_t)i * dqs + k] *= scale;
    }
}

void hr_attn_bwd_keys(float *dk, float *dv, size_t kvs, const float *ds, const float *p, size_t hs, int ldp, int n_q,
                      const float *q, size_t qs, const float *dout, size_t dos, int head_dim, int n, int s0, int s1,
                      float scale) {
    hr_kernels()->attn_bwd_keys(dk, dv, kvs, ds, p, hs, ldp, n_q, q, qs, dout, dos, head_dim, n, s0, s1, scale);
}

void hr_attn_bwd_ref(float *dq, float *dk, float *dv, const float *q, size_t qs, const float *k, const float *v,
                     size_t kvs, const float *dout, size_t dos, int n_q, int head_dim, int n, float scale) {
    size_t nn = (size_t)(n > 0 ? n : 1), nd = nn * (size_t)head_dim;
    double *pr = malloc(sizeof(double) * nn); /* (n) one query row's probabilities */
    double *dp = malloc(sizeof(double) * nn); /* (n) its do . v */
    double *ak = calloc(nd, sizeof(double));  /* (n, head_dim) dk */
    double *av = calloc(nd, sizeof(double));  /* (n, head_dim) dv */
    if (!pr || !dp || !ak || !av) {
        free(pr), free(dp), free(ak), free(av);
        return;
    }
    for (int j = 0; j < n_q; j++)
        for (int t = 0; t < n; t++) {
            const float *qt = q + (size_t)t * qs + (size_t)j * head_dim,
                        *ot = dout + (size_t)t * dos + (size_t)j * head_dim;
            double mx = -INFINITY, z = 0, dsum = 0;
            for (int s = 0; s <= t; s++) {
                double a = 0, b = 0;
                for (int d = 0; d < head_dim; d++) {
                    a += (double)qt[d] * k[(size_t)s * kvs + d];
                    b += (double)ot[d] * v[(size_t)s * kvs + d];
                }
                pr[s] = a * scale;
                dp[s] = b;
                mx = pr[s] > mx ? pr[s] : mx;
            }
            for (int s = 0; s <= t; s++) z += exp(pr[s] - mx);
            for (int s = 0; s <= t; s++) {
                pr[s] = exp(pr[s] - mx) / z;
                dsum += pr[s] * dp[s];
            }
            float *dqt = dq + (size_t)t * qs + (size_t)j * head_dim;
            for (int d = 0; d < head_dim; d++) {
                double acc = 0;
                for (int s = 0; s <= t; s++) acc += pr[s] * (dp[s] - dsum) * k[(size_t)s * kvs + d];
                dqt[d] = (float)(acc * scale);
            }
            for (int s = 0; s <= t; s++) {
                double dsc = pr[s] * (dp[s] - dsum);
                for (int d = 0; d < head_dim; d++) {
                    ak[(size_t)s * head_dim + d] += dsc * scale * qt[d];
                    av[(size_t)s * head_dim + d] += pr[s] * ot[d];
                }
            }
        }
    for (int s = 0; s < n; s++)
        for (int d = 0; d < head_dim; d++) {
            dk[(size_t)s * kvs + d] = (float)ak[(size_t)s * head_dim + d];
            dv[(size_t)s * kvs + d] = (float)av[(size_t)s * head_dim + d];
        }
    free(pr), free(dp), free(ak), free(av);
}

/* ---- MLP activations ---- */

void hr_swiglu_bwd(float *dgate, float *dup, const float *dh, const float *gate, const float *up, int n) {
    /* silu from the forward's vectorised kernel (up = 1), sigmoid = silu / gate */
    enum { CHUNK = 256 };
    float ones[CHUNK], silu[CHUNK];
    for (int i = 0; i < CHUNK; i++) ones[i] = 1.0f;
    for (int i0 = 0; i0 < n; i0 += CHUNK) {
        int len = n - i0 < CHUNK ? n - i0 : CHUNK;
        hr_swiglu(silu, gate + i0, ones, len);
        for (int i = 0; i < len; i++) {
            float g = gate[i0 + i], s = silu[i], sg = g != 0.0f ? s / g : 0.5f;
            float dsilu = sg * (1.0f + g * (1.0f - sg)), d = dh[i0 + i];
            dgate[i0 + i] = d * up[i0 + i] * dsilu;
            dup[i0 + i] = d * s;
        }
    }
}

void hr_swiglu_bwd_ref(float *dgate, float *dup, const float *dh, const float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        double g = gate[i], sg = 1.0 / (1.0 + exp(-g));
        dgate[i] = (float)((double)dh[i] * up[i] * (sg + g * sg * (1.0 - sg)));
        dup[i] = (float)((double)dh[i] * g * sg);
    }
}

void hr_gelu_tanh_bwd(float *dx, const float *dy, const float *x, int n) {
    const float c = 0.7978845608028654f, a = 0.044715f;
    for (int i = 0; i < n; i++) {
        float v = x[i], th = tanhf(c * (v + a * v * v * v));
        dx[i] = dy[i] * (0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * c * (1.0f + 3.0f * a * v * v));
    }
}

void hr_gelu_tanh_bwd_ref(float *dx, const float *dy, const float *x, int n) {
    const double c = sqrt(2.0 / M_PI), a = 0.044715;
    for (int i = 0; i < n; i++) {
        double v = x[i], th = tanh(c * (v + a * v * v * v));
        dx[i] = (float)(dy[i] * (0.5 * (1 + th) + 0.5 * v * (1 - th * th) * c * (1 + 3 * a * v * v)));
    }
}

/* ---- embedding ---- */

void hr_embed_fwd(float *x, const int32_t *tokens, int n, const float *tok, const float *pos, int dim) {
    for (int t = 0; t < n; t++) {
        float *xr = x + (size_t)t * dim;
        memcpy(xr, tok + (size_t)tokens[t] * dim, (size_t)dim * sizeof(float));
        if (pos) hr_axpy(xr, 1.0f, pos + (size_t)t * dim, dim);
    }
}

void hr_embed_bwd(float *dtok, float *dpos, const float *dx, const int32_t *tokens, int n, int dim) {
    for (int t = 0; t < n; t++) {
        const float *r = dx + (size_t)t * dim;
        if (dtok) {
            float *e = dtok + (size_t)tokens[t] * dim;
            for (int i = 0; i < dim; i++) e[i] += r[i];
        }
        if (dpos) {
            float *e = dpos + (size_t)t * dim;
            for (int i = 0; i < dim; i++) e[i] += r[i];
        }
    }
}

/* ---- cross-entropy ---- */

double hr_xent_bwd(float *row, int vocab, int target, float scale) {
    int am = 0;
    float mx = row[0];
    for (int v = 1; v < vocab; v++)
        if (row[v] > mx) mx = row[v], am = v;
    float lt = row[target];
    hr_softmax(row, vocab);
    /* p[argmax] = 1 / sum exp(l - max): log-sum-exp = max - log p[argmax] */
    double nll = ((double)mx - (double)lt) - log((double)row[am]);
    float pt = row[target];
    for (int v = 0; v < vocab; v++) row[v] *= scale;
    row[target] = (pt - 1.0f) * scale;
    return nll;
}

double hr_xent_bwd_ref(float *row, int vocab, int target, float scale) {
    double mx = row[0], z = 0;
    for (int v = 1; v < vocab; v++) mx = row[v] > mx ? row[v] : mx;
    for (int v = 0; v < vocab; v++) z += exp((double)row[v] - mx);
    double lse = mx + log(z), nll = lse - row[target];
    for (int v = 0; v < vocab; v++) row[v] = (float)(scale * (exp((double)row[v] - lse) - (v == target)));
    return nll;
}
