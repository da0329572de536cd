/* GGUF reader tests: real files checked against independent sources (the
 * llama2.c checkpoint and tokenizer of stories260K, well-known GPT-2 and
 * Llama vocabulary facts), a hand-built file holding every value type, and
 * hostile inputs that must fail cleanly. */
#include "check.h"
#include "headroom/gguf.h"
#include "core/internal.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* A little-endian byte builder                                        */

typedef struct {
    uint8_t *p; /* (cap) */
    size_t n, cap;
} buf;

static void put(buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) abort();
        b->p = np;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_u8(buf *b, uint8_t v) { put(b, &v, 1); }
static void put_u16(buf *b, uint16_t v) { put(b, &v, 2); }
static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void put_f32(buf *b, float v) { put(b, &v, 4); }
static void put_f64(buf *b, double v) { put(b, &v, 8); }
static void put_str(buf *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void put_key(buf *b, const char *key, uint32_t type) {
    put_str(b, key);
    put_u32(b, type);
}
static void put_arr_head(buf *b, uint32_t elem, uint64_t n) {
    put_u32(b, elem);
    put_u64(b, n);
}
static void put_zeros(buf *b, size_t n) {
    for (size_t i = 0; i < n; i++) put_u8(b, 0);
}
static void pad_to(buf *b, size_t align) { put_zeros(b, (align - b->n % align) % align); }
static void put_header(buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    put(b, "GGUF", 4);
    put_u32(b, version);
    put_u64(b, n_tensors);
    put_u64(b, n_kv);
}
static void put_u64_at(buf *b, size_t at, uint64_t v) { memcpy(b->p + at, &v, 8); }
static void put_u32_at(buf *b, size_t at, uint32_t v) { memcpy(b->p + at, &v, 4); }

typedef struct {
    const char *name;
    uint32_t n_dims;
    uint64_t ne[5];
    uint32_t type;
    uint64_t offset;
} tspec;

static void put_tensor_info(buf *b, const tspec *t) {
    put_str(b, t->name);
    put_u32(b, t->n_dims);
    for (uint32_t d = 0; d < t->n_dims && d < 5; d++) put_u64(b, t->ne[d]);
    put_u32(b, t->type);
    put_u64(b, t->offset);
}

/* A file holding only tensors, an optional u32 general.alignment (used when
 * has_align) and data_bytes of zeros after the aligned header. */
static buf tensor_file(const tspec *t, int nt, bool has_align, uint32_t align, size_t data_bytes) {
    buf b = {0};
    put_header(&b, 3, (uint64_t)nt, has_align ? 1 : 0);
    if (has_align) {
        put_key(&b, "general.alignment", HR_GGUF_UINT32);
        put_u32(&b, align);
    }
    for (int i = 0; i < nt; i++) put_tensor_info(&b, &t[i]);
    pad_to(&b, has_align && align && (align & (align - 1)) == 0 ? align : 32);
    put_zeros(&b, data_bytes);
    return b;
}

/* The hand-built file: every value type, nested arrays and two tensors whose
 * data ends the file, so that every proper prefix is invalid. */
#define SMALL_ALIGN 64
static buf small_file(void) {
    buf b = {0};
    put_header(&b, 3, 2, 22);
    put_key(&b, "general.alignment", HR_GGUF_UINT32);
    put_u32(&b, SMALL_ALIGN);
    put_key(&b, "v.u8", HR_GGUF_UINT8);
    put_u8(&b, 200);
    put_key(&b, "v.i8", HR_GGUF_INT8);
    put_u8(&b, (uint8_t)(int8_t)-100);
    put_key(&b, "v.u16", HR_GGUF_UINT16);
    put_u16(&b, 60000);
    put_key(&b, "v.i16", HR_GGUF_INT16);
    put_u16(&b, (uint16_t)(int16_t)-30000);
    put_key(&b, "v.u32", HR_GGUF_UINT32);
    put_u32(&b, 4000000000u);
    put_key(&b, "v.i32", HR_GGUF_INT32);
    put_u32(&b, (uint32_t)(int32_t)-2000000000);
    put_key(&b, "v.f32", HR_GGUF_FLOAT32);
    put_f32(&b, 1.5f);
    put_key(&b, "v.bool", HR_GGUF_BOOL);
    put_u8(&b, 1);
    put_key(&b, "v.false", HR_GGUF_BOOL);
    put_u8(&b, 0);
    put_key(&b, "v.str", HR_GGUF_STRING);
    put_str(&b, "héllo");
    put_key(&b, "v.empty_str", HR_GGUF_STRING);
    put_str(&b, "");
    put_key(&b, "v.u64", HR_GGUF_UINT64);
    put_u64(&b, 12345678901234ull);
    put_key(&b, "v.u64_big", HR_GGUF_UINT64);
    put_u64(&b, (1ull << 63) + 5);
    put_key(&b, "v.i64", HR_GGUF_INT64);
    put_u64(&b, (uint64_t)(int64_t)-1099511627776ll);
    put_key(&b, "v.f64", HR_GGUF_FLOAT64);
    put_f64(&b, -2.5e300);
    put_key(&b, "a.i32", HR_GGUF_ARRAY);
    put_arr_head(&b, HR_GGUF_INT32, 3);
    put_u32(&b, 1);
    put_u32(&b, (uint32_t)-2);
    put_u32(&b, 3);
    put_key(&b, "a.f32", HR_GGUF_ARRAY);
    put_arr_head(&b, HR_GGUF_FLOAT32, 2);
    put_f32(&b, 0.25f);
    put_f32(&b, -1.0f);
    put_key(&b, "a.str", HR_GGUF_ARRAY);
    put_arr_head(&b, HR_GGUF_STRING, 3);
    put_str(&b, "a");
    put_str(&b, "");
    put_str(&b, "ccc");
    put_key(&b, "a.empty", HR_GGUF_ARRAY);
    put_arr_head(&b, HR_GGUF_UINT8, 0);
    /* [[7, 8] (u16), ["x", "yz"], [[0.5] (f64)], [] (bool)] */
    put_key(&b, "a.nested", HR_GGUF_ARRAY);
    put_arr_head(&b, HR_GGUF_ARRAY, 4);
    put_arr_head(&b, HR_GGUF_UINT16, 2);
    put_u16(&b, 7);
    put_u16(&b, 8);
    put_arr_head(&b, HR_GGUF_STRING, 2);
    put_str(&b, "x");
    put_str(&b, "yz");
    put_arr_head(&b, HR_GGUF_ARRAY, 1);
    put_arr_head(&b, HR_GGUF_FLOAT64, 1);
    put_f64(&b, 0.5);
    put_arr_head(&b, HR_GGUF_BOOL, 0);
    put_key(&b, "a.u64", HR_GGUF_ARRAY);
    put_arr_head(&b, HR_GGUF_UINT64, 2);
    put_u64(&b, 9);
    put_u64(&b, UINT64_MAX);
    tspec w = {"w", 2, {4, 3}, HR_GGML_F32, 0};
    tspec q = {"q", 1, {32}, HR_GGML_Q8_0, 64};
    put_tensor_info(&b, &w);
    put_tensor_info(&b, &q);
    pad_to(&b, SMALL_ALIGN);
    for (int i = 0; i < 12; i++) put_f32(&b, (float)i);
    pad_to(&b, SMALL_ALIGN);
    put_u16(&b, 0x3c00); /* q8_0 block: f16 scale 1.0 then 32 int8 */
    for (int i = 0; i < 32; i++) put_u8(&b, (uint8_t)(int8_t)(i - 16));
    return b;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static void clear_error(void) { hr_err(HR_OK, "%s", ""); }

/* Opens (and closes again) an exact-size heap copy, so that ASan sees any
 * read past the end. */
static hr_status open_copy(const uint8_t *p, size_t n, hr_gguf **g) {
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy) abort();
    if (n) memcpy(copy, p, n);
    hr_status st = hr_gguf_open_memory(n ? copy : NULL, n, g);
    hr_gguf_close(*g);
    *g = NULL;
    free(copy);
    return st;
}

/* Expects opening b to fail with status want and a message. */
static void expect_rejected(const buf *b, hr_status want, const char *what) {
    hr_gguf *g = (hr_gguf *)1;
    clear_error();
    hr_status st = hr_gguf_open_memory(b->p, b->n, &g);
    CHECK(st == want, "%s: got status %d (%s), want %d", what, st, hr_last_error(), want);
    CHECK(g == NULL, "%s: handle must be NULL on failure", what);
    CHECK(hr_last_error()[0] != '\0', "%s: no error message", what);
    if (g && g != (hr_gguf *)1) hr_gguf_close(g);
    /* The same under an exact-size copy, for ASan. */
    st = open_copy(b->p, b->n, &g);
    CHECK(st < 0, "%s: exact-size copy was accepted", what);
}

static bool str_is(const char *s, size_t n, const char *want) {
    return s && n == strlen(want) && memcmp(s, want, n) == 0;
}

static int64_t get_int(const hr_gguf *g, const char *key) {
    int64_t v = -12345;
    hr_status st = hr_gguf_get_i64(g, key, &v);
    CHECK(st == HR_OK, "reading %s: %s", key, hr_last_error());
    return v;
}

/* Reads every value (recursing into arrays) and every tensor byte, so that
 * ASan checks the reader's bounds on whatever a mutated file yields. */
static uint64_t touch_array(const hr_gguf *g, const hr_gguf_value *v, int depth) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < v->n && i < 4096; i++) {
        int64_t iv;
        double dv;
        const char *s;
        size_t len;
        hr_gguf_value sub;
        if (hr_gguf_arr_i64(g, v, i, &iv) == HR_OK) sum += (uint64_t)iv;
        if (hr_gguf_arr_f64(g, v, i, &dv) == HR_OK) sum += dv == dv;
        if (hr_gguf_arr_str(g, v, i, &s, &len) == HR_OK)
            for (size_t k = 0; k < len; k++) sum += (uint8_t)s[k];
        if (hr_gguf_arr_arr(g, v, i, &sub) == HR_OK && depth < 16) sum += touch_array(g, &sub, depth + 1);
    }
    return sum;
}

static uint64_t touch_everything(const hr_gguf *g) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < hr_gguf_n_kv(g); i++) {
        const char *key = hr_gguf_key(g, i);
        hr_gguf_value v = hr_gguf_get(g, i);
        int64_t iv;
        double dv;
        bool bv;
        const char *s;
        size_t len;
        sum += strlen(key);
        if (hr_gguf_get_i64(g, key, &iv) == HR_OK) sum += (uint64_t)iv;
        if (hr_gguf_get_f64(g, key, &dv) == HR_OK) sum += dv == dv;
        if (hr_gguf_get_bool(g, key, &bv) == HR_OK) sum += bv;
        if (hr_gguf_get_str(g, key, &s, &len) == HR_OK)
            for (size_t k = 0; k < len; k++) sum += (uint8_t)s[k];
        if (v.type == HR_GGUF_ARRAY) sum += touch_array(g, &v, 0);
    }
    for (uint64_t i = 0; i < hr_gguf_n_tensors(g); i++) {
        const hr_gguf_tensor *t = hr_gguf_tensor_at(g, i);
        const uint8_t *d = t->data;
        for (size_t k = 0; d && k < t->nbytes; k++) sum += d[k];
        sum += strlen(t->name);
    }
    return sum;
}

static uint8_t *read_whole(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(sz > 0 ? (size_t)sz : 1);
    if (p && fread(p, 1, (size_t)sz, f) != (size_t)sz) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return p;
}

/* llama2.c checkpoint header: the independent source of stories260K shapes. */
typedef struct {
    int dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len;
} l2c_config;

static const float *l2c_load(l2c_config *c, uint8_t **owner) {
    size_t n = 0;
    *owner = read_whole(SHARED("models/stories260K/stories260K.bin"), &n);
    if (!*owner || n < sizeof *c) return NULL;
    memcpy(c, *owner, sizeof *c);
    if (c->vocab < 0) c->vocab = -c->vocab;
    return (const float *)(*owner + sizeof *c);
}

/* ------------------------------------------------------------------ */
/* Real files                                                          */

static void gguf_reads_stories260K_hyperparameters_matching_the_llama2c_header(void) {
    uint8_t *owner;
    l2c_config c;
    const float *w = l2c_load(&c, &owner);
    CHECK(w != NULL, "cannot read stories260K.bin");
    hr_gguf *g = NULL;
    hr_status st = hr_gguf_open(SHARED("models/stories260K/stories260K.gguf"), &g);
    CHECK(st == HR_OK, "open: %s", hr_last_error());
    if (!g || !w) {
        hr_gguf_close(g);
        free(owner);
        return;
    }
    CHECK(hr_gguf_version(g) == 3, "version %u", hr_gguf_version(g));
    CHECK(hr_gguf_alignment(g) == 32, "no general.alignment key means the default 32, got %u", hr_gguf_alignment(g));
    CHECK(hr_gguf_data_offset(g) % 32 == 0, "data offset %zu", hr_gguf_data_offset(g));
    const char *s;
    size_t n;
    CHECK(hr_gguf_get_str(g, "general.architecture", &s, &n) == HR_OK && str_is(s, n, "llama"),
          "architecture is '%.*s'", (int)n, s);
    CHECK(get_int(g, "llama.block_count") == c.n_layers, "block_count vs n_layers %d", c.n_layers);
    CHECK(get_int(g, "llama.embedding_length") == c.dim, "embedding_length vs dim %d", c.dim);
    CHECK(get_int(g, "llama.feed_forward_length") == c.hidden, "ffn vs hidden %d", c.hidden);
    CHECK(get_int(g, "llama.attention.head_count") == c.n_heads, "heads vs %d", c.n_heads);
    CHECK(get_int(g, "llama.attention.head_count_kv") == c.n_kv_heads, "kv heads vs %d", c.n_kv_heads);
    /* The converter writes its own context length (128), not llama2.c's seq_len. */
    CHECK(get_int(g, "llama.context_length") > 0, "context length");
    CHECK(get_int(g, "llama.rope.dimension_count") == c.dim / c.n_heads, "rope dims = head size");
    double eps = 0;
    CHECK(hr_gguf_get_f64(g, "llama.attention.layer_norm_rms_epsilon", &eps) == HR_OK && fabs(eps - 1e-5) < 1e-9,
          "rms epsilon %g (llama2.c uses 1e-5)", eps);
    hr_gguf_value toks;
    CHECK(hr_gguf_get_arr(g, "tokenizer.ggml.tokens", &toks) == HR_OK && toks.elem_type == HR_GGUF_STRING &&
              toks.n == (uint64_t)c.vocab,
          "token count %llu vs vocab %d", (unsigned long long)toks.n, c.vocab);
    /* Wrong-type and missing lookups name the key. */
    int64_t iv;
    CHECK(hr_gguf_get_i64(g, "general.architecture", &iv) == HR_ERR_FORMAT &&
              strstr(hr_last_error(), "general.architecture"),
          "type mismatch: %s", hr_last_error());
    CHECK(hr_gguf_get_i64(g, "no.such.key", &iv) == HR_ERR_NOT_FOUND && strstr(hr_last_error(), "no.such.key"),
          "missing key: %s", hr_last_error());
    hr_gguf_close(g);
    free(owner);
}

static void check_shape(const hr_gguf *g, const char *name, uint32_t n_dims, int64_t ne0, int64_t ne1) {
    const hr_gguf_tensor *t = hr_gguf_find_tensor(g, name);
    CHECK(t != NULL, "tensor %s missing", name);
    if (!t) return;
    CHECK(t->n_dims == n_dims && t->ne[0] == ne0 && t->ne[1] == ne1 && t->ne[2] == 1 && t->ne[3] == 1,
          "%s: n_dims %u ne {%lld, %lld}, want %u {%lld, %lld}", name, t->n_dims, (long long)t->ne[0],
          (long long)t->ne[1], n_dims, (long long)ne0, (long long)ne1);
    CHECK(t->type == HR_GGML_F32 && t->nbytes == (size_t)(ne0 * ne1) * 4 && t->data != NULL, "%s: type %s nbytes %zu",
          name, hr_ggml_type_name(t->type), t->nbytes);
    CHECK(t->offset % hr_gguf_alignment(g) == 0, "%s offset %llu unaligned", name, (unsigned long long)t->offset);
}

static bool data_is(const hr_gguf *g, const char *name, const float *want, size_t n) {
    const hr_gguf_tensor *t = hr_gguf_find_tensor(g, name);
    return t && t->data && t->nbytes == n * 4 && memcmp(t->data, want, n * 4) == 0;
}

static void gguf_stories260K_tensors_have_llama2c_shapes_and_weights(void) {
    uint8_t *owner;
    l2c_config c;
    const float *w = l2c_load(&c, &owner);
    hr_gguf *g = NULL;
    CHECK(hr_gguf_open(SHARED("models/stories260K/stories260K.gguf"), &g) == HR_OK, "open: %s", hr_last_error());
    if (!g || !w) {
        hr_gguf_close(g);
        free(owner);
        return;
    }
    int dim = c.dim, hid = c.hidden, L = c.n_layers, kv = c.dim / c.n_heads * c.n_kv_heads;
    CHECK(hr_gguf_n_tensors(g) == 3 + 9 * (uint64_t)L, "tensor count %llu", (unsigned long long)hr_gguf_n_tensors(g));
    check_shape(g, "token_embd.weight", 2, dim, c.vocab);
    check_shape(g, "output.weight", 2, dim, c.vocab);
    check_shape(g, "output_norm.weight", 1, dim, 1);
    char name[64];
    static const char *const sq[] = {"attn_q", "attn_output"};
    for (int l = 0; l < L; l++) {
        for (int k = 0; k < 2; k++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, sq[k]);
            check_shape(g, name, 2, dim, dim);
        }
        snprintf(name, sizeof name, "blk.%d.attn_k.weight", l);
        check_shape(g, name, 2, dim, kv);
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
        check_shape(g, name, 2, dim, kv);
        snprintf(name, sizeof name, "blk.%d.ffn_gate.weight", l);
        check_shape(g, name, 2, dim, hid);
        snprintf(name, sizeof name, "blk.%d.ffn_up.weight", l);
        check_shape(g, name, 2, dim, hid);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
        check_shape(g, name, 2, hid, dim);
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
        check_shape(g, name, 1, dim, 1);
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
        check_shape(g, name, 1, dim, 1);
    }
    CHECK(hr_gguf_find_tensor(g, "blk.5.attn_q.weight") == NULL, "one layer too many");
    CHECK(hr_gguf_find_tensor(g, "token_embd") == NULL, "prefix of a name is not a name");
    /* llama2.c order: emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final. */
    size_t dd = (size_t)dim * dim, dk = (size_t)dim * kv, dh = (size_t)dim * hid;
    const float *emb = w, *rms_att = emb + (size_t)c.vocab * dim, *wq = rms_att + (size_t)L * dim;
    const float *wk = wq + L * dd, *wv = wk + L * dk, *wo = wv + L * dk;
    const float *rms_ffn = wo + L * dd, *w1 = rms_ffn + (size_t)L * dim, *w2 = w1 + L * dh;
    const float *w3 = w2 + L * dh, *rms_final = w3 + L * dh;
    CHECK(data_is(g, "token_embd.weight", emb, (size_t)c.vocab * dim), "embedding data differs");
    CHECK(data_is(g, "output.weight", emb, (size_t)c.vocab * dim), "shared classifier differs");
    CHECK(data_is(g, "output_norm.weight", rms_final, (size_t)dim), "final norm differs");
    for (int l = 0; l < L; l++) {
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
        CHECK(data_is(g, name, rms_att + (size_t)l * dim, (size_t)dim), "%s differs", name);
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
        CHECK(data_is(g, name, rms_ffn + (size_t)l * dim, (size_t)dim), "%s differs", name);
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", l);
        CHECK(data_is(g, name, wq + l * dd, dd), "%s differs", name);
        snprintf(name, sizeof name, "blk.%d.attn_k.weight", l);
        CHECK(data_is(g, name, wk + l * dk, dk), "%s differs", name);
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
        CHECK(data_is(g, name, wv + l * dk, dk), "%s differs", name);
        snprintf(name, sizeof name, "blk.%d.attn_output.weight", l);
        CHECK(data_is(g, name, wo + l * dd, dd), "%s differs", name);
        snprintf(name, sizeof name, "blk.%d.ffn_gate.weight", l);
        CHECK(data_is(g, name, w1 + l * dh, dh), "%s differs", name);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
        CHECK(data_is(g, name, w2 + l * dh, dh), "%s differs", name);
        snprintf(name, sizeof name, "blk.%d.ffn_up.weight", l);
        CHECK(data_is(g, name, w3 + l * dh, dh), "%s differs", name);
    }
    hr_gguf_close(g);
    free(owner);
}

/* tok512.bin (llama2.c): i32 max_len, then per token f32 score, i32 len, bytes.
 * It writes spaces where sentencepiece (and the GGUF) use U+2581, and wraps
 * <s> and </s> in newlines. */
static void gguf_stories260K_vocab_matches_the_llama2c_tokenizer(void) {
    size_t tn = 0;
    uint8_t *tb = read_whole(SHARED("models/stories260K/tok512.bin"), &tn);
    hr_gguf *g = NULL;
    CHECK(hr_gguf_open(SHARED("models/stories260K/stories260K.gguf"), &g) == HR_OK, "open: %s", hr_last_error());
    hr_gguf_value toks = {0}, scores = {0};
    CHECK(g && hr_gguf_get_arr(g, "tokenizer.ggml.tokens", &toks) == HR_OK, "no tokens");
    CHECK(g && hr_gguf_get_arr(g, "tokenizer.ggml.scores", &scores) == HR_OK, "no scores");
    if (!g || !tb || toks.n != 512 || scores.n != 512) {
        CHECK(0, "cannot compare (tok512 %s, %llu tokens)", tb ? "read" : "missing", (unsigned long long)toks.n);
        hr_gguf_close(g);
        free(tb);
        return;
    }
    size_t pos = 4;
    int bad_str = 0, bad_score = 0;
    for (uint64_t i = 0; i < 512 && pos + 8 <= tn; i++) {
        float score;
        int32_t len;
        memcpy(&score, tb + pos, 4);
        memcpy(&len, tb + pos + 4, 4);
        pos += 8;
        if (len < 0 || pos + (size_t)len > tn) break;
        const char *ref = (const char *)tb + pos;
        size_t ref_n = (size_t)len;
        pos += (size_t)len;
        if (ref_n >= 2 && ref[0] == '\n' && ref[ref_n - 1] == '\n') {
            ref++;
            ref_n -= 2;
        }
        const char *s = NULL;
        size_t n = 0;
        double sc = 0;
        CHECK(hr_gguf_arr_str(g, &toks, i, &s, &n) == HR_OK, "token %llu", (unsigned long long)i);
        CHECK(hr_gguf_arr_f64(g, &scores, i, &sc) == HR_OK, "score %llu", (unsigned long long)i);
        char conv[256]; /* GGUF token with U+2581 turned back into ' ' */
        size_t cn = 0;
        for (size_t k = 0; k < n && cn < sizeof conv; k++) {
            if (k + 2 < n && memcmp(s + k, "\xe2\x96\x81", 3) == 0) {
                conv[cn++] = ' ';
                k += 2;
            } else conv[cn++] = s[k];
        }
        if (cn != ref_n || memcmp(conv, ref, cn) != 0) bad_str++;
        if ((float)sc != score) bad_score++;
    }
    CHECK(pos == tn, "tok512.bin not fully consumed (%zu of %zu)", pos, tn);
    CHECK(bad_str == 0, "%d token strings differ from tok512.bin", bad_str);
    CHECK(bad_score == 0, "%d scores differ from tok512.bin", bad_score);
    hr_gguf_close(g);
    free(tb);
}

static bool token_is(const hr_gguf *g, const hr_gguf_value *v, uint64_t i, const char *want) {
    const char *s = NULL;
    size_t n = 0;
    return hr_gguf_arr_str(g, v, i, &s, &n) == HR_OK && str_is(s, n, want);
}

static void gguf_reads_the_llama_spm_vocab(void) {
    hr_gguf *g = NULL;
    CHECK(hr_gguf_open(SHARED("models/gguf-vocab/ggml-vocab-llama-spm.gguf"), &g) == HR_OK, "open: %s",
          hr_last_error());
    if (!g) return;
    CHECK(hr_gguf_n_tensors(g) == 0, "vocab-only file has no tensors");
    hr_gguf_value toks = {0}, scores = {0}, types = {0};
    CHECK(hr_gguf_get_arr(g, "tokenizer.ggml.tokens", &toks) == HR_OK && toks.n == 32000,
          "Llama has 32000 tokens, got %llu", (unsigned long long)toks.n);
    CHECK(hr_gguf_get_arr(g, "tokenizer.ggml.scores", &scores) == HR_OK && scores.n == 32000 &&
              scores.elem_type == HR_GGUF_FLOAT32,
          "scores");
    CHECK(hr_gguf_get_arr(g, "tokenizer.ggml.token_type", &types) == HR_OK && types.n == 32000, "token types");
    CHECK(get_int(g, "llama.vocab_size") == 32000, "vocab_size key");
    CHECK(get_int(g, "tokenizer.ggml.bos_token_id") == 1, "bos");
    CHECK(get_int(g, "tokenizer.ggml.eos_token_id") == 2, "eos");
    bool add_bos = false, add_eos = true;
    CHECK(hr_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos) == HR_OK && add_bos, "add_bos");
    CHECK(hr_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &add_eos) == HR_OK && !add_eos, "add_eos");
    if (toks.n != 32000) {
        hr_gguf_close(g);
        return;
    }
    /* Well-known ids of the Llama sentencepiece vocabulary. */
    CHECK(token_is(g, &toks, 0, "<unk>") && token_is(g, &toks, 1, "<s>") && token_is(g, &toks, 2, "</s>"),
          "special tokens");
    CHECK(token_is(g, &toks, 13, "<0x0A>"), "newline byte token");
    CHECK(token_is(g, &toks, 29871, "\xe2\x96\x81"), "29871 is the lone space piece");
    CHECK(token_is(g, &toks, 15043, "\xe2\x96\x81Hello"), "15043 is ' Hello'");
    CHECK(token_is(g, &toks, 3186, "\xe2\x96\x81world"), "3186 is ' world'");
    int bad_bytes = 0;
    for (int b = 0; b < 256; b++) {
        char want[8];
        snprintf(want, sizeof want, "<0x%02X>", b);
        int64_t ty = 0;
        double sc = 1;
        if (!token_is(g, &toks, 3 + (uint64_t)b, want) || hr_gguf_arr_i64(g, &types, 3 + (uint64_t)b, &ty) != HR_OK ||
            ty != 6 || hr_gguf_arr_f64(g, &scores, 3 + (uint64_t)b, &sc) != HR_OK || sc != 0)
            bad_bytes++;
    }
    CHECK(bad_bytes == 0, "%d of the 256 byte tokens are not <0xNN> with type 6 (byte), score 0", bad_bytes);
    double s_first = 0, s_last = 0;
    CHECK(hr_gguf_arr_f64(g, &scores, 260, &s_first) == HR_OK && hr_gguf_arr_f64(g, &scores, 31999, &s_last) == HR_OK &&
              s_first > s_last && s_last < 0,
          "sentencepiece scores fall with the id (%g .. %g)", s_first, s_last);
    const char *s;
    size_t n;
    CHECK(hr_gguf_arr_str(g, &toks, 32000, &s, &n) == HR_ERR_RANGE, "index past the end");
    CHECK(hr_gguf_arr_f64(g, &toks, 0, &s_first) == HR_ERR_FORMAT, "strings are not floats");
    hr_gguf_close(g);
}

static void gguf_reads_the_gpt2_vocab_and_merges(void) {
    hr_gguf *g = NULL;
    CHECK(hr_gguf_open(SHARED("models/gguf-vocab/ggml-vocab-gpt-2.gguf"), &g) == HR_OK, "open: %s", hr_last_error());
    if (!g) return;
    const char *s;
    size_t n;
    CHECK(hr_gguf_get_str(g, "tokenizer.ggml.model", &s, &n) == HR_OK && str_is(s, n, "gpt2"), "model");
    hr_gguf_value toks = {0}, merges = {0};
    CHECK(hr_gguf_get_arr(g, "tokenizer.ggml.tokens", &toks) == HR_OK && toks.n == 50257,
          "GPT-2 has 50257 tokens, got %llu", (unsigned long long)toks.n);
    CHECK(hr_gguf_get_arr(g, "tokenizer.ggml.merges", &merges) == HR_OK && merges.n == 50000 &&
              merges.elem_type == HR_GGUF_STRING,
          "GPT-2 has 50000 merges, got %llu", (unsigned long long)merges.n);
    if (toks.n != 50257 || merges.n != 50000) {
        hr_gguf_close(g);
        return;
    }
    CHECK(token_is(g, &toks, 0, "!") && token_is(g, &toks, 262, "\xc4\xa0the") &&
              token_is(g, &toks, 995, "\xc4\xa0world") && token_is(g, &toks, 15496, "Hello") &&
              token_is(g, &toks, 50256, "<|endoftext|>"),
          "well-known GPT-2 ids");
    CHECK(token_is(g, &merges, 0, "\xc4\xa0 t") && token_is(g, &merges, 1, "\xc4\xa0 a") &&
              token_is(g, &merges, 2, "h e"),
          "first merges");
    /* GPT-2 token 256 + i is the result of merge i. */
    int bad = 0;
    for (uint64_t i = 0; i < 50000; i++) {
        const char *m, *t;
        size_t mn, tn;
        if (hr_gguf_arr_str(g, &merges, i, &m, &mn) != HR_OK || hr_gguf_arr_str(g, &toks, 256 + i, &t, &tn) != HR_OK) {
            bad++;
            continue;
        }
        const char *sp = memchr(m, ' ', mn);
        if (!sp || mn - 1 != tn || memcmp(m, t, (size_t)(sp - m)) != 0 ||
            memcmp(sp + 1, t + (sp - m), mn - (size_t)(sp - m) - 1) != 0)
            bad++;
    }
    CHECK(bad == 0, "%d merges do not join into token 256 + i", bad);
    hr_gguf_close(g);
}

static void gguf_reads_every_token_and_score_of_a_32000_piece_vocab(void) {
    hr_gguf *g = NULL;
    hr_status st = hr_gguf_open(SHARED("models/gguf-vocab/ggml-vocab-llama-spm.gguf"), &g);
    hr_gguf_value toks = {0}, scores = {0};
    uint64_t sum = 0;
    if (st == HR_OK && hr_gguf_get_arr(g, "tokenizer.ggml.tokens", &toks) == HR_OK &&
        hr_gguf_get_arr(g, "tokenizer.ggml.scores", &scores) == HR_OK) {
        for (uint64_t i = 0; i < toks.n; i++) {
            const char *s;
            size_t n;
            double sc;
            if (hr_gguf_arr_str(g, &toks, i, &s, &n) == HR_OK) sum += n;
            if (hr_gguf_arr_f64(g, &scores, i, &sc) == HR_OK) sum += sc < 0;
        }
    }
    hr_gguf_close(g);
    CHECK(st == HR_OK && toks.n == 32000 && scores.n == 32000 && sum > 32000, "vocab not read");
}

/* ------------------------------------------------------------------ */
/* The hand-built file                                                 */

static void gguf_round_trips_every_value_type_of_a_built_file(void) {
    buf b = small_file();
    hr_gguf *g = NULL;
    CHECK(hr_gguf_open_memory(b.p, b.n, &g) == HR_OK, "open: %s", hr_last_error());
    if (!g) {
        free(b.p);
        return;
    }
    CHECK(hr_gguf_n_kv(g) == 22 && hr_gguf_alignment(g) == SMALL_ALIGN, "kv %llu align %u",
          (unsigned long long)hr_gguf_n_kv(g), hr_gguf_alignment(g));
    CHECK(get_int(g, "v.u8") == 200 && get_int(g, "v.i8") == -100, "8-bit");
    CHECK(get_int(g, "v.u16") == 60000 && get_int(g, "v.i16") == -30000, "16-bit");
    CHECK(get_int(g, "v.u32") == 4000000000ll && get_int(g, "v.i32") == -2000000000, "32-bit");
    CHECK(get_int(g, "v.u64") == 12345678901234ll && get_int(g, "v.i64") == -1099511627776ll, "64-bit");
    int64_t iv;
    CHECK(hr_gguf_get_i64(g, "v.u64_big", &iv) == HR_ERR_RANGE && strstr(hr_last_error(), "v.u64_big"),
          "u64 above INT64_MAX does not fit");
    double dv = 0;
    CHECK(hr_gguf_get_f64(g, "v.f32", &dv) == HR_OK && dv == 1.5, "f32 %g", dv);
    CHECK(hr_gguf_get_f64(g, "v.f64", &dv) == HR_OK && dv == -2.5e300, "f64 %g", dv);
    CHECK(hr_gguf_get_f64(g, "v.u8", &dv) == HR_ERR_FORMAT, "integers are not floats");
    CHECK(hr_gguf_get_i64(g, "v.f32", &iv) == HR_ERR_FORMAT, "floats are not integers");
    bool bv = false;
    CHECK(hr_gguf_get_bool(g, "v.bool", &bv) == HR_OK && bv, "bool true");
    CHECK(hr_gguf_get_bool(g, "v.false", &bv) == HR_OK && !bv, "bool false");
    CHECK(hr_gguf_get_i64(g, "v.bool", &iv) == HR_ERR_FORMAT, "bools are not integers");
    const char *s = NULL;
    size_t n = 0;
    CHECK(hr_gguf_get_str(g, "v.str", &s, &n) == HR_OK && str_is(s, n, "héllo"), "string");
    CHECK(hr_gguf_get_str(g, "v.empty_str", &s, &n) == HR_OK && n == 0, "empty string");
    CHECK(hr_gguf_get_str(g, "a.str", &s, &n) == HR_ERR_FORMAT, "arrays are not strings");
    int64_t k = hr_gguf_find(g, "v.str");
    CHECK(k >= 0 && strcmp(hr_gguf_key(g, (uint64_t)k), "v.str") == 0, "find/key");
    hr_gguf_value v = hr_gguf_get(g, (uint64_t)k);
    CHECK(v.type == HR_GGUF_STRING && v.n == strlen("héllo"), "string view");
    CHECK(hr_gguf_find(g, "v.st") < 0 && hr_gguf_key(g, 22) == NULL, "absent key");
    CHECK(hr_gguf_get(g, 99).type == HR_GGUF_TYPE_COUNT, "index past the end");

    hr_gguf_value a;
    CHECK(hr_gguf_get_arr(g, "a.i32", &a) == HR_OK && a.elem_type == HR_GGUF_INT32 && a.n == 3, "a.i32");
    int64_t e0 = 0, e1 = 0, e2 = 0;
    CHECK(hr_gguf_arr_i64(g, &a, 0, &e0) == HR_OK && hr_gguf_arr_i64(g, &a, 1, &e1) == HR_OK &&
              hr_gguf_arr_i64(g, &a, 2, &e2) == HR_OK && e0 == 1 && e1 == -2 && e2 == 3,
          "i32 elements");
    CHECK(hr_gguf_arr_i64(g, &a, 3, &e0) == HR_ERR_RANGE, "i32 index 3");
    CHECK(hr_gguf_get_arr(g, "a.f32", &a) == HR_OK && hr_gguf_arr_f64(g, &a, 1, &dv) == HR_OK && dv == -1.0,
          "f32 element");
    CHECK(hr_gguf_get_arr(g, "a.u64", &a) == HR_OK && hr_gguf_arr_i64(g, &a, 0, &e0) == HR_OK && e0 == 9 &&
              hr_gguf_arr_i64(g, &a, 1, &e0) == HR_ERR_RANGE,
          "u64 elements");
    CHECK(hr_gguf_get_arr(g, "a.str", &a) == HR_OK && a.n == 3 && token_is(g, &a, 0, "a") && token_is(g, &a, 1, "") &&
              token_is(g, &a, 2, "ccc"),
          "string elements");
    CHECK(hr_gguf_get_arr(g, "a.empty", &a) == HR_OK && a.n == 0 && hr_gguf_arr_i64(g, &a, 0, &e0) == HR_ERR_RANGE,
          "empty array");
    CHECK(hr_gguf_get_arr(g, "v.u8", &a) == HR_ERR_FORMAT, "scalars are not arrays");

    hr_gguf_value nest, sub, subsub;
    CHECK(hr_gguf_get_arr(g, "a.nested", &nest) == HR_OK && nest.elem_type == HR_GGUF_ARRAY && nest.n == 4, "nested");
    CHECK(hr_gguf_arr_arr(g, &nest, 0, &sub) == HR_OK && sub.elem_type == HR_GGUF_UINT16 && sub.n == 2 &&
              hr_gguf_arr_i64(g, &sub, 1, &e0) == HR_OK && e0 == 8,
          "nested u16");
    CHECK(hr_gguf_arr_arr(g, &nest, 1, &sub) == HR_OK && sub.elem_type == HR_GGUF_STRING && token_is(g, &sub, 0, "x") &&
              token_is(g, &sub, 1, "yz"),
          "nested strings");
    CHECK(hr_gguf_arr_arr(g, &nest, 2, &sub) == HR_OK && hr_gguf_arr_arr(g, &sub, 0, &subsub) == HR_OK &&
              subsub.elem_type == HR_GGUF_FLOAT64 && hr_gguf_arr_f64(g, &subsub, 0, &dv) == HR_OK && dv == 0.5,
          "doubly nested f64");
    CHECK(hr_gguf_arr_arr(g, &nest, 3, &sub) == HR_OK && sub.elem_type == HR_GGUF_BOOL && sub.n == 0, "nested empty");
    CHECK(hr_gguf_arr_arr(g, &nest, 4, &sub) == HR_ERR_RANGE, "nested index 4");
    CHECK(hr_gguf_arr_str(g, &nest, 0, &s, &n) == HR_ERR_FORMAT, "arrays are not strings");

    const hr_gguf_tensor *w = hr_gguf_find_tensor(g, "w"), *q = hr_gguf_find_tensor(g, "q");
    CHECK(w && w->n_dims == 2 && w->ne[0] == 4 && w->ne[1] == 3 && w->nbytes == 48 && w->data, "tensor w");
    CHECK(w && w->data && ((const float *)w->data)[11] == 11.0f, "w data");
    CHECK(q && q->type == HR_GGML_Q8_0 && q->nbytes == 34 && q->data && (const uint8_t *)q->data + 34 == b.p + b.n,
          "tensor q ends the file");
    CHECK(hr_gguf_tensor_at(g, 2) == NULL && hr_gguf_tensor_at(g, 0) == w, "tensor_at");
    CHECK(hr_gguf_data_offset(g) % SMALL_ALIGN == 0 && w && (const uint8_t *)w->data == b.p + hr_gguf_data_offset(g),
          "data section aligned");
    hr_gguf_close(g);
    free(b.p);
}

static void gguf_accepts_version_2_and_files_ending_at_the_header(void) {
    buf b = {0};
    put_header(&b, 2, 0, 1);
    put_key(&b, "k", HR_GGUF_STRING);
    put_str(&b, "abc"); /* 24 + 13 + 11 bytes: not a multiple of 32 */
    hr_gguf *g = NULL;
    CHECK(hr_gguf_open_memory(b.p, b.n, &g) == HR_OK, "v2: %s", hr_last_error());
    CHECK(g && hr_gguf_version(g) == 2, "version 2");
    hr_gguf_close(g);
    free(b.p);
}

static void gguf_keeps_tensors_of_unknown_ggml_types_without_data(void) {
    tspec t[2] = {{"k4", 1, {256}, 12 /* q4_K */, 0}, {"f", 1, {8}, HR_GGML_F16, 256}};
    buf b = tensor_file(t, 2, false, 0, 256 + 16);
    hr_gguf *g = NULL;
    CHECK(hr_gguf_open_memory(b.p, b.n, &g) == HR_OK, "open: %s", hr_last_error());
    const hr_gguf_tensor *k = g ? hr_gguf_find_tensor(g, "k4") : NULL;
    const hr_gguf_tensor *f = g ? hr_gguf_find_tensor(g, "f") : NULL;
    CHECK(k && k->data == NULL && k->nbytes == 0 && k->type == 12, "unknown type kept without data");
    CHECK(f && f->nbytes == 16 && f->data, "f16 tensor");
    CHECK(strcmp(hr_ggml_type_name(12), "q4_K") == 0 && strcmp(hr_ggml_type_name(30), "bf16") == 0 &&
              strcmp(hr_ggml_type_name(1000), "unknown") == 0,
          "type names");
    CHECK(hr_ggml_type_nbytes(HR_GGML_Q8_0, 64) == 68 && hr_ggml_type_nbytes(HR_GGML_Q8_0, 33) == 0 &&
              hr_ggml_type_nbytes(HR_GGML_BF16, 3) == 6 && hr_ggml_type_nbytes(12, 256) == 0,
          "type byte sizes");
    hr_gguf_close(g);
    free(b.p);
}

/* ------------------------------------------------------------------ */
/* Hostile inputs                                                      */

static void gguf_rejects_empty_and_missing_files(void) {
    buf empty = {0};
    expect_rejected(&empty, HR_ERR_FORMAT, "empty buffer");
    char path[512];
    snprintf(path, sizeof path, "%s/test_gguf_empty.gguf", HR_BINARY_DIR);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot create %s", path);
    if (f) fclose(f);
    hr_gguf *g = NULL;
    clear_error();
    CHECK(hr_gguf_open(path, &g) == HR_ERR_FORMAT && g == NULL && strstr(hr_last_error(), path), "empty file: %s",
          hr_last_error());
    remove(path);
    clear_error();
    CHECK(hr_gguf_open(HR_BINARY_DIR "/no/such.gguf", &g) == HR_ERR_IO && hr_last_error()[0], "missing file: %s",
          hr_last_error());
    CHECK(!hr_gguf_is_gguf("GGU", 3) && hr_gguf_is_gguf("GGUFxx", 6), "magic detection");
    hr_gguf_close(NULL);
}

static void gguf_rejects_every_truncation_of_a_built_file(void) {
    buf b = small_file();
    int accepted = 0, silent = 0;
    for (size_t len = 0; len < b.n; len++) {
        hr_gguf *g = NULL;
        clear_error();
        if (open_copy(b.p, len, &g) >= 0) accepted++;
        else if (!hr_last_error()[0]) silent++;
    }
    CHECK(accepted == 0, "%d of %zu prefixes accepted", accepted, b.n);
    CHECK(silent == 0, "%d prefixes failed without a message", silent);
    free(b.p);
}

static void gguf_rejects_truncations_of_stories260K(void) {
    size_t n = 0;
    uint8_t *p = read_whole(SHARED("models/stories260K/stories260K.gguf"), &n);
    CHECK(p != NULL && n > 20000, "cannot read stories260K.gguf");
    if (!p) return;
    int accepted = 0, silent = 0, tried = 0;
    /* Every prefix through the header region, then strides through the data. */
    for (size_t len = 0; len < n; len += len < 16384 ? 1 : 24571) {
        hr_gguf *g = NULL;
        clear_error();
        tried++;
        if (open_copy(p, len, &g) >= 0) accepted++;
        else if (!hr_last_error()[0]) silent++;
    }
    hr_gguf *g = NULL;
    CHECK(open_copy(p, n - 1, &g) < 0, "one byte short accepted");
    CHECK(open_copy(p, n, &g) == HR_OK, "whole file: %s", hr_last_error());
    CHECK(accepted == 0, "%d of %d prefixes accepted", accepted, tried);
    CHECK(silent == 0, "%d prefixes failed without a message", silent);
    free(p);
}

static void gguf_rejects_wrong_magic_and_unsupported_versions(void) {
    buf b = small_file();
    b.p[0] = 'g';
    expect_rejected(&b, HR_ERR_FORMAT, "wrong magic");
    b.p[0] = 'G';
    put_u32_at(&b, 4, 1);
    expect_rejected(&b, HR_ERR_UNSUPPORTED, "version 1");
    CHECK(strstr(hr_last_error(), "version 1") != NULL, "message names the version: %s", hr_last_error());
    put_u32_at(&b, 4, 99);
    expect_rejected(&b, HR_ERR_UNSUPPORTED, "version 99");
    put_u32_at(&b, 4, 0x03000000u);
    expect_rejected(&b, HR_ERR_UNSUPPORTED, "big-endian version 3");
    free(b.p);
}

static void gguf_rejects_absurd_counts_before_allocating(void) {
    buf b = small_file();
    put_u64_at(&b, 16, UINT64_MAX);
    expect_rejected(&b, HR_ERR_FORMAT, "n_kv = 2^64-1");
    put_u64_at(&b, 16, 1ull << 40);
    expect_rejected(&b, HR_ERR_FORMAT, "n_kv = 2^40");
    put_u64_at(&b, 16, 22);
    put_u64_at(&b, 8, 1ull << 62);
    expect_rejected(&b, HR_ERR_FORMAT, "n_tensors = 2^62");
    put_u64_at(&b, 8, 2);
    put_u64_at(&b, 16, 23); /* one more key than present: runs into the tensor infos */
    expect_rejected(&b, HR_ERR_FORMAT, "n_kv one too many");
    free(b.p);

    buf a = {0}; /* an array whose count cannot fit */
    put_header(&a, 3, 0, 1);
    put_key(&a, "a", HR_GGUF_ARRAY);
    put_arr_head(&a, HR_GGUF_UINT32, 1ull << 61);
    put_zeros(&a, 64);
    expect_rejected(&a, HR_ERR_FORMAT, "array of 2^61 u32");
    put_u32_at(&a, 24 + 9 + 4, HR_GGUF_STRING);
    expect_rejected(&a, HR_ERR_FORMAT, "array of 2^61 strings");
    put_u32_at(&a, 24 + 9 + 4, HR_GGUF_ARRAY);
    expect_rejected(&a, HR_ERR_FORMAT, "array of 2^61 arrays");
    free(a.p);
}

static void gguf_rejects_absurd_string_lengths(void) {
    buf k = {0}; /* key length 2^63 */
    put_header(&k, 3, 0, 1);
    put_u64(&k, 1ull << 63);
    put_zeros(&k, 64);
    expect_rejected(&k, HR_ERR_FORMAT, "key length 2^63");
    free(k.p);
    buf v = {0}; /* string value length 2^63 */
    put_header(&v, 3, 0, 1);
    put_key(&v, "s", HR_GGUF_STRING);
    put_u64(&v, 1ull << 63);
    put_zeros(&v, 64);
    expect_rejected(&v, HR_ERR_FORMAT, "string value length 2^63");
    free(v.p);
    buf e = {0}; /* second element of a string array claims UINT64_MAX bytes */
    put_header(&e, 3, 0, 1);
    put_key(&e, "a", HR_GGUF_ARRAY);
    put_arr_head(&e, HR_GGUF_STRING, 2);
    put_str(&e, "ok");
    put_u64(&e, UINT64_MAX);
    put_zeros(&e, 64);
    expect_rejected(&e, HR_ERR_FORMAT, "string element length 2^64-1");
    free(e.p);
    buf t = {0}; /* tensor name length 2^63 */
    put_header(&t, 3, 1, 0);
    put_u64(&t, 1ull << 63);
    put_zeros(&t, 64);
    expect_rejected(&t, HR_ERR_FORMAT, "tensor name length 2^63");
    free(t.p);
    buf z = {0}; /* a key with an embedded NUL cannot be looked up */
    put_header(&z, 3, 0, 1);
    put_u64(&z, 3);
    put(&z, "a\0b", 3);
    put_u32(&z, HR_GGUF_UINT8);
    put_u8(&z, 1);
    expect_rejected(&z, HR_ERR_FORMAT, "key with a NUL byte");
    free(z.p);
}

static void gguf_rejects_unknown_value_types(void) {
    static const uint32_t bad[] = {13, 0xFFFFFFFFu};
    for (int i = 0; i < 2; i++) {
        buf b = {0};
        put_header(&b, 3, 0, 1);
        put_key(&b, "k", bad[i]);
        put_zeros(&b, 64);
        expect_rejected(&b, HR_ERR_FORMAT, "unknown value type");
        CHECK(strstr(hr_last_error(), "'k'") != NULL, "message names the key: %s", hr_last_error());
        free(b.p);
        buf a = {0};
        put_header(&a, 3, 0, 1);
        put_key(&a, "k", HR_GGUF_ARRAY);
        put_arr_head(&a, bad[i], 1);
        put_zeros(&a, 64);
        expect_rejected(&a, HR_ERR_FORMAT, "unknown array element type");
        free(a.p);
    }
}

/* An array nested `levels` deep around an empty u8 array. */
static buf nested_file(int levels) {
    buf b = {0};
    put_header(&b, 3, 0, 1);
    put_key(&b, "deep", HR_GGUF_ARRAY);
    for (int i = 1; i < levels; i++) put_arr_head(&b, HR_GGUF_ARRAY, 1);
    put_arr_head(&b, HR_GGUF_UINT8, 0);
    return b;
}

static void gguf_rejects_arrays_nested_too_deep(void) {
    buf ok = nested_file(8);
    hr_gguf *g = NULL;
    CHECK(hr_gguf_open_memory(ok.p, ok.n, &g) == HR_OK, "8 levels: %s", hr_last_error());
    hr_gguf_value v;
    int depth = 0;
    if (g && hr_gguf_get_arr(g, "deep", &v) == HR_OK) {
        depth = 1;
        while (v.elem_type == HR_GGUF_ARRAY && hr_gguf_arr_arr(g, &v, 0, &v) == HR_OK) depth++;
    }
    CHECK(depth == 8, "walked %d levels", depth);
    hr_gguf_close(g);
    free(ok.p);
    buf deep = nested_file(9);
    expect_rejected(&deep, HR_ERR_FORMAT, "9 levels");
    CHECK(strstr(hr_last_error(), "nested") != NULL, "message says nested: %s", hr_last_error());
    free(deep.p);
    buf huge = nested_file(100000); /* would overflow a naive recursion */
    expect_rejected(&huge, HR_ERR_FORMAT, "100000 levels");
    free(huge.p);
}

static void gguf_rejects_bad_dimension_counts_and_sizes(void) {
    struct {
        tspec t;
        const char *what;
    } cases[] = {
        {{"t", 0, {0}, HR_GGML_F32, 0}, "n_dims 0"},
        {{"t", 5, {1, 1, 1, 1, 1}, HR_GGML_F32, 0}, "n_dims 5"},
        {{"t", 2, {4, 0}, HR_GGML_F32, 0}, "ne 0"},
        {{"t", 2, {1ull << 62, 4}, HR_GGML_F32, 0}, "ne product overflowing int64"},
        {{"t", 2, {UINT64_MAX, 1}, HR_GGML_F32, 0}, "ne above INT64_MAX"},
        {{"t", 2, {1ull << 62, 1}, HR_GGML_F32, 0}, "byte size overflowing size_t"},
        {{"t", 4, {1ull << 20, 1ull << 20, 1ull << 20, 1ull << 2}, HR_GGML_F32, 0}, "byte size 2^64 over four dims"},
        {{"t", 1, {1ull << 40}, HR_GGML_F32, 0}, "tensor far larger than the file"},
        {{"t", 1, {16}, HR_GGML_Q8_0, 0}, "q8_0 row not a multiple of 32"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf b = tensor_file(&cases[i].t, 1, false, 0, 256);
        expect_rejected(&b, HR_ERR_FORMAT, cases[i].what);
        free(b.p);
    }
}

static void gguf_rejects_tensor_offset_past_end_of_file(void) {
    tspec t = {"t", 1, {4}, HR_GGML_F32, 1024};
    buf b = tensor_file(&t, 1, false, 0, 64);
    expect_rejected(&b, HR_ERR_FORMAT, "offset past end");
    CHECK(strstr(hr_last_error(), "'t'") != NULL, "message names the tensor: %s", hr_last_error());
    free(b.p);
    tspec u = {"t", 1, {4}, 12 /* unknown type */, 1ull << 62};
    b = tensor_file(&u, 1, false, 0, 64);
    expect_rejected(&b, HR_ERR_FORMAT, "unknown-type tensor offset past end");
    free(b.p);
    tspec e = {"t", 1, {16}, HR_GGML_F32, 32}; /* 64 bytes at 32 in a 64-byte section */
    b = tensor_file(&e, 1, false, 0, 64);
    expect_rejected(&b, HR_ERR_FORMAT, "tensor running past the end");
    free(b.p);
    tspec ok = {"t", 1, {8}, HR_GGML_F32, 32};
    b = tensor_file(&ok, 1, false, 0, 64);
    hr_gguf *g = NULL;
    CHECK(hr_gguf_open_memory(b.p, b.n, &g) == HR_OK, "tensor ending at EOF: %s", hr_last_error());
    hr_gguf_close(g);
    free(b.p);
}

static void gguf_rejects_unaligned_tensor_offsets(void) {
    tspec t = {"t", 1, {4}, HR_GGML_F32, 4};
    buf b = tensor_file(&t, 1, false, 0, 64);
    expect_rejected(&b, HR_ERR_FORMAT, "offset 4 with alignment 32");
    free(b.p);
    tspec u = {"t", 1, {4}, HR_GGML_F32, 16};
    b = tensor_file(&u, 1, true, 16, 64);
    hr_gguf *g = NULL;
    CHECK(hr_gguf_open_memory(b.p, b.n, &g) == HR_OK, "offset 16 with alignment 16: %s", hr_last_error());
    hr_gguf_close(g);
    free(b.p);
}

static void gguf_rejects_alignment_that_is_not_a_power_of_two(void) {
    tspec t = {"t", 1, {4}, HR_GGML_F32, 0};
    static const uint32_t bad[] = {0, 3, 48, 0xFFFFFFFFu};
    for (int i = 0; i < 4; i++) {
        buf b = tensor_file(&t, 1, true, bad[i], 64);
        expect_rejected(&b, HR_ERR_FORMAT, "bad alignment");
        CHECK(strstr(hr_last_error(), "general.alignment") != NULL, "message: %s", hr_last_error());
        free(b.p);
    }
    buf s = {0};
    put_header(&s, 3, 0, 1);
    put_key(&s, "general.alignment", HR_GGUF_STRING);
    put_str(&s, "32");
    expect_rejected(&s, HR_ERR_FORMAT, "alignment as a string");
    free(s.p);
}

static void gguf_rejects_duplicate_tensor_names_and_keys(void) {
    tspec t[2] = {{"same", 1, {4}, HR_GGML_F32, 0}, {"same", 1, {4}, HR_GGML_F32, 32}};
    buf b = tensor_file(t, 2, false, 0, 64);
    expect_rejected(&b, HR_ERR_FORMAT, "duplicate tensor name");
    CHECK(strstr(hr_last_error(), "same") != NULL, "message names the tensor: %s", hr_last_error());
    free(b.p);
    buf k = {0};
    put_header(&k, 3, 0, 2);
    put_key(&k, "dup", HR_GGUF_UINT8);
    put_u8(&k, 1);
    put_key(&k, "dup", HR_GGUF_UINT32);
    put_u32(&k, 2);
    expect_rejected(&k, HR_ERR_FORMAT, "duplicate key");
    CHECK(strstr(hr_last_error(), "dup") != NULL, "message names the key: %s", hr_last_error());
    free(k.p);
}

static void gguf_survives_random_corruption_of_a_built_file(void) {
    buf b = small_file();
    uint8_t *m = malloc(b.n);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    int opened = 0, silent = 0;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(m, b.p, b.n);
        int flips = 1 + iter % 4;
        for (int f = 0; f < flips; f++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            size_t at = (size_t)(x % b.n);
            /* Alternate random bytes with values that stress counts. */
            static const uint8_t vals[] = {0x00, 0xFF, 0x7F, 0x80, 0x01, 0x0D};
            m[at] = (x >> 32) & 1 ? (uint8_t)(x >> 40) : vals[(x >> 48) % 6];
        }
        hr_gguf *g = NULL;
        clear_error();
        if (hr_gguf_open_memory(m, b.n, &g) == HR_OK) {
            opened++;
            (void)touch_everything(g);
            hr_gguf_close(g);
        } else if (!hr_last_error()[0]) {
            silent++;
        }
    }
    CHECK(silent == 0, "%d corrupted files failed without a message", silent);
    CHECK(opened > 0, "some corruptions (e.g. in values) must still open");
    free(m);
    free(b.p);
}

int main(void) {
    HR_T_REQUIRE_SHARED("models/stories260K/stories260K.bin", "models/stories260K/stories260K.gguf",
                        "models/stories260K/tok512.bin", "models/gguf-vocab/ggml-vocab-gpt-2.gguf",
                        "models/gguf-vocab/ggml-vocab-llama-spm.gguf");
    RUN(gguf_reads_stories260K_hyperparameters_matching_the_llama2c_header);
    RUN(gguf_stories260K_tensors_have_llama2c_shapes_and_weights);
    RUN(gguf_stories260K_vocab_matches_the_llama2c_tokenizer);
    RUN(gguf_reads_the_llama_spm_vocab);
    RUN(gguf_reads_the_gpt2_vocab_and_merges);
    RUN(gguf_reads_every_token_and_score_of_a_32000_piece_vocab);
    RUN(gguf_round_trips_every_value_type_of_a_built_file);
    RUN(gguf_accepts_version_2_and_files_ending_at_the_header);
    RUN(gguf_keeps_tensors_of_unknown_ggml_types_without_data);
    RUN(gguf_rejects_empty_and_missing_files);
    RUN(gguf_rejects_every_truncation_of_a_built_file);
    RUN(gguf_rejects_truncations_of_stories260K);
    RUN(gguf_rejects_wrong_magic_and_unsupported_versions);
    RUN(gguf_rejects_absurd_counts_before_allocating);
    RUN(gguf_rejects_absurd_string_lengths);
    RUN(gguf_rejects_unknown_value_types);
    RUN(gguf_rejects_arrays_nested_too_deep);
    RUN(gguf_rejects_bad_dimension_counts_and_sizes);
    RUN(gguf_rejects_tensor_offset_past_end_of_file);
    RUN(gguf_rejects_unaligned_tensor_offsets);
    RUN(gguf_rejects_alignment_that_is_not_a_power_of_two);
    RUN(gguf_rejects_duplicate_tensor_names_and_keys);
    RUN(gguf_survives_random_corruption_of_a_built_file);
    TEST_MAIN_END();
}
