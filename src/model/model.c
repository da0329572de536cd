/* Model handle: format detection, shared validation, accessors. */
#include "model_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "headroom/gguf.h"

#define LLAMA2C_Q8_MAGIC 0x616b3432u

float *hr_model_alloc_owned(hr_model *m, size_t n) {
    size_t bytes;
    if (!hr_mul_size(n, sizeof(float), &bytes)) return NULL;
    if (m->n_owned == m->cap_owned) {
        size_t cap = m->cap_owned ? m->cap_owned * 2 : 64;
        void **p = realloc(m->owned, cap * sizeof *p);
        if (!p) return NULL;
        m->owned = p;
        m->cap_owned = cap;
    }
    float *buf = malloc(bytes ? bytes : 1);
    if (!buf) return NULL;
    m->owned[m->n_owned++] = buf;
    return buf;
}

/* Limits far above any real model but low enough that every product of
 * them used for sizes fits in 64 bits without overflow. */
enum {
    MAX_DIM = 1 << 16,
    MAX_HEADS = 1 << 10,
    MAX_HEAD_DIM = 1 << 10,
    MAX_FF = 1 << 18,
    MAX_VOCAB = 1 << 22,
    MAX_SEQ = 1 << 22
};

hr_status hr_config_validate(const hr_config *c) {
    if (c->dim <= 0 || c->dim > MAX_DIM)
        return hr_err(HR_ERR_FORMAT, "model dimension %d is out of range (1..%d)", c->dim, MAX_DIM);
    if (c->n_layers <= 0 || c->n_layers > HR_MAX_LAYERS)
        return hr_err(HR_ERR_FORMAT, "layer count %d is out of range (1..%d)", c->n_layers, HR_MAX_LAYERS);
    if (c->head_dim <= 0 || c->head_dim > MAX_HEAD_DIM || c->head_dim % 2)
        return hr_err(HR_ERR_FORMAT, "head dimension %d is invalid (must be even, 2..%d)", c->head_dim, MAX_HEAD_DIM);
    if (c->vocab_size <= 0 || c->vocab_size > MAX_VOCAB)
        return hr_err(HR_ERR_FORMAT, "vocabulary size %d is out of range (1..%d)", c->vocab_size, MAX_VOCAB);
    if (c->seq_len <= 0 || c->seq_len > MAX_SEQ)
        return hr_err(HR_ERR_FORMAT, "context length %d is out of range (1..%d)", c->seq_len, MAX_SEQ);
    if (!(c->norm_eps > 0 && c->norm_eps < 1))
        return hr_err(HR_ERR_FORMAT, "norm epsilon %g is out of range", (double)c->norm_eps);
    if (!(c->rope_theta > 1 && c->rope_theta < 1e12f))
        return hr_err(HR_ERR_FORMAT, "rope theta %g is out of range", (double)c->rope_theta);
    for (int l = 0; l < c->n_layers; l++) {
        int h = c->n_head[l], kv = c->n_head_kv[l], ff = c->n_ff[l];
        if (h < 0 || h > MAX_HEADS || kv < 0 || kv > MAX_HEADS)
            return hr_err(HR_ERR_FORMAT, "layer %d: head counts %d/%d out of range", l, h, kv);
        if ((h == 0) != (kv == 0) || (kv > 0 && h % kv != 0))
            return hr_err(HR_ERR_FORMAT, "layer %d: %d query heads cannot share %d KV heads evenly", l, h, kv);
        if (ff < 0 || ff > MAX_FF)
            return hr_err(HR_ERR_FORMAT, "layer %d: FFN size %d out of range (0..%d)", l, ff, MAX_FF);
    }
    return HR_OK;
}

static hr_status detect_and_load(hr_model *m, const char *path) {
    const uint8_t *d = m->file.data;
    size_t n = m->file.size;
    if (n == 0) return hr_err(HR_ERR_FORMAT, "'%s' is empty", path);
    if (hr_gguf_is_gguf(d, n)) {
        m->format = HR_FORMAT_GGUF;
        /* The GGUF reader maps the file itself. */
        hr_unmap_file(&m->file);
        return hr_load_gguf(m, path);
    }
    uint32_t magic = 0;
    if (n >= 4) memcpy(&magic, d, 4);
    if (magic == LLAMA2C_Q8_MAGIC) {
        m->format = HR_FORMAT_LLAMA2C_Q8;
        return hr_load_llama2c_q8(m);
    }
    /* llama2.c v0 has no magic: its first int is the (small, positive) dim. */
    if (n >= 28 && magic > 0 && magic <= MAX_DIM) {
        m->format = HR_FORMAT_LLAMA2C;
        return hr_load_llama2c(m);
    }
    return hr_err(HR_ERR_FORMAT,
                  "'%s' is not a model headroom can read (not GGUF, not llama2.c v0 or int8 v2: "
                  "first bytes %02x %02x %02x %02x)", path, n > 0 ? d[0] : 0, n > 1 ? d[1] : 0,
                  n > 2 ? d[2] : 0, n > 3 ? d[3] : 0);
}

hr_status hr_model_load(const char *path, hr_model **out) {
    *out = NULL;
    if (!path) return hr_err(HR_ERR_INVALID_ARG, "no model path given");
    hr_model *m = calloc(1, sizeof *m);
    if (!m) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_status st = hr_map_file(path, &m->file);
    if (st == HR_OK) st = detect_and_load(m, path);
    if (st == HR_OK) st = hr_config_validate(&m->cfg);
    if (st != HR_OK) {
        if (strstr(hr_last_error(), path) == NULL) hr_err_prefix("loading '%s'", path);
        hr_model_free(m);
        return st;
    }
    *out = m;
    return HR_OK;
}

void hr_model_free(hr_model *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    hr_unmap_file(&m->file);
    hr_gguf_close(m->gguf);
    free(m);
}

const hr_config *hr_model_config(const hr_model *m) { return &m->cfg; }
hr_format hr_model_format(const hr_model *m) { return m->format; }
const char *hr_model_source_dtype(const hr_model *m) { return m->source_dtype; }

const char *hr_format_name(hr_format f) {
    switch (f) {
    case HR_FORMAT_LLAMA2C: return "llama2.c v0 (float32)";
    case HR_FORMAT_LLAMA2C_Q8: return "llama2.c v2 (int8)";
    case HR_FORMAT_GGUF: return "GGUF";
    }
    return "unknown";
}

const char *hr_arch_name(hr_arch a) {
    switch (a) {
    case HR_ARCH_LLAMA: return "llama";
    }
    return "unknown";
}

static int max_over_layers(const hr_config *c, const int *v) {
    int mx = 0;
    for (int l = 0; l < c->n_layers; l++)
        if (v[l] > mx) mx = v[l];
    return mx;
}
int hr_config_max_heads(const hr_config *c) { return max_over_layers(c, c->n_head); }
int hr_config_max_kv_heads(const hr_config *c) { return max_over_layers(c, c->n_head_kv); }
int hr_config_max_ff(const hr_config *c) { return max_over_layers(c, c->n_ff); }

/* Tensor listing in GGUF naming: embedding, 9 per layer, norm, [output]. */
enum { PER_LAYER = 9 };
static const char *const layer_names[PER_LAYER] = {
    "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
    "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"};

int hr_model_n_tensors(const hr_model *m) {
    return 2 + PER_LAYER * m->cfg.n_layers + (m->cfg.tied_classifier ? 0 : 1);
}

hr_status hr_model_tensor_info(const hr_model *m, int i, hr_tensor_info *out) {
    const hr_config *c = &m->cfg;
    memset(out, 0, sizeof *out);
    if (i < 0 || i >= hr_model_n_tensors(m))
        return hr_err(HR_ERR_RANGE, "tensor index %d out of range", i);
    if (i == 0) {
        snprintf(out->name, sizeof out->name, "token_embd.weight");
        out->rows = c->vocab_size, out->cols = c->dim;
        return HR_OK;
    }
    int k = i - 1;
    if (k < PER_LAYER * c->n_layers) {
        int l = k / PER_LAYER, t = k % PER_LAYER;
        int64_t q = (int64_t)c->n_head[l] * c->head_dim, kv = (int64_t)c->n_head_kv[l] * c->head_dim;
        int64_t shapes[PER_LAYER][2] = {{1, c->dim}, {q, c->dim}, {kv, c->dim}, {kv, c->dim}, {c->dim, q},
                                        {1, c->dim}, {c->n_ff[l], c->dim}, {c->n_ff[l], c->dim}, {c->dim, c->n_ff[l]}};
        snprintf(out->name, sizeof out->name, "blk.%d.%s.weight", l, layer_names[t]);
        out->rows = shapes[t][0], out->cols = shapes[t][1];
        return HR_OK;
    }
    if (k == PER_LAYER * c->n_layers) {
        snprintf(out->name, sizeof out->name, "output_norm.weight");
        out->rows = 1, out->cols = c->dim;
        return HR_OK;
    }
    snprintf(out->name, sizeof out->name, "output.weight");
    out->rows = c->vocab_size, out->cols = c->dim;
    return HR_OK;
}

int64_t hr_model_n_params(const hr_model *m) {
    int64_t total = 0;
    for (int i = 0; i < hr_model_n_tensors(m); i++) {
        hr_tensor_info ti;
        if (hr_model_tensor_info(m, i, &ti) == HR_OK) total += ti.rows * ti.cols;
    }
    return total;
}
