/* induction: attention to the token after the earlier occurrence. */
#include "study/heads/heads_internal.h"

static void induction_attn(const lab_attn *a, double *sum, double *weight) {
    int k = a->rep_k;
    for (int t = k + 1; t <= 2 * k; t++) {
        *sum += a->P[(size_t)t * a->stride + (t - k + 1)];
        *weight += 1;
    }
}

const hr_head_method hr_method_induction = {
    {"induction", "induction score",
     "Olsson et al. 2022, In-context Learning and Induction Heads; TransformerLens induction score",
     "on [BOS, r1..rk, r1..rk] (random tokens): mean over second-half positions t of p(t, t-k+1), the token "
     "after the earlier occurrence of the current token",
     "finding the in-context copying circuit (prefix matching + copying); removing induction heads breaks "
     "in-context learning",
     "more induction", false},
    LAB_INPUT_REPEAT,
    induction_attn,
    NULL,
    LAB_WORK_REPEAT};
