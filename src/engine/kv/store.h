/* Per-(layer, KV head) key/value storage under a policy (internal). */
#ifndef HR_KV_STORE_H
#define HR_KV_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "headroom/kvcache.h"

typedef struct {
    hr_kv_policy pol;
    int head_dim;
    int cap;           /* slots */
    int ld;            /* row stride of kt/vt: cap padded so rows do not alias in cache sets */
    float *kt, *vt;    /* (head_dim, ld) keys / values, transposed; columns < cap used */
    int32_t *slot_pos; /* (cap) position in each slot, -1 = free; NULL when slot == position (full) */
    int32_t *order;    /* (cap) used slots by ascending position (non-full only) */
    float *acc;        /* (cap) accumulated attention (heavy only) */
    int n_used;
} hr_kv_store;

/* Allocates the store for pol; adds its bytes to *bytes. */
hr_status hr_kv_store_init(hr_kv_store *s, const hr_kv_policy *pol, int n_ctx, int head_dim, size_t *bytes);
void hr_kv_store_free(hr_kv_store *s);
void hr_kv_store_reset(hr_kv_store *s);
static inline bool hr_kv_store_direct(const hr_kv_store *s) { return s->slot_pos == NULL; }

/* Direct stores: write position pos. Others: insert (evicting per policy);
 * positions must arrive in increasing order. k, v: (head_dim). */
void hr_kv_store_put(hr_kv_store *s, int pos, const float *k, const float *v, float acc0);

/* May a query at position q attend to the key at position k (< q or == q)
 * under this policy (for keys still held by the store)? */
bool hr_kv_visible(const hr_kv_policy *p, int key_pos, int query_pos);

#endif
