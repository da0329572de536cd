/* Per-(layer, KV head) key/value storage under a policy (internal).
 *
 * The context drives every store through the functions below; what a store
 * keeps, shows and evicts is its policy's (policy.h). A store whose policy
 * keeps every position (full, or a window that covers the context) is
 * "direct": position p lives in slot p and attention reads it in place.
 * Other stores hold `cap` slots in arrival order; a query attends to the
 * visible slots and batch rows gathered into a scratch buffer. */
#ifndef HR_KV_STORE_H
#define HR_KV_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "headroom/kvcache.h"

typedef struct hr_kv_policy_ops hr_kv_policy_ops;

typedef struct {
    hr_kv_policy pol;
    const hr_kv_policy_ops *ops; /* pol's row of the registry */
    int head_dim;
    int cap;           /* slots */
    int ld;            /* row stride of kt/vt: cap padded so rows do not alias in cache sets */
    float *kt, *vt;    /* (head_dim, ld) keys / values, transposed; columns < cap used */
    int32_t *slot_pos; /* (cap) position in each slot, -1 = free; NULL when direct */
    int32_t *order;    /* (cap) used slots by ascending position; NULL when direct */
    float *acc;        /* (cap) accumulated attention; NULL unless the policy observes attention */
    int n_used;
} hr_kv_store;

/* The keys/values of the batch being run, as the context holds them. */
typedef struct {
    const float *k, *v; /* row t at k + t * stride: this KV head's head_dim values */
    size_t stride;
    int n, pos0; /* rows, position of row 0 */
} hr_kv_batch;

/* One KV head's gather scratch. */
typedef struct {
    int cap;          /* columns of gk/gv, entries of gs/gpos */
    float *gk, *gv;   /* (head_dim, cap) visible keys / values, gathered */
    float *gs;        /* (cap) scores over them, then probabilities */
    int32_t *gpos;    /* (cap) where each came from: >= 0 store slot, < 0: -1 - batch row */
    float *batch_acc; /* (n_batch) attention received by the batch rows; NULL if no policy observes */
} hr_kv_scratch;

/* Gather scratch for every KV head of the widest layer, shared by the
 * layers (they run one after another). */
typedef struct {
    int n_heads, head_dim, cap, n_batch;
    float *gk, *gv;   /* (n_heads, head_dim, cap) */
    float *gs;        /* (n_heads, cap) */
    int32_t *gpos;    /* (n_heads, cap) */
    float *batch_acc; /* (n_heads, n_batch) or NULL */
} hr_kv_gather_buf;

/* Allocates the store for pol (validated) and adds the bytes it allocated
 * to *bytes: kt, vt, and for evicting stores slot_pos, order and acc. */
hr_status hr_kv_store_init(hr_kv_store *s, const hr_kv_policy *pol, int n_ctx, int head_dim, size_t *bytes);
void hr_kv_store_free(hr_kv_store *s);
void hr_kv_store_reset(hr_kv_store *s);
static inline bool hr_kv_store_direct(const hr_kv_store *s) { return s->slot_pos == NULL; }
/* Does the store's policy record attention (heavy hitters)? */
bool hr_kv_store_observes(const hr_kv_store *s);
/* Most entries a query gathers from this (evicting) store in a batch of
 * n_batch tokens (the policy's max_gathered). */
int hr_kv_store_max_gathered(const hr_kv_store *s, int n_batch);

/* Direct stores: write position pos. Others: insert, evicting the policy's
 * victim when full; positions must arrive in increasing order. k, v:
 * (head_dim); acc0 starts the slot's accumulated attention. */
void hr_kv_store_put(hr_kv_store *s, int pos, const float *k, const float *v, float acc0);

/* Scratch for n_heads KV heads, `cap` gathered entries each (the largest
 * hr_kv_store_max_gathered + 16), batch accumulators (n_batch each) when
 * `observe`; adds the bytes to *bytes. */
hr_status hr_kv_gather_buf_init(hr_kv_gather_buf *g, int n_heads, int head_dim, int cap, int n_batch, bool observe,
                                size_t *bytes);
void hr_kv_gather_buf_free(hr_kv_gather_buf *g);
/* KV head h's part of the buffer. */
hr_kv_scratch hr_kv_gather_buf_head(const hr_kv_gather_buf *g, int h);

/* One batch through an evicting store: begin, then per batch row t gather
 * and (per query head) observe, then end, which enters the batch's tokens
 * into the store (evicting as they come). */
void hr_kv_batch_begin(const hr_kv_store *s, hr_kv_scratch *scr, int n);
int hr_kv_gather(const hr_kv_store *s, const hr_kv_batch *b, int t, hr_kv_scratch *scr);
void hr_kv_observe(hr_kv_store *s, hr_kv_scratch *scr, int len);
void hr_kv_batch_end(hr_kv_store *s, const hr_kv_batch *b, const hr_kv_scratch *scr);
/* Position of gathered entry i. */
static inline int hr_kv_gathered_pos(const hr_kv_store *s, const hr_kv_batch *b, const hr_kv_scratch *scr, int i) {
    int32_t p = scr->gpos[i];
    return p >= 0 ? s->slot_pos[p] : b->pos0 + (-1 - p);
}

/* The gather every built-in policy uses: in ascending position order, the
 * held slots the policy shows to a query at b->pos0 + t, then the visible
 * batch rows 0..t. */
int hr_kv_gather_visible(const hr_kv_store *s, const hr_kv_batch *b, int t, hr_kv_scratch *scr);

#endif
