/* full: every past token is kept (the plain cache). */
#include "engine/kv/policy.h"

#include <stdio.h>

static void full_defaults(hr_kv_policy *p) { (void)p; }

static bool full_set_param(hr_kv_policy *p, const char *key, int v) {
    (void)p, (void)key, (void)v;
    return false;
}

static int full_format(const hr_kv_policy *p, char *buf, size_t cap) {
    (void)p;
    return snprintf(buf, cap, "%s", "");
}

static long full_capacity(const hr_kv_policy *p, int n_ctx) {
    (void)p;
    return n_ctx;
}

static hr_status full_validate(const hr_kv_policy *p, int n_ctx) {
    (void)p, (void)n_ctx;
    return HR_OK;
}

static bool full_visible(const hr_kv_policy *p, int key_pos, int query_pos) {
    (void)p, (void)key_pos, (void)query_pos;
    return true;
}

const hr_kv_policy_ops hr_kv_policy_full = {
    .name = "full",
    .params = "",
    .defaults = full_defaults,
    .set_param = full_set_param,
    .format = full_format,
    .capacity = full_capacity,
    .validate = full_validate,
    .visible = full_visible,
    .victim = NULL,       /* never evicts: its store is direct */
    .max_gathered = NULL, /* never gathered */
    .gather = hr_kv_gather_visible,
    .observe = NULL,
};
