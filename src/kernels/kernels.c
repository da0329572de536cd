#include "kernels.h"

#include <cblas.h>
#include <math.h>
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
    const float *x, *w;
    int n, d_in, d_out, rows_per_task;
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
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->n, r1 - r0, j->d_in, 1.0f, j->x, j->d_in,
                j->w + (size_t)r0 * j->d_in, j->d_in, 0.0f, j->y + r0, j->d_out);
}

void hr_matmul(hr_pool *pool, float *y, const float *x, const float *w, int n, int d_in, int d_out) {
    int nt = hr_pool_n_threads(pool);
    /* GEMV: a few tasks per thread balance uneven cores; GEMM: one block
     * per thread keeps sgemm's panels large. Rows stay multiples of 16. */
    int n_tasks = n == 1 ? nt * 4 : nt;
    int per = (d_out + n_tasks - 1) / n_tasks;
    per = (per + 15) & ~15;
    if (per < 16) per = 16;
    n_tasks = (d_out + per - 1) / per;
    matmul_job j = {y, x, w, n, d_in, d_out, per};
    hr_pool_run(pool, matmul_task, &j, n_tasks);
}

void hr_rmsnorm(float *y, const float *x, const float *g, int dim, float eps) {
    float ss = 0;
    for (int i = 0; i < dim; i++) ss += x[i] * x[i];
    float inv = 1.0f / sqrtf(ss / (float)dim + eps);
    for (int i = 0; i < dim; i++) y[i] = x[i] * inv * g[i];
}

void hr_rope_table(float *cos_t, float *sin_t, int head_dim, int pos, float theta) {
    for (int i = 0; i < head_dim / 2; i++) {
        double freq = pow((double)theta, -2.0 * i / head_dim);
        double a = (double)pos * freq;
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

void hr_swiglu(float *h, const float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        float g = gate[i];
        h[i] = g / (1.0f + expf(-g)) * up[i];
    }
}
