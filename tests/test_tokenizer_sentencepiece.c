/* SentencePiece .model files: the protobuf wire reader against the
 * encodings the protobuf documentation spells out, small models written
 * here field by field (their ids worked out by hand from the BPE rule),
 * Llama-2's own tokenizer.model against llama.cpp's GGUF conversion of it,
 * and hostile files (truncated, malformed, absurd, unsupported). The
 * Llama-SPM test vectors and round trips are in test_tokenizer.c. */
#include "check.h"
#include "tok_util.h"
#include "tokenizer/protobuf.h"
#include "tokenizer/tok_internal.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define LLAMA2_MODEL SHARED("data/tokenizers/llama2/tokenizer.model")
#define SPM_GGUF SHARED("models/gguf-vocab/ggml-vocab-llama-spm.gguf")
#define TOK512 SHARED("models/stories260K/tok512.bin")

/* ---- a protobuf writer (the test's own, from the wire-format rules) ---- */

typedef struct {
    uint8_t *a;
    size_t n, cap;
} pbw;

static void w_bytes(pbw *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->a = realloc(b->a, b->cap);
    }
    if (n) memcpy(b->a + b->n, p, n);
    b->n += n;
}
static void w_varint(pbw *b, uint64_t v) {
    do {
        uint8_t c = (uint8_t)(v & 0x7F);
        v >>= 7;
        if (v) c |= 0x80;
        w_bytes(b, &c, 1);
    } while (v);
}
static void w_tag(pbw *b, uint32_t field, int wire) { w_varint(b, (uint64_t)field << 3 | (uint64_t)wire); }
static void w_int(pbw *b, uint32_t field, int64_t v) { w_tag(b, field, 0), w_varint(b, (uint64_t)v); }
static void w_len(pbw *b, uint32_t field, const void *p, size_t n) {
    w_tag(b, field, 2);
    w_varint(b, n);
    w_bytes(b, p, n);
}
static void w_str(pbw *b, uint32_t field, const char *s) { w_len(b, field, s, strlen(s)); }
static void w_msg(pbw *b, uint32_t field, pbw *m) {
    w_len(b, field, m->a, m->n);
    free(m->a);
    *m = (pbw){0};
}
static void w_f32(pbw *b, uint32_t field, float f) {
    uint8_t le[4];
    uint32_t u;
    memcpy(&u, &f, 4);
    for (int i = 0; i < 4; i++) le[i] = (uint8_t)(u >> (8 * i));
    w_tag(b, field, 5);
    w_bytes(b, le, 4);
}
static void w_f64(pbw *b, uint32_t field, uint64_t v) {
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)(v >> (8 * i));
    w_tag(b, field, 1);
    w_bytes(b, le, 8);
}

/* ---- small models ---- */

/* The normal pieces after <unk>, <s>, </s> and the 256 byte pieces (ids
 * 259.. in this order). */
static const struct {
    const char *s;
    float score;
} k_normal[] = {
    {"\xE2\x96\x81t", -1},
    {"he", -2},
    {"\xE2\x96\x81the", -3},
    {"\xE2\x96\x81", -4},
    {"t", -5},
    {"h", -6},
    {"e", -7},
    {"a", -8},
    {"\xE2\x96\x81"
     "a",
     -9},
};
enum { ID_T_ = 259, ID_HE, ID_THE, ID_SP, ID_T, ID_H, ID_E, ID_A, ID_A_ };
#define BYTE_ID(b) (3 + (b))

typedef struct {
    int model_type; /* 2 = BPE */
    int byte_fallback;
    int dummy_prefix;
    int remove_ws; /* -1 = field absent (default true) */
    int escape_ws; /* -1 = absent (default true) */
    int ws_suffix;
    int64_t unk, bos, eos;
    const char *norm_name;
    const char *charsmap; /* NULL = absent */
    bool no_trainer, no_normalizer;
    bool unknown_fields; /* sprinkle fields SentencePiece does not define */
    int skip_byte;       /* leave out piece <0xNN> (-1 = none) */
} spec;

static spec default_spec(void) {
    return (spec){.model_type = 2,
                  .byte_fallback = 1,
                  .dummy_prefix = 1,
                  .remove_ws = 0,
                  .escape_ws = 1,
                  .unk = 0,
                  .bos = 1,
                  .eos = 2,
                  .norm_name = "identity",
                  .skip_byte = -1};
}

static void add_piece(pbw *b, const char *s, float score, int type, bool extra) {
    pbw m = {0};
    if (extra) w_int(&m, 17, 12345);
    w_str(&m, 1, s);
    w_f32(&m, 2, score);
    if (type != 1) w_int(&m, 3, type);
    if (extra) w_str(&m, 200, "extension");
    w_msg(b, 1, &m);
}

static pbw build_model(const spec *s) {
    pbw b = {0}, m = {0};
    if (s->unknown_fields) w_int(&b, 99, 7), w_f64(&b, 100, 0x0123456789ABCDEFull);
    add_piece(&b, "<unk>", 0, 2, s->unknown_fields);
    add_piece(&b, "<s>", 0, 3, false);
    add_piece(&b, "</s>", 0, 3, false);
    for (int i = 0; i < 256; i++) {
        if (i == s->skip_byte) continue;
        char p[8];
        snprintf(p, sizeof p, "<0x%02X>", i);
        add_piece(&b, p, 0, 6, false);
    }
    for (size_t i = 0; i < sizeof k_normal / sizeof k_normal[0]; i++)
        add_piece(&b, k_normal[i].s, k_normal[i].score, 1, s->unknown_fields && i == 2);
    if (!s->no_trainer) {
        if (s->unknown_fields)
            w_str(&m, 1, "corpus.txt"), w_int(&m, 4, 268), w_int(&m, 41, 5); /* bos later overridden */
        w_int(&m, 3, s->model_type);
        if (s->ws_suffix) w_int(&m, 24, 1);
        w_int(&m, 35, s->byte_fallback);
        w_int(&m, 40, s->unk);
        w_int(&m, 41, s->bos);
        w_int(&m, 42, s->eos);
        w_int(&m, 43, -1);
        if (s->unknown_fields) w_f32(&m, 10, 0.9995f), w_f64(&m, 300, 1);
        w_msg(&b, 2, &m);
    }
    if (!s->no_normalizer) {
        w_str(&m, 1, s->norm_name);
        if (s->charsmap) w_str(&m, 2, s->charsmap);
        w_int(&m, 3, s->dummy_prefix);
        if (s->remove_ws >= 0) w_int(&m, 4, s->remove_ws);
        if (s->escape_ws >= 0) w_int(&m, 5, s->escape_ws);
        if (s->unknown_fields) w_str(&m, 6, "");
        w_msg(&b, 3, &m);
    }
    if (s->unknown_fields) {
        pbw d = {0};
        w_str(&d, 1, "nmt_nfkc"), w_str(&d, 2, "\x01\x02\x03");
        w_msg(&b, 5, &d); /* denormalizer_spec: skipped */
        w_f32(&b, 102, 1.5f);
        w_str(&b, 101, "trailing");
    }
    return b;
}

static hr_tokenizer *load_mem(const pbw *b, hr_status *st) {
    hr_tokenizer *t = NULL;
    *st = tok_load_spm_model(b->a, b->n, &t);
    return t;
}

static bool ids_are(const hr_tokenizer *t, const char *text, bool bos, const int32_t *want, size_t n_want) {
    hr_encode_params p = hr_encode_default_params();
    p.add_bos = bos;
    int32_t *ids = NULL;
    size_t n = 0;
    hr_status st = hr_tokenizer_encode(t, text, strlen(text), &p, &ids, &n);
    bool same = st == HR_OK && n == n_want && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
    if (!same) {
        fprintf(stderr, "    '%s' -> st %d, %zu ids:", text, st, n);
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, " (want");
        for (size_t i = 0; i < n_want; i++) fprintf(stderr, " %d", want[i]);
        fprintf(stderr, ")\n");
    }
    free(ids);
    return same;
}

#define IDS(...) (const int32_t[]){__VA_ARGS__}, sizeof((const int32_t[]){__VA_ARGS__}) / sizeof(int32_t)

static char *write_tmp(const void *data, size_t n, const char *dir, const char *name) {
    char *path = malloc(4096);
    if (dir) snprintf(path, 4096, "%s/%s", dir, name);
    else snprintf(path, 4096, "/tmp/hr_test_spm_XXXXXX");
    int fd = dir ? open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644) : mkstemp(path);
    CHECK(fd >= 0, "cannot create %s", path);
    CHECK(fd < 0 || write(fd, data, n) == (ssize_t)n, "short write");
    if (fd >= 0) close(fd);
    return path;
}

/* ---- tests ---- */

static bool reads(const char *bytes, size_t n, uint64_t want_v, int want_wire, uint32_t want_field) {
    pb_reader r = pb_reader_of((const uint8_t *)bytes, n);
    pb_field f;
    bool more;
    return pb_next(&r, &f, &more) == HR_OK && more && f.v == want_v && f.wire == want_wire && f.number == want_field &&
           r.p == r.end;
}

static void wire_reader_decodes_the_protobuf_documentation_examples(void) {
    /* field 1 varint 150 is 08 96 01; 300 is AC 02; field 2 string "testing" */
    CHECK(reads("\x08\x96\x01", 3, 150, PB_VARINT, 1), "08 96 01 is field 1 = 150");
    CHECK(reads("\x08\xAC\x02", 3, 300, PB_VARINT, 1), "08 AC 02 is field 1 = 300");
    /* int32 -1: ten bytes, sign-extended to 64 bits */
    const char minus1[] = "\x08\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\x01";
    CHECK(reads(minus1, 11, UINT64_MAX, PB_VARINT, 1), "-1 as ten bytes");
    pb_reader r = pb_reader_of((const uint8_t *)minus1, 11);
    pb_field f;
    bool more;
    int32_t i32 = 0;
    CHECK(pb_next(&r, &f, &more) == HR_OK && pb_int32(&f, "x", &i32) == HR_OK && i32 == -1, "int32 -1: %d", i32);
    r = pb_reader_of((const uint8_t *)"\x12\x07testing", 9);
    CHECK(pb_next(&r, &f, &more) == HR_OK && more && f.number == 2 && f.wire == PB_LEN && f.len == 7 &&
              memcmp(f.data, "testing", 7) == 0,
          "field 2 string 'testing'");
    /* float 1.0 is 00 00 80 3F; field 19 (tag 0x9D 0x01) */
    r = pb_reader_of((const uint8_t *)"\x9D\x01\x00\x00\x80\x3F", 6);
    float fl = 0;
    CHECK(pb_next(&r, &f, &more) == HR_OK && f.number == 19 && pb_float(&f, "x", &fl) == HR_OK && fl == 1.0f,
          "fixed32 1.0: %g", fl);
    CHECK(reads("\x09\x01\x02\x03\x04\x05\x06\x07\x08", 9, 0x0807060504030201ull, PB_FIXED64, 1), "fixed64 LE");
    /* the largest field number, 2^29 - 1 */
    CHECK(reads("\xF8\xFF\xFF\xFF\x0F\x00", 6, 0, PB_VARINT, (1u << 29) - 1), "field 2^29-1");
    r = pb_reader_of(NULL, 0);
    CHECK(pb_next(&r, &f, &more) == HR_OK && !more, "an empty message has no fields");
}

static void wire_reader_rejects_what_the_format_does_not_allow(void) {
    static const struct {
        const char *what, *bytes;
        size_t n;
        const char *msg;
    } cases[] = {
        {"truncated tag", "\x80", 1, "truncated varint"},
        {"truncated value", "\x08\xFF\xFF", 3, "truncated varint"},
        {"varint past 64 bits", "\x08\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\x02", 11, "does not fit in 64 bits"},
        {"field number 0", "\x00\x01", 2, "field number 0"},
        {"field number 2^29", "\x80\x80\x80\x80\x10\x00", 6, "outside 1..2^29-1"},
        {"group start", "\x0B", 1, "group"},
        {"group end", "\x0C", 1, "group"},
        {"wire type 6", "\x0E", 1, "does not exist"},
        {"wire type 7", "\x0F\x00", 2, "does not exist"},
        {"length past the end",
         "\x0A\x05"
         "abc",
         5, "declares 5 bytes but only 3 remain"},
        {"huge length", "\x0A\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\x7F", 10, "declares"},
        {"short fixed32", "\x0D\x00\x00", 3, "needs 4 bytes"},
        {"short fixed64", "\x09\x00\x00\x00\x00", 5, "needs 8 bytes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pb_reader r = pb_reader_of((const uint8_t *)cases[i].bytes, cases[i].n);
        pb_field f;
        bool more = true;
        hr_status st = pb_next(&r, &f, &more);
        CHECK(st == HR_ERR_FORMAT && strstr(hr_last_error(), cases[i].msg), "%s: status %d, '%s'", cases[i].what, st,
              hr_last_error());
    }
    /* an int32 field holding 2^40; a varint where a float belongs */
    pb_reader r = pb_reader_of((const uint8_t *)"\x08\x80\x80\x80\x80\x80\x20", 7);
    pb_field f;
    bool more;
    int32_t v;
    float fl;
    CHECK(pb_next(&r, &f, &more) == HR_OK && pb_int32(&f, "bos_id", &v) == HR_ERR_FORMAT &&
              strstr(hr_last_error(), "outside int32"),
          "2^40 as int32: '%s'", hr_last_error());
    CHECK(pb_float(&f, "score", &fl) == HR_ERR_FORMAT && strstr(hr_last_error(), "score") &&
              strstr(hr_last_error(), "expected fixed32"),
          "wire type mismatch: '%s'", hr_last_error());
    /* offsets inside an embedded message count from the outer buffer */
    const uint8_t nested[] = {0x12, 0x02, 0x08, 0x80};
    r = pb_reader_of(nested, sizeof nested);
    CHECK(pb_next(&r, &f, &more) == HR_OK, "outer field");
    pb_reader sub = pb_sub(&r, &f);
    CHECK(pb_next(&sub, &f, &more) == HR_ERR_FORMAT && strstr(hr_last_error(), "at byte 3"), "nested offset: '%s'",
          hr_last_error());
}

static void small_bpe_model_encodes_as_worked_out_by_hand(void) {
    spec s = default_spec();
    pbw b = build_model(&s);
    hr_status st;
    hr_tokenizer *t = load_mem(&b, &st);
    CHECK(st == HR_OK && t, "%s", hr_last_error());
    if (t) {
        CHECK(hr_tokenizer_vocab_size(t) == 268 && hr_tokenizer_bos(t) == 1 && hr_tokenizer_eos(t) == 2 &&
                  hr_tokenizer_unk(t) == 0 && hr_tokenizer_add_bos_default(t) && hr_tokenizer_add_space_prefix(t),
              "vocab %d bos %d eos %d unk %d", hr_tokenizer_vocab_size(t), hr_tokenizer_bos(t), hr_tokenizer_eos(t),
              hr_tokenizer_unk(t));
        CHECK(strcmp(hr_tokenizer_kind(t), "spm (SentencePiece .model)") == 0, "kind '%s'", hr_tokenizer_kind(t));
        CHECK(hr_tokenizer_token_type(t, 0) == HR_TOKEN_UNKNOWN && hr_tokenizer_token_type(t, 1) == HR_TOKEN_CONTROL &&
                  hr_tokenizer_token_type(t, BYTE_ID(0x41)) == HR_TOKEN_BYTE &&
                  hr_tokenizer_token_type(t, ID_THE) == HR_TOKEN_NORMAL && hr_tokenizer_score(t, ID_A_) == -9.0f,
              "types and scores as written");
        /* "▁the": ▁t (-1) first, then he (-2), then ▁t+he = ▁the (-3) */
        CHECK(ids_are(t, "the", false, IDS(ID_THE)), "'the'");
        CHECK(ids_are(t, "the", true, IDS(1, ID_THE)), "'the' with BOS");
        /* "▁a▁the": ▁t, he, ▁the, then ▁a (-9) */
        CHECK(ids_are(t, "a the", false, IDS(ID_A_, ID_THE)), "'a the'");
        /* "▁x": x is no piece, so its byte */
        CHECK(ids_are(t, "x", false, IDS(ID_SP, BYTE_ID('x'))), "'x' falls back to its byte");
        CHECK(ids_are(t, "\xC3\xA9", false, IDS(ID_SP, BYTE_ID(0xC3), BYTE_ID(0xA9))), "'é' as two bytes");
        CHECK(ids_are(t, "", false, NULL, 0), "empty text");
        char *back = NULL;
        size_t len = 0;
        const int32_t ids[] = {1, ID_A_, ID_THE, BYTE_ID(0xC3), BYTE_ID(0xA9), 2};
        CHECK(hr_tokenizer_decode(t, ids, 6, true, &back, &len) == HR_OK && back && strcmp(back, "a the\xC3\xA9") == 0,
              "decode: '%s'", back ? back : "");
        free(back);
    }
    hr_tokenizer_free(t);
    free(b.a);
}

static void model_settings_come_from_trainer_and_normalizer_spec(void) {
    spec s = default_spec();
    s.dummy_prefix = 0, s.byte_fallback = 0, s.bos = -1, s.eos = 1, s.unk = 0;
    pbw b = build_model(&s);
    hr_status st;
    hr_tokenizer *t = load_mem(&b, &st);
    CHECK(st == HR_OK && t, "%s", hr_last_error());
    if (t) {
        CHECK(hr_tokenizer_bos(t) == -1 && !hr_tokenizer_add_bos_default(t) && hr_tokenizer_eos(t) == 1 &&
                  !hr_tokenizer_add_space_prefix(t),
              "bos %d eos %d", hr_tokenizer_bos(t), hr_tokenizer_eos(t));
        /* no dummy prefix: t h e -> he (-2) -> [t, he] */
        CHECK(ids_are(t, "the", true, IDS(ID_T, ID_HE)), "'the' without the dummy prefix, no BOS to add");
        /* byte_fallback off: an unknown character is <unk> */
        CHECK(ids_are(t, "x", false, IDS(0)), "'x' is <unk> without byte fallback");
    }
    hr_tokenizer_free(t);
    free(b.a);
}

static void unknown_fields_of_every_wire_type_are_skipped(void) {
    spec s = default_spec();
    pbw plain = build_model(&s);
    s.unknown_fields = true;
    pbw extra = build_model(&s);
    CHECK(extra.n > plain.n + 40, "extra fields written (%zu vs %zu bytes)", extra.n, plain.n);
    hr_status st;
    hr_tokenizer *a = load_mem(&plain, &st), *b = load_mem(&extra, &st);
    CHECK(a && b, "%s", hr_last_error());
    if (a && b) {
        CHECK(hr_tokenizer_vocab_size(a) == hr_tokenizer_vocab_size(b), "vocab sizes");
        /* bos_id was written twice (5, then 1): the last value counts */
        CHECK(hr_tokenizer_bos(b) == 1, "bos %d", hr_tokenizer_bos(b));
        CHECK(ids_are(b, "a the x", true, IDS(1, ID_A_, ID_THE, ID_SP, BYTE_ID('x'))), "same ids with extra fields");
        size_t la, lb;
        const char *pa = hr_tokenizer_piece(a, ID_THE, &la), *pb = hr_tokenizer_piece(b, ID_THE, &lb);
        CHECK(pa && pb && la == lb && memcmp(pa, pb, la) == 0, "piece text unchanged by its extension field");
    }
    hr_tokenizer_free(a);
    hr_tokenizer_free(b);
    free(plain.a);
    free(extra.a);
}

/* llama.cpp's convert script read the same tokenizer.model with the
 * sentencepiece library; its GGUF holds every piece, score and type. */
static void llama2_tokenizer_model_matches_llama_cpp_gguf_piece_for_piece(void) {
    hr_tokenizer *m = load(LLAMA2_MODEL), *g = load(SPM_GGUF);
    if (!m || !g) goto done;
    int n = hr_tokenizer_vocab_size(m), text_diff = 0, score_diff = 0, type_diff = 0;
    CHECK(n == 32000 && hr_tokenizer_vocab_size(g) == n, "vocab %d vs %d", n, hr_tokenizer_vocab_size(g));
    for (int32_t id = 0; n == hr_tokenizer_vocab_size(g) && id < n; id++) {
        size_t lm, lg;
        const char *pm = hr_tokenizer_token_text(m, id, &lm), *pg = hr_tokenizer_token_text(g, id, &lg);
        text_diff += !(pm && pg && lm == lg && memcmp(pm, pg, lm) == 0);
        score_diff += hr_tokenizer_score(m, id) != hr_tokenizer_score(g, id);
        type_diff += hr_tokenizer_token_type(m, id) != hr_tokenizer_token_type(g, id);
    }
    printf("    %d pieces: %d texts, %d scores, %d types differ\n", n, text_diff, score_diff, type_diff);
    CHECK(text_diff == 0 && score_diff == 0 && type_diff == 0, "pieces differ");
    CHECK(hr_tokenizer_bos(m) == hr_tokenizer_bos(g) && hr_tokenizer_eos(m) == hr_tokenizer_eos(g) &&
              hr_tokenizer_unk(m) == hr_tokenizer_unk(g) &&
              hr_tokenizer_add_space_prefix(m) == hr_tokenizer_add_space_prefix(g) &&
              hr_tokenizer_add_bos_default(m) == hr_tokenizer_add_bos_default(g),
          "special ids and flags differ");
    size_t len;
    const char *sp = hr_tokenizer_token_text(m, 29871, &len);
    CHECK(sp && len == 3 && memcmp(sp, "\xE2\x96\x81", 3) == 0, "id 29871 is '\xE2\x96\x81' (Llama-2, not Mistral)");
done:
    hr_tokenizer_free(m);
    hr_tokenizer_free(g);
}

static void expect_refused(const char *what, const pbw *b, hr_status want, const char *msg) {
    hr_status st;
    hr_tokenizer *t = load_mem(b, &st);
    CHECK(st == want && t == NULL && strstr(hr_last_error(), msg) && strstr(hr_last_error(), "SentencePiece .model"),
          "%s: status %d (want %d), '%s' (want '%s')", what, st, want, hr_last_error(), msg);
    hr_tokenizer_free(t);
}

static void unsupported_models_and_normalizers_are_refused_by_name(void) {
    static const struct {
        const char *what;
        int model_type, remove_ws, escape_ws, suffix;
        const char *charsmap;
        hr_status want;
        const char *msg;
    } cases[] = {
        {"unigram", 1, 0, 1, 0, NULL, HR_ERR_UNSUPPORTED, "UNIGRAM models are not supported"},
        {"word", 3, 0, 1, 0, NULL, HR_ERR_UNSUPPORTED, "WORD"},
        {"char", 4, 0, 1, 0, NULL, HR_ERR_UNSUPPORTED, "CHAR"},
        {"model type 9", 9, 0, 1, 0, NULL, HR_ERR_FORMAT, "model_type 9"},
        {"precompiled rules", 2, 0, 1, 0, "\x01\x02rules", HR_ERR_UNSUPPORTED, "normalizer 'nmt_nfkc'"},
        {"remove_extra_whitespaces (default)", 2, -1, 1, 0, NULL, HR_ERR_UNSUPPORTED, "remove_extra_whitespaces"},
        {"escape_whitespaces off", 2, 0, 0, 0, NULL, HR_ERR_UNSUPPORTED, "escape_whitespaces"},
        {"whitespace as suffix", 2, 0, 1, 1, NULL, HR_ERR_UNSUPPORTED, "treat_whitespace_as_suffix"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        spec s = default_spec();
        s.model_type = cases[i].model_type, s.remove_ws = cases[i].remove_ws, s.escape_ws = cases[i].escape_ws;
        s.ws_suffix = cases[i].suffix, s.charsmap = cases[i].charsmap;
        if (s.charsmap) s.norm_name = "nmt_nfkc";
        pbw b = build_model(&s);
        expect_refused(cases[i].what, &b, cases[i].want, cases[i].msg);
        free(b.a);
    }
}

static void hostile_models_are_format_errors_naming_the_problem(void) {
    static const struct {
        const char *what;
        int64_t unk, bos;
        bool no_trainer, no_normalizer;
        int skip_byte;
        const char *msg;
    } cases[] = {
        {"unk_id outside", 999, 1, false, false, -1, "unk_id = 999 is outside"},
        {"unk_id on a control piece", 1, 1, false, false, -1, "does not name a piece of type UNKNOWN"},
        {"bos_id outside", 0, 268, false, false, -1, "bos_id = 268 is outside"},
        {"bos_id beyond int32", 0, (int64_t)1 << 40, false, false, -1, "outside int32"},
        {"no trainer_spec", 0, 1, true, false, -1, "no trainer_spec"},
        {"no normalizer_spec", 0, 1, false, true, -1, "no normalizer_spec"},
        {"byte fallback without <0x41>", 0, 1, false, false, 0x41, "no BYTE piece <0x41>"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        spec s = default_spec();
        s.unk = cases[i].unk, s.bos = cases[i].bos, s.no_trainer = cases[i].no_trainer;
        s.no_normalizer = cases[i].no_normalizer, s.skip_byte = cases[i].skip_byte;
        pbw b = build_model(&s);
        expect_refused(cases[i].what, &b, HR_ERR_FORMAT, cases[i].msg);
        free(b.a);
    }
    /* malformed pieces, each appended to a good model's pieces */
    static const struct {
        const char *what;
        int type;
        float score;
        const char *text;
        const char *msg;
    } pieces[] = {
        {"type 7", 7, 0, "z", "type 7"},
        {"type -1", -1, 0, "z", "type -1"},
        {"NaN score", 1, NAN, "z", "non-finite score"},
        {"infinite score", 1, INFINITY, "z", "non-finite score"},
        {"empty text", 1, 0, "", "has no text"},
        {"BYTE type on a non-byte piece", 6, 0, "zz", "not <0xNN>"},
    };
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        spec s = default_spec();
        pbw b = build_model(&s), m = {0};
        if (*pieces[i].text) w_str(&m, 1, pieces[i].text);
        w_f32(&m, 2, pieces[i].score);
        w_int(&m, 3, pieces[i].type);
        w_msg(&b, 1, &m);
        expect_refused(pieces[i].what, &b, HR_ERR_FORMAT, pieces[i].msg);
        free(b.a);
    }
    /* a known field with the wrong wire type */
    spec s = default_spec();
    pbw b = build_model(&s);
    w_int(&b, 2, 5);
    expect_refused("trainer_spec as a varint", &b, HR_ERR_FORMAT, "trainer_spec (field 2");
    free(b.a);
    /* only specs, no pieces */
    b = (pbw){0};
    pbw m = {0};
    w_int(&m, 3, 2);
    w_msg(&b, 2, &m);
    expect_refused("no pieces", &b, HR_ERR_FORMAT, "no pieces");
    free(b.a);
    /* more pieces than any vocabulary: 2^22 + 1 empty piece messages */
    size_t n = ((size_t)1 << 22) + 1;
    b = (pbw){malloc(2 * n), 2 * n, 2 * n};
    for (size_t i = 0; b.a && i < n; i++) b.a[2 * i] = 0x0A, b.a[2 * i + 1] = 0x00;
    if (b.a) expect_refused("4194305 pieces", &b, HR_ERR_FORMAT, "more than 4194304 pieces");
    free(b.a);
}

/* Every strict prefix of a model is refused: the fields SentencePiece
 * always writes come last, so no cut leaves a complete model. */
static void every_truncation_of_a_model_is_a_format_error(void) {
    spec s = default_spec();
    pbw b = build_model(&s);
    int bad = 0;
    for (size_t cut = 0; cut < b.n; cut++) {
        pbw c = {b.a, cut, cut};
        hr_status st;
        hr_tokenizer *t = load_mem(&c, &st);
        if (st != HR_ERR_FORMAT || t) {
            if (bad++ < 5) fprintf(stderr, "    cut at %zu: status %d\n", cut, st);
        }
        hr_tokenizer_free(t);
    }
    CHECK(bad == 0, "%d of %zu cuts of the small model were not format errors", bad, b.n);
    free(b.a);
    /* and of Llama-2's: 64 cuts spread over the file, plus the last byte */
    size_t len = 0;
    char *data = read_all(LLAMA2_MODEL, &len);
    bad = 0;
    for (int k = 0; data && k <= 64; k++) {
        size_t cut = k == 64 ? len - 1 : len / 64 * (size_t)k + (size_t)k * 7;
        hr_tokenizer *t = NULL;
        hr_status st = tok_load_spm_model((const uint8_t *)data, cut, &t);
        if (st != HR_ERR_FORMAT || t) {
            if (bad++ < 5) fprintf(stderr, "    tokenizer.model cut at %zu: status %d\n", cut, st);
        }
        hr_tokenizer_free(t);
    }
    CHECK(bad == 0, "%d cuts of tokenizer.model were not format errors", bad);
    /* through hr_tokenizer_load, the message names the file and the format */
    char *path = data ? write_tmp(data, len / 2, NULL, NULL) : NULL;
    hr_tokenizer *t = NULL;
    CHECK(path && hr_tokenizer_load(path, &t) == HR_ERR_FORMAT && strstr(hr_last_error(), path) &&
              strstr(hr_last_error(), "SentencePiece .model"),
          "half a tokenizer.model: '%s'", hr_last_error());
    if (path) unlink(path);
    free(path);
    free(data);
}

static void model_files_are_detected_by_content_and_found_in_folders(void) {
    size_t len = 0;
    char *bin = read_all(TOK512, &len);
    CHECK(bin && !tok_is_spm_model((const uint8_t *)bin, len), "tok512.bin is not taken for a .model");
    free(bin);
    /* every max_token_length a .bin allows starts unlike a ModelProto */
    int taken = 0;
    for (int32_t max_len = 1; max_len <= 1 << 16; max_len++) {
        uint8_t head[12] = {0};
        memcpy(head, &max_len, 4);
        memset(head + 4, 0x0A, 8);
        taken += tok_is_spm_model(head, sizeof head);
    }
    CHECK(taken == 0, "%d llama2.c headers look like a .model", taken);

    char dir[64];
    if (hr_t_scratch_dir(dir, sizeof dir, "spm_model")) return;
    spec s = default_spec();
    pbw b = build_model(&s);
    char *named = write_tmp(b.a, b.n, dir, "any-name.bin"), *model = write_tmp("x", 1, dir, "model.bin");
    hr_tokenizer *t = NULL;
    CHECK(hr_tokenizer_load(named, &t) == HR_OK && t && hr_tokenizer_vocab_size(t) == 268, "by content: %s",
          hr_last_error());
    hr_tokenizer_free(t), t = NULL;
    char *std = write_tmp(b.a, b.n, dir, "tokenizer.model");
    unlink(named);
    CHECK(hr_tokenizer_load(dir, &t) == HR_OK && t && hr_tokenizer_vocab_size(t) == 268, "a folder: %s",
          hr_last_error());
    hr_tokenizer_free(t);
    char found[4096];
    CHECK(hr_tokenizer_find_for_model(model, NULL, found, sizeof found) == HR_OK && strcmp(found, std) == 0,
          "beside a model: '%s'", found);
    free(named), free(model), free(std);
    free(b.a);
    hr_t_rm_rf(dir);
}

int main(void) {
    RUN(wire_reader_decodes_the_protobuf_documentation_examples);
    RUN(wire_reader_rejects_what_the_format_does_not_allow);
    RUN(small_bpe_model_encodes_as_worked_out_by_hand);
    RUN(model_settings_come_from_trainer_and_normalizer_spec);
    RUN(unknown_fields_of_every_wire_type_are_skipped);
    RUN(llama2_tokenizer_model_matches_llama_cpp_gguf_piece_for_piece);
    RUN(unsupported_models_and_normalizers_are_refused_by_name);
    RUN(hostile_models_are_format_errors_naming_the_problem);
    RUN(every_truncation_of_a_model_is_a_format_error);
    RUN(model_files_are_detected_by_content_and_found_in_folders);
    TEST_MAIN_END();
}
