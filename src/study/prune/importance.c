/* Calibration statistics for the planner: AMP-style neuron importance and
 * layer / sublayer importance, recorded with forward hooks. */
#include "headroom/prune.h"
#include "engine/blas.h"
#include "headroom/study.h"
#include "engine/kernels.h"
#include "core/progress.h"
#include "study/calib_internal.h"
#include "study/prune/surgery_internal.h"
#include "model/config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const hr_model *m;
    int dim, cap;            /* rows the buffers hold */
    float *h;                /* (cap, dim) residual entering the MLP */
    float *x;                /* (cap, dim) residual entering the block */
    float *a;                /* (cap, dim) attention output */
    float *xn;               /* (cap, dim) normed MLP input */
    float *gate, *up;        /* (cap, max_ff) */
    double **acc;            /* per layer (n_ff) sums of |act| */
    double *blk, *att, *mlp; /* (L) sums of 1 - cos */
    int64_t n_rows;          /* tokens accumulated (per layer) */
    hr_held_err err;         /* a failure inside the hook */
} calib;

static bool ensure_rows(calib *c, int n) {
    if (n <= c->cap) return true;
    int mff = hr_config_max_ff(&c->m->cfg);
    size_t d = (size_t)n * c->dim, f = (size_t)n * (mff > 0 ? mff : 1);
    float *p[6] = {realloc(c->h, d * 4), NULL, NULL, NULL, NULL, NULL};
    if (p[0]) c->h = p[0];
    p[1] = realloc(c->x, d * 4);
    if (p[1]) c->x = p[1];
    p[2] = realloc(c->a, d * 4);
    if (p[2]) c->a = p[2];
    p[3] = realloc(c->xn, d * 4);
    if (p[3]) c->xn = p[3];
    p[4] = realloc(c->gate, f * 4);
    if (p[4]) c->gate = p[4];
    p[5] = realloc(c->up, f * 4);
    if (p[5]) c->up = p[5];
    for (int i = 0; i < 6; i++)
        if (!p[i]) return false;
    c->cap = n;
    return true;
}

static double one_minus_cos(const float *a, const float *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return aa > 0 && bb > 0 ? 1.0 - ab / sqrt(aa * bb) : 0.0;
}

/* out (n, n_ff) = xn · W^T for MLP matrix slot s of layer l: the model's
 * f32 rows, or the matrix converted for this product when the model keeps
 * it typed (one matrix at a time). false (c->err) when that fails. */
static bool mlp_product(calib *c, int l, hr_slot s, float *out, int n) {
    int ff = c->m->cfg.n_ff[l];
    float *owned = NULL;
    const float *w = NULL;
    hr_status st = hr_model_matrix_f32(c->m, l, s, &w, &owned);
    if (st != HR_OK) {
        hr_held_err_keep(&c->err, st);
        return false;
    }
    hr_sgemm_nt(out, ff, c->xn, w, n, c->dim, ff);
    free(owned);
    return true;
}

/* |act| of every neuron for the n rows of h, added to acc. */
static void accumulate_neurons(calib *c, int l, int n) {
    const hr_config *cf = &c->m->cfg;
    const hr_layer_weights *w = &c->m->w.layers[l];
    int dim = c->dim, ff = cf->n_ff[l];
    if (!ff) return;
    for (int t = 0; t < n; t++) {
        const float *hr = c->h + (size_t)t * dim;
        float *y = c->xn + (size_t)t * dim;
        if (cf->norm == HR_NORM_LAYER) hr_layernorm(y, hr, w->ffn_norm, w->ffn_norm_b, dim, cf->norm_eps);
        else hr_rmsnorm(y, hr, w->ffn_norm, dim, cf->norm_eps);
    }
    if (!mlp_product(c, l, HR_SLOT_UP, c->up, n)) return;
    if (cf->mlp == HR_MLP_SWIGLU) {
        if (!mlp_product(c, l, HR_SLOT_GATE, c->gate, n)) return;
        hr_swiglu(c->up, c->gate, c->up, n * ff);
    } else {
        for (int t = 0; t < n && w->b_up; t++)
            for (int j = 0; j < ff; j++) c->up[(size_t)t * ff + j] += w->b_up[j];
        hr_gelu_tanh(c->up, n * ff);
    }
    for (int t = 0; t < n; t++)
        for (int j = 0; j < ff; j++) c->acc[l][j] += fabsf(c->up[(size_t)t * ff + j]);
}

static int calib_hook(const hr_hook_event *ev, void *ud) {
    calib *c = ud;
    int n = ev->n_tokens, dim = c->dim, l = ev->layer;
    if (!ensure_rows(c, n))
        return hr_held_err_keep(&c->err, hr_err(HR_ERR_NOMEM, "out of memory recording calibration activations"));
    for (int t = 0; t < n; t++) {
        const float *src = ev->data + (size_t)t * ev->stride;
        float *x = c->x + (size_t)t * dim, *a = c->a + (size_t)t * dim, *h = c->h + (size_t)t * dim;
        if (ev->point == HR_HOOK_RESID_PRE) {
            memcpy(x, src, sizeof(float) * dim);
            memcpy(h, src, sizeof(float) * dim);
            memset(a, 0, sizeof(float) * dim);
        } else if (ev->point == HR_HOOK_ATTN_OUT) {
            memcpy(a, src, sizeof(float) * dim);
            for (int i = 0; i < dim; i++) h[i] = x[i] + src[i];
        } else if (ev->point == HR_HOOK_RESID_POST) {
            if (c->blk) c->blk[l] += one_minus_cos(x, src, dim);
            if (c->att) c->att[l] += one_minus_cos(x, h, dim);
            if (c->mlp) c->mlp[l] += one_minus_cos(h, src, dim);
        }
    }
    if (ev->point == HR_HOOK_MLP_OUT && c->acc) accumulate_neurons(c, l, n);
    if (c->err.st != HR_OK) return 1;
    if (ev->point == HR_HOOK_RESID_POST && l == 0) c->n_rows += n;
    return 0;
}

static hr_status run_windows(hr_context *ctx, calib *c, const int32_t *tokens, size_t n_tokens, int window,
                             const char *phase) {
    if (n_tokens < 2) return hr_err(HR_ERR_RANGE, "need at least 2 calibration tokens");
    uint32_t mask = HR_HOOK_RESID_PRE | HR_HOOK_ATTN_OUT | HR_HOOK_RESID_POST | HR_HOOK_MLP_OUT;
    hr_progress_run run;
    hr_progress_enter(&run, NULL, NULL, 1);
    hr_status st = hr_calib_run_windows(ctx, tokens, n_tokens, window, calib_hook, mask, c, phase);
    hr_progress_leave(&run);
    return hr_held_err_raise(&c->err, st);
}

static void calib_free(calib *c) {
    free(c->h);
    free(c->x);
    free(c->a);
    free(c->xn);
    free(c->gate);
    free(c->up);
    if (c->acc)
        for (int l = 0; l < c->m->cfg.n_layers; l++) free(c->acc[l]);
    free(c->acc);
    free(c->blk);
    free(c->att);
    free(c->mlp);
}

hr_status hr_prune_neuron_importance(hr_context *ctx, const int32_t *tokens, size_t n_tokens, int window,
                                     float *const *out) {
    const hr_model *m = hr_context_model(ctx);
    const hr_config *cf = &m->cfg;
    calib c = {.m = m, .dim = cf->dim};
    c.acc = calloc((size_t)cf->n_layers, sizeof(double *));
    bool ok = c.acc != NULL;
    for (int l = 0; ok && l < cf->n_layers; l++) ok = (c.acc[l] = calloc((size_t)cf->n_ff[l] + 1, sizeof(double)));
    hr_status st = ok ? run_windows(ctx, &c, tokens, n_tokens, window, "neuron importance")
                      : hr_err(HR_ERR_NOMEM, "out of memory");
    /* column norms of W_down, its rows read one at a time (converted from
     * a typed source when the model keeps it typed); each column's sum
     * still runs over the rows in order */
    double *norm = NULL;
    float *row = NULL;
    for (int l = 0; st == HR_OK && l < cf->n_layers; l++) {
        int ff = cf->n_ff[l];
        free(norm), free(row);
        norm = calloc((size_t)ff + 1, sizeof(double));  // (ff)
        row = malloc(sizeof(float) * ((size_t)ff + 1)); // (ff) one row of W_down
        if (!norm || !row) {
            st = hr_err(HR_ERR_NOMEM, "out of memory");
            break;
        }
        for (int i = 0; i < cf->dim && ff; i++) {
            const float *wd = hr_model_rows(m, l, HR_SLOT_DOWN, i, 1, row);
            for (int j = 0; j < ff; j++) norm[j] += (double)wd[j] * wd[j];
        }
        hr_model_release_rows(m, l, HR_SLOT_DOWN);
        for (int j = 0; j < ff; j++)
            out[l][j] = (float)(c.acc[l][j] / (double)(c.n_rows ? c.n_rows : 1) * sqrt(norm[j]));
    }
    free(norm), free(row);
    calib_free(&c);
    return st;
}

hr_status hr_prune_layer_importance(hr_context *ctx, const int32_t *tokens, size_t n_tokens, int window, float *block,
                                    float *attn, float *mlp) {
    const hr_model *m = hr_context_model(ctx);
    int L = m->cfg.n_layers;
    calib c = {.m = m, .dim = m->cfg.dim};
    c.blk = calloc((size_t)L, sizeof(double));
    c.att = calloc((size_t)L, sizeof(double));
    c.mlp = calloc((size_t)L, sizeof(double));
    hr_status st = c.blk && c.att && c.mlp ? run_windows(ctx, &c, tokens, n_tokens, window, "layer importance")
                                           : hr_err(HR_ERR_NOMEM, "out of memory");
    double n = (double)(c.n_rows ? c.n_rows : 1);
    for (int l = 0; st == HR_OK && l < L; l++) {
        if (block) block[l] = (float)(c.blk[l] / n);
        if (attn) attn[l] = (float)(c.att[l] / n);
        if (mlp) mlp[l] = (float)(c.mlp[l] / n);
    }
    calib_free(&c);
    return st;
}
