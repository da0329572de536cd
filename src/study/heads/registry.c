/* The method registry: one row per scoring method, in output order. */
#include "study/heads/heads_internal.h"

#include <string.h>

const hr_head_method *const hr_head_methods[] = {
    &hr_method_ablation,   &hr_method_ablation_kl, &hr_method_ablation_greedy, &hr_method_amp,
    &hr_method_fdtm,       &hr_method_grad,        &hr_method_taylor,          &hr_method_entropy,
    &hr_method_confidence, &hr_method_sink,        &hr_method_streaming,       &hr_method_distance,
    &hr_method_influence,  &hr_method_pattern,     &hr_method_induction,       &hr_method_prev_token,
    &hr_method_duplicate,  &hr_method_retrieval,   &hr_method_successor,
};
const int hr_head_methods_count = (int)(sizeof hr_head_methods / sizeof hr_head_methods[0]);
/* hr_heads_estimate_cost has a row per method at most, plus the layer metrics. */
_Static_assert(sizeof hr_head_methods / sizeof hr_head_methods[0] < HR_HEADS_MAX_COSTS, "raise HR_HEADS_MAX_COSTS");

int hr_heads_n_methods(void) { return hr_head_methods_count; }

const hr_head_method_info *hr_heads_method_info(int i) {
    return i >= 0 && i < hr_head_methods_count ? &hr_head_methods[i]->info : NULL;
}

int hr_heads_method_index(const char *id) {
    for (int i = 0; id && i < hr_head_methods_count; i++)
        if (strcmp(id, hr_head_methods[i]->info.id) == 0) return i;
    return -1;
}

hr_status hr_heads_parse_methods(const char *list, bool *selected) {
    if (!list || !selected) return hr_err(HR_ERR_INVALID_ARG, "no method list given");
    for (int i = 0; i < hr_head_methods_count; i++) selected[i] = false;
    if (strcmp(list, "all") == 0) {
        for (int i = 0; i < hr_head_methods_count; i++) selected[i] = true;
        return HR_OK;
    }
    int n = 0;
    for (const char *s = list; *s;) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        char id[64];
        if (len == 0 || len >= sizeof id)
            return hr_err(HR_ERR_INVALID_ARG, "bad method list '%s' (comma-separated ids or 'all')", list);
        memcpy(id, s, len);
        id[len] = 0;
        int k = hr_heads_method_index(id);
        if (strcmp(id, "default") == 0) {
            for (int i = 0; i < hr_head_methods_count; i++) selected[i] |= !hr_head_methods[i]->info.opt_in;
        } else if (k < 0) {
            return hr_err(HR_ERR_INVALID_ARG, "unknown method '%s'", id);
        } else {
            selected[k] = true;
        }
        n++;
        s = e ? e + 1 : s + len;
        if (e && !*s) return hr_err(HR_ERR_INVALID_ARG, "bad method list '%s' (trailing comma)", list);
    }
    if (n == 0) return hr_err(HR_ERR_INVALID_ARG, "empty method list");
    return HR_OK;
}
