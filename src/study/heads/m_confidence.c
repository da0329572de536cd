/* confidence: Voita et al.'s mean maximum attention weight. */
#include "study/heads/heads_internal.h"

static void confidence_attn(const lab_attn *a, double *sum, double *weight) {
    for (int t = 1; t < a->n; t++) {
        const float *p = a->P + (size_t)t * a->stride;
        float mx = 0;
        for (int s = 0; s <= t; s++) mx = p[s] > mx ? p[s] : mx;
        *sum += mx;
        *weight += 1;
    }
}

const hr_head_method hr_method_confidence = {
    {"confidence", "head confidence",
     "Voita et al. 2019, Analyzing Multi-Head Self-Attention: Specialized Heads Do the Heavy Lifting, the Rest "
     "Can Be Pruned (ACL)",
     "mean over calibration query rows t >= 1 of max_s p(t,s)",
     "a cheap importance proxy: confident heads were the ones that survived pruning in Voita et al.; note that "
     "sink heads are confident too",
     "more confident", false},
    LAB_INPUT_CALIB,
    confidence_attn,
    NULL,
    LAB_WORK_CALIB};
