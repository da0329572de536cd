/* pattern: structural (diagonal) vs contextual (vertical) heads. */
#include "study/heads/heads_internal.h"

#include <stdlib.h>

enum { BAND = 3, TOP_COLS = 4, MIN_ROW = 8 };

/* Indices of the TOP_COLS keys with the most attention received (by rows
 * beyond their diagonal band), into top. */
static int top_columns(const lab_attn *a, int *top) {
    double best[TOP_COLS] = {0};
    int n_top = 0;
    for (int s = 0; s < a->n; s++) {
        double col = 0;
        for (int t = s + BAND; t < a->n; t++) col += a->P[(size_t)t * a->stride + s];
        int pos = n_top < TOP_COLS ? n_top++ : TOP_COLS;
        if (pos == TOP_COLS) {
            if (col <= best[TOP_COLS - 1]) continue;
            pos = TOP_COLS - 1;
        }
        while (pos > 0 && best[pos - 1] < col) {
            best[pos] = best[pos - 1];
            top[pos] = top[pos - 1];
            pos--;
        }
        best[pos] = col;
        top[pos] = s;
    }
    return n_top;
}

static void pattern_attn(const lab_attn *a, double *sum, double *weight) {
    int top[TOP_COLS];
    int n_top = top_columns(a, top);
    for (int t = MIN_ROW; t < a->n; t++) {
        const float *p = a->P + (size_t)t * a->stride;
        double diag = 0, vert = 0;
        for (int s = t - BAND + 1; s <= t; s++) diag += p[s];
        for (int i = 0; i < n_top; i++)
            if (top[i] <= t - BAND) vert += p[top[i]];
        *sum += diag - vert;
        *weight += 1;
    }
}

const hr_head_method hr_method_pattern = {
    {"pattern", "structural (diagonal) vs contextual (vertical)",
     "Qin et al. 2025, HACK: Head-Aware KV Cache Compression for Efficient Visual Autoregressive Modeling "
     "(structural vs contextual heads)",
     "mean over calibration rows t >= 8 of [mass on the diagonal band s in (t-3, t]] - [mass on the 4 key "
     "columns receiving the most off-band attention in the window]; in [-1, 1]",
     "choosing per-head KV compression: structural heads (> 0.3) keep a local band, contextual heads (< -0.3) "
     "keep a few heavy columns",
     "more structural", false},
    LAB_INPUT_CALIB,
    pattern_attn,
    NULL,
    LAB_WORK_CALIB};
