/* streaming: the first `sink` tokens plus the last `window` (StreamingLLM's
 * attention sinks + recent window). A fixed ring of sink + window slots; a
 * query at position q sees keys at positions < sink or > q - window. */
#include "engine/kv/policy.h"

#include <stdio.h>
#include <string.h>

#include "core/internal.h"

static void streaming_defaults(hr_kv_policy *p) { p->sink = 4, p->window = 64; }

static bool streaming_set_param(hr_kv_policy *p, const char *key, int v) {
    if (strcmp(key, "sink") == 0) p->sink = v;
    else if (strcmp(key, "window") == 0) p->window = v;
    else return false;
    return true;
}

static int streaming_format(const hr_kv_policy *p, char *buf, size_t cap) {
    return snprintf(buf, cap, " sink=%d window=%d", p->sink, p->window);
}

static long streaming_capacity(const hr_kv_policy *p, int n_ctx) {
    (void)n_ctx;
    return (long)p->sink + p->window;
}

static hr_status streaming_validate(const hr_kv_policy *p, int n_ctx) {
    if (p->sink < 0 || p->window < 1)
        return hr_err(HR_ERR_INVALID_ARG, "streaming policy needs sink >= 0 and window >= 1 (got %d, %d)", p->sink,
                      p->window);
    if (p->window > n_ctx || p->sink > n_ctx)
        return hr_err(HR_ERR_RANGE, "streaming window %d / sink %d is larger than the context (%d)", p->window, p->sink,
                      n_ctx);
    return HR_OK;
}

static bool streaming_visible(const hr_kv_policy *p, int k, int q) { return k < p->sink || k > q - p->window; }

/* The oldest token that is not a sink (sinks are the lowest positions, so
 * the first in order). */
static int streaming_victim(const hr_kv_store *s, int pos) {
    (void)pos;
    int i = 0;
    while (i < s->n_used - 1 && s->slot_pos[s->order[i]] < s->pol.sink) i++;
    return i;
}

/* Sinks and the window, wherever they are (store or batch). */
static int streaming_max_gathered(const hr_kv_policy *p, int cap, int n_batch) {
    (void)cap, (void)n_batch;
    return p->sink + p->window;
}

const hr_kv_policy_ops hr_kv_policy_streaming = {
    .name = "streaming",
    .params = "sink=S window=W",
    .defaults = streaming_defaults,
    .set_param = streaming_set_param,
    .format = streaming_format,
    .capacity = streaming_capacity,
    .validate = streaming_validate,
    .visible = streaming_visible,
    .victim = streaming_victim,
    .max_gathered = streaming_max_gathered,
    .gather = hr_kv_gather_visible,
    .observe = NULL,
};
