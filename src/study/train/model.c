/* Models out of training: the trained model (updates applied, LoRA merged)
 * and random initialisation for training from scratch. */
#include "study/train/train_internal.h"
#include "core/internal.h"
#include "model/config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Gives every present slot of m an owned buffer: a copy of src's slot when
 * src is non-NULL, else uninitialised. Tied classifiers share tok_embd. */
static bool own_slots(hr_model *m, hr_weights *src) {
    const hr_config *c = &m->cfg;
    for (int l = -1; l < c->n_layers; l++) {
        int s0 = l < 0 ? HR_SLOT_TOK_EMBD : 0, s1 = l < 0 ? HR_SLOT_OUTPUT + 1 : HR_N_LAYER_SLOTS;
        for (int s = s0; s < s1; s++) {
            int lay = l < 0 ? 0 : l;
            bool present = src ? *hr_slot_ptr(src, lay, (hr_slot)s) != NULL : hr_slot_expected(c, lay, (hr_slot)s);
            if (!present || (s == HR_SLOT_OUTPUT && c->tied_classifier)) continue;
            int64_t rows, cols;
            hr_slot_shape(c, lay, (hr_slot)s, &rows, &cols);
            float *d = hr_model_alloc_owned(m, (size_t)(rows * cols)); // (rows, cols)
            if (!d) return false;
            if (src) memcpy(d, *hr_slot_ptr(src, lay, (hr_slot)s), (size_t)(rows * cols) * sizeof(float));
            *hr_slot_ptr(&m->w, lay, (hr_slot)s) = d;
        }
    }
    if (c->tied_classifier) m->w.output = m->w.tok_embd;
    return true;
}

hr_status hr_train_model(const hr_train *t, hr_model **out) {
    if (!t || !out) return hr_err(HR_ERR_INVALID_ARG, "no training run or output given");
    *out = NULL;
    const hr_params *P = t->params;
    hr_model *m = calloc(1, sizeof *m);
    if (!m) return hr_err(HR_ERR_NOMEM, "out of memory");
    m->cfg = t->model->cfg;
    m->format = t->model->format;
    /* The trained model keeps the dtype of the model it started from (writers: HR_DTYPE_KEEP). */
    snprintf(m->source_dtype, sizeof m->source_dtype, "%s", t->model->source_dtype);
    hr_weights w = P->w;
    if (!own_slots(m, &w)) {
        hr_model_free(m);
        return hr_err(HR_ERR_NOMEM, "out of memory copying the trained weights");
    }
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int i = 0; i < HR_LORA_N_TARGETS; i++) {
            int ia = P->lora[l][i][0], ib = P->lora[l][i][1];
            if (ia < 0 || ib < 0) continue;
            const float *A = P->t[ia].data, *B = P->t[ib].data; // A (r, d_in), B (d_out, r)
            int r = (int)P->t[ia].info.rows, d_in = (int)P->t[ia].info.cols, d_out = (int)P->t[ib].info.rows;
            float *W = (float *)*hr_slot_ptr(&m->w, l, hr_lora_slot[i]); // (d_out, d_in), owned
            for (int o = 0; o < d_out; o++)
                for (int j = 0; j < d_in; j++) {
                    double s = 0;
                    for (int k = 0; k < r; k++) s += (double)B[(size_t)o * r + k] * A[(size_t)k * d_in + j];
                    W[(size_t)o * d_in + j] += (float)(P->lora_scale * s);
                }
        }
    hr_status st = hr_model_own_panels(m); /* one copy: the panels the forward reads */
    if (st != HR_OK) {
        hr_model_free(m);
        return st;
    }
    *out = m;
    return HR_OK;
}

/* N(0, 1) by Box-Muller from two uniforms of r. */
static double normal(hr_rng *r) {
    double u = hr_rng_double(r), v = hr_rng_double(r);
    return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

hr_status hr_model_random(const hr_random_model_params *p, hr_model **out) {
    if (!out || !p) return hr_err(HR_ERR_INVALID_ARG, "no parameters or output given");
    *out = NULL;
    if (p->n_heads <= 0 || p->dim <= 0 || p->dim % p->n_heads)
        return hr_err(HR_ERR_INVALID_ARG, "dim %d must be a positive multiple of heads %d", p->dim, p->n_heads);
    int kv = p->n_kv_heads > 0 ? p->n_kv_heads : p->n_heads;
    hr_model *m = calloc(1, sizeof *m);
    if (!m) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_config *c = &m->cfg;
    hr_config_set_arch(c, HR_ARCH_LLAMA);
    c->dim = p->dim, c->n_layers = p->n_layers, c->head_dim = p->dim / p->n_heads;
    c->vocab_size = p->vocab, c->seq_len = p->seq_len > 0 ? p->seq_len : 256;
    c->rope_theta = 10000.0f, c->norm_eps = 1e-5f, c->tied_classifier = true;
    for (int l = 0; l < p->n_layers && l < HR_MAX_LAYERS; l++)
        c->n_head[l] = p->n_heads, c->n_head_kv[l] = kv, c->n_ff[l] = p->hidden;
    hr_status st = p->n_layers > 0 && p->hidden > 0 ? hr_config_validate(c)
                                                    : hr_err(HR_ERR_INVALID_ARG, "layers and hidden must be >= 1");
    if (st == HR_OK && kv > p->n_heads) st = hr_err(HR_ERR_INVALID_ARG, "more KV heads than heads");
    if (st == HR_OK && !own_slots(m, NULL)) st = hr_err(HR_ERR_NOMEM, "out of memory for the weights");
    if (st != HR_OK) {
        hr_model_free(m);
        return st;
    }
    m->format = HR_FORMAT_GGUF;
    snprintf(m->source_dtype, sizeof m->source_dtype, "f32");
    hr_rng r = hr_rng_stream(p->seed, 0x696e6974ull); /* "init" */
    double res = 0.02 / sqrt(2.0 * c->n_layers);
    for (int l = -1; l < c->n_layers; l++) {
        int s0 = l < 0 ? HR_SLOT_TOK_EMBD : 0, s1 = l < 0 ? HR_SLOT_OUTPUT : HR_N_LAYER_SLOTS;
        for (int s = s0; s < s1; s++) {
            float *d = (float *)*hr_slot_ptr(&m->w, l < 0 ? 0 : l, (hr_slot)s);
            if (!d) continue;
            int64_t rows, cols;
            hr_slot_shape(c, l < 0 ? 0 : l, (hr_slot)s, &rows, &cols);
            bool norm = s == HR_SLOT_ATTN_NORM || s == HR_SLOT_FFN_NORM || s == HR_SLOT_OUT_NORM;
            double sd = s == HR_SLOT_O || s == HR_SLOT_DOWN ? res : 0.02;
            for (int64_t k = 0; k < rows * cols; k++) d[k] = norm ? 1.0f : (float)(sd * normal(&r));
        }
    }
    /* rows, not panels (hr_model_own_panels): training reads them next */
    *out = m;
    return HR_OK;
}
