/* KV stores and the policy registry: each policy is a row of functions
 * (capacity, visibility, eviction victim), so adding one is one row. */
#include "engine/kv/store.h"

#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

typedef struct {
    hr_kv_kind kind;
    bool (*visible)(const hr_kv_policy *p, int key_pos, int query_pos);
    /* Index into s->order of the slot to evict for a token at pos. */
    int (*victim)(const hr_kv_store *s, int pos);
} policy_ops;

static bool vis_all(const hr_kv_policy *p, int k, int q) {
    (void)p, (void)k, (void)q;
    return true;
}

static bool vis_streaming(const hr_kv_policy *p, int k, int q) { return k < p->sink || k > q - p->window; }

static int victim_oldest_non_sink(const hr_kv_store *s, int pos) {
    (void)pos;
    int i = 0; /* sinks are the lowest positions, first in order */
    while (i < s->n_used - 1 && s->slot_pos[s->order[i]] < s->pol.sink) i++;
    return i;
}

/* H2O: the lowest accumulated attention outside the recent window; the
 * oldest token when everything is recent. */
static int victim_lightest(const hr_kv_store *s, int pos) {
    int best = -1;
    for (int i = 0; i < s->n_used; i++) {
        int slot = s->order[i];
        if (s->slot_pos[slot] > pos - s->pol.window) break; /* order is by position */
        if (best < 0 || s->acc[slot] < s->acc[s->order[best]]) best = i;
    }
    return best < 0 ? 0 : best;
}

static const policy_ops registry[HR_KV_POLICY_COUNT] = {
    {HR_KV_FULL, vis_all, NULL},
    {HR_KV_STREAMING, vis_streaming, victim_oldest_non_sink},
    {HR_KV_HEAVY, vis_all, victim_lightest},
};

bool hr_kv_visible(const hr_kv_policy *p, int key_pos, int query_pos) {
    return registry[p->kind].visible(p, key_pos, query_pos);
}

static void *zalloc(size_t n, size_t size, size_t *bytes) {
    size_t b;
    if (!hr_mul_size(n, size, &b)) return NULL;
    void *p = calloc(1, b ? b : 1);
    if (p) *bytes += b;
    return p;
}

hr_status hr_kv_store_init(hr_kv_store *s, const hr_kv_policy *pol, int n_ctx, int head_dim, size_t *bytes) {
    memset(s, 0, sizeof *s);
    s->pol = *pol;
    s->head_dim = head_dim;
    s->cap = hr_kv_policy_capacity(pol, n_ctx);
    /* Rows a power-of-two apart map to the same L1 set; 16 extra floats
     * spread a 64-row column walk over the cache. */
    s->ld = s->cap >= 256 ? s->cap + 16 : s->cap;
    size_t hd = (size_t)head_dim, cap = (size_t)s->cap;
    s->kt = zalloc(hd * (size_t)s->ld, sizeof(float), bytes);
    s->vt = zalloc(hd * (size_t)s->ld, sizeof(float), bytes);
    if (!s->kt || !s->vt) return hr_err(HR_ERR_NOMEM, "out of memory for the KV cache");
    /* A policy whose capacity covers the context never evicts: store it
     * directly, exactly like a full head. */
    if (pol->kind == HR_KV_FULL || s->cap == n_ctx) return HR_OK;
    s->slot_pos = zalloc(cap, sizeof(int32_t), bytes);
    s->order = zalloc(cap, sizeof(int32_t), bytes);
    s->acc = zalloc(cap, sizeof(float), bytes);
    if (!s->slot_pos || !s->order || !s->acc) return hr_err(HR_ERR_NOMEM, "out of memory for the KV cache");
    hr_kv_store_reset(s);
    return HR_OK;
}

void hr_kv_store_free(hr_kv_store *s) {
    if (!s) return;
    free(s->kt), free(s->vt), free(s->slot_pos), free(s->order), free(s->acc);
    memset(s, 0, sizeof *s);
}

void hr_kv_store_reset(hr_kv_store *s) {
    s->n_used = 0;
    if (s->slot_pos)
        for (int i = 0; i < s->cap; i++) s->slot_pos[i] = -1;
}

static void write_slot(hr_kv_store *s, int slot, const float *k, const float *v) {
    for (int d = 0; d < s->head_dim; d++) {
        s->kt[(size_t)d * s->ld + slot] = k[d];
        s->vt[(size_t)d * s->ld + slot] = v[d];
    }
}

void hr_kv_store_put(hr_kv_store *s, int pos, const float *k, const float *v, float acc0) {
    if (hr_kv_store_direct(s)) {
        write_slot(s, pos, k, v);
        return;
    }
    int slot;
    if (s->n_used < s->cap) {
        slot = s->n_used++;
    } else {
        int i = registry[s->pol.kind].victim(s, pos);
        slot = s->order[i];
        memmove(s->order + i, s->order + i + 1, sizeof(int32_t) * (size_t)(s->n_used - 1 - i));
    }
    write_slot(s, slot, k, v);
    s->slot_pos[slot] = pos;
    s->acc[slot] = acc0;
    s->order[s->n_used - 1] = slot;
}
