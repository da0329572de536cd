/* Head lists and head means (internal): the one home of the "L.H,L.H"
 * syntax (masks, path patching, knockout) and of mean head outputs over
 * calibration windows (the head lab's mean-ablation, hr_head_mask_apply). */
#ifndef HR_STUDY_INTERVENE_H
#define HR_STUDY_INTERVENE_H

#include "headroom/study.h"

#include <stdint.h>

/* Parses "L.H[,L.H ...]" (commas and/or spaces; "L.*" = every head of
 * layer L) into sel (n_layers * max_heads bytes, set to 1 for each listed
 * head; not cleared first). `what` names the list in error messages. A
 * head outside the model or malformed text is HR_ERR_INVALID_ARG; *n_sel
 * (may be NULL) receives the number of heads listed. */
hr_status hr_parse_head_list(const hr_config *c, const char *list, const char *what, uint8_t *sel, int *n_sel);

/* Mean head outputs over n_windows windows of W tokens each (row-major
 * (n_windows, W)): means (n_layers, max_heads, head_dim). */
hr_status hr_head_means_of_windows(hr_context *ctx, const int32_t *windows, int n_windows, int W, float *means);

/* The head means a mask's mean-ablated heads need, computed with model m
 * (a context of its own: windows of hr_calib_window(seq_len, 0) tokens,
 * HR_CALIB_HEADS_TOKENS in all) from tokens (BOS first), every other
 * head's mean 0; *means = NULL when no head is mean-ablated. *means owned:
 * free(). */
hr_status hr_head_mask_means(const hr_head_mask *mk, const hr_model *m, int n_threads, const int32_t *tokens,
                             size_t n_tokens, float **means);

#endif
