/* Building models from parts of other models (see surgery_internal.h). */
#include "study/prune/surgery_internal.h"
#include "model/config.h"

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

hr_status hr_surgery_new_model(const hr_model *src, const hr_config *c, hr_model **out) {
    *out = NULL;
    hr_status need_ = hr_model_need_f32(src); /* reads f32 rows (model_internal.h) */
    if (need_ != HR_OK) return need_;
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
    size_t vd = (size_t)c->vocab_size * c->dim;
    bool ok = true;
    m->w.tok_embd = hr_surgery_copy(m, sw->tok_embd, vd, &ok);
    m->w.pos_embd = hr_surgery_copy(m, sw->pos_embd, (size_t)c->seq_len * c->dim, &ok);
    m->w.out_norm = hr_surgery_copy(m, sw->out_norm, (size_t)c->dim, &ok);
    m->w.out_norm_b = hr_surgery_copy(m, sw->out_norm_b, (size_t)c->dim, &ok);
    m->w.output = sw->output == sw->tok_embd ? m->w.tok_embd : hr_surgery_copy(m, sw->output, vd, &ok);
    if (!ok) {
        hr_model_free(m);
        return hr_err(HR_ERR_NOMEM, "out of memory copying the embeddings");
    }
    *out = m;
    return HR_OK;
}
