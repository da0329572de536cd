/* duplicate: attention to the earlier occurrence of the same token. */
#include "study/heads/heads_internal.h"

static void duplicate_attn(const lab_attn *a, double *sum, double *weight) {
    int k = a->rep_k;
    for (int t = k + 1; t <= 2 * k; t++) {
        *sum += a->P[(size_t)t * a->stride + (t - k)];
        *weight += 1;
    }
}

const hr_head_method hr_method_duplicate = {
    {"duplicate", "duplicate-token score",
     "Wang et al. 2022, Interpretability in the Wild (IOI duplicate-token heads); TransformerLens",
     "on [BOS, r1..rk, r1..rk]: mean over second-half positions t of p(t, t-k), the earlier copy of the same "
     "token",
     "finding heads that detect repeated tokens (used by IOI-style circuits and repetition suppression)",
     "more duplicate", false},
    LAB_INPUT_REPEAT,
    duplicate_attn,
    NULL,
    LAB_WORK_REPEAT};
