/* KV-cache policies: the registry (internal).
 *
 * Everything one policy means lives in its own file, src/engine/kv/p_<name>.c,
 * as one hr_kv_policy_ops row: its plan-file name and parameters, how many
 * slots it keeps, which cached tokens a query may see, which token it evicts
 * when a new one enters a full store, how the visible keys/values are
 * gathered and what it records about the attention they receive. The
 * registry (registry.c) lists the rows; a policy's hr_kv_kind is its row.
 * The plan code (plan.c), the stores (store.c) and the context reach
 * policies only through these rows, so adding a policy is one file plus one
 * line in registry.c. */
#ifndef HR_KV_POLICY_H
#define HR_KV_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/kv/store.h"

struct hr_kv_policy_ops {
    const char *name;   /* plan-file keyword ("streaming") */
    const char *params; /* its parameters as a plan file gives them, for messages ("sink=S window=W") */
    /* Parameters before a plan line's key=value pairs. */
    void (*defaults)(hr_kv_policy *p);
    /* Sets parameter `key` to v; false when the policy has no such key. */
    bool (*set_param)(hr_kv_policy *p, const char *key, int v);
    /* Writes the parameters as plan-file text (" sink=4 window=64"; "" for
     * none) into buf (cap bytes); returns what snprintf returns. */
    int (*format)(const hr_kv_policy *p, char *buf, size_t cap);
    /* Slots the policy keeps for n_ctx tokens (the caller clamps to n_ctx). */
    long (*capacity)(const hr_kv_policy *p, int n_ctx);
    /* Parameters acceptable for a context of n_ctx tokens? */
    hr_status (*validate)(const hr_kv_policy *p, int n_ctx);
    /* May a query at position query_pos see a held key at key_pos (<= query_pos)? */
    bool (*visible)(const hr_kv_policy *p, int key_pos, int query_pos);
    /* Index into s->order of the slot to evict when the token at pos enters
     * a full store; NULL for a policy that keeps every token. */
    int (*victim)(const hr_kv_store *s, int pos);
    /* Most entries one query can see in a store of cap slots during a batch
     * of n_batch tokens: the gather scratch holds that many per KV head. */
    int (*max_gathered)(const hr_kv_policy *p, int cap, int n_batch);
    /* Gathers what batch row t may see into scr (hr_kv_gather_visible for
     * every built-in policy); returns the count. */
    int (*gather)(const hr_kv_store *s, const hr_kv_batch *b, int t, hr_kv_scratch *scr);
    /* Records the attention probabilities scr->gs[0..len) one query head
     * gave the gathered tokens (into s->acc / scr->batch_acc); NULL when the
     * policy does not use them. A policy with observe gets s->acc. */
    void (*observe)(hr_kv_store *s, hr_kv_scratch *scr, int len);
};

/* The registry, in hr_kv_kind order. */
extern const hr_kv_policy_ops *const hr_kv_policies[];
extern const int hr_kv_n_policies;

/* The row of kind k; NULL when k is not a registered policy. */
const hr_kv_policy_ops *hr_kv_policy_ops_of(hr_kv_kind k);

/* The rows (policy files). */
extern const hr_kv_policy_ops hr_kv_policy_full, hr_kv_policy_streaming, hr_kv_policy_heavy;

#endif
