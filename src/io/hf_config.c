/* config.json of Hugging Face checkpoints: model_type picks the
 * architecture's row (model/arch.h), whose dialect says which field names
 * to read — transformers' LlamaConfig (also MistralConfig, Qwen2Config) or
 * GPT2Config. Sizes have no defaults (a missing size is an error, not a
 * guess). */
#include "io/hf_internal.h"
#include "model/arch.h"
#include "model/config.h"

#include <math.h>
#include <string.h>

#include "core/json.h"

typedef struct {
    const cJSON *root;
} cfg_reader;

static const cJSON *field(const cfg_reader *r, const char *name) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(r->root, name);
    return cJSON_IsNull(j) ? NULL : j;
}

/* Integer field in [lo, hi]. Absent: *out = dflt, or an error if required. */
static hr_status get_int(const cfg_reader *r, const char *name, int *out, bool required, int dflt, int lo, int hi) {
    const cJSON *j = field(r, name);
    if (!j) {
        if (required) return hr_err(HR_ERR_FORMAT, "config.json is missing '%s'", name);
        *out = dflt;
        return HR_OK;
    }
    if (!cJSON_IsNumber(j) || floor(j->valuedouble) != j->valuedouble)
        return hr_err(HR_ERR_FORMAT, "config.json '%s' is not an integer", name);
    if (!(j->valuedouble >= lo && j->valuedouble <= hi))
        return hr_err(HR_ERR_FORMAT, "config.json '%s' = %g is out of range (%d..%d)", name, j->valuedouble, lo, hi);
    *out = (int)j->valuedouble;
    return HR_OK;
}

/* The first present of two synonymous fields; both present must agree. */
static hr_status get_int2(const cfg_reader *r, const char *a, const char *b, int *out, bool required, int dflt, int lo,
                          int hi) {
    int va = 0, vb = 0;
    bool ha = field(r, a) != NULL, hb = b && field(r, b) != NULL;
    hr_status st = get_int(r, a, &va, false, 0, lo, hi);
    if (st == HR_OK && b) st = get_int(r, b, &vb, false, 0, lo, hi);
    if (st != HR_OK) return st;
    if (ha && hb && va != vb) return hr_err(HR_ERR_FORMAT, "config.json '%s' = %d contradicts '%s' = %d", a, va, b, vb);
    if (ha || hb) {
        *out = ha ? va : vb;
        return HR_OK;
    }
    if (required) return hr_err(HR_ERR_FORMAT, "config.json is missing '%s'%s%s", a, b ? " (or " : "", b ? ")" : "");
    *out = dflt;
    return HR_OK;
}

static hr_status get_float(const cfg_reader *r, const cJSON *obj, const char *name, float *out, bool required,
                           float dflt) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!j || cJSON_IsNull(j)) {
        if (required) return hr_err(HR_ERR_FORMAT, "config.json is missing '%s'", name);
        *out = dflt;
        return HR_OK;
    }
    (void)r;
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble))
        return hr_err(HR_ERR_FORMAT, "config.json '%s' is not a number", name);
    *out = (float)j->valuedouble;
    return HR_OK;
}

static hr_status get_bool(const cfg_reader *r, const char *name, bool *out, bool dflt) {
    const cJSON *j = field(r, name);
    if (!j) {
        *out = dflt;
        return HR_OK;
    }
    if (!cJSON_IsBool(j)) return hr_err(HR_ERR_FORMAT, "config.json '%s' is not true/false", name);
    *out = cJSON_IsTrue(j);
    return HR_OK;
}

static hr_status check_activation(const cfg_reader *r, const char *name, const char *const *ok) {
    const cJSON *j = field(r, name);
    if (!j) return HR_OK;
    if (!cJSON_IsString(j)) return hr_err(HR_ERR_FORMAT, "config.json '%s' is not a string", name);
    for (; *ok; ok++)
        if (strcmp(j->valuestring, *ok) == 0) return HR_OK;
    return hr_err(HR_ERR_UNSUPPORTED, "config.json '%s' = '%s' is not supported", name, j->valuestring);
}

static hr_status parse_rope_scaling(const cfg_reader *r, hr_config *c) {
    const cJSON *rs = field(r, "rope_scaling");
    if (!rs) return HR_OK;
    if (!cJSON_IsObject(rs)) return hr_err(HR_ERR_FORMAT, "config.json 'rope_scaling' is not an object");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (!t) t = cJSON_GetObjectItemCaseSensitive(rs, "type");
    if (!cJSON_IsString(t)) return hr_err(HR_ERR_FORMAT, "config.json 'rope_scaling' has no rope_type string");
    if (strcmp(t->valuestring, "default") == 0) return HR_OK;
    if (strcmp(t->valuestring, "llama3") != 0)
        return hr_err(HR_ERR_UNSUPPORTED, "rope_scaling type '%s' is not supported (llama3 only)", t->valuestring);
    hr_rope_scaling *s = &c->rope_scaling;
    hr_status st = get_float(r, rs, "factor", &s->factor, true, 0);
    if (st == HR_OK) st = get_float(r, rs, "low_freq_factor", &s->low_freq_factor, true, 0);
    if (st == HR_OK) st = get_float(r, rs, "high_freq_factor", &s->high_freq_factor, true, 0);
    float orig = 0;
    if (st == HR_OK) st = get_float(r, rs, "original_max_position_embeddings", &orig, true, 0);
    if (st != HR_OK) return st;
    if (!(s->factor >= 1 && s->factor < 1e6f) || !(s->low_freq_factor > 0) ||
        !(s->high_freq_factor > s->low_freq_factor) || !(orig >= 1 && orig <= HR_MAX_ROPE_ORIGINAL_CTX) ||
        floorf(orig) != orig)
        return hr_err(HR_ERR_FORMAT,
                      "config.json rope_scaling llama3 parameters are invalid (factor %g, low %g, "
                      "high %g, original %g)",
                      (double)s->factor, (double)s->low_freq_factor, (double)s->high_freq_factor, (double)orig);
    s->original_ctx = (int)orig;
    s->llama3 = true;
    return HR_OK;
}

static void fill_layers(hr_config *c, int heads, int kv, int ff) {
    for (int l = 0; l < c->n_layers; l++) {
        c->n_head[l] = heads;
        c->n_head_kv[l] = kv;
        c->n_ff[l] = ff;
    }
}

static hr_status parse_llama_like(const cfg_reader *r, const hr_arch_info *ai, hr_config *c) {
    static const char *const acts[] = {"silu", "swish", NULL};
    int heads = 0, kv = 0, ff = 0;
    hr_status st = get_int(r, "hidden_size", &c->dim, true, 0, 1, HR_MAX_DIM);
    if (st == HR_OK) st = get_int(r, "num_hidden_layers", &c->n_layers, true, 0, 1, HR_MAX_LAYERS);
    if (st == HR_OK) st = get_int(r, "num_attention_heads", &heads, true, 0, 1, HR_MAX_HEADS);
    if (st == HR_OK) st = get_int(r, "num_key_value_heads", &kv, false, heads, 1, HR_MAX_HEADS);
    if (st == HR_OK) st = get_int(r, "intermediate_size", &ff, true, 0, 1, HR_MAX_FF);
    if (st == HR_OK) st = get_int(r, "max_position_embeddings", &c->seq_len, true, 0, 1, HR_MAX_SEQ);
    if (st == HR_OK) st = get_float(r, r->root, "rms_norm_eps", &c->norm_eps, false, 1e-6f);
    if (st == HR_OK) st = get_float(r, r->root, "rope_theta", &c->rope_theta, false, 10000.0f);
    if (st == HR_OK) st = get_bool(r, "tie_word_embeddings", &c->tied_classifier, false);
    if (st == HR_OK) st = check_activation(r, "hidden_act", acts);
    if (st != HR_OK) return st;
    if (heads % kv != 0)
        return hr_err(HR_ERR_FORMAT, "config.json: %d attention heads cannot share %d key/value heads evenly", heads,
                      kv);
    if (!field(r, "head_dim") && c->dim % heads != 0)
        return hr_err(HR_ERR_FORMAT,
                      "config.json: hidden_size %d is not a multiple of num_attention_heads %d and "
                      "no head_dim is given",
                      c->dim, heads);
    st = get_int(r, "head_dim", &c->head_dim, false, c->dim / heads, 2, HR_MAX_HEAD_DIM);
    if (st != HR_OK) return st;
    fill_layers(c, heads, kv, ff);
    bool attn_bias = false, mlp_bias = false;
    st = get_bool(r, "attention_bias", &attn_bias, false);
    if (st == HR_OK) st = get_bool(r, "mlp_bias", &mlp_bias, false);
    if (st != HR_OK) return st;
    if (mlp_bias) return hr_err(HR_ERR_UNSUPPORTED, "config.json mlp_bias = true is not supported");
    if (attn_bias && !ai->hf_attention_bias)
        return hr_err(HR_ERR_UNSUPPORTED, "config.json attention_bias is not a %s field", ai->name);
    if (attn_bias) c->qkv_bias = c->out_bias = true;
    return parse_rope_scaling(r, c);
}

static hr_status parse_gpt2(const cfg_reader *r, const hr_arch_info *ai, hr_config *c) {
    (void)ai;
    static const char *const acts[] = {"gelu_new", "gelu_pytorch_tanh", "gelu_fast", NULL};
    int heads = 0, ff = 0, n_ctx = 0;
    hr_status st = get_int2(r, "n_embd", "hidden_size", &c->dim, true, 0, 1, HR_MAX_DIM);
    if (st == HR_OK) st = get_int2(r, "n_layer", "num_hidden_layers", &c->n_layers, true, 0, 1, HR_MAX_LAYERS);
    if (st == HR_OK) st = get_int2(r, "n_head", "num_attention_heads", &heads, true, 0, 1, HR_MAX_HEADS);
    if (st == HR_OK) st = get_int2(r, "n_positions", "max_position_embeddings", &c->seq_len, true, 0, 1, HR_MAX_SEQ);
    if (st == HR_OK) st = get_int(r, "n_ctx", &n_ctx, false, c->seq_len, 1, HR_MAX_SEQ);
    if (st == HR_OK && n_ctx != c->seq_len)
        st = hr_err(HR_ERR_FORMAT, "config.json 'n_ctx' = %d contradicts 'n_positions' = %d", n_ctx, c->seq_len);
    if (st == HR_OK) st = get_int2(r, "n_inner", "intermediate_size", &ff, false, 0, 1, HR_MAX_FF);
    if (st == HR_OK) st = get_float(r, r->root, "layer_norm_epsilon", &c->norm_eps, false, 1e-5f);
    if (st == HR_OK) st = get_bool(r, "tie_word_embeddings", &c->tied_classifier, true);
    if (st == HR_OK) st = check_activation(r, "activation_function", acts);
    if (st != HR_OK) return st;
    if (c->dim % heads != 0)
        return hr_err(HR_ERR_FORMAT, "config.json: n_embd %d is not a multiple of n_head %d", c->dim, heads);
    if (ff == 0) {
        if (c->dim > HR_MAX_FF / 4) return hr_err(HR_ERR_FORMAT, "config.json: n_embd %d is too large", c->dim);
        ff = 4 * c->dim;
    }
    c->head_dim = c->dim / heads;
    c->rope_theta = 10000.0f; /* unused: learned positions */
    fill_layers(c, heads, heads, ff);
    return HR_OK;
}

static bool str_is(const cJSON *o, const char *key, const char *want) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(j) && strcmp(j->valuestring, want) == 0;
}

/* quantization_config: absent, or compressed-tensors "int-quantized" whose
 * every group quantizes weights to symmetric 8-bit integers per channel
 * (hf_load.c reads those; activations' settings are not applied: headroom
 * computes with f32 activations, or its --int8-dot). Anything else
 * (bitsandbytes, GPTQ, AWQ, fp8, int4, group or tensor scales) is refused
 * by name before any weight is read. */
static hr_status check_quantization(const cfg_reader *r) {
    const cJSON *q = field(r, "quantization_config");
    if (!q) return HR_OK;
    if (!cJSON_IsObject(q)) return hr_err(HR_ERR_FORMAT, "config.json 'quantization_config' is not an object");
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(q, "quant_method");
    const char *mname = cJSON_IsString(method) ? method->valuestring : "?";
    if (strcmp(mname, "compressed-tensors") != 0)
        return hr_err(HR_ERR_UNSUPPORTED,
                      "config.json quantization_config quant_method '%s' is not supported (headroom reads "
                      "compressed-tensors per-channel int8, and GGUF Q8_0)",
                      mname);
    if (!str_is(q, "format", "int-quantized"))
        return hr_err(HR_ERR_UNSUPPORTED,
                      "config.json quantization_config: compressed-tensors format other than 'int-quantized' is not "
                      "supported");
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(q, "config_groups"), *g;
    if (!cJSON_IsObject(groups) || !groups->child)
        return hr_err(HR_ERR_FORMAT, "config.json quantization_config has no config_groups");
    cJSON_ArrayForEach(g, groups) {
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(g, "weights"), *nb, *sym, *gs;
        if (!cJSON_IsObject(w)) continue; /* activations only */
        nb = cJSON_GetObjectItemCaseSensitive(w, "num_bits");
        sym = cJSON_GetObjectItemCaseSensitive(w, "symmetric");
        gs = cJSON_GetObjectItemCaseSensitive(w, "group_size");
        bool ok = cJSON_IsNumber(nb) && nb->valuedouble == 8 && str_is(w, "type", "int") &&
                  str_is(w, "strategy", "channel") && (!sym || cJSON_IsTrue(sym)) && (!gs || cJSON_IsNull(gs));
        if (!ok)
            return hr_err(HR_ERR_UNSUPPORTED,
                          "config.json quantization_config group '%s': only symmetric 8-bit int weights with "
                          "strategy 'channel' are supported",
                          g->string ? g->string : "?");
    }
    return HR_OK;
}

static hr_status parse_root(const cJSON *root, hr_config *c, hr_hf_extra *extra) {
    cfg_reader r = {root};
    if (!cJSON_IsObject(root)) return hr_err(HR_ERR_FORMAT, "config.json is not a JSON object");
    if (cJSON_GetArraySize(root) > 4096) return hr_err(HR_ERR_FORMAT, "config.json has too many fields");
    /* A repeated key would silently pick one of two values. */
    for (const cJSON *a = root->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (a->string && b->string && strcmp(a->string, b->string) == 0)
                return hr_err(HR_ERR_FORMAT, "config.json gives '%s' twice", a->string);
    const cJSON *mt = field(&r, "model_type");
    if (!cJSON_IsString(mt)) return hr_err(HR_ERR_FORMAT, "config.json has no 'model_type' string");
    const hr_arch_info *ai = hr_arch_by_hf_model_type(mt->valuestring);
    if (!ai) {
        char names[256];
        hr_arch_list_hf_model_types(names, sizeof names);
        return hr_err(HR_ERR_UNSUPPORTED, "config.json model_type '%s' is not supported (%s)", mt->valuestring, names);
    }
    hr_config_set_arch(c, ai->arch);
    /* one reader per config dialect, indexed by the row's */
    static hr_status (*const dialects[])(const cfg_reader *, const hr_arch_info *, hr_config *) = {
        [HR_HF_CONFIG_LLAMA] = parse_llama_like, [HR_HF_CONFIG_GPT2] = parse_gpt2};
    hr_status st = check_quantization(&r);
    if (st == HR_OK) st = dialects[ai->hf_config](&r, ai, c);
    if (st == HR_OK) st = get_int(&r, "vocab_size", &c->vocab_size, true, 0, 1, HR_MAX_VOCAB);
    hr_hf_extra ex = {-1, -1};
    if (st == HR_OK) st = get_int(&r, "bos_token_id", &ex.bos_id, false, -1, 0, HR_MAX_VOCAB);
    /* eos_token_id may be a list (Llama 3 instruct): keep the first. */
    const cJSON *eos = field(&r, "eos_token_id");
    if (st == HR_OK && cJSON_IsArray(eos)) {
        const cJSON *e0 = cJSON_GetArrayItem(eos, 0);
        if (cJSON_IsNumber(e0) && e0->valuedouble >= 0 && e0->valuedouble < HR_MAX_VOCAB)
            ex.eos_id = (int)e0->valuedouble;
    } else if (st == HR_OK) {
        st = get_int(&r, "eos_token_id", &ex.eos_id, false, -1, 0, HR_MAX_VOCAB);
    }
    if (st == HR_OK && extra) *extra = ex;
    return st;
}

hr_status hr_hf_parse_config(const char *json, size_t len, hr_config *c, hr_hf_extra *extra) {
    memset(c, 0, sizeof *c);
    cJSON *root;
    hr_status st = hr_json_parse(json, len, &root);
    if (st != HR_OK) {
        hr_err_prefix("config.json");
        return st;
    }
    st = parse_root(root, c, extra);
    cJSON_Delete(root);
    if (st == HR_OK) st = hr_config_validate(c);
    return st;
}
