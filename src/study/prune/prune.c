/* Pruning specs and the surgery that applies them (see prune.h). */
#include "headroom/prune.h"
#include "study/prune/surgery_internal.h"
#include "model/config.h"

#include <stdlib.h>
#include <string.h>

hr_status hr_prune_spec_new(const hr_model *m, hr_prune_spec **out) {
    *out = NULL;
    const hr_config *c = &m->cfg;
    hr_prune_spec *s = calloc(1, sizeof *s);
    if (!s) return hr_err(HR_ERR_NOMEM, "out of memory");
    s->n_layers = c->n_layers;
    for (int l = 0; l < c->n_layers; l++) {
        s->n_head[l] = c->n_head[l];
        s->n_ff[l] = c->n_ff[l];
        s->keep_head[l] = malloc((size_t)c->n_head[l] + 1);
        s->keep_ff[l] = malloc((size_t)c->n_ff[l] + 1);
        if (!s->keep_head[l] || !s->keep_ff[l]) {
            hr_prune_spec_free(s);
            return hr_err(HR_ERR_NOMEM, "out of memory");
        }
        memset(s->keep_head[l], 1, (size_t)c->n_head[l]);
        memset(s->keep_ff[l], 1, (size_t)c->n_ff[l]);
    }
    *out = s;
    return HR_OK;
}

void hr_prune_spec_free(hr_prune_spec *s) {
    if (!s) return;
    for (int l = 0; l < HR_MAX_LAYERS; l++) {
        free(s->keep_head[l]);
        free(s->keep_ff[l]);
    }
    free(s);
}

static bool unit_ok(const hr_prune_spec *s, int layer, int unit, const int *sizes) {
    return s && layer >= 0 && layer < s->n_layers && unit >= 0 && unit < sizes[layer];
}

hr_status hr_prune_spec_set_head(hr_prune_spec *s, int layer, int head, bool keep) {
    if (!unit_ok(s, layer, head, s ? s->n_head : NULL))
        return hr_err(HR_ERR_RANGE, "head %d.%d is not in the model", layer, head);
    s->keep_head[layer][head] = keep;
    return HR_OK;
}

hr_status hr_prune_spec_set_neuron(hr_prune_spec *s, int layer, int neuron, bool keep) {
    if (!unit_ok(s, layer, neuron, s ? s->n_ff : NULL))
        return hr_err(HR_ERR_RANGE, "neuron %d of layer %d is not in the model", neuron, layer);
    s->keep_ff[layer][neuron] = keep;
    return HR_OK;
}

bool hr_prune_spec_keeps_head(const hr_prune_spec *s, int layer, int head) {
    return unit_ok(s, layer, head, s ? s->n_head : NULL) && s->keep_head[layer][head] &&
           !hr_prune_spec_dropped(s, layer, HR_PRUNE_ATTN);
}

bool hr_prune_spec_keeps_neuron(const hr_prune_spec *s, int layer, int neuron) {
    return unit_ok(s, layer, neuron, s ? s->n_ff : NULL) && s->keep_ff[layer][neuron] &&
           !hr_prune_spec_dropped(s, layer, HR_PRUNE_MLP);
}

hr_status hr_prune_spec_set_dropped(hr_prune_spec *s, int layer, hr_prune_part part, bool drop) {
    if (!s || layer < 0 || layer >= s->n_layers) return hr_err(HR_ERR_RANGE, "layer %d is not in the model", layer);
    switch (part) {
    case HR_PRUNE_ATTN: s->drop_attn[layer] = drop; return HR_OK;
    case HR_PRUNE_MLP: s->drop_mlp[layer] = drop; return HR_OK;
    case HR_PRUNE_BLOCK: s->drop_block[layer] = drop; return HR_OK;
    }
    return hr_err(HR_ERR_INVALID_ARG, "unknown prune part %d", (int)part);
}

bool hr_prune_spec_dropped(const hr_prune_spec *s, int layer, hr_prune_part part) {
    if (!s || layer < 0 || layer >= s->n_layers) return false;
    if (s->drop_block[layer]) return true;
    return part == HR_PRUNE_ATTN ? s->drop_attn[layer] : part == HR_PRUNE_MLP ? s->drop_mlp[layer] : false;
}

void hr_prune_spec_set_uneven_duplicate(hr_prune_spec *s, bool on) {
    if (s) s->uneven_duplicate = on;
}

bool hr_prune_spec_uneven_duplicate(const hr_prune_spec *s) { return s && s->uneven_duplicate; }

static int gcd(int a, int b) {
    while (b) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Kept query heads per KV group of layer l: counts (n_kv). */
static void group_counts(const hr_config *c, const hr_prune_spec *s, int l, int *counts) {
    int g = c->n_head[l] / c->n_head_kv[l];
    for (int k = 0; k < c->n_head_kv[l]; k++) {
        counts[k] = 0;
        for (int i = 0; i < g; i++) counts[k] += s->keep_head[l][k * g + i] != 0;
    }
}

static hr_status check_attention(const hr_config *c, const hr_prune_spec *s, int l, hr_prune_layer_result *r) {
    int nkv = c->n_head_kv[l], counts[1024];
    group_counts(c, s, l, counts);
    int kept = 0, distinct = 0, gg = 0, first = -1;
    bool even = true;
    for (int k = 0; k < nkv; k++) {
        if (!counts[k]) continue;
        kept += counts[k];
        distinct++;
        gg = gcd(gg, counts[k]);
        if (first < 0) first = counts[k];
        else if (counts[k] != first) even = false;
    }
    if (kept == 0)
        return hr_err(HR_ERR_INVALID_ARG, "layer %d would keep no attention head; drop its attention explicitly", l);
    if (!even && !s->uneven_duplicate)
        return hr_err(HR_ERR_INVALID_ARG,
                      "layer %d: its KV groups would keep different numbers of query heads; keep them even or "
                      "allow duplicated K/V rows (uneven_duplicate)",
                      l);
    r->n_head = kept;
    r->n_kv_distinct = distinct;
    r->n_head_kv = even ? distinct : kept / gg;
    return HR_OK;
}

hr_status hr_prune_check(const hr_model *m, const hr_prune_spec *s, hr_prune_layer_result *res) {
    const hr_config *c = &m->cfg;
    if (!s || s->n_layers != c->n_layers)
        return hr_err(HR_ERR_INVALID_ARG, "the pruning spec was made for %d layers, the model has %d",
                      s ? s->n_layers : 0, c->n_layers);
    int blocks = 0;
    for (int l = 0; l < c->n_layers; l++) {
        hr_prune_layer_result r = {0, 0, 0, 0};
        if (!s->drop_block[l]) {
            blocks++;
            if (!s->drop_attn[l] && c->n_head[l] > 0) {
                hr_status st = check_attention(c, s, l, &r);
                if (st != HR_OK) return st;
            }
            if (!s->drop_mlp[l] && c->n_ff[l] > 0) {
                for (int j = 0; j < c->n_ff[l]; j++) r.n_ff += s->keep_ff[l][j] != 0;
                if (r.n_ff == 0)
                    return hr_err(HR_ERR_INVALID_ARG, "layer %d would keep no MLP neuron; drop its MLP explicitly", l);
            }
        }
        if (res) res[l] = r;
    }
    if (blocks == 0) return hr_err(HR_ERR_INVALID_ARG, "the pruning would remove every block of the model");
    return HR_OK;
}

/* Row indices (n * hd) of the heads in list (n). */
static int *head_rows(const int *list, int n, int hd) {
    int *rows = malloc(sizeof(int) * ((size_t)n * hd + 1));
    if (!rows) return NULL;
    for (int i = 0; i < n; i++)
        for (int d = 0; d < hd; d++) rows[i * hd + d] = list[i] * hd + d;
    return rows;
}

/* Kept query heads (r->n_head) and the base KV head of each new KV head
 * (r->n_head_kv), duplicates included. */
static void attention_lists(const hr_config *c, const hr_prune_spec *s, int l, const hr_prune_layer_result *r, int *q,
                            int *kv) {
    int nq = 0, g = c->n_head[l] / c->n_head_kv[l], per = r->n_head / r->n_head_kv;
    for (int h = 0; h < c->n_head[l]; h++)
        if (s->keep_head[l][h]) q[nq++] = h;
    /* every `per` consecutive kept queries share one new KV head */
    for (int i = 0; i < r->n_head_kv; i++) kv[i] = q[i * per] / g;
}

/* Layer l of src becomes layer ol of dst (weights o); matrices kept typed
 * in src stay typed (hr_surgery_rows_any / hr_surgery_cols_any). */
static bool copy_attention(hr_model *dst, const hr_model *src, const hr_prune_spec *s, int l,
                           const hr_prune_layer_result *r, int ol, hr_layer_weights *o) {
    const hr_config *c = &src->cfg;
    const hr_layer_weights *w = &src->w.layers[l];
    int hd = c->head_dim, dim = c->dim;
    int *q = malloc(sizeof(int) * ((size_t)c->n_head[l] + 1)), *kv = malloc(sizeof(int) * ((size_t)r->n_head + 1));
    int *qr = NULL, *kr = NULL;
    bool ok = q && kv;
    if (ok) {
        attention_lists(c, s, l, r, q, kv);
        qr = head_rows(q, r->n_head, hd);
        kr = head_rows(kv, r->n_head_kv, hd);
        ok = qr && kr;
    }
    if (ok) {
        int nq = r->n_head * hd, nk = r->n_head_kv * hd;
        o->attn_norm = hr_surgery_copy(dst, w->attn_norm, (size_t)dim, &ok);
        o->attn_norm_b = hr_surgery_copy(dst, w->attn_norm_b, (size_t)dim, &ok);
        o->wq = hr_surgery_rows_any(dst, ol, src, l, HR_SLOT_Q, dim, qr, nq, &ok);
        o->bq = hr_surgery_rows(dst, w->bq, 1, qr, nq, &ok);
        o->wk = hr_surgery_rows_any(dst, ol, src, l, HR_SLOT_K, dim, kr, nk, &ok);
        o->bk = hr_surgery_rows(dst, w->bk, 1, kr, nk, &ok);
        o->wv = hr_surgery_rows_any(dst, ol, src, l, HR_SLOT_V, dim, kr, nk, &ok);
        o->bv = hr_surgery_rows(dst, w->bv, 1, kr, nk, &ok);
        o->wo = hr_surgery_cols_any(dst, ol, src, l, HR_SLOT_O, dim, c->n_head[l] * hd, qr, nq, &ok);
        o->bo = hr_surgery_copy(dst, w->bo, (size_t)dim, &ok);
    }
    free(q);
    free(kv);
    free(qr);
    free(kr);
    return ok;
}

static bool copy_mlp(hr_model *dst, const hr_model *src, const hr_prune_spec *s, int l, int n_ff, int ol,
                     hr_layer_weights *o) {
    const hr_config *c = &src->cfg;
    const hr_layer_weights *w = &src->w.layers[l];
    int dim = c->dim, nf = 0;
    int *keep = malloc(sizeof(int) * ((size_t)n_ff + 1));
    if (!keep) return false;
    for (int j = 0; j < c->n_ff[l]; j++)
        if (s->keep_ff[l][j]) keep[nf++] = j;
    bool ok = true;
    o->ffn_norm = hr_surgery_copy(dst, w->ffn_norm, (size_t)dim, &ok);
    o->ffn_norm_b = hr_surgery_copy(dst, w->ffn_norm_b, (size_t)dim, &ok);
    o->w_gate = hr_surgery_rows_any(dst, ol, src, l, HR_SLOT_GATE, dim, keep, nf, &ok);
    o->w_up = hr_surgery_rows_any(dst, ol, src, l, HR_SLOT_UP, dim, keep, nf, &ok);
    o->b_up = hr_surgery_rows(dst, w->b_up, 1, keep, nf, &ok);
    o->w_down = hr_surgery_cols_any(dst, ol, src, l, HR_SLOT_DOWN, dim, c->n_ff[l], keep, nf, &ok);
    o->b_down = hr_surgery_copy(dst, w->b_down, (size_t)dim, &ok);
    free(keep);
    return ok;
}

hr_status hr_prune_apply(const hr_model *m, const hr_prune_spec *s, hr_model **out) {
    *out = NULL;
    /* No hr_model_need_f32: matrices kept typed are cut in their dtype. */
    const hr_config *c = &m->cfg;
    hr_prune_layer_result *res = malloc(sizeof *res * (size_t)c->n_layers);
    if (!res) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_status st = hr_prune_check(m, s, res);
    hr_config nc = *c;
    int nl = 0;
    for (int l = 0; st == HR_OK && l < c->n_layers; l++) {
        if (s->drop_block[l]) continue;
        nc.n_head[nl] = res[l].n_head;
        nc.n_head_kv[nl] = res[l].n_head_kv;
        nc.n_ff[nl] = res[l].n_ff;
        nl++;
    }
    nc.n_layers = nl;
    hr_model *p = NULL;
    if (st == HR_OK) st = hr_surgery_new_model(m, &nc, &p);
    for (int l = 0, o = 0; st == HR_OK && l < c->n_layers; l++) {
        if (s->drop_block[l]) continue;
        int ol = o++;
        hr_layer_weights *ow = &p->w.layers[ol];
        bool ok = true;
        if (res[l].n_head > 0) ok = copy_attention(p, m, s, l, &res[l], ol, ow);
        if (ok && res[l].n_ff > 0) ok = copy_mlp(p, m, s, l, res[l].n_ff, ol, ow);
        if (!ok) st = hr_err(HR_ERR_NOMEM, "out of memory copying layer %d", l);
    }
    free(res);
    if (st == HR_OK) st = hr_model_own_panels(p); /* one copy: the panels the forward reads */
    if (st != HR_OK) {
        hr_model_free(p);
        return st;
    }
    *out = p;
    return HR_OK;
}

hr_status hr_prune_budget_from_name(const char *name, hr_prune_budget *out) {
    if (name && strcmp(name, "global") == 0) *out = HR_BUDGET_GLOBAL;
    else if (name && (strcmp(name, "per-layer") == 0 || strcmp(name, "layer") == 0)) *out = HR_BUDGET_PER_LAYER;
    else if (name && strcmp(name, "cfsp") == 0) *out = HR_BUDGET_CFSP;
    else
        return hr_err(HR_ERR_INVALID_ARG, "unknown budget '%s' (expected global, per-layer or cfsp)", name ? name : "");
    return HR_OK;
}

const char *hr_prune_budget_name(hr_prune_budget b) {
    switch (b) {
    case HR_BUDGET_GLOBAL: return "global";
    case HR_BUDGET_PER_LAYER: return "per-layer";
    case HR_BUDGET_CFSP: return "cfsp";
    }
    return "unknown";
}
