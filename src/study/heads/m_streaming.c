/* streaming: how much attention fits in "sink + recent window". */
#include "study/heads/heads_internal.h"

enum { N_SINK = 4, RECENT = 16 };

static void streaming_attn(const lab_attn *a, double *sum, double *weight) {
    /* Rows too early to see anything outside sink + recent are skipped. */
    for (int t = N_SINK + RECENT; t < a->n; t++) {
        const float *p = a->P + (size_t)t * a->stride;
        double m = 0;
        for (int s = 0; s < N_SINK; s++) m += p[s];
        for (int s = t - RECENT + 1; s <= t; s++) m += p[s];
        *sum += m;
        *weight += 1;
    }
}

const hr_head_method hr_method_streaming = {
    {"streaming", "streaming (sink + recent) mass",
     "Xiao et al. 2024, DuoAttention: Efficient Long-Context LLM Inference with Retrieval and Streaming Heads",
     "mean over calibration rows t >= 20 of the attention mass on the first 4 tokens plus the last 16 "
     "positions (s > t-16)",
     "separating streaming heads (score near 1: a sink+recent KV cache loses nothing) from retrieval heads "
     "that need the full cache",
     "more streaming", false},
    LAB_INPUT_CALIB,
    streaming_attn,
    NULL,
    LAB_WORK_CALIB};
