#include "engine/kernels.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "engine/blas.h"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

void hr_matmul_ref(float *y, const float *x, const float *w, int n, int d_in, int d_out) {
    for (int t = 0; t < n; t++)
        for (int r = 0; r < d_out; r++) {
            double s = 0;
            for (int k = 0; k < d_in; k++) s += (double)w[(size_t)r * d_in + k] * x[(size_t)t * d_in + k];
            y[(size_t)t * d_out + r] = (float)s;
        }
}

size_t hr_packed_floats(int d_out, int d_in) { return (size_t)((d_out + 15) / 16) * 16 * (size_t)d_in; }

void hr_pack_panels(float *wp, const float *w, int d_out, int d_in, int p0, int p1) {
    for (int p = p0; p < p1; p++) {
        float *dst = wp + (size_t)p * d_in * 16;
        for (int j = 0; j < 16; j++) {
            int r = p * 16 + j;
            const float *src = w + (size_t)r * d_in;
            if (r < d_out)
                for (int k = 0; k < d_in; k++) dst[(size_t)k * 16 + j] = src[k];
            else
                for (int k = 0; k < d_in; k++) dst[(size_t)k * 16 + j] = 0.0f;
        }
    }
}

void hr_matmul_packed_ref(float *y, const float *x, const float *wp, int n, int d_in, int d_out) {
    for (int t = 0; t < n; t++)
        for (int r = 0; r < d_out; r++) {
            const float *col = wp + (size_t)(r / 16) * d_in * 16 + r % 16;
            float acc = 0.0f;
            for (int k = 0; k < d_in; k++) acc = fmaf(x[(size_t)t * d_in + k], col[(size_t)k * 16], acc);
            y[(size_t)t * d_out + r] = acc;
        }
}

#if defined(__AVX512F__)
static inline float hsum512(__m512 v) { return _mm512_reduce_add_ps(v); }

static inline void store_panel(float *y, int p, int d_out, __m512 a) {
    int r = p * 16;
    if (r + 16 <= d_out) _mm512_storeu_ps(y + r, a);
    else _mm512_mask_storeu_ps(y + r, (__mmask16)((1u << (d_out - r)) - 1), a);
}

/* y[panels p0..p1) = W x for one token; four panels at once hide the FMA
 * latency of the four independent chains. */
static void gemv_panels(float *y, const float *x, const float *wp, int d_in, int d_out, int p0, int p1) {
    const size_t ps = (size_t)d_in * 16;
    int p = p0;
    for (; p + 4 <= p1; p += 4) {
        const float *w0 = wp + (size_t)p * ps, *w1 = w0 + ps, *w2 = w1 + ps, *w3 = w2 + ps;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int k = 0; k < d_in; k++) {
            __m512 xv = _mm512_set1_ps(x[k]);
            a0 = _mm512_fmadd_ps(xv, _mm512_load_ps(w0 + (size_t)k * 16), a0);
            a1 = _mm512_fmadd_ps(xv, _mm512_load_ps(w1 + (size_t)k * 16), a1);
            a2 = _mm512_fmadd_ps(xv, _mm512_load_ps(w2 + (size_t)k * 16), a2);
            a3 = _mm512_fmadd_ps(xv, _mm512_load_ps(w3 + (size_t)k * 16), a3);
        }
        store_panel(y, p, d_out, a0), store_panel(y, p + 1, d_out, a1);
        store_panel(y, p + 2, d_out, a2), store_panel(y, p + 3, d_out, a3);
    }
    for (; p < p1; p++) {
        const float *w0 = wp + (size_t)p * ps;
        __m512 a0 = _mm512_setzero_ps();
        for (int k = 0; k < d_in; k++) a0 = _mm512_fmadd_ps(_mm512_set1_ps(x[k]), _mm512_load_ps(w0 + (size_t)k * 16), a0);
        store_panel(y, p, d_out, a0);
    }
}

enum { GEMM_MR = 8, GEMM_KC = 256, GEMM_MC = 128 };

/* The register tile: c (8 rows of stride ldc) x np panels (np = 1 or 2,
 * constant after inlining) over k in [k0, k1), starting from zero when
 * first, else continuing the chains stored in c. x rows have stride ldx. */
static inline __attribute__((always_inline)) void tile8(float *c, size_t ldc, const float *x, size_t ldx,
                                                        const float *w0, const float *w1, int np, int k0, int k1,
                                                        int first) {
    __m512 a[GEMM_MR][2];
    for (int i = 0; i < GEMM_MR; i++)
        for (int j = 0; j < np; j++)
            a[i][j] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(c + (size_t)i * ldc + 16 * j);
    for (int k = k0; k < k1; k++) {
        __m512 b0 = _mm512_load_ps(w0 + (size_t)k * 16), b1 = np > 1 ? _mm512_load_ps(w1 + (size_t)k * 16) : b0;
#pragma GCC unroll 8
        for (int i = 0; i < GEMM_MR; i++) {
            __m512 xv = _mm512_set1_ps(x[(size_t)i * ldx + k]);
            a[i][0] = _mm512_fmadd_ps(xv, b0, a[i][0]);
            if (np > 1) a[i][1] = _mm512_fmadd_ps(xv, b1, a[i][1]);
        }
    }
    for (int i = 0; i < GEMM_MR; i++)
        for (int j = 0; j < np; j++) _mm512_storeu_ps(c + (size_t)i * ldc + 16 * j, a[i][j]);
}

static void tile8_np(float *c, size_t ldc, const float *x, size_t ldx, const float *w0, const float *w1, int np,
                     int k0, int k1, int first) {
    if (np == 2) tile8(c, ldc, x, ldx, w0, w1, 2, k0, k1, first);
    else tile8(c, ldc, x, ldx, w0, w1, 1, k0, k1, first);
}

/* A tile with fewer than 8 tokens or panels past d_out: the same tile runs
 * on a zero-padded copy of C (and of x when tokens are missing), so every
 * chain is the same as in a full tile. */
static void tile_edge(float *y, const float *x, const float *w0, const float *w1, int np, int mr, int t, int p,
                      int d_in, int d_out, int k0, int k1, int first) {
    float cbuf[GEMM_MR * 32], xbuf[GEMM_MR * GEMM_KC];
    int c0 = p * 16, cols = d_out - c0 < 16 * np ? d_out - c0 : 16 * np;
    memset(cbuf, 0, sizeof cbuf);
    if (!first)
        for (int i = 0; i < mr; i++) memcpy(cbuf + i * 32, y + (size_t)(t + i) * d_out + c0, sizeof(float) * (size_t)cols);
    if (mr == GEMM_MR) {
        tile8_np(cbuf, 32, x + (size_t)t * d_in, (size_t)d_in, w0, w1, np, k0, k1, first);
    } else {
        memset(xbuf, 0, sizeof xbuf);
        for (int i = 0; i < mr; i++)
            memcpy(xbuf + i * GEMM_KC, x + (size_t)(t + i) * d_in + k0, sizeof(float) * (size_t)(k1 - k0));
        const float *v0 = w0 + (size_t)k0 * 16, *v1 = np > 1 ? w1 + (size_t)k0 * 16 : v0;
        tile8_np(cbuf, 32, xbuf, GEMM_KC, v0, v1, np, 0, k1 - k0, first);
    }
    for (int i = 0; i < mr; i++) memcpy(y + (size_t)(t + i) * d_out + c0, cbuf + i * 32, sizeof(float) * (size_t)cols);
}

/* y (n, d_out) columns of panels [p0, p1): K-blocks of 256 keep a pair of
 * weight panels in L1 while up to 128 tokens of x stay in L2. */
static void gemm_panels(float *y, const float *x, const float *wp, int n, int d_in, int d_out, int p0, int p1) {
    const size_t ps = (size_t)d_in * 16;
    for (int k0 = 0; k0 < d_in; k0 += GEMM_KC) {
        int k1 = k0 + GEMM_KC < d_in ? k0 + GEMM_KC : d_in, first = k0 == 0;
        for (int t0 = 0; t0 < n; t0 += GEMM_MC) {
            int t1 = t0 + GEMM_MC < n ? t0 + GEMM_MC : n;
            for (int p = p0; p < p1; p += 2) {
                int np = p1 - p < 2 ? 1 : 2;
                const float *w0 = wp + (size_t)p * ps, *w1 = w0 + ps;
                bool cols_ok = (p + np) * 16 <= d_out;
                for (int t = t0; t < t1; t += GEMM_MR) {
                    int mr = t1 - t < GEMM_MR ? t1 - t : GEMM_MR;
                    if (mr == GEMM_MR && cols_ok)
                        tile8_np(y + (size_t)t * d_out + (size_t)p * 16, (size_t)d_out, x + (size_t)t * d_in,
                                 (size_t)d_in, w0, w1, np, k0, k1, first);
                    else
                        tile_edge(y, x, w0, w1, np, mr, t, p, d_in, d_out, k0, k1, first);
                }
            }
        }
    }
}

float hr_dot(const float *a, const float *b, int n) {
    __m512 acc = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= n; k += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + k), _mm512_loadu_ps(b + k), acc);
    float s = hsum512(acc);
    for (; k < n; k++) s += a[k] * b[k];
    return s;
}

#else
/* Portable chains: the same fused multiply-adds in the same order. */
static void gemv_panels(float *y, const float *x, const float *wp, int d_in, int d_out, int p0, int p1) {
    for (int p = p0; p < p1; p++) {
        float acc[16] = {0};
        const float *w0 = wp + (size_t)p * d_in * 16;
        for (int k = 0; k < d_in; k++)
            for (int j = 0; j < 16; j++) acc[j] = fmaf(x[k], w0[(size_t)k * 16 + j], acc[j]);
        for (int j = 0; j < 16 && p * 16 + j < d_out; j++) y[p * 16 + j] = acc[j];
    }
}

static void gemm_panels(float *y, const float *x, const float *wp, int n, int d_in, int d_out, int p0, int p1) {
    for (int t = 0; t < n; t++) gemv_panels(y + (size_t)t * d_out, x + (size_t)t * d_in, wp, d_in, d_out, p0, p1);
}
#endif

#if defined(__AVX512F__)
#elif defined(__AVX2__) && defined(__FMA__)
static inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_hadd_ps(lo, lo);
    lo = _mm_hadd_ps(lo, lo);
    return _mm_cvtss_f32(lo);
}

float hr_dot(const float *a, const float *b, int n) {
    __m256 acc = _mm256_setzero_ps();
    int k = 0;
    for (; k + 8 <= n; k += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), acc);
    float s = hsum256(acc);
    for (; k < n; k++) s += a[k] * b[k];
    return s;
}
#else
float hr_dot(const float *a, const float *b, int n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int k = 0;
    for (; k + 4 <= n; k += 4) s0 += a[k] * b[k], s1 += a[k + 1] * b[k + 1], s2 += a[k + 2] * b[k + 2], s3 += a[k + 3] * b[k + 3];
    for (; k < n; k++) s0 += a[k] * b[k];
    return (s0 + s1) + (s2 + s3);
}
#endif

void hr_axpy(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

/* One pool job for up to HR_MATMUL_MAX_OUTS products of the same input
 * (Q, K and V; gate and up): one synchronisation instead of several, and the
 * tasks of all of them balance together. */
typedef struct {
    hr_matmul_out out[HR_MATMUL_MAX_OUTS];
    int per[HR_MATMUL_MAX_OUTS], first_task[HR_MATMUL_MAX_OUTS + 1];
    int n_outs;
    const float *x;
    int n, d_in;
    int blas; /* n > 1 through OpenBLAS sgemm */
} matmul_job;

static void matmul_task(void *vp, int i) {
    const matmul_job *j = vp;
    int m = 0;
    while (m + 1 < j->n_outs && j->first_task[m + 1] <= i) m++;
    const hr_matmul_out *o = &j->out[m];
    int n_panels = (o->d_out + 15) / 16;
    int p0 = (i - j->first_task[m]) * j->per[m], p1 = p0 + j->per[m];
    if (p1 > n_panels) p1 = n_panels;
    if (p0 >= p1) return;
    if (j->blas) {
        int r0 = p0 * 16, r1 = p1 * 16 < o->d_out ? p1 * 16 : o->d_out;
        hr_sgemm_nt(o->y + r0, o->d_out, j->x, o->w + (size_t)r0 * j->d_in, j->n, j->d_in, r1 - r0);
    } else if (j->n < 4) { /* too few tokens to fill a tile: same chains, one token at a time */
        for (int t = 0; t < j->n; t++)
            gemv_panels(o->y + (size_t)t * o->d_out, j->x + (size_t)t * j->d_in, o->wp, j->d_in, o->d_out, p0, p1);
    } else {
        gemm_panels(o->y, j->x, o->wp, j->n, j->d_in, o->d_out, p0, p1);
    }
}

/* A few tasks per thread and output: the pool hands them out as threads
 * free up, so a core slowed by other work (a shared machine) does not hold
 * the others back. GEMM blocks hold an even number of panels (whole
 * register tiles). */
static void run_matmul(hr_pool *pool, matmul_job *j) {
    int nt = hr_pool_n_threads(pool), k = nt == 1 ? 1 : nt * 4;
    j->first_task[0] = 0;
    for (int m = 0; m < j->n_outs; m++) {
        int n_panels = (j->out[m].d_out + 15) / 16, per = (n_panels + k - 1) / k;
        if (j->n > 1) per += per & 1;
        if (per < 1) per = 1;
        j->per[m] = per;
        j->first_task[m + 1] = j->first_task[m] + (n_panels + per - 1) / per;
    }
    hr_pool_run(pool, matmul_task, j, j->first_task[j->n_outs]);
}

void hr_matmul_multi(hr_pool *pool, const float *x, int n, int d_in, const hr_matmul_out *outs, int n_outs,
                     bool blas) {
    matmul_job j;
    memset(&j, 0, sizeof j);
    for (int m = 0; m < n_outs && m < HR_MATMUL_MAX_OUTS; m++) j.out[j.n_outs++] = outs[m];
    j.x = x, j.n = n, j.d_in = d_in, j.blas = blas && n > 1;
    run_matmul(pool, &j);
}

void hr_matmul(hr_pool *pool, float *y, const float *x, const float *wp, int n, int d_in, int d_out) {
    hr_matmul_out o = {y, NULL, wp, d_out};
    hr_matmul_multi(pool, x, n, d_in, &o, 1, false);
}

void hr_rmsnorm(float *y, const float *x, const float *g, int dim, float eps) {
    float ss = 0;
    for (int i = 0; i < dim; i++) ss += x[i] * x[i];
    float inv = 1.0f / sqrtf(ss / (float)dim + eps);
    for (int i = 0; i < dim; i++) y[i] = x[i] * inv * g[i];
}

void hr_rope_freqs(double *freqs, int head_dim, float theta, float llama3_factor, float low_freq_factor,
                   float high_freq_factor, int original_ctx) {
    for (int i = 0; i < head_dim / 2; i++) {
        double f = pow((double)theta, -2.0 * i / head_dim);
        if (llama3_factor > 0) {
            double wavelen = 2 * M_PI / f;
            double low_wl = original_ctx / (double)low_freq_factor, high_wl = original_ctx / (double)high_freq_factor;
            if (wavelen > low_wl) {
                f /= llama3_factor;
            } else if (wavelen >= high_wl) {
                double smooth = (original_ctx / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                f = (1 - smooth) * f / llama3_factor + smooth * f;
            }
        }
        freqs[i] = f;
    }
}

void hr_rope_table(float *cos_t, float *sin_t, const double *freqs, int head_dim, int pos) {
    for (int i = 0; i < head_dim / 2; i++) {
        double a = (double)pos * freqs[i];
        cos_t[i] = (float)cos(a);
        sin_t[i] = (float)sin(a);
    }
}

void hr_rope(float *v, int n_heads, int head_dim, const float *cos_t, const float *sin_t) {
    for (int h = 0; h < n_heads; h++) {
        float *p = v + (size_t)h * head_dim;
        for (int i = 0; i < head_dim / 2; i++) {
            float a = p[2 * i], b = p[2 * i + 1];
            p[2 * i] = a * cos_t[i] - b * sin_t[i];
            p[2 * i + 1] = a * sin_t[i] + b * cos_t[i];
        }
    }
}

void hr_rope_ref(float *v, int n_heads, int head_dim, int pos, float theta) {
    for (int h = 0; h < n_heads; h++)
        for (int i = 0; i < head_dim; i += 2) {
            double ang = pos * pow(theta, -(double)i / head_dim);
            double a = v[h * head_dim + i], b = v[h * head_dim + i + 1];
            v[h * head_dim + i] = (float)(a * cos(ang) - b * sin(ang));
            v[h * head_dim + i + 1] = (float)(a * sin(ang) + b * cos(ang));
        }
}

void hr_layernorm_ref(float *y, const float *x, const float *g, const float *b, int dim, float eps) {
    double mean = 0, var = 0;
    for (int i = 0; i < dim; i++) mean += x[i];
    mean /= dim;
    for (int i = 0; i < dim; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= dim;
    double inv = 1.0 / sqrt(var + eps);
    for (int i = 0; i < dim; i++) y[i] = (float)((x[i] - mean) * inv * g[i] + b[i]);
}

void hr_layernorm(float *y, const float *x, const float *g, const float *b, int dim, float eps) {
    float mean = 0, var = 0;
    for (int i = 0; i < dim; i++) mean += x[i];
    mean /= (float)dim;
    for (int i = 0; i < dim; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= (float)dim;
    float inv = 1.0f / sqrtf(var + eps);
    for (int i = 0; i < dim; i++) y[i] = (x[i] - mean) * inv * g[i] + b[i];
}

void hr_gelu_tanh(float *x, int n) {
    const float c = 0.7978845608028654f; /* sqrt(2/pi) */
    for (int i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(c * (v + 0.044715f * v * v * v)));
    }
}

void hr_softmax_ref(float *x, int n) {
    double mx = x[0], sum = 0;
    for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    for (int i = 0; i < n; i++) sum += exp((double)x[i] - mx);
    for (int i = 0; i < n; i++) x[i] = (float)(exp((double)x[i] - mx) / sum);
}

#if defined(__AVX512F__)
/* exp for x <= 0 (softmax arguments): x = k ln2 + r, |r| <= ln2/2, degree-6
 * polynomial for e^r, then scale by 2^k. Relative error ~2e-7. */
static inline __m512 exp512(__m512 x) {
    __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_GE_OQ); /* below: e^x < FLT_MIN, 0 */
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_maskz_mov_ps(live, _mm512_scalef_ps(p, k));
}

void hr_softmax(float *x, int n) {
    __m512 vmx = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16) vmx = _mm512_max_ps(vmx, _mm512_loadu_ps(x + i));
    float mx = _mm512_reduce_max_ps(vmx);
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    __m512 vm = _mm512_set1_ps(mx), vs = _mm512_setzero_ps();
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm));
        _mm512_storeu_ps(x + i, e);
        vs = _mm512_add_ps(vs, e);
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm));
        e = _mm512_maskz_mov_ps(m, e);
        _mm512_mask_storeu_ps(x + i, m, e);
        vs = _mm512_add_ps(vs, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vs));
    for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), inv));
    for (; i < n; i++) x[i] *= _mm512_cvtss_f32(inv);
}
#else
void hr_softmax(float *x, int n) {
    float mx = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > mx) mx = x[i];
    float s = 0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        s += x[i];
    }
    float inv = 1.0f / s;
    for (int i = 0; i < n; i++) x[i] *= inv;
}
#endif

/* ---- log-probabilities of logits (kernels.h) ---- */

double hr_sum_exp_ref(const float *x, int n, double m) {
    double s = 0;
    for (int i = 0; i < n; i++) s += exp((double)x[i] - m);
    return s;
}

double hr_dot_f64_ref(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

#if defined(__AVX512F__)
/* exp over 8 double lanes: x = k ln2 + r (ln 2 split in two parts),
 * |r| <= ln2/2, e^r by its degree-13 Taylor polynomial, times 2^k.
 * Relative error < 2e-16; x < -700 (e^x < 1e-304) gives 0. */
static inline __m512d exp_pd(__m512d x) {
    __mmask8 live = _mm512_cmp_pd_mask(x, _mm512_set1_pd(-700.0), _CMP_GE_OQ);
    x = _mm512_max_pd(x, _mm512_set1_pd(-700.0));
    __m512d k = _mm512_roundscale_pd(_mm512_mul_pd(x, _mm512_set1_pd(1.4426950408889634)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512d r = _mm512_fnmadd_pd(k, _mm512_set1_pd(6.93147180369123816490e-01), x);
    r = _mm512_fnmadd_pd(k, _mm512_set1_pd(1.90821492927058770002e-10), r);
    __m512d p = _mm512_set1_pd(1.0 / 6227020800.0);
    static const double c[] = {1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0,
                               1.0 / 40320.0,     1.0 / 5040.0,     1.0 / 720.0,     1.0 / 120.0,
                               1.0 / 24.0,        1.0 / 6.0,        0.5,             1.0,
                               1.0};
    for (int i = 0; i < 13; i++) p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(c[i]));
    return _mm512_maskz_mov_pd(live, _mm512_scalef_pd(p, k));
}

float hr_max_f32(const float *x, int n) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
    float mx = _mm512_reduce_max_ps(m);
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    return mx;
}

double hr_sum_exp(const float *x, int n, double m) {
    __m512d acc = _mm512_setzero_pd(), vm = _mm512_set1_pd(m);
    int i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm512_add_pd(acc, exp_pd(_mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), vm)));
    double s = _mm512_reduce_add_pd(acc);
    for (; i < n; i++) s += exp((double)x[i] - m);
    return s;
}

double hr_dot_f64(const float *a, const float *b, int n) {
    __m512d acc = _mm512_setzero_pd();
    int i = 0;
    for (; i + 8 <= n; i += 8)
        acc = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_loadu_ps(a + i)), _mm512_cvtps_pd(_mm256_loadu_ps(b + i)), acc);
    double s = _mm512_reduce_add_pd(acc);
    for (; i < n; i++) s += (double)a[i] * b[i];
    return s;
}
#else
float hr_max_f32(const float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    return mx;
}

double hr_sum_exp(const float *x, int n, double m) { return hr_sum_exp_ref(x, n, m); }
double hr_dot_f64(const float *a, const float *b, int n) { return hr_dot_f64_ref(a, b, n); }
#endif

double hr_logsumexp(const float *x, int n) {
    double m = hr_max_f32(x, n);
    return m + log(hr_sum_exp(x, n, m));
}

double hr_token_nll(const float *x, int n, int tok) { return hr_logsumexp(x, n) - x[tok]; }

double hr_token_nll_llamacpp(const float *x, int n, int tok) {
    float mx = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > mx) mx = x[i];
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += expf(x[i] - mx);
    return -((double)(x[tok] - mx) - log(sum));
}

void hr_attn_values_ref(float *o, const float *s, const float *vt, int ld, int head_dim, int len) {
    for (int d = 0; d < head_dim; d++) {
        double acc = 0;
        for (int p = 0; p < len; p++) acc += (double)s[p] * vt[(size_t)d * ld + p];
        o[d] = (float)acc;
    }
}

void hr_attn_scores_ref(float *s, const float *q, const float *kt, int ld, int head_dim, int len, float scale) {
    for (int p = 0; p < len; p++) {
        double acc = 0;
        for (int d = 0; d < head_dim; d++) acc += (double)q[d] * kt[(size_t)d * ld + p];
        s[p] = (float)(acc * scale);
    }
}

#if defined(__AVX512F__)
/* 64 positions at a time, accumulated over head dims in registers: each key
 * row is read once per block and the scores are written once. */
void hr_attn_scores(float *s, const float *q, const float *kt, int ld, int head_dim, int len, float scale) {
    const __m512 vs = _mm512_set1_ps(scale);
    int p = 0;
    for (; p + 64 <= len; p += 64) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int d = 0; d < head_dim; d++) {
            const float *row = kt + (size_t)d * ld + p;
            __m512 qd = _mm512_set1_ps(q[d]);
            a0 = _mm512_fmadd_ps(qd, _mm512_loadu_ps(row), a0);
            a1 = _mm512_fmadd_ps(qd, _mm512_loadu_ps(row + 16), a1);
            a2 = _mm512_fmadd_ps(qd, _mm512_loadu_ps(row + 32), a2);
            a3 = _mm512_fmadd_ps(qd, _mm512_loadu_ps(row + 48), a3);
        }
        _mm512_storeu_ps(s + p, _mm512_mul_ps(a0, vs));
        _mm512_storeu_ps(s + p + 16, _mm512_mul_ps(a1, vs));
        _mm512_storeu_ps(s + p + 32, _mm512_mul_ps(a2, vs));
        _mm512_storeu_ps(s + p + 48, _mm512_mul_ps(a3, vs));
    }
    for (; p < len; p += 16) {
        __mmask16 m = len - p >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (len - p)) - 1);
        __m512 a = _mm512_setzero_ps();
        for (int d = 0; d < head_dim; d++)
            a = _mm512_fmadd_ps(_mm512_set1_ps(q[d]), _mm512_maskz_loadu_ps(m, kt + (size_t)d * ld + p), a);
        _mm512_mask_storeu_ps(s + p, m, _mm512_mul_ps(a, vs));
    }
}

/* o[d] = dot(s, vt[d]) for every head dim, four rows per pass so each load
 * of s feeds four FMAs; per output exactly hr_dot's arithmetic. */
/* Stops the compiler from folding a load into each of the FMAs that use it
 * (which would multiply the loads of the inner loops by nq). */
#define HR_KEEP_IN_REG(v) __asm__("" : "+v"(v))

/* nq queries x 64 positions per block: each key load feeds nq FMAs. The
 * chain of every score is hr_attn_scores's (over d from zero, then scale). */
static inline __attribute__((always_inline)) void scores_q(float *s, size_t ss, const float *q, size_t qs, int nq,
                                                           const float *kt, int ld, int head_dim, int len,
                                                           float scale) {
    const __m512 vs = _mm512_set1_ps(scale);
    int p = 0;
    for (; p + 64 <= len; p += 64) {
        __m512 a[4][4];
        for (int i = 0; i < nq; i++)
            for (int b = 0; b < 4; b++) a[i][b] = _mm512_setzero_ps();
        for (int d = 0; d < head_dim; d++) {
            const float *row = kt + (size_t)d * ld + p;
            __m512 k0 = _mm512_loadu_ps(row), k1 = _mm512_loadu_ps(row + 16);
            __m512 k2 = _mm512_loadu_ps(row + 32), k3 = _mm512_loadu_ps(row + 48);
            if (nq > 1) {
                HR_KEEP_IN_REG(k0);
                HR_KEEP_IN_REG(k1);
                HR_KEEP_IN_REG(k2);
                HR_KEEP_IN_REG(k3);
            }
            for (int i = 0; i < nq; i++) {
                __m512 qd = _mm512_set1_ps(q[(size_t)i * qs + d]);
                a[i][0] = _mm512_fmadd_ps(qd, k0, a[i][0]), a[i][1] = _mm512_fmadd_ps(qd, k1, a[i][1]);
                a[i][2] = _mm512_fmadd_ps(qd, k2, a[i][2]), a[i][3] = _mm512_fmadd_ps(qd, k3, a[i][3]);
            }
        }
        for (int i = 0; i < nq; i++)
            for (int b = 0; b < 4; b++) _mm512_storeu_ps(s + (size_t)i * ss + p + 16 * b, _mm512_mul_ps(a[i][b], vs));
    }
    for (; p < len; p += 16) {
        __mmask16 m = len - p >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (len - p)) - 1);
        __m512 a[4];
        for (int i = 0; i < nq; i++) a[i] = _mm512_setzero_ps();
        for (int d = 0; d < head_dim; d++) {
            __m512 kv = _mm512_maskz_loadu_ps(m, kt + (size_t)d * ld + p);
            for (int i = 0; i < nq; i++) a[i] = _mm512_fmadd_ps(_mm512_set1_ps(q[(size_t)i * qs + d]), kv, a[i]);
        }
        for (int i = 0; i < nq; i++) _mm512_mask_storeu_ps(s + (size_t)i * ss + p, m, _mm512_mul_ps(a[i], vs));
    }
}

void hr_attn_scores_multi(float *s, size_t ss, const float *q, size_t qs, int nq, const float *kt, int ld,
                          int head_dim, int len, float scale) {
    switch (nq) {
    case 4: scores_q(s, ss, q, qs, 4, kt, ld, head_dim, len, scale); break;
    case 3: scores_q(s, ss, q, qs, 3, kt, ld, head_dim, len, scale); break;
    case 2: scores_q(s, ss, q, qs, 2, kt, ld, head_dim, len, scale); break;
    default: scores_q(s, ss, q, qs, 1, kt, ld, head_dim, len, scale); break;
    }
}

/* Horizontal sums of 16 vectors at once, returned as lane 4i+j = sum of
 * A(i + 4j) (A0..A15 in argument order). Each sum uses exactly the tree of
 * _mm512_reduce_add_ps (pairs at distance 8, 4, 2, 1), so results are
 * bit-identical to hsum512 on each vector alone. */
static inline __m512 reduce16(__m512 a0, __m512 a1, __m512 a2, __m512 a3, __m512 a4, __m512 a5, __m512 a6,
                              __m512 a7, __m512 a8, __m512 a9, __m512 a10, __m512 a11, __m512 a12, __m512 a13,
                              __m512 a14, __m512 a15) {
#define HALVES(x, y) _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x44), _mm512_shuffle_f32x4(x, y, 0xEE))
#define QUARTERS(x, y) _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x88), _mm512_shuffle_f32x4(x, y, 0xDD))
    /* distance 8: b_k = [A(2k) s8 | A(2k+1) s8] */
    __m512 b0 = HALVES(a0, a1), b1 = HALVES(a2, a3), b2 = HALVES(a4, a5), b3 = HALVES(a6, a7);
    __m512 b4 = HALVES(a8, a9), b5 = HALVES(a10, a11), b6 = HALVES(a12, a13), b7 = HALVES(a14, a15);
    /* distance 4: c_k quarter q = s4 of A(4k + q) */
    __m512 c0 = QUARTERS(b0, b1), c1 = QUARTERS(b2, b3), c2 = QUARTERS(b4, b5), c3 = QUARTERS(b6, b7);
    /* distance 2 within quarters: d0 quarter q = [A(q) s2 (2) | A(4+q) s2 (2)] */
    __m512 d0 = _mm512_add_ps(_mm512_shuffle_ps(c0, c1, 0x44), _mm512_shuffle_ps(c0, c1, 0xEE));
    __m512 d1 = _mm512_add_ps(_mm512_shuffle_ps(c2, c3, 0x44), _mm512_shuffle_ps(c2, c3, 0xEE));
    /* distance 1: quarter q = [A(q), A(4+q), A(8+q), A(12+q)] */
    return _mm512_add_ps(_mm512_shuffle_ps(d0, d1, 0x88), _mm512_shuffle_ps(d0, d1, 0xDD));
#undef HALVES
#undef QUARTERS
}

/* Lanes of one 16-position block of a query that sees len positions: all 16,
 * or a partial last block; loads outside it read nothing (0 x 0 adds 0). */
static inline __mmask16 block_mask(int k, int len) {
    return len - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (len - k)) - 1);
}

/* Four head dims x nq queries: each value load feeds nq FMAs, each score
 * load four. Every output o_i[d] is 16 lanes accumulated over the blocks of
 * positions in order (the last block masked), then summed by the tree of
 * _mm512_reduce_add_ps; the lanes run first over the blocks every query has
 * whole, then each query finishes its own. One query (decode) and several
 * (prefill) therefore agree bit for bit. */
static inline __attribute__((always_inline)) void values_q(float *o, size_t os, const float *s, size_t ss, int nq,
                                                           const float *vt, int ld, int head_dim, const int *len) {
    int common = len[0];
    for (int i = 1; i < nq; i++) common = len[i] < common ? len[i] : common;
    common &= ~15;
    int d = 0;
    for (; d < head_dim; d += 4) {
        int nd = head_dim - d < 4 ? head_dim - d : 4;
        const float *v[4];
        for (int r = 0; r < 4; r++) v[r] = vt + (size_t)(d + (r < nd ? r : 0)) * ld; /* spare rows repeat row d */
        __m512 a[4][4];
        for (int i = 0; i < nq; i++)
            for (int r = 0; r < 4; r++) a[i][r] = _mm512_setzero_ps();
        for (int k = 0; k < common; k += 16) {
            __m512 v0 = _mm512_loadu_ps(v[0] + k), v1 = _mm512_loadu_ps(v[1] + k);
            __m512 v2 = _mm512_loadu_ps(v[2] + k), v3 = _mm512_loadu_ps(v[3] + k);
            if (nq > 1) {
                HR_KEEP_IN_REG(v0);
                HR_KEEP_IN_REG(v1);
                HR_KEEP_IN_REG(v2);
                HR_KEEP_IN_REG(v3);
            }
            for (int i = 0; i < nq; i++) {
                __m512 sv = _mm512_loadu_ps(s + (size_t)i * ss + k);
                HR_KEEP_IN_REG(sv);
                a[i][0] = _mm512_fmadd_ps(sv, v0, a[i][0]), a[i][1] = _mm512_fmadd_ps(sv, v1, a[i][1]);
                a[i][2] = _mm512_fmadd_ps(sv, v2, a[i][2]), a[i][3] = _mm512_fmadd_ps(sv, v3, a[i][3]);
            }
        }
        for (int i = 0; i < nq; i++) {
            const float *si = s + (size_t)i * ss;
            for (int k = common; k < len[i]; k += 16) {
                __mmask16 m = block_mask(k, len[i]);
                __m512 sv = _mm512_maskz_loadu_ps(m, si + k);
                for (int r = 0; r < 4; r++)
                    a[i][r] = _mm512_fmadd_ps(sv, _mm512_maskz_loadu_ps(m, v[r] + k), a[i][r]);
            }
        }
        float sums[16];
        if (nq == 4) { /* lane 4i + r = query i, dim d + r */
            _mm512_storeu_ps(sums, reduce16(a[0][0], a[1][0], a[2][0], a[3][0], a[0][1], a[1][1], a[2][1], a[3][1],
                                            a[0][2], a[1][2], a[2][2], a[3][2], a[0][3], a[1][3], a[2][3], a[3][3]));
        } else {
            for (int i = 0; i < nq; i++)
                for (int r = 0; r < 4; r++) sums[4 * i + r] = hsum512(a[i][r]);
        }
        for (int i = 0; i < nq; i++)
            for (int r = 0; r < nd; r++) o[(size_t)i * os + d + r] = sums[4 * i + r];
    }
}

void hr_attn_values(float *o, const float *s, const float *vt, int ld, int head_dim, int len) {
    values_q(o, 0, s, 0, 1, vt, ld, head_dim, &len);
}

void hr_attn_values_multi(float *o, size_t os, const float *s, size_t ss, int nq, const float *vt, int ld,
                          int head_dim, const int *len) {
    switch (nq) {
    case 4: values_q(o, os, s, ss, 4, vt, ld, head_dim, len); break;
    case 3: values_q(o, os, s, ss, 3, vt, ld, head_dim, len); break;
    case 2: values_q(o, os, s, ss, 2, vt, ld, head_dim, len); break;
    default: values_q(o, os, s, ss, 1, vt, ld, head_dim, len); break;
    }
}
#else
void hr_attn_scores(float *s, const float *q, const float *kt, int ld, int head_dim, int len, float scale) {
    for (int p = 0; p < len; p++) s[p] = q[0] * kt[p];
    for (int d = 1; d < head_dim; d++) {
        const float *row = kt + (size_t)d * ld;
        float qd = q[d];
        for (int p = 0; p < len; p++) s[p] += qd * row[p];
    }
    for (int p = 0; p < len; p++) s[p] *= scale;
}

void hr_attn_values(float *o, const float *s, const float *vt, int ld, int head_dim, int len) {
    for (int d = 0; d < head_dim; d++) o[d] = hr_dot(s, vt + (size_t)d * ld, len);
}

void hr_attn_scores_multi(float *s, size_t ss, const float *q, size_t qs, int nq, const float *kt, int ld,
                          int head_dim, int len, float scale) {
    for (int i = 0; i < nq; i++) hr_attn_scores(s + (size_t)i * ss, q + (size_t)i * qs, kt, ld, head_dim, len, scale);
}

void hr_attn_values_multi(float *o, size_t os, const float *s, size_t ss, int nq, const float *vt, int ld,
                          int head_dim, const int *len) {
    for (int i = 0; i < nq; i++) hr_attn_values(o + (size_t)i * os, s + (size_t)i * ss, vt, ld, head_dim, len[i]);
}
#endif

void hr_swiglu_ref(float *h, const float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        float g = gate[i];
        h[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

#if defined(__AVX512F__)
void hr_swiglu(float *h, const float *gate, const float *up, int n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 g = _mm512_loadu_ps(gate + i);
        __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), g));
        _mm512_storeu_ps(h + i, _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(one, e)), _mm512_loadu_ps(up + i)));
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
        __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), g));
        _mm512_mask_storeu_ps(h + i, m, _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(one, e)), _mm512_maskz_loadu_ps(m, up + i)));
    }
}
#else
void hr_swiglu(float *h, const float *gate, const float *up, int n) { hr_swiglu_ref(h, gate, up, n); }
#endif
