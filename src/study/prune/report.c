/* prune.json: what a pruning run removed and why (hr_prune_report_json). */
#include "headroom/prune.h"
#include "study/prune/prune_internal.h"
#include "model/config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cJSON *int_pair(int before, int after) {
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cJSON_CreateNumber(before));
    cJSON_AddItemToArray(a, cJSON_CreateNumber(after));
    return a;
}

static cJSON *layer_record(const hr_prune_result *r, int l, const hr_prune_layer_result *res) {
    const hr_config *c = &r->base->cfg;
    const hr_prune_spec *s = r->spec;
    int mh = hr_config_max_heads(c), g = c->n_head_kv[l] ? c->n_head[l] / c->n_head_kv[l] : 1;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "layer", l);
    bool block = hr_prune_spec_dropped(s, l, HR_PRUNE_BLOCK);
    cJSON_AddBoolToObject(j, "block_dropped", block);
    cJSON_AddBoolToObject(j, "attention_dropped", hr_prune_spec_dropped(s, l, HR_PRUNE_ATTN) && !block);
    cJSON_AddBoolToObject(j, "mlp_dropped", hr_prune_spec_dropped(s, l, HR_PRUNE_MLP) && !block);
    cJSON_AddItemToObject(j, "n_head", int_pair(c->n_head[l], res->n_head));
    cJSON_AddItemToObject(j, "n_head_kv", int_pair(c->n_head_kv[l], res->n_head_kv));
    cJSON_AddItemToObject(j, "n_ff", int_pair(c->n_ff[l], res->n_ff));
    cJSON_AddBoolToObject(j, "kv_duplicated", res->n_head_kv > res->n_kv_distinct);
    cJSON *rh = cJSON_AddArrayToObject(j, "removed_heads"), *rkv = cJSON_AddArrayToObject(j, "removed_kv_heads");
    bool whole = hr_prune_spec_dropped(s, l, HR_PRUNE_ATTN);
    for (int h = 0; h < c->n_head[l]; h++) {
        if (!whole && hr_prune_spec_keeps_head(s, l, h)) continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "head", h);
        float sc = r->head_raw ? r->head_raw[(size_t)l * mh + h] : NAN;
        if (isfinite(sc)) cJSON_AddNumberToObject(e, "score", sc);
        cJSON_AddItemToArray(rh, e);
    }
    for (int k = 0; k < c->n_head_kv[l]; k++) {
        int kept = 0;
        for (int i = 0; i < g; i++) kept += hr_prune_spec_keeps_head(s, l, k * g + i);
        if (whole || !kept) cJSON_AddItemToArray(rkv, cJSON_CreateNumber(k));
    }
    int nrm = 0;
    cJSON *ids = cJSON_CreateArray();
    for (int f = 0; f < c->n_ff[l]; f++)
        if (!hr_prune_spec_keeps_neuron(s, l, f)) nrm++, cJSON_AddItemToArray(ids, cJSON_CreateNumber(f));
    cJSON_AddNumberToObject(j, "removed_neurons", nrm);
    cJSON_AddItemToObject(j, "removed_neuron_ids", ids);
    static const char *keys[3] = {"attn_score", "mlp_score", "block_score"};
    for (int k = 0; k < 3; k++)
        if (r->lay_name[k][0]) cJSON_AddNumberToObject(j, keys[k], r->lay[k][l]);
    return j;
}

/* "<what>_requested" (the amount as given), its count, what was removed
 * and, when they differ, why. */
static void amounts(cJSON *j, const char *what, const char *removed_key, const char *amount,
                    const hr_prune_plan_result *pr) {
    char key[64];
    snprintf(key, sizeof key, "%s_requested", what);
    cJSON_AddStringToObject(j, key, amount ? amount : "");
    snprintf(key, sizeof key, "%s_requested_count", removed_key);
    cJSON_AddNumberToObject(j, key, (double)pr->requested);
    snprintf(key, sizeof key, "%s_removed", removed_key);
    cJSON_AddNumberToObject(j, key, (double)pr->removed);
    if (pr->removed != pr->requested) {
        snprintf(key, sizeof key, "%s_reason", removed_key);
        cJSON_AddStringToObject(j, key, pr->reason);
    }
}

/* "sublayer_drops": every drop_sublayers step in order, the choice and
 * the score of every candidate at that step. */
static void sublayer_steps(cJSON *j, const hr_prune_result *r) {
    if (!r->n_sub) return;
    static const char *parts[2] = {"attention", "mlp"};
    int J = 2 * r->base->cfg.n_layers;
    cJSON_AddStringToObject(j, "sublayer_criterion", r->sub_criterion);
    cJSON *arr = cJSON_AddArrayToObject(j, "sublayer_drops");
    for (int i = 0; i < r->n_sub; i++) {
        cJSON *e = cJSON_CreateObject(), *cand;
        int c = r->sub_order[i];
        cJSON_AddNumberToObject(e, "step", i + 1);
        cJSON_AddNumberToObject(e, "layer", c / 2);
        cJSON_AddStringToObject(e, "sublayer", parts[c % 2]);
        cJSON_AddNumberToObject(e, "score", r->sub_score[i]);
        cand = cJSON_AddArrayToObject(e, "candidates");
        for (int q = 0; q < J; q++) {
            double v = r->sub_step_scores[(size_t)i * J + q];
            if (isnan(v)) continue;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "layer", q / 2);
            cJSON_AddStringToObject(o, "sublayer", parts[q % 2]);
            cJSON_AddNumberToObject(o, "score", v);
            cJSON_AddItemToArray(cand, o);
        }
        cJSON_AddItemToArray(arr, e);
    }
}

/* "loraprune": the run's settings and every iteration with what it removed. */
static void loraprune_steps(cJSON *j, const hr_prune_result *r) {
    if (!r->lp) return;
    const hr_loraprune_params *p = &r->lp_params;
    cJSON *o = cJSON_AddObjectToObject(j, "loraprune");
    cJSON_AddStringToObject(o, "criterion",
                            "LoRAPrune (Zhang et al. 2023): sum over the unit's elements of adapted matrices of "
                            "(G W')^2, G = s (G_B A + B G_A - G_B G_A), W' = W + s B A; moving average over steps");
    cJSON_AddNumberToObject(o, "iterations", p->iterations);
    cJSON_AddNumberToObject(o, "steps", p->train.steps);
    cJSON_AddNumberToObject(o, "ema", p->ema);
    cJSON_AddNumberToObject(o, "lora_rank", p->train.lora_rank);
    cJSON_AddNumberToObject(o, "lr", p->train.lr);
    cJSON_AddNumberToObject(o, "seed", (double)p->train.seed);
    if (p->cfsp_ranks) {
        cJSON *rk = cJSON_AddArrayToObject(o, "cfsp_layer_ranks");
        for (int l = 0; l < r->base->cfg.n_layers; l++) cJSON_AddItemToArray(rk, cJSON_CreateNumber(r->lp_ranks[l]));
    }
    cJSON_AddNumberToObject(o, "heldout_loss_before", r->lp_heldout_before);
    cJSON_AddNumberToObject(o, "heldout_loss", r->lp_heldout);
    cJSON *arr = cJSON_AddArrayToObject(o, "schedule");
    for (int i = 0; i < r->lp_n_iters; i++) {
        const hr_loraprune_iter *it = &r->lp_iters[i];
        cJSON *e = cJSON_CreateObject(), *h, *n;
        cJSON_AddNumberToObject(e, "iteration", i + 1);
        cJSON_AddNumberToObject(e, "after_step", it->step);
        cJSON_AddNumberToObject(e, "loss", it->loss);
        cJSON_AddNumberToObject(e, "heads_removed", it->n_heads);
        cJSON_AddNumberToObject(e, "neurons_removed", it->n_neurons);
        h = cJSON_AddArrayToObject(e, "heads");
        for (int k = 0; k < it->n_heads; k++) cJSON_AddItemToArray(h, int_pair(it->heads[2 * k], it->heads[2 * k + 1]));
        n = cJSON_AddArrayToObject(e, "neurons");
        for (int k = 0; k < it->n_neurons; k++)
            cJSON_AddItemToArray(n, int_pair(it->neurons[2 * k], it->neurons[2 * k + 1]));
        cJSON_AddItemToArray(arr, e);
    }
}

static void add_path(cJSON *j, const char *key, const char *path) {
    if (path) cJSON_AddStringToObject(j, key, path);
}

hr_status hr_prune_report_json(const hr_prune_result *r, const hr_prune_report_meta *meta, char **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!r) return hr_err(HR_ERR_INVALID_ARG, "no pruning result given");
    hr_prune_report_meta none = {NULL, NULL, NULL, NULL};
    if (!meta) meta = &none;
    const hr_config *c = &r->base->cfg;
    const hr_prune_params *p = &r->params;
    hr_prune_layer_result *res = calloc((size_t)c->n_layers + 1, sizeof *res);
    if (!res) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_status st = hr_prune_check(r->base, r->spec, res);
    if (st != HR_OK) {
        free(res);
        return st;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", "headroom.prune");
    cJSON_AddNumberToObject(j, "format_version", 1);
    cJSON_AddStringToObject(j, "base", meta->base ? meta->base : "");
    cJSON_AddStringToObject(j, "output", meta->output ? meta->output : "");
    add_path(j, "output_hf", meta->output_hf);
    cJSON_AddStringToObject(j, "architecture", hr_config_uniform(&r->pruned->cfg) ? "uniform" : "per-layer (deci)");
    cJSON_AddStringToObject(j, "head_method", r->method ? r->method : "");
    if (r->method && r->heads_source[0] && strcmp(r->method, "random") != 0) {
        cJSON_AddStringToObject(j, "scores", r->heads_source);
        cJSON_AddStringToObject(j, "score_kind", hr_score_kind_name(r->score_kind));
    }
    cJSON_AddBoolToObject(j, "inverted", p->invert);
    cJSON_AddStringToObject(j, "budget", hr_prune_budget_name(p->budget));
    cJSON_AddBoolToObject(j, "uniform", p->uniform);
    cJSON_AddStringToObject(j, "gqa_groups", p->uneven_duplicate ? "duplicate" : "even");
    char mm[256] = "";
    if (r->mlp_amount && r->mlp_taylor)
        snprintf(mm, sizeof mm,
                 "taylor: |sum of w * dL/dw over the neuron's W_gate/W_up rows and W_down column|, "
                 "gradient averaged over %d windows of %d calibration tokens",
                 r->taylor_windows, r->taylor_window);
    else if (r->mlp_amount && r->lp) snprintf(mm, sizeof mm, "loraprune: LoRA-guided importance (see \"loraprune\")");
    else if (r->mlp_amount) snprintf(mm, sizeof mm, "amp: mean |act| * ||W_down column|| on calibration text");
    cJSON_AddStringToObject(j, "mlp_method", mm);
    add_path(j, "text", meta->text);
    if (r->layers_source[0]) cJSON_AddStringToObject(j, "layer_scores", r->layers_source);
    cJSON *ls = cJSON_AddObjectToObject(j, "layer_metrics");
    static const char *keys[3] = {"attention", "mlp", "block"};
    for (int k = 0; k < 3; k++)
        if (r->lay_name[k][0]) cJSON_AddStringToObject(ls, keys[k], r->lay_name[k]);
    amounts(j, "heads", "heads", r->heads_amount, &r->heads);
    amounts(j, "mlp", "neurons", r->mlp_amount, &r->neurons);
    sublayer_steps(j, r);
    loraprune_steps(j, r);
    cJSON_AddNumberToObject(j, "params_before", (double)hr_model_n_params(r->base));
    cJSON_AddNumberToObject(j, "params_after", (double)hr_model_n_params(r->pruned));
    cJSON *arr = cJSON_AddArrayToObject(j, "layers");
    for (int l = 0; l < c->n_layers; l++) cJSON_AddItemToArray(arr, layer_record(r, l, &res[l]));
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    free(res);
    if (!s) return hr_err(HR_ERR_NOMEM, "out of memory");
    *out = s;
    return HR_OK;
}
