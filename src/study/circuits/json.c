/* patch.json (hr_patch_result_json, see circuits.h). */
#include "study/circuits/circuits_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cJSON *num(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

/* rows x cols numbers as an array of row arrays. */
static cJSON *matrix(const double *v, int rows, int cols) {
    cJSON *a = cJSON_CreateArray();
    for (int r = 0; a && r < rows; r++) {
        cJSON *row = cJSON_CreateArray();
        for (int c = 0; row && c < cols; c++) cJSON_AddItemToArray(row, num(v[(size_t)r * cols + c]));
        cJSON_AddItemToArray(a, row);
    }
    return a;
}

static cJSON *vector(const double *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, num(v[i]));
    return a;
}

static cJSON *ints(const int32_t *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

/* The text of a token ("" without a tokenizer). */
static cJSON *piece(const hr_tokenizer *tok, int32_t id) {
    size_t len = 0;
    const char *s = tok ? hr_tokenizer_piece(tok, id, &len) : NULL;
    if (!s) return cJSON_CreateString("");
    char *c = strndup(s, len);
    cJSON *j = cJSON_CreateString(c ? c : "");
    free(c);
    return j;
}

static cJSON *pieces(const hr_tokenizer *tok, const int32_t *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, piece(tok, v[i]));
    return a;
}

/* {"rows": "...", "cols": "...", "values": [[...]]} */
static void add_matrix(cJSON *o, const char *name, const char *rows, const char *cols, const double *v, int nr,
                       int nc) {
    if (!v) return;
    cJSON *m = cJSON_AddObjectToObject(o, name);
    cJSON_AddStringToObject(m, "rows", rows);
    cJSON_AddStringToObject(m, "cols", cols);
    cJSON_AddItemToObject(m, "values", matrix(v, nr, nc));
}

static void add_dla(cJSON *j, const hr_patch_summary *s) {
    if (!s->has_dla) return;
    cJSON *d = cJSON_AddObjectToObject(j, "dla");
    cJSON_AddItemToObject(d, "logit_diff", num(s->dla_total));
    cJSON_AddItemToObject(d, "sum_of_parts", num(s->dla_sum));
    cJSON_AddItemToObject(d, "embed", num(s->dla_embed));
    if (s->has_norm_bias) cJSON_AddItemToObject(d, "final_norm_bias", num(s->dla_norm_bias));
    cJSON_AddItemToObject(d, "heads", matrix(s->dla_heads, s->n_layers, s->max_heads));
    if (s->has_attn_bias) cJSON_AddItemToObject(d, "attn_bias", vector(s->dla_attn_bias, s->n_layers));
    cJSON_AddItemToObject(d, "mlp", vector(s->dla_mlp, s->n_layers));
}

static void add_lens(cJSON *j, const hr_patch_summary *s, const hr_tokenizer *tok) {
    if (!s->has_lens) return;
    cJSON *d = cJSON_AddObjectToObject(j, "lens");
    cJSON_AddItemToObject(d, "logit_diff", vector(s->lens_logit_diff, s->n_layers));
    cJSON_AddItemToObject(d, "prob", vector(s->lens_prob, s->n_layers));
    cJSON_AddItemToObject(d, "rank", vector(s->lens_rank, s->n_layers));
    cJSON *tops = cJSON_AddArrayToObject(d, "top");
    for (int p = 0; tops && p < s->lens_pairs; p++) {
        cJSON *pl = cJSON_CreateArray();
        for (int l = 0; pl && l < s->n_layers; l++) {
            const int32_t *t = s->lens_tokens + ((size_t)p * s->n_layers + l) * s->lens_top;
            cJSON *e = cJSON_CreateObject();
            cJSON_AddItemToObject(e, "ids", ints(t, s->lens_top));
            cJSON_AddItemToObject(e, "tokens", pieces(tok, t, s->lens_top));
            cJSON_AddItemToArray(pl, e);
        }
        cJSON_AddItemToArray(tops, pl);
    }
}

hr_status hr_patch_result_json(const hr_patch_result *r, const hr_model *m, const hr_patch_meta *meta, char **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!r || !m) return hr_err(HR_ERR_INVALID_ARG, "no result or model given");
    const hr_patch_summary *s = hr_patch_result_summary(r);
    const hr_config *c = hr_model_config(m);
    const hr_tokenizer *tok = meta ? meta->tok : NULL;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", "headroom.patch");
    cJSON_AddNumberToObject(j, "format_version", 1);
    cJSON *mo = cJSON_AddObjectToObject(j, "model");
    cJSON_AddStringToObject(mo, "path", meta && meta->model_path ? meta->model_path : "");
    cJSON_AddStringToObject(mo, "arch", hr_arch_name(c->arch));
    cJSON_AddNumberToObject(mo, "n_layers", c->n_layers);
    cJSON *nh = cJSON_AddArrayToObject(mo, "n_heads");
    for (int l = 0; l < c->n_layers; l++) cJSON_AddItemToArray(nh, cJSON_CreateNumber(c->n_head[l]));
    cJSON *pa = cJSON_AddObjectToObject(j, "pairs");
    cJSON_AddStringToObject(pa, "path", meta && meta->pairs_path ? meta->pairs_path : "");
    cJSON_AddNumberToObject(pa, "count", s->n_pairs);
    cJSON_AddItemToObject(pa, "clean_metric", vector(s->pair_clean, s->n_pairs));
    cJSON_AddItemToObject(pa, "corrupt_metric", vector(s->pair_corrupt, s->n_pairs));
    cJSON_AddNumberToObject(pa, "clean_top_answer", s->clean_top_answer);
    cJSON_AddNumberToObject(pa, "clean_top_wrong", s->clean_top_wrong);
    cJSON_AddStringToObject(j, "metric", hr_patch_metric_name(s->metric));
    cJSON_AddStringToObject(j, "direction", s->direction == HR_PATCH_NOISE ? "noise" : "denoise");
    cJSON_AddStringToObject(j, "normalisation", "(mean patched - mean corrupt) / (mean clean - mean corrupt)");
    cJSON_AddItemToObject(j, "clean", num(s->clean));
    cJSON_AddItemToObject(j, "corrupt", num(s->corrupt));
    cJSON_AddNumberToObject(j, "forward_passes", (double)s->forward_passes);
    if (s->warning[0]) cJSON_AddStringToObject(j, "warning", s->warning);
    cJSON *pos = cJSON_AddObjectToObject(j, "positions");
    cJSON_AddNumberToObject(pos, "count", s->n_positions);
    cJSON_AddStringToObject(pos, "aligned", "end (the last column is every prompt's last token)");
    cJSON_AddItemToObject(pos, "ids", ints(s->labels, s->n_positions));
    cJSON_AddItemToObject(pos, "tokens", pieces(tok, s->labels, s->n_positions));
    cJSON *pt = cJSON_AddObjectToObject(j, "patching");
    int L = s->n_layers, H = s->max_heads, P = s->n_positions;
    add_matrix(pt, "heads", "layer", "head", s->heads, L, H);
    add_matrix(pt, "layers", "layer", "position", s->attn, L, P);
    add_matrix(pt, "mlp", "layer", "position", s->mlp, L, P);
    add_matrix(pt, "resid", "layer", "position", s->resid, L, P);
    add_matrix(pt, "positions", "layer*heads+head", "position", s->head_pos, L * H, P);
    add_dla(j, s);
    add_lens(j, s, tok);
    if (s->path) {
        cJSON *p = cJSON_AddObjectToObject(j, "path");
        cJSON_AddStringToObject(p, "spec", s->path);
        if (s->path_heads) add_matrix(p, "senders", "layer", "head", s->path_heads, L, H);
        else cJSON_AddItemToObject(p, "value", num(s->path_value));
    }
    if (s->knockout) {
        cJSON *k = cJSON_AddObjectToObject(j, "knockout");
        cJSON_AddStringToObject(k, "spec", s->knockout);
        if (s->knockout_heads) add_matrix(k, "heads", "layer", "head", s->knockout_heads, L, H);
        else cJSON_AddItemToObject(k, "value", num(s->knockout_value));
    }
    char *txt = cJSON_Print(j);
    cJSON_Delete(j);
    if (!txt) return hr_err(HR_ERR_NOMEM, "out of memory");
    *out = txt;
    return HR_OK;
}
