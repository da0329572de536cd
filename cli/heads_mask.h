/* The options that mask heads without writing a model, shared by eval,
 * ppl, generate and patch: the CLI reads the files the user names; the
 * library (hr_head_mask_*, headroom/study.h) parses, checks and applies. */
#ifndef HR_CLI_HEADS_MASK_H
#define HR_CLI_HEADS_MASK_H

#include "common.h"
#include "headroom/study.h"

#define CLI_HEAD_MASK_OPTIONS                                                                                          \
    {"mask-heads", 0, "L.H,...", "heads gated to 0 (L.* = every head of layer L)"},                                    \
        {"mean-heads", 0, "L.H,...", "heads replaced by their mean output over calibration text (mean-ablation)"},     \
        {"gates", 0, "FILE", "head gates, one 'L.H VALUE' a line ('default VALUE' for the rest, # comments)"}, {       \
        "calib", 0, "FILE", "calibration text for --mean-heads (default: the command's text)"                          \
    }

/* Builds the mask the options (and random_heads / seed) ask for; *out =
 * NULL when none. When a head is mean-ablated, the calibration text
 * (--calib, else default_text, a path that may be NULL) is tokenized into
 * *calib (BOS first; owned: hr_free). Prints the error line and returns
 * CLI_FAIL on bad input. */
int cli_head_mask(const cli_spec *spec, const cli_args *a, const hr_model *m, const hr_tokenizer *tok,
                  const char *default_text, int random_heads, uint64_t seed, hr_head_mask **out, int32_t **calib,
                  size_t *n_calib);

/* The same, applied to ctx at once (ppl, generate): the heads changed are
 * named on stderr. */
int cli_apply_head_mask(const cli_spec *spec, const cli_args *a, const hr_model *m, const hr_tokenizer *tok,
                        const char *default_text, hr_context *ctx);

#endif
