/* What the studies that read activations share (study/calib.c). */
#ifndef HR_STUDY_CALIB_INTERNAL_H
#define HR_STUDY_CALIB_INTERNAL_H

#include "headroom/context.h"

#include <stddef.h>
#include <stdint.h>

/* Runs tokens through ctx in consecutive windows of `window` tokens (0 =
 * hr_calib_window(n_ctx, 0); more than the context's n_ctx is
 * HR_ERR_RANGE), each from an empty cache, with `hook` installed on `mask`
 * (removed afterwards; the cache is left empty). Reports the progress
 * phase `phase` with one item per window (core/progress.h); the caller
 * has entered a progress run. */
hr_status hr_calib_run_windows(hr_context *ctx, const int32_t *tokens, size_t n_tokens, int window, hr_hook_fn hook,
                               uint32_t mask, void *user_data, const char *phase);

#endif
