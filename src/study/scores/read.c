/* heads.json / layers.json readers: the one place that parses the head
 * lab's files. Every check of headroom/scores.h, each failure naming the
 * file and what is wrong; on failure the table is unchanged. */
#include "headroom/scores.h"
#include "study/scores/scores_internal.h"
#include "core/internal.h"
#include "core/json.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { FORMAT_VERSION = 1 };

static const cJSON *get(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

/* An integral number within int range. */
static bool as_int(const cJSON *v, int *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 1e9) return false;
    *out = (int)v->valuedouble;
    return true;
}

static const char *type_name(const cJSON *v) {
    if (cJSON_IsString(v)) return "string";
    if (cJSON_IsBool(v)) return "boolean";
    if (cJSON_IsArray(v)) return "array";
    if (cJSON_IsObject(v)) return "object";
    if (cJSON_IsNumber(v)) return "number";
    return "null";
}

/* "format" / "format_version" of a document `kind` ("heads" or "layers"). */
static hr_status check_header(const cJSON *root, const char *name, const char *kind) {
    char want[32];
    snprintf(want, sizeof want, "headroom.%s", kind);
    if (!cJSON_IsObject(root)) return hr_err(HR_ERR_FORMAT, "%s is not a JSON object", name);
    const cJSON *f = get(root, "format"), *v = get(root, "format_version");
    int version;
    if (!f && !v)
        return hr_err(HR_ERR_FORMAT,
                      "%s has no \"format\" or \"format_version\": written by an older headroom; rerun headroom "
                      "heads",
                      name);
    if (!cJSON_IsString(f)) return hr_err(HR_ERR_FORMAT, "%s: \"format\" is a %s, not a string", name, type_name(f));
    if (strcmp(f->valuestring, want) != 0)
        return hr_err(HR_ERR_FORMAT, "%s is a '%.64s' file, not a %s.json ('%s')", name, f->valuestring, kind, want);
    if (!v)
        return hr_err(HR_ERR_FORMAT, "%s has no format_version: written by an older headroom; rerun headroom heads",
                      name);
    if (!as_int(v, &version)) return hr_err(HR_ERR_FORMAT, "%s: format_version is not an integer", name);
    if (version < FORMAT_VERSION)
        return hr_err(HR_ERR_FORMAT, "%s has format_version %d: written by an older headroom; rerun headroom heads",
                      name, version);
    if (version > FORMAT_VERSION)
        return hr_err(HR_ERR_FORMAT,
                      "%s has format_version %d; this headroom reads version %d (written by a newer "
                      "headroom)",
                      name, version, FORMAT_VERSION);
    return HR_OK;
}

/* An array of n_layers integers (per-layer head counts). */
static hr_status int_array(const cJSON *o, const char *key, int n, int *out, const char *name) {
    const cJSON *a = get(o, key);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n)
        return hr_err(HR_ERR_FORMAT, "%s: \"model\".%s is not an array of %d integers", name, key, n);
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) if (!as_int(x, &out[i++])) return hr_err(
        HR_ERR_FORMAT, "%s: \"model\".%s[%d] is not an integer", name, key, i - 1);
    return HR_OK;
}

static hr_status check_n_layers(const cJSON *model, const hr_scores *s, const char *name) {
    int L;
    if (!cJSON_IsObject(model)) return hr_err(HR_ERR_FORMAT, "%s has no \"model\" object", name);
    if (!as_int(get(model, "n_layers"), &L))
        return hr_err(HR_ERR_FORMAT, "%s: \"model\".n_layers is not an integer", name);
    if (L != s->n_layers)
        return hr_err(HR_ERR_INVALID_ARG,
                      "%s was scored on a model of a different shape (%d layers; this model has %d)", name, L,
                      s->n_layers);
    return HR_OK;
}

static hr_status check_shape(const cJSON *model, const hr_scores *s, const char *name) {
    hr_status st = check_n_layers(model, s, name);
    if (st != HR_OK) return st;
    int L = s->n_layers, heads[HR_MAX_LAYERS], kv[HR_MAX_LAYERS], hd;
    if ((st = int_array(model, "n_heads", L, heads, name)) != HR_OK ||
        (st = int_array(model, "n_kv_heads", L, kv, name)) != HR_OK)
        return st;
    if (!as_int(get(model, "head_dim"), &hd))
        return hr_err(HR_ERR_FORMAT, "%s: \"model\".head_dim is not an integer", name);
    for (int l = 0; l < L; l++) {
        if (heads[l] != s->n_head[l])
            return hr_err(HR_ERR_INVALID_ARG,
                          "%s was scored on a model of a different shape (layer %d has %d heads "
                          "there, %d here)",
                          name, l, heads[l], s->n_head[l]);
        if (kv[l] != s->n_head_kv[l])
            return hr_err(HR_ERR_INVALID_ARG,
                          "%s was scored on a model of a different shape (layer %d has %d KV "
                          "heads there, %d here)",
                          name, l, kv[l], s->n_head_kv[l]);
    }
    if (hd != s->head_dim)
        return hr_err(HR_ERR_INVALID_ARG, "%s was scored on a model of a different shape (head_dim %d there, %d here)",
                      name, hd, s->head_dim);
    return HR_OK;
}

/* A table of the same shape with nothing loaded (the staging copy). */
static hr_scores *staging(const hr_scores *s) {
    hr_scores *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->n_layers = s->n_layers;
    t->max_heads = s->max_heads;
    t->head_dim = s->head_dim;
    memcpy(t->n_head, s->n_head, sizeof t->n_head);
    memcpy(t->n_head_kv, s->n_head_kv, sizeof t->n_head_kv);
    return t;
}

/* The "methods" (heads) or "metrics" (layers) list: objects with a unique
 * string id (and, for methods, a string "higher"). */
static hr_status read_ids(const cJSON *root, const char *key, hr_scores *t, const char *name) {
    const cJSON *list = get(root, key), *e;
    bool heads = strcmp(key, "methods") == 0;
    if (!cJSON_IsArray(list)) return hr_err(HR_ERR_FORMAT, "%s has no \"%s\" array", name, key);
    int i = 0;
    cJSON_ArrayForEach(e, list) {
        const cJSON *id = get(e, "id"), *higher = get(e, "higher");
        if (!cJSON_IsString(id) || !id->valuestring[0] || strlen(id->valuestring) >= sizeof t->methods[0].id)
            return hr_err(HR_ERR_FORMAT, "%s: \"%s\"[%d] has no string \"id\"", name, key, i);
        if (heads && !cJSON_IsString(higher))
            return hr_err(HR_ERR_FORMAT, "%s: method '%s' has no string \"higher\"", name, id->valuestring);
        bool dup = heads ? hr_scores_method_index(t, id->valuestring) >= 0 : false;
        for (int k = 0; !heads && k < t->n_metrics; k++) dup |= strcmp(t->metrics[k].id, id->valuestring) == 0;
        if (dup) return hr_err(HR_ERR_FORMAT, "%s: \"%s\" lists '%s' twice", name, key, id->valuestring);
        int k = heads ? hr_scores_add_method(t, id->valuestring, higher->valuestring)
                      : hr_scores_add_metric(t, id->valuestring);
        if (k < 0) return hr_err(HR_ERR_NOMEM, "out of memory");
        i++;
    }
    return HR_OK;
}

/* One "scores" object: every key a listed id, every value a number or
 * null; values[k] receives the value of id k. what names the record. */
static hr_status read_values(const cJSON *scores, hr_scores *t, bool heads, size_t at, const char *name,
                             const char *what) {
    if (!cJSON_IsObject(scores)) return hr_err(HR_ERR_FORMAT, "%s: %s has no \"scores\" object", name, what);
    const cJSON *v;
    cJSON_ArrayForEach(v, scores) {
        int k = -1, n = heads ? t->n_methods : t->n_metrics;
        for (int i = 0; i < n && k < 0; i++)
            if (strcmp(heads ? t->methods[i].id : t->metrics[i].id, v->string) == 0) k = i;
        if (k < 0)
            return hr_err(HR_ERR_FORMAT, "%s: %s has a score for '%.64s', which \"%s\" does not list", name, what,
                          v->string, heads ? "methods" : "metrics");
        if (!cJSON_IsNumber(v) && !cJSON_IsNull(v))
            return hr_err(HR_ERR_FORMAT, "%s: %s: the score for '%.64s' is a %s, not a number or null", name, what,
                          v->string, type_name(v));
        double x = cJSON_IsNumber(v) ? v->valuedouble : NAN;
        if (heads) t->methods[k].v[at] = x;
        else t->metrics[k].v[at] = x;
    }
    return HR_OK;
}

/* "missing 2.0, 2.1, ..." of the first few units not seen. */
static void missing_list(const uint8_t *seen, const hr_scores *t, bool heads, char *buf, size_t cap) {
    size_t len = 0;
    int shown = 0;
    buf[0] = 0;
    for (int l = 0; l < t->n_layers; l++)
        for (int h = 0; h < (heads ? t->n_head[l] : 1); h++) {
            if (seen[(size_t)l * (heads ? t->max_heads : 1) + h]) continue;
            int w = shown == 8 ? snprintf(buf + len, cap - len, ", ...")
                    : heads    ? snprintf(buf + len, cap - len, "%s%d.%d", shown ? ", " : "", l, h)
                               : snprintf(buf + len, cap - len, "%s%d", shown ? ", " : "", l);
            if (w < 0 || (size_t)w >= cap - len) return;
            len += (size_t)w;
            if (++shown > 8) return;
        }
}

static hr_status read_heads(const cJSON *root, hr_scores *t, const char *name) {
    hr_status st = check_header(root, name, "heads");
    if (st == HR_OK) st = check_shape(get(root, "model"), t, name);
    if (st == HR_OK) st = read_ids(root, "methods", t, name);
    if (st != HR_OK) return st;
    const cJSON *heads = get(root, "heads"), *rec;
    if (!cJSON_IsArray(heads)) return hr_err(HR_ERR_FORMAT, "%s has no \"heads\" array", name);
    size_t n = (size_t)t->n_layers * t->max_heads;
    uint8_t *seen = calloc(n ? n : 1, 1); // (n_layers, max_heads)
    if (!seen) return hr_err(HR_ERR_NOMEM, "out of memory");
    int total = 0, present = 0, i = 0;
    for (int l = 0; l < t->n_layers; l++) total += t->n_head[l];
    cJSON_ArrayForEach(rec, heads) {
        int l, h;
        if (!cJSON_IsObject(rec) || !as_int(get(rec, "layer"), &l) || !as_int(get(rec, "head"), &h)) {
            st = hr_err(HR_ERR_FORMAT, "%s: \"heads\"[%d] has no integer \"layer\" and \"head\"", name, i);
            break;
        }
        if (l < 0 || l >= t->n_layers || h < 0 || h >= t->n_head[l]) {
            st = hr_err(HR_ERR_FORMAT, "%s: a record names head %d.%d, which this model does not have", name, l, h);
            break;
        }
        size_t at = (size_t)l * t->max_heads + h;
        if (seen[at]) {
            st = hr_err(HR_ERR_FORMAT, "%s: head %d.%d appears twice", name, l, h);
            break;
        }
        seen[at] = 1;
        present++;
        char what[48];
        snprintf(what, sizeof what, "head %d.%d", l, h);
        if ((st = read_values(get(rec, "scores"), t, true, at, name, what)) != HR_OK) break;
        i++;
    }
    if (st == HR_OK && present < total) {
        char list[256];
        missing_list(seen, t, true, list, sizeof list);
        st = hr_err(HR_ERR_FORMAT, "%s: %d of %d heads present; missing %s", name, present, total, list);
    }
    free(seen);
    return st;
}

static hr_status read_layers(const cJSON *root, hr_scores *t, const char *name) {
    hr_status st = check_header(root, name, "layers");
    if (st == HR_OK) st = check_n_layers(get(root, "model"), t, name);
    if (st == HR_OK) st = read_ids(root, "metrics", t, name);
    if (st != HR_OK) return st;
    const cJSON *layers = get(root, "layers"), *rec;
    if (!cJSON_IsArray(layers)) return hr_err(HR_ERR_FORMAT, "%s has no \"layers\" array", name);
    uint8_t seen[HR_MAX_LAYERS] = {0};
    int present = 0, i = 0;
    cJSON_ArrayForEach(rec, layers) {
        int l;
        if (!cJSON_IsObject(rec) || !as_int(get(rec, "layer"), &l))
            return hr_err(HR_ERR_FORMAT, "%s: \"layers\"[%d] has no integer \"layer\"", name, i);
        if (l < 0 || l >= t->n_layers)
            return hr_err(HR_ERR_FORMAT, "%s: a record names layer %d, which this model does not have", name, l);
        if (seen[l]) return hr_err(HR_ERR_FORMAT, "%s: layer %d appears twice", name, l);
        seen[l] = 1;
        present++;
        char what[32];
        snprintf(what, sizeof what, "layer %d", l);
        if ((st = read_values(get(rec, "scores"), t, false, (size_t)l, name, what)) != HR_OK) return st;
        i++;
    }
    if (present < t->n_layers) {
        char list[256];
        missing_list(seen, t, false, list, sizeof list);
        return hr_err(HR_ERR_FORMAT, "%s: %d of %d layers present; missing %s", name, present, t->n_layers, list);
    }
    return HR_OK;
}

/* Parses into a staging table and moves its heads or layers into s. */
static hr_status parse_into(hr_scores *s, const char *json, size_t len, const char *name, bool heads) {
    if (!s || !json) return hr_err(HR_ERR_INVALID_ARG, "no score table or text given");
    if (!name) name = heads ? "heads.json" : "layers.json";
    if ((heads ? s->heads_source : s->layers_source)[0])
        return hr_err(HR_ERR_INVALID_ARG, "the table already holds %s (from %s)",
                      heads ? "head scores" : "layer metrics", heads ? s->heads_source : s->layers_source);
    cJSON *root;
    hr_status st = hr_json_parse(json, len, &root);
    if (st != HR_OK) {
        hr_err_prefix("%s", name);
        return st;
    }
    hr_scores *t = staging(s);
    if (!t) st = hr_err(HR_ERR_NOMEM, "out of memory");
    else st = heads ? read_heads(root, t, name) : read_layers(root, t, name);
    cJSON_Delete(root);
    if (st == HR_OK && heads) {
        s->methods = t->methods, s->n_methods = t->n_methods;
        t->methods = NULL, t->n_methods = 0;
        snprintf(s->heads_source, sizeof s->heads_source, "%s", name);
    } else if (st == HR_OK) {
        s->metrics = t->metrics, s->n_metrics = t->n_metrics;
        t->metrics = NULL, t->n_metrics = 0;
        snprintf(s->layers_source, sizeof s->layers_source, "%s", name);
    }
    hr_scores_free(t);
    return st;
}

hr_status hr_scores_parse_heads(hr_scores *s, const char *json, size_t len, const char *name) {
    return parse_into(s, json, len, name, true);
}

hr_status hr_scores_parse_layers(hr_scores *s, const char *json, size_t len, const char *name) {
    return parse_into(s, json, len, name, false);
}

static hr_status read_file(hr_scores *s, const char *path, bool heads) {
    if (!path) return hr_err(HR_ERR_INVALID_ARG, "no path given");
    char *text = NULL;
    size_t len = 0;
    hr_status st = hr_read_file(path, &text, &len);
    if (st != HR_OK) return st;
    st = parse_into(s, text, len, path, heads);
    free(text);
    return st;
}

hr_status hr_scores_read_heads(hr_scores *s, const char *path) { return read_file(s, path, true); }
hr_status hr_scores_read_layers(hr_scores *s, const char *path) { return read_file(s, path, false); }
