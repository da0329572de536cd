/* headroom — what every study shares: calibration text and windows (the one
 * home of their defaults) and amounts ("25%", "10") of units to remove.
 *
 * Calibration. Studies that read activations (the head lab, neuron and
 * layer importance for pruning, K/V similarity for GQA, evaluation) feed
 * the text's tokens to the model in windows of HR_CALIB_WINDOW tokens
 * (BOS first), or the context length when that is shorter. How many tokens
 * each study reads by default:
 *   - head lab (hr_heads_run):                   HR_CALIB_HEADS_TOKENS, whole windows
 *   - prune importances, GQA similarity:        HR_CALIB_SURGERY_TOKENS
 *   - evaluation (hr_eval_run):                  HR_EVAL_TOKENS, whole windows
 *
 * Amounts. hr_parse_amount reads "P%" (a share of the eligible units,
 * rounded to the nearest unit) or "N" (a count). An amount must remove at
 * least one unit and leave at least one: "0", "0%", a percentage that
 * rounds to 0 units, 100% and more, or a count >= eligible are
 * HR_ERR_RANGE with a message saying which and what would work.
 */
#ifndef HEADROOM_STUDY_H
#define HEADROOM_STUDY_H

#include "headroom/common.h"
#include "headroom/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Macros, not an enum, so that front ends can print them in help texts. */
#define HR_CALIB_WINDOW 256          /* tokens per calibration window incl. BOS (capped at the context) */
#define HR_CALIB_HEADS_TOKENS 1024   /* head lab calibration tokens */
#define HR_CALIB_SURGERY_TOKENS 2048 /* prune neuron / layer importance, GQA K/V similarity */
#define HR_EVAL_TOKENS 16384         /* evaluation: text tokens compared by default */
#define HR_CALIB_MIN_TOKENS 8        /* a calibration text must give at least this many tokens */

/* The window a study uses in a context of n_ctx tokens: `window` when it is
 * > 0, else min(n_ctx, HR_CALIB_WINDOW). (Callers validate an explicit
 * window against n_ctx.) */
HR_API int hr_calib_window(int n_ctx, int window);

/* Tokenizes calibration text: BOS first when the tokenizer has one, at most
 * max_tokens ids (0 = all). Fewer than HR_CALIB_MIN_TOKENS ids is
 * HR_ERR_RANGE. *ids owned by the caller: hr_free(). */
HR_API hr_status hr_calib_tokens(const hr_tokenizer *tok, const char *text, size_t len, int64_t max_tokens,
                                 int32_t **ids, size_t *n_ids);

/* Parses an amount (see above) against `eligible` units; *out receives the
 * number of units. */
HR_API hr_status hr_parse_amount(const char *text, int64_t eligible, int64_t *out);

#ifdef __cplusplus
}
#endif
#endif
