/* Models from GGUF: the architectures of the registry (model/arch.h) —
 * general.architecture picks the row, whose flags say whether Q/K rows are
 * stored rotate-half (permuted on load) and whether Q/K/V may come fused
 * as attn_qkv; tensor presence follows the row's traits. Per-layer sizes
 * ("deci", pruned models) are arrays. */
#include "model/model_internal.h"
#include "model/arch.h"
#include "io/hf_internal.h"
#include "formats/dtype.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "headroom/gguf.h"

/* Reads "<arch>.<suffix>" as a per-layer int: either a scalar (same for all
 * layers) or an array of n_layers ints (deci, pruned models). */
static hr_status per_layer_int(const hr_gguf *g, const char *arch, const char *suffix, int n_layers, int *out,
                               bool required, int dflt) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t idx = hr_gguf_find(g, key);
    if (idx < 0) {
        if (required) return hr_err(HR_ERR_FORMAT, "GGUF is missing the key '%s'", key);
        for (int l = 0; l < n_layers; l++) out[l] = dflt;
        return HR_OK;
    }
    hr_gguf_value v = hr_gguf_get(g, (uint64_t)idx);
    if (v.type == HR_GGUF_ARRAY) {
        if (v.n != (uint64_t)n_layers)
            return hr_err(HR_ERR_FORMAT, "GGUF key '%s' has %llu entries for %d layers", key, (unsigned long long)v.n,
                          n_layers);
        for (int l = 0; l < n_layers; l++) {
            int64_t x;
            hr_status st = hr_gguf_arr_i64(g, &v, (uint64_t)l, &x);
            if (st != HR_OK) return st;
            if (x < 0 || x > HR_MAX_FF)
                return hr_err(HR_ERR_FORMAT, "GGUF key '%s'[%d] = %lld out of range", key, l, (long long)x);
            out[l] = (int)x;
        }
        return HR_OK;
    }
    int64_t x;
    hr_status st = hr_gguf_get_i64(g, key, &x);
    if (st != HR_OK) return st;
    if (x < 0 || x > HR_MAX_FF) return hr_err(HR_ERR_FORMAT, "GGUF key '%s' = %lld out of range", key, (long long)x);
    for (int l = 0; l < n_layers; l++) out[l] = (int)x;
    return HR_OK;
}

static hr_status get_int(const hr_gguf *g, const char *arch, const char *suffix, int *out, bool required, int dflt,
                         int64_t max) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t x;
    hr_status st = hr_gguf_get_i64(g, key, &x);
    if (st == HR_ERR_NOT_FOUND && !required) {
        *out = dflt;
        return HR_OK;
    }
    if (st == HR_ERR_NOT_FOUND) return hr_err(HR_ERR_FORMAT, "GGUF is missing the key '%s'", key);
    if (st != HR_OK) return st;
    if (x <= 0 || x > max) return hr_err(HR_ERR_FORMAT, "GGUF key '%s' = %lld out of range", key, (long long)x);
    *out = (int)x;
    return HR_OK;
}

static hr_status get_float(const hr_gguf *g, const char *arch, const char *suffix, float *out, float dflt) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    double x;
    hr_status st = hr_gguf_get_f64(g, key, &x);
    if (st == HR_ERR_NOT_FOUND) {
        *out = dflt;
        return HR_OK;
    }
    if (st != HR_OK) return st;
    *out = (float)x;
    return HR_OK;
}

/* llama3 RoPE scaling as written by hr_model_save_gguf. */
static hr_status read_rope_scaling(const hr_gguf *g, hr_config *c) {
    const char *ty;
    size_t ty_len;
    if (hr_gguf_get_str(g, "headroom.rope_scaling.type", &ty, &ty_len) != HR_OK) return HR_OK;
    if (ty_len != 6 || memcmp(ty, "llama3", 6) != 0)
        return hr_err(HR_ERR_UNSUPPORTED, "headroom.rope_scaling.type '%.*s' is not supported",
                      (int)(ty_len < 64 ? ty_len : 64), ty);
    hr_rope_scaling *rs = &c->rope_scaling;
    double f = 0, lo = 0, hi = 0;
    int64_t orig = 0;
    hr_status st = hr_gguf_get_f64(g, "headroom.rope_scaling.factor", &f);
    if (st == HR_OK) st = hr_gguf_get_f64(g, "headroom.rope_scaling.low_freq_factor", &lo);
    if (st == HR_OK) st = hr_gguf_get_f64(g, "headroom.rope_scaling.high_freq_factor", &hi);
    if (st == HR_OK) st = hr_gguf_get_i64(g, "headroom.rope_scaling.original_context_length", &orig);
    if (st != HR_OK) return hr_err(HR_ERR_FORMAT, "GGUF llama3 RoPE scaling keys are incomplete or mistyped");
    if (!(f >= 1 && f < 1e6) || !(lo > 0) || !(hi > lo) || orig < 1 || orig > HR_MAX_ROPE_ORIGINAL_CTX)
        return hr_err(HR_ERR_FORMAT, "GGUF llama3 RoPE scaling parameters are invalid");
    *rs = (hr_rope_scaling){true, (float)f, (float)lo, (float)hi, (int)orig};
    return HR_OK;
}

static hr_status read_config(const hr_gguf *g, const char *arch, hr_arch id, hr_config *c) {
    memset(c, 0, sizeof *c);
    hr_config_set_arch(c, id);
    bool layer_norm = c->norm == HR_NORM_LAYER;
    hr_status st = get_int(g, arch, "block_count", &c->n_layers, true, 0, HR_MAX_LAYERS);
    if (st == HR_OK) st = get_int(g, arch, "embedding_length", &c->dim, true, 0, HR_MAX_DIM);
    if (st == HR_OK) st = get_int(g, arch, "context_length", &c->seq_len, false, 2048, HR_MAX_SEQ);
    if (st == HR_OK) st = per_layer_int(g, arch, "attention.head_count", c->n_layers, c->n_head, true, 0);
    if (st == HR_OK) st = per_layer_int(g, arch, "feed_forward_length", c->n_layers, c->n_ff, true, 0);
    if (st != HR_OK) return st;
    /* head_count_kv defaults to head_count (plain multi-head attention). */
    char key[128];
    snprintf(key, sizeof key, "%s.attention.head_count_kv", arch);
    if (hr_gguf_find(g, key) >= 0)
        st = per_layer_int(g, arch, "attention.head_count_kv", c->n_layers, c->n_head_kv, true, 0);
    else memcpy(c->n_head_kv, c->n_head, sizeof c->n_head);
    if (st != HR_OK) return st;
    /* A model whose every attention sublayer was dropped (LLM-Drop) has no
     * head size to derive: it must say so with attention.key_length. */
    int max_heads = hr_config_max_heads(c);
    char kl_key[128];
    snprintf(kl_key, sizeof kl_key, "%s.attention.key_length", arch);
    if (max_heads <= 0 && hr_gguf_find(g, kl_key) < 0)
        return hr_err(HR_ERR_FORMAT, "GGUF model has no attention heads in any layer and no attention.key_length");
    int dflt_hd = max_heads > 0 ? c->dim / max_heads : 0;
    if (st == HR_OK) st = get_int(g, arch, "attention.key_length", &c->head_dim, false, dflt_hd, HR_MAX_HEAD_DIM);
    if (st == HR_OK) st = get_float(g, arch, "rope.freq_base", &c->rope_theta, 10000.0f);
    if (st == HR_OK && layer_norm) st = get_float(g, arch, "attention.layer_norm_epsilon", &c->norm_eps, 1e-5f);
    else if (st == HR_OK) st = get_float(g, arch, "attention.layer_norm_rms_epsilon", &c->norm_eps, 1e-5f);
    if (st == HR_OK) st = read_rope_scaling(g, c);
    if (st != HR_OK || c->pos != HR_POS_ROPE) return st;
    int rope_dim = 0;
    st = get_int(g, arch, "rope.dimension_count", &rope_dim, false, c->head_dim, HR_MAX_HEAD_DIM);
    if (st == HR_OK && rope_dim != c->head_dim)
        return hr_err(HR_ERR_UNSUPPORTED, "partial RoPE (%d of %d head dims) is not supported", rope_dim, c->head_dim);
    return st;
}

/* The checks before a tensor is used: a ggml type headroom reads (the
 * container keeps others without data), the shape (ne0 = cols, ne1 =
 * rows), finite Q8_0 scales. (Q8_0 rows that are not a multiple of 32
 * values are refused when the file is opened.) */
static hr_status check_tensor(const hr_gguf_tensor *t, const char *name, int64_t rows, int64_t cols) {
    if (!t->data) {
        const char *tn = hr_ggml_type_name(t->type);
        char ty[64];
        if (strcmp(tn, "unknown") != 0) snprintf(ty, sizeof ty, "%s (%u)", tn, (unsigned)t->type);
        else snprintf(ty, sizeof ty, "%u (no ggml type headroom knows)", (unsigned)t->type);
        return hr_err(HR_ERR_UNSUPPORTED, "tensor '%s' has ggml type %s; headroom reads f32, f16, bf16 and q8_0", name,
                      ty);
    }
    bool shape_ok = t->ne[0] == cols && t->ne[1] == rows && t->ne[2] == 1 && t->ne[3] == 1;
    if (!shape_ok)
        return hr_err(HR_ERR_FORMAT, "tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]", name,
                      (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                      (long long)cols, (long long)rows);
    size_t n_blocks = t->type == HR_GGML_Q8_0 ? t->nbytes / 34 : 0, bad = hr_q8_0_first_bad_scale(t->data, n_blocks);
    if (bad < n_blocks) {
        uint16_t h;
        memcpy(&h, (const uint8_t *)t->data + bad * 34, 2);
        return hr_err(HR_ERR_FORMAT, "tensor '%s': Q8_0 block %zu (row %zu) has a non-finite scale (f16 0x%04x)", name,
                      bad, bad * 32 / (size_t)cols, (unsigned)h);
    }
    return HR_OK;
}

/* A matrix of a type the kernels read in place (f32, bf16, f16, Q8_0)
 * stays in the mapped file as the typed source of (layer, slot), with *out the in-place floats for aligned f32 in
 * headroom's row order, else NULL (hr_model_need_f32 converts). Returns
 * false when the tensor is not such a matrix. */
static bool keep_typed(hr_model *m, const hr_gguf_tensor *t, int64_t rows, int64_t cols, int perm_heads, int layer,
                       hr_slot slot, const float **out, hr_status *st) {
    int wt = hr_wtype_of_ggml(t->type);
    if (slot == (hr_slot)-1 || rows < 2 || wt < 0 || hr_wtype_row_bytes((hr_wtype)wt, (int)cols) == 0) return false;
    if (perm_heads && (int64_t)perm_heads * m->cfg.head_dim != rows) return false; /* the error path below says why */
    if (wt == HR_WT_Q8_0) /* check_tensor read the scales: drop those pages again */
        hr_release_pages(t->data, hr_wtype_row_bytes(HR_WT_Q8_0, (int)cols) * (size_t)rows);
    hr_mat_src src = {t->data, hr_wtype_row_bytes((hr_wtype)wt, (int)cols), (hr_wtype)wt, perm_heads, NULL, false, NULL,
                      false};
    *st = hr_model_set_src(m, layer, slot, src);
    bool in_place = wt == HR_WT_F32 && ((uintptr_t)t->data % sizeof(float)) == 0 && !perm_heads;
    *out = in_place ? t->data : NULL;
    return true;
}

/* Finds a tensor, checks it (check_tensor) and returns it
 * as f32: mmapped when stored as f32, else dequantized into an owned copy —
 * or, for the matrix slots (slot >= 0), kept typed (keep_typed). */
static hr_status load_tensor_p(hr_model *m, const char *name, int64_t rows, int64_t cols, const float **out,
                               bool optional, int perm_heads, int layer, hr_slot slot) {
    *out = NULL;
    const hr_gguf_tensor *t = hr_gguf_find_tensor(m->gguf, name);
    if (!t) {
        if (optional) return HR_OK;
        return hr_err(HR_ERR_FORMAT, "GGUF is missing the tensor '%s'", name);
    }
    hr_status st = check_tensor(t, name, rows, cols);
    if (st != HR_OK) return st;
    size_t n = (size_t)rows * (size_t)cols;
    hr_model_note_dtype(m, hr_ggml_type_name(t->type), (int64_t)n, rows > 1);
    hr_status kst = HR_OK;
    if (keep_typed(m, t, rows, cols, perm_heads, layer, slot, out, &kst)) return kst;
    /* f32 matrices (GPT-2's positions) are read in place; vectors (norms,
     * biases) are copied below: the forward reads them every token, and
     * reading a mapped page can map its whole page-cache folio, MBs of the
     * weights around it that packing had given back */
    if (t->type == HR_GGML_F32 && ((uintptr_t)t->data % sizeof(float)) == 0 && !perm_heads && rows > 1) {
        *out = t->data;
        return HR_OK;
    }
    float *dst = hr_model_alloc_owned(m, n);
    if (!dst) return hr_err(HR_ERR_NOMEM, "out of memory converting '%s'", name);
    st = hr_dequant_to_f32(t->type, t->data, dst, n);
    if (st != HR_OK) hr_err_prefix("tensor '%s'", name);
    if (st == HR_OK && perm_heads) { /* a rotate-half GGUF (qwen2) keeps HF's Q/K row order */
        size_t row = rows == 1 ? 1 : (size_t)cols;
        if ((int64_t)perm_heads * m->cfg.head_dim != (rows == 1 ? cols : rows))
            return hr_err(HR_ERR_FORMAT, "tensor '%s' does not hold %d heads", name, perm_heads);
        float *tmp = malloc((size_t)m->cfg.head_dim * row * sizeof(float)); // (head_dim, row)
        if (!tmp) return hr_err(HR_ERR_NOMEM, "out of memory permuting '%s'", name);
        hr_qk_to_interleaved(dst, perm_heads, m->cfg.head_dim, row, tmp);
        free(tmp);
    }
    *out = dst;
    return st;
}

static hr_status load_tensor(hr_model *m, const char *name, int64_t rows, int64_t cols, const float **out,
                             bool optional) {
    return load_tensor_p(m, name, rows, cols, out, optional, 0, -1, (hr_slot)-1);
}

/* attn_qkv (q + 2 kv rows, biases likewise) split into Q, K, V views. */
static hr_status load_fused_qkv(hr_model *m, int l) {
    const hr_config *c = &m->cfg;
    hr_layer_weights *w = &m->w.layers[l];
    int64_t dim = c->dim, q = (int64_t)c->n_head[l] * c->head_dim, kv = (int64_t)c->n_head_kv[l] * c->head_dim;
    char nw[64], nb[64];
    snprintf(nw, sizeof nw, "blk.%d.%s", l, hr_slot_gguf_name(HR_SLOT_QKV));
    snprintf(nb, sizeof nb, "blk.%d.%s", l, hr_slot_gguf_name(HR_SLOT_QKV_B));
    const float *wt, *bt = NULL;
    hr_status st = load_tensor_p(m, nw, q + 2 * kv, dim, &wt, false, 0, l, HR_SLOT_QKV);
    if (st == HR_OK && c->qkv_bias) st = load_tensor(m, nb, 1, q + 2 * kv, &bt, false);
    if (st != HR_OK) return st;
    const hr_mat_src *fs = hr_model_src(m, l, HR_SLOT_QKV);
    if (fs) { /* kept typed: Q, K and V are row ranges of it */
        hr_mat_src sq = *fs, sk = *fs, sv = *fs;
        sk.data = (const char *)fs->data + (size_t)q * fs->row_bytes;
        sv.data = (const char *)fs->data + (size_t)(q + kv) * fs->row_bytes;
        st = hr_model_set_src(m, l, HR_SLOT_Q, sq);
        if (st == HR_OK) st = hr_model_set_src(m, l, HR_SLOT_K, sk);
        if (st == HR_OK) st = hr_model_set_src(m, l, HR_SLOT_V, sv);
        if (st != HR_OK) return st;
    }
    if (wt) w->wq = wt, w->wk = wt + q * dim, w->wv = wt + (q + kv) * dim;
    if (bt) w->bq = bt, w->bk = bt + q, w->bv = bt + q + kv;
    return HR_OK;
}

static bool is_qkv(hr_slot s) {
    return s == HR_SLOT_Q || s == HR_SLOT_K || s == HR_SLOT_V || s == HR_SLOT_Q_B || s == HR_SLOT_K_B ||
           s == HR_SLOT_V_B;
}

/* Every slot the architecture has, in canonical order. */
static hr_status load_layer(hr_model *m, const hr_arch_info *ai, int l) {
    const hr_config *c = &m->cfg;
    bool fused = false;
    if (ai->gguf_fused_qkv && c->n_head[l] > 0) { /* such a GGUF may also store Q/K/V separately */
        char nm[64];
        snprintf(nm, sizeof nm, "blk.%d.%s", l, hr_slot_gguf_name(HR_SLOT_QKV));
        if ((fused = hr_gguf_find_tensor(m->gguf, nm) != NULL)) {
            hr_status st = load_fused_qkv(m, l);
            if (st != HR_OK) return st;
        }
    }
    for (int i = 0; i < HR_N_LAYER_SLOTS; i++) {
        hr_slot s = (hr_slot)i;
        if (!hr_slot_expected(c, l, s) || (fused && is_qkv(s))) continue;
        int perm = 0;
        if (ai->gguf_qk_rotate_half && (s == HR_SLOT_Q || s == HR_SLOT_Q_B)) perm = c->n_head[l];
        if (ai->gguf_qk_rotate_half && (s == HR_SLOT_K || s == HR_SLOT_K_B)) perm = c->n_head_kv[l];
        int64_t rows, cols;
        hr_slot_shape(c, l, s, &rows, &cols);
        char name[96];
        snprintf(name, sizeof name, "blk.%d.%s", l, hr_slot_gguf_name(s));
        hr_status st = load_tensor_p(m, name, rows, cols, hr_slot_ptr(&m->w, l, s), false, perm, l, s);
        if (st != HR_OK) return st;
    }
    return HR_OK;
}

hr_status hr_load_gguf(hr_model *m, const char *path) {
    hr_status st = hr_gguf_open(path, &m->gguf);
    if (st != HR_OK) return st;
    const char *arch_s;
    size_t arch_len;
    st = hr_gguf_get_str(m->gguf, "general.architecture", &arch_s, &arch_len);
    if (st != HR_OK) return hr_err(HR_ERR_FORMAT, "GGUF has no general.architecture string");
    char arch[32];
    if (arch_len >= sizeof arch) return hr_err(HR_ERR_UNSUPPORTED, "GGUF architecture name is too long");
    memcpy(arch, arch_s, arch_len);
    arch[arch_len] = 0;
    const hr_arch_info *ai = hr_arch_by_gguf_name(arch);
    if (!ai) {
        char names[256];
        hr_arch_list_gguf_names(names, sizeof names);
        return hr_err(HR_ERR_UNSUPPORTED, "GGUF architecture '%s' is not supported (%s)", arch, names);
    }
    st = read_config(m->gguf, arch, ai->arch, &m->cfg);
    if (st != HR_OK) return st;
    hr_config *c = &m->cfg;
    const hr_gguf_tensor *emb = hr_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!emb) return hr_err(HR_ERR_FORMAT, "GGUF is missing the tensor 'token_embd.weight'");
    if (emb->ne[1] <= 0 || emb->ne[1] > HR_MAX_VOCAB)
        return hr_err(HR_ERR_FORMAT, "token_embd.weight has an invalid vocabulary dimension");
    c->vocab_size = (int)emb->ne[1];
    st = hr_config_validate(c);
    if (st != HR_OK) return st;
    const hr_gguf_tensor *rf = hr_gguf_find_tensor(m->gguf, "rope_freqs.weight");
    if (rf && c->pos == HR_POS_ROPE && !c->rope_scaling.llama3) {
        if (rf->type != HR_GGML_F32 || rf->ne[0] != c->head_dim / 2 || rf->ne[1] != 1 || !rf->data)
            return hr_err(HR_ERR_FORMAT, "rope_freqs.weight is not %d f32 values", c->head_dim / 2);
        float *div = malloc(sizeof(float) * (size_t)(c->head_dim / 2)); // (head_dim / 2), copied: may be unaligned
        if (!div) return hr_err(HR_ERR_NOMEM, "out of memory");
        memcpy(div, rf->data, sizeof(float) * (size_t)(c->head_dim / 2));
        st = hr_rope_scaling_from_divisors(c, div);
        free(div);
        if (st != HR_OK) return st;
    }
    st = load_tensor_p(m, "token_embd.weight", c->vocab_size, c->dim, &m->w.tok_embd, false, 0, -1, HR_SLOT_TOK_EMBD);
    if (st == HR_OK) st = load_tensor(m, "output_norm.weight", 1, c->dim, &m->w.out_norm, false);
    if (st == HR_OK && c->norm == HR_NORM_LAYER)
        st = load_tensor(m, "output_norm.bias", 1, c->dim, &m->w.out_norm_b, false);
    if (st == HR_OK && c->pos == HR_POS_LEARNED)
        st = load_tensor(m, "position_embd.weight", c->seq_len, c->dim, &m->w.pos_embd, false);
    if (st == HR_OK)
        st = load_tensor_p(m, "output.weight", c->vocab_size, c->dim, &m->w.output, true, 0, -1, HR_SLOT_OUTPUT);
    if (st != HR_OK) return st;
    c->tied_classifier = hr_gguf_find_tensor(m->gguf, "output.weight") == NULL;
    if (c->tied_classifier) m->w.output = m->w.tok_embd;
    for (int l = 0; l < c->n_layers && st == HR_OK; l++) st = load_layer(m, ai, l);
    return st;
}
