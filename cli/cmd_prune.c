/* headroom prune: remove heads, MLP neurons, sublayers and blocks by
 * scores, write the smaller model (GGUF, optionally HF) and prune.json. */
#include "commands.h"
#include "common.h"
#include "surgery.h"

#include "headroom/context.h"
#include "headroom/save.h"
#include "headroom/prune.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt k_opts[] = {
    {"scores", 0, "heads.json", "head scores from 'headroom heads' (needed for --heads unless --by random)"},
    {"by", 0, "METHOD", "score method id in heads.json (higher = keep), or 'random'"},
    {"heads", 0, "P%|N", "query heads to remove: a percentage of all heads or a count"},
    {"mlp", 0, "P%|N", "MLP neurons to remove (AMP importance on --text): a percentage or a count"},
    {"drop-attn", 0, "K", "remove the K least important attention sublayers"},
    {"drop-mlp", 0, "K", "remove the K least important MLP sublayers"},
    {"drop-blocks", 0, "K", "remove the K least important blocks"},
    {"budget", 0, "MODE", "global | per-layer | cfsp (default global)"},
    {"layers", 0, "layers.json", "layer scores from 'headroom heads' (default: computed on --text)"},
    {"layer-metric", 0, "ID", "layers.json metric for all drops (default attn_kl / mlp_kl / block_influence)"},
    {"text", 'f', "FILE", "calibration text (MLP importance, layer scores when no --layers)"},
    {"tokens", 'n', "N", "calibration tokens (default 2048)"},
    {"uneven", 0, "MODE", "even (default: planner keeps GQA groups even) | duplicate (duplicate K/V rows)"},
    {"uniform", 0, NULL, "same budget in every layer (per-layer, counts rounded to whole layers)"},
    {"invert", 0, NULL, "remove the highest-scored heads first (for trait scores like sink)"},
    {"seed", 's', "S", "seed of --by random (default 0)"},
    {"out", 'o', "OUT.gguf", "output GGUF (required); prune.json goes to OUT.prune.json"},
    {"report", 0, "FILE", "where to write prune.json (default OUT.prune.json)"},
    {"hf", 0, "DIR", "also write a Hugging Face folder (uniform results only)"},
    {"dtype", 0, "f32|f16|bf16", "output dtype (default f32)"},
    {"tokenizer", 0, "PATH", "tokenizer (default: beside the model, or the GGUF)"},
    {"threads", 't', "K", "worker threads; 0 = all cores (default 0)"},
    {"force", 0, NULL, "replace an existing output that is not an earlier headroom output of the same kind"},
};

static const cli_spec k_spec = {
    .name = "prune",
    .usage = "[MODEL] --out OUT.gguf [--scores heads.json --by METHOD --heads P%|N] [--mlp P%] [options]",
    .summary = "Physically removes attention heads (rows of Wq/Wk/Wv, columns of Wo), MLP neurons (rows of\n"
               "gate/up, columns of down), attention / MLP sublayers and whole blocks, and writes the\n"
               "smaller model as GGUF (per-layer shapes: architecture \"deci\" when not uniform) plus\n"
               "prune.json recording what went and why. In GQA layers a KV head goes with its last query\n"
               "head and every KV group keeps the same number of query heads (or, with --uneven\n"
               "duplicate, K/V rows are duplicated). No layer loses all its heads or neurons unless its\n"
               "sublayer is dropped. Nothing is written when any input is bad.",
    .opts = k_opts,
    .n_opts = sizeof k_opts / sizeof k_opts[0],
    .example = "  headroom heads -f ../shared/data/text/tinystories_val.txt -o lab\n"
               "  headroom prune --scores lab/heads.json --by ablation --heads 25% --out p25.gguf\n"
               "  headroom prune --mlp 30% --drop-blocks 1 -f ../shared/data/text/tinystories_val.txt -o small.gguf",
    .max_positional = 1,
};

typedef struct {
    const char *scores, *by, *heads, *mlp, *layers, *metric, *text, *out, *report, *hf, *tokenizer;
    long drop_attn, drop_mlp, drop_blocks, tokens, threads;
    uint64_t seed;
    hr_prune_budget budget;
    hr_dtype dtype;
    bool duplicate, uniform, invert, force;
    char report_path[PATH_MAX + 32];
} prune_opts;

typedef struct {
    hr_model *m, *p;
    hr_tokenizer *tok;
    hr_context *ctx;
    int32_t *ids;
    size_t n_ids;
    hr_prune_spec *s;
    float *head_scores;          /* (L, max_heads) */
    float **ff_scores;           /* (n_layers) pointers to (n_ff[l]) */
    float *lay[3];               /* (n_layers) attention, MLP, block importance */
    const char *lay_name[3];
    bool have_lay;
    int heads_removed;
    int64_t ff_removed;
    char model_path[PATH_MAX + 64];
} prune_state;

static int read_opts(const cli_args *a, prune_opts *o) {
    memset(o, 0, sizeof *o);
    o->scores = cli_value(&k_spec, a, "scores");
    o->by = cli_value(&k_spec, a, "by");
    o->heads = cli_value(&k_spec, a, "heads");
    o->mlp = cli_value(&k_spec, a, "mlp");
    o->layers = cli_value(&k_spec, a, "layers");
    o->metric = cli_value(&k_spec, a, "layer-metric");
    o->text = cli_value(&k_spec, a, "text");
    o->out = cli_value(&k_spec, a, "out");
    o->report = cli_value(&k_spec, a, "report");
    o->hf = cli_value(&k_spec, a, "hf");
    o->tokenizer = cli_value(&k_spec, a, "tokenizer");
    o->uniform = cli_value(&k_spec, a, "uniform") != NULL;
    o->invert = cli_value(&k_spec, a, "invert") != NULL;
    o->force = cli_value(&k_spec, a, "force") != NULL;
    o->tokens = 2048;
    if (cli_get_int(&k_spec, a, "drop-attn", 0, INT_MAX, &o->drop_attn) ||
        cli_get_int(&k_spec, a, "drop-mlp", 0, INT_MAX, &o->drop_mlp) ||
        cli_get_int(&k_spec, a, "drop-blocks", 0, INT_MAX, &o->drop_blocks) ||
        cli_get_int(&k_spec, a, "tokens", 16, INT_MAX, &o->tokens) ||
        cli_get_int(&k_spec, a, "threads", 0, 4096, &o->threads) || cli_get_u64(&k_spec, a, "seed", &o->seed))
        return CLI_FAIL;
    const char *b = cli_value(&k_spec, a, "budget");
    if (hr_prune_budget_from_name(b ? b : "global", &o->budget) != HR_OK) return cli_lib_error("bad --budget");
    if (o->uniform) {
        if (b && o->budget != HR_BUDGET_PER_LAYER) return cli_error("--uniform needs --budget per-layer (its default)");
        o->budget = HR_BUDGET_PER_LAYER;
    }
    const char *u = cli_value(&k_spec, a, "uneven");
    if (u && strcmp(u, "duplicate") != 0 && strcmp(u, "even") != 0)
        return cli_error("unknown --uneven '%s' (expected even or duplicate)", u);
    o->duplicate = u && strcmp(u, "duplicate") == 0;
    const char *dt = cli_value(&k_spec, a, "dtype");
    o->dtype = HR_DTYPE_F32;
    if (dt && hr_dtype_from_name(dt, &o->dtype) != HR_OK) return cli_lib_error("bad --dtype");
    if (!o->out) return cli_error("--out OUT.gguf is required (see 'headroom prune --help')");
    if (!o->heads && !o->mlp && !o->drop_attn && !o->drop_mlp && !o->drop_blocks)
        return cli_error("nothing to prune: give --heads, --mlp, --drop-attn, --drop-mlp or --drop-blocks");
    if (o->heads && !o->by) return cli_error("--heads needs --by METHOD (a method of --scores, or random)");
    if (o->heads && o->by && strcmp(o->by, "random") != 0 && !o->scores)
        return cli_error("--by %s needs --scores heads.json", o->by);
    if (o->mlp && !o->text) return cli_error("--mlp needs --text FILE for the neuron importance");
    bool need_layers = o->drop_attn || o->drop_mlp || o->drop_blocks || o->budget == HR_BUDGET_CFSP;
    if (need_layers && !o->layers && !o->text)
        return cli_error("dropping layers and the cfsp budget need --layers layers.json or --text FILE");
    return CLI_OK;
}

/* "25%" of total, or a plain count. */
static int parse_amount(const char *what, const char *v, int64_t total, int64_t *out) {
    char *end = NULL;
    double x = strtod(v, &end);
    if (end == v || !isfinite(x) || x < 0) return cli_error("--%s '%s' is not a percentage or count", what, v);
    if (*end == '%' && end[1] == 0) {
        if (x >= 100) return cli_error("--%s %s would remove everything (budget must be below 100%%)", what, v);
        *out = (int64_t)llround(x / 100.0 * (double)total);
    } else if (*end == 0 && x == floor(x)) {
        if (x >= (double)total) return cli_error("--%s %s is not below the model's %lld", what, v, (long long)total);
        *out = (int64_t)x;
    } else {
        return cli_error("--%s '%s' is not a percentage or count", what, v);
    }
    return CLI_OK;
}

/* Reads heads.json scores of method `by` into st->head_scores. */
static int load_head_scores(const prune_opts *o, prune_state *st) {
    const hr_config *c = hr_model_config(st->m);
    int mh = hr_config_max_heads(c);
    for (int i = 0; i < hr_config_n_layers(c) * mh; i++) st->head_scores[i] = NAN;
    if (strcmp(o->by, "random") == 0) {
        uint64_t z = o->seed * 0x9E3779B97F4A7C15ull + 1;
        for (int i = 0; i < hr_config_n_layers(c) * mh; i++) {
            z ^= z << 13, z ^= z >> 7, z ^= z << 17;
            st->head_scores[i] = (float)((double)(z >> 11) / 9007199254740992.0);
        }
        return CLI_OK;
    }
    char *text = NULL;
    size_t len = 0;
    if (cli_read_text(o->scores, &text, &len) != CLI_OK) return CLI_FAIL;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    if (!j) return cli_error("'%s' is not valid JSON", o->scores);
    int rc = CLI_OK, found = 0;
    cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    cJSON *nl = cJSON_GetObjectItemCaseSensitive(model, "n_layers");
    cJSON *nh = cJSON_GetObjectItemCaseSensitive(model, "n_heads");
    bool shape_ok = cJSON_IsNumber(nl) && nl->valueint == hr_config_n_layers(c) && cJSON_IsArray(nh) &&
                    cJSON_GetArraySize(nh) == hr_config_n_layers(c);
    for (int l = 0; shape_ok && l < hr_config_n_layers(c); l++) {
        cJSON *x = cJSON_GetArrayItem(nh, l);
        shape_ok = cJSON_IsNumber(x) && x->valueint == hr_config_n_head(c, l);
    }
    if (!shape_ok) {
        rc = cli_error("'%s' was scored on a model of a different shape (layers / heads per layer differ from "
                       "the model's %d layers)", o->scores, hr_config_n_layers(c));
        goto out;
    }
    cJSON *heads = cJSON_GetObjectItemCaseSensitive(j, "heads"), *h;
    cJSON_ArrayForEach(h, heads) {
        cJSON *l = cJSON_GetObjectItemCaseSensitive(h, "layer"), *hd = cJSON_GetObjectItemCaseSensitive(h, "head");
        cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(h, "scores"), o->by);
        if (!cJSON_IsNumber(l) || !cJSON_IsNumber(hd) || l->valueint < 0 || l->valueint >= hr_config_n_layers(c) ||
            hd->valueint < 0 || hd->valueint >= hr_config_n_head(c, l->valueint)) {
            rc = cli_error("'%s': a head record has a layer/head outside the model", o->scores);
            goto out;
        }
        if (cJSON_IsNumber(v)) {
            float s = (float)v->valuedouble;
            st->head_scores[l->valueint * mh + hd->valueint] = o->invert ? -s : s;
            found++;
        }
    }
    if (!found) {
        cJSON *ms = cJSON_GetObjectItemCaseSensitive(j, "methods"), *m;
        char list[1024] = "";
        cJSON_ArrayForEach(m, ms) {
            cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "id");
            if (cJSON_IsString(id) && strlen(list) + strlen(id->valuestring) + 3 < sizeof list) {
                if (*list) strcat(list, ", ");
                strcat(list, id->valuestring);
            }
        }
        rc = cli_error("'%s' has no scores for method '%s' (it has: %s; or use random)", o->scores, o->by,
                       *list ? list : "none");
    }
out:
    cJSON_Delete(j);
    return rc;
}

/* Layer scores from layers.json for one of attention / MLP / block. */
static int load_layer_scores(const prune_opts *o, prune_state *st) {
    const hr_config *c = hr_model_config(st->m);
    char *text = NULL;
    size_t len = 0;
    if (cli_read_text(o->layers, &text, &len) != CLI_OK) return CLI_FAIL;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    if (!j) return cli_error("'%s' is not valid JSON", o->layers);
    static const char *defaults[3][2] = {{"attn_kl", "attn_sim"}, {"mlp_kl", "mlp_sim"}, {"block_influence", NULL}};
    cJSON *layers = cJSON_GetObjectItemCaseSensitive(j, "layers");
    int rc = CLI_OK;
    if (cJSON_GetArraySize(layers) != hr_config_n_layers(c)) {
        rc = cli_error("'%s' scores %d layers, the model has %d", o->layers, cJSON_GetArraySize(layers), hr_config_n_layers(c));
        goto out;
    }
    for (int k = 0; k < 3 && rc == CLI_OK; k++) {
        const char *cand[2] = {o->metric ? o->metric : defaults[k][0], o->metric ? NULL : defaults[k][1]};
        for (int t = 0; t < 2 && cand[t]; t++) {
            int ok = 1;
            for (int l = 0; l < hr_config_n_layers(c) && ok; l++) {
                cJSON *v = cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(layers, l), "scores"), cand[t]);
                ok = cJSON_IsNumber(v);
                if (ok) st->lay[k][l] = (float)v->valuedouble;
            }
            if (ok) {
                st->lay_name[k] = cand[t];
                break;
            }
        }
        bool needed = (k == 0 && o->drop_attn) || (k == 1 && o->drop_mlp) ||
                      (k == 2 && (o->drop_blocks || o->budget == HR_BUDGET_CFSP));
        if (!st->lay_name[k] && needed)
            rc = cli_error("'%s' has no complete '%s' scores", o->layers, cand[0]);
    }
out:
    cJSON_Delete(j);
    return rc;
}

/* Every output is checked before any work: never an input, never a foreign
 * file without --force, always writable. */
static int check_outputs(prune_opts *o, const char *model_path) {
    if (o->report) snprintf(o->report_path, sizeof o->report_path, "%s", o->report);
    else snprintf(o->report_path, sizeof o->report_path, "%s.prune.json", o->out);
    const char *inputs[] = {o->scores, o->layers, o->text, o->tokenizer, NULL};
    if (cli_check_output(o->out, HR_OUT_GGUF, NULL, o->force, model_path, o->tokenizer, inputs) ||
        cli_check_output(o->report_path, HR_OUT_JSON, "headroom.prune", o->force, model_path, o->tokenizer, inputs) ||
        (o->hf && cli_check_output(o->hf, HR_OUT_HF_FOLDER, NULL, o->force, model_path, o->tokenizer, inputs)))
        return CLI_FAIL;
    if (strcmp(o->report_path, o->out) == 0 || (o->hf && strcmp(o->hf, o->out) == 0))
        return cli_error("--out, --report and --hf must name different paths");
    return CLI_OK;
}

static int setup(const cli_args *a, prune_opts *o, prune_state *st) {
    if (cli_resolve_model(a, st->model_path, sizeof st->model_path) || check_outputs(o, st->model_path) ||
        cli_load_model(st->model_path, &st->m))
        return CLI_FAIL;
    const hr_config *c = hr_model_config(st->m);
    size_t nl = (size_t)hr_config_n_layers(c);
    st->head_scores = malloc(sizeof(float) * nl * hr_config_max_heads(c));
    st->ff_scores = calloc(nl, sizeof(float *));
    for (int k = 0; k < 3; k++) st->lay[k] = calloc(nl, sizeof(float));
    if (!st->head_scores || !st->ff_scores || !st->lay[0] || !st->lay[1] || !st->lay[2] || hr_prune_spec_new(st->m, &st->s) != HR_OK) return cli_lib_error("out of memory");
    hr_prune_spec_set_uneven_duplicate(st->s, o->duplicate);
    if (o->heads && load_head_scores(o, st)) return CLI_FAIL;
    if (o->layers && load_layer_scores(o, st)) return CLI_FAIL;
    if (o->text) {
        if (cli_load_tokenizer(st->model_path, st->m, o->tokenizer, &st->tok)) return CLI_FAIL;
    } else {
        /* optional: embedded in the output GGUF when found */
        char tp[PATH_MAX + 256];
        if (hr_tokenizer_find_for_model(st->model_path, o->tokenizer, tp, sizeof tp) == HR_OK &&
            hr_tokenizer_load(tp, &st->tok) == HR_OK && hr_tokenizer_vocab_size(st->tok) > hr_config_vocab_size(c)) {
            hr_tokenizer_free(st->tok);
            st->tok = NULL;
        }
    }
    if (o->text) {
        if (surg_text_tokens(o->text, st->tok, (size_t)o->tokens, &st->ids, &st->n_ids)) return CLI_FAIL;
        hr_context_params cp = hr_context_default_params();
        cp.n_ctx = hr_config_seq_len(c) < 256 ? hr_config_seq_len(c) : 256;
        cp.n_threads = (int)o->threads;
        if (hr_context_new(st->m, &cp, &st->ctx) != HR_OK) return cli_lib_error("cannot create a context");
    }
    if (!o->layers && st->ctx) {
        if (hr_prune_layer_importance(st->ctx, st->ids, st->n_ids, 0, st->lay[2], st->lay[0], st->lay[1]) != HR_OK)
            return cli_lib_error("layer importance failed");
        st->lay_name[0] = "attn_sim (computed)";
        st->lay_name[1] = "mlp_sim (computed)";
        st->lay_name[2] = "block_influence (computed)";
    }
    return CLI_OK;
}

static int plan(const prune_opts *o, prune_state *st) {
    const hr_config *c = hr_model_config(st->m);
    if ((o->drop_blocks && hr_prune_plan_layers(st->m, st->lay[2], (int)o->drop_blocks, HR_PRUNE_BLOCK, st->s) != HR_OK) ||
        (o->drop_attn && hr_prune_plan_layers(st->m, st->lay[0], (int)o->drop_attn, HR_PRUNE_ATTN, st->s) != HR_OK) ||
        (o->drop_mlp && hr_prune_plan_layers(st->m, st->lay[1], (int)o->drop_mlp, HR_PRUNE_MLP, st->s) != HR_OK))
        return cli_lib_error("cannot drop layers");
    const float *imp = st->lay_name[2] ? st->lay[2] : NULL;
    if (o->heads) {
        int64_t total = 0, n = 0;
        for (int l = 0; l < hr_config_n_layers(c); l++)
            if (!hr_prune_spec_dropped(st->s, l, HR_PRUNE_ATTN)) total += hr_config_n_head(c, l);
        if (parse_amount("heads", o->heads, total, &n)) return CLI_FAIL;
        if (o->uniform) n = n / hr_config_n_layers(c) * hr_config_n_layers(c);
        if (hr_prune_plan_heads(st->m, st->head_scores, imp, (int)n, o->budget, st->s, &st->heads_removed) != HR_OK)
            return cli_lib_error("cannot plan the head pruning");
    }
    if (o->mlp) {
        int64_t total = 0, n = 0;
        for (int l = 0; l < hr_config_n_layers(c); l++) {
            if (!hr_prune_spec_dropped(st->s, l, HR_PRUNE_MLP)) total += hr_config_n_ff(c, l);
            st->ff_scores[l] = malloc(sizeof(float) * ((size_t)hr_config_n_ff(c, l) + 1));
            if (!st->ff_scores[l]) return cli_error("out of memory");
        }
        if (parse_amount("mlp", o->mlp, total, &n)) return CLI_FAIL;
        if (o->uniform) n = n / hr_config_n_layers(c) * hr_config_n_layers(c);
        if (hr_prune_neuron_importance(st->ctx, st->ids, st->n_ids, 0, st->ff_scores) != HR_OK)
            return cli_lib_error("neuron importance failed");
        if (hr_prune_plan_ff(st->m, (const float *const *)st->ff_scores, imp, n, o->budget, st->s, &st->ff_removed) !=
            HR_OK)
            return cli_lib_error("cannot plan the MLP pruning");
    }
    if (hr_prune_apply(st->m, st->s, &st->p) != HR_OK) return cli_lib_error("pruning failed");
    if (o->hf && !surg_is_uniform(st->p))
        return cli_error("the pruned model differs across layers; a Hugging Face folder needs a uniform result "
                         "(use --uniform, or write only the GGUF)");
    return CLI_OK;
}

static cJSON *int_list(const int *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

static cJSON *layer_record(const prune_opts *o, const prune_state *st, int l, const hr_prune_layer_result *r) {
    const hr_config *c = hr_model_config(st->m);
    const hr_prune_spec *s = st->s;
    int mh = hr_config_max_heads(c), g = hr_config_n_head_kv(c, l) ? hr_config_n_head(c, l) / hr_config_n_head_kv(c, l) : 1;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "layer", l);
    bool block = hr_prune_spec_dropped(s, l, HR_PRUNE_BLOCK);
    cJSON_AddBoolToObject(j, "block_dropped", block);
    cJSON_AddBoolToObject(j, "attention_dropped", hr_prune_spec_dropped(s, l, HR_PRUNE_ATTN) && !block);
    cJSON_AddBoolToObject(j, "mlp_dropped", hr_prune_spec_dropped(s, l, HR_PRUNE_MLP) && !block);
    int before[3] = {hr_config_n_head(c, l), hr_config_n_head_kv(c, l), hr_config_n_ff(c, l)}, after[3] = {r->n_head, r->n_head_kv, r->n_ff};
    cJSON_AddItemToObject(j, "n_head", int_list((int[]){before[0], after[0]}, 2));
    cJSON_AddItemToObject(j, "n_head_kv", int_list((int[]){before[1], after[1]}, 2));
    cJSON_AddItemToObject(j, "n_ff", int_list((int[]){before[2], after[2]}, 2));
    cJSON_AddBoolToObject(j, "kv_duplicated", r->n_head_kv > r->n_kv_distinct);
    cJSON *rh = cJSON_AddArrayToObject(j, "removed_heads"), *rkv = cJSON_AddArrayToObject(j, "removed_kv_heads");
    bool whole = hr_prune_spec_dropped(s, l, HR_PRUNE_ATTN);
    for (int h = 0; h < hr_config_n_head(c, l); h++) {
        if (!whole && hr_prune_spec_keeps_head(s, l, h)) continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "head", h);
        float sc = st->head_scores ? st->head_scores[l * mh + h] : NAN;
        if (o->heads && isfinite(sc)) cJSON_AddNumberToObject(e, "score", o->invert ? -sc : sc);
        cJSON_AddItemToArray(rh, e);
    }
    for (int k = 0; k < hr_config_n_head_kv(c, l); k++) {
        int kept = 0;
        for (int i = 0; i < g; i++) kept += hr_prune_spec_keeps_head(s, l, k * g + i);
        if (whole || !kept) cJSON_AddItemToArray(rkv, cJSON_CreateNumber(k));
    }
    int nrm = 0;
    for (int f = 0; f < hr_config_n_ff(c, l); f++) nrm += !hr_prune_spec_keeps_neuron(s, l, f);
    cJSON_AddNumberToObject(j, "removed_neurons", nrm);
    for (int k = 0; k < 3; k++)
        if (st->lay_name[k]) {
            static const char *keys[3] = {"attn_score", "mlp_score", "block_score"};
            cJSON_AddNumberToObject(j, keys[k], st->lay[k][l]);
        }
    return j;
}

static char *report_json(const prune_opts *o, const prune_state *st) {
    const hr_config *c = hr_model_config(st->m);
    hr_prune_layer_result *res = calloc((size_t)hr_config_n_layers(c), sizeof *res);
    if (!res || hr_prune_check(st->m, st->s, res) != HR_OK) {
        free(res);
        return NULL;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", "headroom.prune");
    cJSON_AddNumberToObject(j, "format_version", 1);
    cJSON_AddStringToObject(j, "base", st->model_path);
    cJSON_AddStringToObject(j, "output", o->out);
    if (o->hf) cJSON_AddStringToObject(j, "output_hf", o->hf);
    cJSON_AddStringToObject(j, "architecture", surg_is_uniform(st->p) ? "uniform" : "per-layer (deci)");
    cJSON_AddStringToObject(j, "head_method", o->heads ? o->by : "");
    if (o->scores) cJSON_AddStringToObject(j, "scores", o->scores);
    cJSON_AddBoolToObject(j, "inverted", o->invert);
    cJSON_AddStringToObject(j, "budget", hr_prune_budget_name(o->budget));
    cJSON_AddStringToObject(j, "gqa_groups", o->duplicate ? "duplicate" : "even");
    cJSON_AddStringToObject(j, "mlp_method", o->mlp ? "amp: mean |act| * ||W_down column|| on calibration text" : "");
    if (o->text) cJSON_AddStringToObject(j, "text", o->text);
    cJSON *ls = cJSON_AddObjectToObject(j, "layer_metrics");
    static const char *keys[3] = {"attention", "mlp", "block"};
    for (int k = 0; k < 3; k++)
        if (st->lay_name[k]) cJSON_AddStringToObject(ls, keys[k], st->lay_name[k]);
    cJSON_AddStringToObject(j, "heads_requested", o->heads ? o->heads : "");
    cJSON_AddNumberToObject(j, "heads_removed", st->heads_removed);
    cJSON_AddStringToObject(j, "mlp_requested", o->mlp ? o->mlp : "");
    cJSON_AddNumberToObject(j, "neurons_removed", (double)st->ff_removed);
    cJSON_AddNumberToObject(j, "params_before", (double)hr_model_n_params(st->m));
    cJSON_AddNumberToObject(j, "params_after", (double)hr_model_n_params(st->p));
    cJSON *arr = cJSON_AddArrayToObject(j, "layers");
    for (int l = 0; l < hr_config_n_layers(c); l++) cJSON_AddItemToArray(arr, layer_record(o, st, l, &res[l]));
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    free(res);
    return s;
}

static int write_outputs(const prune_opts *o, prune_state *st) {
    char *json = report_json(o, st);
    if (!json) return cli_lib_error("cannot build prune.json");
    const char *report = o->report_path;
    int rc = CLI_OK;
    if (hr_model_save_gguf(st->p, st->tok, o->out, o->dtype) != HR_OK) rc = cli_lib_error("cannot write the GGUF");
    if (rc == CLI_OK && o->hf && hr_model_save_hf(st->p, st->tok, o->hf, o->dtype) != HR_OK) {
        remove(o->out);
        rc = cli_lib_error("cannot write the Hugging Face folder");
    }
    if (rc == CLI_OK) rc = cli_write_file(report, json);
    free(json);
    if (rc != CLI_OK) return rc;
    const hr_config *pc = hr_model_config(st->p);
    printf("pruned %s -> %s\n", st->model_path, o->out);
    printf("heads removed: %d, neurons removed: %lld, layers: %d -> %d\n", st->heads_removed,
           (long long)st->ff_removed, hr_config_n_layers(hr_model_config(st->m)), hr_config_n_layers(pc));
    printf("parameters: %lld -> %lld (%.1f%%)\n", (long long)hr_model_n_params(st->m),
           (long long)hr_model_n_params(st->p), 100.0 * hr_model_n_params(st->p) / hr_model_n_params(st->m));
    printf("report: %s\n", report);
    return CLI_OK;
}

int cmd_prune(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&k_spec, argc, argv, &a) != CLI_OK) return CLI_FAIL;
    if (a.help) {
        cli_print_help(&k_spec);
        return CLI_OK;
    }
    prune_opts o;
    if (read_opts(&a, &o) != CLI_OK) return CLI_FAIL;
    prune_state st;
    memset(&st, 0, sizeof st);
    int rc = setup(&a, &o, &st);
    if (rc == CLI_OK) rc = plan(&o, &st);
    if (rc == CLI_OK) rc = write_outputs(&o, &st);
    for (int l = 0; st.m && st.ff_scores && l < hr_config_n_layers(hr_model_config(st.m)); l++) free(st.ff_scores[l]);
    free(st.ff_scores);
    for (int k = 0; k < 3; k++) free(st.lay[k]);
    free(st.head_scores);
    free(st.ids);
    hr_prune_spec_free(st.s);
    hr_context_free(st.ctx);
    hr_tokenizer_free(st.tok);
    hr_model_free(st.p);
    hr_model_free(st.m);
    return rc;
}
