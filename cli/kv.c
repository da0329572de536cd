#include "kv.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int json_int(const cJSON *o, const char *key, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int)v->valuedouble) return -1;
    *out = (int)v->valuedouble;
    return 0;
}

static int check_shape(const cJSON *root, const char *path, const hr_config *c) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    int n_layers;
    if (!cJSON_IsObject(model) || json_int(model, "n_layers", &n_layers))
        return cli_error("%s: no \"model\" record with n_layers", path);
    if (n_layers != hr_config_n_layers(c))
        return cli_error("%s describes a model with %d layers, this one has %d", path, n_layers, hr_config_n_layers(c));
    const cJSON *heads = cJSON_GetObjectItemCaseSensitive(model, "n_heads");
    if (cJSON_IsArray(heads)) {
        if (cJSON_GetArraySize(heads) != hr_config_n_layers(c)) return cli_error("%s: n_heads has the wrong length", path);
        for (int l = 0; l < hr_config_n_layers(c); l++) {
            const cJSON *h = cJSON_GetArrayItem(heads, l);
            if (!cJSON_IsNumber(h) || (int)h->valuedouble != hr_config_n_head(c, l))
                return cli_error("%s: layer %d has a different head count than this model", path, l);
        }
    }
    return CLI_OK;
}

int cli_read_head_scores(const char *path, const char *method, const hr_config *c, float *scores) {
    char *text;
    size_t len;
    if (cli_read_text(path, &text, &len)) return CLI_FAIL;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return cli_error("%s is not valid JSON", path);
    int mh = hr_config_max_heads(c), rc = check_shape(root, path, c), found = 0;
    for (int i = 0; i < hr_config_n_layers(c) * mh; i++) scores[i] = NAN;
    const cJSON *heads = cJSON_GetObjectItemCaseSensitive(root, "heads"), *h;
    if (rc == CLI_OK && !cJSON_IsArray(heads)) rc = cli_error("%s has no \"heads\" array", path);
    if (rc == CLI_OK) cJSON_ArrayForEach(h, heads) {
            int l, k;
            if (json_int(h, "layer", &l) || json_int(h, "head", &k) || l < 0 || l >= hr_config_n_layers(c) || k < 0 ||
                k >= hr_config_n_head(c, l)) {
                rc = cli_error("%s: a head record is outside this model", path);
                break;
            }
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(h, "scores"), method);
            if (cJSON_IsNumber(v)) {
                scores[l * mh + k] = (float)v->valuedouble;
                found++;
            }
        }
    if (rc == CLI_OK && found == 0) rc = cli_error("%s has no scores for method '%s'", path, method);
    cJSON_Delete(root);
    return rc;
}

int cli_kv_plan(const cli_spec *spec, const cli_args *a, const hr_model *m, hr_kv_plan **out) {
    *out = NULL;
    const hr_config *c = hr_model_config(m);
    const char *plan_path = cli_value(spec, a, "kv"), *from = cli_value(spec, a, "kv-from");
    if (plan_path && from) return cli_error("give either --kv PLAN or --kv-from HEADS.json, not both");
    if (plan_path) {
        if (hr_kv_plan_load(plan_path, c, out) != HR_OK) return cli_lib_error("cannot read the KV plan");
        return CLI_OK;
    }
    if (!from) return CLI_OK;
    const char *method = cli_value(spec, a, "kv-method");
    double fraction = 0.25;
    long sink = 4, window = 64;
    if (cli_get_float(spec, a, "retrieval-fraction", 0, 1, &fraction) ||
        cli_get_int(spec, a, "kv-sink", 0, hr_config_seq_len(c), &sink) ||
        cli_get_int(spec, a, "kv-window", 1, hr_config_seq_len(c), &window))
        return CLI_FAIL;
    float *scores = malloc(sizeof(float) * (size_t)hr_config_n_layers(c) * (size_t)hr_config_max_heads(c));
    if (!scores) return cli_error("out of memory");
    if (!method) method = "streaming";
    int rc = cli_read_head_scores(from, method, c, scores);
    /* Attention mass inside sink + recent window says how well a head
     * streams: the heads with the least of it need their full cache. */
    bool invert = strcmp(method, "streaming") == 0 || strcmp(method, "sink") == 0;
    for (int i = 0; invert && i < hr_config_n_layers(c) * hr_config_max_heads(c); i++) scores[i] = 1.0f - scores[i];
    hr_kv_policy rest = {HR_KV_STREAMING, (int)sink, (int)window, 0};
    if (rc == CLI_OK && hr_kv_plan_from_scores(c, scores, (float)fraction, rest, out) != HR_OK)
        rc = cli_lib_error("cannot build the KV plan");
    free(scores);
    return rc;
}
