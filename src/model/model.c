/* Model handle: shared validation, accessors, tensor listing. */
#include "model/model_internal.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "headroom/gguf.h"
#include "headroom/safetensors.h"

float *hr_model_alloc_owned(hr_model *m, size_t n) {
    size_t bytes;
    if (!hr_mul_size(n, sizeof(float), &bytes)) return NULL;
    return hr_model_alloc_owned_bytes(m, bytes);
}

/* An owned buffer; a matrix-sized one (8 MiB or more) from hr_map_anon:
 * populated up front (not faulted page by page), or not (filled while the
 * rows it replaces are given back: hr_model_own_panels). */
static void *alloc_owned(hr_model *m, size_t bytes, bool populate) {
    if (m->n_owned == m->cap_owned) {
        size_t cap = m->cap_owned ? m->cap_owned * 2 : 64;
        void **p = realloc(m->owned, cap * sizeof *p);
        if (!p) return NULL;
        m->owned = p;
        size_t *q = realloc(m->owned_n, cap * sizeof *q);
        if (!q) return NULL;
        m->owned_n = q;
        q = realloc(m->owned_map, cap * sizeof *q);
        if (!q) return NULL;
        m->owned_map = q;
        m->cap_owned = cap;
    }
    size_t map = bytes >= (8u << 20) ? bytes : 0;
    void *buf = map ? hr_map_anon(&map, populate) : NULL;
    if (!buf) {
        size_t padded = (bytes + 63) & ~(size_t)63; /* aligned_alloc: a multiple of the alignment */
        buf = padded >= bytes ? aligned_alloc(64, padded ? padded : 64) : NULL;
        map = 0;
    }
    if (!buf) return NULL;
    m->owned_map[m->n_owned] = map;
    m->owned_n[m->n_owned] = bytes;
    m->owned[m->n_owned++] = buf;
    m->owned_bytes += bytes;
    return buf;
}

void *hr_model_alloc_owned_bytes(hr_model *m, size_t bytes) { return alloc_owned(m, bytes, true); }

static void owned_release(hr_model *m, size_t i) {
    if (m->owned_map[i]) hr_unmap_anon(m->owned[i], m->owned_map[i]);
    else free(m->owned[i]);
}

bool hr_model_free_owned(hr_model *m, const void *buf) {
    for (size_t i = 0; i < m->n_owned; i++)
        if (m->owned[i] == buf) {
            owned_release(m, i);
            m->owned_bytes -= m->owned_n[i];
            m->owned[i] = m->owned[m->n_owned - 1], m->owned_n[i] = m->owned_n[m->n_owned - 1];
            m->owned_map[i] = m->owned_map[m->n_owned - 1];
            m->n_owned--;
            return true;
        }
    return false;
}

/* ---- typed sources (model_internal.h) ---- */

static hr_mat_src *src_at(const hr_model *m, int layer, hr_slot s) {
    if (!m->src || (s < HR_N_LAYER_SLOTS && (layer < 0 || layer >= m->cfg.n_layers))) return NULL;
    int row = s < HR_N_LAYER_SLOTS ? layer : m->cfg.n_layers;
    return &m->src[(size_t)row * HR_N_SLOTS + s];
}

hr_status hr_model_set_src(hr_model *m, int layer, hr_slot s, hr_mat_src src) {
    if (!m->src) {
        m->src = calloc((size_t)(m->cfg.n_layers + 1) * HR_N_SLOTS, sizeof *m->src);
        if (!m->src) return hr_err(HR_ERR_NOMEM, "out of memory");
    }
    *src_at(m, layer, s) = src;
    return HR_OK;
}

const hr_mat_src *hr_model_src(const hr_model *m, int layer, hr_slot s) {
    if (s == HR_SLOT_OUTPUT && m->cfg.tied_classifier) s = HR_SLOT_TOK_EMBD;
    const hr_mat_src *p = src_at(m, layer, s);
    if (!p || !p->data) return NULL;
    const float **pw = hr_slot_ptr((hr_weights *)&m->w, layer < 0 ? 0 : layer, s); /* NULL for fused QKV */
    const float *w = pw ? *pw : NULL;
    return !w || (const void *)w == p->data || w == p->f32 ? p : NULL;
}

void hr_mat_src_row(const hr_mat_src *s, int head_dim, int row, int cols, float *out) {
    if (s->panels) {
        hr_panels wp = {s->data, s->type};
        hr_panels_row_f32(wp, cols, row, out);
        return;
    }
    size_t sr = hr_mat_src_stored_row(s, head_dim, row);
    if (s->type == HR_WT_I8) {
        hr_dequant_i8((const int8_t *)s->data + sr * s->row_bytes, s->scale[sr], out, (size_t)cols);
        return;
    }
    /* types and Q8_0 scales were checked at load: the conversion cannot fail */
    (void)hr_dequant_to_f32(hr_wtype_ggml(s->type), (const char *)s->data + sr * s->row_bytes, out, (size_t)cols);
}

void hr_mat_src_raw_row(const hr_mat_src *s, int head_dim, int row, int cols, void *raw, float *scale) {
    if (s->panels) {
        hr_panels wp = {s->data, s->type};
        hr_panels_row_raw(wp, cols, row, raw, scale);
        return;
    }
    size_t sr = hr_mat_src_stored_row(s, head_dim, row);
    memcpy(raw, (const char *)s->data + sr * s->row_bytes, s->row_bytes);
    if (s->type == HR_WT_I8 && scale) *scale = s->scale[sr];
}

void hr_model_embed_row(const hr_model *m, int tok, float *out) {
    int dim = m->cfg.dim;
    const hr_mat_src *s = m->w.tok_embd ? NULL : hr_model_src(m, -1, HR_SLOT_TOK_EMBD);
    if (s) hr_mat_src_row(s, m->cfg.head_dim, tok, dim, out);
    else memcpy(out, m->w.tok_embd + (size_t)tok * dim, sizeof(float) * (size_t)dim);
}

/* The model's own f32 rows of a matrix slot, or NULL (kept typed). */
static const float *own_rows(const hr_model *m, int layer, hr_slot s) {
    const float *const *p = hr_slot_ptr((hr_weights *)&m->w, layer < 0 ? 0 : layer, s);
    const float *f = p ? *p : NULL;
    if (!f && s == HR_SLOT_OUTPUT && m->cfg.tied_classifier) f = m->w.tok_embd;
    return f;
}

const float *hr_model_rows(const hr_model *m, int layer, hr_slot s, int r0, int n, float *buf) {
    int64_t rows, cols;
    hr_slot_shape(&m->cfg, layer < 0 ? 0 : layer, s, &rows, &cols);
    if (r0 < 0 || n < 0 || r0 + (int64_t)n > rows) return NULL;
    const float *f = own_rows(m, layer, s);
    if (f) return f + (size_t)r0 * (size_t)cols;
    const hr_mat_src *src = hr_model_src(m, layer, s);
    if (!src) return NULL;
    for (int r = 0; r < n; r++) hr_mat_src_row(src, m->cfg.head_dim, r0 + r, (int)cols, buf + (size_t)r * (size_t)cols);
    return buf;
}

hr_status hr_model_matrix_f32(const hr_model *m, int layer, hr_slot s, const float **rows_out, float **owned) {
    *owned = NULL;
    *rows_out = own_rows(m, layer, s);
    if (*rows_out) return HR_OK;
    int64_t rows, cols;
    hr_slot_shape(&m->cfg, layer < 0 ? 0 : layer, s, &rows, &cols);
    if (!hr_model_src(m, layer, s))
        return layer < 0 ? hr_err(HR_ERR_INVALID_ARG, "the model has no %s matrix", hr_slot_gguf_name(s))
                         : hr_err(HR_ERR_INVALID_ARG, "the model has no blk.%d.%s matrix", layer, hr_slot_gguf_name(s));
    size_t n;
    float *buf = hr_mul_size((size_t)rows, (size_t)cols, &n) && hr_mul_size(n, sizeof(float), &n) ? malloc(n) : NULL;
    if (!buf)
        return hr_err(HR_ERR_NOMEM, "out of memory converting %s of layer %d (%lld x %lld) to f32",
                      hr_slot_gguf_name(s), layer, (long long)rows, (long long)cols);
    *owned = buf;
    *rows_out = hr_model_rows(m, layer, s, 0, (int)rows, buf);
    hr_model_release_rows(m, layer, s);
    return HR_OK;
}

void hr_model_release_rows(const hr_model *m, int layer, hr_slot s) {
    if (own_rows(m, layer, s)) return;
    const hr_mat_src *src = hr_model_src(m, layer, s);
    int64_t rows, cols;
    hr_slot_shape(&m->cfg, layer < 0 ? 0 : layer, s, &rows, &cols);
    /* typed sources that are not owned buffers are the file's mapped pages (engine/pack.c releases them alike) */
    if (src && !src->owned) hr_release_pages(src->data, src->row_bytes * (size_t)rows);
}

hr_status hr_model_need_f32(const hr_model *cm) {
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    hr_model *m = (hr_model *)cm; /* the f32 rows are a cache of the model's value */
    hr_status st = HR_OK;
    pthread_mutex_lock(&lock);
    const hr_config *c = &m->cfg;
    /* pass 0 sizes the conversion (refused up front when it cannot fit in
     * memory: an 8B bf16 model needs 32 GB of f32 rows), pass 1 converts */
    uint64_t need = 0;
    for (int pass = 0; pass < 2 && !m->f32_ready && st == HR_OK; pass++) {
        if (pass == 1) {
            uint64_t avail = hr_available_memory();
            if (avail && need > avail) {
                st = hr_err(HR_ERR_NOMEM,
                            "this needs the weight matrices as f32 rows (%.1f GB more; the forward pass computes "
                            "from the file's %s in place), but only %.1f GB of memory is available",
                            (double)need / 1e9, m->source_dtype[0] ? m->source_dtype : "dtype", (double)avail / 1e9);
                break;
            }
        }
        for (int l = -1; l < c->n_layers && st == HR_OK; l++)
            for (int s = 0; s < HR_N_SLOTS && st == HR_OK; s++) {
                if ((l < 0) != (s >= HR_N_LAYER_SLOTS) || s == HR_SLOT_QKV || s == HR_SLOT_QKV_B) continue;
                hr_mat_src *src = src_at(m, l, (hr_slot)s);
                const float **dst = hr_slot_ptr(&m->w, l < 0 ? 0 : l, (hr_slot)s);
                if (!src || !src->data || *dst || !hr_slot_expected(c, l, (hr_slot)s)) continue;
                int64_t rows, cols;
                hr_slot_shape(c, l, (hr_slot)s, &rows, &cols);
                if (pass == 0) {
                    need += (uint64_t)rows * (uint64_t)cols * sizeof(float);
                    continue;
                }
                float *buf = hr_model_alloc_owned(m, (size_t)rows * (size_t)cols); // (rows, cols)
                if (!buf) {
                    st = hr_err(HR_ERR_NOMEM, "out of memory converting the weights to f32 (%lld x %lld)",
                                (long long)rows, (long long)cols);
                    break;
                }
                for (int64_t r = 0; r < rows; r++) hr_mat_src_row(src, c->head_dim, (int)r, (int)cols, buf + r * cols);
                *dst = src->f32 = buf;
            }
    }
    if (st == HR_OK && c->tied_classifier) m->w.output = m->w.tok_embd;
    if (st == HR_OK) m->f32_ready = 1;
    pthread_mutex_unlock(&lock);
    return st;
}

hr_status hr_config_validate(const hr_config *c) {
    if (c->dim <= 0 || c->dim > HR_MAX_DIM)
        return hr_err(HR_ERR_FORMAT, "model dimension %d is out of range (1..%d)", c->dim, HR_MAX_DIM);
    if (c->n_layers <= 0 || c->n_layers > HR_MAX_LAYERS)
        return hr_err(HR_ERR_FORMAT, "layer count %d is out of range (1..%d)", c->n_layers, HR_MAX_LAYERS);
    if (c->head_dim <= 0 || c->head_dim > HR_MAX_HEAD_DIM || c->head_dim % 2)
        return hr_err(HR_ERR_FORMAT, "head dimension %d is invalid (must be even, 2..%d)", c->head_dim,
                      HR_MAX_HEAD_DIM);
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
    for (size_t i = 0; i < m->n_owned; i++) owned_release(m, i);
    free(m->owned);
    free(m->owned_n);
    free(m->owned_map);
    free(m->src);
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

void hr_model_note_dtype(hr_model *m, const char *dtype, int64_t n, bool matrix) {
    if (!matrix) {
        if (!m->source_dtype[0]) snprintf(m->source_dtype, sizeof m->source_dtype, "%s", dtype);
        return;
    }
    int i = 0;
    while (i < m->n_dtypes && strcmp(m->dtypes[i].name, dtype) != 0) i++;
    if (i == m->n_dtypes) {
        if (i == (int)(sizeof m->dtypes / sizeof m->dtypes[0])) return; /* more dtypes than any file holds */
        snprintf(m->dtypes[i].name, sizeof m->dtypes[i].name, "%s", dtype);
        m->n_dtypes++;
    }
    m->dtypes[i].params += n;
    int best = 0;
    for (int k = 1; k < m->n_dtypes; k++)
        if (m->dtypes[k].params > m->dtypes[best].params) best = k;
    snprintf(m->source_dtype, sizeof m->source_dtype, "%s", m->dtypes[best].name);
}

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
        if (c->n_head[l] != c->n_head[0] || c->n_head_kv[l] != c->n_head_kv[0] || c->n_ff[l] != c->n_ff[0])
            return false;
    return c->n_layers > 0 && c->n_head[0] > 0 && c->n_ff[0] > 0;
}

/* Every weight slot, GGUF-named, with its shape (hr_slot order). */
typedef struct {
    const char *name;
    int layer_offset; /* of the pointer in hr_layer_weights; -1 for model slots and QKV */
    int rows_kind,
        cols_kind; /* 0 = 1, 1 = dim, 2 = q_dim, 3 = kv_dim, 4 = n_ff, 5 = q_dim + 2 kv_dim, 6 = vocab, 7 = seq_len */
} slot_info;

#define LW(f) (int)offsetof(hr_layer_weights, f)
static const slot_info slots[] = {
    [HR_SLOT_ATTN_NORM] = {"attn_norm.weight", LW(attn_norm), 0, 1},
    [HR_SLOT_ATTN_NORM_B] = {"attn_norm.bias", LW(attn_norm_b), 0, 1},
    [HR_SLOT_Q] = {"attn_q.weight", LW(wq), 2, 1},
    [HR_SLOT_Q_B] = {"attn_q.bias", LW(bq), 0, 2},
    [HR_SLOT_K] = {"attn_k.weight", LW(wk), 3, 1},
    [HR_SLOT_K_B] = {"attn_k.bias", LW(bk), 0, 3},
    [HR_SLOT_V] = {"attn_v.weight", LW(wv), 3, 1},
    [HR_SLOT_V_B] = {"attn_v.bias", LW(bv), 0, 3},
    [HR_SLOT_O] = {"attn_output.weight", LW(wo), 1, 2},
    [HR_SLOT_O_B] = {"attn_output.bias", LW(bo), 0, 1},
    [HR_SLOT_FFN_NORM] = {"ffn_norm.weight", LW(ffn_norm), 0, 1},
    [HR_SLOT_FFN_NORM_B] = {"ffn_norm.bias", LW(ffn_norm_b), 0, 1},
    [HR_SLOT_GATE] = {"ffn_gate.weight", LW(w_gate), 4, 1},
    [HR_SLOT_UP] = {"ffn_up.weight", LW(w_up), 4, 1},
    [HR_SLOT_UP_B] = {"ffn_up.bias", LW(b_up), 0, 4},
    [HR_SLOT_DOWN] = {"ffn_down.weight", LW(w_down), 1, 4},
    [HR_SLOT_DOWN_B] = {"ffn_down.bias", LW(b_down), 0, 1},
    [HR_SLOT_QKV] = {"attn_qkv.weight", -1, 5, 1},
    [HR_SLOT_QKV_B] = {"attn_qkv.bias", -1, 0, 5},
    [HR_SLOT_TOK_EMBD] = {"token_embd.weight", -1, 6, 1},
    [HR_SLOT_POS_EMBD] = {"position_embd.weight", -1, 7, 1},
    [HR_SLOT_OUT_NORM] = {"output_norm.weight", -1, 0, 1},
    [HR_SLOT_OUT_NORM_B] = {"output_norm.bias", -1, 0, 1},
    [HR_SLOT_OUTPUT] = {"output.weight", -1, 6, 1},
};
#undef LW

const char *hr_slot_gguf_name(hr_slot s) { return slots[s].name; }

static int64_t slot_dim(const hr_config *c, int l, int kind) {
    int64_t q = l >= 0 ? (int64_t)c->n_head[l] * c->head_dim : 0,
            kv = l >= 0 ? (int64_t)c->n_head_kv[l] * c->head_dim : 0;
    switch (kind) {
    case 1: return c->dim;
    case 2: return q;
    case 3: return kv;
    case 4: return l >= 0 ? c->n_ff[l] : 0;
    case 5: return q + 2 * kv;
    case 6: return c->vocab_size;
    case 7: return c->seq_len;
    default: return 1;
    }
}

void hr_slot_shape(const hr_config *c, int layer, hr_slot s, int64_t *rows, int64_t *cols) {
    *rows = slot_dim(c, layer, slots[s].rows_kind);
    *cols = slot_dim(c, layer, slots[s].cols_kind);
}

bool hr_slot_expected(const hr_config *c, int l, hr_slot s) {
    bool attn = l >= 0 && c->n_head[l] > 0, mlp = l >= 0 && c->n_ff[l] > 0, ln = c->norm == HR_NORM_LAYER;
    switch (s) {
    case HR_SLOT_ATTN_NORM:
    case HR_SLOT_Q:
    case HR_SLOT_K:
    case HR_SLOT_V:
    case HR_SLOT_O:
    case HR_SLOT_QKV: return attn;
    case HR_SLOT_ATTN_NORM_B: return attn && ln;
    case HR_SLOT_Q_B:
    case HR_SLOT_K_B:
    case HR_SLOT_V_B:
    case HR_SLOT_QKV_B: return attn && c->qkv_bias;
    case HR_SLOT_O_B: return attn && c->out_bias;
    case HR_SLOT_FFN_NORM:
    case HR_SLOT_UP:
    case HR_SLOT_DOWN: return mlp;
    case HR_SLOT_FFN_NORM_B: return mlp && ln;
    case HR_SLOT_GATE: return mlp && c->mlp == HR_MLP_SWIGLU;
    case HR_SLOT_UP_B:
    case HR_SLOT_DOWN_B: return mlp && c->mlp_bias;
    case HR_SLOT_TOK_EMBD:
    case HR_SLOT_OUT_NORM: return true;
    case HR_SLOT_POS_EMBD: return c->pos == HR_POS_LEARNED;
    case HR_SLOT_OUT_NORM_B: return ln;
    case HR_SLOT_OUTPUT: return !c->tied_classifier;
    default: return false;
    }
}

const float **hr_slot_ptr(hr_weights *w, int layer, hr_slot s) {
    if (s < HR_N_LAYER_SLOTS) return (const float **)((char *)&w->layers[layer] + slots[s].layer_offset);
    switch (s) {
    case HR_SLOT_TOK_EMBD: return &w->tok_embd;
    case HR_SLOT_POS_EMBD: return &w->pos_embd;
    case HR_SLOT_OUT_NORM: return &w->out_norm;
    case HR_SLOT_OUT_NORM_B: return &w->out_norm_b;
    case HR_SLOT_OUTPUT: return &w->output;
    default: return NULL;
    }
}

int hr_model_tensors(const hr_model *m, hr_tensor_ref *out, int cap) {
    const hr_config *c = &m->cfg;
    hr_weights *w = (hr_weights *)&m->w; /* read only: hr_slot_ptr serves loaders too */
    int n = 0;
    static const hr_slot pre[] = {HR_SLOT_TOK_EMBD, HR_SLOT_POS_EMBD}, post[] = {HR_SLOT_OUT_NORM, HR_SLOT_OUT_NORM_B};
#define ADD(slot, lay)                                                                                                 \
    do {                                                                                                               \
        const float *p_ = *hr_slot_ptr(w, (lay) < 0 ? 0 : (lay), (slot));                                              \
        if (p_ || (hr_slot_expected(c, (lay), (slot)) && hr_model_src(m, (lay), (slot)))) {                            \
            if (n < cap) {                                                                                             \
                if ((lay) >= 0) snprintf(out[n].name, sizeof out[n].name, "blk.%d.%s", (lay), slots[slot].name);       \
                else snprintf(out[n].name, sizeof out[n].name, "%s", slots[slot].name);                                \
                hr_slot_shape(c, (lay), (slot), &out[n].rows, &out[n].cols);                                           \
                out[n].n_dims = slots[slot].rows_kind == 0 ? 1 : 2;                                                    \
                out[n].data = p_, out[n].layer = (lay), out[n].wslot = (hr_slot)(slot);                                \
            }                                                                                                          \
            n++;                                                                                                       \
        }                                                                                                              \
    } while (0)
    for (int i = 0; i < 2; i++) ADD(pre[i], -1);
    for (int l = 0; l < c->n_layers; l++)
        for (int s = 0; s < HR_N_LAYER_SLOTS; s++) ADD((hr_slot)s, l);
    for (int i = 0; i < 2; i++) ADD(post[i], -1);
    if (!c->tied_classifier) ADD(HR_SLOT_OUTPUT, -1);
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
    out->n_dims = refs[i].n_dims;
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

/* Is p inside a buffer the model owns? */
static bool is_owned(const hr_model *m, const void *p) {
    for (size_t i = 0; i < m->n_owned; i++)
        if ((const char *)p >= (const char *)m->owned[i] && (const char *)p < (const char *)m->owned[i] + m->owned_n[i])
            return true;
    return false;
}

const hr_slot hr_packed_layer_slots[HR_N_PACKED_LAYER_SLOTS] = {HR_SLOT_Q,    HR_SLOT_K,  HR_SLOT_V,   HR_SLOT_O,
                                                                HR_SLOT_GATE, HR_SLOT_UP, HR_SLOT_DOWN};

bool hr_slot_packed(const hr_config *c, int layer, hr_slot s) {
    if (layer < 0) return s == HR_SLOT_OUTPUT || (s == HR_SLOT_TOK_EMBD && c->tied_classifier); /* the classifier */
    for (int i = 0; i < HR_N_PACKED_LAYER_SLOTS; i++)
        if (hr_packed_layer_slots[i] == s) return true;
    return false;
}

/* The owned buffer that is exactly [p, p + bytes), or -1. */
static long owned_exactly(const hr_model *m, const void *p, size_t bytes) {
    for (size_t i = 0; i < m->n_owned; i++)
        if (m->owned[i] == p && m->owned_n[i] == bytes) return (long)i;
    return -1;
}

/* Does a slot other than (layer, s) point at p (a view, an untied
 * classifier sharing the embedding's rows)? The tied classifier is the
 * embedding itself. */
static bool shared_ptr(const hr_model *m, const float *p, int layer, hr_slot s) {
    for (int l = -1; l < m->cfg.n_layers; l++)
        for (int k = l < 0 ? HR_SLOT_TOK_EMBD : 0; k < (l < 0 ? HR_N_SLOTS : HR_N_LAYER_SLOTS); k++) {
            const float **q = hr_slot_ptr((hr_weights *)&m->w, l < 0 ? 0 : l, (hr_slot)k);
            bool same = l == layer && k == (int)s;
            bool tied = s == HR_SLOT_TOK_EMBD && k == HR_SLOT_OUTPUT && m->cfg.tied_classifier;
            if (q && *q == p && !same && !tied) return true;
        }
    return false;
}

hr_status hr_model_own_panels(hr_model *m) {
    const hr_config *c = &m->cfg;
    if (m->f32_ready) return HR_OK; /* someone asked for the f32 rows: they stay */
    for (int l = -1; l < c->n_layers; l++)
        for (int s = 0; s < HR_N_SLOTS; s++) {
            if ((l < 0) != (s >= HR_N_LAYER_SLOTS) || !hr_slot_packed(c, l, (hr_slot)s)) continue;
            if (s == HR_SLOT_OUTPUT && c->tied_classifier) continue; /* the embedding is the classifier */
            const float **pp = hr_slot_ptr(&m->w, l < 0 ? 0 : l, (hr_slot)s);
            hr_mat_src *src = src_at(m, l, (hr_slot)s);
            int64_t rows, cols;
            hr_slot_shape(c, l, (hr_slot)s, &rows, &cols);
            hr_mat_src cur;
            if (*pp) { /* f32 rows: only a buffer of the model's own (below), of this slot alone */
                if ((src && src->data) || shared_ptr(m, *pp, l, (hr_slot)s)) continue;
                cur = (hr_mat_src){*pp, (size_t)cols * sizeof(float), HR_WT_F32, 0, NULL, true, NULL, false};
            } else {
                if (!src || !src->data || !src->owned || src->panels || src->perm_heads) continue;
                cur = *src;
            }
            size_t nb = hr_packed_bytes(cur.type, (int)rows, (int)cols);
            long ri = owned_exactly(m, cur.data, (size_t)rows * cur.row_bytes); /* not a view into a bigger one */
            if (!nb || ri < 0) continue;
            bool mapped_rows = m->owned_map[ri] != 0;
            void *pan = alloc_owned(m, nb, !mapped_rows);
            hr_status st = pan ? hr_model_set_src(m, l, (hr_slot)s,
                                                  (hr_mat_src){pan, cur.row_bytes, cur.type, 0, NULL, true, NULL, true})
                               : HR_ERR_NOMEM;
            if (st != HR_OK) {
                if (pan) hr_model_free_owned(m, pan);
                return l < 0 ? hr_err(HR_ERR_NOMEM, "out of memory packing %s (%lld x %lld)",
                                      hr_slot_gguf_name((hr_slot)s), (long long)rows, (long long)cols)
                             : hr_err(HR_ERR_NOMEM, "out of memory packing blk.%d.%s (%lld x %lld)", l,
                                      hr_slot_gguf_name((hr_slot)s), (long long)rows, (long long)cols);
            }
            /* a chunk of panels at a time, the rows packed given back as it goes
             * (anonymous pages: freed at once), so the two copies of a big
             * matrix (a 1 GB classifier) are never both resident */
            int n_panels = (int)((rows + 15) / 16), step = mapped_rows ? 128 : n_panels;
            for (int p0 = 0; p0 < n_panels; p0 += step) {
                int p1 = p0 + step < n_panels ? p0 + step : n_panels;
                hr_pack_panels_t(cur.type, pan, cur.data, cur.scale, cur.row_bytes, 0, c->head_dim, (int)rows,
                                 (int)cols, p0, p1);
                size_t done = (size_t)p1 * 16 < (size_t)rows ? (size_t)p1 * 16 : (size_t)rows;
                if (mapped_rows) hr_release_pages(cur.data, done * cur.row_bytes);
            }
            if (*pp && s == HR_SLOT_TOK_EMBD && m->w.output == *pp) m->w.output = NULL; /* tied: the same matrix */
            *pp = NULL;
            hr_model_free_owned(m, cur.data);
            if (cur.scale) hr_model_free_owned(m, cur.scale);
        }
    return HR_OK;
}

static pthread_mutex_t g_packed_lock = PTHREAD_MUTEX_INITIALIZER; /* every model's panels and holders */

void hr_model_packed_lock(void) { pthread_mutex_lock(&g_packed_lock); }
void hr_model_packed_unlock(void) { pthread_mutex_unlock(&g_packed_lock); }

int64_t hr_model_weight_bytes(const hr_model *m) {
    if (!m) return 0;
    const hr_config *c = &m->cfg;
    hr_model_packed_lock(); /* another thread's context may be packing */
    bool packed = m->packed != NULL;
    size_t total = m->packed_bytes + m->owned_bytes;
    hr_model_packed_unlock();
    for (int l = -1; l < c->n_layers; l++)
        for (int s = 0; s < HR_N_SLOTS; s++) {
            if ((l < 0) != (s >= HR_N_LAYER_SLOTS) || s == HR_SLOT_QKV || s == HR_SLOT_QKV_B) continue;
            if (s == HR_SLOT_OUTPUT && c->tied_classifier) continue;
            int64_t rows, cols;
            hr_slot_shape(c, l, (hr_slot)s, &rows, &cols);
            const hr_mat_src *src = hr_model_src(m, l, (hr_slot)s);
            const float *p = *hr_slot_ptr((hr_weights *)&m->w, l < 0 ? 0 : l, (hr_slot)s);
            bool released = packed && hr_slot_packed(c, l, (hr_slot)s);
            if ((p && is_owned(m, p)) || (src && src->owned)) continue; /* in owned_bytes */
            if (src && !released) total += src->row_bytes * (size_t)rows;
            else if (!src && p && !released) total += (size_t)rows * (size_t)cols * sizeof(float); /* mapped f32 */
        }
    return (int64_t)total;
}

const char *hr_model_tensor_dtype(const hr_model *m, int i) {
    int n = hr_model_n_tensors(m);
    if (!m || i < 0 || i >= n) return NULL;
    hr_tensor_ref *refs = malloc(sizeof *refs * (size_t)n);
    if (!refs) return NULL;
    hr_model_tensors(m, refs, n);
    const char *name = strchr(refs[i].name, '.');
    int layer = refs[i].layer;
    const char *dt = "f32";
    for (int s = 0; s < HR_N_SLOTS; s++) {
        const char *sn = hr_slot_gguf_name((hr_slot)s);
        bool match = layer >= 0 ? name && strcmp(strchr(name + 1, '.') + 1, sn) == 0 : strcmp(refs[i].name, sn) == 0;
        if (!match || (layer >= 0) != (s < HR_N_LAYER_SLOTS)) continue;
        const hr_mat_src *src = hr_model_src(m, layer, (hr_slot)s);
        if (src) dt = hr_wtype_name(src->type);
        break;
    }
    free(refs);
    return dt;
}
