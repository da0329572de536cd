/* The key findings report.html opens with, worked out from heads.json and
 * layers.json (hr_report_findings, report_internal.h): the most important
 * heads and their classes, the heads of each class with the class's
 * threshold, the cheapest layers and sublayers to drop with their scores
 * and the threshold that calls them droppable, and the methods whose
 * scores are all equal (they rank nothing). */
#include "core/internal.h"
#include "headroom/heads.h"
#include "report/report_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const hr_importance_order[] = {"ablation", "ablation_kl", "ablation_greedy", "amp", NULL};

enum { TOP_HEADS = 5, CLASS_HEADS = 4, LAYER_CANDIDATES = 3 };

/* A sublayer whose removal moves the next-token distribution by at most this
 * much (mean KL, nats per token) is called droppable. */
#define HR_DROP_KL_NATS 0.05

typedef struct {
    int layer, head;
    double score;
    const cJSON *rec;
} scored;

static int by_score_desc(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->layer != y->layer ? x->layer - y->layer : x->head - y->head;
}

static int by_score_asc(const void *a, const void *b) { return -by_score_desc(a, b); }

/* The number of a record's scores object for `id`, NaN when absent. */
static double score_of(const cJSON *rec, const char *key, const char *id) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rec, key), id);
    return cJSON_IsNumber(s) ? s->valuedouble : NAN;
}

static int int_of(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

/* The heads with a score for method id (n of them into *out, malloc'ed). */
static int collect(const cJSON *heads, const char *id, scored **out) {
    int n = 0, cap = cJSON_GetArraySize(heads);
    *out = malloc(sizeof(scored) * (size_t)(cap ? cap : 1));
    const cJSON *rec;
    cJSON_ArrayForEach(rec, heads) {
        double v = score_of(rec, "scores", id);
        if (*out && !isnan(v)) (*out)[n++] = (scored){int_of(rec, "layer"), int_of(rec, "head"), v, rec};
    }
    return *out ? n : -1;
}

static cJSON *head_item(const scored *s, bool with_classes) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "layer", s->layer);
    cJSON_AddNumberToObject(o, "head", s->head);
    cJSON_AddNumberToObject(o, "score", s->score);
    if (with_classes) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(s->rec, "classes");
        cJSON_AddItemToObject(o, "classes", cJSON_IsArray(c) ? cJSON_Duplicate(c, 1) : cJSON_CreateArray());
    }
    return o;
}

static const cJSON *method_doc(const cJSON *methods, const char *id) {
    const cJSON *m;
    cJSON_ArrayForEach(m, methods) {
        const cJSON *mid = cJSON_GetObjectItemCaseSensitive(m, "id");
        if (cJSON_IsString(mid) && strcmp(mid->valuestring, id) == 0) return m;
    }
    return NULL;
}

static const char *str_of(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* The importance method heads.json has (hr_importance_order, then any
 * "more important" one). */
static const cJSON *importance_method(const cJSON *methods) {
    for (int k = 0; hr_importance_order[k]; k++) {
        const cJSON *m = method_doc(methods, hr_importance_order[k]);
        if (m && !cJSON_GetObjectItemCaseSensitive(m, "note")) return m;
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, methods) {
        if (!strcmp(str_of(m, "higher"), "more important") && !cJSON_GetObjectItemCaseSensitive(m, "note")) return m;
    }
    return NULL;
}

static void importance(cJSON *f, const cJSON *heads, const cJSON *methods) {
    const cJSON *m = importance_method(methods);
    if (!m) return;
    scored *s;
    int n = collect(heads, str_of(m, "id"), &s);
    if (n > 0) {
        qsort(s, (size_t)n, sizeof *s, by_score_desc);
        cJSON *o = cJSON_AddObjectToObject(f, "importance");
        cJSON_AddStringToObject(o, "method", str_of(m, "id"));
        cJSON_AddStringToObject(o, "name", str_of(m, "name"));
        cJSON_AddStringToObject(o, "formula", str_of(m, "formula"));
        cJSON *top = cJSON_AddArrayToObject(o, "top");
        for (int i = 0; i < n && i < TOP_HEADS; i++) cJSON_AddItemToArray(top, head_item(&s[i], true));
    }
    free(s);
}

static bool has_class(const cJSON *rec, const char *cls) {
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(rec, "classes")) {
        if (cJSON_IsString(c) && !strcmp(c->valuestring, cls)) return true;
    }
    return false;
}

/* Per class whose method ran: its rule, its heads (best first) or, when
 * it has none, the head closest to the threshold. */
static void classes(cJSON *f, const cJSON *heads, const cJSON *methods) {
    cJSON *list = cJSON_AddArrayToObject(f, "classes");
    for (int i = 0; i < hr_heads_n_classes(); i++) {
        const hr_head_class_info *ci = hr_heads_class_info(i);
        const cJSON *m = method_doc(methods, ci->method);
        if (!m || cJSON_GetObjectItemCaseSensitive(m, "note")) continue;
        scored *s;
        int n = collect(heads, ci->method, &s);
        if (n <= 0) {
            free(s);
            continue;
        }
        qsort(s, (size_t)n, sizeof *s, ci->below ? by_score_asc : by_score_desc);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(list, o);
        cJSON_AddStringToObject(o, "class", ci->id);
        cJSON_AddStringToObject(o, "method", ci->method);
        cJSON_AddStringToObject(o, "rule", ci->rule);
        cJSON *members = cJSON_AddArrayToObject(o, "heads");
        int count = 0;
        for (int k = 0; k < n; k++) {
            if (!has_class(s[k].rec, ci->id)) continue;
            if (count < CLASS_HEADS) cJSON_AddItemToArray(members, head_item(&s[k], false));
            count++;
        }
        cJSON_AddNumberToObject(o, "count", count);
        if (!count) cJSON_AddItemToObject(o, "closest", head_item(&s[0], false));
        free(s);
    }
}

/* Methods whose every head has the same score: nothing to rank. */
static void flat(cJSON *f, const cJSON *heads, const cJSON *methods) {
    cJSON *list = cJSON_AddArrayToObject(f, "flat");
    const cJSON *m;
    cJSON_ArrayForEach(m, methods) {
        scored *s;
        int n = collect(heads, str_of(m, "id"), &s);
        bool same = n > 1;
        for (int i = 1; same && i < n; i++) same = s[i].score == s[0].score;
        if (same) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "method", str_of(m, "id"));
            cJSON_AddNumberToObject(o, "value", s[0].score);
            cJSON_AddNumberToObject(o, "heads", n);
            cJSON_AddItemToArray(list, o);
        }
        free(s);
    }
}

static int by_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One kind of removal (blocks, attention or MLP sublayers): the first of
 * `metrics` layers.json has, its LAYER_CANDIDATES lowest layers with their
 * scores, the median over layers and, for a KL metric, which candidates
 * pass HR_DROP_KL_NATS. */
static void drop_kind(cJSON *list, const cJSON *layers, const char *kind, const char *const *metrics) {
    int n_layers = cJSON_GetArraySize(layers);
    for (int k = 0; metrics[k]; k++) {
        scored *s = malloc(sizeof(scored) * (size_t)(n_layers ? n_layers : 1));
        double *v = malloc(sizeof(double) * (size_t)(n_layers ? n_layers : 1));
        int n = 0;
        const cJSON *rec;
        cJSON_ArrayForEach(rec, layers) {
            double x = score_of(rec, "scores", metrics[k]);
            if (s && v && !isnan(x)) v[n] = x, s[n++] = (scored){int_of(rec, "layer"), 0, x, rec};
        }
        if (n > 1) {
            qsort(s, (size_t)n, sizeof *s, by_score_asc);
            qsort(v, (size_t)n, sizeof *v, by_double);
            bool kl = strstr(metrics[k], "_kl") != NULL;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToArray(list, o);
            cJSON_AddStringToObject(o, "kind", kind);
            cJSON_AddStringToObject(o, "metric", metrics[k]);
            cJSON_AddNumberToObject(o, "median", n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2);
            cJSON_AddNumberToObject(o, "max", v[n - 1]);
            if (kl) cJSON_AddNumberToObject(o, "threshold", HR_DROP_KL_NATS);
            cJSON *cand = cJSON_AddArrayToObject(o, "candidates");
            for (int i = 0; i < n && i < LAYER_CANDIDATES; i++) {
                cJSON *c = cJSON_CreateObject();
                cJSON_AddNumberToObject(c, "layer", s[i].layer);
                cJSON_AddNumberToObject(c, "score", s[i].score);
                if (kl) cJSON_AddBoolToObject(c, "droppable", s[i].score <= HR_DROP_KL_NATS);
                cJSON_AddItemToArray(cand, c);
            }
        }
        free(s);
        free(v);
        if (n > 1) return;
    }
}

static void layers_findings(cJSON *f, const cJSON *layers_doc) {
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(layers_doc, "layers");
    if (!cJSON_IsArray(layers)) return;
    static const char *const block[] = {"block_influence", NULL}, *const attn[] = {"attn_kl", "attn_sim", NULL},
                             *const mlp[] = {"mlp_kl", "mlp_sim", NULL};
    cJSON *list = cJSON_AddArrayToObject(f, "layers");
    drop_kind(list, layers, "block", block);
    drop_kind(list, layers, "attention", attn);
    drop_kind(list, layers, "mlp", mlp);
}

hr_status hr_report_findings(const cJSON *heads_doc, const cJSON *layers_doc, cJSON **out) {
    *out = cJSON_CreateObject();
    if (!*out) return hr_err(HR_ERR_NOMEM, "out of memory for the findings");
    const cJSON *heads = cJSON_GetObjectItemCaseSensitive(heads_doc, "heads");
    const cJSON *methods = cJSON_GetObjectItemCaseSensitive(heads_doc, "methods");
    importance(*out, heads, methods);
    classes(*out, heads, methods);
    flat(*out, heads, methods);
    if (layers_doc) layers_findings(*out, layers_doc);
    cJSON_AddNumberToObject(*out, "drop_kl_threshold", HR_DROP_KL_NATS);
    return HR_OK;
}
