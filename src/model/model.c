/* Model handle: shared validation, accessors, tensor listing. */
#include "model/model_internal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "headroom/gguf.h"
#include "headroom/safetensors.h"

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

hr_status hr_config_validate(const hr_config *c) {
    if (c->dim <= 0 || c->dim > HR_MAX_DIM)
        return hr_err(HR_ERR_FORMAT, "model dimension %d is out of range (1..%d)", c->dim, HR_MAX_DIM);
    if (c->n_layers <= 0 || c->n_layers > HR_MAX_LAYERS)
        return hr_err(HR_ERR_FORMAT, "layer count %d is out of range (1..%d)", c->n_layers, HR_MAX_LAYERS);
    if (c->head_dim <= 0 || c->head_dim > HR_MAX_HEAD_DIM || c->head_dim % 2)
        return hr_err(HR_ERR_FORMAT, "head dimension %d is invalid (must be even, 2..%d)", c->head_dim, HR_MAX_HEAD_DIM);
    if (c->vocab_size <= 0 || c->vocab_size > HR_MAX_VOCAB)
        return hr_err(HR_ERR_FORMAT, "vocabulary size %d is out of range (1..%d)", c->vocab_size, HR_MAX_VOCAB);
    if (c->seq_len <= 0 || c->seq_len > HR_MAX_SEQ)
        return hr_err(HR_ERR_FORMAT, "context length %d is out of range (1..%d)", c->seq_len, HR_MAX_SEQ);
    if (!(c->norm_eps > 0 && c->norm_eps < 1))
        return hr_err(HR_ERR_FORMAT, "norm epsilon %g is out of range", (double)c->norm_eps);
    if (!(c->rope_theta > 1 && c->rope_theta < 1e12f))
        return hr_err(HR_ERR_FORMAT, "rope theta %g is out of range", (double)c->rope_theta);
    for (int l = 0; l < c->n_layers; l++) {
        int h = c->n_head[l], kv = c->n_head_kv[l], ff = c->n_ff[l];
        if (h < 0 || h > HR_MAX_HEADS || kv < 0 || kv > HR_MAX_HEADS)
            return hr_err(HR_ERR_FORMAT, "layer %d: head counts %d/%d out of range", l, h, kv);
        if ((h == 0) != (kv == 0) || (kv > 0 && h % kv != 0))
            return hr_err(HR_ERR_FORMAT, "layer %d: %d query heads cannot share %d KV heads evenly", l, h, kv);
        if (ff < 0 || ff > HR_MAX_FF)
            return hr_err(HR_ERR_FORMAT, "layer %d: FFN size %d out of range (0..%d)", l, ff, HR_MAX_FF);
    }
    return HR_OK;
}

void hr_model_free(hr_model *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    if (m->packed && m->packed_free) m->packed_free(m->packed);
    hr_unmap_file(&m->file);
    hr_gguf_close(m->gguf);
    for (size_t i = 0; i < m->n_shards; i++) hr_st_close(m->shards[i]);
    free(m->shards);
    free(m);
}

const hr_config *hr_model_config(const hr_model *m) { return &m->cfg; }

hr_arch hr_config_arch(const hr_config *c) { return c->arch; }
int hr_config_dim(const hr_config *c) { return c->dim; }
int hr_config_n_layers(const hr_config *c) { return c->n_layers; }
int hr_config_head_dim(const hr_config *c) { return c->head_dim; }
int hr_config_n_head(const hr_config *c, int l) { return l >= 0 && l < c->n_layers ? c->n_head[l] : -1; }
int hr_config_n_head_kv(const hr_config *c, int l) { return l >= 0 && l < c->n_layers ? c->n_head_kv[l] : -1; }
int hr_config_n_ff(const hr_config *c, int l) { return l >= 0 && l < c->n_layers ? c->n_ff[l] : -1; }
int hr_config_vocab_size(const hr_config *c) { return c->vocab_size; }
int hr_config_seq_len(const hr_config *c) { return c->seq_len; }
float hr_config_rope_theta(const hr_config *c) { return c->rope_theta; }
float hr_config_norm_eps(const hr_config *c) { return c->norm_eps; }
bool hr_config_tied_classifier(const hr_config *c) { return c->tied_classifier; }
hr_norm_type hr_config_norm(const hr_config *c) { return c->norm; }
hr_mlp_type hr_config_mlp(const hr_config *c) { return c->mlp; }
hr_pos_type hr_config_pos(const hr_config *c) { return c->pos; }
bool hr_config_qkv_bias(const hr_config *c) { return c->qkv_bias; }
bool hr_config_out_bias(const hr_config *c) { return c->out_bias; }
bool hr_config_mlp_bias(const hr_config *c) { return c->mlp_bias; }
hr_rope_scaling hr_config_rope_scaling(const hr_config *c) { return c->rope_scaling; }
hr_format hr_model_format(const hr_model *m) { return m->format; }
const char *hr_model_source_dtype(const hr_model *m) { return m->source_dtype; }

const char *hr_format_name(hr_format f) {
    switch (f) {
    case HR_FORMAT_LLAMA2C: return "llama2.c v0 (float32)";
    case HR_FORMAT_LLAMA2C_Q8: return "llama2.c v2 (int8)";
    case HR_FORMAT_GGUF: return "GGUF";
    case HR_FORMAT_HF: return "Hugging Face (safetensors)";
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

bool hr_config_uniform(const hr_config *c) {
    for (int l = 1; l < c->n_layers; l++)
        if (c->n_head[l] != c->n_head[0] || c->n_head_kv[l] != c->n_head_kv[0] || c->n_ff[l] != c->n_ff[0]) return false;
    return c->n_layers > 0 && c->n_head[0] > 0 && c->n_ff[0] > 0;
}

/* Every weight slot of a layer, GGUF-named, with its shape. */
typedef struct {
    const char *name;
    size_t offset; /* of the pointer in hr_layer_weights */
    int rows_kind, cols_kind; /* 0 = 1, 1 = dim, 2 = q_dim, 3 = kv_dim, 4 = n_ff */
} layer_slot;

static const layer_slot layer_slots[] = {
    {"attn_norm.weight", offsetof(hr_layer_weights, attn_norm), 0, 1},
    {"attn_norm.bias", offsetof(hr_layer_weights, attn_norm_b), 0, 1},
    {"attn_q.weight", offsetof(hr_layer_weights, wq), 2, 1},
    {"attn_q.bias", offsetof(hr_layer_weights, bq), 0, 2},
    {"attn_k.weight", offsetof(hr_layer_weights, wk), 3, 1},
    {"attn_k.bias", offsetof(hr_layer_weights, bk), 0, 3},
    {"attn_v.weight", offsetof(hr_layer_weights, wv), 3, 1},
    {"attn_v.bias", offsetof(hr_layer_weights, bv), 0, 3},
    {"attn_output.weight", offsetof(hr_layer_weights, wo), 1, 2},
    {"attn_output.bias", offsetof(hr_layer_weights, bo), 0, 1},
    {"ffn_norm.weight", offsetof(hr_layer_weights, ffn_norm), 0, 1},
    {"ffn_norm.bias", offsetof(hr_layer_weights, ffn_norm_b), 0, 1},
    {"ffn_gate.weight", offsetof(hr_layer_weights, w_gate), 4, 1},
    {"ffn_up.weight", offsetof(hr_layer_weights, w_up), 4, 1},
    {"ffn_up.bias", offsetof(hr_layer_weights, b_up), 0, 4},
    {"ffn_down.weight", offsetof(hr_layer_weights, w_down), 1, 4},
    {"ffn_down.bias", offsetof(hr_layer_weights, b_down), 0, 1},
};
enum { N_LAYER_SLOTS = sizeof layer_slots / sizeof layer_slots[0] };

static int64_t slot_dim(const hr_config *c, int l, int kind) {
    switch (kind) {
    case 1: return c->dim;
    case 2: return (int64_t)c->n_head[l] * c->head_dim;
    case 3: return (int64_t)c->n_head_kv[l] * c->head_dim;
    case 4: return c->n_ff[l];
    default: return 1;
    }
}

int hr_model_tensors(const hr_model *m, hr_tensor_ref *out, int cap) {
    const hr_config *c = &m->cfg;
    const hr_weights *w = &m->w;
    int n = 0;
#define ADD(nm, r, cc, ptr, lay)                                                   \
    do {                                                                           \
        if (ptr) {                                                                 \
            if (n < cap) {                                                         \
                snprintf(out[n].name, sizeof out[n].name, "%s", nm);               \
                out[n].rows = (r), out[n].cols = (cc), out[n].data = (ptr);        \
                out[n].layer = (lay);                                              \
            }                                                                      \
            n++;                                                                   \
        }                                                                          \
    } while (0)
    ADD("token_embd.weight", c->vocab_size, c->dim, w->tok_embd, -1);
    ADD("position_embd.weight", c->seq_len, c->dim, w->pos_embd, -1);
    for (int l = 0; l < c->n_layers; l++) {
        for (int s = 0; s < N_LAYER_SLOTS; s++) {
            const float *p = *(const float *const *)((const char *)&w->layers[l] + layer_slots[s].offset);
            char nm[64];
            snprintf(nm, sizeof nm, "blk.%d.%s", l, layer_slots[s].name);
            ADD(nm, slot_dim(c, l, layer_slots[s].rows_kind), slot_dim(c, l, layer_slots[s].cols_kind), p, l);
        }
    }
    ADD("output_norm.weight", 1, c->dim, w->out_norm, -1);
    ADD("output_norm.bias", 1, c->dim, w->out_norm_b, -1);
    if (!c->tied_classifier) ADD("output.weight", c->vocab_size, c->dim, w->output, -1);
#undef ADD
    return n;
}

int hr_model_n_tensors(const hr_model *m) { return hr_model_tensors(m, NULL, 0); }

hr_status hr_model_tensor_info(const hr_model *m, int i, hr_tensor_info *out) {
    memset(out, 0, sizeof *out);
    int n = hr_model_n_tensors(m);
    if (i < 0 || i >= n) return hr_err(HR_ERR_RANGE, "tensor index %d out of range", i);
    hr_tensor_ref *refs = malloc(sizeof *refs * (size_t)n);
    if (!refs) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_model_tensors(m, refs, n);
    snprintf(out->name, sizeof out->name, "%s", refs[i].name);
    out->rows = refs[i].rows;
    out->cols = refs[i].cols;
    free(refs);
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
