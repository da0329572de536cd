/* heads.json / layers.json / heads.csv writers and head classes. */
#include "study/heads/heads_internal.h"
#include "model/config.h"
#include "core/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* JSON string literal (control characters escaped, UTF-8 passed through). */
static void sb_str(hr_strbuf *b, const char *s) {
    hr_strbuf_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') hr_strbuf_printf(b, "\\%c", *p);
        else if (*p < 0x20) hr_strbuf_printf(b, "\\u%04x", *p);
        else hr_strbuf_printf(b, "%c", *p);
    }
    hr_strbuf_printf(b, "\"");
}

/* The shortest decimal that reads back as exactly v (15 to 17 digits), so a
 * score table read from the file holds the lab's numbers bit for bit. */
static void sb_num(hr_strbuf *b, double v) {
    if (!isfinite(v)) {
        hr_strbuf_printf(b, "null");
        return;
    }
    char s[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(s, sizeof s, "%.*g", digits, v);
        if (strtod(s, NULL) == v) break;
    }
    hr_strbuf_printf(b, "%s", s);
}

/* ---- classes ---- */

static const hr_head_class_info k_rules[] = {
    {"sink", "sink", 0.5, false, "sink >= 0.5"},
    {"prev_token", "prev_token", 0.4, false, "prev_token >= 0.4"},
    {"induction", "induction", 0.3, false, "induction >= 0.3"},
    {"duplicate", "duplicate", 0.3, false, "duplicate >= 0.3"},
    {"retrieval", "retrieval", 0.1, false, "retrieval >= 0.1 (the paper's threshold)"},
    {"streaming", "streaming", 0.9, false, "streaming >= 0.9"},
    {"local", "distance", 4.0, true, "distance <= 4 tokens"},
    {"global", "distance", 12.0, false, "distance >= 12 tokens and not a sink head"},
    {"successor", "successor", 0.5, false, "successor >= 0.5"},
    {"structural", "pattern", 0.3, false, "pattern >= 0.3"},
    {"contextual", "pattern", -0.3, true, "pattern <= -0.3"},
};
enum { N_RULES = sizeof k_rules / sizeof k_rules[0] };

int hr_heads_n_classes(void) { return N_RULES; }
const hr_head_class_info *hr_heads_class_info(int i) { return i >= 0 && i < N_RULES ? &k_rules[i] : NULL; }

void hr_heads_classes(const hr_heads_result *r, int layer, int head, char *buf, size_t cap) {
    size_t len = 0;
    if (cap) buf[0] = 0;
    double sink = hr_heads_score(r, hr_heads_method_index("sink"), layer, head);
    for (size_t i = 0; i < N_RULES; i++) {
        const hr_head_class_info *cr = &k_rules[i];
        double v = hr_heads_score(r, hr_heads_method_index(cr->method), layer, head);
        if (isnan(v) || (cr->below ? v > cr->threshold : v < cr->threshold)) continue;
        /* a head parked on BOS has a long distance without reading context */
        if (strcmp(cr->id, "global") == 0 && sink >= 0.5) continue;
        int n = snprintf(buf + len, cap > len ? cap - len : 0, "%s%s", len ? "," : "", cr->id);
        if (n < 0 || len + (size_t)n >= cap) return;
        len += (size_t)n;
    }
}

/* ---- documents ---- */

static void heads_doc(hr_strbuf *b, const hr_heads_result *r, const hr_model *m, const hr_heads_meta *meta) {
    const hr_config *c = hr_model_config(m);
    int L = hr_heads_result_n_layers(r), nm = hr_heads_n_methods();
    hr_strbuf_printf(b, "{\n  \"format\": \"headroom.heads\",\n  \"format_version\": 1,\n  \"model\": {\"path\": ");
    sb_str(b, meta ? meta->model_path : "");
    hr_strbuf_printf(b, ", \"arch\": ");
    sb_str(b, meta && meta->arch ? meta->arch : hr_arch_name(c->arch));
    hr_strbuf_printf(b, ", \"n_layers\": %d, \"n_heads\": [", L);
    for (int l = 0; l < L; l++) hr_strbuf_printf(b, "%s%d", l ? ", " : "", c->n_head[l]);
    hr_strbuf_printf(b, "], \"n_kv_heads\": [");
    for (int l = 0; l < L; l++) hr_strbuf_printf(b, "%s%d", l ? ", " : "", c->n_head_kv[l]);
    hr_strbuf_printf(b, "], \"head_dim\": %d},\n  \"text\": {\"path\": ", c->head_dim);
    sb_str(b, meta ? meta->text_path : "");
    hr_strbuf_printf(b, ", \"n_tokens\": %d, \"window\": %d, \"seed\": %llu},\n  \"methods\": [",
                     hr_heads_result_n_calib_tokens(r), hr_heads_result_window(r),
                     (unsigned long long)(meta ? meta->seed : 0));
    int first = 1;
    for (int i = 0; i < nm; i++) {
        const hr_head_method_info *mi = hr_heads_method_info(i);
        if (!hr_heads_result_has(r, i) && !hr_heads_result_note(r, i)[0]) continue;
        hr_strbuf_printf(b, "%s\n    {\"id\": ", first ? "" : ",");
        first = 0;
        sb_str(b, mi->id);
        const char *keys[] = {"name", "paper", "formula", "good_for", "higher", "note"};
        const char *vals[] = {mi->name, mi->paper, mi->formula, mi->good_for, mi->higher, hr_heads_result_note(r, i)};
        for (int k = 0; k < 6; k++) {
            if (k == 5 && !vals[k][0]) continue;
            hr_strbuf_printf(b, ", \"%s\": ", keys[k]);
            sb_str(b, vals[k]);
        }
        hr_strbuf_printf(b, "}");
    }
    hr_strbuf_printf(b, "\n  ],\n  \"heads\": [");
    first = 1;
    for (int l = 0; l < L; l++)
        for (int h = 0; h < c->n_head[l]; h++) {
            hr_strbuf_printf(b, "%s\n    {\"layer\": %d, \"head\": %d, \"scores\": {", first ? "" : ",", l, h);
            first = 0;
            int f2 = 1;
            for (int i = 0; i < nm; i++) {
                if (!hr_heads_result_has(r, i) && !hr_heads_result_note(r, i)[0]) continue;
                hr_strbuf_printf(b, "%s\"%s\": ", f2 ? "" : ", ", hr_heads_method_info(i)->id);
                f2 = 0;
                sb_num(b, hr_heads_score(r, i, l, h));
            }
            hr_strbuf_printf(b, "}, \"ranks\": {");
            f2 = 1;
            for (int i = 0; i < nm; i++) {
                if (!hr_heads_result_has(r, i) && !hr_heads_result_note(r, i)[0]) continue;
                int rk = hr_heads_rank(r, i, l, h);
                hr_strbuf_printf(b, "%s\"%s\": ", f2 ? "" : ", ", hr_heads_method_info(i)->id);
                f2 = 0;
                if (rk > 0) hr_strbuf_printf(b, "%d", rk);
                else hr_strbuf_printf(b, "null");
            }
            char cls[256];
            hr_heads_classes(r, l, h, cls, sizeof cls);
            hr_strbuf_printf(b, "}, \"classes\": [");
            for (char *s = cls, *e; *s; s = *e ? e + 1 : e) {
                e = strchr(s, ',');
                if (!e) e = s + strlen(s);
                hr_strbuf_printf(b, "%s\"%.*s\"", s == cls ? "" : ", ", (int)(e - s), s);
            }
            hr_strbuf_printf(b, "]}");
        }
    hr_strbuf_printf(b, "\n  ]\n}\n");
}

static void layers_doc(hr_strbuf *b, const hr_heads_result *r) {
    int L = hr_heads_result_n_layers(r), nm = hr_heads_n_layer_metrics();
    hr_strbuf_printf(
        b,
        "{\n  \"format\": \"headroom.layers\",\n  \"format_version\": 1,\n  \"model\": {\"n_layers\": %d},\n"
        "  \"metrics\": [",
        L);
    for (int i = 0; i < nm; i++) {
        const hr_layer_metric_info *mi = hr_heads_layer_metric_info(i);
        hr_strbuf_printf(b, "%s\n    {\"id\": ", i ? "," : "");
        sb_str(b, mi->id);
        hr_strbuf_printf(b, ", \"name\": ");
        sb_str(b, mi->name);
        hr_strbuf_printf(b, ", \"paper\": ");
        sb_str(b, mi->paper);
        hr_strbuf_printf(b, ", \"formula\": ");
        sb_str(b, mi->formula);
        hr_strbuf_printf(b, "}");
    }
    hr_strbuf_printf(b, "\n  ],\n  \"layers\": [");
    for (int l = 0; l < L; l++) {
        hr_strbuf_printf(b, "%s\n    {\"layer\": %d, \"scores\": {", l ? "," : "", l);
        for (int i = 0; i < nm; i++) {
            hr_strbuf_printf(b, "%s\"%s\": ", i ? ", " : "", hr_heads_layer_metric_info(i)->id);
            sb_num(b, hr_heads_layer_score(r, i, l));
        }
        hr_strbuf_printf(b, "}}");
    }
    hr_strbuf_printf(b, "\n  ]\n}\n");
}

static void csv_doc(hr_strbuf *b, const hr_heads_result *r, const hr_model *m) {
    const hr_config *c = hr_model_config(m);
    int nm = hr_heads_n_methods();
    hr_strbuf_printf(b, "layer,head");
    for (int i = 0; i < nm; i++)
        if (hr_heads_result_has(r, i)) hr_strbuf_printf(b, ",%s", hr_heads_method_info(i)->id);
    hr_strbuf_printf(b, ",classes\n");
    for (int l = 0; l < hr_heads_result_n_layers(r); l++)
        for (int h = 0; h < c->n_head[l]; h++) {
            hr_strbuf_printf(b, "%d,%d", l, h);
            for (int i = 0; i < nm; i++) {
                if (!hr_heads_result_has(r, i)) continue;
                double v = hr_heads_score(r, i, l, h);
                if (isfinite(v)) hr_strbuf_printf(b, ",%.9g", v);
                else hr_strbuf_printf(b, ",");
            }
            char cls[256];
            hr_heads_classes(r, l, h, cls, sizeof cls);
            hr_strbuf_printf(b, ",\"%s\"\n", cls);
        }
}

static hr_status finish(hr_strbuf *b, char **out) {
    if (b->failed) {
        hr_strbuf_free(b);
        return hr_err(HR_ERR_NOMEM, "out of memory writing results");
    }
    *out = b->p;
    return HR_OK;
}

hr_status hr_heads_to_json(const hr_heads_result *r, const hr_model *m, const hr_heads_meta *meta, char **heads_json,
                           char **layers_json, char **csv) {
    if (!r || !m) return hr_err(HR_ERR_INVALID_ARG, "no result or model");
    if (hr_heads_result_n_layers(r) != hr_model_config(m)->n_layers)
        return hr_err(HR_ERR_INVALID_ARG, "result and model do not match");
    char **outs[3] = {heads_json, layers_json, csv};
    for (int i = 0; i < 3; i++)
        if (outs[i]) *outs[i] = NULL;
    for (int i = 0; i < 3; i++) {
        if (!outs[i] || (i == 1 && !hr_heads_result_has_layer_metrics(r))) continue;
        hr_strbuf b = {0};
        if (i == 0) heads_doc(&b, r, m, meta);
        else if (i == 1) layers_doc(&b, r);
        else csv_doc(&b, r, m);
        if (finish(&b, outs[i]) != HR_OK) {
            for (int j = 0; j < i; j++)
                if (outs[j]) {
                    free(*outs[j]);
                    *outs[j] = NULL;
                }
            return HR_ERR_NOMEM;
        }
    }
    return HR_OK;
}
