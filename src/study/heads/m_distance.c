/* distance: windowed average attention distance (WAAD). */
#include "study/heads/heads_internal.h"

enum { CAP = 32 };

static void distance_attn(const lab_attn *a, double *sum, double *weight) {
    int t0 = a->n > CAP ? CAP : 1; /* rows that can reach the cap; all rows when none can */
    for (int t = t0; t < a->n; t++) {
        const float *p = a->P + (size_t)t * a->stride;
        double d = 0;
        for (int s = 0; s <= t; s++) d += (double)p[s] * (t - s < CAP ? t - s : CAP);
        *sum += d;
        *weight += 1;
    }
}

const hr_head_method hr_method_distance = {
    {"distance", "windowed average attention distance",
     "Li et al. 2025, Attention Illuminates LLM Reasoning: The Preplan-and-Anchor Rhythm Enables Fine-Grained "
     "Policy Optimization (WAAD)",
     "mean over calibration rows t >= 32 of sum_s p(t,s) * min(t-s, 32) (tokens); rows t >= 1 when windows "
     "have no row 32",
     "local (small distance: phrase-level, chunking) vs global heads (large: reach far back); local heads suit "
     "sliding-window KV caches",
     "more global", false},
    LAB_INPUT_CALIB,
    distance_attn,
    NULL,
    LAB_WORK_CALIB};
