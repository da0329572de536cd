/* entropy: how diffuse a head's attention is. */
#include "study/heads/heads_internal.h"

static void entropy_attn(const lab_attn *a, double *sum, double *weight) {
    for (int t = 1; t < a->n; t++) { /* row 0 can only attend to itself */
        const float *p = a->P + (size_t)t * a->stride;
        double e = 0;
        for (int s = 0; s <= t; s++)
            if (p[s] > 0) e -= (double)p[s] * log((double)p[s]);
        *sum += e;
        *weight += 1;
    }
}

const hr_head_method hr_method_entropy = {
    {"entropy", "attention entropy",
     "Clark et al. 2019, What Does BERT Look At? (attention entropy); Voita et al. 2019",
     "mean over calibration query rows t >= 1 of -sum_s p(t,s) ln p(t,s) (nats)",
     "telling broad, averaging heads (high) from focused ones (low); low-entropy heads are candidates for "
     "specialised roles",
     "more diffuse", false},
    LAB_INPUT_CALIB,
    entropy_attn,
    NULL,
    LAB_WORK_CALIB};
