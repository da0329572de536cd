/* successor: Successor-Heads' succession score on ordinal sequences. */
#include "study/heads/heads_internal.h"

#include "engine/kernels.h"
#include "model/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_CLASS = 32, MAX_TOK = 160 };

static const char *const k_classes[][MAX_CLASS] = {
    {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", NULL},
    {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", NULL},
    {"first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", NULL},
    {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", NULL},
    {"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
     "December", NULL},
    {"A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N",
     "O", "P", "Q", "R", "S", "T", "U", "V", "W", "X", "Y", "Z", NULL},
};
enum { N_CLASSES = sizeof k_classes / sizeof k_classes[0] };

typedef struct {
    int32_t tok[MAX_TOK]; /* single-token members, -1 = not a single token */
    int cls[MAX_TOK];
    int n;
    int n_pairs; /* members whose successor is also present */
} ord_set;

int32_t successor_single_token(const hr_tokenizer *tok, const char *word) {
    char buf[64];
    for (int v = 0; v < 2; v++) {
        snprintf(buf, sizeof buf, "%s%s", v == 0 ? " " : "", word);
        hr_encode_params ep = hr_encode_default_params();
        ep.add_bos = false;
        int32_t *ids = NULL;
        size_t n = 0;
        if (hr_tokenizer_encode(tok, buf, strlen(buf), &ep, &ids, &n) != HR_OK) continue;
        int32_t id = n == 1 ? ids[0] : -1;
        free(ids);
        if (id >= 0) return id;
    }
    return -1;
}

static void collect(const hr_tokenizer *tok, int vocab, ord_set *s) {
    s->n = s->n_pairs = 0;
    for (int c = 0; c < N_CLASSES; c++)
        for (int i = 0; k_classes[c][i] && s->n < MAX_TOK; i++) {
            int32_t id = successor_single_token(tok, k_classes[c][i]);
            s->tok[s->n] = id < vocab ? id : -1;
            s->cls[s->n] = c;
            if (i > 0 && s->tok[s->n] >= 0 && s->tok[s->n - 1] >= 0) s->n_pairs++;
            s->n++;
        }
}

typedef struct {
    float *dst; /* (n, dim) */
    int dim;
} eff_pass;

static int eff_hook(const hr_hook_event *ev, void *ud) {
    eff_pass *e = ud;
    if (ev->point != HR_HOOK_RESID_POST || ev->layer != 0) return 0;
    for (int t = 0; t < ev->n_tokens; t++)
        memcpy(e->dst + (size_t)(ev->pos0 + t) * e->dim, ev->data + (size_t)t * ev->stride, sizeof(float) * e->dim);
    return 1; /* everything after MLP0 is not needed */
}

hr_status successor_effective_embeddings(hr_context *ctx, const int32_t *toks, int n, float *eff) {
    const hr_model *model = hr_context_model(ctx);
    int dim = model->cfg.dim;
    float *x = malloc(sizeof(float) * (size_t)n * dim); // (n, dim) token embeddings
    if (!x) return hr_err(HR_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) hr_model_embed_row(model, toks[i], x + (size_t)i * dim);
    eff_pass e = {eff, dim};
    hr_status st = hr_context_truncate(ctx, 0);
    if (st == HR_OK) st = hr_forward(ctx, toks, n, NULL, false);
    hr_context_set_hook(ctx, eff_hook, HR_HOOK_RESID_POST, &e);
    if (st == HR_OK) {
        st = hr_forward_from(ctx, 0, 1, x, n, NULL, false);
        if (st == HR_ERR_ABORTED) st = HR_OK;
    }
    hr_context_set_hook(ctx, NULL, 0, NULL);
    free(x);
    return st;
}

static void norm_vec(const hr_config *c, float *y, const float *x, const float *g, const float *b) {
    if (c->norm == HR_NORM_LAYER) hr_layernorm(y, x, g, b, c->dim, c->norm_eps);
    else hr_rmsnorm(y, x, g, c->dim, c->norm_eps);
}

/* One layer's matrices as f32 rows and the classifier rows of the set's
 * tokens: the model's own, or converted from typed sources one layer at
 * a time (model_internal.h), never the whole model. */
typedef struct {
    const float *wv, *wo; /* (n_head_kv * hd, dim), (dim, n_head * hd) */
    float *wv_owned, *wo_owned;
    float *unemb; /* (s.n, dim) classifier row of each set token */
} ov_mats;

/* Unembedded OV output of head (l, h) for the effective embedding e, at
 * the vocabulary ids of set members of class cls: argmax member index. */
static int ov_top(hr_lab *lab, const ov_mats *mt, int l, int h, const float *e, const ord_set *s, int cls,
                  float *scratch) {
    const hr_config *c = lab->c;
    const hr_layer_weights *w = &lab->model->w.layers[l];
    int dim = c->dim, hd = c->head_dim, g = h / (c->n_head[l] / c->n_head_kv[l]);
    float *xn = scratch, *v = scratch + dim, *o = v + hd, *on = o + dim;
    norm_vec(c, xn, e, w->attn_norm, w->attn_norm_b);
    for (int d = 0; d < hd; d++)
        v[d] = hr_dot(mt->wv + ((size_t)g * hd + d) * dim, xn, dim) + (w->bv ? w->bv[g * hd + d] : 0.0f);
    size_t qd = (size_t)c->n_head[l] * hd;
    for (int i = 0; i < dim; i++) o[i] = hr_dot(mt->wo + (size_t)i * qd + (size_t)h * hd, v, hd);
    norm_vec(c, on, o, lab->model->w.out_norm, lab->model->w.out_norm_b);
    int best = -1;
    float best_v = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->cls[i] != cls || s->tok[i] < 0) continue;
        float lv = hr_dot(mt->unemb + (size_t)i * dim, on, dim);
        if (best < 0 || lv > best_v) best = i, best_v = lv;
    }
    return best;
}

/* Single-token ordinals run: one batched forward, then a forward from
 * layer 0's MLP that the hook stops after that MLP (counted as the call
 * asks, L - 1/2 layers: an upper bound). The per-head OV products are not
 * counted. 0 without a tokenizer or pairs. */
static void successor_cost(const hr_lab *lab, lab_cost *out) {
    ord_set s;
    int m = 0;
    if (lab->p.tok) {
        collect(lab->p.tok, lab->c->vocab_size, &s);
        for (int i = 0; s.n_pairs >= 3 && i < s.n; i++) m += s.tok[i] >= 0 && m < hr_context_n_ctx(lab->ctx);
    }
    out->work = (hr_heads_work){m + m * (lab->L - 0.5) / (lab->L ? lab->L : 1), 0, 0, 0};
    out->items = lab->L;
    out->exact = false;
    out->bound = true;
}

static hr_status successor_compute(hr_lab *lab, int method, double *scores) {
    if (!lab->p.tok) {
        lab_note(lab, method, "no tokenizer given");
        return HR_OK;
    }
    ord_set s;
    collect(lab->p.tok, lab->c->vocab_size, &s);
    if (s.n_pairs < 3) {
        lab_note(lab, method, "the vocabulary has only %d single-token ordinal successor pairs", s.n_pairs);
        return HR_OK;
    }
    int32_t toks[MAX_TOK];
    int idx[MAX_TOK], m = 0, dim = lab->c->dim;
    for (int i = 0; i < s.n; i++)
        if (s.tok[i] >= 0 && m < hr_context_n_ctx(lab->ctx)) idx[i] = m, toks[m++] = s.tok[i];
        else idx[i] = -1;
    float *eff = malloc(sizeof(float) * (size_t)m * dim);
    float *scratch = malloc(sizeof(float) * (size_t)(3 * dim + lab->c->head_dim));
    ov_mats mt = {NULL, NULL, NULL, NULL, malloc(sizeof(float) * (size_t)s.n * dim)};
    hr_status st = eff && scratch && mt.unemb ? successor_effective_embeddings(lab->ctx, toks, m, eff)
                                              : hr_err(HR_ERR_NOMEM, "out of memory");
    for (int i = 0; st == HR_OK && i < s.n; i++) {
        if (s.tok[i] < 0) continue;
        const float *r = hr_model_rows(lab->model, -1, HR_SLOT_OUTPUT, s.tok[i], 1, mt.unemb + (size_t)i * dim);
        if (r != mt.unemb + (size_t)i * dim) memcpy(mt.unemb + (size_t)i * dim, r, sizeof(float) * (size_t)dim);
    }
    for (int l = 0; st == HR_OK && l < lab->L; l++) {
        free(mt.wv_owned), free(mt.wo_owned);
        mt.wv_owned = mt.wo_owned = NULL;
        if (lab->c->n_head[l] > 0) { /* a layer without attention has no OV circuit */
            st = hr_model_matrix_f32(lab->model, l, HR_SLOT_V, &mt.wv, &mt.wv_owned);
            if (st == HR_OK) st = hr_model_matrix_f32(lab->model, l, HR_SLOT_O, &mt.wo, &mt.wo_owned);
            if (st != HR_OK) break;
        }
        for (int h = 0; h < lab->c->n_head[l]; h++) {
            int good = 0, total = 0;
            for (int i = 1; i < s.n; i++) {
                if (s.cls[i] != s.cls[i - 1] || idx[i] < 0 || idx[i - 1] < 0) continue;
                total++;
                good += ov_top(lab, &mt, l, h, eff + (size_t)idx[i - 1] * dim, &s, s.cls[i], scratch) == i;
            }
            scores[lab_idx(lab, l, h)] = total ? (double)good / total : NAN;
        }
        st = lab_progress(lab, l + 1, lab->L);
    }
    free(mt.wv_owned), free(mt.wo_owned), free(mt.unemb);
    free(eff);
    free(scratch);
    return st;
}

const hr_head_method hr_method_successor = {
    {"successor", "succession score",
     "Gould et al. 2023, Successor Heads: Recurring, Interpretable Attention Heads In The Wild (arXiv "
     "2312.09230)",
     "for ordinal tokens (numbers, number words, ordinals, days, months, letters) that are single tokens: "
     "e = embedding + MLP0(embedding); the head's OV output W_o^h W_v^h norm(e) is unembedded (final norm + "
     "classifier); score = fraction of tokens whose successor is the top logit within its sequence",
     "finding heads that increment ordinal concepts (Monday -> Tuesday); skipped when the vocabulary lacks "
     "single-token ordinals",
     "more successor", false},
    LAB_INPUT_NONE,
    NULL,
    successor_compute,
    {"successor", "layers", successor_cost}};
