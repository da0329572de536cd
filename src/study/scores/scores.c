/* The score table (see headroom/scores.h): built from a head-lab result or
 * read from heads.json / layers.json, shape-checked, oriented. */
#include "headroom/scores.h"
#include "headroom/context.h"
#include "study/scores/scores_internal.h"
#include "core/internal.h"
#include "model/config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *hr_score_kind_name(hr_score_kind k) {
    switch (k) {
    case HR_SCORE_IMPORTANCE: return "importance";
    case HR_SCORE_HARMLESSNESS: return "harmlessness";
    case HR_SCORE_TRAIT: return "trait";
    case HR_SCORE_STEERING: return "steering";
    }
    return "unknown";
}

hr_score_kind hr_scores_kind_of(const char *higher) {
    if (higher && strcmp(higher, "more important") == 0) return HR_SCORE_IMPORTANCE;
    if (higher && strcmp(higher, "more harmless") == 0) return HR_SCORE_HARMLESSNESS;
    if (higher && strncmp(higher, "prune first", 11) == 0) return HR_SCORE_STEERING;
    return HR_SCORE_TRAIT;
}

hr_status hr_scores_new(const hr_config *c, hr_scores **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!c) return hr_err(HR_ERR_INVALID_ARG, "no model configuration given");
    hr_scores *s = calloc(1, sizeof *s);
    if (!s) return hr_err(HR_ERR_NOMEM, "out of memory");
    s->n_layers = c->n_layers;
    s->max_heads = hr_config_max_heads(c);
    s->head_dim = c->head_dim;
    for (int l = 0; l < c->n_layers; l++) s->n_head[l] = c->n_head[l], s->n_head_kv[l] = c->n_head_kv[l];
    *out = s;
    return HR_OK;
}

void hr_scores_clear_heads(hr_scores *s) {
    for (int i = 0; i < s->n_methods; i++) free(s->methods[i].v);
    free(s->methods);
    s->methods = NULL;
    s->n_methods = 0;
    s->heads_source[0] = 0;
}

void hr_scores_clear_layers(hr_scores *s) {
    for (int i = 0; i < s->n_metrics; i++) free(s->metrics[i].v);
    free(s->metrics);
    s->metrics = NULL;
    s->n_metrics = 0;
    s->layers_source[0] = 0;
}

void hr_scores_free(hr_scores *s) {
    if (!s) return;
    hr_scores_clear_heads(s);
    hr_scores_clear_layers(s);
    free(s);
}

/* Appends a method with all scores NaN; returns its index or -1 (NOMEM). */
int hr_scores_add_method(hr_scores *s, const char *id, const char *higher) {
    score_method *m = realloc(s->methods, sizeof *m * (size_t)(s->n_methods + 1));
    if (!m) return -1;
    s->methods = m;
    score_method *e = &m[s->n_methods];
    memset(e, 0, sizeof *e);
    snprintf(e->id, sizeof e->id, "%s", id);
    snprintf(e->higher, sizeof e->higher, "%s", higher ? higher : "");
    e->kind = hr_scores_kind_of(higher);
    size_t n = (size_t)s->n_layers * (size_t)s->max_heads;
    e->v = malloc(sizeof(double) * (n ? n : 1));
    if (!e->v) return -1;
    for (size_t i = 0; i < n; i++) e->v[i] = NAN;
    return s->n_methods++;
}

int hr_scores_add_metric(hr_scores *s, const char *id) {
    score_metric *m = realloc(s->metrics, sizeof *m * (size_t)(s->n_metrics + 1));
    if (!m) return -1;
    s->metrics = m;
    score_metric *e = &m[s->n_metrics];
    memset(e, 0, sizeof *e);
    snprintf(e->id, sizeof e->id, "%s", id);
    e->v = malloc(sizeof(double) * (size_t)(s->n_layers ? s->n_layers : 1));
    if (!e->v) return -1;
    for (int l = 0; l < s->n_layers; l++) e->v[l] = NAN;
    return s->n_metrics++;
}

hr_status hr_scores_compute(const hr_model *m, const hr_tokenizer *tok, const char *text, size_t len,
                            const hr_heads_params *p, const char *method, int n_threads, hr_scores **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!m || !tok || !text || !method) return hr_err(HR_ERR_INVALID_ARG, "no model, tokenizer, text or method given");
    int n_methods = hr_heads_n_methods();
    bool *selected = calloc((size_t)n_methods, sizeof(bool));
    if (!selected) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_status st = hr_heads_method_index(method) >= 0
                       ? hr_heads_parse_methods(method, selected)
                       : hr_err(HR_ERR_INVALID_ARG, "'%s' is not a head-lab method", method);
    hr_heads_params hp = p ? *p : hr_heads_default_params();
    hr_encode_params ep = hr_encode_default_params();
    ep.add_bos = false;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (st == HR_OK) st = hr_tokenizer_encode(tok, text, len, &ep, &ids, &n_ids);
    int32_t bos = hr_tokenizer_bos(tok);
    hp.tokens = ids, hp.n_tokens = n_ids, hp.bos = bos >= 0 ? bos : 0, hp.tok = tok;
    hr_context_params cp = hr_context_default_params();
    cp.n_threads = n_threads;
    hr_context *ctx = NULL;
    hr_heads_result *r = NULL;
    if (st == HR_OK) st = hr_context_new(m, &cp, &ctx);
    if (st == HR_OK) st = hr_heads_run(ctx, &hp, selected, &r);
    if (st == HR_OK) st = hr_scores_from_heads(r, hr_model_config(m), out);
    hr_heads_result_free(r);
    hr_context_free(ctx);
    hr_free(ids);
    free(selected);
    return st;
}

hr_status hr_scores_from_heads(const hr_heads_result *r, const hr_config *c, hr_scores **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!r || !c) return hr_err(HR_ERR_INVALID_ARG, "no head-lab result or model configuration given");
    if (hr_heads_result_n_layers(r) != c->n_layers)
        return hr_err(HR_ERR_INVALID_ARG, "the head-lab result has %d layers, the model %d",
                      hr_heads_result_n_layers(r), c->n_layers);
    for (int l = 0; l < c->n_layers; l++)
        if (hr_heads_result_n_heads(r, l) != c->n_head[l])
            return hr_err(HR_ERR_INVALID_ARG, "the head-lab result has %d heads in layer %d, the model %d",
                          hr_heads_result_n_heads(r, l), l, c->n_head[l]);
    hr_scores *s;
    hr_status st = hr_scores_new(c, &s);
    if (st != HR_OK) return st;
    for (int i = 0; st == HR_OK && i < hr_heads_n_methods(); i++) {
        if (!hr_heads_result_has(r, i) && !hr_heads_result_note(r, i)[0]) continue;
        const hr_head_method_info *mi = hr_heads_method_info(i);
        int k = hr_scores_add_method(s, mi->id, mi->higher);
        if (k < 0) {
            st = hr_err(HR_ERR_NOMEM, "out of memory");
            break;
        }
        for (int l = 0; l < c->n_layers; l++)
            for (int h = 0; h < c->n_head[l]; h++)
                s->methods[k].v[(size_t)l * s->max_heads + h] = hr_heads_score(r, i, l, h);
    }
    for (int i = 0; st == HR_OK && i < hr_heads_n_layer_metrics(); i++) {
        int k = hr_scores_add_metric(s, hr_heads_layer_metric_info(i)->id);
        if (k < 0) {
            st = hr_err(HR_ERR_NOMEM, "out of memory");
            break;
        }
        for (int l = 0; l < c->n_layers; l++) s->metrics[k].v[l] = hr_heads_layer_score(r, i, l);
    }
    if (st != HR_OK) {
        hr_scores_free(s);
        return st;
    }
    snprintf(s->heads_source, sizeof s->heads_source, "head-lab result");
    snprintf(s->layers_source, sizeof s->layers_source, "head-lab result");
    *out = s;
    return HR_OK;
}

/* ---- accessors ---- */

const char *hr_scores_heads_source(const hr_scores *s) { return s ? s->heads_source : ""; }
const char *hr_scores_layers_source(const hr_scores *s) { return s ? s->layers_source : ""; }
int hr_scores_n_methods(const hr_scores *s) { return s ? s->n_methods : 0; }

const char *hr_scores_method_id(const hr_scores *s, int i) {
    return s && i >= 0 && i < s->n_methods ? s->methods[i].id : NULL;
}

const char *hr_scores_method_higher(const hr_scores *s, int i) {
    return s && i >= 0 && i < s->n_methods ? s->methods[i].higher : NULL;
}

hr_score_kind hr_scores_method_kind(const hr_scores *s, int i) {
    return s && i >= 0 && i < s->n_methods ? s->methods[i].kind : HR_SCORE_TRAIT;
}

int hr_scores_method_index(const hr_scores *s, const char *id) {
    for (int i = 0; s && id && i < s->n_methods; i++)
        if (strcmp(s->methods[i].id, id) == 0) return i;
    return -1;
}

double hr_scores_head(const hr_scores *s, int i, int layer, int head) {
    if (!s || i < 0 || i >= s->n_methods || layer < 0 || layer >= s->n_layers || head < 0 || head >= s->n_head[layer])
        return NAN;
    return s->methods[i].v[(size_t)layer * s->max_heads + head];
}

int hr_scores_n_layer_metrics(const hr_scores *s) { return s ? s->n_metrics : 0; }

const char *hr_scores_layer_metric_id(const hr_scores *s, int i) {
    return s && i >= 0 && i < s->n_metrics ? s->metrics[i].id : NULL;
}

/* "a, b, c" of the ids present (truncated to cap). */
static void id_list(const hr_scores *s, bool metrics, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = 0;
    int n = metrics ? s->n_metrics : s->n_methods;
    for (int i = 0; i < n && len + 8 < cap; i++) {
        int w = snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", metrics ? s->metrics[i].id : s->methods[i].id);
        if (w < 0 || (size_t)w >= cap - len) break;
        len += (size_t)w;
    }
    if (!n) snprintf(buf, cap, "none");
}

hr_status hr_scores_find_method(const hr_scores *s, const char *method, int *index) {
    if (!s || !method) return hr_err(HR_ERR_INVALID_ARG, "no score table or method given");
    if (!s->n_methods && !s->heads_source[0]) return hr_err(HR_ERR_NOT_FOUND, "no head scores were loaded");
    int i = hr_scores_method_index(s, method);
    if (i < 0) {
        char list[512];
        id_list(s, false, list, sizeof list);
        return hr_err(HR_ERR_NOT_FOUND, "%s has no scores for method '%s' (it has: %s)", s->heads_source, method, list);
    }
    const score_method *m = &s->methods[i];
    int first_null = -1, n_null = 0, n_all = 0;
    for (int l = 0; l < s->n_layers; l++)
        for (int h = 0; h < s->n_head[l]; h++, n_all++)
            if (isnan(m->v[(size_t)l * s->max_heads + h])) {
                if (first_null < 0) first_null = l * s->max_heads + h;
                n_null++;
            }
    if (n_null && n_null == n_all)
        return hr_err(HR_ERR_FORMAT,
                      "%s: method '%s' has no score for any head (null everywhere: the head lab skipped it)",
                      s->heads_source, method);
    if (n_null)
        return hr_err(HR_ERR_FORMAT, "%s: head %d.%d has no score for '%s' (null)%s", s->heads_source,
                      first_null / s->max_heads, first_null % s->max_heads, method,
                      n_null > 1 ? " (nor do other heads)" : "");
    *index = i;
    return HR_OK;
}

hr_status hr_scores_keep_order(const hr_scores *s, const char *method, bool invert, float *out) {
    int i;
    hr_status st = hr_scores_find_method(s, method, &i);
    if (st != HR_OK) return st;
    const score_method *m = &s->methods[i];
    bool negate = (m->kind == HR_SCORE_HARMLESSNESS || m->kind == HR_SCORE_STEERING) != invert;
    for (int l = 0; l < s->n_layers; l++)
        for (int h = 0; h < s->max_heads; h++) {
            size_t k = (size_t)l * s->max_heads + h;
            float v = h < s->n_head[l] ? (float)m->v[k] : NAN;
            out[k] = negate ? -v : v;
        }
    return HR_OK;
}

hr_status hr_scores_find_metric(const hr_scores *s, const char *metric, int *index) {
    if (!s || !metric) return hr_err(HR_ERR_INVALID_ARG, "no score table or metric given");
    if (!s->n_metrics && !s->layers_source[0]) return hr_err(HR_ERR_NOT_FOUND, "no layer metrics were loaded");
    for (int i = 0; i < s->n_metrics; i++) {
        if (strcmp(s->metrics[i].id, metric) != 0) continue;
        for (int l = 0; l < s->n_layers; l++)
            if (isnan(s->metrics[i].v[l]))
                return hr_err(HR_ERR_FORMAT, "%s: layer %d has no '%s' value (null)", s->layers_source, l, metric);
        *index = i;
        return HR_OK;
    }
    char list[512];
    id_list(s, true, list, sizeof list);
    return hr_err(HR_ERR_NOT_FOUND, "%s has no layer metric '%s' (it has: %s)", s->layers_source, metric, list);
}

hr_status hr_scores_layer_metric(const hr_scores *s, const char *metric, float *out) {
    int i;
    hr_status st = hr_scores_find_metric(s, metric, &i);
    if (st != HR_OK) return st;
    for (int l = 0; l < s->n_layers; l++) out[l] = (float)s->metrics[i].v[l];
    return HR_OK;
}

/* ---- KV plans ---- */

static bool shape_is(const hr_scores *s, const hr_config *c) {
    if (s->n_layers != c->n_layers || s->head_dim != c->head_dim) return false;
    for (int l = 0; l < c->n_layers; l++)
        if (s->n_head[l] != c->n_head[l] || s->n_head_kv[l] != c->n_head_kv[l]) return false;
    return true;
}

hr_status hr_scores_kv_plan(const hr_scores *s, const hr_config *c, const char *method, float fraction,
                            hr_kv_policy rest, hr_kv_plan **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!s || !c) return hr_err(HR_ERR_INVALID_ARG, "no score table or model configuration given");
    if (!shape_is(s, c)) return hr_err(HR_ERR_INVALID_ARG, "the score table was made for a model of another shape");
    if (!method) method = "streaming";
    size_t n = (size_t)s->n_layers * s->max_heads;
    float *order = malloc(sizeof(float) * (n ? n : 1)); // (n_layers, max_heads)
    if (!order) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_status st = hr_scores_keep_order(s, method, false, order);
    /* Attention mass inside sink + recent window says how well a head
     * streams: the heads with the least of it need their full cache. */
    bool streams = strcmp(method, "streaming") == 0 || strcmp(method, "sink") == 0;
    for (size_t i = 0; st == HR_OK && streams && i < n; i++) order[i] = 1.0f - order[i];
    if (st == HR_OK) st = hr_kv_plan_from_scores(c, order, fraction, rest, out);
    free(order);
    return st;
}

hr_status hr_scores_top_heads(const hr_scores *s, const char *method, int k, char **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!s) return hr_err(HR_ERR_INVALID_ARG, "no score table given");
    size_t n = (size_t)s->n_layers * s->max_heads;
    float *order = malloc(sizeof(float) * (n ? n : 1)); // (n_layers, max_heads) keep order
    char *list = malloc((size_t)k * 24 + 1);
    if (!order || !list) {
        free(order), free(list);
        return hr_err(HR_ERR_NOMEM, "out of memory");
    }
    /* a steering score's heads to remove come first: its highest scores */
    int mi = hr_scores_method_index(s, method);
    bool steering = mi >= 0 && s->methods[mi].kind == HR_SCORE_STEERING;
    hr_status st = hr_scores_keep_order(s, method, steering, order);
    int avail = 0;
    for (size_t i = 0; st == HR_OK && i < n; i++) avail += !isnan(order[i]);
    if (st == HR_OK && (k < 1 || k > avail))
        st = hr_err(HR_ERR_RANGE, "top %d heads by '%s': the table scores %d heads", k, method, avail);
    size_t len = 0;
    for (int r = 0; st == HR_OK && r < k; r++) {
        size_t best = n;
        for (size_t i = 0; i < n; i++) /* highest first; ties: the lower (layer, head) */
            if (!isnan(order[i]) && (best == n || order[i] > order[best])) best = i;
        len += (size_t)sprintf(list + len, "%s%d.%d", r ? "," : "", (int)(best / (size_t)s->max_heads),
                               (int)(best % (size_t)s->max_heads));
        order[best] = NAN;
    }
    free(order);
    if (st != HR_OK) {
        free(list);
        return st;
    }
    *out = list;
    return HR_OK;
}
