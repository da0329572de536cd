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
#include "headroom/context.h"
#include "headroom/model.h"
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

/* ---- Heads masked without writing a model ----
 *
 * What `eval`, `ppl`, `generate` and `patch` accept instead of a pruned
 * model: gates on the context (hr_context_set_head_gates / _means).
 *   mask_heads   "L.H,L.H,..." ("L.*" = every head of layer L): gate 0
 *   mean_heads   the same list syntax: mean-ablation, the head's output
 *                replaced by its mean over calibration windows (BOS +
 *                text, HR_CALIB_WINDOW tokens, HR_CALIB_HEADS_TOKENS in
 *                all) of the text given to hr_head_mask_apply
 *   gates_text   a gates file (any gate values), one entry a line:
 *                  # comment
 *                  default 1          (gate of every head not listed)
 *                  2.3 0              (layer 2, head 3: gate 0)
 *                  4.1 0.5
 *                a head listed twice, a head outside the model, a value
 *                that is not a finite number is an error naming the line
 *   random_heads K heads drawn uniformly at random (seeded) among those no
 *                other option touches, gated to 0: the baseline a chosen
 *                set must beat
 * The options combine (a head in two of them is an error). */
typedef struct {
    const char *mask_heads;
    const char *mean_heads;
    const char *gates_text; /* contents of a gates file; NULL = none */
    const char *gates_name; /* its name in messages (default "gates") */
    int random_heads;
    uint64_t seed;
} hr_head_mask_params;

HR_API hr_head_mask_params hr_head_mask_default_params(void);

typedef struct hr_head_mask hr_head_mask;

/* Builds the gates for a model of configuration c; every error before any
 * work. *out owned: hr_head_mask_free(). */
HR_API hr_status hr_head_mask_new(const hr_config *c, const hr_head_mask_params *p, hr_head_mask **out);
HR_API void hr_head_mask_free(hr_head_mask *mk); /* NULL ok */
/* (n_layers, max_heads) gates. Borrowed. */
HR_API const float *hr_head_mask_gates(const hr_head_mask *mk);
/* Whether some head is mean-ablated (hr_head_mask_apply then needs text). */
HR_API bool hr_head_mask_needs_means(const hr_head_mask *mk);
/* Heads whose gate is not 1 (mean-ablated ones included). */
HR_API int hr_head_mask_n_heads(const hr_head_mask *mk);
/* "2.3=0 4.1=mean ..." (every head not at gate 1). *out owned: hr_free(). */
HR_API hr_status hr_head_mask_describe(const hr_head_mask *mk, char **out);
/* Sets the gates on ctx and, for mean-ablated heads, their mean outputs
 * computed with ctx's model (a context of its own) from tokens (BOS first;
 * see above). tokens may be NULL
 * when no head is mean-ablated. A NULL mask restores all gates to 1. */
HR_API hr_status hr_head_mask_apply(const hr_head_mask *mk, hr_context *ctx, const int32_t *tokens, size_t n_tokens);
/* Mean output (before its gate) of every head over windows of `window`
 * tokens of tokens (BOS first; each window is BOS + the next window-1 text
 * tokens; at most max_tokens tokens, 0 = all): means (n_layers, max_heads,
 * head_dim) floats. Clears ctx's cache, leaves its hook removed. */
HR_API hr_status hr_head_means(hr_context *ctx, const int32_t *tokens, size_t n_tokens, int window, size_t max_tokens,
                               float *means);

#ifdef __cplusplus
}
#endif
#endif
