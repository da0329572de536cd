/* LoRAPrune (Zhang et al. 2023; see headroom/prune.h): the LoRA-guided
 * importance of heads and MLP neurons, and the iterative run that fine-tunes
 * LoRA adapters, scores, gates units off, continues, and finally merges and
 * cuts. */
#include "headroom/prune.h"
#include "headroom/study.h"
#include "headroom/train.h"
#include "study/prune/prune_internal.h"
#include "core/internal.h"
#include "core/progress.h"
#include "study/train/train_internal.h"
#include "model/config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per-element importance of one adapted matrix W (d_out, d_in) summed per
 * row into rows (d_out) and per column into cols (d_in):
 *   G = s (G_B A + B G_A - G_B G_A),  W' = W + s B A,  I_ij = (G_ij W'_ij)^2
 * A (r, d_in), B (d_out, r) and their gradients G_A, G_B. */
static void lora_matrix_importance(const float *W, const float *A, const float *B, const float *GA, const float *GB,
                                   int d_out, int d_in, int r, double s, double *rows, double *cols) {
    for (int i = 0; i < d_out; i++) {
        const float *b = B + (size_t)i * r, *gb = GB + (size_t)i * r; // (r)
        for (int j = 0; j < d_in; j++) {
            double g = 0, ba = 0;
            for (int k = 0; k < r; k++) {
                double a = A[(size_t)k * d_in + j], ga = GA[(size_t)k * d_in + j];
                g += (double)gb[k] * a + (double)b[k] * ga - (double)gb[k] * ga;
                ba += (double)b[k] * a;
            }
            double w = (double)W[(size_t)i * d_in + j] + s * ba, e = s * g * w;
            e *= e;
            if (rows) rows[i] += e;
            if (cols) cols[j] += e;
        }
    }
}

hr_status hr_loraprune_importance(const hr_grad *g, double *heads, double *neurons) {
    if (!g || (!heads && !neurons)) return hr_err(HR_ERR_INVALID_ARG, "no gradients or outputs given");
    const hr_params *P = hr_grad_owner(g);
    const hr_config *c = P->c;
    int mh = hr_config_max_heads(c), mf = hr_config_max_ff(c), hd = c->head_dim;
    if (heads) memset(heads, 0, sizeof(double) * (size_t)c->n_layers * (size_t)mh);
    if (neurons) memset(neurons, 0, sizeof(double) * (size_t)c->n_layers * (size_t)mf);
    static const hr_param_kind kinds[HR_LORA_N_TARGETS] = {HR_PARAM_WQ,     HR_PARAM_WK,   HR_PARAM_WV,    HR_PARAM_WO,
                                                           HR_PARAM_W_GATE, HR_PARAM_W_UP, HR_PARAM_W_DOWN};
    bool any = false;
    for (int l = 0; l < c->n_layers; l++) {
        int H = c->n_head[l], Hkv = c->n_head_kv[l], ff = c->n_ff[l];
        size_t big = (size_t)(c->dim > H * hd ? c->dim : H * hd);
        if ((size_t)ff > big) big = (size_t)ff;
        double *rows = calloc(big, sizeof(double)), *cols = calloc(big, sizeof(double)); // (max(dim, q_dim, n_ff))
        if (!rows || !cols) {
            free(rows), free(cols);
            return hr_err(HR_ERR_NOMEM, "out of memory");
        }
        for (int t = 0; t < HR_LORA_N_TARGETS; t++) {
            int ia = P->lora[l][t][0], ib = P->lora[l][t][1], iw = hr_params_index(P, kinds[t], l);
            if (ia < 0 || ib < 0 || iw < 0) continue;
            const float *GA = hr_grad_tensor(g, ia), *GB = hr_grad_tensor(g, ib);
            if (!GA || !GB) {
                free(rows), free(cols);
                return hr_err(HR_ERR_INVALID_ARG, "LoRAPrune importance needs the LoRA adapters' gradients "
                                                  "(select HR_GRAD_LORA)");
            }
            hr_param_info ia_in, w_in;
            hr_params_info(P, ia, &ia_in);
            hr_params_info(P, iw, &w_in);
            int d_out = (int)w_in.rows, d_in = (int)w_in.cols, r = (int)ia_in.rows;
            memset(rows, 0, sizeof(double) * big), memset(cols, 0, sizeof(double) * big);
            const float *W = hr_params_data(P, iw); /* a typed model's: converted on this first ask */
            if (!W) {
                free(rows), free(cols);
                return HR_ERR_NOMEM; /* hr_model_need_f32 said why */
            }
            lora_matrix_importance(W, hr_params_data(P, ia), hr_params_data(P, ib), GA, GB, d_out, d_in, r,
                                   P->lora_scale, rows, cols);
            any = true;
            double *hrow = heads ? heads + (size_t)l * mh : NULL, *nrow = neurons ? neurons + (size_t)l * mf : NULL;
            switch (kinds[t]) {
            case HR_PARAM_WQ: /* head h: rows [h hd, (h+1) hd) */
                for (int i = 0; hrow && i < d_out; i++) hrow[i / hd] += rows[i];
                break;
            case HR_PARAM_WO: /* head h: columns [h hd, (h+1) hd) */
                for (int j = 0; hrow && j < d_in; j++) hrow[j / hd] += cols[j];
                break;
            case HR_PARAM_WK:
            case HR_PARAM_WV: /* only a head alone in its KV group takes its K/V rows with it */
                for (int i = 0; hrow && H == Hkv && i < d_out; i++) hrow[i / hd] += rows[i];
                break;
            case HR_PARAM_W_GATE:
            case HR_PARAM_W_UP:
                for (int i = 0; nrow && i < d_out; i++) nrow[i] += rows[i];
                break;
            case HR_PARAM_W_DOWN:
                for (int j = 0; nrow && j < d_in; j++) nrow[j] += cols[j];
                break;
            default: break;
            }
        }
        free(rows), free(cols);
    }
    if (!any) return hr_err(HR_ERR_INVALID_ARG, "the parameters have no LoRA adapters to score with");
    return HR_OK;
}

hr_loraprune_params hr_loraprune_default_params(void) {
    hr_loraprune_params p;
    memset(&p, 0, sizeof p);
    p.iterations = 4;
    p.ema = 0.9f;
    p.train = hr_train_default_params();
    p.train.lora_rank = 8;
    return p;
}

/* Step after which iteration k (1..K) removes its share: the budget is cut
 * into K + 1 equal parts (the last one fine-tunes the fully pruned model). */
static int step_of(int steps, int iterations, int k) { return (int)(((int64_t)steps * k) / (iterations + 1)); }

/* Cumulative units removed after iteration k of K: round(n k / K). */
static int64_t target(int64_t n, int iterations, int k) { return (n * k * 2 + iterations) / (2 * (int64_t)iterations); }

static hr_status check(const hr_model *m, const hr_tokenizer *tok, const hr_loraprune_params *p) {
    if (!p->heads && !p->mlp)
        return hr_err(HR_ERR_INVALID_ARG, "LoRAPrune: nothing to prune: ask for heads and/or MLP neurons");
    if (p->iterations < 1) return hr_err(HR_ERR_RANGE, "LoRAPrune: iterations must be >= 1 (got %d)", p->iterations);
    if (!(p->ema >= 0 && p->ema < 1))
        return hr_err(HR_ERR_RANGE, "LoRAPrune: the moving-average factor must be in [0, 1) (got %g)", p->ema);
    if (!p->text || !tok)
        return hr_err(HR_ERR_INVALID_ARG, "LoRAPrune fine-tunes on text: give a text and a tokenizer");
    if (p->train.full || p->train.lora_rank < 1 || p->train.only || p->train.resume)
        return hr_err(HR_ERR_INVALID_ARG, "LoRAPrune trains LoRA adapters only (a LoRA rank >= 1; no full training, "
                                          "part of the weights or resume)");
    if (p->train.steps < p->iterations + 1)
        return hr_err(HR_ERR_RANGE,
                      "LoRAPrune: %d steps cannot be split over %d iterations plus the final fine-tuning "
                      "(at least %d)",
                      p->train.steps, p->iterations, p->iterations + 1);
    if (p->max_tokens < 0) return hr_err(HR_ERR_RANGE, "negative token count");
    (void)m;
    return HR_OK;
}

/* Marks in spec, on top of what it removes, the `want` lowest-scored units
 * still kept (the planner's global budget; even GQA groups), and zeroes
 * their gates in P. Returns how many went in *got. */
static hr_status remove_share(hr_prune_result *r, hr_params *P, bool heads, const double *imp, int64_t want,
                              hr_prune_plan_result *pr) {
    const hr_config *c = &r->base->cfg;
    int mh = hr_config_max_heads(c), mf = hr_config_max_ff(c);
    hr_prune_plan_params pp = hr_prune_plan_default_params();
    hr_status st = HR_OK;
    memset(pr, 0, sizeof *pr);
    if (want <= 0) return HR_OK;
    if (heads) {
        for (int l = 0; l < c->n_layers; l++)
            for (int h = 0; h < mh; h++) r->head_order[(size_t)l * mh + h] = (float)imp[(size_t)l * mh + h];
        st = hr_prune_plan_heads(r->base, r->head_order, NULL, want, &pp, r->spec, pr);
    } else {
        for (int l = 0; l < c->n_layers; l++)
            for (int j = 0; j < c->n_ff[l]; j++) /* removed neurons keep their score at removal */
                if (hr_prune_spec_keeps_neuron(r->spec, l, j)) r->ff_scores[l][j] = (float)imp[(size_t)l * mf + j];
        st = hr_prune_plan_ff(r->base, (const float *const *)r->ff_scores, NULL, want, &pp, r->spec, pr);
    }
    if (st != HR_OK) return st;
    if (pr->removed != want)
        snprintf(heads ? r->heads.reason : r->neurons.reason, sizeof r->heads.reason, "%s", pr->reason);
    for (int l = 0; l < c->n_layers; l++) {
        int gi = hr_params_find(P, heads ? HR_PARAM_HEAD_GATE : HR_PARAM_NEURON_GATE, l, 0);
        float *gate = gi >= 0 ? hr_params_data_mut(P, gi) : NULL; // (n_head) or (n_ff)
        int n = heads ? c->n_head[l] : c->n_ff[l];
        for (int u = 0; gate && u < n; u++)
            if (!(heads ? hr_prune_spec_keeps_head(r->spec, l, u) : hr_prune_spec_keeps_neuron(r->spec, l, u)))
                gate[u] = 0.0f;
    }
    return HR_OK;
}

/* Records what iteration k removed (the units newly gone from the spec)
 * with their moving-average scores at that moment (avg_h, avg_n). */
static hr_status record(hr_prune_result *r, int k, int step, const uint8_t *was_h, const uint8_t *was_n,
                        const double *avg_h, const double *avg_n) {
    const hr_config *c = &r->base->cfg;
    int mh = hr_config_max_heads(c), mf = hr_config_max_ff(c);
    hr_loraprune_iter *it = &r->lp_iters[k];
    it->step = step;
    it->heads = malloc(sizeof(int) * 2 * ((size_t)c->n_layers * mh + 1));   // (n, 2) layer, head
    it->neurons = malloc(sizeof(int) * 2 * ((size_t)c->n_layers * mf + 1)); // (n, 2) layer, neuron
    if (!it->heads || !it->neurons) return hr_err(HR_ERR_NOMEM, "out of memory");
    for (int l = 0; l < c->n_layers; l++) {
        for (int h = 0; h < c->n_head[l]; h++)
            if (was_h[(size_t)l * mh + h] && !hr_prune_spec_keeps_head(r->spec, l, h)) {
                it->heads[2 * it->n_heads] = l, it->heads[2 * it->n_heads + 1] = h, it->n_heads++;
                r->head_raw[(size_t)l * mh + h] = (float)avg_h[(size_t)l * mh + h];
            }
        for (int j = 0; j < c->n_ff[l]; j++)
            if (was_n[(size_t)l * mf + j] && !hr_prune_spec_keeps_neuron(r->spec, l, j)) {
                it->neurons[2 * it->n_neurons] = l, it->neurons[2 * it->n_neurons + 1] = j, it->n_neurons++;
                r->ff_scores[l][j] = (float)avg_n[(size_t)l * mf + j];
            }
    }
    return HR_OK;
}

static void snapshot(const hr_prune_result *r, uint8_t *kh, uint8_t *kn) {
    const hr_config *c = &r->base->cfg;
    int mh = hr_config_max_heads(c), mf = hr_config_max_ff(c);
    for (int l = 0; l < c->n_layers; l++) {
        for (int h = 0; h < c->n_head[l]; h++) kh[(size_t)l * mh + h] = hr_prune_spec_keeps_head(r->spec, l, h);
        for (int j = 0; j < c->n_ff[l]; j++) kn[(size_t)l * mf + j] = hr_prune_spec_keeps_neuron(r->spec, l, j);
    }
}

typedef struct {
    hr_train *t;
    double *imp_h, *imp_n, *avg_h, *avg_n; /* (n_layers, max_heads) / (n_layers, max_ff) */
    uint8_t *kh, *kn;                      /* kept before the iteration, same shapes */
    int32_t *ids;
    size_t n_ids;
    int *ranks; /* (n_layers) CFSP recovery ranks, or NULL */
} lp_state;

static void lp_free(lp_state *s) {
    hr_train_free(s->t);
    free(s->imp_h), free(s->imp_n), free(s->avg_h), free(s->avg_n), free(s->kh), free(s->kn), free(s->ranks);
    hr_free(s->ids);
}

/* The run: steps with the moving average of the importance after each,
 * removals at the iteration boundaries, the merged model cut at the end. */
static hr_status lp_loop(hr_prune_result *r, const hr_loraprune_params *p, lp_state *s, int64_t n_h, int64_t n_n) {
    const hr_config *c = &r->base->cfg;
    size_t nh = (size_t)c->n_layers * hr_config_max_heads(c), nn = (size_t)c->n_layers * hr_config_max_ff(c);
    hr_params *P = hr_train_parameters_mut(s->t);
    const hr_grad *g = s->t->grad;
    int S = p->train.steps, K = p->iterations, k = 1;
    double lam = p->ema;
    double hl = 0;
    hr_status st = hr_train_eval(s->t, &hl); /* the base model's held-out loss (adapters start at zero) */
    r->lp_heldout_before = hl;
    if (st == HR_OK) st = hr_progress_phase("loraprune", s->t->unit, S);
    for (int step = 1; st == HR_OK && step <= S; step++) {
        st = hr_train_step(s->t);
        if (st == HR_OK && step < S && p->train.eval_every > 0 && step % p->train.eval_every == 0)
            st = hr_train_eval(s->t, &hl);
        if (st == HR_OK) st = hr_loraprune_importance(g, n_h ? s->imp_h : NULL, n_n ? s->imp_n : NULL);
        if (st != HR_OK) break;
        /* the paper's moving average; the first step starts it */
        for (size_t i = 0; n_h && i < nh; i++)
            s->avg_h[i] = step == 1 ? s->imp_h[i] : lam * s->avg_h[i] + (1 - lam) * s->imp_h[i];
        for (size_t i = 0; n_n && i < nn; i++)
            s->avg_n[i] = step == 1 ? s->imp_n[i] : lam * s->avg_n[i] + (1 - lam) * s->imp_n[i];
        if (k <= K && step == step_of(S, K, k)) {
            hr_prune_plan_result ph, pn;
            snapshot(r, s->kh, s->kn);
            st = remove_share(r, P, true, s->avg_h, target(n_h, K, k) - r->heads.removed, &ph);
            if (st == HR_OK) st = remove_share(r, P, false, s->avg_n, target(n_n, K, k) - r->neurons.removed, &pn);
            if (st == HR_OK) r->heads.removed += ph.removed, r->neurons.removed += pn.removed;
            if (st == HR_OK) st = record(r, k - 1, step, s->kh, s->kn, s->avg_h, s->avg_n);
            if (st == HR_OK) {
                hr_train_info info;
                hr_train_get_info(s->t, &info);
                r->lp_iters[k - 1].loss = info.loss;
                r->lp_n_iters = k++;
            }
        }
        if (st != HR_OK) break;
        hr_train_set_unit(s->t);
        st = hr_progress_update(step);
        /* Ctrl-C: stop cleanly; nothing is kept (LoRAPrune has no checkpoint to resume from) */
        if (st == HR_OK && step < S && p->train.stop && *p->train.stop)
            st = hr_err(HR_ERR_ABORTED,
                        "LoRAPrune stopped after step %d of %d; nothing written (it keeps no checkpoint)", step, S);
    }
    if (st != HR_OK) return st;
    /* kept units: the last moving averages (removed ones keep theirs at removal) */
    int mh = hr_config_max_heads(c), mf = hr_config_max_ff(c);
    for (int l = 0; l < c->n_layers; l++) {
        for (int h = 0; n_h && h < c->n_head[l]; h++)
            if (hr_prune_spec_keeps_head(r->spec, l, h))
                r->head_raw[(size_t)l * mh + h] = (float)s->avg_h[(size_t)l * mh + h];
        for (int j = 0; n_n && j < c->n_ff[l]; j++)
            if (hr_prune_spec_keeps_neuron(r->spec, l, j)) r->ff_scores[l][j] = (float)s->avg_n[(size_t)l * mf + j];
    }
    st = hr_train_eval(s->t, &hl);
    r->lp_heldout = hl;
    hr_model *merged = NULL;
    if (st == HR_OK) st = hr_train_model(s->t, &merged);
    if (st == HR_OK) st = hr_prune_apply(merged, r->spec, &r->pruned);
    hr_model_free(merged);
    return st;
}

static hr_status lp_alloc(hr_prune_result *r, lp_state *s) {
    const hr_config *c = &r->base->cfg;
    size_t nh = (size_t)c->n_layers * hr_config_max_heads(c) + 1, nn = (size_t)c->n_layers * hr_config_max_ff(c) + 1;
    s->imp_h = calloc(nh, sizeof(double)), s->avg_h = calloc(nh, sizeof(double)); // (n_layers, max_heads)
    s->imp_n = calloc(nn, sizeof(double)), s->avg_n = calloc(nn, sizeof(double)); // (n_layers, max_ff)
    s->kh = calloc(nh, 1), s->kn = calloc(nn, 1);
    r->head_raw = calloc(nh, sizeof(float)), r->head_order = calloc(nh, sizeof(float)); // (n_layers, max_heads)
    bool ok = s->imp_h && s->avg_h && s->imp_n && s->avg_n && s->kh && s->kn && r->head_raw && r->head_order;
    for (int l = 0; ok && l < c->n_layers; l++) ok = (r->ff_scores[l] = calloc((size_t)c->n_ff[l] + 1, sizeof(float)));
    return ok ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory");
}

/* CFSP's recovery ranks from the block influence on the first
 * HR_CALIB_SURGERY_TOKENS training tokens; the adapters are allocated at
 * the largest rank a layer may get. */
static hr_status cfsp_ranks(hr_prune_result *r, const hr_loraprune_params *p, lp_state *s) {
    const hr_config *c = &r->base->cfg;
    hr_context_params cp = hr_context_default_params();
    cp.n_ctx = hr_calib_window(c->seq_len, 0);
    cp.n_threads = p->train.n_threads;
    hr_context *ctx = NULL;
    s->ranks = malloc(sizeof(int) * (size_t)c->n_layers); // (n_layers)
    hr_status st = s->ranks ? hr_context_new(r->base, &cp, &ctx) : hr_err(HR_ERR_NOMEM, "out of memory");
    size_t n = s->n_ids < HR_CALIB_SURGERY_TOKENS ? s->n_ids : HR_CALIB_SURGERY_TOKENS;
    if (st == HR_OK) st = hr_progress_phase("layer importance", "tokens", (int64_t)n);
    if (st == HR_OK) st = hr_prune_cfsp_recovery(ctx, s->ids, n, 0, p->train.lora_rank, 0, s->ranks, r->lay[2]);
    hr_context_free(ctx);
    if (st != HR_OK) return st;
    snprintf(r->lay_name[2], sizeof r->lay_name[2], "block_influence (computed)");
    memcpy(r->lp_ranks, s->ranks, sizeof(int) * (size_t)c->n_layers);
    int mx = 1;
    for (int l = 0; l < c->n_layers; l++) mx = s->ranks[l] > mx ? s->ranks[l] : mx;
    r->lp_rank_max = mx;
    return hr_progress_update((int64_t)n);
}

hr_status hr_loraprune_run(const hr_model *m, const hr_tokenizer *tok, const hr_loraprune_params *p,
                           hr_prune_result **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!m || !p) return hr_err(HR_ERR_INVALID_ARG, "no model or parameters given");
    hr_status st = check(m, tok, p);
    if (st != HR_OK) return st;
    const hr_config *c = &m->cfg;
    int64_t n_h = 0, n_n = 0, all_h = 0, all_n = 0;
    for (int l = 0; l < c->n_layers; l++) all_h += c->n_head[l], all_n += c->n_ff[l];
    if (p->heads && (st = hr_parse_amount(p->heads, all_h, &n_h)) != HR_OK) {
        hr_err_prefix("heads to remove");
        return st;
    }
    if (p->mlp && (st = hr_parse_amount(p->mlp, all_n, &n_n)) != HR_OK) {
        hr_err_prefix("MLP neurons to remove");
        return st;
    }
    hr_prune_result *r = calloc(1, sizeof *r);
    lp_state s;
    memset(&s, 0, sizeof s);
    if (!r) return hr_err(HR_ERR_NOMEM, "out of memory");
    r->base = m;
    r->params = hr_prune_default_params();
    r->params.n_threads = p->train.n_threads;
    r->params.uneven_duplicate = p->uneven_duplicate;
    r->method = p->heads ? strdup("loraprune") : NULL;
    r->heads_amount = p->heads ? strdup(p->heads) : NULL;
    r->mlp_amount = p->mlp ? strdup(p->mlp) : NULL;
    r->score_kind = HR_SCORE_IMPORTANCE;
    r->lp = true;
    r->lp_params = *p;
    r->lp_params.heads = r->lp_params.mlp = NULL, r->lp_params.text = NULL;
    r->lp_params.train.lora_layer_ranks = NULL;
    r->heads.requested = n_h, r->neurons.requested = n_n;
    r->lp_iters = calloc((size_t)p->iterations, sizeof *r->lp_iters); // (iterations)
    hr_progress_run run;
    hr_progress_enter(&run, p->train.progress_phase, p->train.progress_user_data, 1 + p->cfsp_ranks);
    if (!r->lp_iters || (p->heads && (!r->method || !r->heads_amount)) || (p->mlp && !r->mlp_amount))
        st = hr_err(HR_ERR_NOMEM, "out of memory");
    if (st == HR_OK) st = hr_prune_spec_new(m, &r->spec);
    if (st == HR_OK) hr_prune_spec_set_uneven_duplicate(r->spec, p->uneven_duplicate);
    if (st == HR_OK) st = lp_alloc(r, &s);
    if (st == HR_OK) st = hr_calib_tokens(tok, p->text, p->text_len, p->max_tokens, &s.ids, &s.n_ids);
    if (st == HR_OK && p->cfsp_ranks) st = cfsp_ranks(r, p, &s);
    hr_train_params tp = p->train;
    tp.lora_layer_ranks = s.ranks;
    if (s.ranks) tp.lora_rank = r->lp_rank_max;
    tp.progress_phase = NULL, tp.progress_user_data = NULL;
    if (st == HR_OK) st = hr_train_new(m, s.ids, s.n_ids, &tp, &s.t);
    if (st == HR_OK) st = lp_loop(r, p, &s, n_h, n_n);
    hr_progress_leave(&run);
    lp_free(&s);
    if (st != HR_OK) {
        hr_prune_result_free(r);
        return st;
    }
    *out = r;
    return HR_OK;
}

hr_status hr_prune_result_heldout(const hr_prune_result *r, double *before, double *after) {
    if (!r || !before || !after) return hr_err(HR_ERR_INVALID_ARG, "no result or output given");
    if (!r->lp) return hr_err(HR_ERR_INVALID_ARG, "not a LoRAPrune result");
    *before = r->lp_heldout_before, *after = r->lp_heldout;
    return HR_OK;
}

int hr_prune_result_iterations(const hr_prune_result *r, int *steps, int *heads, int *neurons) {
    if (!r || !r->lp) return 0;
    for (int i = 0; i < r->lp_n_iters; i++) {
        if (steps) steps[i] = r->lp_iters[i].step;
        if (heads) heads[i] = r->lp_iters[i].n_heads;
        if (neurons) neurons[i] = r->lp_iters[i].n_neurons;
    }
    return r->lp_n_iters;
}
