/* Helpers shared by the evaluate module's files. */
#ifndef HR_EVALUATE_INTERNAL_H
#define HR_EVALUATE_INTERNAL_H

#include "headroom/context.h"
#include "core/internal.h"

/* Greedy continuation: clears ctx, runs prompt (n), writes gen tokens. */
hr_status hr_eval_greedy(hr_context *ctx, const int32_t *prompt, int n, int gen, int32_t *out);
#endif
