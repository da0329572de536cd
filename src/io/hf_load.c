/* Hugging Face folders: config.json + model.safetensors or shards listed in
 * model.safetensors.index.json. Tensor names and layouts are the
 * architecture row's (model/arch.h): e.g. Llama's model.layers.N.self_attn.
 * q_proj.weight with Q/K rows in the rotate-half layout (permuted per head
 * to interleaved pairs), GPT-2's transformer.h.N.attn.c_attn.weight (fused
 * QKV, Conv1D stored (in, out), transposed in its dtype: f32 rows, or
 * bf16 / f16 rows as a typed source the model owns; the fused QKV split
 * into three matrices). The prefix ("model.",
 * "transformer.") may be absent; lm_head.weight is absent when tied.
 *
 * Per-channel int8 (compressed-tensors "int-quantized" checkpoints, checked
 * in config.json's quantization_config by hf_config.c): a matrix NAME.weight
 * stored as I8 (rows, cols) comes with NAME.weight_scale, (rows, 1) or
 * (rows), F32 / BF16 / F16, and optionally NAME.weight_zero_point (all
 * zero: symmetric). Weight = scale * q. Scales must be finite and zero or
 * at least 2^-100 in magnitude. A matrix the kernels can read in place
 * (cols a multiple of 32) stays int8 in the mapped shard with its scales
 * as f32 (HR_WT_I8); others are converted to f32 (scale * q, the same
 * values). */
#include "io/hf_internal.h"
#include "model/arch.h"

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
    const hr_arch_info *ai;
    const char *prefix; /* the row's prefix, or "" when the checkpoint has none */
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
    return hr_err(HR_ERR_NOT_FOUND,
                  "'%s' has neither model.safetensors nor model.safetensors.index.json "
                  "(PyTorch .bin checkpoints are not read)",
                  dir);
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
    int n_heads; /* PERMUTE_QK */
    bool optional;
    int layer; /* with slot: where a matrix kept typed is recorded */
    int slot;  /* hr_slot of a matrix the kernels may read in place; -1: always f32 */
} tensor_req;

static hr_status check_shape(const hr_st_tensor *t, const char *name, int64_t rows, int64_t cols) {
    bool ok = rows == 1 ? (t->n_dims == 1 && t->shape[0] == cols)
                        : (t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols);
    if (ok) return HR_OK;
    char got[96] = "";
    for (int i = 0; i < t->n_dims && i < 4; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (rows == 1)
        return hr_err(HR_ERR_FORMAT, "tensor '%s' has shape [%s], expected [%lld]", name, got, (long long)cols);
    return hr_err(HR_ERR_FORMAT, "tensor '%s' has shape [%s], expected [%lld, %lld]", name, got, (long long)rows,
                  (long long)cols);
}

/* The dtypes hr_st_to_f32 converts; others are refused naming the tensor. */
static hr_status check_dtype(const hr_st_tensor *t, const char *name) {
    if (t->dtype == HR_ST_F32 || t->dtype == HR_ST_F16 || t->dtype == HR_ST_BF16 || t->dtype == HR_ST_F64) return HR_OK;
    return hr_err(HR_ERR_UNSUPPORTED, "tensor '%s' has dtype %s; headroom reads F32, F16, BF16 and F64", name,
                  hr_st_dtype_name(t->dtype));
}

static void note_dtype(hr_model *m, const hr_st_tensor *t) {
    char d[16];
    snprintf(d, sizeof d, "%s", hr_st_dtype_name(t->dtype));
    for (char *p = d; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    hr_model_note_dtype(m, d, (int64_t)t->n_elements, t->n_dims == 2);
}

/* Q/K rows of an f32 matrix (rows, cols; a bias: cols 1) from rotate-half
 * to interleaved pairs, in place. */
static hr_status permute_qk(const hr_model *m, const tensor_req *rq, float *dst, const char *name) {
    int hd = m->cfg.head_dim;
    size_t cols = rq->rows == 1 ? 1 : (size_t)rq->cols;
    float *tmp = malloc((size_t)hd * cols * sizeof(float)); // (head_dim, cols)
    if (!tmp) return hr_err(HR_ERR_NOMEM, "out of memory permuting '%s'", name);
    hr_qk_to_interleaved(dst, rq->n_heads, hd, cols, tmp);
    free(tmp);
    return HR_OK;
}

/* The f32 scales (rows) of the int8 matrix `name` (NAME.weight) from
 * NAME.weight_scale, checked (see the top of this file); *out owned by m. */
static hr_status i8_scales(loader *ld, const char *name, int64_t rows, float **out) {
    hr_model *m = ld->m;
    char sn[192];
    snprintf(sn, sizeof sn, "%s_scale", name);
    const hr_safetensors *sh = NULL;
    bool dup;
    const hr_st_tensor *s = find(m, sn, &sh, &dup);
    if (!s)
        return hr_err(HR_ERR_FORMAT,
                      "tensor '%s' is I8 but the checkpoint has no '%s' (per-channel int8 needs its scales)", name, sn);
    if (dup) return hr_err(HR_ERR_FORMAT, "tensor '%s' appears in more than one shard", sn);
    bool shape_ok =
        (s->n_dims == 1 && s->shape[0] == rows) || (s->n_dims == 2 && s->shape[0] == rows && s->shape[1] == 1);
    if (!shape_ok)
        return hr_err(HR_ERR_UNSUPPORTED,
                      "tensor '%s' is not one scale per row of '%s' (%lld rows): only per-channel int8 is read", sn,
                      name, (long long)rows);
    if (s->dtype != HR_ST_F32 && s->dtype != HR_ST_BF16 && s->dtype != HR_ST_F16)
        return hr_err(HR_ERR_UNSUPPORTED, "tensor '%s' has dtype %s; int8 scales are read from F32, BF16 or F16", sn,
                      hr_st_dtype_name(s->dtype));
    float *sc = hr_model_alloc_owned(m, (size_t)rows); // (rows)
    if (!sc) return hr_err(HR_ERR_NOMEM, "out of memory reading '%s'", sn);
    hr_status st = hr_st_to_f32(s, sc);
    for (int64_t r = 0; st == HR_OK && r < rows; r++)
        if (!hr_i8_scale_ok(sc[r]))
            st = hr_err(HR_ERR_FORMAT, "tensor '%s' row %lld: scale %g is not finite or below 2^-100 and nonzero", sn,
                        (long long)r, (double)sc[r]);
    snprintf(sn, sizeof sn, "%s_zero_point", name);
    const hr_st_tensor *z = st == HR_OK ? find(m, sn, &sh, &dup) : NULL;
    if (z && (dup || z->n_elements != (uint64_t)rows))
        st = hr_err(HR_ERR_FORMAT, "tensor '%s' is not one zero point per row of '%s' (or appears twice)", sn, name);
    if (z && st == HR_OK) {
        const unsigned char *zb = z->data;
        size_t nb = z->nbytes;
        for (size_t i = 0; i < nb && st == HR_OK; i++)
            if (zb[i]) st = hr_err(HR_ERR_UNSUPPORTED, "tensor '%s' is not zero: only symmetric int8 is read", sn);
    }
    *out = sc;
    return st;
}

/* An I8 tensor t (rows, cols) as headroom's matrix: kept int8 (typed
 * source) when the kernels can read it, else scale * q in an owned f32
 * buffer (Q/K rows permuted). */
static hr_status load_i8(loader *ld, const tensor_req *rq, const hr_st_tensor *t, const char *name, const float **out) {
    hr_model *m = ld->m;
    if (rq->rows < 2 || rq->tf == TRANSPOSE || rq->slot < 0)
        return hr_err(HR_ERR_UNSUPPORTED, "tensor '%s' is I8: headroom reads int8 only for Linear weight matrices",
                      name);
    float *sc = NULL;
    hr_status st = i8_scales(ld, name, rq->rows, &sc);
    if (st != HR_OK) return st;
    hr_model_note_dtype(m, "int8", (int64_t)t->n_elements, true);
    if (hr_wtype_row_bytes(HR_WT_I8, (int)rq->cols)) {
        hr_mat_src src = {t->data, (size_t)rq->cols, HR_WT_I8, rq->tf == PERMUTE_QK ? rq->n_heads : 0, NULL, false, sc,
                          false};
        *out = NULL;
        return hr_model_set_src(m, rq->layer, (hr_slot)rq->slot, src);
    }
    size_t n = (size_t)rq->rows * (size_t)rq->cols;
    float *dst = hr_model_alloc_owned(m, n); // (rows, cols)
    if (!dst) return hr_err(HR_ERR_NOMEM, "out of memory converting '%s'", name);
    for (int64_t r = 0; r < rq->rows; r++)
        hr_dequant_i8((const int8_t *)t->data + (size_t)r * (size_t)rq->cols, sc[r], dst + (size_t)r * (size_t)rq->cols,
                      (size_t)rq->cols);
    *out = dst;
    return rq->tf == PERMUTE_QK ? permute_qk(m, rq, dst, name) : HR_OK;
}

/* dst (cols, rows) = src (rows, cols) transposed, elements of elem bytes
 * (Conv1D weights are stored (in, out)). */
static void transpose(void *dst, const void *src, size_t rows, size_t cols, size_t elem) {
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            memcpy((char *)dst + (c * rows + r) * elem, (const char *)src + (r * cols + c) * elem, elem);
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
    if (t->dtype == HR_ST_I8) {
        hr_status st = check_shape(t, name, rq->rows, rq->cols);
        return st == HR_OK ? load_i8(ld, rq, t, name, out) : st;
    }
    hr_status st = check_dtype(t, name);
    if (st == HR_OK) st = check_shape(t, name, rq->rows, rq->cols);
    if (st != HR_OK) return st;
    note_dtype(m, t);
    int wt = t->dtype == HR_ST_F32    ? HR_WT_F32
             : t->dtype == HR_ST_BF16 ? HR_WT_BF16
             : t->dtype == HR_ST_F16  ? HR_WT_F16
                                      : -1;
    if (rq->slot >= 0 && wt >= 0 && rq->rows > 1 && rq->tf != TRANSPOSE) {
        /* a matrix in f32 / bf16 / f16 stays in the mapped shard (model_internal.h's typed source) */
        hr_mat_src src = {t->data,      hr_wtype_row_bytes((hr_wtype)wt, (int)rq->cols),
                          (hr_wtype)wt, rq->tf == PERMUTE_QK ? rq->n_heads : 0,
                          NULL,         false,
                          NULL,         false};
        bool in_place = wt == HR_WT_F32 && rq->tf == AS_IS && (uintptr_t)t->data % sizeof(float) == 0;
        *out = in_place ? t->data : NULL;
        return hr_model_set_src(m, rq->layer, (hr_slot)rq->slot, src);
    }
    if (rq->slot >= 0 && (wt == HR_WT_BF16 || wt == HR_WT_F16) && rq->rows > 1 && rq->tf == TRANSPOSE) {
        /* a Conv1D matrix in bf16 / f16, stored (in, out): transposed in its
         * dtype into a buffer of the model's (a typed source it owns, packed
         * into panels of that dtype at the end of the load), not to f32 */
        size_t in = (size_t)rq->rows, out_rows = (size_t)rq->cols;             /* headroom's rows: the outputs */
        unsigned char *dst = hr_model_alloc_owned_bytes(m, in * out_rows * 2); // (out_rows, in) 16-bit
        if (!dst) return hr_err(HR_ERR_NOMEM, "out of memory transposing '%s'", name);
        transpose(dst, t->data, in, out_rows, 2);
        hr_st_release(shard, t);
        hr_mat_src src = {dst, in * 2, (hr_wtype)wt, 0, NULL, true, NULL, false};
        return hr_model_set_src(m, rq->layer, (hr_slot)rq->slot, src);
    }
    /* vectors (norms, biases) are copied: see gguf_load.c's load_tensor_p */
    if (t->dtype == HR_ST_F32 && rq->tf == AS_IS && (uintptr_t)t->data % sizeof(float) == 0 && rq->rows > 1) {
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
        if (st == HR_OK) transpose(dst, tmp, (size_t)rq->rows, (size_t)rq->cols, sizeof(float));
        free(tmp);
    } else {
        st = hr_st_to_f32(t, dst);
    }
    if (st == HR_OK && rq->tf == PERMUTE_QK) st = permute_qk(m, rq, dst, name);
    if (st != HR_OK) hr_err_prefix("tensor '%s'", name);
    hr_st_release(shard, t);
    *out = dst;
    return st;
}

/* A fused QKV the loader transposed into one owned buffer p of q + 2 kv
 * rows of row_bytes (GPT-2's Conv1D, f32 or its bf16 / f16) as three owned
 * buffers out (Q, K, V rows); p is freed. Views into one buffer would stay
 * rows plus panels once a context exists; three buffers are each packed
 * once and their rows freed (hr_model_own_panels). Costs one more copy of
 * this one matrix while it runs. */
static hr_status split_qkv(hr_model *m, const void *p, size_t q, size_t kv, size_t row_bytes, void *out[3],
                           const char *name) {
    const size_t n[3] = {q, kv, kv};
    for (size_t i = 0, at = 0; i < 3; at += n[i], i++) {
        out[i] = hr_model_alloc_owned_bytes(m, n[i] * row_bytes); // (n[i], row_bytes)
        if (!out[i]) return hr_err(HR_ERR_NOMEM, "out of memory splitting '%s'", name);
        memcpy(out[i], (const unsigned char *)p + at * row_bytes, n[i] * row_bytes);
    }
    hr_model_free_owned(m, p);
    return HR_OK;
}

/* One of the row's tensors into its slot (layer -1: a model tensor):
 * stored shape from the slot's (Conv1D: transposed), Q/K rows permuted
 * from rotate-half, stacked Q/K/V split: into three owned matrices when
 * the loader made the buffer (GPT-2's transposed Conv1D, in f32 or its own
 * dtype: split_qkv), into views of the mapped rows otherwise (a fused QKV
 * stored as is, (q + 2 kv, dim): no registered architecture has one). */
static hr_status load_slot(loader *ld, const hr_hf_tensor *t, int layer) {
    hr_model *m = ld->m;
    const hr_config *c = &m->cfg;
    int li = layer < 0 ? 0 : layer; /* per-layer sizes are read only for layer tensors */
    int64_t rows, cols;
    hr_slot_shape(c, layer, t->slot, &rows, &cols);
    char name[160];
    int at = layer >= 0 ? snprintf(name, sizeof name, ld->ai->hf_layer, layer) : 0;
    snprintf(name + at, sizeof name - (size_t)at, "%s", t->name);
    bool conv = t->layout == HR_HF_CONV1D && rows > 1;
    bool matrix = t->slot == HR_SLOT_Q || t->slot == HR_SLOT_K || t->slot == HR_SLOT_V || t->slot == HR_SLOT_O ||
                  t->slot == HR_SLOT_GATE || t->slot == HR_SLOT_UP || t->slot == HR_SLOT_DOWN ||
                  t->slot == HR_SLOT_QKV || t->slot == HR_SLOT_TOK_EMBD;
    tensor_req rq = {name,  conv ? cols : rows,        conv ? rows : cols, conv ? TRANSPOSE : AS_IS, 0, false,
                     layer, matrix ? (int)t->slot : -1};
    if (t->layout == HR_HF_ROTATE_HALF) {
        rq.tf = PERMUTE_QK;
        rq.n_heads = t->slot == HR_SLOT_Q || t->slot == HR_SLOT_Q_B ? c->n_head[li] : c->n_head_kv[li];
    }
    const float *p = NULL;
    hr_status st = load(ld, &rq, &p);
    if (st != HR_OK) return st;
    if (t->slot == HR_SLOT_QKV || t->slot == HR_SLOT_QKV_B) { /* (q + 2 kv) rows or elements */
        hr_layer_weights *w = &m->w.layers[li];
        size_t row = t->slot == HR_SLOT_QKV ? (size_t)c->dim : 1;
        size_t q = (size_t)c->n_head[li] * c->head_dim, kv = (size_t)c->n_head_kv[li] * c->head_dim;
        const hr_mat_src *fs = t->slot == HR_SLOT_QKV ? hr_model_src(m, li, HR_SLOT_QKV) : NULL;
        if (fs && fs->owned) { /* transposed in its dtype: three typed buffers of the model's */
            void *b[3];
            hr_mat_src qkv = *fs;
            st = split_qkv(m, qkv.data, q, kv, qkv.row_bytes, b, name);
            static const hr_slot part[3] = {HR_SLOT_Q, HR_SLOT_K, HR_SLOT_V};
            for (int i = 0; i < 3 && st == HR_OK; i++) {
                hr_mat_src s = {b[i], qkv.row_bytes, qkv.type, 0, NULL, true, NULL, false};
                st = hr_model_set_src(m, li, part[i], s);
            }
            return st == HR_OK ? hr_model_set_src(m, li, HR_SLOT_QKV, (hr_mat_src){0}) : st;
        }
        if (fs) { /* kept typed in the mapped shard: Q, K and V are row ranges of it */
            hr_mat_src sq = *fs, sk = *fs, sv = *fs;
            sk.data = (const char *)fs->data + q * fs->row_bytes;
            sv.data = (const char *)fs->data + (q + kv) * fs->row_bytes;
            if (fs->scale) sk.scale = fs->scale + q, sv.scale = fs->scale + q + kv;
            st = hr_model_set_src(m, li, HR_SLOT_Q, sq);
            if (st == HR_OK) st = hr_model_set_src(m, li, HR_SLOT_K, sk);
            if (st == HR_OK) st = hr_model_set_src(m, li, HR_SLOT_V, sv);
            if (st != HR_OK || !p) return st;
        }
        const float **dst = t->slot == HR_SLOT_QKV ? &w->wq : &w->bq;
        const float **dk = t->slot == HR_SLOT_QKV ? &w->wk : &w->bk, **dv = t->slot == HR_SLOT_QKV ? &w->wv : &w->bv;
        if (t->slot == HR_SLOT_QKV && rq.tf == TRANSPOSE) { /* converted to f32 by the loader */
            void *b[3];
            st = split_qkv(m, p, q, kv, row * sizeof(float), b, name);
            if (st == HR_OK) *dst = b[0], *dk = b[1], *dv = b[2];
            return st;
        }
        *dst = p, *dk = p + q * row, *dv = p + (q + kv) * row;
        return HR_OK;
    }
    *hr_slot_ptr(&m->w, li, t->slot) = p;
    return HR_OK;
}

/* The row's tensors that this configuration has, from a {NULL}-ended list. */
static hr_status load_list(loader *ld, const hr_hf_tensor *list, int layer) {
    hr_status st = HR_OK;
    for (const hr_hf_tensor *t = list; t->name && st == HR_OK; t++)
        if (hr_slot_expected(&ld->m->cfg, layer, t->slot)) st = load_slot(ld, t, layer);
    return st;
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
    tensor_req head = {HR_HF_LM_HEAD, m->cfg.vocab_size, m->cfg.dim, AS_IS, 0, false, -1, HR_SLOT_OUTPUT};
    return load(ld, &head, &m->w.output);
}

static hr_status load_weights(loader *ld) {
    const hr_arch_info *ai = ld->ai;
    hr_model *m = ld->m;
    char first[160];
    snprintf(first, sizeof first, "%s%s", ai->hf_prefix, ai->hf_head[0].name);
    bool dup;
    const hr_safetensors *sh;
    ld->prefix = find(m, first, &sh, &dup) ? ai->hf_prefix : "";
    hr_status st = load_list(ld, ai->hf_head, -1);
    if (st == HR_OK) st = load_list(ld, ai->hf_tail, -1);
    for (int l = 0; l < m->cfg.n_layers && st == HR_OK; l++) st = load_list(ld, ai->hf_layer_tensors, l);
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
    loader ld = {m, hr_arch_info_of(m->cfg.arch), ""};
    if (!ld.ai || !ld.ai->hf_layer_tensors)
        return hr_err(HR_ERR_UNSUPPORTED, "architecture %s has no Hugging Face tensor names",
                      hr_arch_name(m->cfg.arch));
    return load_weights(&ld);
}
