/* Helpers shared by the evaluate module's files. */
#ifndef HR_EVALUATE_INTERNAL_H
#define HR_EVALUATE_INTERNAL_H

#include "headroom/context.h"
#include "core/internal.h"

/* splitmix64 step. */
uint64_t hr_eval_rng(uint64_t *state);
int32_t hr_eval_argmax(const float *x, int n);
/* Greedy continuation: clears ctx, runs prompt (n), writes gen tokens. */
hr_status hr_eval_greedy(hr_context *ctx, const int32_t *prompt, int n, int gen, int32_t *out);
#endif
