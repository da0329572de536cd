/* The compute kernels that depend on the instruction set, written once over
 * a 16-lane float vector (v16) and an 8-lane double vector (v8d), and
 * compiled three times (see kernels_isa.h): HR_ISA is 2 (AVX-512: one zmm),
 * 1 (AVX2 + FMA: two ymm halves) or 0 (plain C: arrays and fmaf / fma).
 * Every lane op is the same IEEE operation on every path (fused multiply-add
 * where the AVX-512 code fuses, the same horizontal-sum tree, the same exp),
 * so all three produce the same bits. Only the blocking (register tiles, how
 * many queries share a key load) differs per path, and blocking never
 * changes a chain: every output is one chain in a fixed order. */
#ifndef HR_ISA
#error "define HR_ISA before including kernels_impl.h"
#endif

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/kernels.h"
#include "engine/kernels_isa.h"
#include "formats/dtype.h"

#if HR_ISA > 0
#include <immintrin.h>
#endif

#define HR_CAT2(a, b) a##b
#define HR_CAT(a, b) HR_CAT2(a, b)

/* The exp polynomials, highest power first (Horner, one FMA per step):
 * e^r for |r| <= ln2/2 by degree 6 (float) and 13 (double) Taylor terms. */
static const float k_exp_ps_c[7] = {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f};
static const double k_exp_pd_c[13] = {1.0 / 479001600.0,
                                      1.0 / 39916800.0,
                                      1.0 / 3628800.0,
                                      1.0 / 362880.0,
                                      1.0 / 40320.0,
                                      1.0 / 5040.0,
                                      1.0 / 720.0,
                                      1.0 / 120.0,
                                      1.0 / 24.0,
                                      1.0 / 6.0,
                                      0.5,
                                      1.0,
                                      1.0};

/* ---- the vector types and their lane operations ---- */

#if HR_ISA == 2
#define HR_SFX(name) HR_CAT(name, _avx512)
/* Register blocking: GEMM tile rows x panels, attention queries per key
 * load, 16-position blocks per score step, head dims per values pass. */
enum {
    GEMM_MR = 8,
    GEMM_NP = 2,
    ATT_MAXQ = 4,
    ATT_NB = 4,
    ATT_ND = 4,
    GM_MR = 8,
    GM_NV = 2,
    KEYS_ND = 8,
    I8_MR = 6,
    I8_NP = 2 /* the int8 dot's register tile: tokens x panels */
};
typedef __m512 v16;
typedef __m512d v8d;
static inline __mmask16 prefix16(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}
static inline v16 v_zero(void) { return _mm512_setzero_ps(); }
static inline v16 v_set1(float a) { return _mm512_set1_ps(a); }
static inline v16 v_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void v_store(float *p, v16 a) { _mm512_storeu_ps(p, a); }
static inline v16 v_load_n(const float *p, int n) { return _mm512_maskz_loadu_ps(prefix16(n), p); }
static inline void v_store_n(float *p, v16 a, int n) { _mm512_mask_storeu_ps(p, prefix16(n), a); }
static inline v16 v_fma(v16 a, v16 b, v16 c) { return _mm512_fmadd_ps(a, b, c); }
static inline v16 v_add(v16 a, v16 b) { return _mm512_add_ps(a, b); }
static inline v16 v_sub(v16 a, v16 b) { return _mm512_sub_ps(a, b); }
static inline v16 v_mul(v16 a, v16 b) { return _mm512_mul_ps(a, b); }
static inline v16 v_div(v16 a, v16 b) { return _mm512_div_ps(a, b); }
static inline v16 v_max(v16 a, v16 b) { return _mm512_max_ps(a, b); }
static inline float v_hsum(v16 a) { return _mm512_reduce_add_ps(a); }
static inline float v_hmax(v16 a) { return _mm512_reduce_max_ps(a); }
/* Keeps a loaded value in a register (stops the compiler from folding the
 * load into each FMA that uses it, which would multiply the loads). */
#define V_KEEP(v) __asm__("" : "+v"(v))
/* 16 weights of a typed panel as floats (exact conversions). */
static inline v16 v_from_f16(const void *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
/* 16 bf16 weights of a k-pair block (16 dwords, kernels.h): the high halves
 * (hi = 1, the even k) or the low halves, as floats. */
static inline v16 v_bf16_half(const void *p, int hi) {
    __m512i u = _mm512_loadu_si512(p);
    return _mm512_castsi512_ps(hi ? _mm512_and_si512(u, _mm512_set1_epi32((int)0xFFFF0000u))
                                  : _mm512_slli_epi32(u, 16));
}
/* Denormal lanes to zero of the same sign (DAZ / FTZ). */
static inline v16 v_flush(v16 a) {
    __mmask16 tiny = _mm512_cmp_ps_mask(_mm512_abs_ps(a), _mm512_set1_ps(0x1p-126f), _CMP_LT_OQ);
    return _mm512_mask_and_ps(a, tiny, a, _mm512_set1_ps(-0.0f));
}
/* A Q8_0 k-quad (16 dwords of 4 bytes q + 128) with its bytes flipped back
 * to int8 (q8_quad), and byte i of each dword as the float q * 2^24
 * (q8_lane: one byte shuffle to the top of its dword, then the exact
 * conversion; the kernels fold 2^-24 into the scale, kernels.h). */
typedef __m512i q8raw;
static inline q8raw q8_quad(const void *p) {
    return _mm512_xor_si512(_mm512_loadu_si512(p), _mm512_set1_epi32((int)0x80808080u));
}
static inline v16 q8_lane(q8raw u, int i) {
    const __m512i top = _mm512_broadcast_i32x4(
        _mm_setr_epi32((int)(0x00808080u | (unsigned)i << 24), (int)(0x00808080u | (unsigned)(4 + i) << 24),
                       (int)(0x00808080u | (unsigned)(8 + i) << 24), (int)(0x00808080u | (unsigned)(12 + i) << 24)));
    return _mm512_cvtepi32_ps(_mm512_shuffle_epi8(u, top));
}

/* exp for x <= 0 (softmax arguments): x = k ln2 + r, |r| <= ln2/2, degree-6
 * polynomial for e^r, then scale by 2^k. Relative error ~2e-7. */
static inline v16 v_exp(v16 x) {
    __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_GE_OQ); /* below: e^x < FLT_MIN, 0 */
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(k_exp_ps_c[0]);
    for (int i = 1; i < 7; i++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(k_exp_ps_c[i]));
    return _mm512_maskz_mov_ps(live, _mm512_scalef_ps(p, k));
}

static inline v8d d_zero(void) { return _mm512_setzero_pd(); }
static inline v8d d_set1(double a) { return _mm512_set1_pd(a); }
static inline v8d d_from_f32(const float *p) { return _mm512_cvtps_pd(_mm256_loadu_ps(p)); }
static inline v8d d_fma(v8d a, v8d b, v8d c) { return _mm512_fmadd_pd(a, b, c); }
static inline v8d d_add(v8d a, v8d b) { return _mm512_add_pd(a, b); }
static inline v8d d_sub(v8d a, v8d b) { return _mm512_sub_pd(a, b); }
static inline double d_hsum(v8d a) { return _mm512_reduce_add_pd(a); }

/* exp over 8 double lanes: x = k ln2 + r (ln 2 split in two parts),
 * |r| <= ln2/2, e^r by its degree-13 Taylor polynomial, times 2^k.
 * Relative error < 2e-16; x < -700 (e^x < 1e-304) gives 0. */
static inline v8d d_exp(v8d x) {
    __mmask8 live = _mm512_cmp_pd_mask(x, _mm512_set1_pd(-700.0), _CMP_GE_OQ);
    x = _mm512_max_pd(x, _mm512_set1_pd(-700.0));
    __m512d k = _mm512_roundscale_pd(_mm512_mul_pd(x, _mm512_set1_pd(1.4426950408889634)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512d r = _mm512_fnmadd_pd(k, _mm512_set1_pd(6.93147180369123816490e-01), x);
    r = _mm512_fnmadd_pd(k, _mm512_set1_pd(1.90821492927058770002e-10), r);
    __m512d p = _mm512_set1_pd(1.0 / 6227020800.0);
    for (int i = 0; i < 13; i++) p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(k_exp_pd_c[i]));
    return _mm512_maskz_mov_pd(live, _mm512_scalef_pd(p, k));
}

#elif HR_ISA == 1
#define HR_SFX(name) HR_CAT(name, _avx2)
enum {
    GEMM_MR = 6,
    GEMM_NP = 1,
    ATT_MAXQ = 2,
    ATT_NB = 2,
    ATT_ND = 2,
    GM_MR = 6,
    GM_NV = 1,
    KEYS_ND = 4,
    I8_MR = 2,
    I8_NP = 1
};
typedef struct {
    __m256 lo, hi; /* lanes 0..7, 8..15 */
} v16;
typedef struct {
    __m256d lo, hi;
} v8d;
static inline v16 v_make(__m256 lo, __m256 hi) {
    v16 r = {lo, hi};
    return r;
}
static inline __m256i lanes_lt(int n, int first) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n - first), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline v16 v_zero(void) { return v_make(_mm256_setzero_ps(), _mm256_setzero_ps()); }
static inline v16 v_set1(float a) { return v_make(_mm256_set1_ps(a), _mm256_set1_ps(a)); }
static inline v16 v_load(const float *p) { return v_make(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)); }
static inline void v_store(float *p, v16 a) { _mm256_storeu_ps(p, a.lo), _mm256_storeu_ps(p + 8, a.hi); }
static inline v16 v_load_n(const float *p, int n) {
    if (n >= 16) return v_load(p);
    return v_make(_mm256_maskload_ps(p, lanes_lt(n, 0)), _mm256_maskload_ps(p + 8, lanes_lt(n, 8)));
}
static inline void v_store_n(float *p, v16 a, int n) {
    if (n >= 16) {
        v_store(p, a);
        return;
    }
    _mm256_maskstore_ps(p, lanes_lt(n, 0), a.lo), _mm256_maskstore_ps(p + 8, lanes_lt(n, 8), a.hi);
}
static inline v16 v_fma(v16 a, v16 b, v16 c) {
    return v_make(_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi));
}
static inline v16 v_add(v16 a, v16 b) { return v_make(_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)); }
static inline v16 v_sub(v16 a, v16 b) { return v_make(_mm256_sub_ps(a.lo, b.lo), _mm256_sub_ps(a.hi, b.hi)); }
static inline v16 v_mul(v16 a, v16 b) { return v_make(_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)); }
static inline v16 v_div(v16 a, v16 b) { return v_make(_mm256_div_ps(a.lo, b.lo), _mm256_div_ps(a.hi, b.hi)); }
static inline v16 v_max(v16 a, v16 b) { return v_make(_mm256_max_ps(a.lo, b.lo), _mm256_max_ps(a.hi, b.hi)); }
/* _mm512_reduce_add_ps's tree: pairs at distance 8, 4, 2, 1. */
static inline float v_hsum(v16 a) {
    __m256 t = _mm256_add_ps(a.hi, a.lo);
    __m128 u = _mm_add_ps(_mm256_extractf128_ps(t, 1), _mm256_castps256_ps128(t));
    __m128 w = _mm_add_ps(u, _mm_shuffle_ps(u, u, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm_cvtss_f32(w) + _mm_cvtss_f32(_mm_shuffle_ps(w, w, 1));
}
static inline float v_hmax(v16 a) {
    __m256 t = _mm256_max_ps(a.hi, a.lo);
    __m128 u = _mm_max_ps(_mm256_extractf128_ps(t, 1), _mm256_castps256_ps128(t));
    __m128 w = _mm_max_ps(u, _mm_shuffle_ps(u, u, _MM_SHUFFLE(1, 0, 3, 2)));
    float w0 = _mm_cvtss_f32(w), w1 = _mm_cvtss_f32(_mm_shuffle_ps(w, w, 1));
    return w0 > w1 ? w0 : w1;
}
#define V_KEEP(v) __asm__("" : "+x"((v).lo), "+x"((v).hi))
static inline __m256 bf16half8(const void *p, int hi) {
    __m256i u = _mm256_loadu_si256((const __m256i *)p);
    return _mm256_castsi256_ps(hi ? _mm256_and_si256(u, _mm256_set1_epi32((int)0xFFFF0000u))
                                  : _mm256_slli_epi32(u, 16));
}
static inline v16 v_bf16_half(const void *p, int hi) {
    return v_make(bf16half8(p, hi), bf16half8((const char *)p + 32, hi));
}
static inline __m256 flush8(__m256 a) {
    __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 tiny = _mm256_cmp_ps(_mm256_andnot_ps(sign, a), _mm256_set1_ps(0x1p-126f), _CMP_LT_OQ);
    return _mm256_blendv_ps(a, _mm256_and_ps(a, sign), tiny);
}
static inline v16 v_flush(v16 a) { return v_make(flush8(a.lo), flush8(a.hi)); }
static inline v16 v_from_f16(const void *p) {
    return v_make(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)),
                  _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const char *)p + 16))));
}
typedef struct {
    __m256i lo, hi;
} q8raw;
static inline q8raw q8_quad(const void *p) {
    const __m256i flip = _mm256_set1_epi32((int)0x80808080u);
    q8raw r = {_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)p), flip),
               _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)((const char *)p + 32)), flip)};
    return r;
}
static inline __m256 q8lane8(__m256i u, int i) {
    const __m128i t =
        _mm_setr_epi32((int)(0x00808080u | (unsigned)i << 24), (int)(0x00808080u | (unsigned)(4 + i) << 24),
                       (int)(0x00808080u | (unsigned)(8 + i) << 24), (int)(0x00808080u | (unsigned)(12 + i) << 24));
    return _mm256_cvtepi32_ps(_mm256_shuffle_epi8(u, _mm256_set_m128i(t, t)));
}
static inline v16 q8_lane(q8raw u, int i) { return v_make(q8lane8(u.lo, i), q8lane8(u.hi, i)); }

/* p * 2^k for integral k >= -126 as _mm512_scalef_ps computes it: two exact
 * power-of-two products (k split in halves), one rounding at most. */
static inline __m256 scalef8(__m256 p, __m256 k) {
    __m256i ki = _mm256_cvtps_epi32(_mm256_min_ps(k, _mm256_set1_ps(254.0f)));
    __m256i k1 = _mm256_srai_epi32(ki, 1), k2 = _mm256_sub_epi32(ki, k1), bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}
static inline __m256 exp8(__m256 x) {
    __m256 live = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_GE_OQ);
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(k_exp_ps_c[0]);
    for (int i = 1; i < 7; i++) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(k_exp_ps_c[i]));
    return _mm256_and_ps(live, scalef8(p, k));
}
static inline v16 v_exp(v16 x) { return v_make(exp8(x.lo), exp8(x.hi)); }

static inline v8d d_make(__m256d lo, __m256d hi) {
    v8d r = {lo, hi};
    return r;
}
static inline v8d d_zero(void) { return d_make(_mm256_setzero_pd(), _mm256_setzero_pd()); }
static inline v8d d_set1(double a) { return d_make(_mm256_set1_pd(a), _mm256_set1_pd(a)); }
static inline v8d d_from_f32(const float *p) {
    return d_make(_mm256_cvtps_pd(_mm_loadu_ps(p)), _mm256_cvtps_pd(_mm_loadu_ps(p + 4)));
}
static inline v8d d_fma(v8d a, v8d b, v8d c) {
    return d_make(_mm256_fmadd_pd(a.lo, b.lo, c.lo), _mm256_fmadd_pd(a.hi, b.hi, c.hi));
}
static inline v8d d_add(v8d a, v8d b) { return d_make(_mm256_add_pd(a.lo, b.lo), _mm256_add_pd(a.hi, b.hi)); }
static inline v8d d_sub(v8d a, v8d b) { return d_make(_mm256_sub_pd(a.lo, b.lo), _mm256_sub_pd(a.hi, b.hi)); }
/* _mm512_reduce_add_pd's tree: pairs at distance 4, 2, 1. */
static inline double d_hsum(v8d a) {
    __m256d t = _mm256_add_pd(a.hi, a.lo);
    __m128d u = _mm_add_pd(_mm256_extractf128_pd(t, 1), _mm256_castpd256_pd128(t));
    return _mm_cvtsd_f64(u) + _mm_cvtsd_f64(_mm_unpackhi_pd(u, u));
}
/* p * 2^k for integral k >= -1010 as _mm512_scalef_pd computes it. */
static inline __m256d scalef4d(__m256d p, __m256d k) {
    __m128i ki = _mm256_cvtpd_epi32(_mm256_min_pd(k, _mm256_set1_pd(2046.0)));
    __m128i k1 = _mm_srai_epi32(ki, 1), k2 = _mm_sub_epi32(ki, k1);
    __m256i b = _mm256_set1_epi64x(1023);
    __m256d s1 = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(k1), b), 52));
    __m256d s2 = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(k2), b), 52));
    return _mm256_mul_pd(_mm256_mul_pd(p, s1), s2);
}
static inline __m256d exp4d(__m256d x) {
    __m256d live = _mm256_cmp_pd(x, _mm256_set1_pd(-700.0), _CMP_GE_OQ);
    x = _mm256_max_pd(x, _mm256_set1_pd(-700.0));
    __m256d k = _mm256_round_pd(_mm256_mul_pd(x, _mm256_set1_pd(1.4426950408889634)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256d r = _mm256_fnmadd_pd(k, _mm256_set1_pd(6.93147180369123816490e-01), x);
    r = _mm256_fnmadd_pd(k, _mm256_set1_pd(1.90821492927058770002e-10), r);
    __m256d p = _mm256_set1_pd(1.0 / 6227020800.0);
    for (int i = 0; i < 13; i++) p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(k_exp_pd_c[i]));
    return _mm256_and_pd(live, scalef4d(p, k));
}
static inline v8d d_exp(v8d x) { return d_make(exp4d(x.lo), exp4d(x.hi)); }

#else
#define HR_SFX(name) HR_CAT(name, _scalar)
enum {
    GEMM_MR = 4,
    GEMM_NP = 1,
    ATT_MAXQ = 1,
    ATT_NB = 1,
    ATT_ND = 1,
    GM_MR = 4,
    GM_NV = 1,
    KEYS_ND = 4,
    I8_MR = 1,
    I8_NP = 1
};
typedef struct {
    float v[16];
} v16;
typedef struct {
    double v[8];
} v8d;
#define V_LANES(i) for (int i = 0; i < 16; i++)
static inline v16 v_zero(void) {
    v16 r;
    V_LANES(i) r.v[i] = 0.0f;
    return r;
}
static inline v16 v_set1(float a) {
    v16 r;
    V_LANES(i) r.v[i] = a;
    return r;
}
static inline v16 v_load(const float *p) {
    v16 r;
    memcpy(r.v, p, sizeof r.v);
    return r;
}
static inline void v_store(float *p, v16 a) { memcpy(p, a.v, sizeof a.v); }
static inline v16 v_load_n(const float *p, int n) {
    v16 r = v_zero();
    for (int i = 0; i < n && i < 16; i++) r.v[i] = p[i];
    return r;
}
static inline void v_store_n(float *p, v16 a, int n) {
    for (int i = 0; i < n && i < 16; i++) p[i] = a.v[i];
}
static inline v16 v_fma(v16 a, v16 b, v16 c) {
    V_LANES(i) c.v[i] = fmaf(a.v[i], b.v[i], c.v[i]);
    return c;
}
#define V_BINOP(name, expr)                                                                                            \
    static inline v16 name(v16 a, v16 b) {                                                                             \
        V_LANES(i) a.v[i] = (expr);                                                                                    \
        return a;                                                                                                      \
    }
V_BINOP(v_add, a.v[i] + b.v[i])
V_BINOP(v_sub, a.v[i] - b.v[i])
V_BINOP(v_mul, a.v[i] * b.v[i])
V_BINOP(v_div, a.v[i] / b.v[i])
V_BINOP(v_max, a.v[i] > b.v[i] ? a.v[i] : b.v[i]) /* maxps: the second operand unless the first is greater */
#undef V_BINOP
/* _mm512_reduce_add_ps's tree: pairs at distance 8, 4, 2, 1. */
static inline float v_hsum(v16 a) {
    float t[8];
    for (int i = 0; i < 8; i++) t[i] = a.v[i + 8] + a.v[i];
    for (int i = 0; i < 4; i++) t[i] = t[i + 4] + t[i];
    return (t[0] + t[2]) + (t[1] + t[3]);
}
static inline float v_hmax(v16 a) {
    float t[8];
    for (int i = 0; i < 8; i++) t[i] = a.v[i + 8] > a.v[i] ? a.v[i + 8] : a.v[i];
    for (int i = 0; i < 4; i++) t[i] = t[i + 4] > t[i] ? t[i + 4] : t[i];
    float w0 = t[0] > t[2] ? t[0] : t[2], w1 = t[1] > t[3] ? t[1] : t[3];
    return w0 > w1 ? w0 : w1;
}
#define V_KEEP(v) (void)0
/* 16 uint16 halves at p through conv (hr_f16_to_f32). */
static inline v16 v_from_u16(const void *p, float (*conv)(uint16_t)) {
    v16 r;
    V_LANES(i) {
        uint16_t h;
        memcpy(&h, (const char *)p + 2 * i, 2);
        r.v[i] = conv(h);
    }
    return r;
}
static inline v16 v_from_f16(const void *p) { return v_from_u16(p, hr_f16_to_f32); }
static inline v16 v_bf16_half(const void *p, int hi) {
    v16 r;
    V_LANES(i) {
        uint32_t u;
        memcpy(&u, (const char *)p + 4 * i, 4);
        u = hi ? u & 0xFFFF0000u : u << 16;
        memcpy(&r.v[i], &u, 4);
    }
    return r;
}
static inline v16 v_flush(v16 a) {
    V_LANES(i) if (fabsf(a.v[i]) < 0x1p-126f) a.v[i] = copysignf(0.0f, a.v[i]);
    return a;
}
typedef struct {
    uint32_t v[16];
} q8raw;
static inline q8raw q8_quad(const void *p) {
    q8raw r;
    memcpy(r.v, p, sizeof r.v);
    V_LANES(j) r.v[j] ^= 0x80808080u;
    return r;
}
static inline v16 q8_lane(q8raw u, int i) {
    v16 r;
    V_LANES(j) r.v[j] = (float)(int8_t)(u.v[j] >> (8 * i) & 0xFF) * 0x1p24f;
    return r;
}

/* The same exp, lane by lane (rintf rounds to nearest even, as roundscale
 * does; ldexpf rounds once, as scalef does). */
static inline float exp1(float x) {
    if (!(x >= -87.0f)) return 0.0f;
    float k = rintf(x * 1.44269504088896341f);
    float r = fmaf(-k, 0.693359375f, x);
    r = fmaf(-k, -2.12194440e-4f, r);
    float p = k_exp_ps_c[0];
    for (int i = 1; i < 7; i++) p = fmaf(p, r, k_exp_ps_c[i]);
    return k != k ? p : ldexpf(p, k > 254.0f ? 254 : (int)k);
}
static inline v16 v_exp(v16 x) {
    V_LANES(i) x.v[i] = exp1(x.v[i]);
    return x;
}

static inline v8d d_zero(void) {
    v8d r;
    for (int i = 0; i < 8; i++) r.v[i] = 0.0;
    return r;
}
static inline v8d d_set1(double a) {
    v8d r;
    for (int i = 0; i < 8; i++) r.v[i] = a;
    return r;
}
static inline v8d d_from_f32(const float *p) {
    v8d r;
    for (int i = 0; i < 8; i++) r.v[i] = p[i];
    return r;
}
static inline v8d d_fma(v8d a, v8d b, v8d c) {
    for (int i = 0; i < 8; i++) c.v[i] = fma(a.v[i], b.v[i], c.v[i]);
    return c;
}
static inline v8d d_add(v8d a, v8d b) {
    for (int i = 0; i < 8; i++) a.v[i] += b.v[i];
    return a;
}
static inline v8d d_sub(v8d a, v8d b) {
    for (int i = 0; i < 8; i++) a.v[i] -= b.v[i];
    return a;
}
/* _mm512_reduce_add_pd's tree: pairs at distance 4, 2, 1. */
static inline double d_hsum(v8d a) {
    double t0 = a.v[4] + a.v[0], t1 = a.v[5] + a.v[1], t2 = a.v[6] + a.v[2], t3 = a.v[7] + a.v[3];
    return (t2 + t0) + (t3 + t1);
}
static inline double exp1d(double x) {
    if (!(x >= -700.0)) return 0.0;
    double k = rint(x * 1.4426950408889634);
    double r = fma(-k, 6.93147180369123816490e-01, x);
    r = fma(-k, 1.90821492927058770002e-10, r);
    double p = 1.0 / 6227020800.0;
    for (int i = 0; i < 13; i++) p = fma(p, r, k_exp_pd_c[i]);
    return k != k ? p : ldexp(p, k > 2046.0 ? 2046 : (int)k);
}
static inline v8d d_exp(v8d x) {
    for (int i = 0; i < 8; i++) x.v[i] = exp1d(x.v[i]);
    return x;
}
#endif

/* ---- panel GEMV / GEMM (kernels.h's packed layout) ---- */

static inline void store_panel(float *y, int p, int d_out, v16 a) {
    int r = p * 16;
    if (r + 16 <= d_out) v_store(y + r, a);
    else v_store_n(y + r, a, d_out - r);
}

/* ---- typed panels (kernels.h's hr_wtype) ---- */

/* Q8_0: a panel is d_in / 32 blocks of 16 f16 scales then (8, 16, 4) u8 =
 * q + 128 (k-quads). Per-channel int8 (HR_WT_I8): a header of the 16 rows'
 * f32 scales, then d_in / 32 blocks of the same k-quads without scales. */
enum { Q8_BLOCK_BYTES = 32 + 32 * 16, I8_HDR = 64, I8_BLOCK_BYTES = 32 * 16 };

/* Whether dt's panels are 8-bit k-quads (Q8_0, per-channel int8). */
static inline bool w_is_q8(int dt) { return dt == HR_WT_Q8_0 || dt == HR_WT_I8; }
/* Bytes of one 32-block of a q8 panel, and the offset of its k-quads. */
static inline size_t q8_block_bytes(int dt) { return dt == HR_WT_Q8_0 ? Q8_BLOCK_BYTES : I8_BLOCK_BYTES; }
static inline size_t q8_quads_at(int dt) { return dt == HR_WT_Q8_0 ? 32 : 0; }

static inline size_t w_panel_bytes(int dt, int d_in) {
    return dt == HR_WT_F32    ? (size_t)d_in * 64
           : dt == HR_WT_Q8_0 ? (size_t)(d_in / 32) * Q8_BLOCK_BYTES
           : dt == HR_WT_I8   ? I8_HDR + (size_t)(d_in / 32) * I8_BLOCK_BYTES
           : dt == HR_WT_BF16 ? (size_t)(d_in + (d_in & 1)) * 32 /* whole k-pairs */
                              : (size_t)d_in * 32;
}
/* The panel at pw's weights from k0 on (k0 a multiple of 32). */
static inline const unsigned char *w_from(int dt, const unsigned char *pw, int k0) {
    if (w_is_q8(dt)) return pw + (dt == HR_WT_I8 ? I8_HDR : 0) + (size_t)(k0 / 32) * q8_block_bytes(dt);
    return pw + (size_t)k0 * (dt == HR_WT_F32 ? 64 : 32);
}
/* The scales of the 32-block at blk of the panel at pan times 2^-24 (Q8_0:
 * the block's f16 scales, at least 2^-24; per-channel int8: the rows' f32
 * scales from the header, zero or at least 2^-100 in magnitude (the
 * loaders' check); so the products stay normal f32), for q8_lane's
 * q * 2^24: their product is scale * q rounded once, the dequantizer's
 * float (exact for Q8_0: an 11-bit by 8-bit product). */
static inline v16 w_scale(int dt, const unsigned char *pan, const unsigned char *blk) {
    if (dt == HR_WT_Q8_0) return v_mul(v_from_f16(blk), v_set1(0x1p-24f));
    if (dt == HR_WT_I8) return v_mul(v_load((const float *)(const void *)pan), v_set1(0x1p-24f));
    return v_zero();
}
/* The 16 weights at k = block start + kk, as the dequantizer's floats. */
static inline v16 w_load(int dt, const unsigned char *blk, int kk, v16 scale) {
    switch (dt) {
    case HR_WT_BF16: return v_bf16_half(blk + (size_t)(kk >> 1) * 64, !(kk & 1));
    case HR_WT_F16: return v_from_f16(blk + (size_t)kk * 32);
    case HR_WT_Q8_0:
    case HR_WT_I8: return v_mul(scale, q8_lane(q8_quad(blk + q8_quads_at(dt) + (size_t)(kk >> 2) * 64), kk & 3));
    default: return v_load((const float *)blk + (size_t)kk * 16);
    }
}

/* A decode reads each panel once, 4 panels side by side: their lines
 * W_AHEAD bytes on are asked for while this line's products run (measured:
 * TinyLlama-shape Q8_0 decode 38.7 -> 53 tokens/s on 2 threads, RESULTS;
 * the last panels of a range, fewer than four, are read without it). A
 * prefetch never faults, so asking past a buffer's end is safe; the
 * addresses are made as integers (no pointer past an object). */
enum { W_AHEAD = 2048 };
static inline void w_ahead4(const unsigned char *b, size_t ps) {
    uintptr_t a = (uintptr_t)b + W_AHEAD;
    __builtin_prefetch((const void *)a), __builtin_prefetch((const void *)(a + ps));
    __builtin_prefetch((const void *)(a + 2 * ps)), __builtin_prefetch((const void *)(a + 3 * ps));
}

/* y[panels p0..p1) = W x for one token; four panels at once hide the FMA
 * latency of the four independent chains. k runs in blocks of 32 (the
 * Q8_0 scale blocks), each output's chain still over k in order. */
static inline __attribute__((always_inline)) void gemv_t(int dt, float *y, const float *x, const unsigned char *wp,
                                                         int d_in, int d_out, int p0, int p1) {
    const size_t ps = w_panel_bytes(dt, d_in);
    int p = p0;
    for (; p + 4 <= p1; p += 4) {
        const unsigned char *w0 = wp + (size_t)p * ps;
        v16 a0 = v_zero(), a1 = a0, a2 = a0, a3 = a0;
        for (int kb = 0; kb < d_in; kb += 32) {
            int kn = d_in - kb < 32 ? d_in - kb : 32;
            const unsigned char *b0 = w_from(dt, w0, kb), *b1 = b0 + ps, *b2 = b1 + ps, *b3 = b2 + ps;
            v16 s0 = w_scale(dt, w0, b0), s1 = w_scale(dt, w0 + ps, b1), s2 = w_scale(dt, w0 + 2 * ps, b2),
                s3 = w_scale(dt, w0 + 3 * ps, b3);
            if (w_is_q8(dt)) { /* a quad's bytes loaded once for its 4 k */
                for (int m = 0; m < 8; m++) {
                    size_t o = q8_quads_at(dt) + (size_t)m * 64;
                    q8raw r0 = q8_quad(b0 + o), r1 = q8_quad(b1 + o), r2 = q8_quad(b2 + o), r3 = q8_quad(b3 + o);
                    w_ahead4(b0 + o, ps);
#pragma GCC unroll 4
                    for (int i = 0; i < 4; i++) {
                        v16 xv = v_set1(x[kb + 4 * m + i]);
                        a0 = v_fma(xv, v_mul(s0, q8_lane(r0, i)), a0);
                        a1 = v_fma(xv, v_mul(s1, q8_lane(r1, i)), a1);
                        a2 = v_fma(xv, v_mul(s2, q8_lane(r2, i)), a2);
                        a3 = v_fma(xv, v_mul(s3, q8_lane(r3, i)), a3);
                    }
                }
                continue;
            }
            if (dt == HR_WT_BF16) { /* a k-pair's 64 bytes loaded once for its 2 k, in order: even k, then odd */
                int kk = 0;
                for (; kk + 2 <= kn; kk += 2) {
                    size_t o = (size_t)(kk >> 1) * 64;
                    w_ahead4(b0 + o, ps);
                    v16 xe = v_set1(x[kb + kk]), xo = v_set1(x[kb + kk + 1]);
                    a0 = v_fma(xe, v_bf16_half(b0 + o, 1), a0);
                    a1 = v_fma(xe, v_bf16_half(b1 + o, 1), a1);
                    a2 = v_fma(xe, v_bf16_half(b2 + o, 1), a2);
                    a3 = v_fma(xe, v_bf16_half(b3 + o, 1), a3);
                    a0 = v_fma(xo, v_bf16_half(b0 + o, 0), a0);
                    a1 = v_fma(xo, v_bf16_half(b1 + o, 0), a1);
                    a2 = v_fma(xo, v_bf16_half(b2 + o, 0), a2);
                    a3 = v_fma(xo, v_bf16_half(b3 + o, 0), a3);
                }
                if (kk < kn) { /* an odd d_in's last k */
                    v16 xv = v_set1(x[kb + kk]);
                    a0 = v_fma(xv, w_load(dt, b0, kk, s0), a0);
                    a1 = v_fma(xv, w_load(dt, b1, kk, s1), a1);
                    a2 = v_fma(xv, w_load(dt, b2, kk, s2), a2);
                    a3 = v_fma(xv, w_load(dt, b3, kk, s3), a3);
                }
                continue;
            }
            for (int kk = 0; kk < kn; kk++) {
                if (dt == HR_WT_F32 || !(kk & 1)) w_ahead4(b0 + (size_t)kk * (dt == HR_WT_F32 ? 64 : 32), ps);
                v16 xv = v_set1(x[kb + kk]);
                a0 = v_fma(xv, w_load(dt, b0, kk, s0), a0);
                a1 = v_fma(xv, w_load(dt, b1, kk, s1), a1);
                a2 = v_fma(xv, w_load(dt, b2, kk, s2), a2);
                a3 = v_fma(xv, w_load(dt, b3, kk, s3), a3);
            }
        }
        store_panel(y, p, d_out, a0), store_panel(y, p + 1, d_out, a1);
        store_panel(y, p + 2, d_out, a2), store_panel(y, p + 3, d_out, a3);
    }
    for (; p < p1; p++) {
        const unsigned char *w0 = wp + (size_t)p * ps;
        v16 a0 = v_zero();
        for (int kb = 0; kb < d_in; kb += 32) {
            int kn = d_in - kb < 32 ? d_in - kb : 32;
            const unsigned char *b0 = w_from(dt, w0, kb);
            v16 s0 = w_scale(dt, w0, b0);
            for (int kk = 0; kk < kn; kk++) a0 = v_fma(v_set1(x[kb + kk]), w_load(dt, b0, kk, s0), a0);
        }
        store_panel(y, p, d_out, a0);
    }
}

static void gemv_panels(float *y, const float *x, const void *wp, int wt, int d_in, int d_out, int p0, int p1) {
    switch (wt) {
    case HR_WT_BF16: gemv_t(HR_WT_BF16, y, x, wp, d_in, d_out, p0, p1); break;
    case HR_WT_F16: gemv_t(HR_WT_F16, y, x, wp, d_in, d_out, p0, p1); break;
    case HR_WT_Q8_0: gemv_t(HR_WT_Q8_0, y, x, wp, d_in, d_out, p0, p1); break;
    case HR_WT_I8: gemv_t(HR_WT_I8, y, x, wp, d_in, d_out, p0, p1); break;
    default: gemv_t(HR_WT_F32, y, x, wp, d_in, d_out, p0, p1); break;
    }
}

enum { GEMM_KC = 256, GEMM_MC = 128 };

/* One k of the register tile: a[i][j] += x[i][k] * panel j's weights b. */
static inline __attribute__((always_inline)) void tile_k(v16 a[GEMM_MR][GEMM_NP], const float *x, size_t ldx, int k,
                                                         v16 b0, v16 b1, int np) {
#pragma GCC unroll 8
    for (int i = 0; i < GEMM_MR; i++) {
        v16 xv = v_set1(x[(size_t)i * ldx + k]);
        a[i][0] = v_fma(xv, b0, a[i][0]);
        if (np > 1) a[i][GEMM_NP - 1] = v_fma(xv, b1, a[i][GEMM_NP - 1]);
    }
}

/* The register tile: c (GEMM_MR rows of stride ldc) x np panels (np <=
 * GEMM_NP, constant after inlining) over k in [k0, k1) (k0 a multiple of
 * 32), starting from zero when first, else continuing the chains stored in
 * c. x rows have stride ldx and hold k from xk0 on; w0, w1 are the panels'
 * starts. */
static inline __attribute__((always_inline)) void tile(int dt, float *c, size_t ldc, const float *x, size_t ldx,
                                                       int xk0, const unsigned char *w0, const unsigned char *w1,
                                                       int np, int k0, int k1, int first) {
    v16 a[GEMM_MR][GEMM_NP];
    for (int i = 0; i < GEMM_MR; i++)
        for (int j = 0; j < np; j++) a[i][j] = first ? v_zero() : v_load(c + (size_t)i * ldc + 16 * j);
    for (int kb = k0; kb < k1; kb += 32) {
        int kn = k1 - kb < 32 ? k1 - kb : 32;
        const unsigned char *c0 = w_from(dt, w0, kb), *c1 = np > 1 ? w_from(dt, w1, kb) : c0;
        v16 s0 = w_scale(dt, w0, c0), s1 = np > 1 ? w_scale(dt, w1, c1) : s0;
        if (w_is_q8(dt)) { /* a quad's bytes loaded once for its 4 k */
            for (int m = 0; m < 8; m++) {
                size_t o = q8_quads_at(dt) + (size_t)m * 64;
                q8raw r0 = q8_quad(c0 + o), r1 = np > 1 ? q8_quad(c1 + o) : r0;
#pragma GCC unroll 4
                for (int q = 0; q < 4; q++) {
                    v16 b0 = v_mul(s0, q8_lane(r0, q)), b1 = np > 1 ? v_mul(s1, q8_lane(r1, q)) : b0;
                    tile_k(a, x, ldx, kb - xk0 + 4 * m + q, b0, b1, np);
                }
            }
            continue;
        }
        for (int kk = 0; kk < kn; kk++) {
            v16 b0 = w_load(dt, c0, kk, s0), b1 = np > 1 ? w_load(dt, c1, kk, s1) : b0;
            tile_k(a, x, ldx, kb - xk0 + kk, b0, b1, np);
        }
    }
    for (int i = 0; i < GEMM_MR; i++)
        for (int j = 0; j < np; j++) v_store(c + (size_t)i * ldc + 16 * j, a[i][j]);
}

static inline __attribute__((always_inline)) void tile_np(int dt, float *c, size_t ldc, const float *x, size_t ldx,
                                                          int xk0, const unsigned char *w0, const unsigned char *w1,
                                                          int np, int k0, int k1, int first) {
    if (GEMM_NP > 1 && np == 2) tile(dt, c, ldc, x, ldx, xk0, w0, w1, 2, k0, k1, first);
    else tile(dt, c, ldc, x, ldx, xk0, w0, w1, 1, k0, k1, first);
}

/* A tile with fewer than GEMM_MR tokens or panels past d_out: the same tile
 * runs on a zero-padded copy of C (and of x when tokens are missing), so
 * every chain is the same as in a full tile. */
static inline __attribute__((always_inline)) void tile_edge(int dt, float *y, const float *x, const unsigned char *w0,
                                                            const unsigned char *w1, int np, int mr, int t, int p,
                                                            int d_in, int d_out, int k0, int k1, int first) {
    enum { CW = 16 * GEMM_NP };
    float cbuf[GEMM_MR * CW], xbuf[GEMM_MR * GEMM_KC]; /* (GEMM_MR, CW), (GEMM_MR, GEMM_KC) */
    int c0 = p * 16, cols = d_out - c0 < 16 * np ? d_out - c0 : 16 * np;
    memset(cbuf, 0, sizeof cbuf);
    if (!first)
        for (int i = 0; i < mr; i++)
            memcpy(cbuf + i * CW, y + (size_t)(t + i) * d_out + c0, sizeof(float) * (size_t)cols);
    if (mr == GEMM_MR) {
        tile_np(dt, cbuf, CW, x + (size_t)t * d_in, (size_t)d_in, 0, w0, w1, np, k0, k1, first);
    } else {
        memset(xbuf, 0, sizeof xbuf);
        for (int i = 0; i < mr; i++)
            memcpy(xbuf + i * GEMM_KC, x + (size_t)(t + i) * d_in + k0, sizeof(float) * (size_t)(k1 - k0));
        tile_np(dt, cbuf, CW, xbuf, GEMM_KC, k0, w0, w1, np, k0, k1, first);
    }
    for (int i = 0; i < mr; i++) memcpy(y + (size_t)(t + i) * d_out + c0, cbuf + i * CW, sizeof(float) * (size_t)cols);
}

/* The weights k in [k0, k1) of a typed panel (k0 a multiple of 32) as an
 * f32 panel from k0 on: w (k1 - k0, 16), the dequantizer's floats, the
 * same values the typed tile makes in registers. */
static inline __attribute__((always_inline)) void w_unpack(int dt, float *w, const unsigned char *pan, int k0, int k1) {
    for (int kb = k0; kb < k1; kb += 32) {
        int kn = k1 - kb < 32 ? k1 - kb : 32;
        const unsigned char *blk = w_from(dt, pan, kb);
        v16 s = w_scale(dt, pan, blk);
        for (int kk = 0; kk < kn; kk++) v_store(w + (size_t)(kb - k0 + kk) * 16, w_load(dt, blk, kk, s));
    }
}

/* y (n, d_out) columns of panels [p0, p1): K-blocks of 256 keep the weight
 * panels of a tile in L1 while up to 128 tokens of x stay in L2. A typed
 * panel's K-block is unpacked to f32 once for the block's tokens when they
 * fill more than two tiles (the conversion then costs once per 128 tokens,
 * not once per tile; the floats, so the results, are the same). The
 * unpacked blocks live on the heap, not the caller's stack (32 KiB); when
 * that allocation fails the tiles convert in registers as before. */
static inline __attribute__((always_inline)) void gemm_t(int dt, float *y, const float *x, const unsigned char *wp,
                                                         int n, int d_in, int d_out, int p0, int p1) {
    const size_t ps = w_panel_bytes(dt, d_in);
    float *wf = dt != HR_WT_F32 && n > 2 * GEMM_MR
                    ? aligned_alloc(64, sizeof(float) * GEMM_NP * GEMM_KC * 16) /* (GEMM_NP, GEMM_KC, 16) */
                    : NULL;
    for (int k0 = 0; k0 < d_in; k0 += GEMM_KC) {
        int k1 = k0 + GEMM_KC < d_in ? k0 + GEMM_KC : d_in, first = k0 == 0;
        for (int t0 = 0; t0 < n; t0 += GEMM_MC) {
            int t1 = t0 + GEMM_MC < n ? t0 + GEMM_MC : n;
            bool unpack = wf && t1 - t0 > 2 * GEMM_MR;
            for (int p = p0; p < p1; p += GEMM_NP) {
                int np = p1 - p < GEMM_NP ? p1 - p : GEMM_NP;
                const unsigned char *w0 = wp + (size_t)p * ps, *w1 = w0 + ps;
                bool cols_ok = (p + np) * 16 <= d_out;
                if (unpack) {
                    for (int j = 0; j < np; j++)
                        w_unpack(dt, wf + (size_t)j * GEMM_KC * 16, w0 + (size_t)j * ps, k0, k1);
                    const unsigned char *u0 = (const unsigned char *)wf,
                                        *u1 = (const unsigned char *)(wf + (size_t)(np - 1) * GEMM_KC * 16);
                    for (int t = t0; t < t1; t += GEMM_MR) {
                        int mr = t1 - t < GEMM_MR ? t1 - t : GEMM_MR;
                        if (mr == GEMM_MR && cols_ok)
                            tile_np(HR_WT_F32, y + (size_t)t * d_out + (size_t)p * 16, (size_t)d_out,
                                    x + (size_t)t * d_in + k0, (size_t)d_in, 0, u0, u1, np, 0, k1 - k0, first);
                        else tile_edge(HR_WT_F32, y, x + k0, u0, u1, np, mr, t, p, d_in, d_out, 0, k1 - k0, first);
                    }
                    continue;
                }
                for (int t = t0; t < t1; t += GEMM_MR) {
                    int mr = t1 - t < GEMM_MR ? t1 - t : GEMM_MR;
                    if (mr == GEMM_MR && cols_ok)
                        tile_np(dt, y + (size_t)t * d_out + (size_t)p * 16, (size_t)d_out, x + (size_t)t * d_in,
                                (size_t)d_in, 0, w0, w1, np, k0, k1, first);
                    else tile_edge(dt, y, x, w0, w1, np, mr, t, p, d_in, d_out, k0, k1, first);
                }
            }
        }
    }
    free(wf);
}

static void gemm_panels(float *y, const float *x, const void *wp, int wt, int n, int d_in, int d_out, int p0, int p1) {
    switch (wt) {
    case HR_WT_BF16: gemm_t(HR_WT_BF16, y, x, wp, n, d_in, d_out, p0, p1); break;
    case HR_WT_F16: gemm_t(HR_WT_F16, y, x, wp, n, d_in, d_out, p0, p1); break;
    case HR_WT_Q8_0: gemm_t(HR_WT_Q8_0, y, x, wp, n, d_in, d_out, p0, p1); break;
    case HR_WT_I8: gemm_t(HR_WT_I8, y, x, wp, n, d_in, d_out, p0, p1); break;
    default: gemm_t(HR_WT_F32, y, x, wp, n, d_in, d_out, p0, p1); break;
    }
}

/* ---- bf16 dot (kernels.h): bf16 panels times activations rounded to bf16 ----
 *
 * Activations come as k-pairs xq (kernels.h: x[2m] in the high half of
 * dword m, x[2m+1] in the low half), the weights as the bf16 panels' pair
 * blocks. Each output is one chain over k in order from zero: acc =
 * FTZ(fma(x[k], w[k], acc)), weights and activations denormal-as-zero. On
 * the AVX-512 path with AVX512-BF16 (the _hw kernels) one VDPBF16PS does
 * the two steps of a pair (the high halves first); everywhere else the
 * pair step is emulated lane by lane with the same operations, so all
 * paths agree bit for bit. */
#if HR_ISA == 2
#define DOT_HW_ATTR __attribute__((target("avx512bf16,avx512vnni")))
#elif HR_ISA == 1
#define DOT_HW_ATTR __attribute__((target("avxvnni")))
#else
#define DOT_HW_ATTR
#endif

/* One k-pair of a panel's 16 rows. */
typedef struct {
#if HR_ISA == 2
    __m512i raw; /* the 16 dwords as stored (hw) */
#endif
    v16 even, odd; /* the weights at k = 2m, 2m + 1 as floats, denormals as zero (emulation) */
} bpair;

static inline __attribute__((always_inline)) DOT_HW_ATTR bpair bp_load(int hw, const unsigned char *p) {
    bpair b;
#if HR_ISA == 2
    if (hw) {
        b.raw = _mm512_loadu_si512(p);
        b.even = b.odd = v_zero();
        return b;
    }
    b.raw = _mm512_setzero_si512();
#endif
    (void)hw;
    b.even = v_flush(v_bf16_half(p, 1)), b.odd = v_flush(v_bf16_half(p, 0));
    return b;
}

static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* acc after the pair step of activation pair xp with weights b. */
static inline __attribute__((always_inline)) DOT_HW_ATTR v16 bp_dot(int hw, v16 acc, bpair b, uint32_t xp) {
#if HR_ISA == 2
    if (hw) return _mm512_dpbf16_ps(acc, (__m512bh)_mm512_set1_epi32((int)xp), (__m512bh)b.raw);
#endif
    (void)hw;
    acc = v_flush(v_fma(v_set1(bits_f32(xp & 0xFFFF0000u)), b.even, acc));
    return v_flush(v_fma(v_set1(bits_f32(xp << 16)), b.odd, acc));
}

/* y[panels p0..p1) of one token, four panels at once as gemv_t. */
static inline __attribute__((always_inline)) DOT_HW_ATTR void
gemv_dot_t(int hw, float *y, const uint32_t *xq, const unsigned char *wp, int d_in, int d_out, int p0, int p1) {
    const size_t ps = w_panel_bytes(HR_WT_BF16, d_in);
    const int n_pairs = (d_in + 1) / 2;
    int p = p0;
    for (; p + 4 <= p1; p += 4) {
        const unsigned char *w0 = wp + (size_t)p * ps;
        v16 a0 = v_zero(), a1 = a0, a2 = a0, a3 = a0;
        for (int m = 0; m < n_pairs; m++) {
            const unsigned char *b = w0 + (size_t)m * 64;
            uint32_t xp = xq[m];
            w_ahead4(b, ps);
            a0 = bp_dot(hw, a0, bp_load(hw, b), xp);
            a1 = bp_dot(hw, a1, bp_load(hw, b + ps), xp);
            a2 = bp_dot(hw, a2, bp_load(hw, b + 2 * ps), xp);
            a3 = bp_dot(hw, a3, bp_load(hw, b + 3 * ps), xp);
        }
        store_panel(y, p, d_out, a0), store_panel(y, p + 1, d_out, a1);
        store_panel(y, p + 2, d_out, a2), store_panel(y, p + 3, d_out, a3);
    }
    for (; p < p1; p++) {
        const unsigned char *w0 = wp + (size_t)p * ps;
        v16 a0 = v_zero();
        for (int m = 0; m < n_pairs; m++) a0 = bp_dot(hw, a0, bp_load(hw, w0 + (size_t)m * 64), xq[m]);
        store_panel(y, p, d_out, a0);
    }
}

/* The register tile of tile() over pairs [m0, m1): xq rows of stride ldq
 * (pairs) holding pairs from xm0 on, w0 / w1 the panels' starts. */
static inline __attribute__((always_inline)) DOT_HW_ATTR void dtile(int hw, float *c, size_t ldc, const uint32_t *xq,
                                                                    size_t ldq, int xm0, const unsigned char *w0,
                                                                    const unsigned char *w1, int np, int m0, int m1,
                                                                    int first) {
    v16 a[GEMM_MR][GEMM_NP];
    for (int i = 0; i < GEMM_MR; i++)
        for (int j = 0; j < np; j++) a[i][j] = first ? v_zero() : v_load(c + (size_t)i * ldc + 16 * j);
    for (int m = m0; m < m1; m++) {
        bpair b0 = bp_load(hw, w0 + (size_t)m * 64), b1 = np > 1 ? bp_load(hw, w1 + (size_t)m * 64) : b0;
#pragma GCC unroll 8
        for (int i = 0; i < GEMM_MR; i++) {
            uint32_t xp = xq[(size_t)i * ldq + (m - xm0)];
            a[i][0] = bp_dot(hw, a[i][0], b0, xp);
            if (np > 1) a[i][GEMM_NP - 1] = bp_dot(hw, a[i][GEMM_NP - 1], b1, xp);
        }
    }
    for (int i = 0; i < GEMM_MR; i++)
        for (int j = 0; j < np; j++) v_store(c + (size_t)i * ldc + 16 * j, a[i][j]);
}

/* ---- int8 dot (kernels.h): Q8_0 panels times activations quantized per 32-block ----
 *
 * Per output row and 32-block the integer sum s = sum_k q_w q_x is exact:
 * VPDPBUSD (the _hw kernels: zmm with AVX512-VNNI on the AVX-512 path, ymm
 * with AVX-VNNI on the AVX2 path) adds the 4 products u8 (q_w + 128) x s8
 * q_x of each dword, and the block's 128 * sum q_x is taken off at the end;
 * the emulation (every other path) multiplies the sign-extended bytes in
 * 16-bit pairs (VPMADDWD) or one by one (plain C). The float steps are the
 * same everywhere: acc = fma((float)s, d_w * d_x, acc) over the blocks in
 * order, so all paths give the same bits. */

/* 16 int32 lanes: one panel's 16 rows. */
#if HR_ISA == 2
typedef __m512i vi16;
static inline vi16 vi_zero(void) { return _mm512_setzero_si512(); }
static inline v16 vi_float(vi16 s, int32_t sub) {
    return _mm512_cvtepi32_ps(_mm512_sub_epi32(s, _mm512_set1_epi32(sub)));
}
/* A k-quad of a Q8_0 block's 16 rows: as stored (hw), or its int8 bytes
 * sign-extended in 16-bit halves, bytes 0 and 2 (even) and 1 and 3 (odd). */
typedef struct {
    __m512i raw, even, odd;
} i8quad;
static inline i8quad i8_split(__m512i raw, int flip) {
    i8quad r;
    __m512i u = flip ? _mm512_xor_si512(raw, _mm512_set1_epi32((int)0x80808080u)) : raw;
    r.raw = raw, r.even = _mm512_srai_epi16(_mm512_slli_epi16(u, 8), 8), r.odd = _mm512_srai_epi16(u, 8);
    return r;
}
static inline __attribute__((always_inline)) i8quad i8_wload(int hw, const unsigned char *p) {
    __m512i raw = _mm512_loadu_si512(p);
    if (hw) {
        i8quad r = {raw, raw, raw};
        return r;
    }
    return i8_split(raw, 1);
}
static inline __attribute__((always_inline)) i8quad i8_xset(int hw, int32_t xd) {
    __m512i raw = _mm512_set1_epi32(xd);
    if (hw) {
        i8quad r = {raw, raw, raw};
        return r;
    }
    return i8_split(raw, 0);
}
static inline __attribute__((always_inline)) DOT_HW_ATTR vi16 vi_dot(int hw, vi16 acc, i8quad w, i8quad x) {
    if (hw) return _mm512_dpbusd_epi32(acc, w.raw, x.raw);
    return _mm512_add_epi32(acc, _mm512_add_epi32(_mm512_madd_epi16(w.even, x.even), _mm512_madd_epi16(w.odd, x.odd)));
}
#elif HR_ISA == 1
typedef struct {
    __m256i lo, hi;
} vi16;
static inline vi16 vi_zero(void) {
    vi16 r = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    return r;
}
static inline v16 vi_float(vi16 s, int32_t sub) {
    __m256i k = _mm256_set1_epi32(sub);
    return v_make(_mm256_cvtepi32_ps(_mm256_sub_epi32(s.lo, k)), _mm256_cvtepi32_ps(_mm256_sub_epi32(s.hi, k)));
}
typedef struct {
    __m256i raw[2], even[2], odd[2];
} i8quad;
static inline void i8_split8(i8quad *r, int h, __m256i raw, int flip) {
    __m256i u = flip ? _mm256_xor_si256(raw, _mm256_set1_epi32((int)0x80808080u)) : raw;
    r->raw[h] = raw, r->even[h] = _mm256_srai_epi16(_mm256_slli_epi16(u, 8), 8), r->odd[h] = _mm256_srai_epi16(u, 8);
}
static inline __attribute__((always_inline)) i8quad i8_wload(int hw, const unsigned char *p) {
    i8quad r;
    for (int h = 0; h < 2; h++) {
        __m256i raw = _mm256_loadu_si256((const __m256i *)(p + 32 * h));
        if (hw) r.raw[h] = r.even[h] = r.odd[h] = raw;
        else i8_split8(&r, h, raw, 1);
    }
    return r;
}
static inline __attribute__((always_inline)) i8quad i8_xset(int hw, int32_t xd) {
    i8quad r;
    __m256i raw = _mm256_set1_epi32(xd);
    if (hw) r.raw[0] = r.raw[1] = r.even[0] = r.even[1] = r.odd[0] = r.odd[1] = raw;
    else i8_split8(&r, 0, raw, 0), r.raw[1] = r.raw[0], r.even[1] = r.even[0], r.odd[1] = r.odd[0];
    return r;
}
static inline __attribute__((always_inline)) DOT_HW_ATTR __m256i vi_dot8(int hw, __m256i acc, const i8quad *w,
                                                                         const i8quad *x, int h) {
    if (hw) return _mm256_dpbusd_avx_epi32(acc, w->raw[h], x->raw[h]);
    return _mm256_add_epi32(
        acc, _mm256_add_epi32(_mm256_madd_epi16(w->even[h], x->even[h]), _mm256_madd_epi16(w->odd[h], x->odd[h])));
}
static inline __attribute__((always_inline)) DOT_HW_ATTR vi16 vi_dot(int hw, vi16 acc, i8quad w, i8quad x) {
    acc.lo = vi_dot8(hw, acc.lo, &w, &x, 0), acc.hi = vi_dot8(hw, acc.hi, &w, &x, 1);
    return acc;
}
#else
typedef struct {
    int32_t v[16];
} vi16;
static inline vi16 vi_zero(void) {
    vi16 r;
    V_LANES(i) r.v[i] = 0;
    return r;
}
static inline v16 vi_float(vi16 s, int32_t sub) {
    v16 r;
    V_LANES(i) r.v[i] = (float)(s.v[i] - sub);
    return r;
}
typedef struct {
    int8_t b[64]; /* 16 dwords of 4 int8 (weights flipped back; an activation dword repeated) */
} i8quad;
static inline i8quad i8_wload(int hw, const unsigned char *p) {
    i8quad r;
    (void)hw;
    for (int i = 0; i < 64; i++) r.b[i] = (int8_t)(p[i] ^ 0x80);
    return r;
}
static inline i8quad i8_xset(int hw, int32_t xd) {
    i8quad r;
    (void)hw;
    for (int i = 0; i < 16; i++) memcpy(r.b + 4 * i, &xd, 4);
    return r;
}
static inline vi16 vi_dot(int hw, vi16 acc, i8quad w, i8quad x) {
    (void)hw;
    V_LANES(j) {
        for (int i = 0; i < 4; i++) acc.v[j] += (int32_t)w.b[4 * j + i] * x.b[4 * j + i];
    }
    return acc;
}
#endif

/* The 4 activations of quad m of a block as one dword. */
static inline int32_t i8_xdword(const hr_q8_act *xb, int m) {
    int32_t d;
    memcpy(&d, xb->q + 4 * m, 4);
    return d;
}

/* The weights' scales d_w of the 32-block at blk of the panel at pan:
 * Q8_0's f16 block scales, or the per-channel rows' f32 scales. */
static inline v16 i8_wscale(int dt, const unsigned char *pan, const unsigned char *blk) {
    return dt == HR_WT_I8 ? v_load((const float *)(const void *)pan) : v_from_f16(blk);
}
/* acc after block xb of one token: s (the quads' sums; minus 128 * sum q_x
 * on hw, whose weights are q + 128) times d_w * d_x. */
static inline __attribute__((always_inline)) v16 i8_fold(int hw, v16 acc, vi16 s, const hr_q8_act *xb, v16 dw) {
    return v_fma(vi_float(s, hw ? 128 * xb->sum : 0), v_mul(dw, v_set1(xb->d)), acc);
}

/* np (1 or 4) panels from w0 (stride ps; dt Q8_0 or per-channel int8) of
 * one token's nb blocks xa. */
static inline __attribute__((always_inline)) DOT_HW_ATTR void gemv_i8_np(int hw, int dt, float *y, const hr_q8_act *xa,
                                                                         const unsigned char *w0, size_t ps, int nb,
                                                                         int d_out, int p, int np) {
    v16 a[4];
    for (int j = 0; j < np; j++) a[j] = v_zero();
    const size_t qo = q8_quads_at(dt);
    for (int b = 0; b < nb; b++) {
        const unsigned char *blk = w_from(dt, w0, 32 * b);
        vi16 s[4];
        for (int j = 0; j < np; j++) s[j] = vi_zero();
        for (int m = 0; m < 8; m++) {
            i8quad xv = i8_xset(hw, i8_xdword(xa + b, m));
            if (np == 4) w_ahead4(blk + qo + 64 * m, ps);
            for (int j = 0; j < np; j++) s[j] = vi_dot(hw, s[j], i8_wload(hw, blk + j * ps + qo + 64 * m), xv);
        }
        for (int j = 0; j < np; j++) a[j] = i8_fold(hw, a[j], s[j], xa + b, i8_wscale(dt, w0 + j * ps, blk + j * ps));
    }
    for (int j = 0; j < np; j++) store_panel(y, p + j, d_out, a[j]);
}

/* y[panels p0..p1) of one token (activation blocks xa), four panels at once. */
static inline __attribute__((always_inline)) DOT_HW_ATTR void
gemv_i8_t(int hw, int dt, float *y, const hr_q8_act *xa, const unsigned char *wp, int d_in, int d_out, int p0, int p1) {
    const size_t ps = w_panel_bytes(dt, d_in);
    int p = p0;
    for (; p + 4 <= p1; p += 4) gemv_i8_np(hw, dt, y, xa, wp + (size_t)p * ps, ps, d_in / 32, d_out, p, 4);
    for (; p < p1; p++) gemv_i8_np(hw, dt, y, xa, wp + (size_t)p * ps, ps, d_in / 32, d_out, p, 1);
}

/* The int8 register tile: I8_MR tokens (activation rows of stride lda
 * blocks, holding blocks from xb0 on) x np panels (starts w0, w1) over
 * blocks [b0, b1). */
static inline __attribute__((always_inline)) DOT_HW_ATTR void i8tile(int hw, int dt, float *c, size_t ldc,
                                                                     const hr_q8_act *xa, size_t lda, int xb0,
                                                                     const unsigned char *w0, const unsigned char *w1,
                                                                     int np, int b0, int b1, int first) {
    v16 a[I8_MR][I8_NP];
    for (int i = 0; i < I8_MR; i++)
        for (int j = 0; j < np; j++) a[i][j] = first ? v_zero() : v_load(c + (size_t)i * ldc + 16 * j);
    const size_t qo = q8_quads_at(dt);
    for (int b = b0; b < b1; b++) {
        const unsigned char *c0 = w_from(dt, w0, 32 * b), *c1 = w_from(dt, w1, 32 * b);
        vi16 s[I8_MR][I8_NP];
        for (int i = 0; i < I8_MR; i++)
            for (int j = 0; j < np; j++) s[i][j] = vi_zero();
        for (int m = 0; m < 8; m++) {
            i8quad wa = i8_wload(hw, c0 + qo + 64 * m), wb = np > 1 ? i8_wload(hw, c1 + qo + 64 * m) : wa;
#pragma GCC unroll 8
            for (int i = 0; i < I8_MR; i++) {
                i8quad xv = i8_xset(hw, i8_xdword(xa + (size_t)i * lda + (b - xb0), m));
                s[i][0] = vi_dot(hw, s[i][0], wa, xv);
                if (np > 1) s[i][I8_NP - 1] = vi_dot(hw, s[i][I8_NP - 1], wb, xv);
            }
        }
        v16 d0 = i8_wscale(dt, w0, c0), d1 = np > 1 ? i8_wscale(dt, w1, c1) : d0;
#pragma GCC unroll 8
        for (int i = 0; i < I8_MR; i++) {
            const hr_q8_act *xb = xa + (size_t)i * lda + (b - xb0);
            a[i][0] = i8_fold(hw, a[i][0], s[i][0], xb, d0);
            if (np > 1) a[i][I8_NP - 1] = i8_fold(hw, a[i][I8_NP - 1], s[i][I8_NP - 1], xb, d1);
        }
    }
    for (int i = 0; i < I8_MR; i++)
        for (int j = 0; j < np; j++) v_store(c + (size_t)i * ldc + 16 * j, a[i][j]);
}

/* ---- the GEMM of both dots: bf16 pairs or int8 blocks as k-units ----
 * mode: DOT_BF16 / DOT_I8, + 1 for the hardware instruction. */
enum { DOT_BF16 = 0, DOT_I8 = 2 };
enum { DOT_MAX_MR = GEMM_MR > I8_MR ? GEMM_MR : I8_MR, DOT_MAX_NP = GEMM_NP > I8_NP ? GEMM_NP : I8_NP };
#define DOT_MR(mode) ((mode) >= DOT_I8 ? I8_MR : GEMM_MR)
#define DOT_NP(mode) ((mode) >= DOT_I8 ? I8_NP : GEMM_NP)
#define DOT_UNIT(mode) ((mode) >= DOT_I8 ? sizeof(hr_q8_act) : sizeof(uint32_t)) /* activation bytes a unit */
#define DOT_KU(mode) ((mode) >= DOT_I8 ? GEMM_KC / 32 : GEMM_KC / 2)             /* units a K-block */

/* The dots' register tiles over units [u0, u1) (dt: the int8 dot's panel
 * dtype); xq rows of stride ldq units holding units from xu0 on. */
static inline __attribute__((always_inline)) DOT_HW_ATTR void qtile_np(int mode, int dt, float *c, size_t ldc,
                                                                       const unsigned char *xq, size_t ldq, int xu0,
                                                                       const unsigned char *w0, const unsigned char *w1,
                                                                       int np, int u0, int u1, int first) {
    if (mode >= DOT_I8) {
        const hr_q8_act *xa = (const hr_q8_act *)(const void *)xq;
        if (I8_NP > 1 && np == 2) i8tile(mode - DOT_I8, dt, c, ldc, xa, ldq, xu0, w0, w1, 2, u0, u1, first);
        else i8tile(mode - DOT_I8, dt, c, ldc, xa, ldq, xu0, w0, w1, 1, u0, u1, first);
    } else {
        const uint32_t *xp = (const uint32_t *)(const void *)xq;
        if (GEMM_NP > 1 && np == 2) dtile(mode, c, ldc, xp, ldq, xu0, w0, w1, 2, u0, u1, first);
        else dtile(mode, c, ldc, xp, ldq, xu0, w0, w1, 1, u0, u1, first);
    }
}

/* tile_edge for the dots: zero-padded copies of C and of the activation
 * units (a zero int8 block has d = 0, q = 0, sum = 0). */
static inline __attribute__((always_inline)) DOT_HW_ATTR void
qtile_edge(int mode, int dt, float *y, const unsigned char *xq, const unsigned char *w0, const unsigned char *w1,
           int np, int mr, int t, int p, int n_units, int d_out, int u0, int u1, int first) {
    enum { CW = 16 * DOT_MAX_NP, QB = DOT_MAX_MR * GEMM_KC * 2 };
    const size_t ub = DOT_UNIT(mode), qc = (size_t)DOT_KU(mode);
    float cbuf[DOT_MAX_MR * CW];         /* (MR, CW) */
    _Alignas(64) unsigned char qbuf[QB]; /* (MR, KU) activation units */
    int c0 = p * 16, cols = d_out - c0 < 16 * np ? d_out - c0 : 16 * np;
    memset(cbuf, 0, sizeof cbuf);
    if (!first)
        for (int i = 0; i < mr; i++)
            memcpy(cbuf + i * CW, y + (size_t)(t + i) * d_out + c0, sizeof(float) * (size_t)cols);
    if (mr == DOT_MR(mode)) {
        qtile_np(mode, dt, cbuf, CW, xq + (size_t)t * n_units * ub, (size_t)n_units, 0, w0, w1, np, u0, u1, first);
    } else {
        memset(qbuf, 0, sizeof qbuf);
        for (int i = 0; i < mr; i++)
            memcpy(qbuf + i * qc * ub, xq + ((size_t)(t + i) * n_units + u0) * ub, ub * (size_t)(u1 - u0));
        qtile_np(mode, dt, cbuf, CW, qbuf, qc, u0, w0, w1, np, u0, u1, first);
    }
    for (int i = 0; i < mr; i++) memcpy(y + (size_t)(t + i) * d_out + c0, cbuf + i * CW, sizeof(float) * (size_t)cols);
}

/* y (n, d_out) columns of panels [p0, p1), blocked as gemm_t: K-blocks of
 * 256 k (128 pairs, 8 int8 blocks), 128 tokens, register tiles. */
static inline __attribute__((always_inline)) DOT_HW_ATTR void gemm_q_t(int mode, int dt, float *y, const void *xqv,
                                                                       const unsigned char *wp, int n, int d_in,
                                                                       int d_out, int p0, int p1) {
    const unsigned char *xq = xqv;
    const int i8 = mode >= DOT_I8, MR = DOT_MR(mode), NP = DOT_NP(mode), KU = DOT_KU(mode);
    const size_t ps = w_panel_bytes(dt, d_in), ub = DOT_UNIT(mode);
    const int n_units = i8 ? d_in / 32 : (d_in + 1) / 2;
    for (int u0 = 0; u0 < n_units; u0 += KU) {
        int u1 = u0 + KU < n_units ? u0 + KU : n_units, first = u0 == 0;
        for (int t0 = 0; t0 < n; t0 += GEMM_MC) {
            int t1 = t0 + GEMM_MC < n ? t0 + GEMM_MC : n;
            for (int p = p0; p < p1; p += NP) {
                int np = p1 - p < NP ? p1 - p : NP;
                const unsigned char *w0 = wp + (size_t)p * ps, *w1 = w0 + ps;
                bool cols_ok = (p + np) * 16 <= d_out;
                for (int t = t0; t < t1; t += MR) {
                    int mr = t1 - t < MR ? t1 - t : MR;
                    if (mr == MR && cols_ok)
                        qtile_np(mode, dt, y + (size_t)t * d_out + (size_t)p * 16, (size_t)d_out,
                                 xq + (size_t)t * n_units * ub, (size_t)n_units, 0, w0, w1, np, u0, u1, first);
                    else qtile_edge(mode, dt, y, xq, w0, w1, np, mr, t, p, n_units, d_out, u0, u1, first);
                }
            }
        }
    }
}

/* An activation's bf16 bits in the high half (kernels.h: denormals to
 * zero of the same sign, NaN quieted, else round to nearest even). */
static inline uint32_t act_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t a = u & 0x7FFFFFFFu;
    if (a < 0x00800000u) return u & 0x80000000u;
    if (a > 0x7F800000u) return (u | 0x00400000u) & 0xFFFF0000u;
    return (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
}

/* Rows of x (n, d_in) as activation pairs xq (n, (d_in + 1) / 2). */
static void bf16_pairs(uint32_t *xq, const float *x, int n, int d_in) {
    int n_pairs = (d_in + 1) / 2;
    for (int t = 0; t < n; t++) {
        const float *xr = x + (size_t)t * d_in;
        uint32_t *q = xq + (size_t)t * n_pairs;
        int k = 0;
#if HR_ISA == 2
        const __m512i absm = _mm512_set1_epi32(0x7FFFFFFF), sign = _mm512_set1_epi32((int)0x80000000u);
        const __m512i minn = _mm512_set1_epi32(0x00800000), inf = _mm512_set1_epi32(0x7F800000);
        const __m512i quiet = _mm512_set1_epi32(0x00400000), bias = _mm512_set1_epi32(0x7FFF);
        const __m512i one = _mm512_set1_epi32(1), hi = _mm512_set1_epi64((long long)0xFFFF0000);
        for (; k + 16 <= d_in; k += 16) { /* 16 activations -> 8 pairs */
            __m512i u = _mm512_loadu_si512(xr + k), a = _mm512_and_si512(u, absm);
            __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_srli_epi32(u, 16), one)));
            r = _mm512_mask_or_epi32(r, _mm512_cmpgt_epi32_mask(a, inf), u, quiet);
            r = _mm512_mask_and_epi32(r, _mm512_cmplt_epi32_mask(a, minn), u, sign);
            /* qword m = (r[2m], r[2m + 1]): high half of r[2m] above that of r[2m + 1] */
            __m512i pr = _mm512_or_si512(_mm512_and_si512(r, hi), _mm512_srli_epi64(r, 48));
            _mm256_storeu_si256((__m256i *)(q + k / 2), _mm512_cvtepi64_epi32(pr));
        }
#endif
        for (; k < d_in; k += 2) {
            uint32_t h = act_bits(xr[k]), l = k + 1 < d_in ? act_bits(xr[k + 1]) : 0;
            q[k / 2] = h | l >> 16;
        }
    }
}

static DOT_HW_ATTR void gemv_bf16dot(float *y, const uint32_t *xq, const void *wp, int d_in, int d_out, int p0,
                                     int p1) {
    gemv_dot_t(0, y, xq, wp, d_in, d_out, p0, p1);
}
static DOT_HW_ATTR void gemm_bf16dot(float *y, const uint32_t *xq, const void *wp, int n, int d_in, int d_out, int p0,
                                     int p1) {
    gemm_q_t(DOT_BF16, HR_WT_BF16, y, xq, wp, n, d_in, d_out, p0, p1);
}
#if HR_ISA == 2
static DOT_HW_ATTR void gemv_bf16dot_hw(float *y, const uint32_t *xq, const void *wp, int d_in, int d_out, int p0,
                                        int p1) {
    gemv_dot_t(1, y, xq, wp, d_in, d_out, p0, p1);
}
static DOT_HW_ATTR void gemm_bf16dot_hw(float *y, const uint32_t *xq, const void *wp, int n, int d_in, int d_out,
                                        int p0, int p1) {
    gemm_q_t(DOT_BF16 + 1, HR_WT_BF16, y, xq, wp, n, d_in, d_out, p0, p1);
}
#endif

/* wt: HR_WT_Q8_0 or HR_WT_I8 (one instantiation each). */
static DOT_HW_ATTR void gemv_int8dot(float *y, const hr_q8_act *xa, const void *wp, int wt, int d_in, int d_out, int p0,
                                     int p1) {
    if (wt == HR_WT_I8) gemv_i8_t(0, HR_WT_I8, y, xa, wp, d_in, d_out, p0, p1);
    else gemv_i8_t(0, HR_WT_Q8_0, y, xa, wp, d_in, d_out, p0, p1);
}
static DOT_HW_ATTR void gemm_int8dot(float *y, const hr_q8_act *xa, const void *wp, int wt, int n, int d_in, int d_out,
                                     int p0, int p1) {
    if (wt == HR_WT_I8) gemm_q_t(DOT_I8, HR_WT_I8, y, xa, wp, n, d_in, d_out, p0, p1);
    else gemm_q_t(DOT_I8, HR_WT_Q8_0, y, xa, wp, n, d_in, d_out, p0, p1);
}
#if HR_ISA > 0
static DOT_HW_ATTR void gemv_int8dot_hw(float *y, const hr_q8_act *xa, const void *wp, int wt, int d_in, int d_out,
                                        int p0, int p1) {
    if (wt == HR_WT_I8) gemv_i8_t(1, HR_WT_I8, y, xa, wp, d_in, d_out, p0, p1);
    else gemv_i8_t(1, HR_WT_Q8_0, y, xa, wp, d_in, d_out, p0, p1);
}
static DOT_HW_ATTR void gemm_int8dot_hw(float *y, const hr_q8_act *xa, const void *wp, int wt, int n, int d_in,
                                        int d_out, int p0, int p1) {
    if (wt == HR_WT_I8) gemm_q_t(DOT_I8 + 1, HR_WT_I8, y, xa, wp, n, d_in, d_out, p0, p1);
    else gemm_q_t(DOT_I8 + 1, HR_WT_Q8_0, y, xa, wp, n, d_in, d_out, p0, p1);
}
#endif

/* Rows of x (n, d_in; d_in a multiple of 32) as int8 activation blocks xa
 * (n, d_in / 32), kernels.h's arithmetic: amax by comparisons (exact in any
 * order), d = amax / 127, id = 1 / d, q = roundf(x * id) (half away from
 * zero: trunc, then +-1 where the exact remainder is >= 0.5). */
#if HR_ISA == 2
/* 16 activations times id as int8 q (stored at q), returning their q as int32. */
static inline __m512i q8_round16(const float *v, float id, int8_t *q) {
    __m512 r = _mm512_mul_ps(_mm512_loadu_ps(v), _mm512_set1_ps(id));
    __m512 tr = _mm512_roundscale_ps(r, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(r, tr)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    __m512 one = _mm512_or_ps(_mm512_set1_ps(1.0f), _mm512_and_ps(r, _mm512_set1_ps(-0.0f))); /* +-1 as r's sign */
    __m512i qi = _mm512_cvttps_epi32(_mm512_mask_add_ps(tr, up, tr, one));
    _mm_storeu_si128((__m128i *)q, _mm512_cvtepi32_epi8(qi));
    return qi;
}
#endif

static void q8_acts(hr_q8_act *xa, const float *x, int n, int d_in) {
    const int nb = d_in / 32;
    for (int t = 0; t < n; t++)
        for (int b = 0; b < nb; b++) {
            const float *v = x + (size_t)t * d_in + 32 * b;
            hr_q8_act *o = xa + (size_t)t * nb + b;
            float amax = 0.0f;
            int finite = 1;
#if HR_ISA == 2
            __m512 a0 = _mm512_abs_ps(_mm512_loadu_ps(v)), a1 = _mm512_abs_ps(_mm512_loadu_ps(v + 16));
            __m512 big = _mm512_set1_ps(FLT_MAX);
            finite = (__mmask16)(_mm512_cmp_ps_mask(a0, big, _CMP_LE_OQ) & _mm512_cmp_ps_mask(a1, big, _CMP_LE_OQ)) ==
                     0xFFFF;
            amax = finite ? _mm512_reduce_max_ps(_mm512_max_ps(a0, a1)) : 0.0f;
#else
            for (int i = 0; i < 32; i++) {
                float a = fabsf(v[i]);
                finite &= a <= FLT_MAX;
                amax = a > amax ? a : amax;
            }
#endif
            float d = amax / 127.0f;
            o->sum = 0;
            if (!finite || !(d >= FLT_MIN)) { /* inf / NaN: d = NaN; tiny or zero: d = 0; q = 0 */
                o->d = finite ? 0.0f : NAN;
                memset(o->q, 0, sizeof o->q);
                continue;
            }
            float id = 1.0f / d;
            o->d = d;
#if HR_ISA == 2
            o->sum =
                _mm512_reduce_add_epi32(_mm512_add_epi32(q8_round16(v, id, o->q), q8_round16(v + 16, id, o->q + 16)));
            continue;
#endif
            for (int i = 0; i < 32; i++) {
                float r = v[i] * id, tr = truncf(r);
                int q = (int)tr + (fabsf(r - tr) >= 0.5f ? (r < 0 ? -1 : 1) : 0);
                o->q[i] = (int8_t)q;
                o->sum += q;
            }
        }
}

/* ---- dot products, softmax, log-probability reductions ---- */

/* 16 lanes over blocks of 16, the tree, then the tail in order (unfused). */
static float dot(const float *a, const float *b, int n) {
    v16 acc = v_zero();
    int k = 0;
    for (; k + 16 <= n; k += 16) acc = v_fma(v_load(a + k), v_load(b + k), acc);
    float s = v_hsum(acc);
    for (; k < n; k++) s += a[k] * b[k];
    return s;
}

static void softmax(float *x, int n) {
    v16 vmx = v_set1(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16) vmx = v_max(vmx, v_load(x + i));
    float mx = v_hmax(vmx);
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    v16 vm = v_set1(mx), vs = v_zero();
    for (i = 0; i + 16 <= n; i += 16) {
        v16 e = v_exp(v_sub(v_load(x + i), vm));
        v_store(x + i, e);
        vs = v_add(vs, e);
    }
    if (i < n) {
        v_store_n(x + i, v_exp(v_sub(v_load_n(x + i, n - i), vm)), n - i);
        vs = v_add(vs, v_load_n(x + i, n - i)); /* lanes past n add zero */
    }
    float inv = 1.0f / v_hsum(vs);
    v16 vinv = v_set1(inv);
    for (i = 0; i + 16 <= n; i += 16) v_store(x + i, v_mul(v_load(x + i), vinv));
    for (; i < n; i++) x[i] *= inv;
}

static float max_f32(const float *x, int n) {
    v16 m = v_set1(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16) m = v_max(m, v_load(x + i));
    float mx = v_hmax(m);
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    return mx;
}

static double sum_exp(const float *x, int n, double m) {
    v8d acc = d_zero(), vm = d_set1(m);
    int i = 0;
    for (; i + 8 <= n; i += 8) acc = d_add(acc, d_exp(d_sub(d_from_f32(x + i), vm)));
    double s = d_hsum(acc);
    for (; i < n; i++) s += exp((double)x[i] - m);
    return s;
}

static double dot_f64(const float *a, const float *b, int n) {
    v8d acc = d_zero();
    int i = 0;
    for (; i + 8 <= n; i += 8) acc = d_fma(d_from_f32(a + i), d_from_f32(b + i), acc);
    double s = d_hsum(acc);
    for (; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* h = silu(gate) * up: gate / (1 + e^-gate) * up. */
static void swiglu(float *h, const float *gate, const float *up, int n) {
    const v16 one = v_set1(1.0f);
    for (int i = 0; i < n; i += 16) {
        int m = n - i;
        v16 g = v_load_n(gate + i, m);
        v16 e = v_exp(v_sub(v_zero(), g));
        v_store_n(h + i, v_mul(v_div(g, v_add(one, e)), v_load_n(up + i, m)), m);
    }
}

/* ---- attention ---- */

/* nq queries x 16 ATT_NB positions per block: each key load feeds nq FMAs.
 * The chain of every score is over d from zero, then times scale. */
static inline __attribute__((always_inline)) void scores_q(float *s, size_t ss, const float *q, size_t qs, int nq,
                                                           const float *kt, int ld, int head_dim, int len,
                                                           float scale) {
    const v16 vs = v_set1(scale);
    int p = 0;
    for (; p + 16 * ATT_NB <= len; p += 16 * ATT_NB) {
        v16 a[ATT_MAXQ][ATT_NB];
        for (int i = 0; i < nq; i++)
            for (int b = 0; b < ATT_NB; b++) a[i][b] = v_zero();
        for (int d = 0; d < head_dim; d++) {
            const float *row = kt + (size_t)d * ld + p;
            v16 kv[ATT_NB];
            for (int b = 0; b < ATT_NB; b++) {
                kv[b] = v_load(row + 16 * b);
                if (nq > 1) V_KEEP(kv[b]);
            }
            for (int i = 0; i < nq; i++) {
                v16 qd = v_set1(q[(size_t)i * qs + d]);
                for (int b = 0; b < ATT_NB; b++) a[i][b] = v_fma(qd, kv[b], a[i][b]);
            }
        }
        for (int i = 0; i < nq; i++)
            for (int b = 0; b < ATT_NB; b++) v_store(s + (size_t)i * ss + p + 16 * b, v_mul(a[i][b], vs));
    }
    for (; p < len; p += 16) {
        int m = len - p;
        v16 a[ATT_MAXQ];
        for (int i = 0; i < nq; i++) a[i] = v_zero();
        for (int d = 0; d < head_dim; d++) {
            v16 kv = v_load_n(kt + (size_t)d * ld + p, m);
            for (int i = 0; i < nq; i++) a[i] = v_fma(v_set1(q[(size_t)i * qs + d]), kv, a[i]);
        }
        for (int i = 0; i < nq; i++) v_store_n(s + (size_t)i * ss + p, v_mul(a[i], vs), m);
    }
}

static void attn_scores_multi(float *s, size_t ss, const float *q, size_t qs, int nq, const float *kt, int ld,
                              int head_dim, int len, float scale) {
    for (int i0 = 0; i0 < nq; i0 += ATT_MAXQ) {
        int g = nq - i0 < ATT_MAXQ ? nq - i0 : ATT_MAXQ;
        float *si = s + (size_t)i0 * ss;
        const float *qi = q + (size_t)i0 * qs;
        switch (g) {
        case 4: scores_q(si, ss, qi, qs, 4 < ATT_MAXQ ? 4 : ATT_MAXQ, kt, ld, head_dim, len, scale); break;
        case 3: scores_q(si, ss, qi, qs, 3 < ATT_MAXQ ? 3 : ATT_MAXQ, kt, ld, head_dim, len, scale); break;
        case 2: scores_q(si, ss, qi, qs, 2 < ATT_MAXQ ? 2 : ATT_MAXQ, kt, ld, head_dim, len, scale); break;
        default: scores_q(si, ss, qi, qs, 1, kt, ld, head_dim, len, scale); break;
        }
    }
}

#if HR_ISA == 2
/* Horizontal sums of 16 vectors at once, returned as lane 4i+j = sum of
 * A(i + 4j) (A0..A15 in argument order). Each sum uses exactly the tree of
 * _mm512_reduce_add_ps (pairs at distance 8, 4, 2, 1), so results are
 * bit-identical to v_hsum on each vector alone. */
static inline __m512 reduce16(__m512 a0, __m512 a1, __m512 a2, __m512 a3, __m512 a4, __m512 a5, __m512 a6, __m512 a7,
                              __m512 a8, __m512 a9, __m512 a10, __m512 a11, __m512 a12, __m512 a13, __m512 a14,
                              __m512 a15) {
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
#endif

/* ATT_ND head dims x nq queries: each value load feeds nq FMAs, each score
 * load ATT_ND. Every output o_i[d] is 16 lanes accumulated over the blocks
 * of positions in order (the last block masked: lanes past len load zeros),
 * then summed by the tree; the lanes run first over the blocks every query
 * has whole, then each query finishes its own. One query (decode) and
 * several (prefill) therefore agree bit for bit. */
static inline __attribute__((always_inline)) void values_q(float *o, size_t os, const float *s, size_t ss, int nq,
                                                           const float *vt, int ld, int head_dim, const int *len) {
    int common = len[0];
    for (int i = 1; i < nq; i++) common = len[i] < common ? len[i] : common;
    common &= ~15;
    for (int d = 0; d < head_dim; d += ATT_ND) {
        int nd = head_dim - d < ATT_ND ? head_dim - d : ATT_ND;
        const float *v[ATT_ND];
        for (int r = 0; r < ATT_ND; r++) v[r] = vt + (size_t)(d + (r < nd ? r : 0)) * ld; /* spare rows repeat row d */
        v16 a[ATT_MAXQ][ATT_ND]; /* registers: every loop over i and r is unrolled (nq is a constant here) */
#pragma GCC unroll 4
        for (int i = 0; i < nq; i++)
            for (int r = 0; r < ATT_ND; r++) a[i][r] = v_zero();
        for (int k = 0; k < common; k += 16) {
            v16 vv[ATT_ND];
            for (int r = 0; r < ATT_ND; r++) {
                vv[r] = v_load(v[r] + k);
                if (nq > 1) V_KEEP(vv[r]);
            }
            for (int i = 0; i < nq; i++) {
                v16 sv = v_load(s + (size_t)i * ss + k);
                V_KEEP(sv);
                for (int r = 0; r < ATT_ND; r++) a[i][r] = v_fma(sv, vv[r], a[i][r]);
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < nq; i++) {
            const float *si = s + (size_t)i * ss;
            for (int k = common; k < len[i]; k += 16) {
                v16 sv = v_load_n(si + k, len[i] - k);
                for (int r = 0; r < ATT_ND; r++) a[i][r] = v_fma(sv, v_load_n(v[r] + k, len[i] - k), a[i][r]);
            }
        }
        float sums[ATT_MAXQ * ATT_ND]; /* (nq, ATT_ND) */
#if HR_ISA == 2
        if (nq == 4) { /* lane 4i + r = query i, dim d + r; stored from the register (the 16 sums stored at once
                          and read back in pieces stalled store-to-load forwarding) */
            __m512 r16 = reduce16(a[0][0], a[1][0], a[2][0], a[3][0], a[0][1], a[1][1], a[2][1], a[3][1], a[0][2],
                                  a[1][2], a[2][2], a[3][2], a[0][3], a[1][3], a[2][3], a[3][3]);
            __mmask8 dm = (__mmask8)((1u << nd) - 1);
            _mm_mask_storeu_ps(o + d, dm, _mm512_extractf32x4_ps(r16, 0));
            _mm_mask_storeu_ps(o + os + d, dm, _mm512_extractf32x4_ps(r16, 1));
            _mm_mask_storeu_ps(o + 2 * os + d, dm, _mm512_extractf32x4_ps(r16, 2));
            _mm_mask_storeu_ps(o + 3 * os + d, dm, _mm512_extractf32x4_ps(r16, 3));
            continue;
        }
#endif
        {
            for (int i = 0; i < nq; i++)
                for (int r = 0; r < ATT_ND; r++) sums[ATT_ND * i + r] = v_hsum(a[i][r]);
        }
        for (int i = 0; i < nq; i++)
            for (int r = 0; r < nd; r++) o[(size_t)i * os + d + r] = sums[ATT_ND * i + r];
    }
}

static void attn_values_multi(float *o, size_t os, const float *s, size_t ss, int nq, const float *vt, int ld,
                              int head_dim, const int *len) {
    for (int i0 = 0; i0 < nq; i0 += ATT_MAXQ) {
        int g = nq - i0 < ATT_MAXQ ? nq - i0 : ATT_MAXQ;
        float *oi = o + (size_t)i0 * os;
        const float *si = s + (size_t)i0 * ss;
        switch (g) {
        case 4: values_q(oi, os, si, ss, 4 < ATT_MAXQ ? 4 : ATT_MAXQ, vt, ld, head_dim, len + i0); break;
        case 3: values_q(oi, os, si, ss, 3 < ATT_MAXQ ? 3 : ATT_MAXQ, vt, ld, head_dim, len + i0); break;
        case 2: values_q(oi, os, si, ss, 2 < ATT_MAXQ ? 2 : ATT_MAXQ, vt, ld, head_dim, len + i0); break;
        default: values_q(oi, os, si, ss, 1, vt, ld, head_dim, len + i0); break;
        }
    }
}

/* ---- training kernels (grad_kernels.h) ---- */

enum { GM_KC = 128 };

/* mr rows x nv vectors of 16 columns of C (n0, n1 live lanes) over p in
 * [0, kc): A element (i, p) at a[i * ai + p * ap], B row p at b + p * 32
 * (padded with zeros); mr and nv are constants after inlining. Each C
 * element is one chain: from C (from_c) or zero, then p in order. */
static inline __attribute__((always_inline)) void gemm_tile(float *c, size_t ldc, const float *a, size_t ai, size_t ap,
                                                            const float *b, int mr, int nv, int n0, int n1, int kc,
                                                            bool from_c) {
    v16 acc[GM_MR][GM_NV];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        acc[i][0] = from_c ? v_load_n(c + (size_t)i * ldc, n0) : v_zero();
        if (nv > 1) acc[i][GM_NV - 1] = from_c ? v_load_n(c + (size_t)i * ldc + 16, n1) : v_zero();
    }
    for (int p = 0; p < kc; p++) {
        const float *br = b + (size_t)p * 32, *ar = a + (size_t)p * ap;
        v16 b0 = v_load(br), b1 = nv > 1 ? v_load(br + 16) : b0;
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            v16 av = v_set1(ar[(size_t)i * ai]);
            acc[i][0] = v_fma(av, b0, acc[i][0]);
            if (nv > 1) acc[i][GM_NV - 1] = v_fma(av, b1, acc[i][GM_NV - 1]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        v_store_n(c + (size_t)i * ldc, acc[i][0], n0);
        if (nv > 1) v_store_n(c + (size_t)i * ldc + 16, acc[i][GM_NV - 1], n1);
    }
}

/* One 16-column tile (or two with GM_NV = 2) of a (kc, 32) B slice. */
static void gemm_tile_any(float *c, size_t ldc, const float *a, size_t ai, size_t ap, const float *b, int mr, int width,
                          int kc, bool from_c) {
    int n0 = width < 16 ? width : 16, n1 = width - 16;
    if (GM_NV == 1 || width <= 16) {
        for (int h = 0; h < (width > 16 ? 2 : 1); h++) {
            int n = h ? n1 : n0;
            if (mr == GM_MR) gemm_tile(c + 16 * h, ldc, a, ai, ap, b + 16 * h, GM_MR, 1, n, 0, kc, from_c);
            else
                for (int i = 0; i < mr; i++) /* fewer rows: one row at a time, same chains */
                    gemm_tile(c + (size_t)i * ldc + 16 * h, ldc, a + (size_t)i * ai, ai, ap, b + 16 * h, 1, 1, n, 0, kc,
                              from_c);
        }
        return;
    }
    if (mr == GM_MR) gemm_tile(c, ldc, a, ai, ap, b, GM_MR, 2, n0, n1, kc, from_c);
    else
        for (int i = 0; i < mr; i++)
            gemm_tile(c + (size_t)i * ldc, ldc, a + (size_t)i * ai, ai, ap, b, 1, 2, n0, n1, kc, from_c);
}

/* Block rows [i0, i1) x columns [j0, j1) of C (m, nc) = A (m, k) B (k, nc):
 * for each K-block of 128 and 32-column slice, the B slice is copied into a
 * contiguous zero-padded buffer (B's rows may be thousands of floats apart,
 * which would map them onto a few L1 sets) that the block's row tiles then
 * run over; A is read in place. Packing copies values: chains unchanged. */
static void gemm_block(float *c, size_t ldc, const float *a, size_t ai, size_t ap, const float *b, size_t ldb, int k,
                       int i0, int i1, int j0, int j1, int accumulate) {
    _Alignas(64) float bp[GM_KC * 32]; /* (kc, 32) B slice, zero-padded */
    for (int p0 = 0; p0 < k; p0 += GM_KC) {
        int kc = k - p0 < GM_KC ? k - p0 : GM_KC;
        bool from_c = p0 > 0 || accumulate;
        const float *ak = a + (size_t)p0 * ap;
        for (int jt = j0; jt < j1; jt += 32) {
            int width = j1 - jt < 32 ? j1 - jt : 32;
            for (int p = 0; p < kc; p++) {
                const float *src = b + (size_t)(p0 + p) * ldb + jt;
                v_store(bp + p * 32, v_load_n(src, width));
                v_store(bp + p * 32 + 16, v_load_n(src + 16, width - 16));
            }
            /* the next slice's rows are far apart (no hardware stream): fetch them while this one computes */
            int nj = jt + 32 < j1 ? jt + 32 : j0, np0 = jt + 32 < j1 ? p0 : p0 + GM_KC;
            for (int p = np0; p < np0 + GM_KC && p < k; p++) {
                const char *r = (const char *)(b + (size_t)p * ldb + nj);
                __builtin_prefetch(r), __builtin_prefetch(r + 64);
            }
            for (int it = i0; it < i1; it += GM_MR) {
                int mr = i1 - it < GM_MR ? i1 - it : GM_MR;
                gemm_tile_any(c + (size_t)it * ldc + jt, ldc, ak + (size_t)it * ai, ai, ap, bp, mr, width, kc, from_c);
            }
        }
    }
}

/* dk (s, d) = scale sum_j sum_{t >= s} dS_j[t][s] q_j[t][d], dv likewise
 * from P and dout: 16 keys x KEYS_ND head dims per pass, one chain per
 * output over (j, t) in order. */
static void attn_bwd_keys(float *dk, float *dv, size_t kvs, const float *ds, const float *p, size_t hs, int ldp,
                          int n_q, const float *q, size_t qs, const float *dout, size_t dos, int head_dim, int n,
                          int s0, int s1, float scale) {
    if (s1 > n) s1 = n;
    for (int sb = s0; sb < s1; sb += 16) {
        int valid = s1 - sb < 16 ? s1 - sb : 16;
        for (int d0 = 0; d0 < head_dim; d0 += KEYS_ND) {
            int nd = head_dim - d0 < KEYS_ND ? head_dim - d0 : KEYS_ND;
            v16 ak[KEYS_ND], av[KEYS_ND];
            for (int i = 0; i < KEYS_ND; i++) ak[i] = av[i] = v_zero();
            for (int j = 0; j < n_q; j++) {
                const float *dsj = ds + (size_t)j * hs, *pj = p + (size_t)j * hs;
                const float *qj = q + (size_t)j * head_dim + d0, *oj = dout + (size_t)j * head_dim + d0;
                for (int t = sb; t < n; t++) { /* row t holds keys s <= t: lanes past it load zeros */
                    int live = t - sb + 1;
                    v16 sv = v_load_n(dsj + (size_t)t * ldp + sb, live);
                    v16 pv = v_load_n(pj + (size_t)t * ldp + sb, live);
                    const float *qt = qj + (size_t)t * qs, *ot = oj + (size_t)t * dos;
                    if (nd == KEYS_ND) {
#pragma GCC unroll 8
                        for (int i = 0; i < KEYS_ND; i++) {
                            ak[i] = v_fma(sv, v_set1(qt[i]), ak[i]);
                            av[i] = v_fma(pv, v_set1(ot[i]), av[i]);
                        }
                    } else {
                        for (int i = 0; i < nd; i++) {
                            ak[i] = v_fma(sv, v_set1(qt[i]), ak[i]);
                            av[i] = v_fma(pv, v_set1(ot[i]), av[i]);
                        }
                    }
                }
            }
            float bk[KEYS_ND][16], bv[KEYS_ND][16]; /* (KEYS_ND, 16 keys) */
            for (int i = 0; i < nd; i++) {
                v_store(bk[i], v_mul(ak[i], v_set1(scale)));
                v_store(bv[i], av[i]);
            }
            for (int l = 0; l < valid; l++)
                for (int i = 0; i < nd; i++) {
                    dk[(size_t)(sb + l) * kvs + d0 + i] = bk[i][l];
                    dv[(size_t)(sb + l) * kvs + d0 + i] = bv[i][l];
                }
        }
    }
}

const hr_kernel_table HR_SFX(hr_kernels) = {
    .name = HR_ISA == 2   ? "avx512"
            : HR_ISA == 1 ? "avx2"
                          : "scalar",
    .gemv_panels = gemv_panels,
    .gemm_panels = gemm_panels,
    .bf16_pairs = bf16_pairs,
    .gemv_bf16dot = gemv_bf16dot,
    .gemm_bf16dot = gemm_bf16dot,
#if HR_ISA == 2
    .gemv_bf16dot_hw = gemv_bf16dot_hw,
    .gemm_bf16dot_hw = gemm_bf16dot_hw,
#endif
    .q8_acts = q8_acts,
    .gemv_int8dot = gemv_int8dot,
    .gemm_int8dot = gemm_int8dot,
#if HR_ISA > 0
    .gemv_int8dot_hw = gemv_int8dot_hw,
    .gemm_int8dot_hw = gemm_int8dot_hw,
#endif
    .dot = dot,
    .softmax = softmax,
    .max_f32 = max_f32,
    .sum_exp = sum_exp,
    .dot_f64 = dot_f64,
    .attn_scores_multi = attn_scores_multi,
    .attn_values_multi = attn_values_multi,
    .swiglu = swiglu,
    .gemm_block = gemm_block,
    .attn_bwd_keys = attn_bwd_keys,
};
