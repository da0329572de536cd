/* headroom — inference context: run state, KV cache, forward pass, hooks.
 *
 * A context holds the activations (llama2.c's RunState) and the KV cache of
 * one sequence. hr_forward() appends n tokens at the current position: n > 1
 * is a batched prefill (matrix-matrix products), n == 1 a decode step; both
 * give the same logits to within float rounding.
 *
 * Hooks: one callback plus user_data receives the points selected by a
 * mask of hr_hook_point bits. With no hook installed no recording work is
 * done. Event data point into the context's buffers and are valid only
 * during the callback; callbacks may modify them (interventions).
 *
 * Attention knockout: a per-head (query position x key position) mask of
 * blocked attention (hr_context_set_attn_mask), for circuit studies.
 *
 * Head gates: a float per (layer, query head) multiplying that head's
 * attention output before the output projection; 1 = unchanged, 0 = head
 * removed. They are data read on every forward, not special cases.
 */
#ifndef HEADROOM_CONTEXT_H
#define HEADROOM_CONTEXT_H

#include "headroom/common.h"
#include "headroom/kvcache.h"
#include "headroom/model.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hr_context hr_context;

typedef struct {
    int n_ctx;                 /* KV cache length; 0 = the model's seq_len */
    int n_threads;             /* 0 = all cores */
    int n_batch;               /* max tokens per internal batch; 0 = min(n_ctx, 512) */
    const hr_kv_plan *kv_plan; /* per-head KV policies; NULL = all full (copied at creation) */
    bool blas_prefill;         /* batched products through OpenBLAS sgemm: faster prefill, but batched and
                          one-token logits then differ by float rounding (default false: the
                          exact GEMM makes them bit-identical). Only matrices held as f32 rows
                          (an f32 file's); matrices kept typed or held only as panels (a pruned,
                          GQA or trained model) keep the exact products. Such a context sets OpenBLAS to
                          one thread for the whole process (openblas_set_num_threads; its
                          products run inside the pool's tasks); other contexts leave OpenBLAS
                          alone. HR_ERR_UNSUPPORTED when the library was built without OpenBLAS. */
    bool bf16_dot;             /* products of bf16 weight matrices in the bf16 dot (AVX512-BF16's arithmetic:
                          activations rounded to bf16 once per row, each output one chain of
                          exact bf16 products accumulated in f32, denormals flushed; VDPBF16PS
                          where the CPU has it, the same bits emulated elsewhere). Faster on
                          such CPUs, not the f32 result of the weights (README, "bf16 dot").
                          Prefill = decode, thread independence and pruned = gated still hold.
                          Default false: the exact f32-activation products. Other dtypes are
                          unaffected. */
    bool int8_dot;             /* products of Q8_0 and per-channel int8 weight matrices in the int8
                          dot (llama.cpp's Q8_0 arithmetic: activations quantized to int8 per token and 32-block as
                          llama.cpp's quantize_row_q8_0 does, with the scale kept in f32; exact
                          int32 block sums; one f32 chain over the blocks; VPDPBUSD where the
                          CPU has AVX512-VNNI / AVX-VNNI, the same bits emulated elsewhere).
                          Faster, not the f32 result of the weights (README, "int8 dot").
                          Prefill = decode, thread independence and pruned = gated (whole
                          32-blocks removed) still hold. Default false: the exact products.
                          Other dtypes are unaffected. */
} hr_context_params;

HR_API hr_context_params hr_context_default_params(void);

/* The compute kernels' CPU path, chosen once per process: "avx512",
 * "avx2" (with FMA) or "scalar" (plain C). The widest the CPU supports,
 * unless the environment variable HEADROOM_CPU names another. All paths
 * give the same bits (README, "CPU paths"). Never NULL. */
HR_API const char *hr_cpu_path(void);
/* HR_ERR_UNSUPPORTED (message in hr_last_error()) when HEADROOM_CPU names an
 * unknown path or one this CPU lacks; the kernels then run the widest path.
 * hr_context_new fails the same way. */
HR_API hr_status hr_cpu_check(void);

/* m must outlive the context. *out owned by caller: hr_context_free().
 * n_ctx beyond the model's seq_len is HR_ERR_RANGE. */
HR_API hr_status hr_context_new(const hr_model *m, const hr_context_params *p, hr_context **out);
HR_API void hr_context_free(hr_context *ctx); /* NULL ok */

/* Last error message of this context ("" if none). Borrowed. */
HR_API const char *hr_context_last_error(const hr_context *ctx);

HR_API int hr_context_n_ctx(const hr_context *ctx);
/* Tokens currently in the KV cache. */
HR_API int hr_context_n_past(const hr_context *ctx);
/* Forgets cached positions >= n_past (0 = clear). */
HR_API hr_status hr_context_truncate(hr_context *ctx, int n_past);
/* Bytes of every KV-related allocation of the context: the per-(layer,
 * KV head) stores (keys and values, head_dim x slots floats each, rows
 * padded by 16 floats from 256 slots on; stores that evict add a position
 * and an order entry per slot, heavy-hitter stores an accumulated-attention
 * float per slot) and, when some store evicts, the gather buffer (per KV
 * head of the widest layer: gathered keys and values, scores and positions
 * for the most entries one query can see + 16 — sink + window for
 * streaming, budget + window + n_batch for heavy — and, with heavy-hitter
 * stores, n_batch floats of attention received by the batch). Activations
 * and attention-probability buffers are not counted. */
HR_API size_t hr_context_kv_bytes(const hr_context *ctx);

/* Runs n tokens at positions n_past .. n_past+n-1 and appends them to the
 * cache. logits (caller-owned) receives (n, vocab) floats when all_logits,
 * else (vocab) floats for the last token; may be NULL. Positions past n_ctx
 * are HR_ERR_RANGE; token ids outside the vocabulary HR_ERR_INVALID_ARG. */
HR_API hr_status hr_forward(hr_context *ctx, const int32_t *tokens, int n, float *logits, bool all_logits);

typedef enum {
    HR_HOOK_ATTN_PROBS = 1u << 0, /* per head: probs (n_tokens, n_kv); row i covers keys 0..n_kv-1,
                                     entries after position pos0+i are 0 */
    HR_HOOK_HEAD_OUT = 1u << 1,   /* per head: attention output before Wo and gate (n_tokens, head_dim),
                                     rows strided by `stride` floats */
    HR_HOOK_RESID_PRE = 1u << 2,  /* per layer: residual entering the block (n_tokens, dim) */
    HR_HOOK_ATTN_OUT = 1u << 3,   /* per layer: attention sublayer output (n_tokens, dim) */
    HR_HOOK_MLP_OUT = 1u << 4,    /* per layer: MLP sublayer output (n_tokens, dim) */
    HR_HOOK_RESID_POST = 1u << 5, /* per layer: residual leaving the block (n_tokens, dim) */
    HR_HOOK_FINAL = 1u << 6,      /* final normed hidden state (n_tokens, dim), layer = n_layers */
    HR_HOOK_Q = 1u << 7,          /* per query head: query after its bias, before RoPE (n_tokens, head_dim),
                                     rows strided by `stride` floats */
    HR_HOOK_K = 1u << 8,          /* per KV head (`head` = KV head index): key after its bias, before RoPE */
    HR_HOOK_V = 1u << 9           /* per KV head: value (n_tokens, head_dim) */
} hr_hook_point;

typedef struct {
    hr_hook_point point;
    int layer;
    int head;     /* query head for per-head points, else -1 */
    int n_tokens; /* rows */
    int pos0;     /* position of row 0 */
    int n_cols;   /* columns per row (n_kv for probs, head_dim, dim) */
    int stride;   /* floats between rows */
    float *data;
} hr_hook_event;

/* Return non-zero to abort the forward (it then returns HR_ERR_ABORTED). */
typedef int (*hr_hook_fn)(const hr_hook_event *ev, void *user_data);

/* Installs (fn != NULL) or removes the hook. mask: OR of hr_hook_point. */
HR_API void hr_context_set_hook(hr_context *ctx, hr_hook_fn fn, uint32_t mask, void *user_data);

/* Re-runs the last n cached tokens from `layer` (sublayer 0 = whole block
 * from its attention, 1 = from its MLP) with the residual stream x (n, dim)
 * entering that point, e.g. recorded by a HR_HOOK_RESID_PRE hook
 * (sublayer 0) or RESID_PRE + ATTN_OUT (sublayer 1). Layers before it are
 * not recomputed — their cached keys/values are reused — which is what makes
 * per-head ablation sweeps cheap. KV entries of later layers are
 * overwritten. logits as in hr_forward. n <= n_past. */
HR_API hr_status hr_forward_from(hr_context *ctx, int layer, int sublayer, const float *x, int n, float *logits,
                                 bool all_logits);

/* hr_forward_from with the rows' positions given: row i is cached in its
 * own slot (n_past - n + i) but rotated by RoPE as position positions[i]
 * (0 <= positions[i] < n_ctx). With attention masks isolating them, several
 * variants of one sequence's suffix run side by side in one batch (the
 * circuit studies' patch sweeps); positions NULL is hr_forward_from. RoPE
 * models only (HR_ERR_UNSUPPORTED for learned positions, which live in the
 * residual x). */
HR_API hr_status hr_forward_from_at(hr_context *ctx, int layer, int sublayer, const float *x, int n,
                                    const int32_t *positions, float *logits, bool all_logits);

/* The model the context runs (borrowed). */
HR_API const hr_model *hr_context_model(const hr_context *ctx);

/* Copies gates (n_layers × max_heads floats, row-major, max_heads =
 * hr_config_max_heads) into the context; NULL restores all 1. */
HR_API hr_status hr_context_set_head_gates(hr_context *ctx, const float *gates);

/* Attention knockout: blocked is (n_ctx, n_ctx) bytes, row = query
 * position, column = key position; a non-zero byte forbids that query of
 * query head `head` in `layer` to attend to that key. Its score is set to
 * -inf before the softmax, so the head's other keys share the weight; a
 * query whose every key is blocked gets all-zero weights and output 0. The
 * mask is copied; blocked == NULL removes the head's mask, and
 * hr_context_clear_attn_masks() removes all. layer = head = -1 sets the
 * mask of every head that has none of its own. Needs a context whose KV cache
 * keeps every position (HR_ERR_UNSUPPORTED with an evicting plan). Heads
 * without a mask run exactly as before, bit for bit. */
HR_API hr_status hr_context_set_attn_mask(hr_context *ctx, int layer, int head, const uint8_t *blocked);
HR_API void hr_context_clear_attn_masks(hr_context *ctx);

/* Mean-ablation: copies means (n_layers × max_heads × head_dim floats), the
 * output each head is moved towards as its gate goes to 0:
 * out = gate * out + (1 - gate) * mean. NULL = zero-ablation (default). */
HR_API hr_status hr_context_set_head_means(hr_context *ctx, const float *means);

#ifdef __cplusplus
}
#endif
#endif
