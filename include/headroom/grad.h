/* headroom — gradients: an exact backward pass of the next-token loss.
 *
 * Two objects:
 *
 *  - hr_params: the trainable state of a model — every weight tensor
 *    (borrowed read-only from the loaded model, or an owned, mutable f32
 *    copy for training), a gate per (layer, query head) and per MLP neuron
 *    (owned, initially 1), and optional LoRA adapters (owned). Each is a
 *    tensor with an index, a name, a kind and a shape.
 *  - hr_grad: runs a training forward over one window of tokens, keeps its
 *    activations, and back-propagates the mean next-token cross-entropy
 *    into gradient buffers of the selected tensors, adding scale * dL/dθ
 *    at each call (accumulation over windows; hr_grad_zero clears).
 *
 * Loss of a window tokens[0..n): L = mean over t < n-1 of
 * -log softmax(logits_t)[tokens[t+1]].
 *
 * What is differentiable: every weight tensor of every architecture
 * headroom runs (Llama/Mistral with GQA and Llama-3 RoPE scaling, Qwen2
 * with Q/K/V biases, GPT-2 with LayerNorm, learned positions and tanh-GELU;
 * tied classifiers accumulate into the embedding), the head gates (the
 * forward multiplies head h's attention output by its gate before Wo, as
 * hr_context_set_head_gates does), the neuron gates (multiplying the MLP
 * hidden activation before W_down), LoRA adapters on any of q, k, v, o,
 * gate, up, down (y = W x + (alpha/r) B (A x), A (r, d_in), B (d_out, r)),
 * and the input embeddings of the last window (hr_grad_input).
 *
 * Exactness: the training forward uses the inference kernels in the same
 * order, so its logits are bit-identical to hr_forward()'s on the same
 * model (tested); the loss comes from float softmax probabilities and
 * agrees with the NLL of hr_forward's logits computed in double to ~1e-7
 * relative (tested <= 1e-5). Gradients agree with float64 PyTorch autograd
 * to < 1e-4 relative per tensor (tests/test_grad_reference.sh).
 *
 * Determinism: every gradient element is one chain of operations in a fixed
 * order, whatever the thread count or how work is split, so equal inputs
 * give bit-identical gradients with 1, 2 or more threads (tested).
 *
 * Memory: activations of the window are kept per layer (about
 * n·(4·dim + 2·q_dim + 2·kv_dim + 3·n_ff) floats per layer); the attention
 * probabilities (n_head·n·n floats) are held for one layer at a time and
 * recomputed from the kept queries, keys and values during the backward
 * (bit-identical; the attention forward is about 2 % of a SmolLM-135M-shape
 * pass in perf, so that much more work). With
 * hr_grad_params.recompute only each layer's input (n·dim) is kept and
 * a layer's activations are recomputed during the backward pass — the same
 * code, so gradients are bit-identical, for about one more forward of cost.
 * Gradient buffers exist only for selected tensors. Buffers grow to the
 * longest window seen; they are filled in before the first window (large
 * ones with transparent huge pages where the system allows them: far fewer
 * page faults for a fresh object's first window).
 * hr_grad_bytes() reports the total.
 */
#ifndef HEADROOM_GRAD_H
#define HEADROOM_GRAD_H

#include "headroom/common.h"
#include "headroom/model.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- trainable parameters ---- */

typedef enum {
    HR_PARAM_TOK_EMBD = 0, /* (vocab, dim); also the classifier when tied */
    HR_PARAM_POS_EMBD,     /* (seq_len, dim) GPT-2 */
    HR_PARAM_ATTN_NORM,    /* (1, dim) */
    HR_PARAM_ATTN_NORM_B,  /* (1, dim) LayerNorm */
    HR_PARAM_WQ,           /* (n_head * head_dim, dim); rows in the interleaved RoPE layout */
    HR_PARAM_BQ,           /* (1, n_head * head_dim) */
    HR_PARAM_WK,           /* (n_head_kv * head_dim, dim) */
    HR_PARAM_BK,
    HR_PARAM_WV, /* (n_head_kv * head_dim, dim) */
    HR_PARAM_BV,
    HR_PARAM_WO, /* (dim, n_head * head_dim) */
    HR_PARAM_BO, /* (1, dim) */
    HR_PARAM_FFN_NORM,
    HR_PARAM_FFN_NORM_B,
    HR_PARAM_W_GATE,      /* (n_ff, dim) SwiGLU */
    HR_PARAM_W_UP,        /* (n_ff, dim) */
    HR_PARAM_B_UP,        /* (1, n_ff) */
    HR_PARAM_W_DOWN,      /* (dim, n_ff) */
    HR_PARAM_B_DOWN,      /* (1, dim) */
    HR_PARAM_OUT_NORM,    /* (1, dim) */
    HR_PARAM_OUT_NORM_B,  /* (1, dim) */
    HR_PARAM_OUTPUT,      /* (vocab, dim) untied classifier only */
    HR_PARAM_HEAD_GATE,   /* (1, n_head) per layer, initially 1 */
    HR_PARAM_NEURON_GATE, /* (1, n_ff) per layer, initially 1 */
    HR_PARAM_LORA_A,      /* (r, d_in) per layer and target */
    HR_PARAM_LORA_B,      /* (d_out, r) per layer and target, initially 0 */
    HR_PARAM_KIND_COUNT
} hr_param_kind;

/* Selection masks for hr_grad_params.kinds. */
#define HR_GRAD_KIND(k) (1ull << (k))
#define HR_GRAD_WEIGHTS ((1ull << HR_PARAM_HEAD_GATE) - 1) /* every base weight tensor */
#define HR_GRAD_GATES (HR_GRAD_KIND(HR_PARAM_HEAD_GATE) | HR_GRAD_KIND(HR_PARAM_NEURON_GATE))
#define HR_GRAD_LORA (HR_GRAD_KIND(HR_PARAM_LORA_A) | HR_GRAD_KIND(HR_PARAM_LORA_B))

/* Matrices a LoRA adapter can sit on (OR them in hr_params_params.lora_targets). */
typedef enum {
    HR_LORA_Q = 1 << 0,
    HR_LORA_K = 1 << 1,
    HR_LORA_V = 1 << 2,
    HR_LORA_O = 1 << 3,
    HR_LORA_GATE = 1 << 4, /* SwiGLU models only */
    HR_LORA_UP = 1 << 5,
    HR_LORA_DOWN = 1 << 6,
    HR_LORA_ALL = 0x7f
} hr_lora_target;

typedef struct {
    bool copy_weights;     /* own a mutable f32 copy of every weight (training); false (default) borrows the
                               model's weights read-only: no copy, e.g. for gradient importance */
    int lora_rank;         /* r of every adapter; 0 (default) = no adapters */
    float lora_alpha;      /* adapter scale = alpha / r; 0 = r (scale 1) */
    uint32_t lora_targets; /* OR of hr_lora_target; 0 with lora_rank > 0 = HR_LORA_ALL */
    uint64_t seed;         /* LoRA A ~ N(0, 1/d_in) from this seed; B = 0 (the adapted model starts equal) */
} hr_params_params;

HR_API hr_params_params hr_params_default_params(void);

typedef struct hr_params hr_params;

/* m must outlive the parameters. *out owned by caller: hr_params_free().
 * Not thread-safe: one hr_params per thread that changes it. */
HR_API hr_status hr_params_new(const hr_model *m, const hr_params_params *p, hr_params **out);
HR_API void hr_params_free(hr_params *p); /* NULL ok */

HR_API const hr_model *hr_params_model(const hr_params *p); /* borrowed */

typedef struct {
    char name[64]; /* GGUF-style: "blk.0.attn_q.weight", "blk.0.head_gate", "blk.0.attn_q.lora_a" */
    hr_param_kind kind;
    int layer;             /* -1 for global tensors */
    hr_lora_target target; /* LoRA tensors; 0 otherwise */
    int64_t rows, cols;    /* row-major (rows, cols); vectors have rows = 1 */
    bool writable;         /* hr_params_data_mut gives a pointer */
} hr_param_info;

/* Tensors in a fixed order: the model's weights in hr_model_tensor_info
 * order, then per layer head gates, neuron gates, then LoRA A/B per layer
 * and target (q, k, v, o, gate, up, down). */
HR_API int hr_params_n_tensors(const hr_params *p);
HR_API hr_status hr_params_info(const hr_params *p, int i, hr_param_info *out);
/* Index of a tensor, or -1 (target 0 for non-LoRA kinds, layer -1 for
 * global tensors). */
HR_API int hr_params_find(const hr_params *p, hr_param_kind kind, int layer, hr_lora_target target);
/* The tensor's values (rows * cols floats), borrowed; NULL when i is out of
 * range. A borrowed weight the model keeps in its file's dtype (bf16, f16,
 * 8-bit: no f32 rows; the gradient engine reads those one layer at a
 * time) gets them here: the first such call converts the model's matrices
 * to f32 rows once (their f32 memory on top; NULL with the error set when
 * that cannot fit). */
HR_API const float *hr_params_data(const hr_params *p, int i);
/* Writable values of an owned tensor (gates, LoRA, and weights with
 * copy_weights); NULL for a borrowed weight or a bad index. Taking the
 * pointer marks the weights as changed: the next forward repacks them. */
HR_API float *hr_params_data_mut(hr_params *p, int i);
/* Marks the owned weights as changed (after writing through a pointer
 * taken earlier), so the next forward repacks them. */
HR_API void hr_params_touch(hr_params *p);

/* ---- gradients ---- */

typedef struct {
    int n_threads;      /* 0 = all cores */
    int max_tokens;     /* longest window accepted; 0 = the model's seq_len */
    uint64_t kinds;     /* OR of HR_GRAD_KIND(kind): which tensors get gradients (default HR_GRAD_WEIGHTS) */
    const bool *select; /* (hr_params_n_tensors) per-tensor choice overriding kinds; NULL = use kinds */
    bool input_grad;    /* keep dL/d(input embeddings) of the last window (hr_grad_input) */
    bool recompute;     /* keep only each layer's input, recompute the rest in backward (same gradients, bit
                               for bit; less memory, ~1 more forward of time) */
} hr_grad_params;

HR_API hr_grad_params hr_grad_default_params(void);

typedef struct hr_grad hr_grad;

/* Gradient buffers for the selected tensors of p, zeroed. p must outlive
 * the object (and not be freed or resized while it lives). *out owned by
 * caller: hr_grad_free(). */
HR_API hr_status hr_grad_new(hr_params *p, const hr_grad_params *gp, hr_grad **out);
HR_API void hr_grad_free(hr_grad *g); /* NULL ok */
/* Last error message of this object ("" if none). Borrowed. */
HR_API const char *hr_grad_last_error(const hr_grad *g);

/* Sets every gradient buffer to 0. */
HR_API void hr_grad_zero(hr_grad *g);

/* Training forward only: the window's loss (mean NLL over its n-1
 * predictions) into *loss; logits (may be NULL) receives the (n-1, vocab)
 * logits of positions 0..n-2. 2 <= n <= max_tokens; token ids inside the
 * vocabulary. */
HR_API hr_status hr_grad_loss(hr_grad *g, const int32_t *tokens, int n, double *loss, float *logits);

/* Forward + backward over one window: adds scale * dL/dθ to the gradient
 * of every selected tensor (scale = 1/K averages K windows); *loss (may be
 * NULL) receives the window's loss. Same argument rules as hr_grad_loss.
 * With borrowed weights a model keeps typed (bf16, f16, 8-bit), the
 * backward converts one layer's matrices to f32 at a time and the
 * classifier once (kept with g): when that memory cannot be had, the call
 * fails with some gradients already added — hr_grad_zero before reuse. */
HR_API hr_status hr_grad_accumulate(hr_grad *g, const int32_t *tokens, int n, float scale, double *loss);

/* Accumulated gradient of tensor i (same shape as the tensor), borrowed;
 * NULL when the tensor is not selected. */
HR_API const float *hr_grad_tensor(const hr_grad *g, int i);
/* scale * dL/d(input embeddings) of the last hr_grad_accumulate window,
 * (n, dim) with n written to *n (may be NULL); NULL unless input_grad. */
HR_API const float *hr_grad_input(const hr_grad *g, int *n);
/* Bytes allocated (activations, gradients, scratch, and the f32 rows of a
 * model's typed matrices the backward converted: one layer's and the
 * classifier). */
HR_API size_t hr_grad_bytes(const hr_grad *g);

/* ---- first-order (Taylor) importance from accumulated gradients ----
 *
 * LLM-Pruner's vector-wise score of a group of weights: |sum over the group
 * of w * dL/dw|, the first-order estimate of the loss change when the whole
 * group is set to zero. Needs the group's gradients selected. */

/* Head h of layer l: its Wq rows (+ bq), its Wo columns, and — only when it
 * is the sole query head of its KV group (multi-head attention), since only
 * then removing it removes its KV head — that KV head's Wk, Wv rows (+ bk,
 * bv). out receives n_head[l] values. Needs WQ and WO selected (and WK, WV,
 * biases where present). Note that the Wo term alone equals the head
 * gate's gradient. */
HR_API hr_status hr_grad_taylor_heads(const hr_grad *g, int layer, double *out);
/* MLP neuron j of layer l: its W_gate and W_up rows (+ b_up) and its W_down
 * column. out receives n_ff[l] values. Needs W_UP, W_DOWN (and W_GATE,
 * B_UP where present) selected. */
HR_API hr_status hr_grad_taylor_neurons(const hr_grad *g, int layer, double *out);

/* Convenience for pruning by neuron importance: Taylor scores of every MLP
 * neuron from the gradient averaged over n_windows windows of `window`
 * tokens each (windows: (n_windows, window) token ids, each window's loss
 * as in hr_grad_loss). scores: (n_layers, hr_config_max_ff) doubles, row l
 * holding n_ff[l] values (the rest 0). Borrows the model's weights. */
HR_API hr_status hr_taylor_neuron_scores(const hr_model *m, const int32_t *windows, int n_windows, int window,
                                         int n_threads, double *scores);

#ifdef __cplusplus
}
#endif
#endif
