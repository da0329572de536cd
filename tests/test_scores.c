/* The score table: heads.json / layers.json of the head lab round-trip
 * exactly, hostile or inconsistent files are refused with a message that
 * names the cause, scores are oriented by their "higher" field, and KV
 * plans from scores keep the heads a brute-force ranking keeps. */
#include "check.h"
#include "headroom/heads.h"
#include "headroom/scores.h"
#include "core/limits.h"

#include <cjson/cJSON.h>
#include <string.h>

#define MODEL SHARED("models/stories260K/stories260K.bin")

static hr_model *g_model;
static hr_heads_result *g_res;
static char *g_heads, *g_layers; /* the lab's heads.json / layers.json */

static const hr_config *cfg(void) { return hr_model_config(g_model); }

/* A small head-lab run: every number below comes from it. */
static void setup(void) {
    CHECK(hr_model_load(MODEL, &g_model) == HR_OK, "load: %s", hr_last_error());
    if (!g_model) return;
    hr_context *ctx = NULL;
    hr_context_params cp = hr_context_default_params();
    cp.n_threads = 1;
    CHECK(hr_context_new(g_model, &cp, &ctx) == HR_OK, "%s", hr_last_error());
    int32_t toks[200];
    for (int i = 0; i < 200; i++) toks[i] = 3 + (i * 37) % 500;
    bool *sel = calloc((size_t)hr_heads_n_methods(), sizeof(bool));
    CHECK(hr_heads_parse_methods("ablation,entropy,sink,streaming,fdtm", sel) == HR_OK, "%s", hr_last_error());
    hr_heads_params p = hr_heads_default_params();
    p.tokens = toks;
    p.n_tokens = 200;
    p.window = 32;
    p.max_tokens = 96;
    CHECK(hr_heads_run(ctx, &p, sel, &g_res) == HR_OK, "lab: %s", hr_last_error());
    hr_heads_meta meta = {"model.bin", NULL, "text.txt", 0};
    if (g_res)
        CHECK(hr_heads_to_json(g_res, g_model, &meta, &g_heads, &g_layers, NULL) == HR_OK, "%s", hr_last_error());
    free(sel);
    hr_context_free(ctx);
}

static bool same(double a, double b) { return (isnan(a) && isnan(b)) || a == b; }

static void a_lab_result_round_trips_through_json_exactly(void) {
    hr_scores *fromfile = NULL, *direct = NULL;
    CHECK(hr_scores_new(cfg(), &fromfile) == HR_OK, "%s", hr_last_error());
    CHECK(hr_scores_parse_heads(fromfile, g_heads, strlen(g_heads), "heads.json") == HR_OK, "%s", hr_last_error());
    CHECK(hr_scores_parse_layers(fromfile, g_layers, strlen(g_layers), "layers.json") == HR_OK, "%s", hr_last_error());
    CHECK(hr_scores_from_heads(g_res, cfg(), &direct) == HR_OK, "%s", hr_last_error());
    int compared = 0, differ = 0;
    for (int i = 0; i < hr_heads_n_methods(); i++) {
        if (!hr_heads_result_has(g_res, i)) continue;
        const char *id = hr_heads_method_info(i)->id;
        int a = hr_scores_method_index(fromfile, id), b = hr_scores_method_index(direct, id);
        CHECK(a >= 0 && b >= 0, "method %s missing from the table", id);
        CHECK(a >= 0 && strcmp(hr_scores_method_higher(fromfile, a), hr_heads_method_info(i)->higher) == 0,
              "%s: higher differs", id);
        for (int l = 0; l < hr_config_n_layers(cfg()); l++)
            for (int h = 0; h < hr_config_n_head(cfg(), l); h++, compared++) {
                double want = hr_heads_score(g_res, i, l, h);
                differ +=
                    !same(hr_scores_head(fromfile, a, l, h), want) || !same(hr_scores_head(direct, b, l, h), want);
            }
    }
    printf("    %d head scores compared, %d differ (bit for bit)\n", compared, differ);
    CHECK(compared == 5 * 40 && differ == 0, "%d of %d scores differ", differ, compared);
    float lm[HR_MAX_LAYERS];
    for (int i = 0; i < hr_heads_n_layer_metrics(); i++) {
        const char *id = hr_heads_layer_metric_info(i)->id;
        hr_status st = hr_scores_layer_metric(fromfile, id, lm);
        for (int l = 0; st == HR_OK && l < hr_config_n_layers(cfg()); l++)
            CHECK(lm[l] == (float)hr_heads_layer_score(g_res, i, l), "%s layer %d: %g", id, l, lm[l]);
        if (st != HR_OK) CHECK(isnan(hr_heads_layer_score(g_res, i, 0)), "%s: %s", id, hr_last_error());
    }
    hr_scores_free(fromfile);
    hr_scores_free(direct);
}

/* heads.json edited by `edit`, then parsed; the status and message. */
typedef void (*edit_fn)(cJSON *root);

static hr_status parse_edited(const char *doc, edit_fn edit, bool heads, hr_scores **out) {
    cJSON *root = cJSON_Parse(doc);
    edit(root);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    hr_scores *s = NULL;
    hr_scores_new(cfg(), &s);
    hr_status st = heads ? hr_scores_parse_heads(s, text, strlen(text), "heads.json")
                         : hr_scores_parse_layers(s, text, strlen(text), "layers.json");
    free(text);
    if (out) *out = s;
    else hr_scores_free(s);
    return st;
}

static cJSON *model_of(cJSON *r) { return cJSON_GetObjectItem(r, "model"); }
static cJSON *head_rec(cJSON *r, int i) { return cJSON_GetArrayItem(cJSON_GetObjectItem(r, "heads"), i); }
static cJSON *scores_of(cJSON *r, int i) { return cJSON_GetObjectItem(head_rec(r, i), "scores"); }

static void four_layers(cJSON *r) { cJSON_ReplaceItemInObject(model_of(r), "n_layers", cJSON_CreateNumber(4)); }
static void six_heads(cJSON *r) {
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(model_of(r), "n_heads"), 2, cJSON_CreateNumber(6));
}
static void eight_kv(cJSON *r) {
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(model_of(r), "n_kv_heads"), 1, cJSON_CreateNumber(8));
}
static void head_dim16(cJSON *r) { cJSON_ReplaceItemInObject(model_of(r), "head_dim", cJSON_CreateNumber(16)); }
static void drop_ten(cJSON *r) {
    for (int i = 0; i < 10; i++) cJSON_DeleteItemFromArray(cJSON_GetObjectItem(r, "heads"), 30);
}
static void duplicate(cJSON *r) {
    cJSON_AddItemToArray(cJSON_GetObjectItem(r, "heads"), cJSON_Duplicate(head_rec(r, 5), 1));
}
static void version2(cJSON *r) { cJSON_ReplaceItemInObject(r, "format_version", cJSON_CreateNumber(2)); }
static void version0(cJSON *r) { cJSON_ReplaceItemInObject(r, "format_version", cJSON_CreateNumber(0)); }
static void version_text(cJSON *r) { cJSON_ReplaceItemInObject(r, "format_version", cJSON_CreateString("1")); }
static void no_version(cJSON *r) { cJSON_DeleteItemFromObject(r, "format_version"); }
static void old_file(cJSON *r) {
    cJSON_DeleteItemFromObject(r, "format_version");
    cJSON_DeleteItemFromObject(r, "format");
}
static void prune_format(cJSON *r) { cJSON_ReplaceItemInObject(r, "format", cJSON_CreateString("headroom.prune")); }
static void score_text(cJSON *r) { cJSON_ReplaceItemInObject(scores_of(r, 3), "entropy", cJSON_CreateString("0.5")); }
static void layer_fraction(cJSON *r) { cJSON_ReplaceItemInObject(head_rec(r, 3), "layer", cJSON_CreateNumber(1.5)); }
static void heads_object(cJSON *r) { cJSON_ReplaceItemInObject(r, "heads", cJSON_CreateObject()); }
static void head_nine(cJSON *r) { cJSON_ReplaceItemInObject(head_rec(r, 0), "head", cJSON_CreateNumber(9)); }
static void unlisted(cJSON *r) { cJSON_AddNumberToObject(scores_of(r, 4), "magic", 1); }
static void no_higher(cJSON *r) {
    cJSON_DeleteItemFromObject(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "methods"), 1), "higher");
}
static void no_scores(cJSON *r) { cJSON_DeleteItemFromObject(head_rec(r, 7), "scores"); }
static void layers_four(cJSON *r) { cJSON_ReplaceItemInObject(model_of(r), "n_layers", cJSON_CreateNumber(4)); }
static void layers_drop(cJSON *r) { cJSON_DeleteItemFromArray(cJSON_GetObjectItem(r, "layers"), 4); }
static void layers_dup(cJSON *r) {
    cJSON *a = cJSON_GetObjectItem(r, "layers");
    cJSON_ReplaceItemInArray(a, 3, cJSON_Duplicate(cJSON_GetArrayItem(a, 2), 1));
}
static void layers_as_heads(cJSON *r) { cJSON_ReplaceItemInObject(r, "format", cJSON_CreateString("headroom.heads")); }

static void hostile_or_inconsistent_files_are_refused_naming_the_cause(void) {
    struct {
        const char *label;
        edit_fn edit;
        bool heads;
        const char *want;
    } cases[] = {
        {"another layer count", four_layers, true,
         "heads.json was scored on a model of a different shape (4 layers; this model has 5)"},
        {"other head counts", six_heads, true, "different shape (layer 2 has 6 heads there, 8 here)"},
        {"other KV heads", eight_kv, true, "different shape (layer 1 has 8 KV heads there, 4 here)"},
        {"another head_dim", head_dim16, true, "different shape (head_dim 16 there, 8 here)"},
        {"missing heads", drop_ten, true,
         "heads.json: 30 of 40 heads present; missing 3.6, 3.7, 4.0, 4.1, 4.2, 4.3, 4.4, 4.5, ..."},
        {"a duplicate record", duplicate, true, "heads.json: head 0.5 appears twice"},
        {"a newer format_version", version2, true, "format_version 2; this headroom reads version 1"},
        {"an older format_version", version0, true,
         "format_version 0: written by an older headroom; rerun headroom heads"},
        {"a format_version string", version_text, true, "format_version is not an integer"},
        {"no format_version", no_version, true, "has no format_version: written by an older headroom"},
        {"a file of an older headroom", old_file, true, "written by an older headroom; rerun headroom heads"},
        {"another kind of file", prune_format, true, "heads.json is a 'headroom.prune' file, not a heads.json"},
        {"a score of the wrong type", score_text, true,
         "head 0.3: the score for 'entropy' is a string, not a number or null"},
        {"a fractional layer", layer_fraction, true, "\"heads\"[3] has no integer \"layer\" and \"head\""},
        {"heads not an array", heads_object, true, "heads.json has no \"heads\" array"},
        {"a head outside the model", head_nine, true, "names head 0.9, which this model does not have"},
        {"an unlisted score", unlisted, true, "head 0.4 has a score for 'magic', which \"methods\" does not list"},
        {"a method without higher", no_higher, true, "has no string \"higher\""},
        {"a record without scores", no_scores, true, "head 0.7 has no \"scores\" object"},
        {"layers of another shape", layers_four, false, "different shape (4 layers; this model has 5)"},
        {"a missing layer", layers_drop, false, "layers.json: 4 of 5 layers present; missing 4"},
        {"a duplicate layer", layers_dup, false, "layers.json: layer 2 appears twice"},
        {"heads.json given as layers.json", layers_as_heads, false, "is a 'headroom.heads' file, not a layers.json"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hr_scores *s = NULL;
        hr_status st = parse_edited(cases[i].heads ? g_heads : g_layers, cases[i].edit, cases[i].heads, &s);
        const char *msg = hr_last_error();
        CHECK(st != HR_OK && strstr(msg, cases[i].want), "%s: status %d, message '%s'", cases[i].label, st, msg);
        printf("    %-32s -> %s\n", cases[i].label, msg);
        /* a failed read leaves the table as it was */
        CHECK(hr_scores_n_methods(s) == 0 && hr_scores_n_layer_metrics(s) == 0 && !hr_scores_heads_source(s)[0],
              "%s: the table changed", cases[i].label);
        hr_scores_free(s);
    }
    /* not JSON, and nesting deeper than the limit (refused before cJSON recurses) */
    hr_scores *s = NULL;
    hr_scores_new(cfg(), &s);
    CHECK(hr_scores_parse_heads(s, "{\"format\": ", 11, "heads.json") == HR_ERR_FORMAT &&
              strstr(hr_last_error(), "heads.json") && strstr(hr_last_error(), "not valid JSON"),
          "%s", hr_last_error());
    enum { DEEP = HR_JSON_MAX_DEPTH + 36 };
    char deep[2 * DEEP + 64];
    size_t n = (size_t)snprintf(deep, sizeof deep, "{\"format\": \"headroom.heads\", \"x\": ");
    for (int i = 0; i < DEEP; i++) deep[n++] = '[';
    for (int i = 0; i < DEEP; i++) deep[n++] = ']';
    deep[n++] = '}';
    CHECK(hr_scores_parse_heads(s, deep, n, "heads.json") == HR_ERR_FORMAT && strstr(hr_last_error(), "heads.json") &&
              strstr(hr_last_error(), "nests deeper than"),
          "%s", hr_last_error());
    /* a second heads.json into one table */
    CHECK(hr_scores_parse_heads(s, g_heads, strlen(g_heads), "a.json") == HR_OK, "%s", hr_last_error());
    CHECK(hr_scores_parse_heads(s, g_heads, strlen(g_heads), "b.json") == HR_ERR_INVALID_ARG &&
              strstr(hr_last_error(), "already holds head scores (from a.json)"),
          "%s", hr_last_error());
    hr_scores_free(s);
}

static void set_null(cJSON *r) { cJSON_ReplaceItemInObject(scores_of(r, 13), "entropy", cJSON_CreateNull()); }
static void all_null(cJSON *r) {
    for (int i = 0; i < 40; i++) cJSON_ReplaceItemInObject(scores_of(r, i), "sink", cJSON_CreateNull());
}
static void layer_null(cJSON *r) {
    cJSON *rec = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "layers"), 3);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(rec, "scores"), "attn_kl", cJSON_CreateNull());
}

static void null_scores_are_refused_only_when_asked_for(void) {
    int L = hr_config_n_layers(cfg()), mh = hr_config_max_heads(cfg());
    float *v = malloc(sizeof(float) * (size_t)L * mh);
    hr_scores *s = NULL;
    CHECK(parse_edited(g_heads, set_null, true, &s) == HR_OK, "a null score refused at read: %s", hr_last_error());
    CHECK(hr_scores_keep_order(s, "sink", false, v) == HR_OK, "%s", hr_last_error());
    CHECK(hr_scores_keep_order(s, "entropy", false, v) == HR_ERR_FORMAT &&
              strstr(hr_last_error(), "heads.json: head 1.5 has no score for 'entropy' (null)"),
          "%s", hr_last_error());
    CHECK(hr_scores_keep_order(s, "induction", false, v) == HR_ERR_NOT_FOUND &&
              strstr(hr_last_error(),
                     "no scores for method 'induction' (it has: ablation, fdtm, entropy, sink, streaming)"),
          "%s", hr_last_error());
    hr_scores_free(s);
    CHECK(parse_edited(g_heads, all_null, true, &s) == HR_OK, "%s", hr_last_error());
    CHECK(hr_scores_keep_order(s, "sink", false, v) == HR_ERR_FORMAT &&
              strstr(hr_last_error(), "method 'sink' has no score for any head"),
          "%s", hr_last_error());
    hr_scores_free(s);
    float lm[HR_MAX_LAYERS];
    CHECK(parse_edited(g_layers, layer_null, false, &s) == HR_OK, "%s", hr_last_error());
    CHECK(hr_scores_layer_metric(s, "attn_kl", lm) == HR_ERR_FORMAT &&
              strstr(hr_last_error(), "layers.json: layer 3 has no 'attn_kl' value (null)"),
          "%s", hr_last_error());
    CHECK(hr_scores_layer_metric(s, "mlp_kl", lm) == HR_OK, "%s", hr_last_error());
    hr_scores_free(s);
    free(v);
}

static void keep_order_follows_each_methods_higher_field(void) {
    int L = hr_config_n_layers(cfg()), mh = hr_config_max_heads(cfg());
    float *v = malloc(sizeof(float) * (size_t)L * mh), *w = malloc(sizeof(float) * (size_t)L * mh);
    hr_scores *s = NULL;
    hr_scores_new(cfg(), &s);
    CHECK(hr_scores_parse_heads(s, g_heads, strlen(g_heads), "heads.json") == HR_OK, "%s", hr_last_error());
    /* expected sign per method, from the documented "higher" texts */
    struct {
        const char *id;
        float sign;
        hr_score_kind kind;
    } m[] = {{"ablation", 1, HR_SCORE_IMPORTANCE}, {"fdtm", -1, HR_SCORE_HARMLESSNESS}, {"entropy", 1, HR_SCORE_TRAIT}};
    for (int k = 0; k < 3; k++) {
        int i = hr_scores_method_index(s, m[k].id);
        CHECK(hr_scores_method_kind(s, i) == m[k].kind, "%s kind %d", m[k].id, hr_scores_method_kind(s, i));
        CHECK(hr_scores_keep_order(s, m[k].id, false, v) == HR_OK, "%s", hr_last_error());
        CHECK(hr_scores_keep_order(s, m[k].id, true, w) == HR_OK, "%s", hr_last_error());
        int bad = 0;
        for (int l = 0; l < L; l++)
            for (int h = 0; h < mh; h++) {
                float raw = (float)hr_scores_head(s, i, l, h);
                bad += v[l * mh + h] != m[k].sign * raw || w[l * mh + h] != -m[k].sign * raw;
            }
        CHECK(bad == 0, "%s: %d heads oriented wrongly", m[k].id, bad);
    }
    free(v);
    free(w);
    hr_scores_free(s);
}

/* A steering score ("higher": "prune first ...", as ph3.json writes it):
 * keep order = -score, so pruning removes the highest first, and the top
 * heads are the highest scores (the heads to mask). Scores l*10 + h, so the
 * highest are the last layer's last heads (brute force). */
static void a_steering_score_prunes_and_masks_its_highest_heads_first(void) {
    const hr_config *c = cfg();
    int L = hr_config_n_layers(c), mh = hr_config_max_heads(c);
    char *j = malloc(65536);
    size_t n = (size_t)snprintf(j, 65536,
                                "{\"format\": \"headroom.heads\", \"format_version\": 1, \"model\": {\"n_layers\": %d, "
                                "\"n_heads\": [",
                                L);
    for (int l = 0; l < L; l++) n += (size_t)snprintf(j + n, 65536 - n, "%s%d", l ? ", " : "", hr_config_n_head(c, l));
    n += (size_t)snprintf(j + n, 65536 - n, "], \"n_kv_heads\": [");
    for (int l = 0; l < L; l++)
        n += (size_t)snprintf(j + n, 65536 - n, "%s%d", l ? ", " : "", hr_config_n_head_kv(c, l));
    n +=
        (size_t)snprintf(j + n, 65536 - n,
                         "], \"head_dim\": %d}, \"methods\": [{\"id\": \"ph3-memory\", \"higher\": \"prune first (more "
                         "memory)\"}], \"heads\": [",
                         hr_config_head_dim(c));
    for (int l = 0; l < L; l++)
        for (int h = 0; h < hr_config_n_head(c, l); h++)
            n += (size_t)snprintf(j + n, 65536 - n, "%s{\"layer\": %d, \"head\": %d, \"scores\": {\"ph3-memory\": %d}}",
                                  l || h ? ", " : "", l, h, l * 10 + h);
    snprintf(j + n, 65536 - n, "]}");
    hr_scores *s = NULL;
    hr_scores_new(c, &s);
    CHECK(hr_scores_parse_heads(s, j, strlen(j), "ph3.json") == HR_OK, "%s", hr_last_error());
    int i = hr_scores_method_index(s, "ph3-memory");
    CHECK(hr_scores_method_kind(s, i) == HR_SCORE_STEERING &&
              !strcmp(hr_score_kind_name(hr_scores_method_kind(s, i)), "steering"),
          "kind %d", hr_scores_method_kind(s, i));
    float *v = malloc(sizeof(float) * (size_t)L * mh);
    CHECK(hr_scores_keep_order(s, "ph3-memory", false, v) == HR_OK, "%s", hr_last_error());
    int bad = 0;
    for (int l = 0; l < L; l++)
        for (int h = 0; h < hr_config_n_head(c, l); h++) bad += v[l * mh + h] != -(float)(l * 10 + h);
    CHECK(bad == 0, "%d heads not oriented as -score", bad);
    char *top = NULL, want[64];
    int nl = hr_config_n_head(c, L - 1);
    snprintf(want, sizeof want, "%d.%d,%d.%d", L - 1, nl - 1, L - 1, nl - 2);
    CHECK(hr_scores_top_heads(s, "ph3-memory", 2, &top) == HR_OK && !strcmp(top, want), "top 2 %s, want %s",
          top ? top : "(none)", want);
    hr_free(top);
    free(v);
    free(j);
    hr_scores_free(s);
}

static void a_kv_plan_from_streaming_scores_keeps_the_least_streaming_heads_full(void) {
    const hr_config *c = cfg();
    hr_scores *s = NULL;
    hr_scores_new(c, &s);
    hr_scores_parse_heads(s, g_heads, strlen(g_heads), "heads.json");
    hr_kv_policy rest = {HR_KV_STREAMING, 4, 32, 0};
    hr_kv_plan *p = NULL;
    CHECK(hr_scores_kv_plan(s, c, NULL, 0.25f, rest, &p) == HR_OK, "%s", hr_last_error());
    /* brute force: a KV head's need of a full cache is 1 - the smallest
     * streaming score of its query heads; the 5 largest of 20 stay full */
    int idx = hr_scores_method_index(s, "streaming"), n = 0, full_ok = 0, n_full = 0;
    double need[64];
    for (int l = 0; l < hr_config_n_layers(c); l++) {
        int g = hr_config_n_head(c, l) / hr_config_n_head_kv(c, l);
        for (int k = 0; k < hr_config_n_head_kv(c, l); k++, n++) {
            double lo = INFINITY;
            for (int h = k * g; h < (k + 1) * g; h++) lo = fmin(lo, hr_scores_head(s, idx, l, h));
            need[n] = 1 - lo;
        }
    }
    for (int l = 0, i = 0; p && l < hr_config_n_layers(c); l++)
        for (int k = 0; k < hr_config_n_head_kv(c, l); k++, i++) {
            int above = 0;
            for (int j = 0; j < n; j++) above += need[j] > need[i];
            bool full = hr_kv_plan_get(p, l, k).kind == HR_KV_FULL;
            n_full += full;
            full_ok += full == (above < 5);
        }
    printf("    %d of %d KV heads full, %d placed as the brute-force ranking places them\n", n_full, n, full_ok);
    CHECK(n_full == 5 && full_ok == n, "plan differs from the brute-force ranking");
    hr_kv_plan_free(p);
    hr_scores_free(s);
}

int main(void) {
    setup();
    if (!g_heads) {
        printf("no head-lab output; cannot test\n");
        return 1;
    }
    RUN(a_lab_result_round_trips_through_json_exactly);
    RUN(hostile_or_inconsistent_files_are_refused_naming_the_cause);
    RUN(null_scores_are_refused_only_when_asked_for);
    RUN(keep_order_follows_each_methods_higher_field);
    RUN(a_steering_score_prunes_and_masks_its_highest_heads_first);
    RUN(a_kv_plan_from_streaming_scores_keeps_the_least_streaming_heads_full);
    free(g_heads);
    free(g_layers);
    hr_heads_result_free(g_res);
    hr_model_free(g_model);
    TEST_MAIN_END();
}
