/* grad: gradient importance of a head (Michel et al. 2019).
 *
 * Every head's output is multiplied by a gate xi_h (1 = unchanged); the
 * importance is the expected size of dL/dxi_h, the first-order change of the
 * loss when the head is scaled down. One forward and one backward pass per
 * window give all heads' gate gradients at once (the backward stops below
 * the first layer's output projection). */
#include "study/heads/heads_internal.h"

#include <stdlib.h>

static hr_status grad_compute(hr_lab *lab, int method, double *scores) {
    (void)method;
    hr_params *P = NULL;
    hr_grad *g = NULL;
    hr_status st = lab_grad_new(lab, HR_GRAD_KIND(HR_PARAM_HEAD_GATE), &P, &g);
    for (int l = 0; l < lab->L; l++)
        for (int h = 0; h < lab->c->n_head[l]; h++) scores[lab_idx(lab, l, h)] = 0;
    for (int w = 0; st == HR_OK && w < lab->n_windows; w++) {
        hr_grad_zero(g);
        st = hr_grad_accumulate(g, lab->windows + (size_t)w * lab->W, lab->W, 1.0f, NULL);
        for (int l = 0; st == HR_OK && l < lab->L; l++) {
            const float *gr = hr_grad_tensor(g, hr_params_find(P, HR_PARAM_HEAD_GATE, l, 0));
            for (int h = 0; gr && h < lab->c->n_head[l]; h++)
                scores[lab_idx(lab, l, h)] += fabs(gr[h]) / lab->n_windows;
        }
        if (st == HR_OK) st = lab_progress(lab, w + 1, lab->n_windows);
    }
    hr_grad_free(g);
    hr_params_free(P);
    return st;
}

/* One forward and one backward per calibration window (the backward is
 * counted as two forwards' work: about, not exact), every position's logits. */
static void grad_cost(const hr_lab *lab, lab_cost *out) {
    double t = (double)lab->n_windows * lab->W;
    out->work = (hr_heads_work){3 * t, 0, 3 * t, 0};
    out->items = lab->n_windows;
    out->exact = false;
    out->bound = false;
}

const hr_head_method hr_method_grad = {
    {"grad", "gradient importance",
     "Michel et al. 2019, Are Sixteen Heads Really Better than One? (NeurIPS), Sec. 4: I_h = E_x |dL(x)/dxi_h|",
     "mean over calibration windows of |dL/dxi_h|, xi_h the gate multiplying head h's attention output before "
     "W_o (1 = unchanged) and L the window's mean next-token NLL; exact gradient from one forward + backward per "
     "window (not affected by --mean-ablation)",
     "a cheap first-order proxy of ablation: all heads from one backward pass per window instead of one forward per "
     "head; the score Michel et al. prune by",
     "more important", false},
    LAB_INPUT_NONE,
    NULL,
    grad_compute,
    {"gradients", "windows", grad_cost}};
