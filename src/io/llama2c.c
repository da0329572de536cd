/* llama2.c checkpoints: v0 float32 (mmapped) and runq v2 int8 (dequantized).
 * Formats are documented in include/headroom/model.h. */
#include "model/model_internal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int32_t dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len;
} llama2c_header;

static hr_status header_to_config(const llama2c_header *h, hr_config *c) {
    memset(c, 0, sizeof *c);
    /* Check the raw ints before any arithmetic on them. */
    if (h->dim <= 0 || h->hidden <= 0 || h->n_layers <= 0 || h->n_heads <= 0 || h->n_kv_heads <= 0 || h->seq_len <= 0 ||
        h->vocab == 0 || h->vocab == INT32_MIN)
        return hr_err(HR_ERR_FORMAT,
                      "llama2.c header has invalid dimensions (dim %d, hidden %d, layers %d, heads %d, "
                      "kv heads %d, vocab %d, seq %d)",
                      h->dim, h->hidden, h->n_layers, h->n_heads, h->n_kv_heads, h->vocab, h->seq_len);
    if (h->n_layers > HR_MAX_LAYERS)
        return hr_err(HR_ERR_FORMAT, "llama2.c header claims %d layers (max %d)", h->n_layers, HR_MAX_LAYERS);
    if (h->dim % h->n_heads != 0)
        return hr_err(HR_ERR_FORMAT, "dim %d is not a multiple of the head count %d", h->dim, h->n_heads);
    hr_config_set_arch(c, HR_ARCH_LLAMA);
    c->dim = h->dim;
    c->n_layers = h->n_layers;
    c->head_dim = h->dim / h->n_heads;
    for (int l = 0; l < h->n_layers; l++) {
        c->n_head[l] = h->n_heads;
        c->n_head_kv[l] = h->n_kv_heads;
        c->n_ff[l] = h->hidden;
    }
    c->vocab_size = h->vocab < 0 ? -h->vocab : h->vocab;
    c->tied_classifier = h->vocab > 0;
    c->seq_len = h->seq_len;
    c->rope_theta = 10000.0f;
    c->norm_eps = 1e-5f;
    return hr_config_validate(c);
}

/* Sizes in floats of the per-layer weights, shared by both formats. */
typedef struct {
    size_t dim, q, kv, ff, vocab, L;
} dims;

static dims dims_of(const hr_config *c) {
    dims d = {(size_t)c->dim,
              (size_t)c->n_head[0] * c->head_dim,
              (size_t)c->n_head_kv[0] * c->head_dim,
              (size_t)c->n_ff[0],
              (size_t)c->vocab_size,
              (size_t)c->n_layers};
    return d;
}

hr_status hr_load_llama2c(hr_model *m) {
    const uint8_t *base = m->file.data;
    size_t size = m->file.size;
    llama2c_header h;
    if (size < sizeof h) return hr_err(HR_ERR_FORMAT, "llama2.c file is truncated (header)");
    memcpy(&h, base, sizeof h);
    hr_status st = header_to_config(&h, &m->cfg);
    if (st != HR_OK) return st;
    snprintf(m->source_dtype, sizeof m->source_dtype, "f32");
    dims d = dims_of(&m->cfg);
    size_t hd = (size_t)m->cfg.head_dim;
    /* Limits in hr_config_validate keep each product below 2^62. */
    size_t per_layer = d.dim * 2 + d.dim * d.q * 2 + d.dim * d.kv * 2 + d.ff * d.dim * 3;
    size_t total = d.vocab * d.dim + d.dim + (size_t)m->cfg.seq_len * hd; /* emb, final norm, freq_cis */
    size_t layers_total;
    if (!hr_mul_size(per_layer, d.L, &layers_total) || !hr_add_size(total, layers_total, &total) ||
        (!m->cfg.tied_classifier && !hr_add_size(total, d.vocab * d.dim, &total)) ||
        !hr_mul_size(total, sizeof(float), &total) || !hr_add_size(total, sizeof h, &total))
        return hr_err(HR_ERR_FORMAT, "llama2.c header dimensions overflow");
    if (size != total)
        return hr_err(HR_ERR_FORMAT, "llama2.c file size %zu does not match its header (expected %zu bytes%s)", size,
                      total, size < total ? ": file is truncated" : "");
    const float *p = (const float *)(base + sizeof h);
    hr_weights *w = &m->w;
    w->tok_embd = p, p += d.vocab * d.dim;
    const float *rms_att = p;
    p += d.L * d.dim;
    const float *wq = p;
    p += d.L * d.q * d.dim;
    const float *wk = p;
    p += d.L * d.kv * d.dim;
    const float *wv = p;
    p += d.L * d.kv * d.dim;
    const float *wo = p;
    p += d.L * d.dim * d.q;
    const float *rms_ffn = p;
    p += d.L * d.dim;
    const float *w1 = p;
    p += d.L * d.ff * d.dim;
    const float *w2 = p;
    p += d.L * d.dim * d.ff;
    const float *w3 = p;
    p += d.L * d.ff * d.dim;
    w->out_norm = p;
    p += d.dim;
    p += (size_t)m->cfg.seq_len * hd; /* freq_cis_real + imag: recomputed, not read */
    w->output = m->cfg.tied_classifier ? w->tok_embd : p;
    for (size_t l = 0; l < d.L; l++) {
        hr_layer_weights *lw = &w->layers[l];
        lw->attn_norm = rms_att + l * d.dim;
        lw->wq = wq + l * d.q * d.dim;
        lw->wk = wk + l * d.kv * d.dim;
        lw->wv = wv + l * d.kv * d.dim;
        lw->wo = wo + l * d.dim * d.q;
        lw->ffn_norm = rms_ffn + l * d.dim;
        lw->w_gate = w1 + l * d.ff * d.dim;
        lw->w_down = w2 + l * d.dim * d.ff;
        lw->w_up = w3 + l * d.ff * d.dim;
    }
    return HR_OK;
}

/* ---- int8 v2 ---- */

enum { Q8_HEADER = 256 };

typedef struct {
    const uint8_t *p, *end;
} cursor;

static hr_status take_f32(cursor *c, size_t n, const float **out, hr_model *m) {
    size_t bytes;
    if (!hr_mul_size(n, 4, &bytes) || (size_t)(c->end - c->p) < bytes)
        return hr_err(HR_ERR_FORMAT, "int8 model file is truncated");
    float *dst = hr_model_alloc_owned(m, n);
    if (!dst) return hr_err(HR_ERR_NOMEM, "out of memory");
    memcpy(dst, c->p, bytes); /* copy: the data may be unaligned */
    c->p += bytes;
    *out = dst;
    return HR_OK;
}

/* Reads one quantized tensor (int8 values then f32 group scales) as f32. */
static hr_status take_q8(cursor *c, size_t n, size_t gs, const float **out, hr_model *m) {
    size_t groups = n / gs, sbytes;
    if (n % gs != 0) return hr_err(HR_ERR_FORMAT, "tensor of %zu values is not a multiple of group size %zu", n, gs);
    if (!hr_mul_size(groups, 4, &sbytes) || (size_t)(c->end - c->p) < n || (size_t)(c->end - c->p) - n < sbytes)
        return hr_err(HR_ERR_FORMAT, "int8 model file is truncated");
    const int8_t *q = (const int8_t *)c->p;
    const uint8_t *s = c->p + n;
    float *dst = hr_model_alloc_owned(m, n);
    if (!dst) return hr_err(HR_ERR_NOMEM, "out of memory");
    for (size_t g = 0; g < groups; g++) {
        float scale;
        memcpy(&scale, s + 4 * g, 4);
        for (size_t i = 0; i < gs; i++) dst[g * gs + i] = (float)q[g * gs + i] * scale;
    }
    c->p += n + sbytes;
    *out = dst;
    return HR_OK;
}

hr_status hr_load_llama2c_q8(hr_model *m) {
    const uint8_t *base = m->file.data;
    if (m->file.size < Q8_HEADER) return hr_err(HR_ERR_FORMAT, "int8 model file is truncated (header)");
    int32_t version;
    llama2c_header h;
    memcpy(&version, base + 4, 4);
    if (version != 2) return hr_err(HR_ERR_UNSUPPORTED, "int8 llama2.c version %d is not supported (only 2)", version);
    memcpy(&h, base + 8, sizeof h);
    uint8_t shared = base[36];
    int32_t gs;
    memcpy(&gs, base + 37, 4);
    if (h.vocab <= 0) return hr_err(HR_ERR_FORMAT, "int8 header has invalid vocabulary size %d", h.vocab);
    if (shared > 1) return hr_err(HR_ERR_FORMAT, "int8 header has invalid shared_classifier flag %u", shared);
    if (!shared) h.vocab = -h.vocab;
    hr_status st = header_to_config(&h, &m->cfg);
    if (st != HR_OK) return st;
    if (gs <= 0 || gs > m->cfg.dim) return hr_err(HR_ERR_FORMAT, "int8 header has invalid group size %d", gs);
    snprintf(m->source_dtype, sizeof m->source_dtype, "int8-g%d", gs);
    dims d = dims_of(&m->cfg);
    cursor c = {base + Q8_HEADER, base + m->file.size};
    hr_weights *w = &m->w;
    const float *rms_att = NULL, *rms_ffn = NULL;
    st = take_f32(&c, d.L * d.dim, &rms_att, m);
    if (st == HR_OK) st = take_f32(&c, d.L * d.dim, &rms_ffn, m);
    if (st == HR_OK) st = take_f32(&c, d.dim, &w->out_norm, m);
    if (st == HR_OK) st = take_q8(&c, d.vocab * d.dim, (size_t)gs, &w->tok_embd, m);
    for (size_t l = 0; l < d.L && st == HR_OK; l++) {
        w->layers[l].attn_norm = rms_att + l * d.dim;
        w->layers[l].ffn_norm = rms_ffn + l * d.dim;
    }
    /* Order of the export: every layer's wq, then every wk, ... */
    struct {
        size_t offset, n;
    } kinds[7] = {
        {offsetof(hr_layer_weights, wq), d.q * d.dim},      {offsetof(hr_layer_weights, wk), d.kv * d.dim},
        {offsetof(hr_layer_weights, wv), d.kv * d.dim},     {offsetof(hr_layer_weights, wo), d.dim * d.q},
        {offsetof(hr_layer_weights, w_gate), d.ff * d.dim}, {offsetof(hr_layer_weights, w_down), d.dim * d.ff},
        {offsetof(hr_layer_weights, w_up), d.ff * d.dim}};
    for (int k = 0; k < 7 && st == HR_OK; k++)
        for (size_t l = 0; l < d.L && st == HR_OK; l++) {
            const float **slot = (const float **)((char *)&w->layers[l] + kinds[k].offset);
            st = take_q8(&c, kinds[k].n, (size_t)gs, slot, m);
        }
    if (st == HR_OK) {
        if (shared) w->output = w->tok_embd;
        else st = take_q8(&c, d.vocab * d.dim, (size_t)gs, &w->output, m);
    }
    if (st == HR_OK && c.p != c.end)
        st = hr_err(HR_ERR_FORMAT, "int8 model file has %zu unexpected trailing bytes", (size_t)(c.end - c.p));
    return st;
}
