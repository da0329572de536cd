/* headroom — head-aware KV-cache plans.
 *
 * A plan gives every (layer, KV head) a policy:
 *  - full:      every past token is kept (the plain cache).
 *  - streaming: the first `sink` tokens plus the last `window` tokens
 *               (StreamingLLM's attention sinks + recent window); memory is a
 *               fixed ring of sink + window slots. A query at position p sees
 *               keys at positions < sink or > p - window.
 *  - heavy:     the `budget` tokens with the largest accumulated attention
 *               (summed over the group's query heads and all later queries)
 *               plus the last `window` tokens (H2O; SpAtten's cascade token
 *               pruning with a top-k budget). Within one prefill batch every
 *               batch token is visible; eviction happens as tokens enter the
 *               cache.
 * Query heads of a GQA group share their KV head's policy. Tokens keep their
 * original RoPE positions. The memory of a plan is what the context
 * allocates: hr_context_kv_bytes() reports all of it (stores and gather
 * buffer, see context.h).
 *
 * Policies are a registry (src/engine/kv/policy.h): each is one file,
 * src/engine/kv/p_<name>.c, plus one line in src/engine/kv/registry.c; its
 * hr_kv_kind is its registry row and its plan-file name and parameters come
 * from its row. hr_kv_kind below names the built-in rows.
 *
 * Plan file (text; '#' starts a comment; later lines override earlier ones;
 * at most one 'default' line — a second one is HR_ERR_FORMAT naming both):
 *     default full                    # or: default streaming sink=4 window=64
 *     layer 3 full                    # every KV head of layer 3
 *     head 2 1 streaming sink=4 window=128
 *     head 0 0 heavy budget=64 window=32
 */
#ifndef HEADROOM_KVCACHE_H
#define HEADROOM_KVCACHE_H

#include "headroom/common.h"
#include "headroom/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    HR_KV_FULL = 0, /* the default of every KV head */
    HR_KV_STREAMING = 1,
    HR_KV_HEAVY = 2,
    HR_KV_POLICY_COUNT /* built-in policies */
} hr_kv_kind;

typedef struct {
    hr_kv_kind kind;
    int sink;   /* streaming: attention-sink tokens kept from the start */
    int window; /* streaming / heavy: recent tokens kept */
    int budget; /* heavy: heavy-hitter tokens kept */
} hr_kv_policy;

/* Plan-file name of a policy ("unknown" for an id no row has). */
HR_API const char *hr_kv_kind_name(hr_kv_kind k);
/* Slots a policy keeps for a context of n_ctx tokens. */
HR_API int hr_kv_policy_capacity(const hr_kv_policy *p, int n_ctx);
/* Checks sizes against n_ctx (a window larger than the context is an error). */
HR_API hr_status hr_kv_policy_validate(const hr_kv_policy *p, int n_ctx);

typedef struct hr_kv_plan hr_kv_plan;

/* A plan of all-full heads for the model's shape. Owned: hr_kv_plan_free(). */
HR_API hr_status hr_kv_plan_new(const hr_config *c, hr_kv_plan **out);
HR_API void hr_kv_plan_free(hr_kv_plan *p); /* NULL ok */
HR_API hr_status hr_kv_plan_set(hr_kv_plan *p, int layer, int kv_head, hr_kv_policy pol);
HR_API hr_kv_policy hr_kv_plan_get(const hr_kv_plan *p, int layer, int kv_head);
/* Does the plan fit this model (same layers and KV heads per layer)? */
HR_API hr_status hr_kv_plan_check(const hr_kv_plan *p, const hr_config *c);
/* Reads a plan file (format above) for the model's shape. */
HR_API hr_status hr_kv_plan_load(const char *path, const hr_config *c, hr_kv_plan **out);
/* Writes the plan in the same format (atomic). */
HR_API hr_status hr_kv_plan_save(const hr_kv_plan *p, const char *path);
/* DuoAttention-style mixed plan: the KV heads whose group's highest score
 * (scores: n_layers × max_heads, query heads; higher = more retrieval-like)
 * ranks in the top `fraction` stay full, the rest get `rest`. */
HR_API hr_status hr_kv_plan_from_scores(const hr_config *c, const float *scores, float fraction, hr_kv_policy rest,
                                        hr_kv_plan **out);
/* The same number of full KV heads as hr_kv_plan_from_scores would keep,
 * chosen at random (seeded): the baseline a head-aware plan must beat. */
HR_API hr_status hr_kv_plan_random(const hr_config *c, float fraction, hr_kv_policy rest, uint64_t seed,
                                   hr_kv_plan **out);
/* KV heads that are not full, out of all KV heads. */
HR_API int hr_kv_plan_n_reduced(const hr_kv_plan *p);

#ifdef __cplusplus
}
#endif
#endif
