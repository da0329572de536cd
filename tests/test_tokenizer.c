/* Tokenizer tests: llama2.c .bin, SentencePiece .model and GGUF "llama"
 * vocabularies, llama.cpp's Llama-SPM test vectors (with Llama-2's own
 * tokenizer.model and tokenizer.bin and llama.cpp's GGUF vocabulary), round
 * trips, speed, hostile input. The .model parser's own tests are in
 * test_tokenizer_sentencepiece.c. */
#include "check.h"
#include "tok_util.h"
#include "headroom/gguf.h"
#include "headroom/tokenizer.h"
#include "core/internal.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define TOK512 SHARED("models/stories260K/tok512.bin")
#define STORIES_GGUF SHARED("models/stories260K/stories260K.gguf")
#define STORIES_BIN SHARED("models/stories260K/stories260K.bin")
#define SPM_GGUF SHARED("models/gguf-vocab/ggml-vocab-llama-spm.gguf")
#define GPT2_GGUF SHARED("models/gguf-vocab/ggml-vocab-gpt-2.gguf")
#define SPM_INP SHARED("data/tokenizer-vectors/ggml-vocab-llama-spm.gguf.inp")
#define SPM_OUT SHARED("data/tokenizer-vectors/ggml-vocab-llama-spm.gguf.out")
#define STORIES_TXT SHARED("data/text/tinystories_val.txt")
#define LLAMA2_MODEL SHARED("data/tokenizers/llama2/tokenizer.model")
#define LLAMA2_BIN SHARED("data/tokenizers/llama2/tokenizer.bin")

static hr_status encode(const hr_tokenizer *t, const char *s, size_t len, bool bos, int prefix, int32_t **ids,
                        size_t *n) {
    hr_encode_params p = hr_encode_default_params();
    p.add_bos = bos;
    p.add_space_prefix = prefix;
    return hr_tokenizer_encode(t, s, len, &p, ids, n);
}

/* Writes a llama2.c tokenizer .bin; returns its malloc'ed temp path. */
static char *write_bin(int32_t max_len, int n, const char *const *pieces, const float *scores) {
    char *path = strdup("/tmp/hr_test_tok_XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp failed");
    FILE *fp = fdopen(fd, "wb");
    fwrite(&max_len, 4, 1, fp);
    for (int i = 0; i < n; i++) {
        int32_t len = (int32_t)strlen(pieces[i]);
        fwrite(&scores[i], 4, 1, fp);
        fwrite(&len, 4, 1, fp);
        fwrite(pieces[i], 1, (size_t)len, fp);
    }
    fclose(fp);
    return path;
}

static char *write_bytes(const void *data, size_t n) {
    char *path = strdup("/tmp/hr_test_tok_XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp failed");
    FILE *fp = fdopen(fd, "wb");
    fwrite(data, 1, n, fp);
    fclose(fp);
    return path;
}

static void round_trips_tinystories(const char *vocab) {
    hr_tokenizer *t = load(vocab);
    size_t len = 0, n = 0, out_len = 0;
    char *text = read_all(STORIES_TXT, &len);
    if (!t || !text) goto done;
    int32_t *ids = NULL;
    hr_status st = encode(t, text, len, true, -1, &ids, &n);
    CHECK(st == HR_OK, "encode: %s", hr_last_error());
    CHECK(n > 1 && ids[0] == hr_tokenizer_bos(t), "first id %d is not BOS", n ? ids[0] : -1);
    CHECK(n < len / 2, "%zu ids for %zu bytes: merges did not happen", n, len);
    char *back = NULL;
    st = hr_tokenizer_decode(t, ids, n, true, &back, &out_len);
    CHECK(st == HR_OK, "decode: %s", hr_last_error());
    CHECK(back && out_len == len && memcmp(back, text, len) == 0, "round trip differs (%zu vs %zu bytes)", out_len,
          len);
    printf("    %s: %zu bytes -> %zu ids\n", strrchr(vocab, '/') + 1, len, n);
    free(back);
    free(ids);
done:
    free(text);
    hr_tokenizer_free(t);
}

static void tok512_round_trips_tinystories_byte_for_byte(void) { round_trips_tinystories(TOK512); }

static void stories260k_gguf_vocabulary_round_trips_tinystories_byte_for_byte(void) {
    round_trips_tinystories(STORIES_GGUF);
}

/* Two loads of one vocabulary give the same ids on all of tinystories_val. */
static void identical_ids_on_tinystories(const char *path_a, const char *path_b, int vocab) {
    hr_tokenizer *a = load(path_a), *b = load(path_b);
    size_t len = 0, na = 0, nb = 0;
    char *text = read_all(STORIES_TXT, &len);
    int32_t *ia = NULL, *ib = NULL;
    if (!a || !b || !text) goto done;
    CHECK(hr_tokenizer_vocab_size(a) == vocab && hr_tokenizer_vocab_size(b) == vocab, "vocab sizes %d %d, want %d",
          hr_tokenizer_vocab_size(a), hr_tokenizer_vocab_size(b), vocab);
    CHECK(encode(a, text, len, true, -1, &ia, &na) == HR_OK, "%s", hr_last_error());
    CHECK(encode(b, text, len, true, -1, &ib, &nb) == HR_OK, "%s", hr_last_error());
    size_t first_diff = na < nb ? na : nb;
    for (size_t i = 0; ia && ib && i < first_diff; i++)
        if (ia[i] != ib[i]) first_diff = i;
    CHECK(na == nb && first_diff == na, "%s vs %s: %zu vs %zu ids, first difference at %zu", strrchr(path_a, '/') + 1,
          strrchr(path_b, '/') + 1, na, nb, first_diff);
    printf("    %s = %s: %zu ids\n", hr_tokenizer_kind(a), hr_tokenizer_kind(b), na);
done:
    free(ia);
    free(ib);
    free(text);
    hr_tokenizer_free(a);
    hr_tokenizer_free(b);
}

static void tok512_and_stories260k_gguf_give_identical_ids_on_tinystories(void) {
    identical_ids_on_tinystories(TOK512, STORIES_GGUF, 512);
}

/* Llama-2's vocabulary from three sources: its own SentencePiece model, the
 * llama2.c export of it, llama.cpp's GGUF vocabulary. */
static void llama2_tokenizer_model_bin_and_gguf_give_identical_ids_on_tinystories(void) {
    identical_ids_on_tinystories(LLAMA2_MODEL, LLAMA2_BIN, 32000);
    identical_ids_on_tinystories(LLAMA2_MODEL, SPM_GGUF, 32000);
}

/* decode(encode(x)) == x on every text file of ../shared/data/text. */
static void llama2_tokenizer_model_round_trips_every_shared_text_byte_for_byte(void) {
    static const char *const texts[] = {STORIES_TXT, SHARED("data/text/tinyshakespeare.txt"),
                                        SHARED("data/text/wikitext2_test.raw"), SHARED("data/text/brown.txt")};
    hr_tokenizer *t = load(LLAMA2_MODEL);
    for (size_t k = 0; t && k < sizeof texts / sizeof texts[0]; k++) {
        size_t len = 0, n = 0, out_len = 0;
        char *text = read_all(texts[k], &len), *back = NULL;
        int32_t *ids = NULL;
        if (!text) continue;
        CHECK(encode(t, text, len, true, -1, &ids, &n) == HR_OK, "%s: %s", texts[k], hr_last_error());
        CHECK(ids && n > 1 && n < len / 2, "%s: %zu ids for %zu bytes", texts[k], n, len);
        CHECK(ids && hr_tokenizer_decode(t, ids, n, true, &back, &out_len) == HR_OK, "%s", hr_last_error());
        CHECK(back && out_len == len && memcmp(back, text, len) == 0, "%s: round trip differs (%zu vs %zu bytes)",
              texts[k], out_len, len);
        printf("    %s: %zu bytes -> %zu ids\n", strrchr(texts[k], '/') + 1, len, n);
        free(back);
        free(ids);
        free(text);
    }
    hr_tokenizer_free(t);
}

/* llama.cpp's test-tokenizer-0 vectors for Llama-SPM, through vocab. */
static void llama_spm_vectors_pass(const char *vocab) {
    hr_tokenizer *t = load(vocab);
    size_t inp_len = 0, out_len = 0;
    char *inp = read_all(SPM_INP, &inp_len), *out = read_all(SPM_OUT, &out_len);
    if (!t || !inp || !out) goto done;
    enum { CAP = 256 };
    char *texts[CAP];
    size_t lens[CAP];
    int n = split_vectors(inp, inp_len, texts, lens, CAP), passed = 0, line_no = 0;
    char *line = out, *save = NULL;
    for (int i = 0; i < n; i++, line_no++) {
        char *eol = strchr(line, '\n');
        CHECK(eol != NULL, ".out has fewer lines than .inp has texts (%d)", n);
        if (!eol) break;
        *eol = 0;
        int32_t want[512];
        int nw = 0;
        for (char *tok = strtok_r(line, " ", &save); tok && nw < 512; tok = strtok_r(NULL, " ", &save))
            want[nw++] = (int32_t)strtol(tok, NULL, 10);
        line = eol + 1;
        int32_t *ids = NULL;
        size_t nids = 0;
        /* test-tokenizer-0 calls llama_tokenize with add_special = false:
         * no BOS, but the vocabulary's leading-space rule still applies */
        hr_status st = encode(t, texts[i], lens[i], false, -1, &ids, &nids);
        bool same = st == HR_OK && nids == (size_t)nw && (nw == 0 || memcmp(ids, want, (size_t)nw * 4) == 0);
        CHECK(same, "vector %d ('%.*s'): got %zu ids (first %d), want %d (first %d); %s", i,
              (int)(lens[i] > 40 ? 40 : lens[i]), texts[i], nids, nids ? ids[0] : -1, nw, nw ? want[0] : -1,
              st ? hr_last_error() : "");
        passed += same;
        free(ids);
    }
    CHECK(n == 46 && *line == 0, "%d texts; .out has %s lines", n, *line ? "more" : "as many");
    printf("    %s: %d/%d llama-spm vectors pass\n", strrchr(vocab, '/') + 1, passed, n);
done:
    free(inp);
    free(out);
    hr_tokenizer_free(t);
}

static void llama_spm_vectors_pass_with_llama_cpp_gguf_vocabulary(void) { llama_spm_vectors_pass(SPM_GGUF); }
static void llama_spm_vectors_pass_with_llama2_tokenizer_model(void) { llama_spm_vectors_pass(LLAMA2_MODEL); }
static void llama_spm_vectors_pass_with_llama2_tokenizer_bin(void) { llama_spm_vectors_pass(LLAMA2_BIN); }

static void invalid_utf8_is_a_format_error_naming_the_byte_offset(void) {
    hr_tokenizer *t = load(TOK512);
    if (!t) return;
    static const struct {
        const char *what, *s;
        size_t offset;
    } cases[] = {
        {"lone continuation byte",
         "ab\x80"
         "c",
         2},
        {"truncated 3-byte sequence", "abc\xE2\x96", 3},
        {"3-byte lead followed by ASCII", "x\xE2\x96y", 1},
        {"overlong 2-byte slash", "\xC0\xAF", 0},
        {"overlong 3-byte", "hello \xE0\x80\xAF", 6},
        {"overlong 4-byte", "\xF0\x80\x80\xAF", 0},
        {"UTF-16 surrogate", "ok \xED\xA0\x80", 3},
        {"beyond U+10FFFF", "\xF4\x90\x80\x80", 0},
        {"0xFF byte", "a\xFF", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        hr_status st = encode(t, cases[i].s, strlen(cases[i].s), true, -1, &ids, &n);
        char want[64];
        snprintf(want, sizeof want, "offset %zu", cases[i].offset);
        CHECK(st == HR_ERR_FORMAT, "%s: status %d", cases[i].what, st);
        CHECK(strstr(hr_last_error(), want) != NULL, "%s: message '%s' lacks '%s'", cases[i].what, hr_last_error(),
              want);
        CHECK(ids == NULL && n == 0, "%s: output not cleared", cases[i].what);
        free(ids);
    }
    /* the largest valid code points of each length are accepted */
    const char *ok = "\x7F\xDF\xBF\xEF\xBF\xBF\xF4\x8F\xBF\xBF\xED\x9F\xBF";
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(encode(t, ok, strlen(ok), true, -1, &ids, &n) == HR_OK, "valid edge cases: %s", hr_last_error());
    free(ids);
    hr_tokenizer_free(t);
}

static void empty_text_gives_only_the_requested_specials(void) {
    hr_tokenizer *t = load(TOK512);
    if (!t) return;
    int32_t *ids = NULL;
    size_t n = 99;
    CHECK(hr_tokenizer_encode(t, "", 0, NULL, &ids, &n) == HR_OK, "%s", hr_last_error());
    CHECK(n == 1 && ids[0] == hr_tokenizer_bos(t), "default params: %zu ids", n);
    free(ids);
    hr_encode_params p = hr_encode_default_params();
    p.add_eos = true;
    CHECK(hr_tokenizer_encode(t, "", 0, &p, &ids, &n) == HR_OK, "%s", hr_last_error());
    CHECK(n == 2 && ids[0] == 1 && ids[1] == 2, "BOS+EOS: %zu ids", n);
    free(ids);
    p.add_bos = p.add_eos = false;
    CHECK(hr_tokenizer_encode(t, NULL, 0, &p, &ids, &n) == HR_OK, "%s", hr_last_error());
    CHECK(n == 0, "no specials: %zu ids", n);
    free(ids);
    hr_tokenizer_free(t);
}

static void truncated_tok512_copies_are_clear_format_errors(void) {
    size_t len = 0;
    char *data = read_all(TOK512, &len);
    if (!data) return;
    /* inside the header, inside the first record's header, inside a piece */
    const size_t cuts[] = {0, 2, 4 + 5, 4 + 8 + 3, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char *path = write_bytes(data, cuts[i]);
        hr_tokenizer *t = NULL;
        hr_status st = hr_tokenizer_load(path, &t);
        CHECK(st == HR_ERR_FORMAT && t == NULL, "cut at %zu: status %d", cuts[i], st);
        CHECK(strstr(hr_last_error(), cuts[i] > 4 ? "truncated" : "too short") && strstr(hr_last_error(), path),
              "cut at %zu: message '%s'", cuts[i], hr_last_error());
        unlink(path);
        free(path);
    }
    free(data);
}

static void missing_tokenizer_file_is_an_io_error(void) {
    hr_tokenizer *t = NULL;
    hr_status st = hr_tokenizer_load("/nonexistent/dir/tok512.bin", &t);
    CHECK(st == HR_ERR_IO && t == NULL, "status %d", st);
    CHECK(strstr(hr_last_error(), "/nonexistent/dir/tok512.bin") != NULL, "message '%s'", hr_last_error());
}

/* (its test vectors are in test_tokenizer_bpe.c) */
static void gpt2_gguf_vocabulary_loads_as_byte_level_bpe(void) {
    hr_tokenizer *t = load(GPT2_GGUF);
    if (!t) return;
    CHECK(hr_tokenizer_vocab_size(t) == 50257, "vocab %d", hr_tokenizer_vocab_size(t));
    CHECK(strstr(hr_tokenizer_kind(t), "byte-level") != NULL, "kind '%s'", hr_tokenizer_kind(t));
    hr_tokenizer_free(t);
}

static void hostile_bin_vocabularies_are_rejected(void) {
    const char *pieces[] = {"<unk>", "<s>", "</s>", "a"};
    float scores[] = {0, 0, 0, 0};
    struct {
        const char *what;
        int32_t max_len;
        int n;
        float nan_at3;
    } cases[] = {
        {"max_token_length 0", 0, 4, 0},
        {"piece longer than max_token_length", 4, 4, 0},
        {"NaN score", 8, 4, 1},
        {"fewer than 3 entries", 8, 2, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        scores[3] = cases[i].nan_at3 ? NAN : 0;
        char *path = write_bin(cases[i].max_len, cases[i].n, pieces, scores);
        hr_tokenizer *t = NULL;
        hr_status st = hr_tokenizer_load(path, &t);
        CHECK(st == HR_ERR_FORMAT && t == NULL, "%s: status %d", cases[i].what, st);
        unlink(path);
        free(path);
    }
    /* a negative piece length */
    unsigned char bad[4 + 8] = {8, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
    char *path = write_bytes(bad, sizeof bad);
    hr_tokenizer *t = NULL;
    CHECK(hr_tokenizer_load(path, &t) == HR_ERR_FORMAT && strstr(hr_last_error(), "length -1"), "negative length: '%s'",
          hr_last_error());
    unlink(path);
    free(path);
    /* a model checkpoint is not a tokenizer */
    CHECK(hr_tokenizer_load(STORIES_BIN, &t) == HR_ERR_FORMAT && t == NULL, "stories260K.bin accepted");
}

/* Minimal GGUF writer for hostile vocabularies: string and array keys. */
typedef struct {
    unsigned char buf[1024];
    size_t n;
} gbuf;

static void gput(gbuf *b, const void *p, size_t n) {
    memcpy(b->buf + b->n, p, n);
    b->n += n;
}
static void gput_u32(gbuf *b, uint32_t v) { gput(b, &v, 4); }
static void gput_u64(gbuf *b, uint64_t v) { gput(b, &v, 8); }
static void gput_str(gbuf *b, const char *s) {
    gput_u64(b, strlen(s));
    gput(b, s, strlen(s));
}

/* model name, 4 tokens, their types, and a BOS id */
static char *write_vocab_gguf(const char *model, const int32_t types[4], uint32_t bos) {
    static const char *toks[] = {"<unk>", "<s>", "</s>", "a"};
    gbuf b = {.n = 0};
    gput(&b, "GGUF", 4);
    gput_u32(&b, 3);
    gput_u64(&b, 0);
    gput_u64(&b, 4);
    gput_str(&b, "tokenizer.ggml.model");
    gput_u32(&b, HR_GGUF_STRING);
    gput_str(&b, model);
    gput_str(&b, "tokenizer.ggml.tokens");
    gput_u32(&b, HR_GGUF_ARRAY);
    gput_u32(&b, HR_GGUF_STRING);
    gput_u64(&b, 4);
    for (int i = 0; i < 4; i++) gput_str(&b, toks[i]);
    gput_str(&b, "tokenizer.ggml.token_type");
    gput_u32(&b, HR_GGUF_ARRAY);
    gput_u32(&b, HR_GGUF_INT32);
    gput_u64(&b, 4);
    gput(&b, types, 16);
    gput_str(&b, "tokenizer.ggml.bos_token_id");
    gput_u32(&b, HR_GGUF_UINT32);
    gput_u32(&b, bos);
    while (b.n % 32) b.buf[b.n++] = 0;
    return write_bytes(b.buf, b.n);
}

static hr_status load_status(char *path) {
    hr_tokenizer *t = NULL;
    hr_status st = hr_tokenizer_load(path, &t);
    CHECK((st == HR_OK) == (t != NULL), "status %d with handle %p", st, (void *)t);
    hr_tokenizer_free(t);
    unlink(path);
    free(path);
    return st;
}

static void hostile_gguf_vocabularies_are_rejected(void) {
    const int32_t good[4] = {2, 3, 3, 1}, byte_a[4] = {2, 3, 3, 6}, bad_type[4] = {2, 3, 3, 42};
    CHECK(load_status(write_vocab_gguf("llama", good, 1)) == HR_OK, "valid vocabulary: %s", hr_last_error());
    CHECK(load_status(write_vocab_gguf("llama", good, 0xFFFFFFFFu)) == HR_OK, "BOS 'none': %s", hr_last_error());
    CHECK(load_status(write_vocab_gguf("llama", good, 4)) == HR_ERR_FORMAT, "BOS id past the vocabulary");
    CHECK(load_status(write_vocab_gguf("llama", byte_a, 1)) == HR_ERR_FORMAT, "BYTE type on 'a'");
    CHECK(load_status(write_vocab_gguf("llama", bad_type, 1)) == HR_ERR_FORMAT, "token type 42");
    CHECK(load_status(write_vocab_gguf("bert", good, 1)) == HR_ERR_UNSUPPORTED && strstr(hr_last_error(), "bert"),
          "model 'bert': %s", hr_last_error());
}

/* A tiny vocabulary whose merge order is known by hand. */
static hr_tokenizer *tiny_vocab(const char *const *pieces, const float *scores, int n) {
    char *path = write_bin(16, n, pieces, scores);
    hr_tokenizer *t = load(path);
    unlink(path);
    free(path);
    return t;
}

static bool ids_are(const hr_tokenizer *t, const char *text, const int32_t *want, size_t n_want) {
    int32_t *ids = NULL;
    size_t n = 0;
    bool ok = encode(t, text, strlen(text), false, 0, &ids, &n) == HR_OK && n == n_want &&
              memcmp(ids, want, n * sizeof *ids) == 0;
    free(ids);
    return ok;
}

static void merges_take_the_highest_score_then_the_leftmost_pair(void) {
    const char *pieces[] = {"<unk>", "<s>", "</s>", "a", "b", "c", "ab", "bc", "aa", "ca"};
    const float scores[] = {0, 0, 0, -10, -10, -10, -1, 0, -2, -5};
    hr_tokenizer *t = tiny_vocab(pieces, scores, 10);
    if (!t) return;
    /* "bc" outscores "ab" (and "ca"), whichever side it is on */
    CHECK(ids_are(t, "abc", (int32_t[]){3, 7}, 2), "abc");
    CHECK(ids_are(t, "bca", (int32_t[]){7, 3}, 2), "bca");
    /* equal scores: the leftmost pair merges first */
    CHECK(ids_are(t, "aaa", (int32_t[]){8, 3}, 2), "aaa");
    CHECK(ids_are(t, "aabc", (int32_t[]){8, 7}, 2), "aabc");
    hr_tokenizer_free(t);
}

static void control_pieces_are_never_produced_by_merging(void) {
    /* id 1 is BOS (control); give it the text "ab", mergeable from a + b */
    const char *pieces[] = {"<unk>", "ab", "</s>", "a", "b"};
    const float scores[] = {0, 100, 0, -1, -1};
    hr_tokenizer *t = tiny_vocab(pieces, scores, 5);
    if (!t) return;
    CHECK(ids_are(t, "ab", (int32_t[]){3, 4}, 2), "control piece produced");
    hr_tokenizer_free(t);
}

/* Found by fuzz/fuzz_tokenizer_bin: a control piece "\x9F" matched inside
 * the emoji F0 9F 98 80 and cut it, and the SentencePiece encoder then read
 * a 4-byte character from a 1-byte fragment (heap overflow under ASan). */
static void special_pieces_that_are_not_whole_characters_never_cut_a_character(void) {
    const char *pieces[] = {"<unk>", "\x9f", "</s>", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>"};
    const float scores[] = {0, 0, 0, 0, 0, 0, 0};
    hr_tokenizer *t = tiny_vocab(pieces, scores, 7);
    if (!t) return;
    hr_encode_params p = hr_encode_default_params();
    p.add_bos = false;
    p.add_space_prefix = 0;
    p.parse_special = true;
    int32_t *ids = NULL;
    size_t n = 0;
    const char *emoji = "\xf0\x9f\x98\x80";
    hr_status st = hr_tokenizer_encode(t, emoji, 4, &p, &ids, &n);
    CHECK(st == HR_OK && n == 4 && ids[0] == 3 && ids[1] == 4 && ids[2] == 5 && ids[3] == 6, "status %d (%s), %zu ids",
          st, st ? hr_last_error() : "", n);
    char *text = NULL;
    size_t len = 0;
    if (st == HR_OK && hr_tokenizer_decode(t, ids, n, false, &text, &len) == HR_OK)
        CHECK(len == 4 && memcmp(text, emoji, 4) == 0, "decoded %zu bytes", len);
    free(text);
    free(ids);
    hr_tokenizer_free(t);
}

/* Naive quadratic BPE (best score, leftmost on ties) as an independent
 * reference for the heap-based encoder (no leading-space rule).
 * Symbols are spans of the text: adjacent ones concatenate in place. */
static int32_t naive_find(const hr_tokenizer *t, const char *s, size_t len) {
    for (int id = 3; id < hr_tokenizer_vocab_size(t); id++) {
        size_t pl;
        const char *p = hr_tokenizer_piece(t, id, &pl);
        if (pl == len && memcmp(p, s, pl) == 0) return id;
    }
    return -1;
}

static size_t naive_bpe(const hr_tokenizer *t, const char *text, int32_t *out) {
    size_t start[64], len[64], n = strlen(text);
    for (size_t i = 0; i < n; i++) start[i] = i, len[i] = 1;
    for (;;) {
        float best = -INFINITY;
        size_t at = SIZE_MAX;
        for (size_t i = 0; i + 1 < n; i++) {
            int32_t id = naive_find(t, text + start[i], len[i] + len[i + 1]);
            float sc = (float)(-(id % 7)); /* mirrors the scores written below */
            if (id >= 0 && sc > best) best = sc, at = i;
        }
        if (at == SIZE_MAX) break;
        len[at] += len[at + 1];
        memmove(&start[at + 1], &start[at + 2], (n - at - 2) * sizeof start[0]);
        memmove(&len[at + 1], &len[at + 2], (n - at - 2) * sizeof len[0]);
        n--;
    }
    for (size_t i = 0; i < n; i++) out[i] = naive_find(t, text + start[i], len[i]);
    return n;
}

static void heap_encoder_matches_a_naive_quadratic_bpe_on_random_texts(void) {
    /* also exercises the segmenting at character pairs no piece contains:
     * with 6 symbols, many of the 36 pairs occur in no piece */
    /* a space among the letters: the .bin vocabulary writes it plainly, the
     * encoder matches it as U+2581, the naive reference as ' ' */
    static const char alpha[] = "abcd e";
    enum { NV = 80, NA = sizeof alpha - 1 };
    char store[NV][8];
    const char *pieces[NV];
    float scores[NV];
    unsigned seed = 12345;
    int n = 0;
    pieces[n++] = "<unk>", pieces[n++] = "<s>", pieces[n++] = "</s>";
    for (const char *c = alpha; *c; c++) snprintf(store[n], 8, "%c", *c), pieces[n] = store[n], n++;
    while (n < NV) { /* distinct random strings of length 2..4 */
        seed = seed * 1103515245u + 12345u;
        int l = 2 + (int)(seed >> 16) % 3;
        for (int k = 0; k < l; k++) {
            seed = seed * 1103515245u + 12345u;
            store[n][k] = alpha[(seed >> 16) % NA];
        }
        store[n][l] = 0;
        bool dup = false;
        for (int j = 3; j < n; j++) dup |= strcmp(pieces[j], store[n]) == 0;
        if (!dup) pieces[n] = store[n], n++;
    }
    for (int i = 0; i < NV; i++) scores[i] = (float)(-(i % 7)); /* many ties */
    hr_tokenizer *t = tiny_vocab(pieces, scores, NV);
    if (!t) return;
    int mismatches = 0;
    for (int trial = 0; trial < 300; trial++) {
        char text[40];
        seed = seed * 1103515245u + 12345u;
        int l = 1 + (int)(seed >> 16) % 39;
        for (int k = 0; k < l; k++) {
            seed = seed * 1103515245u + 12345u;
            text[k] = alpha[(seed >> 16) % NA];
        }
        text[l] = 0;
        int32_t want[64];
        size_t nw = naive_bpe(t, text, want);
        mismatches += !ids_are(t, text, want, nw);
    }
    CHECK(mismatches == 0, "%d of 300 random texts differ from the naive reference", mismatches);
    hr_tokenizer_free(t);
}

static void byte_fallback_encodes_characters_missing_from_the_vocabulary(void) {
    hr_tokenizer *t = load(TOK512);
    if (!t) return;
    const char *emoji = "\xF0\x9F\xA6\x99"; /* U+1F999, not a tok512 piece */
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(encode(t, emoji, 4, false, 0, &ids, &n) == HR_OK, "%s", hr_last_error());
    CHECK(n == 4, "%zu ids", n);
    for (size_t i = 0; i < n && n == 4; i++) {
        char want[8];
        snprintf(want, sizeof want, "<0x%02X>", (unsigned char)emoji[i]);
        size_t pl;
        const char *p = hr_tokenizer_piece(t, ids[i], &pl);
        CHECK(p && pl == 6 && memcmp(p, want, 6) == 0, "id %zu is '%s', want %s", i, p ? p : "?", want);
    }
    char *back = NULL;
    CHECK(hr_tokenizer_decode(t, ids, n, false, &back, NULL) == HR_OK && back && strcmp(back, emoji) == 0,
          "byte pieces do not decode back");
    free(back);
    free(ids);
    hr_tokenizer_free(t);
}

static void pieces_are_returned_as_stored_and_spaces_normalise_identically(void) {
    hr_tokenizer *a = load(TOK512), *b = load(STORIES_GGUF);
    if (!a || !b) goto done;
    size_t la, lb;
    const char *pa = hr_tokenizer_piece(a, 259, &la), *pb = hr_tokenizer_piece(b, 259, &lb);
    CHECK(pa && la == 2 && memcmp(pa, " t", 2) == 0, "tok512 piece 259 '%s'", pa ? pa : "?");
    CHECK(pb && lb == 4 && memcmp(pb, "\xE2\x96\x81t", 4) == 0, "gguf piece 259 '%s'", pb ? pb : "?");
    CHECK(hr_tokenizer_piece(a, 512, &la) == NULL && hr_tokenizer_piece(a, -1, NULL) == NULL, "out of range");
    char buf[16];
    size_t l1 = 0, l2 = 0;
    CHECK(hr_tokenizer_decode_one(a, 5, 259, buf, sizeof buf, &l1) == HR_OK && l1 == 2 && memcmp(buf, " t", 2) == 0,
          "tok512 decode_one");
    CHECK(hr_tokenizer_decode_one(b, 5, 259, buf, sizeof buf, &l2) == HR_OK && l2 == 2 && memcmp(buf, " t", 2) == 0,
          "gguf decode_one");
done:
    hr_tokenizer_free(a);
    hr_tokenizer_free(b);
}

static void decode_one_drops_the_leading_space_only_after_bos(void) {
    hr_tokenizer *t = load(STORIES_GGUF);
    if (!t) return;
    int32_t *ids = NULL;
    size_t n = 0, len = 0;
    CHECK(encode(t, "Once upon", 9, true, -1, &ids, &n) == HR_OK && n >= 3, "%s", hr_last_error());
    char out[64] = {0}, buf[32];
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK(hr_tokenizer_decode_one(t, i ? ids[i - 1] : -1, ids[i], buf, sizeof buf, &len) == HR_OK, "%s",
              hr_last_error());
        memcpy(out + o, buf, len);
        o += len;
    }
    CHECK(strcmp(out, "Once upon") == 0, "streamed '%s'", out);
    /* the same first piece without BOS before it keeps its space */
    CHECK(hr_tokenizer_decode_one(t, -1, ids[1], buf, sizeof buf, &len) == HR_OK && len > 0 && buf[0] == ' ',
          "space dropped without BOS");
    CHECK(hr_tokenizer_decode_one(t, 0, ids[1], buf, 1, &len) == HR_ERR_RANGE, "small buffer accepted");
    CHECK(hr_tokenizer_decode_one(t, 0, 512, buf, sizeof buf, &len) == HR_ERR_RANGE, "bad id accepted");
    int32_t bad[] = {1, 700};
    char *text = NULL;
    CHECK(hr_tokenizer_decode(t, bad, 2, true, &text, NULL) == HR_ERR_RANGE && text == NULL, "bad id decoded");
    free(ids);
    hr_tokenizer_free(t);
}

static void gguf_vocabulary_reads_special_ids_and_flags(void) {
    hr_tokenizer *t = load(SPM_GGUF);
    if (!t) return;
    CHECK(hr_tokenizer_vocab_size(t) == 32000, "%d", hr_tokenizer_vocab_size(t));
    CHECK(hr_tokenizer_bos(t) == 1 && hr_tokenizer_eos(t) == 2, "bos %d eos %d", hr_tokenizer_bos(t),
          hr_tokenizer_eos(t));
    CHECK(hr_tokenizer_add_bos_default(t), "add_bos_token true not honoured");
    /* the GGUF path: an open handle works and may be closed afterwards */
    hr_gguf *g = NULL;
    hr_tokenizer *t2 = NULL;
    CHECK(hr_gguf_open(SPM_GGUF, &g) == HR_OK, "%s", hr_last_error());
    CHECK(g && hr_tokenizer_from_gguf(g, &t2) == HR_OK, "%s", hr_last_error());
    hr_gguf_close(g);
    int32_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    const char *s = "Hello world, this is \xF0\x9F\xA6\x99.cpp";
    CHECK(t2 && encode(t, s, strlen(s), true, -1, &a, &na) == HR_OK &&
              encode(t2, s, strlen(s), true, -1, &b, &nb) == HR_OK && na == nb && memcmp(a, b, na * 4) == 0,
          "from_gguf differs from load");
    free(a);
    free(b);
    hr_tokenizer_free(t2);
    hr_tokenizer_free(t);
}

static void find_for_model_locates_the_vocabulary_or_names_the_places_searched(void) {
    char buf[4096];
    CHECK(hr_tokenizer_find_for_model(STORIES_BIN, NULL, buf, sizeof buf) == HR_OK && strcmp(buf, TOK512) == 0,
          "for stories260K.bin got '%s' (%s)", buf, hr_last_error());
    CHECK(hr_tokenizer_find_for_model(STORIES_GGUF, NULL, buf, sizeof buf) == HR_OK && strcmp(buf, STORIES_GGUF) == 0,
          "for the gguf got '%s' (%s)", buf, hr_last_error());
    CHECK(hr_tokenizer_find_for_model(STORIES_BIN, SPM_GGUF, buf, sizeof buf) == HR_OK && strcmp(buf, SPM_GGUF) == 0,
          "explicit path not used: '%s'", buf);
    CHECK(hr_tokenizer_find_for_model(STORIES_BIN, "/nonexistent/tok.bin", buf, sizeof buf) == HR_ERR_NOT_FOUND,
          "missing explicit path accepted");
    CHECK(hr_tokenizer_find_for_model(STORIES_BIN, NULL, buf, 8) == HR_ERR_RANGE, "tiny buffer accepted");
    char dir[] = "/tmp/hr_test_tokdir_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char model[256];
    snprintf(model, sizeof model, "%s/model.bin", dir);
    hr_status st = hr_tokenizer_find_for_model(model, NULL, buf, sizeof buf);
    CHECK(st == HR_ERR_NOT_FOUND, "status %d", st);
    CHECK(strstr(hr_last_error(), "tok512.bin") && strstr(hr_last_error(), "tokenizer.bin") &&
              strstr(hr_last_error(), dir),
          "message '%s' does not name the places searched", hr_last_error());
    rmdir(dir);
}

int main(void) {
    HR_T_REQUIRE_SHARED("models/stories260K/stories260K.bin", "models/stories260K/stories260K.gguf",
                        "models/stories260K/tok512.bin", "models/gguf-vocab/ggml-vocab-gpt-2.gguf",
                        "models/gguf-vocab/ggml-vocab-llama-spm.gguf", "data/text/tinystories_val.txt",
                        "data/tokenizer-vectors/ggml-vocab-llama-spm.gguf.inp",
                        "data/tokenizer-vectors/ggml-vocab-llama-spm.gguf.out");
    RUN(tok512_round_trips_tinystories_byte_for_byte);
    RUN(stories260k_gguf_vocabulary_round_trips_tinystories_byte_for_byte);
    RUN(tok512_and_stories260k_gguf_give_identical_ids_on_tinystories);
    RUN(llama_spm_vectors_pass_with_llama_cpp_gguf_vocabulary);
    RUN(llama_spm_vectors_pass_with_llama2_tokenizer_model);
    RUN(llama_spm_vectors_pass_with_llama2_tokenizer_bin);
    RUN(llama2_tokenizer_model_bin_and_gguf_give_identical_ids_on_tinystories);
    RUN(llama2_tokenizer_model_round_trips_every_shared_text_byte_for_byte);
    RUN(invalid_utf8_is_a_format_error_naming_the_byte_offset);
    RUN(empty_text_gives_only_the_requested_specials);
    RUN(truncated_tok512_copies_are_clear_format_errors);
    RUN(missing_tokenizer_file_is_an_io_error);
    RUN(gpt2_gguf_vocabulary_loads_as_byte_level_bpe);
    RUN(hostile_bin_vocabularies_are_rejected);
    RUN(hostile_gguf_vocabularies_are_rejected);
    RUN(merges_take_the_highest_score_then_the_leftmost_pair);
    RUN(control_pieces_are_never_produced_by_merging);
    RUN(special_pieces_that_are_not_whole_characters_never_cut_a_character);
    RUN(heap_encoder_matches_a_naive_quadratic_bpe_on_random_texts);
    RUN(byte_fallback_encodes_characters_missing_from_the_vocabulary);
    RUN(pieces_are_returned_as_stored_and_spaces_normalise_identically);
    RUN(decode_one_drops_the_leading_space_only_after_bos);
    RUN(gguf_vocabulary_reads_special_ids_and_flags);
    RUN(find_for_model_locates_the_vocabulary_or_names_the_places_searched);
    TEST_MAIN_END();
}
