/* heavy: the `budget` tokens with the largest accumulated attention plus the
 * last `window` (H2O; SpAtten's cascade token pruning with a top-k budget).
 * Attention accumulates over the group's query heads and all later queries;
 * a token entering a full store evicts the held token with the least of it
 * outside the recent window. Every held token is visible. */
#include "engine/kv/policy.h"

#include <stdio.h>
#include <string.h>

#include "core/internal.h"

static void heavy_defaults(hr_kv_policy *p) { p->budget = 64, p->window = 32; }

static bool heavy_set_param(hr_kv_policy *p, const char *key, int v) {
    if (strcmp(key, "budget") == 0) p->budget = v;
    else if (strcmp(key, "window") == 0) p->window = v;
    else return false;
    return true;
}

static int heavy_format(const hr_kv_policy *p, char *buf, size_t cap) {
    return snprintf(buf, cap, " budget=%d window=%d", p->budget, p->window);
}

static long heavy_capacity(const hr_kv_policy *p, int n_ctx) {
    (void)n_ctx;
    return (long)p->budget + p->window;
}

static hr_status heavy_validate(const hr_kv_policy *p, int n_ctx) {
    if (p->budget < 1 || p->window < 1)
        return hr_err(HR_ERR_INVALID_ARG, "heavy policy needs budget >= 1 and window >= 1 (got %d, %d)", p->budget,
                      p->window);
    if (p->window > n_ctx || p->budget > n_ctx)
        return hr_err(HR_ERR_RANGE, "heavy window %d / budget %d is larger than the context (%d)", p->window, p->budget,
                      n_ctx);
    return HR_OK;
}

static bool heavy_visible(const hr_kv_policy *p, int k, int q) {
    (void)p, (void)k, (void)q;
    return true;
}

/* The lowest accumulated attention outside the recent window (the earlier
 * position on ties); the oldest token when everything is recent. */
static int heavy_victim(const hr_kv_store *s, int pos) {
    int best = -1;
    for (int i = 0; i < s->n_used; i++) {
        int slot = s->order[i];
        if (s->slot_pos[slot] > pos - s->pol.window) break; /* order is by position */
        if (best < 0 || s->acc[slot] < s->acc[s->order[best]]) best = i;
    }
    return best < 0 ? 0 : best;
}

/* Every held token and every batch row up to the query. */
static int heavy_max_gathered(const hr_kv_policy *p, int cap, int n_batch) {
    (void)p;
    return cap + n_batch;
}

/* Adds one query head's probabilities to the held tokens' and the batch
 * rows' accumulated attention. */
static void heavy_observe(hr_kv_store *s, hr_kv_scratch *scr, int len) {
    for (int i = 0; i < len; i++) {
        if (scr->gpos[i] >= 0) s->acc[scr->gpos[i]] += scr->gs[i];
        else scr->batch_acc[-1 - scr->gpos[i]] += scr->gs[i];
    }
}

const hr_kv_policy_ops hr_kv_policy_heavy = {
    .name = "heavy",
    .params = "budget=K window=W",
    .defaults = heavy_defaults,
    .set_param = heavy_set_param,
    .format = heavy_format,
    .capacity = heavy_capacity,
    .validate = heavy_validate,
    .visible = heavy_visible,
    .victim = heavy_victim,
    .max_gathered = heavy_max_gathered,
    .gather = hr_kv_gather_visible,
    .observe = heavy_observe,
};
