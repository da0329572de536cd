/* taylor: first-order Taylor importance of a head's weight group
 * (LLM-Pruner's vector-wise score, Ma et al. 2023; Molchanov et al. 2019).
 *
 * Setting a group of weights W to zero changes the loss by about
 * -sum_{w in W} w dL/dw; the score is its size. A head's group (see
 * hr_grad_taylor_heads): its Wq rows and bq entries, its Wo columns, and,
 * only when it is the sole query head of its KV group (multi-head
 * attention), that KV head's Wk, Wv rows and bk, bv entries — removing a
 * head of a larger GQA group leaves its keys and values in place. The
 * gradient is averaged over the calibration windows first. */
#include "study/heads/heads_internal.h"

#include <stdlib.h>

static hr_status taylor_compute(hr_lab *lab, int method, double *scores) {
    (void)method;
    hr_params *P = NULL;
    hr_grad *g = NULL;
    uint64_t kinds = HR_GRAD_KIND(HR_PARAM_WQ) | HR_GRAD_KIND(HR_PARAM_BQ) | HR_GRAD_KIND(HR_PARAM_WO) |
                     HR_GRAD_KIND(HR_PARAM_WK) | HR_GRAD_KIND(HR_PARAM_BK) | HR_GRAD_KIND(HR_PARAM_WV) |
                     HR_GRAD_KIND(HR_PARAM_BV);
    hr_status st = lab_grad_new(lab, kinds, &P, &g);
    for (int w = 0; st == HR_OK && w < lab->n_windows; w++) {
        st = hr_grad_accumulate(g, lab->windows + (size_t)w * lab->W, lab->W, 1.0f / (float)lab->n_windows, NULL);
        if (st == HR_OK) st = lab_progress(lab, w + 1, lab->n_windows);
    }
    double *row = malloc(sizeof(double) * (size_t)(lab->H ? lab->H : 1)); /* (H) one layer's scores */
    if (st == HR_OK && !row) st = hr_err(HR_ERR_NOMEM, "out of memory");
    for (int l = 0; st == HR_OK && l < lab->L; l++) {
        st = hr_grad_taylor_heads(g, l, row);
        for (int h = 0; st == HR_OK && h < lab->c->n_head[l]; h++) scores[lab_idx(lab, l, h)] = row[h];
    }
    free(row);
    hr_grad_free(g);
    hr_params_free(P);
    return st;
}

/* One forward and one backward per calibration window (the backward is
 * counted as two forwards' work: about, not exact), every position's logits. */
static void taylor_cost(const hr_lab *lab, lab_cost *out) {
    double t = (double)lab->n_windows * lab->W;
    out->work = (hr_heads_work){3 * t, 0, 3 * t, 0};
    out->items = lab->n_windows;
    out->exact = false;
    out->bound = false;
}

const hr_head_method hr_method_taylor = {
    {"taylor", "first-order Taylor (weight group)",
     "Ma et al. 2023, LLM-Pruner: On the Structural Pruning of Large Language Models (vector-wise importance); "
     "Molchanov et al. 2019, Importance Estimation for Neural Network Pruning",
     "| sum over the head's weight group of w * dL/dw |, the gradient averaged over the calibration windows; the "
     "group is the head's W_q rows and b_q entries, its W_o columns, and (only when it is the sole query head of its "
     "KV group, i.e. multi-head attention) its KV head's W_k, W_v rows and b_k, b_v entries",
     "LLM-Pruner's estimate of the loss change when the head's weights are removed; one backward pass per window "
     "for every head",
     "more important", false},
    LAB_INPUT_NONE,
    NULL,
    taylor_compute,
    {"taylor gradients", "windows", taylor_cost}};
