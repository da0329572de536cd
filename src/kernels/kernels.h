/* Compute kernels with explicit dimensions. Each optimised kernel has a
 * naive reference beside it (suffix _ref) that tests compare against.
 * Matrices are row-major; a weight W (d_out, d_in) maps x (d_in) to
 * y = W x (d_out). */
#ifndef HR_KERNELS_H
#define HR_KERNELS_H

#include <stddef.h>

#include "../threads/pool.h"

/* y (n, d_out) = x (n, d_in) · W^T; W (d_out, d_in). */
void hr_matmul_ref(float *y, const float *x, const float *w, int n, int d_in, int d_out);
/* Same, parallel over output rows: n == 1 uses a vectorised GEMV, n > 1
 * a register-tiled GEMM giving bit-identical results per output. */
void hr_matmul(hr_pool *pool, float *y, const float *x, const float *w, int n, int d_in, int d_out);
/* Same with n > 1 through OpenBLAS sgemm (single-threaded per row block):
 * faster for large batches, but not bit-identical to the GEMV. */
void hr_matmul_blas(hr_pool *pool, float *y, const float *x, const float *w, int n, int d_in, int d_out);

/* GEMV on output rows [r0, r1): y[r] = dot(W[r], x). */
void hr_gemv_rows(float *y, const float *x, const float *w, int d_in, int r0, int r1);
void hr_gemv_rows_ref(float *y, const float *x, const float *w, int d_in, int r0, int r1);

/* GEMM on output rows [r0, r1) of y (n, d_out), with x also given packed
 * (hr_gemm_pack into hr_gemm_packed_floats(n, d_in) floats, 64-byte
 * aligned); bit-identical per output to hr_gemv_rows. */
size_t hr_gemm_packed_floats(int n, int d_in);
void hr_gemm_pack(float *xp, const float *x, int n, int d_in);
void hr_gemm_rows_packed(float *y, const float *x, const float *xp, const float *w, int n, int d_in, int d_out,
                         int r0, int r1);

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

/* Attention scores s[p] = scale * sum_d q[d] * kt[d * ld + p] for p < len,
 * with keys stored transposed (head_dim rows of stride ld). */
void hr_attn_scores(float *s, const float *q, const float *kt, int ld, int head_dim, int len, float scale);
void hr_attn_scores_ref(float *s, const float *q, const float *kt, int ld, int head_dim, int len, float scale);
/* o[d] = sum_p s[p] * vt[d * ld + p] for d < head_dim (values transposed);
 * each output computed exactly like hr_dot. */
void hr_attn_values(float *o, const float *s, const float *vt, int ld, int head_dim, int len);
/* h = silu(gate) * up, n values. */
void hr_swiglu(float *h, const float *gate, const float *up, int n);

#endif
