/* influence: how strongly a head anchors future tokens on one earlier token. */
#include "study/heads/heads_internal.h"

enum { MIN_FUTURE = 8 };

static void influence_attn(const lab_attn *a, double *sum, double *weight) {
    /* FAI(s) = mean_{t > s} p(t,s); the sink token s = 0 is excluded so the
     * score measures content anchors, not the BOS sink. */
    double best = 0;
    for (int s = 1; s + MIN_FUTURE < a->n; s++) {
        double acc = 0;
        for (int t = s + 1; t < a->n; t++) acc += a->P[(size_t)t * a->stride + s];
        double fai = acc / (a->n - 1 - s);
        best = fai > best ? fai : best;
    }
    if (a->n > MIN_FUTURE + 1) {
        *sum += best;
        *weight += 1;
    }
}

const hr_head_method hr_method_influence = {
    {"influence", "future attention influence (anchor strength)",
     "Li et al. 2025, Attention Illuminates LLM Reasoning: The Preplan-and-Anchor Rhythm Enables Fine-Grained "
     "Policy Optimization (FAI)",
     "per window: FAI(s) = mean_{t>s} p(t,s) for keys 1 <= s < n-8; score = mean over windows of max_s FAI(s)",
     "finding global heads that anchor many later tokens on one earlier (non-BOS) token; high values mark "
     "anchor/planning tokens that a KV cache must keep",
     "more anchoring", false},
    LAB_INPUT_CALIB,
    influence_attn,
    NULL,
    LAB_WORK_CALIB};
