/* Building models from parts of other models (see surgery_internal.h). */
#include "study/prune/surgery_internal.h"
#include "model/config.h"
#include "formats/dtype.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const float *hr_surgery_copy(hr_model *m, const float *src, size_t n, bool *ok) {
    if (!src) return NULL;
    float *dst = hr_model_alloc_owned(m, n);
    if (!dst) {
        *ok = false;
        return NULL;
    }
    memcpy(dst, src, n * sizeof(float));
    return dst;
}

const float *hr_surgery_rows(hr_model *m, const float *src, int cols, const int *rows, int n_rows, bool *ok) {
    if (!src) return NULL;
    float *dst = hr_model_alloc_owned(m, (size_t)n_rows * (size_t)cols);
    if (!dst) {
        *ok = false;
        return NULL;
    }
    for (int i = 0; i < n_rows; i++)
        memcpy(dst + (size_t)i * cols, src + (size_t)rows[i] * cols, (size_t)cols * sizeof(float));
    return dst;
}

const float *hr_surgery_cols(hr_model *m, const float *src, int n_rows_total, int src_cols, const int *cols, int n_cols,
                             bool *ok) {
    if (!src) return NULL;
    float *dst = hr_model_alloc_owned(m, (size_t)n_rows_total * (size_t)n_cols);
    if (!dst) {
        *ok = false;
        return NULL;
    }
    for (int r = 0; r < n_rows_total; r++) {
        const float *s = src + (size_t)r * src_cols;
        float *d = dst + (size_t)r * n_cols;
        for (int j = 0; j < n_cols; j++) d[j] = s[cols[j]];
    }
    return dst;
}

/* ---- typed surgery: a matrix kept typed in the source model (f32 pointer
 * NULL, a typed source) is cut in its own dtype, never as f32 rows ---- */

/* The typed source of (layer, slot) of m when the slot has no f32 rows. */
static const hr_mat_src *typed_of(const hr_model *m, int layer, hr_slot s) {
    const float *p = *hr_slot_ptr((hr_weights *)&m->w, layer < 0 ? 0 : layer, s); /* read only */
    return p ? NULL : hr_model_src(m, layer, s);
}

/* Records an owned typed buffer (rows in headroom's order) as dst's source
 * and releases the mapped pages of the source matrix it was cut from
 * (src_rows of it), as packing does (engine/pack.c): the file's pages and
 * the cut are not both resident; a later reader maps them in again. */
static void set_owned(hr_model *dst, int layer, hr_slot s, const void *buf, size_t row_bytes, hr_wtype t,
                      const float *scale, const hr_mat_src *from, int64_t src_rows, bool *ok) {
    hr_mat_src o = {buf, row_bytes, t, 0, NULL, true, scale, false};
    if (*ok && hr_model_set_src(dst, layer, s, o) != HR_OK) *ok = false;
    if (!from->owned) hr_release_pages(from->data, from->row_bytes * (size_t)src_rows);
}

const float *hr_surgery_rows_any(hr_model *dst, int dl, const hr_model *src, int sl, hr_slot s, int cols,
                                 const int *rows, int n_rows, bool *ok) {
    const hr_mat_src *ts = typed_of(src, sl, s);
    if (!ts) {
        const float *p = *hr_slot_ptr((hr_weights *)&src->w, sl < 0 ? 0 : sl, s);
        if (rows) return hr_surgery_rows(dst, p, cols, rows, n_rows, ok);
        return hr_surgery_copy(dst, p, (size_t)n_rows * (size_t)cols, ok);
    }
    size_t rb = ts->row_bytes;
    uint8_t *buf = *ok ? hr_model_alloc_owned_bytes(dst, (size_t)n_rows * rb) : NULL; // (n_rows, rb bytes)
    bool i8 = ts->type == HR_WT_I8;
    float *sc = *ok && i8 ? hr_model_alloc_owned(dst, (size_t)n_rows) : NULL; // (n_rows) int8 row scales
    if (!buf || (i8 && !sc)) {
        *ok = false;
        return NULL;
    }
    int64_t src_rows, src_cols;
    hr_slot_shape(&src->cfg, sl, s, &src_rows, &src_cols);
    for (int i = 0; i < n_rows; i++)
        hr_mat_src_raw_row(ts, src->cfg.head_dim, rows ? rows[i] : i, (int)src_cols, buf + (size_t)i * rb,
                           sc ? &sc[i] : NULL);
    set_owned(dst, dl, s, buf, rb, ts->type, sc, ts, src_rows, ok);
    return NULL;
}

/* Do the kept columns (n_cols, increasing) form whole 32-blocks? */
static bool whole_blocks(const int *cols, int n_cols) {
    if (n_cols % 32) return false;
    for (int b = 0; b < n_cols; b += 32) {
        if (cols[b] % 32) return false;
        for (int k = 1; k < 32; k++)
            if (cols[b + k] != cols[b] + k) return false;
    }
    return true;
}

const float *hr_surgery_cols_any(hr_model *dst, int dl, const hr_model *src, int sl, hr_slot s, int n_rows,
                                 int src_cols, const int *cols, int n_cols, bool *ok) {
    const hr_mat_src *ts = typed_of(src, sl, s);
    if (!ts) {
        const float *p = *hr_slot_ptr((hr_weights *)&src->w, sl < 0 ? 0 : sl, s);
        return hr_surgery_cols(dst, p, n_rows, src_cols, cols, n_cols, ok);
    }
    int hd = src->cfg.head_dim;
    bool q8 = ts->type == HR_WT_Q8_0, blocks = q8 && whole_blocks(cols, n_cols);
    /* Q8_0 and int8 rows of a length that is not a multiple of 32 cannot
     * stay so: they become f32, exactly the dequantized values (small
     * matrices only: every head or MLP size of a real model is a multiple
     * of 32). An int8 row keeps its scale: its kept bytes are cut as they
     * are (pruned = gated bit for bit). */
    bool i8 = ts->type == HR_WT_I8, i8_f32 = i8 && n_cols % 32;
    hr_wtype t = (q8 || i8) && n_cols % 32 ? HR_WT_F32 : ts->type;
    size_t rb = t == HR_WT_F32 ? (size_t)n_cols * sizeof(float) : hr_wtype_row_bytes(t, n_cols);
    size_t es = q8 ? 0 : ts->row_bytes / (size_t)src_cols; /* element bytes of f32 / bf16 / f16 / int8 */
    uint8_t *buf = *ok ? hr_model_alloc_owned_bytes(dst, (size_t)n_rows * rb) : NULL;    // (n_rows, rb bytes)
    float *sc = *ok && t == HR_WT_I8 ? hr_model_alloc_owned(dst, (size_t)n_rows) : NULL; // (n_rows) row scales
    bool need_row = (q8 && !blocks) || i8_f32;
    float *row = need_row ? malloc(sizeof(float) * ((size_t)src_cols + (size_t)n_cols)) : NULL; // (src_cols + n_cols)
    uint8_t *in = need_row ? NULL : malloc(ts->row_bytes); // (row_bytes) one source row in its file encoding
    if (!buf || (need_row && !row) || (t == HR_WT_I8 && !sc) || (!need_row && !in)) {
        free(row), free(in);
        *ok = false;
        return NULL;
    }
    for (int r = 0; r < n_rows; r++) {
        float in_scale = 0.0f;
        if (!need_row) hr_mat_src_raw_row(ts, hd, r, src_cols, in, &in_scale);
        uint8_t *o = buf + (size_t)r * rb;
        if (blocks) {
            for (int b = 0; b < n_cols; b += 32) memcpy(o + (size_t)b / 32 * 34, in + (size_t)cols[b] / 32 * 34, 34);
        } else if (q8 || i8_f32) {
            hr_mat_src_row(ts, hd, r, src_cols, row);
            float *kept = row + src_cols; // (n_cols)
            for (int j = 0; j < n_cols; j++) kept[j] = row[cols[j]];
            if (t == HR_WT_F32) memcpy(o, kept, rb);
            else hr_quantize_q8_0(kept, o, (size_t)n_cols), dst->requantized_rows++;
        } else {
            for (int j = 0; j < n_cols; j++) memcpy(o + (size_t)j * es, in + (size_t)cols[j] * es, es);
            if (sc) sc[r] = in_scale;
        }
    }
    free(row), free(in);
    set_owned(dst, dl, s, buf, rb, t, sc, ts, n_rows, ok);
    return NULL;
}

hr_status hr_surgery_new_model(const hr_model *src, const hr_config *c, hr_model **out) {
    *out = NULL;
    const hr_config *sc = &src->cfg;
    if (c->dim != sc->dim || c->vocab_size != sc->vocab_size || c->seq_len != sc->seq_len)
        return hr_err(HR_ERR_INVALID_ARG, "surgery cannot change dim, vocabulary or context length");
    hr_status st = hr_config_validate(c);
    if (st != HR_OK) return st;
    hr_model *m = calloc(1, sizeof *m);
    if (!m) return hr_err(HR_ERR_NOMEM, "out of memory");
    m->cfg = *c;
    m->format = src->format;
    /* The input's dtype stays the model's: writers keep it (HR_DTYPE_KEEP). */
    snprintf(m->source_dtype, sizeof m->source_dtype, "%s", src->source_dtype);
    const hr_weights *sw = &src->w;
    bool ok = true;
    /* embeddings and classifier: f32 rows, or typed ones kept typed */
    m->w.tok_embd = hr_surgery_rows_any(m, -1, src, -1, HR_SLOT_TOK_EMBD, c->dim, NULL, c->vocab_size, &ok);
    m->w.pos_embd = hr_surgery_rows_any(m, -1, src, -1, HR_SLOT_POS_EMBD, c->dim, NULL, c->seq_len, &ok);
    m->w.out_norm = hr_surgery_copy(m, sw->out_norm, (size_t)c->dim, &ok);
    m->w.out_norm_b = hr_surgery_copy(m, sw->out_norm_b, (size_t)c->dim, &ok);
    if (c->tied_classifier || (sw->output && sw->output == sw->tok_embd)) m->w.output = m->w.tok_embd;
    else m->w.output = hr_surgery_rows_any(m, -1, src, -1, HR_SLOT_OUTPUT, c->dim, NULL, c->vocab_size, &ok);
    if (!ok) {
        hr_model_free(m);
        return hr_err(HR_ERR_NOMEM, "out of memory copying the embeddings");
    }
    *out = m;
    return HR_OK;
}
