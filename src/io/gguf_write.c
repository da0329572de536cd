/* GGUF v3 writer (layout in include/headroom/gguf.h, conventions in
 * include/headroom/save.h). Metadata is built in memory; tensor data is
 * streamed one tensor at a time, converted in chunks. */
#include "headroom/save.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "headroom/gguf.h"
#include "io/hf_internal.h"
#include "io/io_internal.h"
#include "model/arch.h"
#include "model/config.h"
#include "core/strbuf.h"
#include "core/progress.h"

#define ALIGN 32
#define CHUNK 65536

/* GGUF bytes being built: the metadata and the header. */
typedef struct {
    hr_strbuf b;    /* the bytes */
    uint64_t count; /* key/value pairs */
} kvbuf;

static void put(kvbuf *b, const void *src, size_t n) { hr_strbuf_append(&b->b, src, n); }
static void put_u32(kvbuf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(kvbuf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(kvbuf *b, const char *s, size_t len) {
    put_u64(b, len);
    put(b, s, len);
}
static void key(kvbuf *b, const char *k, uint32_t type) {
    put_str(b, k, strlen(k));
    put_u32(b, type);
    b->count++;
}
static void kv_u32(kvbuf *b, const char *k, uint32_t v) { key(b, k, HR_GGUF_UINT32), put_u32(b, v); }
static void kv_f32(kvbuf *b, const char *k, float v) { key(b, k, HR_GGUF_FLOAT32), put(b, &v, 4); }
static void kv_bool(kvbuf *b, const char *k, bool v) {
    uint8_t x = v;
    key(b, k, HR_GGUF_BOOL), put(b, &x, 1);
}
static void kv_str(kvbuf *b, const char *k, const char *s) { key(b, k, HR_GGUF_STRING), put_str(b, s, strlen(s)); }
static void kv_arr_head(kvbuf *b, const char *k, uint32_t elem, uint64_t n) {
    key(b, k, HR_GGUF_ARRAY);
    put_u32(b, elem);
    put_u64(b, n);
}
static void kv_arr_i32(kvbuf *b, const char *k, const int *v, int n) {
    kv_arr_head(b, k, HR_GGUF_INT32, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        int32_t x = v[i];
        put(b, &x, 4);
    }
}

/* The row's GGUF name; its per-layer name (llama.cpp's "deci") for a model
 * whose layers differ in size. */
static const char *gguf_arch(const hr_arch_info *ai, bool uniform) {
    return uniform || !ai->gguf_per_layer_name ? ai->gguf_names[0] : ai->gguf_per_layer_name;
}

static bool is_uniform(const hr_config *c) {
    for (int l = 1; l < c->n_layers; l++)
        if (c->n_head[l] != c->n_head[0] || c->n_head_kv[l] != c->n_head_kv[0] || c->n_ff[l] != c->n_ff[0])
            return false;
    return c->n_head[0] > 0 && c->n_ff[0] > 0;
}

/* llama.cpp's deci reads head sizes only when layer 0 has heads, and
 * requires the MLP tensors in every layer. */
static bool deci_loadable(const hr_config *c) {
    for (int l = 0; l < c->n_layers; l++)
        if (c->n_ff[l] <= 0) return false;
    return c->n_layers == 0 || c->n_head[0] > 0;
}

/* A per-layer size: scalar when uniform, else an int32 array. */
static void kv_layers(kvbuf *b, const char *a, const char *suffix, const int *v, int n, bool uniform) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", a, suffix);
    if (uniform) kv_u32(b, k, (uint32_t)v[0]);
    else kv_arr_i32(b, k, v, n);
}

static void write_arch_kv(kvbuf *b, const hr_config *c, const char *a, bool uniform, hr_dtype dtype) {
    char k[128];
#define K(s) (snprintf(k, sizeof k, "%s.%s", a, s), k)
    kv_str(b, "general.architecture", a);
    kv_str(b, HR_GGUF_WRITER_KEY, "headroom");
    kv_str(b, "general.name", "headroom export");
    /* llama.cpp LLAMA_FTYPE_ALL_F32 / MOSTLY_F16 / MOSTLY_BF16 / MOSTLY_Q8_0 */
    static const uint32_t ftype[] = {0, 1, 32, 7};
    kv_u32(b, "general.file_type", ftype[dtype]);
    kv_u32(b, K("block_count"), (uint32_t)c->n_layers);
    kv_u32(b, K("context_length"), (uint32_t)c->seq_len);
    kv_u32(b, K("embedding_length"), (uint32_t)c->dim);
    kv_u32(b, K("vocab_size"), (uint32_t)c->vocab_size);
    kv_layers(b, a, "feed_forward_length", c->n_ff, c->n_layers, uniform);
    kv_layers(b, a, "attention.head_count", c->n_head, c->n_layers, uniform);
    kv_layers(b, a, "attention.head_count_kv", c->n_head_kv, c->n_layers, uniform);
    /* Readers derive the head size as dim / heads when these keys are absent,
     * llama.cpp from layer 0's head count: explicit for every per-layer model. */
    int mh = hr_config_max_heads(c);
    if (mh == 0 || !uniform || c->head_dim * mh != c->dim) {
        kv_u32(b, K("attention.key_length"), (uint32_t)c->head_dim);
        kv_u32(b, K("attention.value_length"), (uint32_t)c->head_dim);
    }
    if (c->norm == HR_NORM_LAYER) kv_f32(b, K("attention.layer_norm_epsilon"), c->norm_eps);
    else kv_f32(b, K("attention.layer_norm_rms_epsilon"), c->norm_eps);
    if (c->pos == HR_POS_ROPE) {
        kv_u32(b, K("rope.dimension_count"), (uint32_t)c->head_dim);
        kv_f32(b, K("rope.freq_base"), c->rope_theta);
    }
    const hr_rope_scaling *rs = &c->rope_scaling;
    if (rs->llama3) {
        kv_str(b, "headroom.rope_scaling.type", "llama3");
        kv_f32(b, "headroom.rope_scaling.factor", rs->factor);
        kv_f32(b, "headroom.rope_scaling.low_freq_factor", rs->low_freq_factor);
        kv_f32(b, "headroom.rope_scaling.high_freq_factor", rs->high_freq_factor);
        kv_u32(b, "headroom.rope_scaling.original_context_length", (uint32_t)rs->original_ctx);
    }
#undef K
}

static void put_token(kvbuf *b, const hr_tokenizer *t, int32_t id) {
    size_t len;
    const char *s = hr_tokenizer_token_text(t, id, &len);
    put_str(b, s ? s : "", len);
}

/* tokenizer.ggml.pre: llama.cpp's name of the byte-level split regex. */
static void write_pre(kvbuf *b, const hr_tokenizer *t) {
    const char *pre = hr_tokenizer_pre_name(t);
    if (pre) kv_str(b, "tokenizer.ggml.pre", pre);
    else
        hr_log(HR_LOG_WARN, "tokenizer: the split regex of this byte-level vocabulary has no llama.cpp name; "
                            "tokenizer.ggml.pre is not written (readers fall back to GPT-2's)");
}

static void write_merges(kvbuf *b, const hr_tokenizer *t) {
    size_t n = hr_tokenizer_n_merges(t);
    kv_arr_head(b, "tokenizer.ggml.merges", HR_GGUF_STRING, n);
    for (size_t i = 0; i < n; i++) {
        int32_t l = 0, r = 0;
        hr_tokenizer_merge(t, i, &l, &r);
        size_t l0, l1;
        const char *s0 = hr_tokenizer_token_text(t, l, &l0), *s1 = hr_tokenizer_token_text(t, r, &l1);
        put_u64(b, l0 + 1 + l1);
        put(b, s0, l0);
        put(b, " ", 1);
        put(b, s1, l1);
    }
}

/* Byte-level BPE is GGUF "gpt2" (tokens + merges + pre); SentencePiece and
 * character BPE (Llama-2's tokenizer.json) are "llama" with scores, which
 * for character BPE rank pieces in merge order (hr_tokenizer_score). */
static void write_tokenizer_kv(kvbuf *b, const hr_tokenizer *t) {
    bool spm = hr_tokenizer_model(t) != HR_TOKENIZER_BPE_BYTES;
    int32_t n = hr_tokenizer_vocab_size(t);
    kv_str(b, "tokenizer.ggml.model", spm ? "llama" : "gpt2");
    if (!spm) write_pre(b, t);
    kv_arr_head(b, "tokenizer.ggml.tokens", HR_GGUF_STRING, (uint64_t)n);
    for (int32_t i = 0; i < n; i++) put_token(b, t, i);
    if (spm) {
        kv_arr_head(b, "tokenizer.ggml.scores", HR_GGUF_FLOAT32, (uint64_t)n);
        for (int32_t i = 0; i < n; i++) {
            float sc = hr_tokenizer_score(t, i);
            put(b, &sc, 4);
        }
    }
    kv_arr_head(b, "tokenizer.ggml.token_type", HR_GGUF_INT32, (uint64_t)n);
    for (int32_t i = 0; i < n; i++) {
        int32_t ty = (int32_t)hr_tokenizer_token_type(t, i);
        put(b, &ty, 4);
    }
    if (!spm) write_merges(b, t);
    int32_t bos = hr_tokenizer_bos(t), eos = hr_tokenizer_eos(t), unk = hr_tokenizer_unk(t);
    if (bos >= 0) kv_u32(b, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    if (eos >= 0) kv_u32(b, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    if (unk >= 0) kv_u32(b, "tokenizer.ggml.unknown_token_id", (uint32_t)unk);
    kv_bool(b, "tokenizer.ggml.add_bos_token", hr_tokenizer_add_bos_default(t));
    if (hr_tokenizer_add_eos_default(t)) kv_bool(b, "tokenizer.ggml.add_eos_token", true);
    if (spm || hr_tokenizer_add_space_prefix(t))
        kv_bool(b, "tokenizer.ggml.add_space_prefix", hr_tokenizer_add_space_prefix(t));
}

typedef hr_wtensor out_tensor;

typedef struct {
    out_tensor *t;
    int n, cap;
} tensor_list;

static out_tensor *add_tensor(tensor_list *L, const char *name, int64_t rows, int64_t cols, bool vec,
                              const float *data) {
    if (L->n == L->cap) {
        int cap = L->cap ? L->cap * 2 : 64;
        out_tensor *p = realloc(L->t, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        L->t = p;
        L->cap = cap;
    }
    out_tensor *o = &L->t[L->n++];
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", name);
    o->rows = rows, o->cols = cols, o->vec = vec;
    o->part[0] = data, o->part_rows[0] = vec ? cols : rows, o->n_parts = 1;
    return o;
}

/* Fused attn_qkv: Q, K, V rows (or bias elements) concatenated. */
static out_tensor *add_fused(tensor_list *L, const hr_model *m, const hr_tensor_ref *r, bool bias) {
    const hr_layer_weights *w = &m->w.layers[r->layer];
    const hr_config *c = &m->cfg;
    int64_t q = (int64_t)c->n_head[r->layer] * c->head_dim, kv = (int64_t)c->n_head_kv[r->layer] * c->head_dim;
    char name[64];
    snprintf(name, sizeof name, "blk.%d.%s", r->layer, hr_slot_gguf_name(bias ? HR_SLOT_QKV_B : HR_SLOT_QKV));
    out_tensor *o = add_tensor(L, name, bias ? 1 : q + 2 * kv, bias ? q + 2 * kv : c->dim, bias, bias ? w->bq : w->wq);
    if (!o) return NULL;
    o->n_parts = 3;
    o->part[1] = bias ? w->bk : w->wk;
    o->part[2] = bias ? w->bv : w->wv;
    static const hr_slot qkv[3] = {HR_SLOT_Q, HR_SLOT_K, HR_SLOT_V};
    for (int p = 0; p < 3 && !bias; p++)
        if (!o->part[p]) o->tpart[p] = hr_model_src(m, r->layer, qkv[p]);
    /* rows of the weight; elements of the bias */
    o->part_rows[0] = q, o->part_rows[1] = kv, o->part_rows[2] = kv;
    return o;
}

/* Matrices kept typed are written from their typed sources (write_typed):
 * no f32 copy of the model. */
static hr_status plan_tensors(const hr_model *m, const hr_arch_info *ai, tensor_list *L, float *rope_freqs) {
    const hr_config *c = &m->cfg;
    int n = hr_model_tensors(m, NULL, 0);
    hr_tensor_ref *refs = malloc((size_t)(n ? n : 1) * sizeof *refs); // (n)
    if (!refs) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_model_tensors(m, refs, n);
    hr_status st = HR_OK;
    for (int i = 0; i < n && st == HR_OK; i++) {
        const hr_tensor_ref *r = &refs[i];
        bool vec = r->rows == 1;
        out_tensor *o = NULL;
        bool fused = ai->gguf_fused_qkv && r->layer >= 0;
        if (fused && strstr(r->name, ".attn_q.")) {
            o = add_fused(L, m, r, vec);
        } else if (fused && (strstr(r->name, ".attn_k.") || strstr(r->name, ".attn_v."))) {
            continue;
        } else {
            o = add_tensor(L, r->name, vec ? 1 : r->rows, r->cols, vec, r->data);
            if (o && !r->data && !vec) o->tpart[0] = hr_model_src(m, r->layer, r->wslot);
            /* llama.cpp's NEOX-RoPE families (qwen2): undo the load permutation. */
            if (o && ai->gguf_qk_rotate_half && r->layer >= 0) {
                if (strstr(r->name, ".attn_q.")) o->perm_heads = c->n_head[r->layer];
                if (strstr(r->name, ".attn_k.")) o->perm_heads = c->n_head_kv[r->layer];
            }
        }
        if (!o) st = hr_err(HR_ERR_NOMEM, "out of memory");
    }
    free(refs);
    if (st == HR_OK && c->rope_scaling.llama3 && c->pos == HR_POS_ROPE) {
        /* llama.cpp divides each frequency by rope_freqs[i]. */
        int half = c->head_dim / 2;
        hr_llama3_rope_divisors(c->head_dim, c->rope_theta, &c->rope_scaling, rope_freqs);
        if (!add_tensor(L, "rope_freqs.weight", 1, half, true, rope_freqs)) st = hr_err(HR_ERR_NOMEM, "out of memory");
    }
    return st;
}

bool hr_gguf_q8_eligible(const char *name, int64_t rows, int64_t cols) {
    return rows > 1 && cols % 32 == 0 && !strstr(name, "position_embd");
}

/* The written type of a tensor: vectors f32; Q8_0 for named matrices, and
 * for every eligible matrix when dtype is Q8_0 (others then f16, as
 * llama.cpp's convert_hf_to_gguf.py falls back; the learned position
 * embedding f32, as llama-quantize keeps it). */
static uint32_t tensor_type(const out_tensor *o, hr_dtype dtype, const char *const *q8_names, int n_q8) {
    if (o->vec) return HR_GGML_F32;
    for (int i = 0; i < n_q8; i++)
        if (strcmp(q8_names[i], o->name) == 0) return HR_GGML_Q8_0;
    switch (dtype) {
    case HR_DTYPE_F16: return HR_GGML_F16;
    case HR_DTYPE_BF16: return HR_GGML_BF16;
    case HR_DTYPE_Q8_0:
        if (hr_gguf_q8_eligible(o->name, o->rows, o->cols)) return HR_GGML_Q8_0;
        return strstr(o->name, "position_embd") ? HR_GGML_F32 : HR_GGML_F16;
    default: return HR_GGML_F32;
    }
}

/* Bytes of n values (n a multiple of 32 for Q8_0). */
static size_t type_bytes(uint32_t type, size_t n) {
    return type == HR_GGML_Q8_0 ? n / 32 * 34 : type == HR_GGML_F32 ? n * 4 : n * 2;
}

static void encode(uint32_t type, const float *src, size_t n, uint8_t *dst) {
    if (type == HR_GGML_F32) {
        memcpy(dst, src, n * 4);
        return;
    }
    if (type == HR_GGML_Q8_0) {
        hr_quantize_q8_0(src, dst, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint16_t h = type == HR_GGML_F16 ? hr_f32_to_f16(src[i]) : hr_f32_to_bf16(src[i]);
        memcpy(dst + 2 * i, &h, 2);
    }
}

/* Q8_0 scales come from each block's largest |x|: a non-finite weight
 * would give a block that readers refuse. */
static hr_status check_finite(const out_tensor *o, const float *src, size_t n) {
    return o->type == HR_GGML_Q8_0 ? hr_check_finite(o->name, "Q8_0", src, n) : HR_OK;
}

/* A matrix with typed parts, row by row in the order hr_wtensor_gather
 * would give: rows whose source has the written type are copied as raw
 * bytes, others converted through a one-row f32 scratch and encoded.
 * chunk (CHUNK * 4 bytes) buffers the writes. */
static hr_status write_typed(const hr_model *m, hr_atomic_file *af, const out_tensor *o, uint8_t *chunk) {
    int hd = m->cfg.head_dim;
    size_t cols = (size_t)o->cols, ob = type_bytes(o->type, cols), cap = CHUNK * 4, fill = 0;
    float *row = malloc(sizeof(float) * cols);   // (cols) one row as f32
    uint8_t *big = ob > cap ? malloc(ob) : NULL; // (ob) one encoded row longer than the chunk
    if (!row || (ob > cap && !big)) {
        free(row), free(big);
        return hr_err(HR_ERR_NOMEM, "out of memory writing '%s'", o->name);
    }
    hr_status st = HR_OK;
    for (int64_t w = 0; st == HR_OK && w < o->rows; w++) {
        int p;
        int64_t r;
        hr_wtensor_locate(hd, o, w, &p, &r);
        if (fill + ob > cap) {
            st = hr_atomic_write(af, chunk, fill);
            fill = 0;
        }
        uint8_t *dst = big ? big : chunk + fill;
        const hr_mat_src *ts = o->tpart[p];
        if (ts && hr_wtype_ggml(ts->type) == o->type && ts->row_bytes == ob) {
            hr_mat_src_raw_row(ts, hd, (int)r, (int)cols, dst, NULL);
        } else {
            st = hr_wtensor_row(hd, o, w, row);
            if (st == HR_OK) st = check_finite(o, row, cols);
            if (st == HR_OK) encode(o->type, row, cols, dst);
        }
        if (st == HR_OK && big) st = hr_atomic_write(af, big, ob);
        else fill += ob;
    }
    if (st == HR_OK && fill) st = hr_atomic_write(af, chunk, fill);
    free(row), free(big);
    return st;
}

static hr_status write_data(const hr_model *m, hr_atomic_file *af, const tensor_list *L, uint8_t *chunk) {
    static const uint8_t zeros[ALIGN] = {0};
    uint64_t pos = 0;
    hr_status pst = hr_progress_phase("writing GGUF", "tensors", L->n);
    for (int i = 0; pst == HR_OK && i < L->n; i++) {
        const out_tensor *o = &L->t[i];
        hr_status st = HR_OK;
        if (o->offset > pos) st = hr_atomic_write(af, zeros, (size_t)(o->offset - pos));
        if (st == HR_OK && (o->tpart[0] || o->tpart[1] || o->tpart[2])) {
            st = write_typed(m, af, o, chunk);
            if (st != HR_OK) return st;
            pos = o->offset + o->nbytes;
            pst = hr_progress_update(i + 1);
            continue;
        }
        const float *src = NULL;
        float *tmp = NULL;
        if (st == HR_OK) st = hr_wtensor_gather(m->cfg.head_dim, o, &src, &tmp);
        size_t n = (size_t)o->rows * (size_t)o->cols;
        if (st == HR_OK) st = check_finite(o, src, n);
        for (size_t at = 0; st == HR_OK && at < n; at += CHUNK) { /* CHUNK is a multiple of 32 */
            size_t k = n - at < CHUNK ? n - at : CHUNK;
            encode(o->type, src + at, k, chunk);
            st = hr_atomic_write(af, chunk, type_bytes(o->type, k));
        }
        free(tmp);
        if (st != HR_OK) return st;
        pos = o->offset + o->nbytes;
        pst = hr_progress_update(i + 1);
    }
    return pst;
}

/* Sets each tensor's written type; a Q8_0 name that is not an eligible
 * matrix of the file is an error. */
static hr_status assign_types(tensor_list *L, hr_dtype dtype, const char *const *q8_names, int n_q8) {
    for (int i = 0; i < L->n; i++) L->t[i].type = tensor_type(&L->t[i], dtype, q8_names, n_q8);
    for (int k = 0; k < n_q8; k++) {
        int i = 0;
        while (i < L->n && strcmp(L->t[i].name, q8_names[k]) != 0) i++;
        if (i == L->n) return hr_err(HR_ERR_INVALID_ARG, "no tensor '%s' to write as Q8_0", q8_names[k]);
        const out_tensor *o = &L->t[i];
        if (!hr_gguf_q8_eligible(o->name, o->vec ? 1 : o->rows, o->cols))
            return hr_err(HR_ERR_INVALID_ARG,
                          "tensor '%s' (%lld x %lld) cannot be Q8_0: rows must hold a multiple of "
                          "32 values",
                          o->name, (long long)(o->vec ? 1 : o->rows), (long long)o->cols);
    }
    int fallback = 0;
    for (int i = 0; dtype == HR_DTYPE_Q8_0 && i < L->n; i++)
        if (!L->t[i].vec && L->t[i].type != HR_GGML_Q8_0) {
            hr_log(HR_LOG_INFO,
                   "tensor '%s' (%lld x %lld) stays %s in a Q8_0 file (rows of %lld values are not a "
                   "multiple of 32)",
                   L->t[i].name, (long long)L->t[i].rows, (long long)L->t[i].cols, hr_ggml_type_name(L->t[i].type),
                   (long long)L->t[i].cols);
            fallback++;
        }
    if (fallback) hr_log(HR_LOG_WARN, "%d weight matrices are not Q8_0 (see the info lines)", fallback);
    return HR_OK;
}

static hr_status write_file(const hr_model *m, const char *path, const kvbuf *kv, tensor_list *L) {
    kvbuf hdr = {0};
    put(&hdr, "GGUF", 4);
    put_u32(&hdr, 3);
    put_u64(&hdr, (uint64_t)L->n);
    put_u64(&hdr, kv->count);
    put(&hdr, kv->b.p, kv->b.len);
    uint64_t off = 0;
    for (int i = 0; i < L->n; i++) {
        out_tensor *o = &L->t[i];
        o->nbytes = type_bytes(o->type, (size_t)o->rows * (size_t)o->cols);
        o->offset = (off + ALIGN - 1) / ALIGN * ALIGN;
        off = o->offset + o->nbytes;
        put_str(&hdr, o->name, strlen(o->name));
        put_u32(&hdr, o->vec ? 1 : 2);
        put_u64(&hdr, (uint64_t)(o->vec ? o->cols * o->rows : o->cols));
        if (!o->vec) put_u64(&hdr, (uint64_t)o->rows);
        put_u32(&hdr, o->type);
        put_u64(&hdr, o->offset);
    }
    static const uint8_t zeros[ALIGN] = {0};
    put(&hdr, zeros, (ALIGN - hdr.b.len % ALIGN) % ALIGN);
    uint8_t *chunk = malloc(CHUNK * 4); // (CHUNK) encoded values
    if (hdr.b.failed || !chunk) {
        hr_strbuf_free(&hdr.b);
        free(chunk);
        return hr_err(HR_ERR_NOMEM, "out of memory building the GGUF header");
    }
    hr_atomic_file af;
    hr_status st = hr_atomic_open(path, &af);
    if (st == HR_OK) {
        st = hr_atomic_write(&af, hdr.b.p, hdr.b.len);
        if (st == HR_OK) st = write_data(m, &af, L, chunk);
        if (st == HR_OK) st = hr_atomic_commit(&af);
        else hr_atomic_abort(&af);
    }
    hr_strbuf_free(&hdr.b);
    free(chunk);
    return st;
}

hr_status hr_model_save_gguf(const hr_model *m, const hr_tokenizer *tok, const char *path, hr_dtype dtype) {
    return hr_gguf_save_mixed(m, tok, path, dtype, NULL, 0);
}

hr_status hr_gguf_save_mixed(const hr_model *m, const hr_tokenizer *tok, const char *path, hr_dtype dtype,
                             const char *const *q8_names, int n_q8) {
    if (!m || !path) return hr_err(HR_ERR_INVALID_ARG, "no model or output path given");
    if (n_q8 < 0 || (n_q8 > 0 && !q8_names)) return hr_err(HR_ERR_INVALID_ARG, "bad list of Q8_0 tensors");
    if (dtype == HR_DTYPE_INT8)
        return hr_err(HR_ERR_UNSUPPORTED,
                      "GGUF has no per-channel int8 type: write int8 to a Hugging Face folder, or use q8_0 for GGUF");
    if ((unsigned)dtype > HR_DTYPE_KEEP) return hr_err(HR_ERR_INVALID_ARG, "unknown dtype %d", (int)dtype);
    dtype = hr_dtype_for_model(m, dtype, true);
    const hr_config *c = &m->cfg;
    const hr_arch_info *ai = hr_arch_info_of(c->arch);
    if (!ai) return hr_err(HR_ERR_UNSUPPORTED, "unknown architecture id %d", (int)c->arch);
    bool uniform = is_uniform(c);
    if (!uniform && !ai->gguf_per_layer_name)
        hr_log(HR_LOG_WARN, "%s model with per-layer sizes: llama.cpp may not load it", ai->name);
    else if (!uniform && !deci_loadable(c))
        hr_log(HR_LOG_WARN, "deci model with no attention in layer 0 or a layer without MLP: llama.cpp cannot load it");
    if (tok && hr_tokenizer_vocab_size(tok) != c->vocab_size)
        hr_log(HR_LOG_WARN, "tokenizer has %d pieces, the model %d", hr_tokenizer_vocab_size(tok), c->vocab_size);
    kvbuf kv = {0};
    write_arch_kv(&kv, c, gguf_arch(ai, uniform), uniform, dtype);
    if (tok) write_tokenizer_kv(&kv, tok);
    tensor_list L = {0};
    float *rope_freqs = malloc(sizeof(float) * (size_t)(c->head_dim / 2 + 1)); // (head_dim / 2)
    hr_status st =
        kv.b.failed || !rope_freqs ? hr_err(HR_ERR_NOMEM, "out of memory") : plan_tensors(m, ai, &L, rope_freqs);
    if (st == HR_OK) st = assign_types(&L, dtype, q8_names, n_q8);
    hr_progress_run run;
    hr_progress_enter(&run, NULL, NULL, 1);
    if (st == HR_OK) st = write_file(m, path, &kv, &L);
    hr_progress_leave(&run);
    free(rope_freqs);
    free(L.t);
    hr_strbuf_free(&kv.b);
    return st;
}

hr_status hr_dtype_from_name(const char *name, hr_dtype *out) {
    static const struct {
        const char *n;
        hr_dtype d;
    } names[] = {{"f32", HR_DTYPE_F32},     {"float32", HR_DTYPE_F32}, {"f16", HR_DTYPE_F16},
                 {"float16", HR_DTYPE_F16}, {"bf16", HR_DTYPE_BF16},   {"bfloat16", HR_DTYPE_BF16},
                 {"q8_0", HR_DTYPE_Q8_0},   {"Q8_0", HR_DTYPE_Q8_0},   {"int8", HR_DTYPE_INT8}};
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].n) == 0) {
            *out = names[i].d;
            return HR_OK;
        }
    return hr_err(HR_ERR_INVALID_ARG, "unknown dtype '%s' (f32, f16, bf16, q8_0, int8)", name ? name : "");
}

const char *hr_dtype_name(hr_dtype d) {
    return d == HR_DTYPE_F16    ? "f16"
           : d == HR_DTYPE_BF16 ? "bf16"
           : d == HR_DTYPE_Q8_0 ? "q8_0"
           : d == HR_DTYPE_KEEP ? "keep"
           : d == HR_DTYPE_INT8 ? "int8"
                                : "f32";
}

hr_dtype hr_dtype_for_model(const hr_model *m, hr_dtype requested, bool gguf) {
    if (requested != HR_DTYPE_KEEP) return requested;
    hr_dtype d;
    if (!m || hr_dtype_from_name(hr_model_source_dtype(m), &d) != HR_OK || (!gguf && d == HR_DTYPE_Q8_0) ||
        (gguf && d == HR_DTYPE_INT8))
        return HR_DTYPE_F32;
    return d;
}
