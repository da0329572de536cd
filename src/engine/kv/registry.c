/* The KV policy registry: one row per policy (policy.h). A new policy is
 * its file src/engine/kv/p_<name>.c plus one line here; its hr_kv_kind is
 * its position. */
#include "engine/kv/policy.h"

const hr_kv_policy_ops *const hr_kv_policies[] = {
    &hr_kv_policy_full,      /* HR_KV_FULL */
    &hr_kv_policy_streaming, /* HR_KV_STREAMING */
    &hr_kv_policy_heavy,     /* HR_KV_HEAVY */
};
const int hr_kv_n_policies = (int)(sizeof hr_kv_policies / sizeof hr_kv_policies[0]);

const hr_kv_policy_ops *hr_kv_policy_ops_of(hr_kv_kind k) {
    return (int)k >= 0 && (int)k < hr_kv_n_policies ? hr_kv_policies[k] : NULL;
}
