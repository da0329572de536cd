/* amp: AMP's activation-projection importance of a head. */
#include "study/heads/heads_internal.h"

#include "engine/blas.h"
#include "model/config.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    hr_lab *lab;
    double *sum;     /* (L, H) */
    double *count;   /* (L, H) */
    int wo_layer;    /* the layer wo holds, -1 before the first */
    const float *wo; /* (dim, n_head * head_dim) that layer's W_o as f32 rows */
    float *wo_owned; /* wo converted from a typed source (one matrix), or NULL */
    hr_held_err err; /* a failure inside the hook */
    float *y;        /* (n_tokens, dim) W_o^h o_t of one event, then its operands */
    size_t cap;      /* floats y holds */
} amp_pass;

/* ||W_o[:, head] o||_1 summed over the event's rows. A typed model's W_o
 * is converted one layer at a time (model_internal.h hr_model_matrix_f32),
 * never the whole model. */
static int amp_hook(const hr_hook_event *ev, void *ud) {
    amp_pass *a = ud;
    const hr_config *c = a->lab->c;
    int l = ev->layer, h = ev->head, hd = c->head_dim, dim = c->dim;
    size_t qd = (size_t)c->n_head[l] * hd;
    if (a->wo_layer != l) {
        free(a->wo_owned);
        a->wo_layer = l;
        hr_status st = hr_model_matrix_f32(a->lab->model, l, HR_SLOT_O, &a->wo, &a->wo_owned);
        if (st != HR_OK) return hr_held_err_keep(&a->err, st);
    }
    const float *wo = a->wo + (size_t)h * hd; /* column block of head h */
    int n = ev->n_tokens;
    size_t ny = (size_t)n * dim, need = ny + (size_t)n * hd + (size_t)dim * hd;
    if (need > a->cap) {
        free(a->y);
        a->cap = 0;
        if (!(a->y = malloc(sizeof(float) * need)))
            return hr_held_err_keep(&a->err, hr_err(HR_ERR_NOMEM, "out of memory (amp's head products)"));
        a->cap = need;
    }
    /* y (n, dim) = O_h (n, hd) · W_o^h (dim, hd)^T as one matrix product
     * over contiguous copies of the head's outputs and column block */
    float *ob = a->y + ny, *wb = ob + (size_t)n * hd; // (n, hd), (dim, hd)
    for (int t = 0; t < n; t++) memcpy(ob + (size_t)t * hd, ev->data + (size_t)t * ev->stride, sizeof(float) * hd);
    for (int i = 0; i < dim; i++) memcpy(wb + (size_t)i * hd, wo + (size_t)i * qd, sizeof(float) * hd);
    hr_sgemm_nt(a->y, dim, ob, wb, n, hd, dim);
    double acc = 0;
    for (size_t k = 0; k < ny; k++) acc += fabsf(a->y[k]);
    a->sum[lab_idx(a->lab, l, h)] += acc;
    a->count[lab_idx(a->lab, l, h)] += ev->n_tokens;
    return 0;
}

static hr_status amp_compute(hr_lab *lab, int method, double *scores) {
    (void)method;
    size_t lh = (size_t)lab->L * lab->H;
    amp_pass a = {lab,
                  calloc(lh ? lh : 1, sizeof(double)),
                  calloc(lh ? lh : 1, sizeof(double)),
                  -1,
                  NULL,
                  NULL,
                  {HR_OK, ""},
                  NULL,
                  0};
    hr_status st = a.sum && a.count ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory");
    hr_context_set_hook(lab->ctx, amp_hook, HR_HOOK_HEAD_OUT, &a);
    for (int w = 0; st == HR_OK && w < lab->n_windows; w++) {
        st = hr_context_truncate(lab->ctx, 0);
        if (st == HR_OK) st = hr_forward(lab->ctx, lab->windows + (size_t)w * lab->W, lab->W, NULL, false);
        st = hr_held_err_raise(&a.err, st);
        if (st == HR_OK) st = lab_progress(lab, w + 1, lab->n_windows);
    }
    hr_context_set_hook(lab->ctx, NULL, 0, NULL);
    free(a.wo_owned);
    free(a.y);
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
