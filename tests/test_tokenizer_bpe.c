/* BPE tokenizer tests: GPT-2 (encoder.json + vocab.bpe, GGUF "gpt2"),
 * Hugging Face tokenizer.json (Mistral SentencePiece-style, Qwen3
 * byte-level) against llama.cpp's test vectors, round trips on every text
 * file, speed, special tokens and hostile files. */
#include "check.h"
#include "tok_util.h"
#include "headroom/tokenizer.h"
#include "core/internal.h"

#include <cjson/cJSON.h>

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GPT2_DIR SHARED("data/tokenizers/gpt2")
#define GPT2_GGUF SHARED("models/gguf-vocab/ggml-vocab-gpt-2.gguf")
#define MISTRAL_JSON SHARED("data/tokenizers/mistral/tokenizer.json")
#define QWEN3_DIR SHARED("data/tokenizers/qwen3")
#define QWEN3_JSON SHARED("data/tokenizers/qwen3/tokenizer.json")
#define VEC(name) SHARED("data/tokenizer-vectors/ggml-vocab-" name ".gguf")

static hr_status encode(const hr_tokenizer *t, const char *s, size_t len, bool special, int32_t **ids, size_t *n) {
    hr_encode_params p = hr_encode_default_params();
    p.add_bos = false; /* test-tokenizer-0 uses add_special = false */
    p.parse_special = special;
    return hr_tokenizer_encode(t, s, len, &p, ids, n);
}

/* Runs every vector of name through t; returns the number passing. */
static int pass_vectors(const hr_tokenizer *t, const char *name, const char *inp_path, const char *out_path) {
    size_t inp_len = 0, out_len = 0;
    char *inp = read_all(inp_path, &inp_len), *out = read_all(out_path, &out_len);
    int passed = 0, n = 0;
    if (!t || !inp || !out) goto done;
    enum { CAP = 256 };
    char *texts[CAP], *line = out, *save = NULL;
    size_t lens[CAP];
    n = split_vectors(inp, inp_len, texts, lens, CAP);
    for (int i = 0; i < n; i++) {
        char *eol = strchr(line, '\n');
        CHECK(eol != NULL, "%s: .out has fewer lines than .inp has texts (%d)", name, n);
        if (!eol) break;
        *eol = 0;
        int32_t want[512];
        int nw = 0;
        for (char *tok = strtok_r(line, " ", &save); tok && nw < 512; tok = strtok_r(NULL, " ", &save))
            want[nw++] = (int32_t)strtol(tok, NULL, 10);
        line = eol + 1;
        int32_t *ids = NULL;
        size_t nids = 0;
        hr_status st = encode(t, texts[i], lens[i], false, &ids, &nids);
        bool same = st == HR_OK && nids == (size_t)nw && (nw == 0 || memcmp(ids, want, (size_t)nw * 4) == 0);
        CHECK(same, "%s vector %d ('%.*s'): got %zu ids (first %d), want %d (first %d); %s", name, i,
              (int)(lens[i] > 40 ? 40 : lens[i]), texts[i], nids, nids ? ids[0] : -1, nw, nw ? want[0] : -1,
              st ? hr_last_error() : "");
        passed += same;
        free(ids);
    }
    CHECK(n > 30 && *line == 0, "%s: %d texts; .out has %s lines", name, n, *line ? "more" : "as many");
    printf("    %d/%d %s vectors pass\n", passed, n, name);
done:
    free(inp);
    free(out);
    return passed;
}

static void gpt2_encoder_json_and_vocab_bpe_pass_every_gpt2_vector(void) {
    hr_tokenizer *t = load(GPT2_DIR);
    if (t) printf("    %s\n", hr_tokenizer_kind(t));
    pass_vectors(t, "gpt-2 (encoder.json)", VEC("gpt-2") ".inp", VEC("gpt-2") ".out");
    hr_tokenizer_free(t);
}

static void gpt2_gguf_vocabulary_passes_every_gpt2_vector(void) {
    hr_tokenizer *t = load(GPT2_GGUF);
    if (t) printf("    %s\n", hr_tokenizer_kind(t));
    pass_vectors(t, "gpt-2 (GGUF)", VEC("gpt-2") ".inp", VEC("gpt-2") ".out");
    hr_tokenizer_free(t);
}

static bool same_ids(const hr_tokenizer *a, const hr_tokenizer *b, const char *text, size_t len, int bos) {
    hr_encode_params p = hr_encode_default_params();
    p.add_bos = bos;
    int32_t *ia = NULL, *ib = NULL;
    size_t na = 0, nb = 0;
    bool ok = hr_tokenizer_encode(a, text, len, &p, &ia, &na) == HR_OK &&
              hr_tokenizer_encode(b, text, len, &p, &ib, &nb) == HR_OK && na == nb &&
              memcmp(ia, ib, na * sizeof *ia) == 0;
    free(ia);
    free(ib);
    return ok;
}

static void every_way_of_naming_the_gpt2_files_loads_the_same_tokenizer(void) {
    hr_tokenizer *dir = load(GPT2_DIR), *enc = load(GPT2_DIR "/encoder.json"), *bpe = load(GPT2_DIR "/vocab.bpe"),
                 *gguf = load(GPT2_GGUF);
    const char *s = "Hello world! It's 2024 -- \xF0\x9F\xA6\x99 caf\xC3\xA9\n\n  indented\ttab";
    if (dir && enc && bpe && gguf) {
        CHECK(hr_tokenizer_vocab_size(dir) == 50257, "vocab %d", hr_tokenizer_vocab_size(dir));
        CHECK(same_ids(dir, enc, s, strlen(s), 0) && same_ids(dir, bpe, s, strlen(s), 0) &&
                  same_ids(dir, gguf, s, strlen(s), 0),
              "the four loads disagree");
        CHECK(hr_tokenizer_bos(dir) == 50256 && hr_tokenizer_eos(dir) == 50256, "bos %d eos %d", hr_tokenizer_bos(dir),
              hr_tokenizer_eos(dir));
        CHECK(!hr_tokenizer_add_bos_default(dir), "GPT-2 does not add BOS");
    }
    hr_tokenizer_free(dir);
    hr_tokenizer_free(enc);
    hr_tokenizer_free(bpe);
    hr_tokenizer_free(gguf);
}

/* Mistral-7B's tokenizer.json is a SentencePiece-converted 32000 piece
 * vocabulary with other ids than Llama-2's ggml-vocab-llama-spm.gguf (its
 * "▁" is 28705, not 29871), so llama.cpp's llama-spm vectors cannot be
 * compared id for id. Instead, the same vocabulary is written as a
 * llama2.c .bin with each piece scored by minus the rank of the merge that
 * produces it, and the score-based SentencePiece encoder (a separate
 * implementation) must give the same ids on every vector text. */
static char *spm_bin_from_tokenizer_json(void) {
    size_t len = 0;
    char *raw = read_all(MISTRAL_JSON, &len);
    cJSON *root = raw ? cJSON_ParseWithLength(raw, len) : NULL;
    free(raw);
    const cJSON *model = cJSON_GetObjectItem(root, "model"), *vocab = cJSON_GetObjectItem(model, "vocab"),
                *merges = cJSON_GetObjectItem(model, "merges");
    int n = cJSON_GetArraySize(vocab);
    CHECK(root && n == 32000 && cJSON_GetArraySize(merges) > 1000, "unexpected tokenizer.json (%d pieces)", n);
    if (n != 32000) {
        cJSON_Delete(root);
        return NULL;
    }
    const char **piece = calloc((size_t)n, sizeof *piece);
    float *score = malloc((size_t)n * sizeof *score);
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) piece[(int)e->valuedouble] = e->string;
    for (int i = 0; i < n; i++) score[i] = -1e9f;
    /* piece text -> id through a sorted index */
    int rank = 0;
    cJSON_ArrayForEach(e, merges) {
        const char *sp = strchr(e->valuestring + 1, ' ');
        char cat[256];
        snprintf(cat, sizeof cat, "%.*s%s", (int)(sp - e->valuestring), e->valuestring, sp + 1);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(vocab, cat);
        if (id && score[(int)id->valuedouble] == -1e9f) score[(int)id->valuedouble] = (float)-rank;
        rank++;
    }
    char *path = strdup("/tmp/hr_test_spm_XXXXXX");
    FILE *fp = fdopen(mkstemp(path), "wb");
    int32_t max_len = 64;
    fwrite(&max_len, 4, 1, fp);
    for (int i = 0; i < n; i++) {
        char text[256];
        size_t o = 0;
        for (const char *c = piece[i]; *c && o < 250;) /* the .bin writes spaces plainly */
            if (memcmp(c, "\xE2\x96\x81", 3) == 0) text[o++] = ' ', c += 3;
            else text[o++] = *c++;
        int32_t l = (int32_t)o;
        fwrite(&score[i], 4, 1, fp);
        fwrite(&l, 4, 1, fp);
        fwrite(text, 1, o, fp);
    }
    fclose(fp);
    free(piece);
    free(score);
    cJSON_Delete(root);
    return path;
}

static void mistral_tokenizer_json_matches_the_score_based_spm_encoder_on_every_vector_and_tinystories(void) {
    hr_tokenizer *a = load(MISTRAL_JSON);
    char *bin = spm_bin_from_tokenizer_json();
    hr_tokenizer *b = bin ? load(bin) : NULL;
    size_t inp_len = 0, len = 0;
    char *inp = read_all(VEC("llama-spm") ".inp", &inp_len),
         *text = read_all(SHARED("data/text/tinystories_val.txt"), &len);
    if (a && b && inp && text) {
        printf("    %s\n", hr_tokenizer_kind(a));
        char *texts[256];
        size_t lens[256];
        int n = split_vectors(inp, inp_len, texts, lens, 256), same = 0;
        for (int i = 0; i < n; i++) {
            bool ok = same_ids(a, b, texts[i], lens[i], 0);
            CHECK(ok, "vector %d ('%.*s') differs", i, (int)(lens[i] > 40 ? 40 : lens[i]), texts[i]);
            same += ok;
        }
        printf("    %d/%d llama-spm vector texts give the same ids\n", same, n);
        CHECK(same_ids(a, b, text, len, 1), "tinystories differs");
        /* ids read off the vocabulary: "▁Hello" is 22557, "▁" 28705 */
        int32_t *ids = NULL;
        size_t ni = 0;
        CHECK(encode(a, " Hello", 6, false, &ids, &ni) == HR_OK && ni == 2 && ids[0] == 28705 && ids[1] == 22557,
              "' Hello' -> %zu ids", ni);
        free(ids);
        CHECK(hr_tokenizer_bos(a) == 1 && hr_tokenizer_add_bos_default(a), "BOS from the template: %d",
              hr_tokenizer_bos(a));
    }
    if (bin) unlink(bin);
    free(bin);
    free(inp);
    free(text);
    hr_tokenizer_free(a);
    hr_tokenizer_free(b);
}

/* Encodes and decodes a file; returns encode seconds (negative on failure). */
static double round_trip(const hr_tokenizer *t, const char *path, size_t *bytes, size_t *n_ids) {
    size_t len = 0, back_len = 0;
    char *text = read_all(path, &len), *back = NULL;
    int32_t *ids = NULL;
    double dt = -1;
    if (!text) return dt;
    double t0 = hr_time_now();
    hr_status st = encode(t, text, len, false, &ids, n_ids);
    dt = hr_time_now() - t0;
    CHECK(st == HR_OK, "%s: %s", path, hr_last_error());
    if (!st) st = hr_tokenizer_decode(t, ids, *n_ids, true, &back, &back_len);
    CHECK(st == HR_OK, "decode %s: %s", path, hr_last_error());
    size_t diff = 0;
    while (diff < len && diff < back_len && text[diff] == back[diff]) diff++;
    CHECK(!st && back_len == len && diff == len, "%s: round trip differs at byte %zu (%zu vs %zu bytes)", path, diff,
          back_len, len);
    CHECK(st || *n_ids < len / 2, "%s: %zu ids for %zu bytes: merges did not happen", path, *n_ids, len);
    *bytes = len;
    free(text);
    free(back);
    free(ids);
    return st ? -1 : dt;
}

static void qwen3_tokenizer_json_round_trips_every_text_file(void) {
    hr_tokenizer *t = load(QWEN3_JSON);
    if (!t) return;
    printf("    %s: %d pieces\n", hr_tokenizer_kind(t), hr_tokenizer_vocab_size(t));
    static const char *files[] = {"tinystories_val.txt", "tinyshakespeare.txt", "wikitext2_test.raw", "brown.txt"};
    double total = 0;
    size_t total_bytes = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", SHARED("data/text"), files[i]);
        size_t bytes = 0, n = 0;
        double dt = round_trip(t, path, &bytes, &n);
        if (dt < 0) continue;
        total += dt;
        total_bytes += bytes;
        printf("    %-22s %8zu bytes -> %7zu ids in %.3f s (%.1f MB/s)\n", files[i], bytes, n, dt, bytes / dt / 1e6);
    }
    printf("    all: %zu bytes in %.3f s (speed is measured by bench/bench_tokenizer.sh, not asserted)\n", total_bytes,
           total);
    hr_tokenizer_free(t);
}

static void qwen3_splits_numbers_into_single_digits_and_keeps_leading_spaces(void) {
    hr_tokenizer *t = load(QWEN3_DIR);
    if (!t) return;
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(encode(t, "2024", 4, false, &ids, &n) == HR_OK && n == 4, "'2024' -> %zu ids", n);
    for (size_t i = 0; i < n && n == 4; i++) {
        size_t pl;
        const char *p = hr_tokenizer_piece(t, ids[i], &pl);
        CHECK(p && pl == 1 && p[0] == "2024"[i], "digit %zu is '%.*s'", i, (int)pl, p ? p : "");
    }
    free(ids);
    /* a text that starts with a space decodes with that space */
    char *back = NULL;
    CHECK(encode(t, " hi", 3, false, &ids, &n) == HR_OK, "%s", hr_last_error());
    CHECK(hr_tokenizer_decode(t, ids, n, true, &back, NULL) == HR_OK && back && strcmp(back, " hi") == 0,
          "' hi' decodes to '%s'", back ? back : "?");
    CHECK(hr_tokenizer_eos(t) >= 0 && !hr_tokenizer_add_bos_default(t), "eos %d", hr_tokenizer_eos(t));
    free(back);
    free(ids);
    hr_tokenizer_free(t);
}

static void special_tokens_are_parsed_only_when_asked(void) {
    hr_tokenizer *g = load(GPT2_DIR), *q = load(QWEN3_JSON);
    const char *s = "a<|endoftext|>b";
    int32_t *ids = NULL;
    size_t n = 0;
    if (g) {
        CHECK(encode(g, s, strlen(s), false, &ids, &n) == HR_OK && n > 3, "plain: %zu ids", n);
        for (size_t i = 0; i < n; i++) CHECK(ids[i] != 50256, "special id produced without parse_special");
        free(ids);
        CHECK(encode(g, s, strlen(s), true, &ids, &n) == HR_OK && n == 3 && ids[1] == 50256, "parsed: %zu ids", n);
        free(ids);
    }
    if (q) {
        const char *chat = "<|im_start|>user\nhi<|im_end|>";
        CHECK(encode(q, chat, strlen(chat), true, &ids, &n) == HR_OK && n >= 4, "%s", hr_last_error());
        size_t pl = 0;
        const char *p = n ? hr_tokenizer_piece(q, ids[0], &pl) : NULL;
        CHECK(p && pl == 12 && memcmp(p, "<|im_start|>", 12) == 0, "first piece '%.*s'", (int)pl, p ? p : "");
        CHECK(n && ids[n - 1] == hr_tokenizer_eos(q), "last id %d is not <|im_end|>", n ? ids[n - 1] : -1);
        free(ids);
    }
    hr_tokenizer_free(g);
    hr_tokenizer_free(q);
}

/* ---- hand-made tokenizer.json files ---- */

static char tmp_dir[64];

static char *write_file(const char *name, const void *data, size_t n) {
    char *path = malloc(strlen(tmp_dir) + strlen(name) + 2);
    sprintf(path, "%s/%s", tmp_dir, name);
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL, "cannot write %s", path);
    if (fp) {
        fwrite(data, 1, n, fp);
        fclose(fp);
    }
    return path;
}

static hr_status load_text(const char *json, hr_tokenizer **t) {
    char *path = write_file("tokenizer.json", json, strlen(json));
    *t = NULL;
    hr_status st = hr_tokenizer_load(path, t);
    CHECK((st == HR_OK) == (*t != NULL), "status %d with handle %p", st, (void *)*t);
    unlink(path);
    free(path);
    return st;
}

#define TINY_HEAD "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"bc\":4},"

static void merges_apply_in_rank_order_not_vocabulary_order(void) {
    hr_tokenizer *t = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    /* "b c" ranks first: abc -> a + bc; as a pair list the other way round */
    if (load_text(TINY_HEAD "\"merges\":[\"b c\",\"a b\"]}}", &t) == HR_OK) {
        CHECK(encode(t, "abc", 3, false, &ids, &n) == HR_OK && n == 2 && ids[0] == 0 && ids[1] == 4,
              "string merges: %zu ids", n);
        free(ids);
    }
    hr_tokenizer_free(t);
    if (load_text(TINY_HEAD "\"merges\":[[\"a\",\"b\"],[\"b\",\"c\"]]}}", &t) == HR_OK) {
        CHECK(encode(t, "abc", 3, false, &ids, &n) == HR_OK && n == 2 && ids[0] == 3 && ids[1] == 2,
              "pair merges: %zu ids", n);
        free(ids);
    }
    hr_tokenizer_free(t);
}

static void hostile_tokenizer_json_files_are_clear_errors(void) {
    hr_tokenizer *t = NULL;
    CHECK(load_text("{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":0}}}", &t) == HR_ERR_UNSUPPORTED &&
              strstr(hr_last_error(), "WordPiece"),
          "unknown model type: '%s'", hr_last_error());
    CHECK(load_text("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,}", &t) == HR_ERR_FORMAT &&
              strstr(hr_last_error(), "malformed JSON"),
          "malformed JSON: '%s'", hr_last_error());
    CHECK(load_text(TINY_HEAD "\"merges\":[\"a x\"]}}", &t) == HR_ERR_FORMAT && strstr(hr_last_error(), "'x'"),
          "merge with an unknown token: '%s'", hr_last_error());
    CHECK(load_text(TINY_HEAD "\"merges\":[\"c a\"]}}", &t) == HR_ERR_FORMAT &&
              strstr(hr_last_error(), "not in the vocabulary"),
          "merge whose result is missing: '%s'", hr_last_error());
    CHECK(load_text("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-3},\"merges\":[]}}", &t) == HR_ERR_FORMAT,
          "negative id: '%s'", hr_last_error());
    CHECK(load_text("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":2000000000},\"merges\":[]}}", &t) == HR_ERR_FORMAT,
          "huge id: '%s'", hr_last_error());
    CHECK(load_text("{\"pre_tokenizer\":{\"type\":\"Whitespace\"},\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},"
                    "\"merges\":[]}}",
                    &t) == HR_ERR_UNSUPPORTED &&
              strstr(hr_last_error(), "Whitespace"),
          "unknown pre-tokenizer: '%s'", hr_last_error());
    /* found by fuzz/fuzz_tokenizer_json: a normalizer's text cut a UTF-8
     * character, and encoding read past the end of a word */
    CHECK(load_text("{\"normalizer\":{\"type\":\"Prepend\",\"prepend\":\"\xE2\x96\xFF\"},"
                    "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}",
                    &t) == HR_ERR_FORMAT &&
              strstr(hr_last_error(), "UTF-8"),
          "Prepend text not UTF-8: '%s'", hr_last_error());
    CHECK(load_text("{\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xE2\"},"
                    "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}",
                    &t) == HR_ERR_FORMAT &&
              strstr(hr_last_error(), "UTF-8"),
          "Replace text not UTF-8: '%s'", hr_last_error());
    /* 100000 nested arrays: rejected before the parser recurses */
    enum { DEPTH = 100000 };
    char *deep = malloc(2 * DEPTH + 32);
    size_t k = 0;
    k += (size_t)sprintf(deep, "{\"model\":");
    for (int i = 0; i < DEPTH; i++) deep[k++] = '[';
    for (int i = 0; i < DEPTH; i++) deep[k++] = ']';
    deep[k++] = '}';
    deep[k] = 0;
    CHECK(load_text(deep, &t) == HR_ERR_FORMAT && strstr(hr_last_error(), "deeper"), "deep nesting: '%s'",
          hr_last_error());
    free(deep);
}

/* Found by fuzz/fuzz_tokenizer_json: chained Replace normalizers, each
 * turning " " into hundreds of bytes, made every encode allocate (and
 * touch) gigabytes; such files are now refused when loading. */
static void replace_normalizers_that_multiply_the_text_are_refused_on_load(void) {
    hr_tokenizer *t = NULL;
    const char *repl = "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"          \"}";
    char json[1024];
    snprintf(json, sizeof json,
             "{\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[%s,%s]},\"model\":{\"type\":\"BPE\","
             "\"vocab\":{\"a\":0},\"merges\":[]}}",
             repl, repl);
    CHECK(load_text(json, &t) == HR_ERR_UNSUPPORTED && strstr(hr_last_error(), "100-fold"),
          "two 10-fold replacements: '%s'", hr_last_error());
    hr_tokenizer_free(t);
    snprintf(json, sizeof json,
             "{\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[%s]},\"model\":{\"type\":\"BPE\","
             "\"vocab\":{\"a\":0,\" \":1},\"merges\":[]}}",
             repl);
    CHECK(load_text(json, &t) == HR_OK, "one 10-fold replacement: '%s'", hr_last_error());
    int32_t *ids = NULL;
    size_t n = 0;
    if (t) CHECK(encode(t, "a a", 3, false, &ids, &n) == HR_OK && n == 12, "%zu ids (%s)", n, hr_last_error());
    free(ids);
    hr_tokenizer_free(t);
}

/* Found by fuzz/fuzz_tokenizer_json (session 8): a pre-tokenizer regex
 * that matches the empty string at the end of the text (\z) read one byte
 * past it. Now an empty match at the end leaves the rest as one word: "ab"
 * encodes as the merged piece, "a b" as its three characters' pieces. */
static void a_pre_tokenizer_regex_matching_empty_at_the_end_stays_inside_the_text(void) {
    hr_tokenizer *t = NULL;
    CHECK(load_text("{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\z\"},"
                    "\"behavior\":\"Isolated\"},\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\" \":2,"
                    "\"ab\":3},\"merges\":[\"a b\"]}}",
                    &t) == HR_OK,
          "load: '%s'", hr_last_error());
    static const struct {
        const char *text;
        int n;
        int32_t ids[3];
    } cases[] = {{"ab", 1, {3}}, {"a b", 3, {0, 2, 1}}, {"b", 1, {1}}};
    for (size_t i = 0; t && i < sizeof cases / sizeof cases[0]; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        hr_status st = encode(t, cases[i].text, strlen(cases[i].text), false, &ids, &n);
        CHECK(st == HR_OK && n == (size_t)cases[i].n && memcmp(ids, cases[i].ids, sizeof(int32_t) * n) == 0,
              "'%s': status %d, %zu ids (%s)", cases[i].text, st, n, hr_last_error());
        free(ids);
    }
    hr_tokenizer_free(t);
}

static void invalid_utf8_text_is_a_format_error_for_bpe_tokenizers(void) {
    hr_tokenizer *g = load(GPT2_GGUF);
    if (!g) return;
    int32_t *ids = NULL;
    size_t n = 0;
    const char *bad = "fine \xC3\x28 here";
    CHECK(encode(g, bad, strlen(bad), false, &ids, &n) == HR_ERR_FORMAT && strstr(hr_last_error(), "offset 5"), "'%s'",
          hr_last_error());
    CHECK(ids == NULL && n == 0, "output not cleared");
    hr_tokenizer_free(g);
}

static void vocab_json_without_merges_beside_it_names_the_missing_file(void) {
    char *path = write_file("vocab.json", "{\"a\":0}", 7);
    hr_tokenizer *t = NULL;
    CHECK(hr_tokenizer_load(path, &t) == HR_ERR_NOT_FOUND && strstr(hr_last_error(), "merges.txt"), "'%s'",
          hr_last_error());
    unlink(path);
    free(path);
}

static void find_for_model_uses_the_tokenizer_json_of_a_model_folder(void) {
    char buf[4096];
    CHECK(hr_tokenizer_find_for_model(QWEN3_DIR, NULL, buf, sizeof buf) == HR_OK && strcmp(buf, QWEN3_JSON) == 0,
          "folder gave '%s' (%s)", buf, hr_last_error());
    char model[512];
    snprintf(model, sizeof model, "%s/model.safetensors", QWEN3_DIR);
    CHECK(hr_tokenizer_find_for_model(model, NULL, buf, sizeof buf) == HR_OK && strcmp(buf, QWEN3_JSON) == 0,
          "file in the folder gave '%s' (%s)", buf, hr_last_error());
    CHECK(hr_tokenizer_find_for_model(tmp_dir, NULL, buf, sizeof buf) == HR_ERR_NOT_FOUND &&
              strstr(hr_last_error(), "tokenizer.json"),
          "empty folder: '%s'", hr_last_error());
}

int main(void) {
    HR_T_REQUIRE_SHARED("data/tokenizers/gpt2/encoder.json", "data/tokenizers/gpt2/vocab.bpe",
                        "data/tokenizers/llama2/tokenizer.json", "data/tokenizers/qwen3/tokenizer.json",
                        "models/gguf-vocab/ggml-vocab-gpt-2.gguf", "data/tokenizer-vectors/ggml-vocab-gpt-2.gguf.inp",
                        "data/tokenizer-vectors/ggml-vocab-gpt-2.gguf.out",
                        "data/tokenizer-vectors/ggml-vocab-llama-spm.gguf.inp",
                        "data/tokenizer-vectors/ggml-vocab-llama-spm.gguf.out", "data/text/tinystories_val.txt",
                        "data/text/tinyshakespeare.txt", "data/text/wikitext2_test.raw", "data/text/brown.txt");
    if (hr_t_scratch_dir(tmp_dir, sizeof tmp_dir, "test_bpe")) return 1;
    RUN(gpt2_encoder_json_and_vocab_bpe_pass_every_gpt2_vector);
    RUN(gpt2_gguf_vocabulary_passes_every_gpt2_vector);
    RUN(every_way_of_naming_the_gpt2_files_loads_the_same_tokenizer);
    RUN(mistral_tokenizer_json_matches_the_score_based_spm_encoder_on_every_vector_and_tinystories);
    RUN(qwen3_tokenizer_json_round_trips_every_text_file);
    RUN(qwen3_splits_numbers_into_single_digits_and_keeps_leading_spaces);
    RUN(special_tokens_are_parsed_only_when_asked);
    RUN(merges_apply_in_rank_order_not_vocabulary_order);
    RUN(hostile_tokenizer_json_files_are_clear_errors);
    RUN(replace_normalizers_that_multiply_the_text_are_refused_on_load);
    RUN(a_pre_tokenizer_regex_matching_empty_at_the_end_stays_inside_the_text);
    RUN(invalid_utf8_text_is_a_format_error_for_bpe_tokenizers);
    RUN(vocab_json_without_merges_beside_it_names_the_missing_file);
    RUN(find_for_model_uses_the_tokenizer_json_of_a_model_folder);
    hr_t_rm_rf(tmp_dir);
    TEST_MAIN_END();
}
