/* headroom — multi-head to grouped-query attention conversion.
 *
 * A layer with K KV heads becomes a layer with N KV heads (K % N == 0):
 * the KV heads are partitioned into N groups of K / N, and each group's K
 * and V projections (and biases) are replaced by their mean (Ainslie et al.
 * 2023, GQA: "mean-pooling" of the heads of a group). Query heads are
 * reordered so that the query heads of group j are contiguous — llama.cpp
 * and transformers map query head i to KV head i / (n_head / n_head_kv) —
 * with Wq rows, bq and Wo columns permuted alike, so only the merge itself
 * changes the function. Layers already at N KV heads (or without
 * attention) are copied unchanged.
 *
 * Groupings:
 *  - HR_GQA_NEIGHBOUR: consecutive KV heads (0..K/N-1, ...), the GQA paper's;
 *  - HR_GQA_ASYM: activation-informed grouping after AsymGQA (Chen et al.
 *    2024, "Optimised Grouped-Query Attention Mechanism for Transformers"):
 *    KV heads whose key and value activations on calibration text are most
 *    similar share a group. The similarity of heads a, b is the mean over
 *    tokens of cos(k_a, k_b) + cos(v_a, v_b) (RoPE rotates both keys of a
 *    token alike, so pre-RoPE keys give the same cosine). Groups are grown
 *    greedily: the lowest-numbered free head seeds a group, which then
 *    takes, one at a time, the free head with the highest mean similarity
 *    to its members. AsymGQA also allows groups of different sizes; here
 *    every group has K / N heads because the llama.cpp / transformers
 *    layout requires it.
 */
#ifndef HEADROOM_GQA_H
#define HEADROOM_GQA_H

#include "headroom/common.h"
#include "headroom/context.h"
#include "headroom/model.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { HR_GQA_NEIGHBOUR = 0, HR_GQA_ASYM = 1 } hr_gqa_grouping;

/* "neighbour" (also "neighbor") | "asym". */
HR_API hr_status hr_gqa_grouping_from_name(const char *name, hr_gqa_grouping *out);
HR_API const char *hr_gqa_grouping_name(hr_gqa_grouping g);

/* Pairwise KV-head similarity of every layer on calibration tokens (fed in
 * windows of `window` tokens; 0 = hr_calib_window(n_ctx, 0), more than
 * n_ctx is HR_ERR_RANGE). sim receives
 * (n_layers × K × K) floats, K = hr_config_max_kv_heads, row-major per
 * layer; entries beyond a layer's KV heads are 0. */
HR_API hr_status hr_gqa_kv_similarity(hr_context *ctx, const int32_t *tokens, size_t n_tokens, int window, float *sim);

/* Group assignment: groups (n_layers × K) receives, for every base KV head,
 * the index of its new KV head (0..n_kv-1). sim is needed for ASYM only.
 * A layer whose KV heads are not a multiple of n_kv is HR_ERR_INVALID_ARG. */
HR_API hr_status hr_gqa_groups(const hr_model *m, int n_kv, hr_gqa_grouping g, const float *sim, int *groups);

/* Builds the converted model. *out owned by caller. */
HR_API hr_status hr_gqa_convert(const hr_model *m, int n_kv, const int *groups, hr_model **out);

#ifdef __cplusplus
}
#endif
#endif
