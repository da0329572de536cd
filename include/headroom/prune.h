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

/* What to remove, per layer of the base model: which query heads and MLP
 * neurons to keep, which attention / MLP sublayers and blocks to drop. */
typedef struct hr_prune_spec hr_prune_spec;

/* A spec that keeps everything of m. *out owned by caller: hr_prune_spec_free(). */
HR_API hr_status hr_prune_spec_new(const hr_model *m, hr_prune_spec **out);
HR_API void hr_prune_spec_free(hr_prune_spec *s); /* NULL ok */

typedef enum { HR_PRUNE_ATTN = 0, HR_PRUNE_MLP = 1, HR_PRUNE_BLOCK = 2 } hr_prune_part;

/* Keep (true) or remove query head / MLP neuron `unit` of `layer`. An
 * index outside the model is HR_ERR_RANGE. */
HR_API hr_status hr_prune_spec_set_head(hr_prune_spec *s, int layer, int head, bool keep);
HR_API hr_status hr_prune_spec_set_neuron(hr_prune_spec *s, int layer, int neuron, bool keep);
HR_API bool hr_prune_spec_keeps_head(const hr_prune_spec *s, int layer, int head);
HR_API bool hr_prune_spec_keeps_neuron(const hr_prune_spec *s, int layer, int neuron);
/* Drop (or keep) a layer's attention sublayer, MLP sublayer or whole block. */
HR_API hr_status hr_prune_spec_set_dropped(hr_prune_spec *s, int layer, hr_prune_part part, bool drop);
/* Whether the part is gone: a dropped block drops both sublayers. */
HR_API bool hr_prune_spec_dropped(const hr_prune_spec *s, int layer, hr_prune_part part);
/* Make uneven KV groups even by duplicating K/V rows (see above); default off. */
HR_API void hr_prune_spec_set_uneven_duplicate(hr_prune_spec *s, bool on);
HR_API bool hr_prune_spec_uneven_duplicate(const hr_prune_spec *s);

/* Per-layer outcome of a spec, as applied. */
typedef struct {
    int n_head, n_head_kv, n_ff; /* after; 0 when the sublayer / block is gone */
    int n_kv_distinct;           /* distinct base KV heads kept (< n_head_kv when duplicated) */
} hr_prune_layer_result;

/* Checks s against m and describes the result per base layer (res may be
 * NULL). Layers left without heads (neurons) that are not dropped, uneven
 * groups without uneven_duplicate and a model with no block left are
 * HR_ERR_INVALID_ARG with the layer named. */
HR_API hr_status hr_prune_check(const hr_model *m, const hr_prune_spec *s, hr_prune_layer_result *res);

/* Builds the pruned model (weights copied, f32). *out owned by caller. */
HR_API hr_status hr_prune_apply(const hr_model *m, const hr_prune_spec *s, hr_model **out);

typedef enum { HR_BUDGET_GLOBAL = 0, HR_BUDGET_PER_LAYER = 1, HR_BUDGET_CFSP = 2 } hr_prune_budget;

/* "global" | "per-layer" | "cfsp". */
HR_API hr_status hr_prune_budget_from_name(const char *name, hr_prune_budget *out);
HR_API const char *hr_prune_budget_name(hr_prune_budget b);

/* Marks n_remove query heads of the model for removal in s (on top of what
 * s already removes). scores: (n_layers × max_heads) row-major, higher =
 * more important, NaN = unknown (removed last). layer_imp: (n_layers)
 * higher = more important, required for CFSP (else ignored). Unless
 * s->uneven_duplicate, each layer's choice keeps its KV groups even (the
 * best-scored even shape nearest the layer's quota). Layers whose attention
 * or block is dropped are skipped. n_remove above what can go while every
 * layer keeps a head is HR_ERR_RANGE. *removed (may be NULL) receives the
 * number actually marked. */
HR_API hr_status hr_prune_plan_heads(const hr_model *m, const float *scores, const float *layer_imp, int n_remove,
                              hr_prune_budget budget, hr_prune_spec *s, int *removed);

/* The same for MLP neurons. scores: per layer l a pointer to n_ff[l]
 * importances. */
HR_API hr_status hr_prune_plan_ff(const hr_model *m, const float *const *scores, const float *layer_imp, int64_t n_remove,
                           hr_prune_budget budget, hr_prune_spec *s, int64_t *removed);

/* Marks the k layers with the lowest layer scores (higher = more
 * important) for dropping their `part` (attention sublayers, MLP
 * sublayers or whole blocks). Already dropped layers are not counted
 * twice. Dropping every block is HR_ERR_RANGE. */
HR_API hr_status hr_prune_plan_layers(const hr_model *m, const float *layer_scores, int k, hr_prune_part part,
                               hr_prune_spec *s);

/* AMP-style neuron importance on calibration tokens: for neuron j of layer
 * l, mean over tokens of |act_j| times ||column j of W_down||, act =
 * silu(gate)*up (SwiGLU) or gelu(up) (GELU). tokens are fed in windows of
 * `window` tokens (each starting with the given tokens, e.g. BOS first).
 * out[l] must hold n_ff[l] floats. */
HR_API hr_status hr_prune_neuron_importance(hr_context *ctx, const int32_t *tokens, size_t n_tokens, int window,
                                     float *const *out);

/* Layer importance on calibration tokens (ShortGPT block influence and the
 * sublayer change of "What Matters in Transformers"): mean over tokens of
 * 1 - cos(x_in, x_out) of the block (block[l]), of the attention sublayer
 * (attn[l]) and of the MLP sublayer (mlp[l]). Any output may be NULL. */
HR_API hr_status hr_prune_layer_importance(hr_context *ctx, const int32_t *tokens, size_t n_tokens, int window,
                                    float *block, float *attn, float *mlp);

#ifdef __cplusplus
}
#endif
#endif
