/* prev_token: attention to the immediately preceding position. */
#include "study/heads/heads_internal.h"

static void prev_token_attn(const lab_attn *a, double *sum, double *weight) {
    for (int t = 1; t < a->n; t++) {
        *sum += a->P[(size_t)t * a->stride + (t - 1)];
        *weight += 1;
    }
}

const hr_head_method hr_method_prev_token = {
    {"prev_token", "previous-token score", "Olsson et al. 2022; TransformerLens previous-token head detection",
     "on [BOS, r1..rk, r1..rk]: mean over positions t >= 1 of p(t, t-1)",
     "finding previous-token heads, the first half of induction circuits (K-composition) and of n-gram "
     "features",
     "more previous-token", false},
    LAB_INPUT_REPEAT,
    prev_token_attn,
    NULL,
    LAB_WORK_REPEAT};
