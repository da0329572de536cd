/* Run-time choice of the compute kernels' instruction set.
 *
 * The hot kernels (panel GEMV/GEMM, attention dot products, softmax / exp,
 * SwiGLU, the log-probability reductions, the training GEMM and key/value
 * gradients) are one source, src/engine/kernels_impl.h, compiled three times:
 * kernels_avx512.c (-mavx512f/bw/dq/vl -mavx2 -mfma), kernels_avx2.c
 * (-mavx2 -mfma -mf16c) and kernels_scalar.c (no ISA flags: plain C with fmaf, also
 * the only path off x86-64). Each defines one table of function pointers;
 * hr_kernels() returns the table chosen once per process (pthread_once):
 * HEADROOM_CPU=avx512|avx2|scalar when set and supported, else the widest
 * path the CPU supports (__builtin_cpu_supports).
 *
 * All three paths compute every result with the same arithmetic in the same
 * order: 16-lane float / 8-lane double "vectors" (two ymm halves on AVX2, a
 * loop of fmaf / fma in plain C), the same horizontal-sum tree
 * (_mm512_reduce_add_ps's pairs at distance 8, 4, 2, 1), the same polynomial
 * exp with the same range reduction. The paths therefore agree bit for bit;
 * tests/test_dispatch.c checks it. */
#ifndef HR_KERNELS_ISA_H
#define HR_KERNELS_ISA_H

#include <stddef.h>
#include <stdint.h>

#include "engine/kernels.h"
#include "headroom/common.h"

typedef enum { HR_CPU_SCALAR = 0, HR_CPU_AVX2 = 1, HR_CPU_AVX512 = 2, HR_CPU_N_PATHS = 3 } hr_cpu_kind;

typedef struct {
    const char *name; /* "avx512", "avx2", "scalar" */
    /* y[panels p0..p1) of one token / of n tokens (kernels.h's packed
     * layout, panels in dtype wt: an hr_wtype) */
    void (*gemv_panels)(float *y, const float *x, const void *wp, int wt, int d_in, int d_out, int p0, int p1);
    void (*gemm_panels)(float *y, const float *x, const void *wp, int wt, int n, int d_in, int d_out, int p0, int p1);
    /* the same for the bf16 dot (kernels.h) over bf16 panels, activation
     * pairs xq (n, (d_in + 1) / 2): the emulated pair step, and on the
     * AVX-512 table VDPBF16PS (NULL elsewhere; only when hr_cpu_bf16_hw) */
    void (*bf16_pairs)(uint32_t *xq, const float *x, int n, int d_in); /* hr_bf16_pairs */
    void (*gemv_bf16dot)(float *y, const uint32_t *xq, const void *wp, int d_in, int d_out, int p0, int p1);
    void (*gemm_bf16dot)(float *y, const uint32_t *xq, const void *wp, int n, int d_in, int d_out, int p0, int p1);
    void (*gemv_bf16dot_hw)(float *y, const uint32_t *xq, const void *wp, int d_in, int d_out, int p0, int p1);
    void (*gemm_bf16dot_hw)(float *y, const uint32_t *xq, const void *wp, int n, int d_in, int d_out, int p0, int p1);
    /* the int8 dot (kernels.h) over Q8_0 or per-channel int8 panels (wt),
     * activation blocks xa (n, d_in / 32): exact integer emulation, and
     * VPDPBUSD on the AVX-512 (AVX512-VNNI, zmm) and AVX2 (AVX-VNNI, ymm)
     * tables (NULL on the scalar one; only when hr_cpu_int8_hw) */
    void (*q8_acts)(hr_q8_act *xa, const float *x, int n, int d_in); /* hr_q8_acts */
    void (*gemv_int8dot)(float *y, const hr_q8_act *xa, const void *wp, int wt, int d_in, int d_out, int p0, int p1);
    void (*gemm_int8dot)(float *y, const hr_q8_act *xa, const void *wp, int wt, int n, int d_in, int d_out, int p0,
                         int p1);
    void (*gemv_int8dot_hw)(float *y, const hr_q8_act *xa, const void *wp, int wt, int d_in, int d_out, int p0, int p1);
    void (*gemm_int8dot_hw)(float *y, const hr_q8_act *xa, const void *wp, int wt, int n, int d_in, int d_out, int p0,
                            int p1);
    float (*dot)(const float *a, const float *b, int n);
    void (*softmax)(float *x, int n);
    float (*max_f32)(const float *x, int n);
    double (*sum_exp)(const float *x, int n, double m);
    double (*dot_f64)(const float *a, const float *b, int n);
    void (*attn_scores_multi)(float *s, size_t ss, const float *q, size_t qs, int nq, const float *kt, int ld,
                              int head_dim, int len, float scale);
    void (*attn_values_multi)(float *o, size_t os, const float *s, size_t ss, int nq, const float *vt, int ld,
                              int head_dim, const int *len);
    void (*swiglu)(float *h, const float *gate, const float *up, int n);
    /* training kernels (grad_kernels.h): C block rows [i0, i1) x columns
     * [j0, j1) of hr_gemm, and hr_attn_bwd_keys */
    void (*gemm_block)(float *c, size_t ldc, const float *a, size_t ai, size_t ap, const float *b, size_t ldb, int k,
                       int i0, int i1, int j0, int j1, int accumulate);
    void (*attn_bwd_keys)(float *dk, float *dv, size_t kvs, const float *ds, const float *p, size_t hs, int ldp,
                          int n_q, const float *q, size_t qs, const float *dout, size_t dos, int head_dim, int n,
                          int s0, int s1, float scale);
} hr_kernel_table;

/* The tables (kernels_avx512.c / kernels_avx2.c exist on x86-64 only). */
extern const hr_kernel_table hr_kernels_scalar;
#if defined(__x86_64__) || defined(__i386__)
#define HR_KERNELS_X86 1
extern const hr_kernel_table hr_kernels_avx2, hr_kernels_avx512;
#else
#define HR_KERNELS_X86 0
#endif

/* The table in use (selected on first call; never NULL). */
const hr_kernel_table *hr_kernels(void);
/* Whether this CPU (and build) can run path k. */
int hr_cpu_supports(hr_cpu_kind k);
/* Tests: switch every later kernel call to path k (HR_ERR_UNSUPPORTED when
 * the CPU lacks it). Not to be called while kernels run on other threads. */
hr_status hr_cpu_force(hr_cpu_kind k);
/* The widest path this CPU supports. */
hr_cpu_kind hr_cpu_best(void);
/* Whether the bf16 dot runs on VDPBF16PS: the AVX-512 path is in use, the
 * CPU has AVX512-BF16 (cpuid leaf 7 subleaf 1, EAX bit 5) and neither
 * HEADROOM_BF16_HW=0 nor hr_cpu_force_bf16_hw(0) turned it off. */
int hr_cpu_bf16_hw(void);
/* Tests: allow (on = 1, HR_ERR_UNSUPPORTED when the CPU lacks it) or stop
 * (on = 0: the emulated pair step) VDPBF16PS for later kernel calls. */
hr_status hr_cpu_force_bf16_hw(int on);
/* Whether the int8 dot runs on VPDPBUSD: the path in use has such kernels
 * and the CPU its instructions (AVX-512 path: AVX512-VNNI, cpuid leaf 7
 * ECX bit 11; AVX2 path: AVX-VNNI, leaf 7 subleaf 1 EAX bit 4), and
 * neither HEADROOM_INT8_HW=0 nor hr_cpu_force_int8_hw(0) turned it off. */
int hr_cpu_int8_hw(void);
/* Tests: allow (on = 1, HR_ERR_UNSUPPORTED when neither VNNI is there) or
 * stop (on = 0: the exact emulation) VPDPBUSD for later kernel calls. */
hr_status hr_cpu_force_int8_hw(int on);

#endif
