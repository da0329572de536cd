/* headroom — training: the loop that fine-tunes a model (full weights, a
 * chosen part of them, or LoRA adapters) or trains one from random
 * initialisation, on the exact gradients of headroom/grad.h.
 *
 * Data. The text's token ids (BOS first, hr_calib_tokens) are split once:
 * the last `heldout` share (at least one window) is the held-out part, the
 * rest the training part. A step draws batch * accum windows of `window`
 * tokens, each starting at a uniform position of the training part (one
 * hr_rng stream of `seed`: the starts of step s are the draws after those
 * of the steps before it), and averages their losses' gradients
 * (hr_grad_accumulate, scale 1 / (batch * accum)). The held-out loss is the
 * mean loss of consecutive windows of the held-out part (at most
 * eval_windows of them), evaluated every eval_every steps and at the end.
 *
 * Optimiser (exactly PyTorch's torch.optim.AdamW; tested against it in
 * float64, tests/reference/check_train_reference.py): with g the averaged
 * gradient, first clipped by global norm (torch.nn.utils.clip_grad_norm_:
 * g *= clip / (|g| + 1e-6) when |g| > clip, |g| over every trainable
 * element), at step t = 1, 2, ...:
 *   θ -= lr_t · wd · θ                              (decoupled decay; 2-D tensors only)
 *   m = β1 m + (1-β1) g,  v = β2 v + (1-β2) g²
 *   θ -= lr_t / (1-β1^t) · m / (sqrt(v) / sqrt(1-β2^t) + eps)
 * Learning rate of step s = 0, 1, ...: lr · (s+1) / warmup while s < warmup,
 * then cosine from lr down to lr · min_lr_ratio over the remaining steps:
 *   lr_min + (lr - lr_min) · (1 + cos(π (s - warmup) / (steps - warmup))) / 2.
 *
 * What trains: LoRA adapters (lora_rank > 0; A and B of every target), or
 * every base weight (full), or with `only` part of them: "heads:L.H,..."
 * trains the Q rows, K and V rows of the head's KV group, Q/K/V bias
 * entries and Wo columns of those heads, "mlp:L,..." every MLP weight and
 * bias of those layers (both may be given, separated by ';'). Elements
 * outside the part get no update at all (bit-identical).
 *
 * Per-layer ranks (lora_layer_ranks, e.g. CFSP's recovery budget,
 * hr_prune_recovery_ranks): adapters are allocated at lora_rank and layer
 * l trains only the first r_l rows of A and columns of B; the rest of A is
 * zeroed and, like B's, never changes, so layer l's update is exactly a
 * rank-r_l product. The scale stays alpha / lora_rank in every layer.
 *
 * Checkpoints (hr_train_save / hr_train_params.resume): a binary file
 * written atomically:
 *   "HRTRAIN1" | u32 version 1 | u32 header bytes | header | state | u64 FNV-1a of all before
 *   header: arch, dim, n_layers, head_dim, vocab, seq_len, per-layer
 *           n_head, n_head_kv, n_ff (i32), lora rank, lora targets, mode,
 *           the hash of the `only` text and of the per-layer ranks,
 *           number of trainable tensors
 *   state:  step, rng state, data token count, then per trainable tensor
 *           its name[64], rows, cols and f32 values, Adam m, Adam v
 * A checkpoint of another model shape, another mode / rank / part, or a
 * corrupt one (bad magic, size or checksum) is refused with a message.
 * Resuming restores values, moments, step and the data stream, so the loss
 * curve continues bit for bit as if never interrupted (tested).
 *
 * Progress: one phase "training" of `steps` items (common.h): the unit text
 * carries the last loss, held-out loss and tokens/s, e.g.
 * "steps (loss 2.314, held-out 2.402, 5210 tokens/s)". A callback that
 * returns non-zero, or *stop becoming non-zero, ends the run after the
 * current step: the checkpoint (when named) is written and the run returns
 * HR_ERR_ABORTED. A non-finite loss or gradient stops the run with
 * HR_ERR_RANGE before that step changes anything; the checkpoint on disk
 * stays the last good one.
 */
#ifndef HEADROOM_TRAIN_H
#define HEADROOM_TRAIN_H

#include "headroom/common.h"
#include "headroom/grad.h"
#include "headroom/model.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    /* what trains */
    bool full;             /* every base weight (or the `only` part); else LoRA (lora_rank > 0) */
    int lora_rank;         /* LoRA rank (<= both sides of every target matrix) */
    float lora_alpha;      /* adapter scale alpha / r; 0 = r */
    uint32_t lora_targets; /* OR of hr_lora_target; 0 = all */
    const char *only;      /* "heads:L.H,...;mlp:L,..." part of the weights (needs full); NULL = all */
    /* optimiser */
    int steps;               /* optimiser steps (>= 1) */
    float lr;                /* peak learning rate (> 0; default 1e-3) */
    float min_lr_ratio;      /* final lr / peak lr of the cosine (default 0.1) */
    int warmup;              /* linear warm-up steps (default 0) */
    float beta1, beta2, eps; /* default 0.9, 0.999, 1e-8 */
    float weight_decay;      /* decoupled, on 2-D tensors (default 0) */
    float clip;              /* global gradient-norm clip; 0 = none (default 1) */
    /* data */
    int window;       /* tokens per window (2..seq_len; 0 = min(seq_len, HR_CALIB_WINDOW)) */
    int batch, accum; /* windows per micro-batch, micro-batches per step (default 1, 1) */
    float heldout;    /* held-out share of the text (0 < h < 1; default 0.1) */
    int eval_every;   /* held-out evaluation every N steps; 0 = only at the end */
    int eval_windows; /* held-out windows evaluated (default 16) */
    uint64_t seed;    /* data stream and LoRA initialisation */
    int n_threads;    /* 0 = all cores */
    bool recompute;   /* keep only each layer's input and recompute its activations in the backward
                         (hr_grad_params.recompute): the same updates bit for bit, activation memory cut to
                         about one layer's, ~1 more forward per window of time (default false) */
    /* checkpoints and control */
    const char *checkpoint; /* written on stop and every checkpoint_every steps; NULL = none */
    int checkpoint_every;   /* 0 = only on stop and at the end */
    const char *resume;     /* checkpoint to continue from; NULL = start fresh */
    volatile int *stop;     /* non-zero asks the run to stop after the current step (e.g. from SIGINT); may be NULL */
    hr_progress_phase_fn progress_phase; /* NULL = the thread's callback */
    void *progress_user_data;
    const int *lora_layer_ranks; /* (n_layers) LoRA rank of each layer, 0..lora_rank (0 = no adapter trains
                                    there); NULL = lora_rank everywhere. Borrowed; see "Per-layer ranks" */
} hr_train_params;

HR_API hr_train_params hr_train_default_params(void);

typedef struct hr_train hr_train;

/* A training run of model m on tokens (BOS first; the text's ids). Every
 * parameter is checked before any work: lr <= 0 or not finite, a LoRA rank
 * larger than a target matrix, `only` naming heads or layers the model
 * lacks, a text shorter than one training window plus one held-out window,
 * an unreadable or mismatched resume checkpoint. m and tokens must outlive
 * the run. *out owned by caller: hr_train_free(). */
HR_API hr_status hr_train_new(const hr_model *m, const int32_t *tokens, size_t n_tokens, const hr_train_params *p,
                              hr_train **out);
HR_API void hr_train_free(hr_train *t); /* NULL ok */

/* One optimiser step (draws its windows, forward + backward, clip, AdamW). */
HR_API hr_status hr_train_step(hr_train *t);
/* Steps until `steps` are done (or stop / abort / error, see above),
 * evaluating and checkpointing as the params say. */
HR_API hr_status hr_train_run(hr_train *t);
/* Mean held-out loss of the current weights into *loss. */
HR_API hr_status hr_train_eval(hr_train *t, double *loss);
/* Writes the checkpoint of the current state to path (atomically). */
HR_API hr_status hr_train_save(const hr_train *t, const char *path);

typedef struct {
    int step;                             /* optimiser steps done */
    double loss;                          /* mean training loss of the last step (NaN before the first) */
    double heldout_loss;                  /* last held-out evaluation (NaN before the first) */
    double lr;                            /* learning rate of the last step */
    double grad_norm;                     /* global gradient norm of the last step, before clipping */
    double tokens_per_s;                  /* training tokens per second of the last step */
    int64_t train_tokens, heldout_tokens; /* the split of the text */
} hr_train_info;

HR_API void hr_train_get_info(const hr_train *t, hr_train_info *out);
/* LoRA targets from names "q,k,v,o,gate,up,down" (or "all") into an OR of
 * hr_lora_target; an unknown name is HR_ERR_INVALID_ARG naming it. */
HR_API hr_status hr_lora_targets_parse(const char *list, uint32_t *out);
/* Learning rate of step s (0-based) under p's schedule. */
HR_API double hr_train_lr_at(const hr_train_params *p, int s);
/* Start positions (in the token ids) of the windows step `step` (0-based;
 * >= the steps done) will draw, without drawing them: starts receives
 * batch * accum values. For references and tests. */
HR_API hr_status hr_train_peek_starts(const hr_train *t, int step, int64_t *starts);
/* The trained parameters (borrowed; for inspection). */
HR_API const hr_params *hr_train_parameters(const hr_train *t);
/* Mutable parameters, for tests (e.g. planting a non-finite value). */
HR_API hr_params *hr_train_parameters_mut(hr_train *t);

/* The trained model: the base weights with the updates and, for LoRA, the
 * adapters merged (W + (alpha/r) B A), as a new model writable with
 * hr_model_save_gguf / _hf; it keeps the base model's source dtype, so
 * writers asked for HR_DTYPE_KEEP write the base's dtype. *out owned by
 * caller: hr_model_free(). */
HR_API hr_status hr_train_model(const hr_train *t, hr_model **out);

/* A model with random weights for training from scratch: llama-style
 * (RMSNorm, SwiGLU, RoPE theta 10000, tied classifier), every matrix
 * N(0, 0.02²) (the residual outputs Wo and W_down scaled by 1/sqrt(2 layers)),
 * norms 1. Deterministic from seed. *out owned by caller: hr_model_free(). */
typedef struct {
    int dim, n_layers, n_heads, n_kv_heads, hidden, vocab, seq_len;
    uint64_t seed;
} hr_random_model_params;
HR_API hr_status hr_model_random(const hr_random_model_params *p, hr_model **out);

#ifdef __cplusplus
}
#endif
#endif
