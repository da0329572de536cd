/* KV stores (store.h): slots, insertion with the policy's eviction,
 * gathering, the batch cycle; what each policy decides is in p_<name>.c. */
#include "engine/kv/store.h"

#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "engine/kv/policy.h"

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
    s->ops = hr_kv_policy_ops_of(pol->kind);
    if (!s->ops) return hr_err(HR_ERR_INVALID_ARG, "unknown KV policy %d", (int)pol->kind);
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
    if (!s->ops->victim || s->cap == n_ctx) return HR_OK;
    s->slot_pos = zalloc(cap, sizeof(int32_t), bytes);
    s->order = zalloc(cap, sizeof(int32_t), bytes);
    if (s->ops->observe) s->acc = zalloc(cap, sizeof(float), bytes);
    if (!s->slot_pos || !s->order || (s->ops->observe && !s->acc))
        return hr_err(HR_ERR_NOMEM, "out of memory for the KV cache");
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

bool hr_kv_store_observes(const hr_kv_store *s) { return !hr_kv_store_direct(s) && s->ops->observe; }

int hr_kv_store_max_gathered(const hr_kv_store *s, int n_batch) {
    return hr_kv_store_direct(s) ? 0 : s->ops->max_gathered(&s->pol, s->cap, n_batch);
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
        int i = s->ops->victim(s, pos);
        slot = s->order[i];
        memmove(s->order + i, s->order + i + 1, sizeof(int32_t) * (size_t)(s->n_used - 1 - i));
    }
    write_slot(s, slot, k, v);
    s->slot_pos[slot] = pos;
    if (s->acc) s->acc[slot] = acc0;
    s->order[s->n_used - 1] = slot;
}

/* ---- gathering ---- */

hr_status hr_kv_gather_buf_init(hr_kv_gather_buf *g, int n_heads, int head_dim, int cap, int n_batch, bool observe,
                                size_t *bytes) {
    memset(g, 0, sizeof *g);
    g->n_heads = n_heads, g->head_dim = head_dim, g->cap = cap, g->n_batch = n_batch;
    size_t nh = (size_t)n_heads, hd = (size_t)head_dim, c = (size_t)cap, kv;
    if (!hr_mul_size(nh * hd, c, &kv)) return hr_err(HR_ERR_NOMEM, "KV gather buffer size overflows");
    g->gk = zalloc(kv, sizeof(float), bytes);
    g->gv = zalloc(kv, sizeof(float), bytes);
    g->gs = zalloc(nh * c, sizeof(float), bytes);
    g->gpos = zalloc(nh * c, sizeof(int32_t), bytes);
    if (observe) g->batch_acc = zalloc(nh, (size_t)n_batch * sizeof(float), bytes);
    if (!g->gk || !g->gv || !g->gs || !g->gpos || (observe && !g->batch_acc))
        return hr_err(HR_ERR_NOMEM, "out of memory for the KV cache");
    return HR_OK;
}

void hr_kv_gather_buf_free(hr_kv_gather_buf *g) {
    if (!g) return;
    free(g->gk), free(g->gv), free(g->gs), free(g->gpos), free(g->batch_acc);
    memset(g, 0, sizeof *g);
}

hr_kv_scratch hr_kv_gather_buf_head(const hr_kv_gather_buf *g, int h) {
    size_t c = (size_t)g->cap, kv = (size_t)h * g->head_dim * c;
    hr_kv_scratch s = {g->cap,
                       g->gk + kv,
                       g->gv + kv,
                       g->gs + (size_t)h * c,
                       g->gpos + (size_t)h * c,
                       g->batch_acc ? g->batch_acc + (size_t)h * g->n_batch : NULL};
    return s;
}

int hr_kv_gather_visible(const hr_kv_store *s, const hr_kv_batch *b, int t, hr_kv_scratch *scr) {
    int hd = s->head_dim, cap = scr->cap, len = 0, q = b->pos0 + t;
    float *gk = scr->gk, *gv = scr->gv;
    for (int i = 0; i < s->n_used; i++) {
        int slot = s->order[i];
        if (!s->ops->visible(&s->pol, s->slot_pos[slot], q)) continue;
        for (int d = 0; d < hd; d++) {
            gk[(size_t)d * cap + len] = s->kt[(size_t)d * s->ld + slot];
            gv[(size_t)d * cap + len] = s->vt[(size_t)d * s->ld + slot];
        }
        scr->gpos[len++] = slot;
    }
    for (int u = 0; u <= t; u++) {
        if (!s->ops->visible(&s->pol, b->pos0 + u, q)) continue;
        const float *kr = b->k + (size_t)u * b->stride, *vr = b->v + (size_t)u * b->stride;
        for (int d = 0; d < hd; d++) {
            gk[(size_t)d * cap + len] = kr[d];
            gv[(size_t)d * cap + len] = vr[d];
        }
        scr->gpos[len++] = -1 - u;
    }
    return len;
}

/* ---- the batch cycle ---- */

void hr_kv_batch_begin(const hr_kv_store *s, hr_kv_scratch *scr, int n) {
    if (hr_kv_store_observes(s) && scr->batch_acc) memset(scr->batch_acc, 0, sizeof(float) * (size_t)n);
}

int hr_kv_gather(const hr_kv_store *s, const hr_kv_batch *b, int t, hr_kv_scratch *scr) {
    return s->ops->gather(s, b, t, scr);
}

void hr_kv_observe(hr_kv_store *s, hr_kv_scratch *scr, int len) {
    if (s->ops->observe) s->ops->observe(s, scr, len);
}

void hr_kv_batch_end(hr_kv_store *s, const hr_kv_batch *b, const hr_kv_scratch *scr) {
    bool acc = hr_kv_store_observes(s) && scr->batch_acc;
    for (int t = 0; t < b->n; t++)
        hr_kv_store_put(s, b->pos0 + t, b->k + (size_t)t * b->stride, b->v + (size_t)t * b->stride,
                        acc ? scr->batch_acc[t] : 0.0f);
}
