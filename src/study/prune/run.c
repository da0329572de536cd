/* A whole pruning run (hr_prune_run, see prune.h): checks the parameters,
 * gathers head / neuron / layer scores, plans drops and amounts, builds
 * the pruned model. prune.json is written from the result (report.c). */
#include "engine/pack.h"
#include "headroom/grad.h"
#include "headroom/prune.h"
#include "headroom/study.h"
#include "study/prune/prune_internal.h"
#include "core/progress.h"
#include "core/rng.h"
#include "model/config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

hr_prune_params hr_prune_default_params(void) {
    hr_prune_params p;
    memset(&p, 0, sizeof p);
    p.budget = HR_BUDGET_GLOBAL;
    return p;
}

void hr_prune_result_free(hr_prune_result *r) {
    if (!r) return;
    hr_model_free(r->pruned);
    hr_prune_spec_free(r->spec);
    free(r->head_raw);
    free(r->head_order);
    for (int l = 0; l < HR_MAX_LAYERS; l++) free(r->ff_scores[l]);
    free(r->method);
    free(r->heads_amount);
    free(r->mlp_amount);
    free(r->sub_order);
    free(r->sub_step_scores);
    free(r->sub_score);
    for (int i = 0; r->lp_iters && i < r->lp_params.iterations; i++)
        free(r->lp_iters[i].heads), free(r->lp_iters[i].neurons);
    free(r->lp_iters);
    free(r);
}

const hr_model *hr_prune_result_model(const hr_prune_result *r) { return r ? r->pruned : NULL; }
const hr_prune_spec *hr_prune_result_spec(const hr_prune_result *r) { return r ? r->spec : NULL; }
const hr_prune_plan_result *hr_prune_result_heads(const hr_prune_result *r) { return r ? &r->heads : NULL; }
const hr_prune_plan_result *hr_prune_result_neurons(const hr_prune_result *r) { return r ? &r->neurons : NULL; }

int hr_prune_result_sublayers(const hr_prune_result *r, const int **sublayer, const double **score) {
    if (sublayer) *sublayer = r ? r->sub_order : NULL;
    if (score) *score = r ? r->sub_score : NULL;
    return r ? r->n_sub : 0;
}

static bool by_output(const hr_prune_params *p) {
    return p->drop_sublayers && (p->iterative || p->sublayers_by_output);
}

static bool has_layers(const hr_scores *s) { return s && hr_scores_layers_source(s)[0]; }
static bool taylor_neurons(const hr_prune_params *p) { return p->mlp_method && strcmp(p->mlp_method, "taylor") == 0; }

/* Every parameter error, before any work. */
static hr_status check_params(const hr_prune_params *p, const hr_tokenizer *tok) {
    if (!p->heads && !p->mlp && !p->drop_attn && !p->drop_mlp && !p->drop_blocks && !p->drop_sublayers)
        return hr_err(HR_ERR_INVALID_ARG, "nothing to prune: ask for heads, MLP neurons, attention / MLP sublayers "
                                          "or blocks");
    if (p->drop_attn < 0 || p->drop_mlp < 0 || p->drop_blocks < 0 || p->drop_sublayers < 0 || p->max_tokens < 0 ||
        p->window < 0)
        return hr_err(HR_ERR_RANGE, "negative pruning parameter");
    if ((p->iterative || p->sublayers_by_output) && !p->drop_sublayers)
        return hr_err(HR_ERR_INVALID_ARG, "iterative or output-ranked sublayer drops need a number of sublayers to "
                                          "drop (drop_sublayers)");
    if (by_output(p) && !p->text)
        return hr_err(HR_ERR_INVALID_ARG, "FinerCut's output criterion (iterative sublayer drops) needs calibration "
                                          "text");
    if (p->heads && !p->method)
        return hr_err(HR_ERR_INVALID_ARG,
                      "pruning heads needs a score method (a method of the head scores, or random)");
    bool random = p->method && strcmp(p->method, "random") == 0;
    if (p->heads && !random && !hr_scores_heads_source(p->scores)[0])
        return hr_err(HR_ERR_INVALID_ARG, "method '%s' needs head scores (heads.json from headroom heads)", p->method);
    if (p->mlp_method && strcmp(p->mlp_method, "amp") != 0 && strcmp(p->mlp_method, "taylor") != 0)
        return hr_err(HR_ERR_INVALID_ARG, "unknown MLP neuron method '%s' (expected amp or taylor)", p->mlp_method);
    if (p->mlp && !p->text)
        return hr_err(HR_ERR_INVALID_ARG, "MLP pruning needs calibration text for the neuron importance (%s)",
                      taylor_neurons(p) ? "taylor: gradients of the loss on it" : "amp: activations on it");
    bool need_layers = p->drop_attn || p->drop_mlp || p->drop_blocks || p->budget == HR_BUDGET_CFSP ||
                       (p->drop_sublayers && !by_output(p));
    if (need_layers && !has_layers(p->scores) && !p->text)
        return hr_err(HR_ERR_INVALID_ARG, "dropping sublayers or blocks and the cfsp budget need layer metrics "
                                          "(layers.json from headroom heads) or calibration text");
    if (p->uniform && p->budget != HR_BUDGET_PER_LAYER)
        return hr_err(HR_ERR_INVALID_ARG, "uniform pruning needs the per-layer budget");
    if (p->text && !tok) return hr_err(HR_ERR_INVALID_ARG, "calibration text needs a tokenizer");
    if ((unsigned)p->budget > HR_BUDGET_CFSP) return hr_err(HR_ERR_INVALID_ARG, "unknown budget %d", (int)p->budget);
    return HR_OK;
}

/* Head scores: the table's keep order (raw scores kept for the report), or
 * seeded uniform random numbers. */
static hr_status head_scores(hr_prune_result *r, const hr_prune_params *p) {
    const hr_config *c = &r->base->cfg;
    size_t n = (size_t)c->n_layers * hr_config_max_heads(c);
    r->head_raw = malloc(sizeof(float) * (n ? n : 1));   // (n_layers, max_heads) as stored
    r->head_order = malloc(sizeof(float) * (n ? n : 1)); // (n_layers, max_heads) higher = keep
    if (!r->head_raw || !r->head_order) return hr_err(HR_ERR_NOMEM, "out of memory");
    if (strcmp(p->method, "random") == 0) {
        hr_rng rng = hr_rng_new(p->seed);
        for (size_t i = 0; i < n; i++) {
            r->head_raw[i] = (float)hr_rng_double(&rng);
            r->head_order[i] = p->invert ? -r->head_raw[i] : r->head_raw[i];
        }
        return HR_OK;
    }
    hr_status st = hr_scores_keep_order(p->scores, p->method, p->invert, r->head_order);
    if (st != HR_OK) return st;
    int i = hr_scores_method_index(p->scores, p->method), mh = hr_config_max_heads(c);
    r->score_kind = hr_scores_method_kind(p->scores, i);
    for (int l = 0; l < c->n_layers; l++)
        for (int h = 0; h < mh; h++) r->head_raw[(size_t)l * mh + h] = (float)hr_scores_head(p->scores, i, l, h);
    return HR_OK;
}

/* Layer scores for drops and cfsp from the table: the chosen metric, or
 * the defaults with their fallbacks. */
static hr_status table_layer_scores(hr_prune_result *r, const hr_prune_params *p) {
    static const char *defaults[3][2] = {{"attn_kl", "attn_sim"}, {"mlp_kl", "mlp_sim"}, {"block_influence", NULL}};
    for (int k = 0; k < 3; k++) {
        const char *cand[2] = {p->layer_metric ? p->layer_metric : defaults[k][0],
                               p->layer_metric ? NULL : defaults[k][1]};
        hr_status first = HR_OK;
        char first_msg[1024] = "";
        for (int t = 0; t < 2 && cand[t] && !r->lay_name[k][0]; t++) {
            hr_status st = hr_scores_layer_metric(p->scores, cand[t], r->lay[k]);
            if (st == HR_OK) snprintf(r->lay_name[k], sizeof r->lay_name[k], "%s", cand[t]);
            else if (t == 0) first = st, snprintf(first_msg, sizeof first_msg, "%s", hr_last_error());
        }
        bool joint = p->drop_sublayers && !by_output(p);
        bool needed = (k == 0 && (p->drop_attn || joint)) || (k == 1 && (p->drop_mlp || joint)) ||
                      (k == 2 && (p->drop_blocks || p->budget == HR_BUDGET_CFSP));
        if (!r->lay_name[k][0] && needed) return hr_err(first, "%s", first_msg);
    }
    return HR_OK;
}

/* Calibration: tokens, a context, and the layer importances when the
 * table has no layer metrics. */
static hr_status calibrate(hr_prune_result *r, const hr_prune_params *p, const hr_tokenizer *tok, hr_context **ctx,
                           int32_t **ids, size_t *n_ids) {
    const hr_config *c = &r->base->cfg;
    hr_status st =
        hr_calib_tokens(tok, p->text, p->text_len, p->max_tokens ? p->max_tokens : HR_CALIB_SURGERY_TOKENS, ids, n_ids);
    if (st != HR_OK) return st;
    hr_context_params cp = hr_context_default_params();
    cp.n_ctx = hr_calib_window(c->seq_len, p->window);
    if (cp.n_ctx > c->seq_len)
        return hr_err(HR_ERR_RANGE, "calibration window %d exceeds the model's context length %d", cp.n_ctx,
                      c->seq_len);
    cp.n_threads = p->n_threads;
    if ((st = hr_context_new(r->base, &cp, ctx)) != HR_OK) return st;
    if (has_layers(p->scores)) return HR_OK;
    st = hr_prune_layer_importance(*ctx, *ids, *n_ids, 0, r->lay[2], r->lay[0], r->lay[1]);
    snprintf(r->lay_name[0], sizeof r->lay_name[0], "attn_sim (computed)");
    snprintf(r->lay_name[1], sizeof r->lay_name[1], "mlp_sim (computed)");
    snprintf(r->lay_name[2], sizeof r->lay_name[2], "block_influence (computed)");
    return st;
}

/* Units of the layers whose part is still there. */
static int64_t eligible(const hr_config *c, const hr_prune_spec *s, bool heads) {
    int64_t n = 0;
    for (int l = 0; l < c->n_layers; l++)
        if (!hr_prune_spec_dropped(s, l, heads ? HR_PRUNE_ATTN : HR_PRUNE_MLP)) n += heads ? c->n_head[l] : c->n_ff[l];
    return n;
}

static hr_status amount(const char *text, int64_t n_units, const char *what, int64_t *out) {
    hr_status st = hr_parse_amount(text, n_units, out);
    if (st != HR_OK) hr_err_prefix("%s to remove", what);
    return st;
}

/* drop_sublayers: FinerCut's output change (iterative or once), or the
 * joint layer drop by the layer metrics. */
static hr_status plan_sublayers(hr_prune_result *r, const hr_prune_params *p, hr_context *ctx, const int32_t *ids,
                                size_t n_ids) {
    int k = p->drop_sublayers, J = 2 * r->base->cfg.n_layers;
    r->sub_order = malloc(sizeof(int) * (size_t)k);                      // (k)
    r->sub_score = malloc(sizeof(double) * (size_t)k);                   // (k)
    r->sub_step_scores = malloc(sizeof(double) * (size_t)k * (size_t)J); // (k, 2 n_layers)
    if (!r->sub_order || !r->sub_score || !r->sub_step_scores) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_status st;
    if (by_output(p)) {
        st = hr_prune_plan_sublayers(ctx, ids, n_ids, 0, k, p->iterative, r->spec, r->sub_order, r->sub_step_scores);
        snprintf(r->sub_criterion, sizeof r->sub_criterion,
                 "finercut: mean Jensen-Shannon divergence (nats) of the "
                 "next-token distributions from the base model's, %s",
                 p->iterative ? "re-scored after each removal" : "ranked once");
    } else {
        st = hr_prune_joint_drop(r->base, r->lay[0], r->lay[1], k, r->spec, r->sub_order, r->sub_step_scores);
        snprintf(r->sub_criterion, sizeof r->sub_criterion,
                 "joint layer drop (What Matters in Transformers): "
                 "layer metrics %s / %s, ranked once",
                 r->lay_name[0], r->lay_name[1]);
    }
    if (st != HR_OK) return st;
    r->n_sub = k;
    for (int i = 0; i < k; i++) r->sub_score[i] = r->sub_step_scores[(size_t)i * J + r->sub_order[i]];
    return HR_OK;
}

/* First-order Taylor importance of every neuron (hr_taylor_neuron_scores)
 * from the whole windows of the calibration tokens. */
static hr_status taylor_neuron_scores(hr_prune_result *r, const hr_prune_params *p, const int32_t *ids, size_t n_ids) {
    const hr_config *c = &r->base->cfg;
    int W = hr_calib_window(c->seq_len, p->window), ffm = hr_config_max_ff(c);
    if ((size_t)W > n_ids) W = (int)n_ids;
    int n_win = (int)(n_ids / (size_t)W);
    double *s = malloc(sizeof(double) * (size_t)c->n_layers * (size_t)(ffm > 0 ? ffm : 1)); // (n_layers, max_ff)
    if (!s) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_status st = hr_progress_phase("neuron importance (taylor)", "windows", n_win);
    if (st == HR_OK) st = hr_taylor_neuron_scores(r->base, ids, n_win, W, p->n_threads, s);
    if (st == HR_OK) st = hr_progress_update(n_win);
    for (int l = 0; st == HR_OK && l < c->n_layers; l++)
        for (int j = 0; j < c->n_ff[l]; j++) r->ff_scores[l][j] = (float)s[(size_t)l * ffm + j];
    free(s);
    r->taylor_windows = n_win, r->taylor_window = W;
    return st;
}

static hr_status plan(hr_prune_result *r, const hr_prune_params *p, hr_context *ctx, const int32_t *ids, size_t n_ids) {
    const hr_model *m = r->base;
    const hr_config *c = &m->cfg;
    hr_prune_spec *s = r->spec;
    hr_status st = HR_OK;
    if (p->drop_blocks) st = hr_prune_plan_layers(m, r->lay[2], p->drop_blocks, HR_PRUNE_BLOCK, s);
    if (st == HR_OK && p->drop_attn) st = hr_prune_plan_layers(m, r->lay[0], p->drop_attn, HR_PRUNE_ATTN, s);
    if (st == HR_OK && p->drop_mlp) st = hr_prune_plan_layers(m, r->lay[1], p->drop_mlp, HR_PRUNE_MLP, s);
    if (st == HR_OK && p->drop_sublayers) st = plan_sublayers(r, p, ctx, ids, n_ids);
    if (st != HR_OK) return st;
    const float *imp = r->lay_name[2][0] ? r->lay[2] : NULL;
    hr_prune_plan_params pp = {p->budget, p->uniform, p->strict};
    int64_t n = 0;
    if (p->heads && (st = amount(p->heads, eligible(c, s, true), "heads", &n)) == HR_OK)
        st = hr_prune_plan_heads(m, r->head_order, imp, n, &pp, s, &r->heads);
    if (st != HR_OK || !p->mlp) return st;
    for (int l = 0; l < c->n_layers; l++)
        if (!(r->ff_scores[l] = malloc(sizeof(float) * ((size_t)c->n_ff[l] + 1))))
            return hr_err(HR_ERR_NOMEM, "out of memory");
    if ((st = amount(p->mlp, eligible(c, s, false), "MLP neurons", &n)) != HR_OK) return st;
    st = taylor_neurons(p) ? taylor_neuron_scores(r, p, ids, n_ids)
                           : hr_prune_neuron_importance(ctx, ids, n_ids, 0, r->ff_scores);
    if (st != HR_OK) return st;
    return hr_prune_plan_ff(m, (const float *const *)r->ff_scores, imp, n, &pp, s, &r->neurons);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

hr_status hr_prune_run(const hr_model *m, const hr_tokenizer *tok, const hr_prune_params *p, hr_prune_result **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!m || !p) return hr_err(HR_ERR_INVALID_ARG, "no model or parameters given");
    hr_status st = check_params(p, tok);
    if (st != HR_OK) return st;
    hr_prune_result *r = calloc(1, sizeof *r);
    if (!r) return hr_err(HR_ERR_NOMEM, "out of memory");
    r->base = m;
    r->params = *p;
    r->method = dup_or_null(p->heads ? p->method : NULL);
    r->heads_amount = dup_or_null(p->heads);
    r->mlp_amount = dup_or_null(p->mlp);
    r->mlp_taylor = taylor_neurons(p);
    r->score_kind = HR_SCORE_IMPORTANCE;
    if (p->scores) {
        snprintf(r->heads_source, sizeof r->heads_source, "%s", hr_scores_heads_source(p->scores));
        snprintf(r->layers_source, sizeof r->layers_source, "%s", hr_scores_layers_source(p->scores));
    }
    hr_context *ctx = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    hr_progress_run
        run; /* calibration phases: layer importance (without layers.json), neuron importance, sublayer search */
    hr_progress_enter(&run, p->progress_phase, p->progress_user_data,
                      (p->text && !has_layers(p->scores)) + (p->mlp != NULL) + by_output(p));
    st = hr_prune_spec_new(m, &r->spec);
    if (st == HR_OK) hr_prune_spec_set_uneven_duplicate(r->spec, p->uneven_duplicate);
    if (st == HR_OK && p->heads) st = head_scores(r, p);
    if (st == HR_OK && has_layers(p->scores)) st = table_layer_scores(r, p);
    if (st == HR_OK && p->text) st = calibrate(r, p, tok, &ctx, &ids, &n_ids);
    if (st == HR_OK) st = plan(r, p, ctx, ids, n_ids);
    /* calibration is over: its context goes, and with it the model's panels
     * unless someone else holds them (as big as the model: an 8B model's
     * would not fit beside the pruned one on 24 GB) */
    if (ctx) { /* only panels this run packed for itself, not ones a caller's earlier context left */
        hr_context_free(ctx);
        ctx = NULL;
        hr_model_packed_drop_unused(m);
    }
    if (st == HR_OK) st = hr_prune_apply(m, r->spec, &r->pruned);
    hr_progress_leave(&run);
    free(ids);
    if (st != HR_OK) {
        hr_prune_result_free(r);
        return st;
    }
    /* borrowed pointers are not kept */
    r->params.scores = NULL, r->params.text = NULL, r->params.method = NULL;
    r->params.heads = NULL, r->params.mlp = NULL, r->params.layer_metric = NULL, r->params.mlp_method = NULL;
    *out = r;
    return HR_OK;
}
