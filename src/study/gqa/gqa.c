/* MHA -> GQA conversion by mean-pooling grouped K/V projections (gqa.h). */
#include "headroom/gqa.h"
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

hr_status hr_gqa_grouping_from_name(const char *name, hr_gqa_grouping *out) {
    if (name && (strcmp(name, "neighbour") == 0 || strcmp(name, "neighbor") == 0)) *out = HR_GQA_NEIGHBOUR;
    else if (name && strcmp(name, "asym") == 0) *out = HR_GQA_ASYM;
    else return hr_err(HR_ERR_INVALID_ARG, "unknown grouping '%s' (expected neighbour or asym)", name ? name : "");
    return HR_OK;
}

const char *hr_gqa_grouping_name(hr_gqa_grouping g) { return g == HR_GQA_ASYM ? "asym" : "neighbour"; }

typedef struct {
    const hr_model *m;
    int K;       /* max KV heads: stride of sim */
    double *sum; /* (L, K, K) sums of cos(k) + cos(v) */
    int64_t rows;
    float *xn, *k, *v; /* (cap, dim), (cap, max kv_dim) x2 */
    int cap;
    float *wtmp; /* (max kv_dim, dim) a typed K or V matrix of the current layer as f32 */
    bool oom;
} sim_rec;

/* Slot s (K or V, rows x dim) of layer l as f32 rows: the model's own, or
 * converted from its typed source into r->wtmp (model_internal.h
 * hr_model_rows: one matrix at a time, no f32 copy of the model; its
 * mapped pages given back after). NULL when out of memory. */
static const float *kv_rows(sim_rec *r, int l, hr_slot s, const float *w, int rows, int dim) {
    if (w) return w;
    if (!r->wtmp) r->wtmp = malloc(sizeof(float) * (size_t)r->K * r->m->cfg.head_dim * (size_t)dim);
    const float *out = r->wtmp ? hr_model_rows(r->m, l, s, 0, rows, r->wtmp) : NULL;
    hr_model_release_rows(r->m, l, s);
    return out;
}

static double cosine(const float *a, const float *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0.0;
}

static bool sim_reserve(sim_rec *r, int n) {
    if (n <= r->cap) return true;
    const hr_config *c = &r->m->cfg;
    size_t kd = (size_t)r->K * c->head_dim;
    float *a = realloc(r->xn, sizeof(float) * (size_t)n * c->dim);
    if (a) r->xn = a;
    float *b = realloc(r->k, sizeof(float) * (size_t)n * kd);
    if (b) r->k = b;
    float *d = realloc(r->v, sizeof(float) * (size_t)n * kd);
    if (d) r->v = d;
    if (!a || !b || !d) return false;
    r->cap = n;
    return true;
}

/* y (n, rows) = x (n, dim) W^T + b */
static void project(float *y, const float *x, const float *w, const float *b, int n, int dim, int rows) {
    hr_sgemm_nt(y, rows, x, w, n, dim, rows);
    for (int t = 0; b && t < n; t++)
        for (int i = 0; i < rows; i++) y[(size_t)t * rows + i] += b[i];
}

static int sim_hook(const hr_hook_event *ev, void *ud) {
    sim_rec *r = ud;
    const hr_config *c = &r->m->cfg;
    int l = ev->layer, n = ev->n_tokens, kv = c->n_head_kv[l], hd = c->head_dim, dim = c->dim;
    if (l == 0) r->rows += n;
    if (c->n_head[l] == 0) return 0;
    if (!sim_reserve(r, n)) {
        r->oom = true;
        return 1;
    }
    const hr_layer_weights *w = &r->m->w.layers[l];
    for (int t = 0; t < n; t++) {
        const float *x = ev->data + (size_t)t * ev->stride;
        float *y = r->xn + (size_t)t * dim;
        if (c->norm == HR_NORM_LAYER) hr_layernorm(y, x, w->attn_norm, w->attn_norm_b, dim, c->norm_eps);
        else hr_rmsnorm(y, x, w->attn_norm, dim, c->norm_eps);
    }
    int kd = kv * hd;
    const float *wk = kv_rows(r, l, HR_SLOT_K, w->wk, kd, dim);
    if (wk) project(r->k, r->xn, wk, w->bk, n, dim, kd);
    const float *wv = wk ? kv_rows(r, l, HR_SLOT_V, w->wv, kd, dim) : NULL;
    if (wv) project(r->v, r->xn, wv, w->bv, n, dim, kd);
    if (!wk || !wv) {
        r->oom = true;
        return 1;
    }
    double *s = r->sum + (size_t)l * r->K * r->K;
    for (int t = 0; t < n; t++) {
        const float *kt = r->k + (size_t)t * kd, *vt = r->v + (size_t)t * kd;
        for (int a = 0; a < kv; a++)
            for (int b = a + 1; b < kv; b++) {
                double v = cosine(kt + a * hd, kt + b * hd, hd) + cosine(vt + a * hd, vt + b * hd, hd);
                s[a * r->K + b] += v;
                s[b * r->K + a] += v;
            }
    }
    return 0;
}

hr_status hr_gqa_kv_similarity(hr_context *ctx, const int32_t *tokens, size_t n_tokens, int window, float *sim) {
    const hr_model *m = hr_context_model(ctx);
    const hr_config *c = &m->cfg;
    if (n_tokens < 1) return hr_err(HR_ERR_RANGE, "no calibration tokens");
    sim_rec r = {.m = m, .K = hr_config_max_kv_heads(c)};
    size_t n = (size_t)c->n_layers * r.K * r.K;
    r.sum = calloc(n + 1, sizeof(double));
    if (!r.sum) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_progress_run run;
    hr_progress_enter(&run, NULL, NULL, 1);
    hr_status st =
        hr_calib_run_windows(ctx, tokens, n_tokens, window, sim_hook, HR_HOOK_RESID_PRE, &r, "key/value similarity");
    hr_progress_leave(&run);
    if (r.oom) st = hr_err(HR_ERR_NOMEM, "out of memory recording key/value activations");
    for (size_t i = 0; st == HR_OK && i < n; i++) sim[i] = (float)(r.sum[i] / (double)(r.rows ? r.rows : 1));
    free(r.sum);
    free(r.xn);
    free(r.k);
    free(r.v);
    free(r.wtmp);
    return st;
}

/* Greedy even-size grouping of one layer by similarity (see gqa.h). */
static void group_asym(const float *sim, int K, int stride, int n_kv, int *groups) {
    int size = K / n_kv;
    for (int i = 0; i < K; i++) groups[i] = -1;
    for (int j = 0; j < n_kv; j++) {
        int seed = 0;
        while (groups[seed] >= 0) seed++;
        groups[seed] = j;
        for (int have = 1; have < size; have++) {
            int best = -1;
            double best_s = -INFINITY;
            for (int b = 0; b < K; b++) {
                if (groups[b] >= 0) continue;
                double s = 0;
                for (int a = 0; a < K; a++)
                    if (groups[a] == j) s += sim[a * stride + b];
                if (s > best_s) best_s = s, best = b;
            }
            groups[best] = j;
        }
    }
}

hr_status hr_gqa_groups(const hr_model *m, int n_kv, hr_gqa_grouping g, const float *sim, int *groups) {
    const hr_config *c = &m->cfg;
    int K = hr_config_max_kv_heads(c);
    if (n_kv < 1) return hr_err(HR_ERR_INVALID_ARG, "the number of KV heads must be at least 1");
    if (g == HR_GQA_ASYM && !sim) return hr_err(HR_ERR_INVALID_ARG, "asym grouping needs KV similarities");
    for (int l = 0; l < c->n_layers; l++) {
        int kv = c->n_head_kv[l];
        int *gl = groups + (size_t)l * K;
        for (int i = 0; i < K; i++) gl[i] = 0;
        if (kv == 0) continue;
        if (kv % n_kv != 0)
            return hr_err(HR_ERR_INVALID_ARG, "layer %d has %d KV heads, which cannot be merged into %d groups", l, kv,
                          n_kv);
        if (g == HR_GQA_ASYM) group_asym(sim + (size_t)l * K * K, kv, K, n_kv, gl);
        else
            for (int i = 0; i < kv; i++) gl[i] = i / (kv / n_kv);
    }
    return HR_OK;
}

/* Checks that every new group of layer l has kv / n_kv members. */
static hr_status check_groups(const int *gl, int kv, int n_kv, int l) {
    int count[1024] = {0};
    for (int i = 0; i < kv; i++) {
        if (gl[i] < 0 || gl[i] >= n_kv)
            return hr_err(HR_ERR_INVALID_ARG, "layer %d: KV head %d has group %d, outside 0..%d", l, i, gl[i],
                          n_kv - 1);
        count[gl[i]]++;
    }
    for (int j = 0; j < n_kv; j++)
        if (count[j] != kv / n_kv)
            return hr_err(HR_ERR_INVALID_ARG, "layer %d: group %d has %d KV heads, expected %d", l, j, count[j],
                          kv / n_kv);
    return HR_OK;
}

/* Mean of the member heads' rows: dst (n_kv*hd, cols) from slot s of
 * layer l of m (kv*hd, cols; a bias: one row of kv*hd), read row by row
 * through hr_model_rows (the model's f32 rows, or its typed source
 * converted: the floats hr_model_need_f32 would make). f32 result; NULL
 * when m has no such weight or out of memory. */
static float *merge_rows(hr_model *p, const hr_model *m, int l, hr_slot s, const int *gl, int kv, int n_kv, int hd,
                         int cols) {
    int64_t rows_of, cols_of;
    hr_slot_shape(&m->cfg, l, s, &rows_of, &cols_of);
    bool bias = rows_of == 1;                             /* (1, kv*hd): head a's values are columns a*hd .. */
    float *row = malloc(sizeof(float) * (size_t)cols_of); // (cols_of) one row as f32
    const float *r0 = row ? hr_model_rows(m, l, s, 0, 1, row) : NULL;
    float *dst = r0 ? hr_model_alloc_owned(p, (size_t)n_kv * hd * cols) : NULL;
    if (!dst) {
        free(row);
        return NULL;
    }
    memset(dst, 0, sizeof(float) * (size_t)n_kv * hd * cols);
    float inv = (float)n_kv / (float)kv;
    for (int a = 0; a < kv; a++)
        for (int d = 0; d < hd; d++) {
            const float *src = bias ? r0 + (size_t)a * hd + d : hr_model_rows(m, l, s, a * hd + d, 1, row);
            float *o = dst + ((size_t)gl[a] * hd + d) * cols;
            for (int i = 0; i < cols; i++) o[i] += src[i] * inv;
        }
    hr_model_release_rows(m, l, s);
    free(row);
    return dst;
}

/* Matrices are copied or cut in their own dtype where the model keeps
 * them typed (hr_surgery_rows_any / _cols_any: no f32 copy); the merged
 * K / V rows are f32 (averages), written in the kept dtype by the writers. */
static hr_status convert_layer(hr_model *p, const hr_model *m, int l, int n_kv, const int *gl) {
    const hr_config *c = &m->cfg;
    const hr_layer_weights *w = &m->w.layers[l];
    hr_layer_weights *o = &p->w.layers[l];
    int kv = c->n_head_kv[l], nh = c->n_head[l], hd = c->head_dim, dim = c->dim, g = nh / kv, ff = c->n_ff[l];
    bool ok = true;
    memset(o, 0, sizeof *o);
    o->attn_norm = hr_surgery_copy(p, w->attn_norm, (size_t)dim, &ok);
    o->attn_norm_b = hr_surgery_copy(p, w->attn_norm_b, (size_t)dim, &ok);
    o->bo = hr_surgery_copy(p, w->bo, (size_t)dim, &ok);
    o->ffn_norm = hr_surgery_copy(p, w->ffn_norm, (size_t)dim, &ok);
    o->ffn_norm_b = hr_surgery_copy(p, w->ffn_norm_b, (size_t)dim, &ok);
    o->w_gate = ff ? hr_surgery_rows_any(p, l, m, l, HR_SLOT_GATE, dim, NULL, ff, &ok) : NULL;
    o->w_up = ff ? hr_surgery_rows_any(p, l, m, l, HR_SLOT_UP, dim, NULL, ff, &ok) : NULL;
    o->b_up = hr_surgery_copy(p, w->b_up, (size_t)ff, &ok);
    o->w_down = ff ? hr_surgery_rows_any(p, l, m, l, HR_SLOT_DOWN, ff, NULL, dim, &ok) : NULL;
    o->b_down = hr_surgery_copy(p, w->b_down, (size_t)dim, &ok);
    if (nh == 0) return ok ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory");
    if (kv == n_kv) {
        size_t q = (size_t)nh * hd, k = (size_t)kv * hd;
        o->wq = hr_surgery_rows_any(p, l, m, l, HR_SLOT_Q, dim, NULL, (int)q, &ok);
        o->bq = hr_surgery_copy(p, w->bq, q, &ok);
        o->wk = hr_surgery_rows_any(p, l, m, l, HR_SLOT_K, dim, NULL, (int)k, &ok);
        o->bk = hr_surgery_copy(p, w->bk, k, &ok);
        o->wv = hr_surgery_rows_any(p, l, m, l, HR_SLOT_V, dim, NULL, (int)k, &ok);
        o->bv = hr_surgery_copy(p, w->bv, k, &ok);
        o->wo = hr_surgery_rows_any(p, l, m, l, HR_SLOT_O, (int)q, NULL, dim, &ok);
        return ok ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory");
    }
    hr_status st = check_groups(gl, kv, n_kv, l);
    if (st != HR_OK) return st;
    /* query rows in new-group order: group j's members ascending, each with its g heads */
    int *rows = malloc(sizeof(int) * (size_t)nh * hd);
    if (!rows) return hr_err(HR_ERR_NOMEM, "out of memory");
    int r = 0;
    for (int j = 0; j < n_kv; j++)
        for (int a = 0; a < kv; a++)
            if (gl[a] == j)
                for (int i = 0; i < g * hd; i++) rows[r++] = a * g * hd + i;
    o->wq = hr_surgery_rows_any(p, l, m, l, HR_SLOT_Q, dim, rows, nh * hd, &ok);
    o->bq = hr_surgery_rows(p, w->bq, 1, rows, nh * hd, &ok);
    o->wo = hr_surgery_cols_any(p, l, m, l, HR_SLOT_O, dim, nh * hd, rows, nh * hd, &ok);
    free(rows);
    o->wk = merge_rows(p, m, l, HR_SLOT_K, gl, kv, n_kv, hd, dim);
    o->wv = merge_rows(p, m, l, HR_SLOT_V, gl, kv, n_kv, hd, dim);
    o->bk = w->bk ? merge_rows(p, m, l, HR_SLOT_K_B, gl, kv, n_kv, hd, 1) : NULL;
    o->bv = w->bv ? merge_rows(p, m, l, HR_SLOT_V_B, gl, kv, n_kv, hd, 1) : NULL;
    ok = ok && o->wk && o->wv && (!w->bk || o->bk) && (!w->bv || o->bv);
    return ok ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory");
}

hr_status hr_gqa_convert(const hr_model *m, int n_kv, const int *groups, hr_model **out) {
    *out = NULL;
    const hr_config *c = &m->cfg;
    int K = hr_config_max_kv_heads(c);
    if (n_kv < 1) return hr_err(HR_ERR_INVALID_ARG, "the number of KV heads must be at least 1");
    hr_config nc = *c;
    for (int l = 0; l < c->n_layers; l++) {
        int kv = c->n_head_kv[l];
        if (kv == 0) continue;
        if (kv % n_kv != 0)
            return hr_err(HR_ERR_INVALID_ARG, "layer %d has %d KV heads, which cannot be merged into %d groups", l, kv,
                          n_kv);
        nc.n_head_kv[l] = n_kv;
    }
    hr_model *p = NULL;
    hr_status st = hr_surgery_new_model(m, &nc, &p);
    for (int l = 0; st == HR_OK && l < c->n_layers; l++) st = convert_layer(p, m, l, n_kv, groups + (size_t)l * K);
    if (st == HR_OK) st = hr_model_own_panels(p); /* one copy: the panels the forward reads */
    if (st != HR_OK) {
        hr_model_free(p);
        return st;
    }
    *out = p;
    return HR_OK;
}
