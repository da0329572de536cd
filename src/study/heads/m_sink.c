/* sink: attention mass parked on the first token. */
#include "study/heads/heads_internal.h"

static void sink_attn(const lab_attn *a, double *sum, double *weight) {
    for (int t = 1; t < a->n; t++) {
        *sum += a->P[(size_t)t * a->stride];
        *weight += 1;
    }
}

const hr_head_method hr_method_sink = {
    {"sink", "attention sink",
     "Xiao et al. 2023, Efficient Streaming Language Models with Attention Sinks (StreamingLLM)",
     "mean over calibration query rows t >= 1 of p(t, 0), the weight on the window's first token (BOS)",
     "finding heads that dump attention on the first token (no-op heads); they must keep the sink token in "
     "KV-cache eviction and are often cheap to remove",
     "more sink", false},
    LAB_INPUT_CALIB,
    sink_attn,
    NULL,
    LAB_WORK_CALIB};
