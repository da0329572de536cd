/* Kernels of the training forward and backward pass, llm.c style: plain
 * functions with explicit dimensions, each backward beside its forward (the
 * forwards are the inference kernels of engine/kernels.h where one exists),
 * and a scalar reference (suffix _ref) beside each optimised kernel that
 * tests/test_grad_kernels.c compares it with.
 *
 * Row-major everywhere; a weight W (d_out, d_in) maps x (d_in) to W x.
 * Every output element is computed by one chain of operations in a fixed
 * order, so results never depend on how work is split between threads.
 *
 * The residual connection x + f(x) needs no kernel: its backward passes the
 * gradient unchanged to both branches (dx += df). */
#ifndef HR_GRAD_KERNELS_H
#define HR_GRAD_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/pool.h"

/* ---- matrix products ----
 * C (m, nc) (+)= A (m, k) · B (k, nc). A's element (i, p) is a[i*ai + p*ap],
 * so A may be a row-major matrix (ai = row stride, ap = 1) or the transpose
 * of one (ai = 1, ap = row stride); B is row-major with row stride ldb, C
 * with ldc. Each element of C is one chain of fused multiply-adds over
 * p = 0..k-1 in order, starting from 0, or from C's value when accumulate:
 * the optimised kernel (8 x 32 register tiles, K-blocks of 128, tasks of
 * fixed 64 x 128 blocks) and the scalar fmaf reference agree bit for bit. */
void hr_gemm_ref(float *c, size_t ldc, const float *a, size_t ai, size_t ap, const float *b, size_t ldb, int m, int k,
                 int nc, bool accumulate);
void hr_gemm(hr_pool *pool, float *c, size_t ldc, const float *a, size_t ai, size_t ap, const float *b, size_t ldb,
             int m, int k, int nc, bool accumulate);

/* Backward of y (n, d_out) = x (n, d_in) · W^T (the forward is hr_matmul):
 * dx (n, d_in) = dy · W, or += with accumulate; dw (d_out, d_in) += dy^T · x
 * (chains over the n tokens in order, continuing from dw). */
void hr_matmul_bwd_x(hr_pool *pool, float *dx, const float *dy, const float *w, int n, int d_in, int d_out,
                     bool accumulate);
void hr_matmul_bwd_w(hr_pool *pool, float *dw, const float *dy, const float *x, int n, int d_in, int d_out);
/* Bias of the same product: db (d) += sum over the n rows of dy (n, d). */
void hr_bias_bwd(float *db, const float *dy, int n, int d);

/* ---- normalisation (forwards: hr_rmsnorm, hr_layernorm) ----
 * One row: dx (dim) = d/dx of y = norm(x) against dy, or += with
 * accumulate. The statistics are recomputed from x exactly as the forward
 * computes them. */
void hr_rmsnorm_bwd(float *dx, const float *dy, const float *x, const float *g, int dim, float eps, bool accumulate);
void hr_layernorm_bwd(float *dx, const float *dy, const float *x, const float *g, int dim, float eps, bool accumulate);
/* Weight (and bias) gradients over n rows (dy, x: (n, dim)):
 * dg[i] += sum_t dy[t,i] * xhat[t,i], db[i] += sum_t dy[t,i] (db may be NULL;
 * xhat = the normalised x before g is applied), rows in order. */
void hr_rmsnorm_bwd_weight(float *dg, const float *dy, const float *x, int n, int dim, float eps);
void hr_layernorm_bwd_weight(float *dg, float *db, const float *dy, const float *x, int n, int dim, float eps);
/* Scalar double-precision references of the row backward. */
void hr_rmsnorm_bwd_ref(float *dx, const float *dy, const float *x, const float *g, int dim, float eps);
void hr_layernorm_bwd_ref(float *dx, const float *dy, const float *x, const float *g, int dim, float eps);

/* ---- RoPE (forward: hr_rope) ----
 * In place: the inverse rotation of each interleaved pair, which is the
 * transpose of the forward's (a rotation). */
void hr_rope_bwd(float *dv, int n_heads, int head_dim, const float *cos_t, const float *sin_t);

/* ---- causal softmax attention of one head ----
 * Queries t in [t0, t1) at positions t see keys 0..t. Keys and values are
 * transposed (head_dim, ldk) so kernels run along positions; p (., ldp) holds
 * probability rows: entries s <= t of row t (the rest is never read, so never
 * written). n: the window's length. scale = 1/sqrt(head_dim). */
/* Forward: p rows and outputs o (row stride os) from q (row stride qs), with
 * the inference kernels (hr_attn_scores_multi, hr_softmax,
 * hr_attn_values_multi) in the inference order: bit-identical to hr_forward. */
void hr_attn_fwd(float *p, int ldp, float *o, size_t os, const float *q, size_t qs, const float *kt, const float *vt,
                 int ldk, int head_dim, int n, int t0, int t1, float scale);
/* Backward, rows: from p and do (row stride dos), dS[t,s] = p[t,s] (dP[t,s] -
 * sum_s' p[t,s'] dP[t,s']) with dP[t,s] = do_t . v_s, stored in ds (., ldp)
 * like p; dq_t = scale * sum_s dS[t,s] k_s (row stride dqs). */
void hr_attn_bwd_rows(float *ds, float *dq, size_t dqs, const float *p, int ldp, const float *dout, size_t dos,
                      const float *kt, const float *vt, int ldk, int head_dim, int n, int t0, int t1, float scale);
/* Backward, keys of one KV group: for keys s in [s0, s1) (s0 a multiple of
 * 16), dk_s = scale * sum over the group's n_q query heads and t >= s of
 * dS_h[t,s] q_h[t], dv_s = sum of p_h[t,s] do_h[t]. Head j of the group has
 * probability / dS rows at p + j*hs, ds + j*hs, queries at q + j*head_dim
 * (row stride qs) and output gradients at dout + j*head_dim (row stride dos);
 * dk, dv rows have stride kvs. Sums run over heads, then t, in order. */
void hr_attn_bwd_keys(float *dk, float *dv, size_t kvs, const float *ds, const float *p, size_t hs, int ldp, int n_q,
                      const float *q, size_t qs, const float *dout, size_t dos, int head_dim, int n, int s0, int s1,
                      float scale);
/* Reference of the whole backward of one KV group in double from q (n, n_q
 * heads of head_dim at stride qs), k and v (n, head_dim, row stride kvs) and
 * do: recomputes the probabilities and writes dq (like q), dk, dv (like k). */
void hr_attn_bwd_ref(float *dq, float *dk, float *dv, const float *q, size_t qs, const float *k, const float *v,
                     size_t kvs, const float *dout, size_t dos, int n_q, int head_dim, int n, float scale);

/* ---- MLP activations (forwards: hr_swiglu, hr_gelu_tanh) ----
 * h = silu(gate) * up: dgate = dh * up * silu'(gate), dup = dh * silu(gate),
 * silu' = s (1 + gate (1 - s)) with s = sigmoid(gate); silu comes from
 * hr_swiglu (vectorised exp) and s = silu / gate. dgate may alias dh. */
void hr_swiglu_bwd(float *dgate, float *dup, const float *dh, const float *gate, const float *up, int n);
void hr_swiglu_bwd_ref(float *dgate, float *dup, const float *dh, const float *gate, const float *up, int n);
/* y = gelu_tanh(x): dx = dy * gelu_tanh'(x). */
void hr_gelu_tanh_bwd(float *dx, const float *dy, const float *x, int n);
void hr_gelu_tanh_bwd_ref(float *dx, const float *dy, const float *x, int n);

/* ---- embedding ----
 * Forward: x (n, dim) = tok[tokens[t]] (+ pos[t] when pos != NULL).
 * Backward: dtok[tokens[t]] += dx[t] and dpos[t] += dx[t] (either may be
 * NULL), tokens in order. */
void hr_embed_fwd(float *x, const int32_t *tokens, int n, const float *tok, const float *pos, int dim);
void hr_embed_bwd(float *dtok, float *dpos, const float *dx, const int32_t *tokens, int n, int dim);

/* ---- cross-entropy of one row ----
 * Turns logits (vocab) in place into scale * (softmax(logits) - onehot(target))
 * and returns -log softmax(logits)[target] in double (from the row maximum
 * and the probability of the arg-max, so it stays finite when the target's
 * probability underflows). */
double hr_xent_bwd(float *row, int vocab, int target, float scale);
double hr_xent_bwd_ref(float *row, int vocab, int target, float scale);

#endif
