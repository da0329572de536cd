/* headroom — structured pruning: physically remove attention heads, MLP
 * neurons, attention / MLP sublayers and whole blocks, giving a smaller
 * model whose forward pass does less work.
 *
 * Surgery (hr_prune_apply) is exact: the pruned model computes what the
 * base model computes with the removed heads gated to zero, the removed
 * neurons masked (their W_down columns zero), removed sublayers skipped.
 *
 * Heads: a query head's rows of Wq (and bq) and its columns of Wo go. In
 * grouped-query attention (llama.cpp / transformers map query head i to KV
 * head i / (n_head / n_head_kv)), a KV head's rows of Wk/Wv (bk/bv) go when
 * all its query heads are gone. Every remaining KV group must keep the same
 * number of query heads: with uneven_duplicate the K/V rows of a group that
 * keeps c heads are duplicated c / g times, g = gcd of the kept counts, so
 * every group has g query heads (the function is unchanged; the KV cache
 * grows). Without it uneven groups are HR_ERR_INVALID_ARG.
 *
 * The planner (hr_prune_plan_heads / _ff) turns scores (higher = more
 * important) and a budget into a spec:
 *  - HR_BUDGET_GLOBAL: the lowest-scored units of the whole model go;
 *  - HR_BUDGET_PER_LAYER: the same fraction of every layer;
 *  - HR_BUDGET_CFSP: coarse to fine (CFSP, Wang et al. 2024): the budget is
 *    first split across layers in proportion to 1 / layer importance (less
 *    important layers lose more), then the lowest-scored units of each layer
 *    go. Quotas never exceed a layer's size minus one.
 * Every layer keeps at least one head / neuron; a layer loses its attention
 * or MLP only through drop_attn / drop_mlp / drop_block.
 */
#ifndef HEADROOM_PRUNE_H
#define HEADROOM_PRUNE_H

#include "headroom/common.h"
#include "headroom/context.h"
#include "headroom/model.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What to remove. Arrays are indexed by the base model's layers. */
typedef struct {
    int n_layers;
    uint8_t *keep_head[HR_MAX_LAYERS]; /* (n_head[l]) 1 = keep query head; owned by the spec */
    uint8_t *keep_ff[HR_MAX_LAYERS];   /* (n_ff[l]) 1 = keep neuron; owned by the spec */
    bool drop_attn[HR_MAX_LAYERS];     /* remove the attention sublayer */
    bool drop_mlp[HR_MAX_LAYERS];      /* remove the MLP sublayer */
    bool drop_block[HR_MAX_LAYERS];    /* remove the whole layer */
    bool uneven_duplicate;             /* make uneven KV groups even by duplicating K/V rows */
} hr_prune_spec;

/* A spec that keeps everything of m. *out owned by caller: hr_prune_spec_free(). */
hr_status hr_prune_spec_new(const hr_model *m, hr_prune_spec **out);
void hr_prune_spec_free(hr_prune_spec *s); /* NULL ok */

/* Per-layer outcome of a spec, as applied. */
typedef struct {
    int n_head, n_head_kv, n_ff; /* after; 0 when the sublayer / block is gone */
    int n_kv_distinct;           /* distinct base KV heads kept (< n_head_kv when duplicated) */
} hr_prune_layer_result;

/* Checks s against m and describes the result per base layer (res may be
 * NULL). Layers left without heads (neurons) that are not dropped, uneven
 * groups without uneven_duplicate and a model with no block left are
 * HR_ERR_INVALID_ARG with the layer named. */
hr_status hr_prune_check(const hr_model *m, const hr_prune_spec *s, hr_prune_layer_result *res);

/* Builds the pruned model (weights copied, f32). *out owned by caller. */
hr_status hr_prune_apply(const hr_model *m, const hr_prune_spec *s, hr_model **out);

typedef enum { HR_BUDGET_GLOBAL = 0, HR_BUDGET_PER_LAYER = 1, HR_BUDGET_CFSP = 2 } hr_prune_budget;

/* "global" | "per-layer" | "cfsp". */
hr_status hr_prune_budget_from_name(const char *name, hr_prune_budget *out);
const char *hr_prune_budget_name(hr_prune_budget b);

/* Marks n_remove query heads of the model for removal in s (on top of what
 * s already removes). scores: (n_layers × max_heads) row-major, higher =
 * more important, NaN = unknown (removed last). layer_imp: (n_layers)
 * higher = more important, required for CFSP (else ignored). Unless
 * s->uneven_duplicate, each layer's choice keeps its KV groups even (the
 * best-scored even shape nearest the layer's quota). Layers whose attention
 * or block is dropped are skipped. n_remove above what can go while every
 * layer keeps a head is HR_ERR_RANGE. *removed (may be NULL) receives the
 * number actually marked. */
hr_status hr_prune_plan_heads(const hr_model *m, const float *scores, const float *layer_imp, int n_remove,
                              hr_prune_budget budget, hr_prune_spec *s, int *removed);

/* The same for MLP neurons. scores: per layer l a pointer to n_ff[l]
 * importances. */
hr_status hr_prune_plan_ff(const hr_model *m, const float *const *scores, const float *layer_imp, int64_t n_remove,
                           hr_prune_budget budget, hr_prune_spec *s, int64_t *removed);

/* Marks the k layers with the lowest layer scores (higher = more
 * important) for dropping: what = 0 attention sublayers, 1 MLP sublayers,
 * 2 whole blocks. Already dropped layers are not counted twice. Dropping
 * every block is HR_ERR_RANGE. */
hr_status hr_prune_plan_layers(const hr_model *m, const float *layer_scores, int k, int what, hr_prune_spec *s);

/* AMP-style neuron importance on calibration tokens: for neuron j of layer
 * l, mean over tokens of |act_j| times ||column j of W_down||, act =
 * silu(gate)*up (SwiGLU) or gelu(up) (GELU). tokens are fed in windows of
 * `window` tokens (each starting with the given tokens, e.g. BOS first).
 * out[l] must hold n_ff[l] floats. */
hr_status hr_prune_neuron_importance(hr_context *ctx, const int32_t *tokens, size_t n_tokens, int window,
                                     float *const *out);

/* Layer importance on calibration tokens (ShortGPT block influence and the
 * sublayer change of "What Matters in Transformers"): mean over tokens of
 * 1 - cos(x_in, x_out) of the block (block[l]), of the attention sublayer
 * (attn[l]) and of the MLP sublayer (mlp[l]). Any output may be NULL. */
hr_status hr_prune_layer_importance(hr_context *ctx, const int32_t *tokens, size_t n_tokens, int window,
                                    float *block, float *attn, float *mlp);

#ifdef __cplusplus
}
#endif
#endif
