#include "kernels.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

void hr_gemv_rows_ref(float *y, const float *x, const float *w, int d_in, int r0, int r1) {
    for (int r = r0; r < r1; r++) {
        float s = 0;
        for (int k = 0; k < d_in; k++) s += w[(size_t)r * d_in + k] * x[k];
        y[r] = s;
    }
}

#if defined(__AVX512F__)
static inline float hsum512(__m512 v) { return _mm512_reduce_add_ps(v); }

/* Four rows at once so each load of x feeds four FMAs. */
void hr_gemv_rows(float *y, const float *x, const float *w, int d_in, int r0, int r1) {
    int r = r0;
    const int kv = d_in & ~15;
    for (; r + 4 <= r1; r += 4) {
        const float *w0 = w + (size_t)r * d_in, *w1 = w0 + d_in, *w2 = w1 + d_in, *w3 = w2 + d_in;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int k = 0; k < kv; k += 16) {
            __m512 xv = _mm512_loadu_ps(x + k);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + k), xv, a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + k), xv, a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + k), xv, a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + k), xv, a3);
        }
        float s0 = hsum512(a0), s1 = hsum512(a1), s2 = hsum512(a2), s3 = hsum512(a3);
        for (int k = kv; k < d_in; k++) {
            s0 += w0[k] * x[k], s1 += w1[k] * x[k], s2 += w2[k] * x[k], s3 += w3[k] * x[k];
        }
        y[r] = s0, y[r + 1] = s1, y[r + 2] = s2, y[r + 3] = s3;
    }
    for (; r < r1; r++) y[r] = hr_dot(w + (size_t)r * d_in, x, d_in);
}

float hr_dot(const float *a, const float *b, int n) {
    __m512 acc = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= n; k += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + k), _mm512_loadu_ps(b + k), acc);
    float s = hsum512(acc);
    for (; k < n; k++) s += a[k] * b[k];
    return s;
}

/* GEMM over output rows [r0, r1): 4 tokens × 4 rows per tile. Every output
 * is accumulated exactly as hr_gemv_rows does it (same lanes, same order,
 * same reduction), so batched prefill and one-token decode agree bit for bit. */

/* Horizontal sums of 16 vectors at once, returned as lane m*4+q = sum of
 * A(q + 4m) (A0..A15 in argument order). Each sum uses exactly the tree of
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

/* Stops the compiler from folding a load into each of the four FMAs that
 * use it (which would quadruple the loads of the inner loop). */
#define HR_KEEP_IN_REG(v) __asm__("" : "+v"(v))

/* One tile: tokens [t, t+4) × rows [r, r+4). xp holds the tile's x rows packed
 * as [k/16][token][16] so the inner loop reads one sequential stream; x itself
 * is only read for the d_in % 16 tail. */
static inline void gemm_tile_4x4(float *y, const float *x, const float *xp, const float *w, int t, int r, int d_in,
                                 int d_out) {
    const int kv = d_in & ~15;
    const float *w0 = w + (size_t)r * d_in, *w1 = w0 + d_in, *w2 = w1 + d_in, *w3 = w2 + d_in;
    const float *x0 = x + (size_t)t * d_in, *x1 = x0 + d_in, *x2 = x1 + d_in, *x3 = x2 + d_in;
    __m512 acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = _mm512_setzero_ps();
    for (int k = 0; k < kv; k += 16) {
        __m512 a0 = _mm512_loadu_ps(w0 + k), a1 = _mm512_loadu_ps(w1 + k);
        __m512 a2 = _mm512_loadu_ps(w2 + k), a3 = _mm512_loadu_ps(w3 + k);
        HR_KEEP_IN_REG(a0);
        HR_KEEP_IN_REG(a1);
        HR_KEEP_IN_REG(a2);
        HR_KEEP_IN_REG(a3);
        __m512 b;
        b = _mm512_load_ps(xp + (size_t)k * 4 + 0);
        HR_KEEP_IN_REG(b);
        acc[0][0] = _mm512_fmadd_ps(a0, b, acc[0][0]), acc[0][1] = _mm512_fmadd_ps(a1, b, acc[0][1]);
        acc[0][2] = _mm512_fmadd_ps(a2, b, acc[0][2]), acc[0][3] = _mm512_fmadd_ps(a3, b, acc[0][3]);
        b = _mm512_load_ps(xp + (size_t)k * 4 + 16);
        HR_KEEP_IN_REG(b);
        acc[1][0] = _mm512_fmadd_ps(a0, b, acc[1][0]), acc[1][1] = _mm512_fmadd_ps(a1, b, acc[1][1]);
        acc[1][2] = _mm512_fmadd_ps(a2, b, acc[1][2]), acc[1][3] = _mm512_fmadd_ps(a3, b, acc[1][3]);
        b = _mm512_load_ps(xp + (size_t)k * 4 + 32);
        HR_KEEP_IN_REG(b);
        acc[2][0] = _mm512_fmadd_ps(a0, b, acc[2][0]), acc[2][1] = _mm512_fmadd_ps(a1, b, acc[2][1]);
        acc[2][2] = _mm512_fmadd_ps(a2, b, acc[2][2]), acc[2][3] = _mm512_fmadd_ps(a3, b, acc[2][3]);
        b = _mm512_load_ps(xp + (size_t)k * 4 + 48);
        HR_KEEP_IN_REG(b);
        acc[3][0] = _mm512_fmadd_ps(a0, b, acc[3][0]), acc[3][1] = _mm512_fmadd_ps(a1, b, acc[3][1]);
        acc[3][2] = _mm512_fmadd_ps(a2, b, acc[3][2]), acc[3][3] = _mm512_fmadd_ps(a3, b, acc[3][3]);
    }
    /* Lane 4i+j of the reduced vector is the sum for (token i, row j). */
    __m512 red = reduce16(acc[0][0], acc[1][0], acc[2][0], acc[3][0], acc[0][1], acc[1][1], acc[2][1], acc[3][1],
                          acc[0][2], acc[1][2], acc[2][2], acc[3][2], acc[0][3], acc[1][3], acc[2][3], acc[3][3]);
    if (kv == d_in) {
        _mm_storeu_ps(y + (size_t)(t + 0) * d_out + r, _mm512_extractf32x4_ps(red, 0));
        _mm_storeu_ps(y + (size_t)(t + 1) * d_out + r, _mm512_extractf32x4_ps(red, 1));
        _mm_storeu_ps(y + (size_t)(t + 2) * d_out + r, _mm512_extractf32x4_ps(red, 2));
        _mm_storeu_ps(y + (size_t)(t + 3) * d_out + r, _mm512_extractf32x4_ps(red, 3));
        return;
    }
    float sums[16];
    _mm512_storeu_ps(sums, red);
    const float *xs[4] = {x0, x1, x2, x3}, *ws[4] = {w0, w1, w2, w3};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            float s = sums[4 * i + j];
            for (int k = kv; k < d_in; k++) s += ws[j][k] * xs[i][k];
            y[(size_t)(t + i) * d_out + r + j] = s;
        }
}

enum { GEMM_TOKEN_BLOCK = 64 }; /* 64 rows of x stay in L2 */

/* GEMM over output rows [r0, r1) with x packed by hr_gemm_pack: 4 tokens × 4 rows per tile, tokens in
 * blocks that stay in L2 while the weight rows stream past. Every output is
 * accumulated exactly as hr_gemv_rows does it (same lanes, same order, same
 * reduction), so batched prefill and one-token decode agree bit for bit. */
size_t hr_gemm_packed_floats(int n, int d_in) { return (size_t)(n / 4) * 4 * (size_t)(d_in & ~15); }

void hr_gemm_pack(float *xp, const float *x, int n, int d_in) {
    const int kv = d_in & ~15;
    for (int t = 0; t + 4 <= n; t += 4) {
        float *tile = xp + (size_t)t * kv;
        for (int k = 0; k < kv; k += 16)
            for (int i = 0; i < 4; i++) memcpy(tile + (size_t)k * 4 + 16 * i, x + (size_t)(t + i) * d_in + k, 64);
    }
}

void hr_gemm_rows_packed(float *y, const float *x, const float *xp, const float *w, int n, int d_in, int d_out,
                         int r0, int r1) {
    const size_t kv = (size_t)(d_in & ~15);
    for (int tb = 0; tb < n; tb += GEMM_TOKEN_BLOCK) {
        int te = tb + GEMM_TOKEN_BLOCK < n ? tb + GEMM_TOKEN_BLOCK : n;
        int r = r0;
        for (; r + 4 <= r1; r += 4) {
            int t = tb;
            for (; t + 4 <= te; t += 4) gemm_tile_4x4(y, x, xp + (size_t)t * kv, w, t, r, d_in, d_out);
            for (; t < te; t++) hr_gemv_rows(y + (size_t)t * d_out, x + (size_t)t * d_in, w, d_in, r, r + 4);
        }
        for (; r < r1; r++)
            for (int t = tb; t < te; t++)
                y[(size_t)t * d_out + r] = hr_dot(w + (size_t)r * d_in, x + (size_t)t * d_in, d_in);
    }
}
#else

size_t hr_gemm_packed_floats(int n, int d_in) {
    (void)n, (void)d_in;
    return 0;
}

void hr_gemm_pack(float *xp, const float *x, int n, int d_in) { (void)xp, (void)x, (void)n, (void)d_in; }

void hr_gemm_rows_packed(float *y, const float *x, const float *xp, const float *w, int n, int d_in, int d_out,
                         int r0, int r1) {
    (void)xp;
    for (int t = 0; t < n; t++) hr_gemv_rows(y + (size_t)t * d_out, x + (size_t)t * d_in, w, d_in, r0, r1);
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

void hr_gemv_rows(float *y, const float *x, const float *w, int d_in, int r0, int r1) {
    int r = r0;
    const int kv = d_in & ~7;
    for (; r + 4 <= r1; r += 4) {
        const float *w0 = w + (size_t)r * d_in, *w1 = w0 + d_in, *w2 = w1 + d_in, *w3 = w2 + d_in;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int k = 0; k < kv; k += 8) {
            __m256 xv = _mm256_loadu_ps(x + k);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k), xv, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k), xv, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k), xv, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k), xv, a3);
        }
        float s0 = hsum256(a0), s1 = hsum256(a1), s2 = hsum256(a2), s3 = hsum256(a3);
        for (int k = kv; k < d_in; k++) {
            s0 += w0[k] * x[k], s1 += w1[k] * x[k], s2 += w2[k] * x[k], s3 += w3[k] * x[k];
        }
        y[r] = s0, y[r + 1] = s1, y[r + 2] = s2, y[r + 3] = s3;
    }
    for (; r < r1; r++) y[r] = hr_dot(w + (size_t)r * d_in, x, d_in);
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
void hr_gemv_rows(float *y, const float *x, const float *w, int d_in, int r0, int r1) {
    for (int r = r0; r < r1; r++) y[r] = hr_dot(w + (size_t)r * d_in, x, d_in);
}

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

typedef struct {
    float *y;
    const float *x, *xp, *w;
    int n, d_in, d_out, rows_per_task;
    int blas; /* n > 1 through OpenBLAS sgemm */
} matmul_job;

static void matmul_task(void *vp, int i) {
    const matmul_job *j = vp;
    int r0 = i * j->rows_per_task, r1 = r0 + j->rows_per_task;
    if (r1 > j->d_out) r1 = j->d_out;
    if (r0 >= r1) return;
    if (j->n == 1) {
        hr_gemv_rows(j->y, j->x, j->w, j->d_in, r0, r1);
        return;
    }
    if (j->blas)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->n, r1 - r0, j->d_in, 1.0f, j->x, j->d_in,
                    j->w + (size_t)r0 * j->d_in, j->d_in, 0.0f, j->y + r0, j->d_out);
    else
        hr_gemm_rows_packed(j->y, j->x, j->xp, j->w, j->n, j->d_in, j->d_out, r0, r1);
}

static int row_split(int nt, int n, int d_out, int *n_tasks) {
    /* GEMV: a few tasks per thread balance uneven cores; GEMM: one block
     * per thread keeps panels large. Rows stay multiples of 16. */
    int k = n == 1 ? nt * 4 : nt;
    int per = (d_out + k - 1) / k;
    per = (per + 15) & ~15;
    if (per < 16) per = 16;
    *n_tasks = (d_out + per - 1) / per;
    return per;
}

void hr_matmul_blas(hr_pool *pool, float *y, const float *x, const float *w, int n, int d_in, int d_out) {
    if (n == 1) {
        hr_matmul(pool, y, x, w, n, d_in, d_out);
        return;
    }
    int n_tasks, per = row_split(hr_pool_n_threads(pool), n, d_out, &n_tasks);
    matmul_job j = {y, x, NULL, w, n, d_in, d_out, per, 1};
    hr_pool_run(pool, matmul_task, &j, n_tasks);
}

void hr_matmul(hr_pool *pool, float *y, const float *x, const float *w, int n, int d_in, int d_out) {
    int n_tasks, per = row_split(hr_pool_n_threads(pool), n, d_out, &n_tasks);
    /* The packed copy of x is shared by all tasks; the buffer is kept per
     * calling thread and grows to the largest batch seen. */
    static _Thread_local float *packed;
    static _Thread_local size_t packed_cap;
    size_t need = n > 1 ? hr_gemm_packed_floats(n, d_in) : 0;
    if (need > packed_cap) {
        free(packed);
        packed = aligned_alloc(64, ((need * sizeof(float)) + 63) & ~(size_t)63);
        packed_cap = packed ? need : 0;
    }
    const float *xp = NULL;
    if (need) {
        if (!packed) { /* no memory for the packed copy: exact row-by-row GEMV instead */
            for (int t = 0; t < n; t++) hr_matmul(pool, y + (size_t)t * d_out, x + (size_t)t * d_in, w, 1, d_in, d_out);
            return;
        }
        hr_gemm_pack(packed, x, n, d_in);
        xp = packed;
    }
    matmul_job j = {y, x, xp, w, n, d_in, d_out, per, 0};
    hr_pool_run(pool, matmul_task, &j, n_tasks);
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
void hr_attn_values(float *o, const float *s, const float *vt, int ld, int head_dim, int len) {
    int d = 0;
    const int kv = len & ~15;
    for (; d + 4 <= head_dim; d += 4) {
        const float *v0 = vt + (size_t)d * ld, *v1 = v0 + ld, *v2 = v1 + ld, *v3 = v2 + ld;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int k = 0; k < kv; k += 16) {
            __m512 sv = _mm512_loadu_ps(s + k);
            a0 = _mm512_fmadd_ps(sv, _mm512_loadu_ps(v0 + k), a0);
            a1 = _mm512_fmadd_ps(sv, _mm512_loadu_ps(v1 + k), a1);
            a2 = _mm512_fmadd_ps(sv, _mm512_loadu_ps(v2 + k), a2);
            a3 = _mm512_fmadd_ps(sv, _mm512_loadu_ps(v3 + k), a3);
        }
        float r0 = hsum512(a0), r1 = hsum512(a1), r2 = hsum512(a2), r3 = hsum512(a3);
        for (int k = kv; k < len; k++) r0 += s[k] * v0[k], r1 += s[k] * v1[k], r2 += s[k] * v2[k], r3 += s[k] * v3[k];
        o[d] = r0, o[d + 1] = r1, o[d + 2] = r2, o[d + 3] = r3;
    }
    for (; d < head_dim; d++) o[d] = hr_dot(s, vt + (size_t)d * ld, len);
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
#endif

void hr_swiglu(float *h, const float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        float g = gate[i];
        h[i] = g / (1.0f + expf(-g)) * up[i];
    }
}
