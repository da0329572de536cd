/* First-order (Taylor) importance of heads and MLP neurons from
 * accumulated gradients: LLM-Pruner's vector-wise |sum_group w * dL/dw|. */
#include "engine/grad/grad_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Matrices converted for one layer's scores, freed together. */
typedef struct {
    float *buf[4]; /* (rows, cols) each: q, o, k, v of heads; gate, up, down of neurons */
    int n;
} held;

static void held_free(held *h) {
    for (int i = 0; i < h->n; i++) free(h->buf[i]);
    h->n = 0;
}

/* Values and gradient of (kind, layer): both NULL when the model has no
 * such tensor; an error when it has one whose gradient was not selected.
 * A matrix the model keeps typed (borrowed, no f32 rows) is converted for
 * this layer only into h (model_internal.h hr_model_matrix_f32). */
static hr_status pair(const hr_grad *g, hr_param_kind k, int l, const float **w, const float **gr, held *h) {
    const hr_params *P = hr_grad_owner(g);
    int i = hr_params_index(P, k, l);
    *w = *gr = NULL;
    if (i < 0) return HR_OK;
    *gr = hr_grad_tensor(g, i);
    if (!*gr) return hr_err(HR_ERR_INVALID_ARG, "Taylor scores need the gradient of %s (select it)", P->t[i].info.name);
    *w = P->t[i].data;
    if (*w) return HR_OK;
    float *owned = NULL;
    hr_status st = hr_model_matrix_f32(P->model, l, hr_param_slot(k), w, &owned);
    if (owned) h->buf[h->n++] = owned; /* at most 4 a layer: the callers below */
    return st;
}

/* sum over rows [r0, r1) x columns [c0, c1) of w * g, matrices with `cols` columns */
static double wg_block(const float *w, const float *g, size_t cols, int r0, int r1, int c0, int c1) {
    double s = 0;
    if (!w) return 0;
    for (int r = r0; r < r1; r++)
        for (int c = c0; c < c1; c++) s += (double)w[(size_t)r * cols + c] * g[(size_t)r * cols + c];
    return s;
}

static hr_status check_layer(const hr_grad *g, int l, const double *out) {
    if (!g || !out) return hr_err(HR_ERR_INVALID_ARG, "no gradient object or output given");
    const hr_config *c = hr_grad_owner(g)->c;
    if (l < 0 || l >= c->n_layers) return hr_err(HR_ERR_RANGE, "layer %d out of range (%d layers)", l, c->n_layers);
    return HR_OK;
}

hr_status hr_grad_taylor_heads(const hr_grad *g, int l, double *out) {
    hr_status st = check_layer(g, l, out);
    if (st != HR_OK) return st;
    const hr_config *c = hr_grad_owner(g)->c;
    int nh = c->n_head[l], nkv = c->n_head_kv[l], hd = c->head_dim, dim = c->dim;
    if (nh == 0) return HR_OK;
    const float *wq, *gq, *bq, *gbq, *wo, *go;
    const float *wk = NULL, *gk = NULL, *bk = NULL, *gbk = NULL, *wv = NULL, *gv = NULL, *bv = NULL, *gbv = NULL;
    bool mha = nh == nkv; /* only then does removing a head remove its KV head */
    held h = {{NULL}, 0};
    if ((st = pair(g, HR_PARAM_WQ, l, &wq, &gq, &h)) != HR_OK ||
        (st = pair(g, HR_PARAM_BQ, l, &bq, &gbq, &h)) != HR_OK ||
        (st = pair(g, HR_PARAM_WO, l, &wo, &go, &h)) != HR_OK ||
        (mha && ((st = pair(g, HR_PARAM_WK, l, &wk, &gk, &h)) != HR_OK ||
                 (st = pair(g, HR_PARAM_BK, l, &bk, &gbk, &h)) != HR_OK ||
                 (st = pair(g, HR_PARAM_WV, l, &wv, &gv, &h)) != HR_OK ||
                 (st = pair(g, HR_PARAM_BV, l, &bv, &gbv, &h)) != HR_OK))) {
        held_free(&h);
        return st;
    }
    for (int hh = 0; hh < nh; hh++) {
        int r0 = hh * hd, r1 = r0 + hd;
        double s = wg_block(wq, gq, (size_t)dim, r0, r1, 0, dim) + wg_block(bq, gbq, (size_t)nh * hd, 0, 1, r0, r1) +
                   wg_block(wo, go, (size_t)nh * hd, 0, dim, r0, r1);
        if (mha)
            s += wg_block(wk, gk, (size_t)dim, r0, r1, 0, dim) + wg_block(bk, gbk, (size_t)nkv * hd, 0, 1, r0, r1) +
                 wg_block(wv, gv, (size_t)dim, r0, r1, 0, dim) + wg_block(bv, gbv, (size_t)nkv * hd, 0, 1, r0, r1);
        out[hh] = fabs(s);
    }
    held_free(&h);
    return HR_OK;
}

hr_status hr_grad_taylor_neurons(const hr_grad *g, int l, double *out) {
    hr_status st = check_layer(g, l, out);
    if (st != HR_OK) return st;
    const hr_config *c = hr_grad_owner(g)->c;
    int ff = c->n_ff[l], dim = c->dim;
    if (ff == 0) return HR_OK;
    const float *wg, *gg, *wu, *gu, *bu, *gbu, *wd, *gd;
    held h = {{NULL}, 0};
    if ((st = pair(g, HR_PARAM_W_GATE, l, &wg, &gg, &h)) != HR_OK ||
        (st = pair(g, HR_PARAM_W_UP, l, &wu, &gu, &h)) != HR_OK ||
        (st = pair(g, HR_PARAM_B_UP, l, &bu, &gbu, &h)) != HR_OK ||
        (st = pair(g, HR_PARAM_W_DOWN, l, &wd, &gd, &h)) != HR_OK) {
        held_free(&h);
        return st;
    }
    for (int j = 0; j < ff; j++) {
        double s = wg_block(wg, gg, (size_t)dim, j, j + 1, 0, dim) + wg_block(wu, gu, (size_t)dim, j, j + 1, 0, dim) +
                   wg_block(bu, gbu, (size_t)ff, 0, 1, j, j + 1) + wg_block(wd, gd, (size_t)ff, 0, dim, j, j + 1);
        out[j] = fabs(s);
    }
    held_free(&h);
    return HR_OK;
}

hr_status hr_taylor_neuron_scores(const hr_model *m, const int32_t *windows, int n_windows, int window, int n_threads,
                                  double *scores) {
    if (!m || !windows || !scores) return hr_err(HR_ERR_INVALID_ARG, "no model, windows or output given");
    if (n_windows < 1) return hr_err(HR_ERR_RANGE, "no calibration windows (%d)", n_windows);
    const hr_config *c = hr_model_config(m);
    if (window < 2 || window > c->seq_len)
        return hr_err(HR_ERR_RANGE, "window of %d tokens must be within [2, %d]", window, c->seq_len);
    hr_params *P = NULL;
    hr_grad *g = NULL;
    hr_grad_params gp = hr_grad_default_params();
    gp.n_threads = n_threads;
    gp.max_tokens = window;
    gp.kinds = HR_GRAD_KIND(HR_PARAM_W_GATE) | HR_GRAD_KIND(HR_PARAM_W_UP) | HR_GRAD_KIND(HR_PARAM_B_UP) |
               HR_GRAD_KIND(HR_PARAM_W_DOWN);
    hr_status st = hr_params_new(m, NULL, &P);
    if (st == HR_OK) st = hr_grad_new(P, &gp, &g);
    for (int w = 0; st == HR_OK && w < n_windows; w++)
        st = hr_grad_accumulate(g, windows + (size_t)w * window, window, 1.0f / (float)n_windows, NULL);
    int ffm = hr_config_max_ff(c);
    if (st == HR_OK) memset(scores, 0, sizeof(double) * (size_t)c->n_layers * (size_t)ffm);
    for (int l = 0; st == HR_OK && l < c->n_layers; l++) st = hr_grad_taylor_neurons(g, l, scores + (size_t)l * ffm);
    hr_grad_free(g);
    hr_params_free(P);
    return st;
}
