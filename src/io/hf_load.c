/* Hugging Face folders: config.json + model.safetensors or shards listed in
 * model.safetensors.index.json. Tensor names (with or without the
 * "model." / "transformer." prefix):
 *   llama/mistral/qwen2: embed_tokens, layers.N.self_attn.{q,k,v,o}_proj,
 *     layers.N.mlp.{gate,up,down}_proj, layers.N.{input,post_attention}_layernorm,
 *     norm, lm_head (absent when tied). Q/K rows (and biases) are in the
 *     rotate-half layout and are permuted per head to interleaved pairs.
 *   gpt2: wte, wpe, h.N.ln_1, h.N.attn.c_attn (fused QKV), h.N.attn.c_proj,
 *     h.N.ln_2, h.N.mlp.c_fc, h.N.mlp.c_proj, ln_f. Conv1D weights are
 *     stored (in, out) and are transposed. */
#include "io/hf_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/json.h"
#include "headroom/safetensors.h"
#include "model/config.h"

typedef struct {
    hr_model *m;
    const char *prefix; /* "model." / "transformer." / "" */
} loader;

static hr_status add_shard(hr_model *m, const char *dir, const char *file) {
    if (!*file || strchr(file, '/') || strcmp(file, "..") == 0 || strcmp(file, ".") == 0)
        return hr_err(HR_ERR_FORMAT, "shard name '%s' is not a plain file name", file);
    if (m->n_shards >= HR_MAX_SHARDS) return hr_err(HR_ERR_FORMAT, "more than %d shards", HR_MAX_SHARDS);
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path)
        return hr_err(HR_ERR_INVALID_ARG, "path of shard '%s' is too long", file);
    hr_safetensors **p = realloc(m->shards, (m->n_shards + 1) * sizeof *p);
    if (!p) return hr_err(HR_ERR_NOMEM, "out of memory");
    m->shards = p;
    hr_status st = hr_st_open(path, &m->shards[m->n_shards]);
    if (st == HR_OK) m->n_shards++;
    return st;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Opens the distinct shard files named by weight_map. */
static hr_status open_index(hr_model *m, const char *dir, const char *json, size_t len) {
    cJSON *root;
    hr_status st = hr_json_parse(json, len, &root);
    if (st != HR_OK) {
        hr_err_prefix("model.safetensors.index.json");
        return st;
    }
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    st = cJSON_IsObject(wm) ? HR_OK : hr_err(HR_ERR_FORMAT, "model.safetensors.index.json has no weight_map object");
    int n = st == HR_OK ? cJSON_GetArraySize(wm) : 0;
    char **files = calloc((size_t)(n ? n : 1), sizeof *files); // (n) borrowed from the JSON
    if (!files && st == HR_OK) st = hr_err(HR_ERR_NOMEM, "out of memory");
    int k = 0;
    const cJSON *e;
    if (st == HR_OK) cJSON_ArrayForEach(e, wm) {
        if (!cJSON_IsString(e)) {
            st = hr_err(HR_ERR_FORMAT, "weight_map entry '%s' is not a file name", e->string);
            break;
        }
        files[k++] = e->valuestring;
    }
    if (st == HR_OK && k == 0) st = hr_err(HR_ERR_FORMAT, "model.safetensors.index.json weight_map is empty");
    if (st == HR_OK) qsort(files, (size_t)k, sizeof *files, cmp_str);
    for (int i = 0; i < k && st == HR_OK; i++)
        if (i == 0 || strcmp(files[i], files[i - 1]) != 0) st = add_shard(m, dir, files[i]);
    free(files);
    cJSON_Delete(root);
    return st;
}

static bool file_exists(const char *dir, const char *name, char *path, size_t cap) {
    struct stat sb;
    if ((size_t)snprintf(path, cap, "%s/%s", dir, name) >= cap) return false;
    return stat(path, &sb) == 0;
}

static hr_status open_weights(hr_model *m, const char *dir) {
    char path[PATH_MAX];
    if (file_exists(dir, "model.safetensors.index.json", path, sizeof path)) {
        char *json = NULL;
        size_t len = 0;
        hr_status st = hr_read_file(path, &json, &len);
        if (st == HR_OK) st = open_index(m, dir, json, len);
        free(json);
        return st;
    }
    if (file_exists(dir, "model.safetensors", path, sizeof path)) return add_shard(m, dir, "model.safetensors");
    return hr_err(HR_ERR_NOT_FOUND, "'%s' has neither model.safetensors nor model.safetensors.index.json "
                  "(PyTorch .bin checkpoints are not read)", dir);
}

/* The tensor called name in any shard; NULL if none. A name in two shards is
 * an error (*dup set). */
static const hr_st_tensor *find(const hr_model *m, const char *name, const hr_safetensors **shard, bool *dup) {
    const hr_st_tensor *hit = NULL;
    *dup = false;
    for (size_t i = 0; i < m->n_shards; i++) {
        const hr_st_tensor *t = hr_st_find(m->shards[i], name);
        if (t && hit) *dup = true;
        if (t && !hit) {
            hit = t;
            *shard = m->shards[i];
        }
    }
    return hit;
}

typedef enum { AS_IS = 0, TRANSPOSE, PERMUTE_QK } transform;

typedef struct {
    const char *name;   /* without prefix */
    int64_t rows, cols; /* shape as stored (vectors: rows = 1, stored 1-D) */
    transform tf;
    int n_heads;        /* PERMUTE_QK */
    bool optional;
} tensor_req;

static hr_status check_shape(const hr_st_tensor *t, const char *name, int64_t rows, int64_t cols) {
    bool ok = rows == 1 ? (t->n_dims == 1 && t->shape[0] == cols)
                        : (t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols);
    if (ok) return HR_OK;
    char got[96] = "";
    for (int i = 0; i < t->n_dims && i < 4; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (rows == 1) return hr_err(HR_ERR_FORMAT, "tensor '%s' has shape [%s], expected [%lld]", name, got, (long long)cols);
    return hr_err(HR_ERR_FORMAT, "tensor '%s' has shape [%s], expected [%lld, %lld]", name, got, (long long)rows,
                  (long long)cols);
}

static void note_dtype(hr_model *m, const hr_st_tensor *t) {
    char d[16];
    snprintf(d, sizeof d, "%s", hr_st_dtype_name(t->dtype));
    for (char *p = d; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    if (!m->source_dtype[0]) snprintf(m->source_dtype, sizeof m->source_dtype, "%s", d);
    else if (strcmp(m->source_dtype, d) != 0 && t->n_dims == 2) snprintf(m->source_dtype, sizeof m->source_dtype, "mixed");
}

/* Loads one tensor as f32 in headroom's layout: in place when it is aligned
 * f32 needing no change, else converted into an owned buffer. */
static hr_status load(loader *ld, const tensor_req *rq, const float **out) {
    hr_model *m = ld->m;
    *out = NULL;
    char name[160];
    snprintf(name, sizeof name, "%s%s", ld->prefix, rq->name);
    const hr_safetensors *shard = NULL;
    bool dup;
    const hr_st_tensor *t = find(m, name, &shard, &dup);
    if (!t) {
        if (rq->optional) return HR_OK;
        return hr_err(HR_ERR_FORMAT, "checkpoint is missing the tensor '%s'", name);
    }
    if (dup) return hr_err(HR_ERR_FORMAT, "tensor '%s' appears in more than one shard", name);
    hr_status st = check_shape(t, name, rq->rows, rq->cols);
    if (st != HR_OK) return st;
    note_dtype(m, t);
    if (t->dtype == HR_ST_F32 && rq->tf == AS_IS && (uintptr_t)t->data % sizeof(float) == 0) {
        *out = t->data;
        return HR_OK;
    }
    size_t n = (size_t)rq->rows * (size_t)rq->cols;
    float *dst = hr_model_alloc_owned(m, n); // (rows, cols) or transposed (cols, rows)
    if (!dst) return hr_err(HR_ERR_NOMEM, "out of memory converting '%s'", name);
    if (rq->tf == TRANSPOSE) {
        float *tmp = malloc(n * sizeof(float) + 1); // (rows, cols) as stored
        if (!tmp) return hr_err(HR_ERR_NOMEM, "out of memory converting '%s'", name);
        st = hr_st_to_f32(t, tmp);
        for (int64_t r = 0; st == HR_OK && r < rq->rows; r++)
            for (int64_t c = 0; c < rq->cols; c++) dst[(size_t)c * (size_t)rq->rows + (size_t)r] = tmp[(size_t)r * (size_t)rq->cols + (size_t)c];
        free(tmp);
    } else {
        st = hr_st_to_f32(t, dst);
    }
    if (st == HR_OK && rq->tf == PERMUTE_QK) {
        int hd = m->cfg.head_dim;
        size_t cols = rq->rows == 1 ? 1 : (size_t)rq->cols;
        float *tmp = malloc((size_t)hd * cols * sizeof(float)); // (head_dim, cols)
        if (!tmp) return hr_err(HR_ERR_NOMEM, "out of memory permuting '%s'", name);
        hr_qk_to_interleaved(dst, rq->n_heads, hd, cols, tmp);
        free(tmp);
    }
    if (st != HR_OK) hr_err_prefix("tensor '%s'", name);
    hr_st_release(shard, t);
    *out = dst;
    return st;
}

static hr_status load_llama_layer(loader *ld, int l) {
    const hr_config *c = &ld->m->cfg;
    hr_layer_weights *w = &ld->m->w.layers[l];
    int64_t dim = c->dim, hq = c->n_head[l], hk = c->n_head_kv[l], q = hq * c->head_dim, kv = hk * c->head_dim;
    int64_t ff = c->n_ff[l];
    char n[16][96];
    const char *sfx[16] = {"input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
                           "self_attn.v_proj.weight", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
                           "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
                           "self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias",
                           "self_attn.o_proj.bias"};
    for (int i = 0; i < 13; i++) snprintf(n[i], sizeof n[i], "layers.%d.%s", l, sfx[i]);
    struct { tensor_req rq; const float **dst; bool want; } t[] = {
        {{n[0], 1, dim, AS_IS, 0, false}, &w->attn_norm, true},
        {{n[1], q, dim, PERMUTE_QK, (int)hq, false}, &w->wq, true},
        {{n[2], kv, dim, PERMUTE_QK, (int)hk, false}, &w->wk, true},
        {{n[3], kv, dim, AS_IS, 0, false}, &w->wv, true},
        {{n[4], dim, q, AS_IS, 0, false}, &w->wo, true},
        {{n[5], 1, dim, AS_IS, 0, false}, &w->ffn_norm, true},
        {{n[6], ff, dim, AS_IS, 0, false}, &w->w_gate, true},
        {{n[7], ff, dim, AS_IS, 0, false}, &w->w_up, true},
        {{n[8], dim, ff, AS_IS, 0, false}, &w->w_down, true},
        {{n[9], 1, q, PERMUTE_QK, (int)hq, false}, &w->bq, c->qkv_bias},
        {{n[10], 1, kv, PERMUTE_QK, (int)hk, false}, &w->bk, c->qkv_bias},
        {{n[11], 1, kv, AS_IS, 0, false}, &w->bv, c->qkv_bias},
        {{n[12], 1, dim, AS_IS, 0, false}, &w->bo, c->out_bias},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (!t[i].want) continue;
        hr_status st = load(ld, &t[i].rq, t[i].dst);
        if (st != HR_OK) return st;
    }
    return HR_OK;
}


/* lm_head (unprefixed in every checkpoint layout), or the embedding when the
 * classifier is tied: tied checkpoints that still store lm_head hold a copy
 * of the embedding. */
static hr_status load_classifier(loader *ld) {
    hr_model *m = ld->m;
    if (m->cfg.tied_classifier) {
        m->w.output = m->w.tok_embd;
        return HR_OK;
    }
    ld->prefix = "";
    tensor_req head = {"lm_head.weight", m->cfg.vocab_size, m->cfg.dim, AS_IS, 0, false};
    return load(ld, &head, &m->w.output);
}

static hr_status load_llama(loader *ld) {
    hr_model *m = ld->m;
    hr_config *c = &m->cfg;
    bool dup;
    const hr_safetensors *sh;
    ld->prefix = find(m, "model.embed_tokens.weight", &sh, &dup) ? "model." : "";
    tensor_req emb = {"embed_tokens.weight", c->vocab_size, c->dim, AS_IS, 0, false};
    tensor_req norm = {"norm.weight", 1, c->dim, AS_IS, 0, false};
    hr_status st = load(ld, &emb, &m->w.tok_embd);
    if (st == HR_OK) st = load(ld, &norm, &m->w.out_norm);
    for (int l = 0; l < c->n_layers && st == HR_OK; l++) st = load_llama_layer(ld, l);
    return st == HR_OK ? load_classifier(ld) : st;
}

/* c_attn: Conv1D (dim, 3 * dim) -> wq, wk, wv (dim, dim) each; bias split. */
static hr_status load_gpt2_attn(loader *ld, int l) {
    const hr_config *c = &ld->m->cfg;
    hr_layer_weights *w = &ld->m->w.layers[l];
    int64_t dim = c->dim, q = (int64_t)c->n_head[l] * c->head_dim;
    if (q != dim) return hr_err(HR_ERR_FORMAT, "gpt2 layer %d: attention width %lld != n_embd", l, (long long)q);
    char nw[64], nb[64];
    snprintf(nw, sizeof nw, "h.%d.attn.c_attn.weight", l);
    snprintf(nb, sizeof nb, "h.%d.attn.c_attn.bias", l);
    const float *qkv = NULL, *b = NULL;
    tensor_req rw = {nw, dim, 3 * dim, TRANSPOSE, 0, false}, rb = {nb, 1, 3 * dim, AS_IS, 0, false};
    hr_status st = load(ld, &rw, &qkv); // (3 * dim, dim) after the transpose
    if (st == HR_OK) st = load(ld, &rb, &b);
    if (st != HR_OK) return st;
    w->wq = qkv;
    w->wk = qkv + (size_t)dim * (size_t)dim;
    w->wv = qkv + 2 * (size_t)dim * (size_t)dim;
    w->bq = b;
    w->bk = b + dim;
    w->bv = b + 2 * dim;
    return HR_OK;
}

static hr_status load_gpt2_layer(loader *ld, int l) {
    const hr_config *c = &ld->m->cfg;
    hr_layer_weights *w = &ld->m->w.layers[l];
    int64_t dim = c->dim, ff = c->n_ff[l];
    hr_status st = load_gpt2_attn(ld, l);
    char n[10][64];
    const char *sfx[10] = {"ln_1.weight", "ln_1.bias", "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight",
                           "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"};
    for (int i = 0; i < 10; i++) snprintf(n[i], sizeof n[i], "h.%d.%s", l, sfx[i]);
    struct { tensor_req rq; const float **dst; } t[] = {
        {{n[0], 1, dim, AS_IS, 0, false}, &w->attn_norm}, {{n[1], 1, dim, AS_IS, 0, false}, &w->attn_norm_b},
        {{n[2], dim, dim, TRANSPOSE, 0, false}, &w->wo},  {{n[3], 1, dim, AS_IS, 0, false}, &w->bo},
        {{n[4], 1, dim, AS_IS, 0, false}, &w->ffn_norm},  {{n[5], 1, dim, AS_IS, 0, false}, &w->ffn_norm_b},
        {{n[6], dim, ff, TRANSPOSE, 0, false}, &w->w_up}, {{n[7], 1, ff, AS_IS, 0, false}, &w->b_up},
        {{n[8], ff, dim, TRANSPOSE, 0, false}, &w->w_down}, {{n[9], 1, dim, AS_IS, 0, false}, &w->b_down},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0] && st == HR_OK; i++) st = load(ld, &t[i].rq, t[i].dst);
    return st;
}

static hr_status load_gpt2(loader *ld) {
    hr_model *m = ld->m;
    hr_config *c = &m->cfg;
    bool dup;
    const hr_safetensors *sh;
    ld->prefix = find(m, "transformer.wte.weight", &sh, &dup) ? "transformer." : "";
    tensor_req wte = {"wte.weight", c->vocab_size, c->dim, AS_IS, 0, false};
    tensor_req wpe = {"wpe.weight", c->seq_len, c->dim, AS_IS, 0, false};
    tensor_req lnw = {"ln_f.weight", 1, c->dim, AS_IS, 0, false}, lnb = {"ln_f.bias", 1, c->dim, AS_IS, 0, false};
    hr_status st = load(ld, &wte, &m->w.tok_embd);
    if (st == HR_OK) st = load(ld, &wpe, &m->w.pos_embd);
    if (st == HR_OK) st = load(ld, &lnw, &m->w.out_norm);
    if (st == HR_OK) st = load(ld, &lnb, &m->w.out_norm_b);
    for (int l = 0; l < c->n_layers && st == HR_OK; l++) st = load_gpt2_layer(ld, l);
    return st == HR_OK ? load_classifier(ld) : st;
}

hr_status hr_load_hf(hr_model *m, const char *dir) {
    char path[PATH_MAX];
    if (!file_exists(dir, "config.json", path, sizeof path))
        return hr_err(HR_ERR_NOT_FOUND, "'%s' is a folder without config.json (not a Hugging Face model)", dir);
    char *json = NULL;
    size_t len = 0;
    hr_status st = hr_read_file(path, &json, &len);
    if (st == HR_OK) st = hr_hf_parse_config(json, len, &m->cfg, NULL);
    free(json);
    if (st != HR_OK) return st;
    st = open_weights(m, dir);
    if (st != HR_OK) return st;
    loader ld = {m, ""};
    return m->cfg.arch == HR_ARCH_GPT2 ? load_gpt2(&ld) : load_llama(&ld);
}
