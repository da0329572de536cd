/* What a head-lab run would cost, before it runs (hr_heads_estimate_cost):
 * each registry row's cost formula, grouped by shared work, weighed in
 * multiply-adds and, when asked, in seconds measured on the context. */
#include "study/heads/heads_internal.h"

#include "model/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A row as the estimate stores it (hr_heads_cost is its view, with the
 * strings borrowed from here). */
typedef struct {
    char label[256];
    char phase[48];
    bool selected, exact, bound;
    hr_heads_work work;
    double passes, seconds;
} cost_row;

struct hr_heads_estimate {
    int n;                                      /* rows used */
    cost_row rows[HR_HEADS_MAX_COSTS];          /* (n) */
    cost_row total;                             /* sum of the selected rows */
    int window, n_windows;                      /* the calibration the run would use */
    double window_seconds;                      /* measured: one window forward with every logit */
    hr_heads_cost view[HR_HEADS_MAX_COSTS + 1]; /* (n + 1) the public rows, then the total */
};

static void make_view(hr_heads_cost *v, const cost_row *c) {
    *v = (hr_heads_cost){c->label, c->phase, c->selected, c->exact, c->bound, c->work, c->passes, c->seconds};
}

/* Multiply-adds of one token through every layer (projections, MLP and
 * attention over half a window of keys on average) and of one row through
 * the classifier. */
static void flops(const hr_lab *lab, double *per_token, double *per_row) {
    const hr_config *c = lab->c;
    double f = 0, dim = c->dim, hd = c->head_dim;
    for (int l = 0; l < lab->L; l++) {
        double q = (double)c->n_head[l] * hd, kv = (double)c->n_head_kv[l] * hd;
        f += dim * (2 * q + 2 * kv);                                   /* Wq, Wo, Wk, Wv */
        f += dim * c->n_ff[l] * (c->mlp == HR_MLP_SWIGLU ? 3.0 : 2.0); /* gate, up, down */
        f += q * lab->W;                                               /* scores and values, W/2 keys each */
    }
    *per_token = f;
    *per_row = dim * c->vocab_size;
}

/* Seconds per unit of work, measured on the context. */
typedef struct {
    double token, row, decode_token, decode_row;
} rates;

static double best_of(hr_context *ctx, const int32_t *toks, int n, float *logits, bool all, int reps, hr_status *st) {
    double best = 1e30;
    for (int r = 0; *st == HR_OK && r < reps; r++) {
        double t0 = hr_time_now();
        *st = hr_context_truncate(ctx, 0);
        if (*st == HR_OK) *st = hr_forward(ctx, toks, n, logits, all);
        double t = hr_time_now() - t0;
        if (t < best) best = t;
    }
    return best;
}

/* 8 one-token steps after a 1-token prompt, with or without logits. */
static double decode_steps(hr_context *ctx, const int32_t *toks, float *logits, hr_status *st) {
    enum { STEPS = 8 };
    *st = hr_context_truncate(ctx, 0);
    if (*st == HR_OK) *st = hr_forward(ctx, toks, 1, NULL, false);
    double t0 = hr_time_now();
    for (int i = 1; *st == HR_OK && i <= STEPS; i++) *st = hr_forward(ctx, toks + i, 1, logits, false);
    return (hr_time_now() - t0) / STEPS;
}

/* A window without logits, the same with every logit and the loss / KL the
 * sweeps compute on them, and one-token steps without and with logits. */
static hr_status measure(hr_lab *lab, rates *r, double *window_seconds) {
    int W = lab->W, V = lab->c->vocab_size;
    size_t n_log;
    if (!hr_mul_size((size_t)W, (size_t)V, &n_log)) return hr_err(HR_ERR_NOMEM, "logits buffer overflows");
    float *logits = malloc(sizeof(float) * n_log);       // (W, vocab)
    double *negent = malloc(sizeof(double) * (size_t)W); // (W)
    if (!logits || !negent) {
        free(logits), free(negent);
        return hr_err(HR_ERR_NOMEM, "out of memory for the cost measurement");
    }
    const int32_t *win = lab->windows;
    hr_status st = HR_OK;
    double t_plain = best_of(lab->ctx, win, W, NULL, false, 2, &st);
    double t_logits = 1e30;
    for (int rep = 0; st == HR_OK && rep < 2; rep++) {
        double t0 = hr_time_now(), nll;
        st = hr_context_truncate(lab->ctx, 0);
        if (st == HR_OK) st = hr_forward(lab->ctx, win, W, logits, true);
        if (st == HR_OK) {
            lab_nll_kl(lab, logits, NULL, NULL, win, W, V, &nll, NULL);
            lab_base_probs(lab, logits, negent, W, V);
        }
        double t = hr_time_now() - t0;
        if (t < t_logits) t_logits = t;
    }
    double d_plain = st == HR_OK && W > 9 ? decode_steps(lab->ctx, win, NULL, &st) : 0;
    double d_logits = st == HR_OK && W > 9 ? decode_steps(lab->ctx, win, logits, &st) : 0;
    hr_context_truncate(lab->ctx, 0);
    free(logits);
    free(negent);
    if (st != HR_OK) return st;
    r->token = t_plain / W;
    r->row = t_logits > t_plain ? (t_logits - t_plain) / W : 0;
    r->decode_token = d_plain;
    r->decode_row = d_logits > d_plain ? d_logits - d_plain : 0;
    *window_seconds = t_logits;
    return HR_OK;
}

static void add_work(hr_heads_work *a, const hr_heads_work *b) {
    a->tokens += b->tokens;
    a->decode_tokens += b->decode_tokens;
    a->logit_rows += b->logit_rows;
    a->decode_logit_rows += b->decode_logit_rows;
}

static void weigh(cost_row *c, const hr_lab *lab, const rates *r) {
    double per_token, per_row;
    flops(lab, &per_token, &per_row);
    const hr_heads_work *w = &c->work;
    double window = lab->W * (per_token + per_row);
    c->passes = ((w->tokens + w->decode_tokens) * per_token + (w->logit_rows + w->decode_logit_rows) * per_row) /
                (window > 0 ? window : 1);
    c->seconds = r ? w->tokens * r->token + w->logit_rows * r->row + w->decode_tokens * r->decode_token +
                         w->decode_logit_rows * r->decode_row
                   : 0;
}

static void append_label(cost_row *c, const char *id) {
    size_t at = strlen(c->label);
    snprintf(c->label + at, sizeof c->label - at, "%s%s", at ? ", " : "", id);
}

/* One row per group of methods sharing a cost formula, in registry order. */
static void method_rows(const hr_lab *lab, hr_heads_estimate *out) {
    int row_of[HR_HEADS_MAX_COSTS];
    for (int m = 0; m < hr_head_methods_count; m++) {
        const hr_head_method *hm = hr_head_methods[m];
        int g = -1;
        for (int i = 0; i < m && g < 0; i++)
            if (hm->work.cost && hr_head_methods[i]->work.cost == hm->work.cost) g = row_of[i];
        if (g < 0) {
            g = out->n++;
            cost_row *c = &out->rows[g];
            lab_cost lc = {{0, 0, 0, 0}, 0, false, false};
            if (hm->work.cost) hm->work.cost(lab, &lc);
            c->work = lc.work;
            c->exact = lc.exact && hm->work.cost;
            c->bound = !c->exact && lc.bound;
            snprintf(c->phase, sizeof c->phase, "%s", hm->work.phase ? hm->work.phase : hm->info.id);
        }
        row_of[m] = g;
        cost_row *c = &out->rows[g];
        c->selected |= lab->selected[m];
        /* the label lists the selected methods of a selected group, else all of them */
        if (lab->selected[m] || !c->selected) append_label(c, hm->info.id);
    }
    /* a group selected late drops the unselected ids listed before */
    for (int g = 0; g < out->n; g++) {
        cost_row *c = &out->rows[g];
        if (!c->selected) continue;
        c->label[0] = 0;
        for (int m = 0; m < hr_head_methods_count; m++)
            if (row_of[m] == g && lab->selected[m]) append_label(c, hr_head_methods[m]->info.id);
    }
}

hr_status hr_heads_estimate_cost(hr_context *ctx, const hr_heads_params *p, const bool *selected, bool do_measure,
                                 hr_heads_estimate **res) {
    if (!res) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *res = NULL;
    hr_status st = lab_validate(ctx, p);
    if (st != HR_OK) return st;
    hr_heads_estimate *out = calloc(1, sizeof *out);
    if (!out) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_lab lab;
    memset(&lab, 0, sizeof lab);
    st = lab_init(&lab, ctx, p, selected, false);
    rates r;
    if (st == HR_OK && do_measure) st = measure(&lab, &r, &out->window_seconds);
    if (st == HR_OK) {
        method_rows(&lab, out);
        cost_row *c = &out->rows[out->n++];
        lab_cost lc;
        lab_cost_layer_metrics(&lab, &lc);
        *c = (cost_row){"layer metrics", "layer metrics", !p->no_layer_metrics, lc.exact, false, lc.work, 0, 0};
        snprintf(out->total.phase, sizeof out->total.phase, "total");
        out->total.exact = true;
        for (int i = 0; i < out->n; i++) {
            weigh(&out->rows[i], &lab, do_measure ? &r : NULL);
            if (!out->rows[i].selected) continue;
            add_work(&out->total.work, &out->rows[i].work);
            out->total.exact &= out->rows[i].exact;
        }
        out->total.selected = true;
        weigh(&out->total, &lab, do_measure ? &r : NULL);
        out->window = lab.W;
        out->n_windows = lab.n_windows;
        for (int i = 0; i < out->n; i++) make_view(&out->view[i], &out->rows[i]);
        make_view(&out->view[out->n], &out->total);
    }
    lab_release(&lab);
    if (st == HR_OK) *res = out;
    else free(out);
    return st;
}

void hr_heads_estimate_free(hr_heads_estimate *e) { free(e); }
int hr_heads_estimate_n_rows(const hr_heads_estimate *e) { return e ? e->n : 0; }
const hr_heads_cost *hr_heads_estimate_row(const hr_heads_estimate *e, int i) {
    return e && i >= 0 && i < e->n ? &e->view[i] : NULL;
}
const hr_heads_cost *hr_heads_estimate_total(const hr_heads_estimate *e) { return e ? &e->view[e->n] : NULL; }
int hr_heads_estimate_window(const hr_heads_estimate *e) { return e ? e->window : 0; }
int hr_heads_estimate_n_windows(const hr_heads_estimate *e) { return e ? e->n_windows : 0; }
double hr_heads_estimate_window_seconds(const hr_heads_estimate *e) { return e ? e->window_seconds : 0; }
