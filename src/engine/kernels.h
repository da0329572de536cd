/* Compute kernels with explicit dimensions. Each optimised kernel has a
 * naive reference beside it (suffix _ref) that tests compare against.
 * Matrices are row-major; a weight W (d_out, d_in) maps x (d_in) to
 * y = W x (d_out). The optimised kernels run on the CPU path chosen at run
 * time (AVX-512, AVX2+FMA or plain C: kernels_isa.h), with the same bits on
 * every path. */
#ifndef HR_KERNELS_H
#define HR_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/pool.h"
#include "formats/dtype.h"
#include "formats/panels.h"

/* y (n, d_out) = x (n, d_in) · W^T; W (d_out, d_in); double accumulation. */
void hr_matmul_ref(float *y, const float *x, const float *w, int n, int d_in, int d_out);

/* Panel-packed weights. The forward pass multiplies by W (d_out, d_in) in
 * a packed copy: ceil(d_out/16) panels of (d_in, 16), wp[(p*d_in + k)*16 + j]
 * = W[16p + j][k], rows past d_out zero, 64-byte aligned. Every product
 * computes each output as one chain of fused multiply-adds over k = 0 ..
 * d_in-1 from zero, whatever the batch size, tiling or thread count, so
 * - batched prefill equals one-token decode bit for bit, and
 * - an input that is exactly zero adds exactly nothing: a model whose
 *   columns were removed (pruned heads, neurons) equals, bit for bit, the
 *   model with those inputs gated to zero.
 *
 * Typed panels keep the weights in their file's number format, in the
 * layouts of formats/panels.h (f32, f16, bf16, Q8_0, per-channel int8).
 * The kernels convert each weight to f32 exactly as the dequantizer does
 * (bf16 / f16 -> f32 is exact; Q8_0: (float)scale * (float)q, which is exact
 * too: an 11-bit by 8-bit product; int8: scale * (float)q, one rounding)
 * and run the same chain, so a typed
 * product equals, bit for bit, the f32 product over the dequantized weights
 * (for finite weights). Prefill = decode and thread independence therefore
 * hold per dtype; pruned = gated holds for bf16 / f16 / int8 always (an
 * int8 row keeps its scale when columns are cut), and for Q8_0
 * when the removed columns are whole 32-blocks of every row (the kept
 * blocks and their scales are then unchanged); a pruned Q8_0 matrix that
 * is re-quantized has new scales and is a different model. */
size_t hr_packed_floats(int d_out, int d_in);
/* Packs panels [p0, p1) of W into wp (hr_packed_floats(d_out, d_in) floats). */
void hr_pack_panels(float *wp, const float *w, int d_out, int d_in, int p0, int p1);
/* The plain chain per output, scalar fmaf: the bit-exact reference. */
void hr_matmul_packed_ref(float *y, const float *x, const float *wp, int n, int d_in, int d_out);
/* The same over typed panels: each weight by hr_panels_get. */
void hr_matmul_panels_ref(float *y, const float *x, hr_panels wp, int n, int d_in, int d_out);
/* Same, parallel over panels: a vectorised GEMV for up to 3 tokens, a
 * register-tiled, K-blocked GEMM for more, both bit-identical to the ref. */
void hr_matmul(hr_pool *pool, float *y, const float *x, hr_panels wp, int n, int d_in, int d_out);

/* The bf16 dot: an opt-in arithmetic for bf16 panels (hr_context_params.
 * bf16_dot), AVX512-BF16's. Activations are rounded to bf16 once per row
 * (denormals to zero of the same sign, then round to nearest even, as
 * VCVTNE2PS2BF16), and each output is one chain over k = 0 .. d_in-1 from
 * zero: acc = FTZ(fma(x[k], w[k], acc)) with denormal inputs as zero, FTZ
 * flushing a denormal result to zero of its sign. This is VDPBF16PS's
 * arithmetic on the pair layout above (per pair, the high half, k = 2m,
 * then k = 2m + 1, each accumulation rounded to nearest even; bf16
 * products are exact in f32), which the AVX-512 path runs when the CPU has
 * it and every other path emulates, so the paths agree bit for bit. The
 * chain is over k in order whatever the pairing, so prefill = decode,
 * thread independence and pruned = gated (a zero activation adds a zero
 * product) hold as for the exact kernels; the results differ from the
 * exact product by the activations' rounding (relative 2^-9 each). */
/* Rounds x (n, d_in) to bf16 activation pairs xq (n, (d_in + 1) / 2):
 * x[2m] in the high half of dword m, x[2m + 1] (0 past d_in) in the low. */
void hr_bf16_pairs(uint32_t *xq, const float *x, int n, int d_in);
/* The bf16 dot per output in scalar fmaf over hr_panels_get's weights: the
 * bit-exact reference (wp bf16 panels). */
void hr_matmul_bf16dot_ref(float *y, const float *x, hr_panels wp, int n, int d_in, int d_out);

/* The int8 dot: an opt-in arithmetic for Q8_0 and per-channel int8 panels
 * (hr_context_params.int8_dot), llama.cpp's for Q8_0 weights. Each token's activations are
 * quantized per 32-block b as llama.cpp's reference quantize_row_q8_0
 * does, in f32: amax = max |x_k| over the block, d_x = amax / 127 (kept as
 * f32; llama.cpp rounds it to f16), id = 1 / d_x, q_k = roundf(x_k * id)
 * (half away from zero), sum_x = sum_k q_k; a block whose d_x is zero or
 * below FLT_MIN gives d_x = 0, q = 0, and a block holding an inf or NaN
 * d_x = NaN, q = 0 (its outputs are NaN). Each output row r is then
 *   acc = 0; for b in order: s = sum_k q_w[r, k] q_k (an exact int32),
 *   acc = fmaf((float)s, d_w[r, b] * d_x[b], acc)
 * with d_w the row's f16 scale of block b as f32 (per-channel int8: the
 * row's f32 scale, the same for every block; one f32 multiply). s is exact on
 * every path (VPDPBUSD's u8 (q_w + 128) x s8 products minus 128 sum_x
 * where the CPU has AVX512-VNNI / AVX-VNNI, exact integer emulation
 * elsewhere) and (float)s is exact (|s| < 2^24), so every path gives the
 * same bits. Per token and per row the chain does not depend on the batch
 * or the thread split (prefill = decode, thread independence); a block of
 * zero activations adds exactly nothing, so a pruned model equals the gated
 * one when whole 32-blocks of the inputs were removed (as for the exact
 * Q8_0 products above). The results differ from the exact product by the
 * activations' rounding (at most d_x / 2 per value). */
/* One token's 32-block of activations for the int8 dot (40 bytes). */
typedef struct {
    int8_t q[32];
    float d;     /* d_x */
    int32_t sum; /* sum of q */
} hr_q8_act;
/* Bytes of the activation blocks of n rows of d_in values. */
size_t hr_q8_act_bytes(int n, int d_in);
/* Quantizes x (n, d_in; d_in a multiple of 32) to xa (n, d_in / 32). */
void hr_q8_acts(hr_q8_act *xa, const float *x, int n, int d_in);
/* The int8 dot from its definition in plain C (its own quantization,
 * hr_panels_get's weights as (int8 q, f16 scale)): the bit-exact reference
 * (wp Q8_0 panels). */
void hr_matmul_int8dot_ref(float *y, const float *x, hr_panels wp, int n, int d_in, int d_out);

/* Several products of the same x (n, d_in) in one pool job: out[m].y (n,
 * out[m].d_out) = x · W_m^T from the packed out[m].wp, or with blas (n > 1)
 * OpenBLAS sgemm on the row-major out[m].w (not bit-identical to decode;
 * only when w is not NULL, else the panels). Same results as separate calls.
 * With xq (scratch of n * ((d_in + 1) / 2) uint32, written here; NULL =
 * exact) the bf16 panels among the outs are multiplied by the bf16 dot
 * below (hr_matmul_bf16dot_ref's bits), the others as without it. With xa
 * (scratch of hr_q8_act_bytes(n, d_in), written here; NULL = exact) the
 * Q8_0 panels are multiplied by the int8 dot (hr_matmul_int8dot_ref's
 * bits). */
enum { HR_MATMUL_MAX_OUTS = 3 };
typedef struct {
    float *y;
    const float *w; /* row-major (d_out, d_in); only for blas, may be NULL */
    hr_panels wp;   /* packed */
    int d_out;
} hr_matmul_out;
void hr_matmul_multi(hr_pool *pool, const float *x, int n, int d_in, const hr_matmul_out *outs, int n_outs, bool blas,
                     uint32_t *xq, hr_q8_act *xa);

float hr_dot(const float *a, const float *b, int n);
/* y += a * x */
void hr_axpy(float *y, float a, const float *x, int n);

/* y (dim) = x / rms(x) * g; y may alias x. */
void hr_rmsnorm(float *y, const float *x, const float *g, int dim, float eps);

/* y (dim) = (x - mean) / sqrt(var + eps) * g + b; y may alias x. */
void hr_layernorm(float *y, const float *x, const float *g, const float *b, int dim, float eps);
void hr_layernorm_ref(float *y, const float *x, const float *g, const float *b, int dim, float eps);
/* In place GELU, tanh approximation (GPT-2's "gelu_new"). */
void hr_gelu_tanh(float *x, int n);

/* Rotates interleaved pairs (v[2i], v[2i+1]) of each of n_heads heads of
 * size head_dim by pos * theta^(-2i/head_dim), using cos/sin tables
 * (head_dim/2 each) for that position. */
void hr_rope(float *v, int n_heads, int head_dim, const float *cos_t, const float *sin_t);
void hr_rope_ref(float *v, int n_heads, int head_dim, int pos, float theta);
/* Fills cos/sin tables (head_dim/2) for one position from the rotation
 * frequencies (head_dim/2, see hr_rope_freqs). */
void hr_rope_table(float *cos_t, float *sin_t, const double *freqs, int head_dim, int pos);
/* freqs[i] = theta^(-2i/head_dim), rescaled as Llama 3 does when
 * llama3_factor > 0 (low/high frequency factors, original context). */
void hr_rope_freqs(double *freqs, int head_dim, float theta, float llama3_factor, float low_freq_factor,
                   float high_freq_factor, int original_ctx);

/* In place softmax over n values (vectorised exp). */
void hr_softmax(float *x, int n);
void hr_softmax_ref(float *x, int n);

/* ---- log-probabilities of logits (the one home of log-softmax / NLL) ----
 *
 * Two documented variants, because their callers' numbers are pinned:
 *  - double: max m of the floats, S = sum exp((double)x - m) in double,
 *    lse = m + log S. The vectorised exp (range reduction by ln 2, degree-13
 *    Taylor polynomial, relative error < 2e-16; arguments below -700 give 0)
 *    makes a 49152-entry row cost microseconds. Head lab loss/KL,
 *    evaluation KL / NLL / multiple choice.
 *  - llama.cpp: max m, float differences x - m, expf, double sum;
 *    nll = -((double)(x[tok] - m) - log S): llama-perplexity's arithmetic,
 *    so `headroom ppl --protocol llama.cpp` compares one to one. */

/* Largest of n finite floats (-inf for n = 0). */
float hr_max_f32(const float *x, int n);
/* sum_i exp((double)x[i] - m), vectorised exp / libm's exp in order. */
double hr_sum_exp(const float *x, int n, double m);
double hr_sum_exp_ref(const float *x, int n, double m);
/* log sum_i exp(x[i]) = m + log(hr_sum_exp(x, n, m)), m = hr_max_f32. */
double hr_logsumexp(const float *x, int n);
/* -log softmax(x)[tok] = hr_logsumexp(x) - x[tok]. */
double hr_token_nll(const float *x, int n, int tok);
/* The same in llama.cpp's arithmetic (see above). */
double hr_token_nll_llamacpp(const float *x, int n, int tok);
/* sum_i (double)a[i] * b[i] (vectorised: 8 double lanes, then a tree). */
double hr_dot_f64(const float *a, const float *b, int n);
double hr_dot_f64_ref(const float *a, const float *b, int n);

/* Attention scores s[p] = scale * sum_d q[d] * kt[d * ld + p] for p < len,
 * with keys stored transposed (head_dim rows of stride ld). */
void hr_attn_scores(float *s, const float *q, const float *kt, int ld, int head_dim, int len, float scale);
void hr_attn_scores_ref(float *s, const float *q, const float *kt, int ld, int head_dim, int len, float scale);
/* o[d] = sum_p s[p] * vt[d * ld + p] for d < head_dim (values transposed):
 * 16 lanes over blocks of positions (the last block masked), then the
 * _mm512_reduce_add_ps tree. */
void hr_attn_values(float *o, const float *s, const float *vt, int ld, int head_dim, int len);
void hr_attn_values_ref(float *o, const float *s, const float *vt, int ld, int head_dim, int len);
/* Up to 4 queries against the same keys/values (consecutive tokens of a
 * head): rows of q, s and o have strides qs, ss, os; query i sees len[i]
 * positions (the scores are computed over len, the largest). Bit-identical
 * per query to the one-query kernels, which decode uses. */
void hr_attn_scores_multi(float *s, size_t ss, const float *q, size_t qs, int nq, const float *kt, int ld, int head_dim,
                          int len, float scale);
void hr_attn_values_multi(float *o, size_t os, const float *s, size_t ss, int nq, const float *vt, int ld, int head_dim,
                          const int *len);
/* h = silu(gate) * up, n values (vectorised exp; the ref uses libm's). */
void hr_swiglu(float *h, const float *gate, const float *up, int n);
void hr_swiglu_ref(float *h, const float *gate, const float *up, int n);

#endif
