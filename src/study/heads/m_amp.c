/* amp: AMP's activation-projection importance of a head. */
#include "study/heads/heads_internal.h"

#include "engine/kernels.h"
#include "model/config.h"

#include <stdlib.h>

typedef struct {
    hr_lab *lab;
    double *sum;   /* (L, H) */
    double *count; /* (L, H) */
} amp_pass;

/* ||W_o[:, head] o||_1 summed over the event's rows. */
static int amp_hook(const hr_hook_event *ev, void *ud) {
    amp_pass *a = ud;
    const hr_config *c = a->lab->c;
    int l = ev->layer, h = ev->head, hd = c->head_dim, dim = c->dim;
    size_t qd = (size_t)c->n_head[l] * hd;
    const float *wo = a->lab->model->w.layers[l].wo + (size_t)h * hd; /* column block of head h */
    double acc = 0;
    for (int t = 0; t < ev->n_tokens; t++) {
        const float *o = ev->data + (size_t)t * ev->stride;
        for (int i = 0; i < dim; i++) acc += fabsf(hr_dot(wo + (size_t)i * qd, o, hd));
    }
    a->sum[lab_idx(a->lab, l, h)] += acc;
    a->count[lab_idx(a->lab, l, h)] += ev->n_tokens;
    return 0;
}

static hr_status amp_compute(hr_lab *lab, int method, double *scores) {
    (void)method;
    hr_status need_ = hr_model_need_f32(lab->model); /* reads f32 rows (model_internal.h) */
    if (need_ != HR_OK) return need_;
    size_t lh = (size_t)lab->L * lab->H;
    amp_pass a = {lab, calloc(lh ? lh : 1, sizeof(double)), calloc(lh ? lh : 1, sizeof(double))};
    hr_status st = a.sum && a.count ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory");
    hr_context_set_hook(lab->ctx, amp_hook, HR_HOOK_HEAD_OUT, &a);
    for (int w = 0; st == HR_OK && w < lab->n_windows; w++) {
        st = hr_context_truncate(lab->ctx, 0);
        if (st == HR_OK) st = hr_forward(lab->ctx, lab->windows + (size_t)w * lab->W, lab->W, NULL, false);
        if (st == HR_OK) st = lab_progress(lab, w + 1, lab->n_windows);
    }
    hr_context_set_hook(lab->ctx, NULL, 0, NULL);
    for (int l = 0; st == HR_OK && l < lab->L; l++)
        for (int h = 0; h < lab->c->n_head[l]; h++) {
            size_t i = lab_idx(lab, l, h);
            scores[i] = a.count[i] > 0 ? a.sum[i] / a.count[i] : NAN;
        }
    free(a.sum);
    free(a.count);
    return st;
}

/* One forward per calibration window, no logits (the per-head products
 * in the hook are not counted). */
static void amp_cost(const hr_lab *lab, lab_cost *out) {
    out->work = (hr_heads_work){(double)lab->n_windows * lab->W, 0, 0, 0};
    out->items = lab->n_windows;
    out->exact = true;
}

const hr_head_method hr_method_amp = {
    {"amp", "AMP activation projection",
     "Mugnaini et al. 2025, Efficient LLMs with AMP: Attention Heads and MLP Pruning (arXiv 2504.21174)",
     "mean over calibration tokens of || W_o[:, h*hd:(h+1)*hd] . o_h ||_1, the L1 norm of the head's "
     "contribution to the residual stream (o_h = head output before W_o)",
     "a one-forward-pass importance estimate for structured pruning: heads that write little into the "
     "residual stream are cheap to remove",
     "more important", false},
    LAB_INPUT_NONE,
    NULL,
    amp_compute,
    {"amp", "windows", amp_cost}};
