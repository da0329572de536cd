#include "engine/kernels.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "engine/blas.h"
#include "formats/dtype.h"
#include "model/model_internal.h"

#include "engine/kernels_isa.h"
#include "headroom/context.h"

#if HR_KERNELS_X86
#include <cpuid.h>
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

/* ---- typed panels: the layout lives in formats/panels.c ---- */

void hr_matmul_panels_ref(float *y, const float *x, hr_panels wp, int n, int d_in, int d_out) {
    for (int t = 0; t < n; t++)
        for (int r = 0; r < d_out; r++) {
            float acc = 0.0f;
            for (int k = 0; k < d_in; k++) acc = fmaf(x[(size_t)t * d_in + k], hr_panels_get(wp, d_in, r, k), acc);
            y[(size_t)t * d_out + r] = acc;
        }
}

/* ---- bf16 dot (kernels.h) ---- */

/* An activation as the bf16 dot rounds it: denormals to zero of the same
 * sign, then round to nearest even (hr_f32_to_bf16; NaN stays NaN). */
static uint16_t act_bf16(float f) {
    if (fabsf(f) < 0x1p-126f) f = copysignf(0.0f, f);
    return hr_f32_to_bf16(f);
}

void hr_bf16_pairs(uint32_t *xq, const float *x, int n, int d_in) { hr_kernels()->bf16_pairs(xq, x, n, d_in); }

/* Denormals to zero of the same sign (DAZ on inputs, FTZ on results). */
static float flush_denormal(float f) { return fabsf(f) < 0x1p-126f ? copysignf(0.0f, f) : f; }

void hr_matmul_bf16dot_ref(float *y, const float *x, hr_panels wp, int n, int d_in, int d_out) {
    for (int t = 0; t < n; t++)
        for (int r = 0; r < d_out; r++) {
            float acc = 0.0f;
            for (int k = 0; k < d_in; k++) {
                float xk = hr_bf16_to_f32(act_bf16(x[(size_t)t * d_in + k]));
                float wk = flush_denormal(hr_panels_get(wp, d_in, r, k));
                acc = flush_denormal(fmaf(xk, wk, acc));
            }
            y[(size_t)t * d_out + r] = acc;
        }
}

/* ---- int8 dot (kernels.h) ---- */

size_t hr_q8_act_bytes(int n, int d_in) { return sizeof(hr_q8_act) * (size_t)n * (size_t)(d_in / 32); }

void hr_q8_acts(hr_q8_act *xa, const float *x, int n, int d_in) { hr_kernels()->q8_acts(xa, x, n, d_in); }

void hr_matmul_int8dot_ref(float *y, const float *x, hr_panels wp, int n, int d_in, int d_out) {
    for (int t = 0; t < n; t++) {
        const float *xt = x + (size_t)t * d_in;
        for (int r = 0; r < d_out; r++) {
            float acc = 0.0f;
            for (int b = 0; b < d_in / 32; b++) {
                /* block b's activations: llama.cpp's quantize_row_q8_0 (reference), d kept in f32 */
                float amax = 0.0f;
                bool finite = true;
                for (int i = 0; i < 32; i++) {
                    finite = finite && isfinite(xt[32 * b + i]);
                    amax = fmaxf(amax, fabsf(xt[32 * b + i]));
                }
                float dx = amax / 127.0f;
                if (!finite) dx = NAN;
                else if (dx < FLT_MIN) dx = 0.0f;
                float id = dx > 0.0f ? 1.0f / dx : 0.0f, dw = 0.0f;
                int32_t s = 0; /* sum of q_w q_x over the block */
                for (int i = 0; i < 32; i++) {
                    int32_t qx = dx > 0.0f ? (int32_t)roundf(xt[32 * b + i] * id) : 0;
                    s += hr_panels_get_int8(wp, d_in, r, 32 * b + i, &dw) * qx;
                }
                acc = fmaf((float)s, dw * dx, acc);
            }
            y[(size_t)t * d_out + r] = acc;
        }
    }
}

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
    int blas;                  /* n > 1 through OpenBLAS sgemm */
    const uint32_t *xq;        /* (n, (d_in + 1) / 2) activation pairs: bf16 panels by the bf16 dot; NULL = exact */
    const hr_kernel_table *kt; /* one path for the whole job */
    void (*gemv_dot)(float *, const uint32_t *, const void *, int, int, int, int);
    void (*gemm_dot)(float *, const uint32_t *, const void *, int, int, int, int, int);
    const hr_q8_act *xa; /* (n, d_in / 32) int8 activation blocks: Q8_0 / int8 panels by the int8 dot; NULL = exact */
    void (*gemv_i8)(float *, const hr_q8_act *, const void *, int, int, int, int, int);
    void (*gemm_i8)(float *, const hr_q8_act *, const void *, int, int, int, int, int, int);
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
    if (j->xq && o->wp.t == HR_WT_BF16) {
        int n_pairs = (j->d_in + 1) / 2;
        if (j->n < 4)
            for (int t = 0; t < j->n; t++)
                j->gemv_dot(o->y + (size_t)t * o->d_out, j->xq + (size_t)t * n_pairs, o->wp.p, j->d_in, o->d_out, p0,
                            p1);
        else j->gemm_dot(o->y, j->xq, o->wp.p, j->n, j->d_in, o->d_out, p0, p1);
    } else if (j->xa && (o->wp.t == HR_WT_Q8_0 || o->wp.t == HR_WT_I8)) {
        int nb = j->d_in / 32;
        if (j->n < 4)
            for (int t = 0; t < j->n; t++)
                j->gemv_i8(o->y + (size_t)t * o->d_out, j->xa + (size_t)t * nb, o->wp.p, o->wp.t, j->d_in, o->d_out, p0,
                           p1);
        else j->gemm_i8(o->y, j->xa, o->wp.p, o->wp.t, j->n, j->d_in, o->d_out, p0, p1);
    } else if (j->blas && o->w) {
        int r0 = p0 * 16, r1 = p1 * 16 < o->d_out ? p1 * 16 : o->d_out;
        hr_sgemm_nt(o->y + r0, o->d_out, j->x, o->w + (size_t)r0 * j->d_in, j->n, j->d_in, r1 - r0);
    } else if (j->n < 4) { /* too few tokens to fill a tile: same chains, one token at a time */
        for (int t = 0; t < j->n; t++)
            j->kt->gemv_panels(o->y + (size_t)t * o->d_out, j->x + (size_t)t * j->d_in, o->wp.p, o->wp.t, j->d_in,
                               o->d_out, p0, p1);
    } else {
        j->kt->gemm_panels(o->y, j->x, o->wp.p, o->wp.t, j->n, j->d_in, o->d_out, p0, p1);
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

void hr_matmul_multi(hr_pool *pool, const float *x, int n, int d_in, const hr_matmul_out *outs, int n_outs, bool blas,
                     uint32_t *xq, hr_q8_act *xa) {
    matmul_job j;
    memset(&j, 0, sizeof j);
    bool any_bf16 = false, any_q8 = false;
    for (int m = 0; m < n_outs && m < HR_MATMUL_MAX_OUTS; m++) {
        j.out[j.n_outs++] = outs[m];
        any_bf16 |= outs[m].wp.t == HR_WT_BF16;
        any_q8 |= outs[m].wp.t == HR_WT_Q8_0 || outs[m].wp.t == HR_WT_I8;
    }
    j.x = x, j.n = n, j.d_in = d_in, j.blas = blas && n > 1, j.kt = hr_kernels();
    if (xq && any_bf16) {
        j.kt->bf16_pairs(xq, x, n, d_in);
        bool hw = hr_cpu_bf16_hw() && j.kt->gemm_bf16dot_hw;
        j.xq = xq;
        j.gemv_dot = hw ? j.kt->gemv_bf16dot_hw : j.kt->gemv_bf16dot;
        j.gemm_dot = hw ? j.kt->gemm_bf16dot_hw : j.kt->gemm_bf16dot;
    }
    if (xa && any_q8 && d_in % 32 == 0) {
        j.kt->q8_acts(xa, x, n, d_in);
        bool hw = hr_cpu_int8_hw() != 0;
        j.xa = xa;
        j.gemv_i8 = hw ? j.kt->gemv_int8dot_hw : j.kt->gemv_int8dot;
        j.gemm_i8 = hw ? j.kt->gemm_int8dot_hw : j.kt->gemm_int8dot;
    }
    run_matmul(pool, &j);
}

void hr_matmul(hr_pool *pool, float *y, const float *x, hr_panels wp, int n, int d_in, int d_out) {
    hr_matmul_out o = {y, NULL, wp, d_out};
    hr_matmul_multi(pool, x, n, d_in, &o, 1, false, NULL, NULL);
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

void hr_swiglu_ref(float *h, const float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        float g = gate[i];
        h[i] = g / (1.0f + expf(-g)) * up[i];
    }
}


/* ---- the dispatched kernels (kernels_impl.h, one table per path) ---- */

float hr_dot(const float *a, const float *b, int n) { return hr_kernels()->dot(a, b, n); }
void hr_softmax(float *x, int n) { hr_kernels()->softmax(x, n); }
float hr_max_f32(const float *x, int n) { return hr_kernels()->max_f32(x, n); }
double hr_sum_exp(const float *x, int n, double m) { return hr_kernels()->sum_exp(x, n, m); }
double hr_dot_f64(const float *a, const float *b, int n) { return hr_kernels()->dot_f64(a, b, n); }
void hr_swiglu(float *h, const float *gate, const float *up, int n) { hr_kernels()->swiglu(h, gate, up, n); }

void hr_attn_scores(float *s, const float *q, const float *kt, int ld, int head_dim, int len, float scale) {
    hr_kernels()->attn_scores_multi(s, 0, q, 0, 1, kt, ld, head_dim, len, scale);
}

void hr_attn_values(float *o, const float *s, const float *vt, int ld, int head_dim, int len) {
    hr_kernels()->attn_values_multi(o, 0, s, 0, 1, vt, ld, head_dim, &len);
}

void hr_attn_scores_multi(float *s, size_t ss, const float *q, size_t qs, int nq, const float *kt, int ld, int head_dim,
                          int len, float scale) {
    hr_kernels()->attn_scores_multi(s, ss, q, qs, nq, kt, ld, head_dim, len, scale);
}

void hr_attn_values_multi(float *o, size_t os, const float *s, size_t ss, int nq, const float *vt, int ld, int head_dim,
                          const int *len) {
    hr_kernels()->attn_values_multi(o, os, s, ss, nq, vt, ld, head_dim, len);
}

/* ---- choosing the path (kernels_isa.h) ---- */

static const hr_kernel_table *const k_tables[HR_CPU_N_PATHS] = {
    &hr_kernels_scalar,
#if HR_KERNELS_X86
    &hr_kernels_avx2,
    &hr_kernels_avx512,
#else
    NULL,
    NULL,
#endif
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static _Atomic(const hr_kernel_table *) g_table;
static atomic_int g_bf16_hw;  /* VDPBF16PS allowed (set with the table) */
static atomic_int g_int8_hw;  /* VPDPBUSD allowed (set with the table) */
static int g_vnni[2];         /* the CPU has AVX-VNNI, AVX512-VNNI (set with the table) */
static char g_env_error[200]; /* why HEADROOM_CPU was refused ("" = accepted or unset) */

/* F16C: cpuid leaf 1, ECX bit 29 (clang 14's __builtin_cpu_supports does not
 * know "f16c", so it is read directly). */
static int cpu_has_f16c(void) {
#if HR_KERNELS_X86
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return (c >> 29) & 1;
#else
    return 0;
#endif
}

int hr_cpu_supports(hr_cpu_kind k) {
    switch (k) {
    case HR_CPU_SCALAR: return 1;
#if HR_KERNELS_X86
    case HR_CPU_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
    case HR_CPU_AVX512:
        return hr_cpu_supports(HR_CPU_AVX2) && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl");
#endif
    default: return 0;
    }
}

/* Bit `bit` of cpuid leaf 7 subleaf `sub` (register EAX when eax, else ECX),
 * on top of path k's own checks (which include the OS's register state);
 * read directly: clang 14's __builtin_cpu_supports lacks these names. */
static int cpu_leaf7_bit(hr_cpu_kind k, unsigned sub, bool eax, int bit) {
#if HR_KERNELS_X86
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!hr_cpu_supports(k) || __get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, sub, a, b, c, d);
    return ((eax ? a : c) >> bit) & 1;
#else
    (void)k, (void)sub, (void)eax, (void)bit;
    return 0;
#endif
}

/* AVX512-BF16: leaf 7 subleaf 1, EAX bit 5; AVX512-VNNI: leaf 7, ECX bit 11;
 * AVX-VNNI: leaf 7 subleaf 1, EAX bit 4. */
static int cpu_has_avx512bf16(void) { return cpu_leaf7_bit(HR_CPU_AVX512, 1, true, 5); }
static int cpu_has_avx512vnni(void) { return cpu_leaf7_bit(HR_CPU_AVX512, 0, false, 11); }
static int cpu_has_avxvnni(void) { return cpu_leaf7_bit(HR_CPU_AVX2, 1, true, 4); }

hr_cpu_kind hr_cpu_best(void) {
    for (int k = HR_CPU_N_PATHS - 1; k > 0; k--)
        if (hr_cpu_supports((hr_cpu_kind)k)) return (hr_cpu_kind)k;
    return HR_CPU_SCALAR;
}

static void select_path(void) {
    hr_cpu_kind k = hr_cpu_best();
    const char *want = getenv("HEADROOM_CPU");
    if (want && *want) {
        int found = -1;
        for (int i = 0; i < HR_CPU_N_PATHS; i++)
            if (k_tables[i] ? strcmp(want, k_tables[i]->name) == 0 : strcmp(want, i == 1 ? "avx2" : "avx512") == 0)
                found = i;
        if (found < 0)
            snprintf(g_env_error, sizeof g_env_error, "HEADROOM_CPU=%.40s is not a kernel path (avx512, avx2, scalar)",
                     want);
        else if (!hr_cpu_supports((hr_cpu_kind)found))
            snprintf(g_env_error, sizeof g_env_error,
                     "HEADROOM_CPU=%s: this CPU (or build) lacks it; the widest path it runs is %s", want,
                     k_tables[k]->name);
        else k = (hr_cpu_kind)found;
    }
    const char *hw = getenv("HEADROOM_BF16_HW");
    atomic_store(&g_bf16_hw, cpu_has_avx512bf16() && !(hw && strcmp(hw, "0") == 0));
    const char *i8 = getenv("HEADROOM_INT8_HW");
    g_vnni[0] = cpu_has_avxvnni(), g_vnni[1] = cpu_has_avx512vnni();
    atomic_store(&g_int8_hw, !(i8 && strcmp(i8, "0") == 0));
    atomic_store(&g_table, k_tables[k]);
}

const hr_kernel_table *hr_kernels(void) {
    const hr_kernel_table *t = atomic_load_explicit(&g_table, memory_order_acquire);
    if (t) return t;
    pthread_once(&g_once, select_path);
    return atomic_load(&g_table);
}

hr_status hr_cpu_force(hr_cpu_kind k) {
    if (k < 0 || k >= HR_CPU_N_PATHS || !hr_cpu_supports(k))
        return hr_err(HR_ERR_UNSUPPORTED, "kernel path %d is not supported by this CPU or build", (int)k);
    (void)hr_kernels();
    atomic_store(&g_table, k_tables[k]);
    return HR_OK;
}

int hr_cpu_bf16_hw(void) { return hr_kernels()->gemm_bf16dot_hw != NULL && atomic_load(&g_bf16_hw); }

hr_status hr_cpu_force_bf16_hw(int on) {
    if (on && !cpu_has_avx512bf16())
        return hr_err(HR_ERR_UNSUPPORTED, "this CPU (or build) lacks AVX512-BF16 (VDPBF16PS)");
    (void)hr_kernels();
    atomic_store(&g_bf16_hw, on != 0);
    return HR_OK;
}

int hr_cpu_int8_hw(void) {
    const hr_kernel_table *t = hr_kernels();
    int feat = t == k_tables[HR_CPU_AVX512] ? g_vnni[1] : t == k_tables[HR_CPU_AVX2] ? g_vnni[0] : 0;
    return t->gemm_int8dot_hw != NULL && atomic_load(&g_int8_hw) && feat;
}

hr_status hr_cpu_force_int8_hw(int on) {
    if (on && !cpu_has_avx512vnni() && !cpu_has_avxvnni())
        return hr_err(HR_ERR_UNSUPPORTED, "this CPU (or build) lacks AVX512-VNNI and AVX-VNNI (VPDPBUSD)");
    (void)hr_kernels();
    atomic_store(&g_int8_hw, on != 0);
    return HR_OK;
}

const char *hr_cpu_path(void) { return hr_kernels()->name; }

hr_status hr_cpu_check(void) {
    (void)hr_kernels();
    if (g_env_error[0]) return hr_err(HR_ERR_UNSUPPORTED, "%s", g_env_error);
    return HR_OK;
}
