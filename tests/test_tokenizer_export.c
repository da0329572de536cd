/* Tokenizer export: tokenizer.json / tokenizer_config.json written from
 * every supported vocabulary, GGUF tokenizer metadata, and the public
 * vocabulary accessors. Every export is read back with hr_tokenizer_load
 * and must give the same ids as the source on TinyStories and on
 * llama.cpp's tokenizer test texts. */
#include "check.h"
#include "tok_util.h"
#include "headroom/save.h"
#include "headroom/gguf.h"
#include "headroom/model.h"
#include "headroom/tokenizer.h"
#include "core/internal.h"

#include <cjson/cJSON.h>

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOK512 SHARED("models/stories260K/tok512.bin")
#define STORIES SHARED("models/stories260K/stories260K.bin")
#define LLAMA_SPM_GGUF SHARED("models/gguf-vocab/ggml-vocab-llama-spm.gguf")
#define GPT2_GGUF SHARED("models/gguf-vocab/ggml-vocab-gpt-2.gguf")
#define GPT2_DIR SHARED("data/tokenizers/gpt2")
#define MISTRAL_JSON SHARED("data/tokenizers/mistral/tokenizer.json")
#define QWEN3_JSON SHARED("data/tokenizers/qwen3/tokenizer.json")
#define TINYSTORIES SHARED("data/text/tinystories_val.txt")
#define VEC_INP(name) SHARED("data/tokenizer-vectors/ggml-vocab-" name ".gguf.inp")

/* The big vocabularies are compared on a prefix of TinyStories (speed). */
#define PREFIX_BYTES ((size_t)200 << 10)

static char g_dir[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

/* Both tokenizers give the same ids (default parameters, so BOS handling
 * is compared too) and the same decoded text. */
static bool same_ids(const char *label, const hr_tokenizer *a, const hr_tokenizer *b, const char *text, size_t len) {
    hr_encode_params p = hr_encode_default_params();
    int32_t *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    hr_status sa = hr_tokenizer_encode(a, text, len, &p, &x, &nx);
    hr_status sb = hr_tokenizer_encode(b, text, len, &p, &y, &ny);
    size_t at = 0;
    while (at < nx && at < ny && x[at] == y[at]) at++;
    bool same = sa == HR_OK && sb == HR_OK && nx == ny && at == nx;
    CHECK(same, "%s: %zu vs %zu ids, first difference at %zu ('%.*s'); %s", label, nx, ny, at,
          (int)(len > 40 ? 40 : len), text, sa || sb ? hr_last_error() : "");
    if (same) {
        char *da = NULL, *db = NULL;
        size_t la = 0, lb = 0;
        CHECK(hr_tokenizer_decode(a, x, nx, true, &da, &la) == HR_OK &&
                  hr_tokenizer_decode(b, y, ny, true, &db, &lb) == HR_OK && la == lb && memcmp(da, db, la) == 0,
              "%s: decoded texts differ", label);
        free(da), free(db);
    }
    free(x), free(y);
    return same;
}

/* Compares a and b on every text of a llama.cpp .inp file (texts split at
 * "\n__ggml_vocab_test__\n"). */
static void same_on_vectors(const char *label, const hr_tokenizer *a, const hr_tokenizer *b, const char *inp) {
    size_t len = 0;
    char *raw = read_all(inp, &len);
    if (!raw) return;
    static const char sep[] = "\n__ggml_vocab_test__\n";
    int n = 0, ok = 0;
    for (size_t pos = 0; pos < len; n++) {
        char *next = memmem(raw + pos, len - pos, sep, sizeof sep - 1);
        size_t end = next ? (size_t)(next - raw) : len;
        ok += same_ids(label, a, b, raw + pos, end - pos);
        pos = next ? end + sizeof sep - 1 : len;
    }
    CHECK(n > 30 && ok == n, "%s: %d/%d vector texts agree", label, ok, n);
    free(raw);
}

static void same_on_tinystories(const char *label, const hr_tokenizer *a, const hr_tokenizer *b, size_t cap) {
    size_t len = 0;
    char *text = read_all(TINYSTORIES, &len);
    if (!text) return;
    if (len > cap) { /* cut at a line end so that the prefix is valid UTF-8 */
        len = cap;
        while (len && text[len - 1] != '\n') len--;
    }
    same_ids(label, a, b, text, len);
    free(text);
}

/* Exports t as tokenizer.json + tokenizer_config.json into a fresh folder
 * and loads the folder back. */
static hr_tokenizer *export_and_reload(const hr_tokenizer *t, const char *name) {
    const char *dir = tmp_path(name);
    mkdir(dir, 0755);
    char json[600], cfg[600];
    snprintf(json, sizeof json, "%s/tokenizer.json", dir);
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
    CHECK(t && hr_tokenizer_save_json(t, json) == HR_OK, "save_json %s: %s", name, hr_last_error());
    CHECK(t && hr_tokenizer_save_config_json(t, cfg, 0) == HR_OK, "save_config_json %s: %s", name, hr_last_error());
    return load(dir);
}

/* Same vocabulary, types, specials and flags. */
static void same_vocabulary(const char *label, const hr_tokenizer *a, const hr_tokenizer *b) {
    if (!a || !b) return;
    CHECK(hr_tokenizer_vocab_size(a) == hr_tokenizer_vocab_size(b), "%s: vocab %d vs %d", label,
          hr_tokenizer_vocab_size(a), hr_tokenizer_vocab_size(b));
    CHECK(hr_tokenizer_bos(a) == hr_tokenizer_bos(b) && hr_tokenizer_eos(a) == hr_tokenizer_eos(b) &&
              hr_tokenizer_unk(a) == hr_tokenizer_unk(b),
          "%s: bos/eos/unk %d/%d/%d vs %d/%d/%d", label, hr_tokenizer_bos(a), hr_tokenizer_eos(a), hr_tokenizer_unk(a),
          hr_tokenizer_bos(b), hr_tokenizer_eos(b), hr_tokenizer_unk(b));
    CHECK(hr_tokenizer_add_bos_default(a) == hr_tokenizer_add_bos_default(b), "%s: add_bos differs", label);
    int bad_text = 0, bad_type = 0;
    for (int32_t i = 0; i < hr_tokenizer_vocab_size(a) && i < hr_tokenizer_vocab_size(b); i++) {
        size_t la, lb;
        const char *sa = hr_tokenizer_token_text(a, i, &la), *sb = hr_tokenizer_token_text(b, i, &lb);
        bad_text += la != lb || memcmp(sa, sb, la) != 0;
        hr_token_type ta = hr_tokenizer_token_type(a, i), tb = hr_tokenizer_token_type(b, i);
        /* unused / undefined pieces come back as normal ones: both merge alike */
        bool ua = ta == HR_TOKEN_UNUSED || ta == HR_TOKEN_UNDEFINED || ta == HR_TOKEN_NORMAL;
        bad_type += ta != tb && !(ua && tb == HR_TOKEN_NORMAL);
    }
    CHECK(bad_text == 0 && bad_type == 0, "%s: %d token texts and %d token types differ", label, bad_text, bad_type);
}

static void tok512_exports_to_a_tokenizer_json_that_encodes_all_tinystories_identically(void) {
    hr_tokenizer *t = load(TOK512), *back = export_and_reload(t, "tok512");
    same_vocabulary("tok512", t, back);
    if (t && back) {
        same_on_tinystories("tok512 -> tokenizer.json", t, back, SIZE_MAX);
        same_on_vectors("tok512 -> tokenizer.json", t, back, VEC_INP("llama-spm"));
        CHECK(hr_tokenizer_model(back) == HR_TOKENIZER_BPE_CHARS, "reloaded as character BPE");
    }
    hr_tokenizer_free(t), hr_tokenizer_free(back);
}

static void llama_spm_gguf_vocabulary_exports_to_a_tokenizer_json_that_encodes_identically(void) {
    hr_tokenizer *t = load(LLAMA_SPM_GGUF), *back = export_and_reload(t, "llama-spm");
    same_vocabulary("llama-spm", t, back);
    if (t && back) {
        same_on_tinystories("llama-spm -> tokenizer.json", t, back, PREFIX_BYTES);
        same_on_vectors("llama-spm -> tokenizer.json", t, back, VEC_INP("llama-spm"));
        same_on_vectors("llama-spm -> tokenizer.json (gpt-2 texts)", t, back, VEC_INP("gpt-2"));
    }
    hr_tokenizer_free(t), hr_tokenizer_free(back);
}

static void gpt2_vocabularies_export_to_tokenizer_json_files_that_encode_identically(void) {
    const char *src[] = {GPT2_DIR, GPT2_GGUF}, *name[] = {"gpt2-files", "gpt2-gguf"};
    for (int i = 0; i < 2; i++) {
        hr_tokenizer *t = load(src[i]), *back = export_and_reload(t, name[i]);
        same_vocabulary(name[i], t, back);
        if (t && back) {
            same_on_tinystories(name[i], t, back, PREFIX_BYTES);
            same_on_vectors(name[i], t, back, VEC_INP("gpt-2"));
            CHECK(hr_tokenizer_pre_name(back) && strcmp(hr_tokenizer_pre_name(back), "gpt-2") == 0,
                  "%s: reloaded pre-tokenizer is gpt-2", name[i]);
        }
        hr_tokenizer_free(t), hr_tokenizer_free(back);
    }
}

static void qwen3_tokenizer_json_exports_with_its_regex_and_nfc_and_encodes_identically(void) {
    hr_tokenizer *t = load(QWEN3_JSON), *back = export_and_reload(t, "qwen3");
    same_vocabulary("qwen3", t, back);
    if (t && back) {
        same_on_tinystories("qwen3", t, back, PREFIX_BYTES);
        same_on_vectors("qwen3", t, back, VEC_INP("gpt-2"));
        same_on_vectors("qwen3 (llama-spm texts)", t, back, VEC_INP("llama-spm"));
        CHECK(hr_tokenizer_pre_name(back) && strcmp(hr_tokenizer_pre_name(back), "qwen2") == 0, "pre is qwen2");
        CHECK(hr_tokenizer_pre_regex(t) && hr_tokenizer_pre_regex(back) &&
                  strcmp(hr_tokenizer_pre_regex(t), hr_tokenizer_pre_regex(back)) == 0,
              "the split regex is written as it was read");
        CHECK(hr_tokenizer_n_merges(t) == hr_tokenizer_n_merges(back) && hr_tokenizer_n_merges(t) > 100000,
              "%zu vs %zu merges", hr_tokenizer_n_merges(t), hr_tokenizer_n_merges(back));
    }
    size_t len = 0;
    char *json = read_all(tmp_path("qwen3/tokenizer.json"), &len);
    cJSON *root = json ? cJSON_ParseWithLength(json, len) : NULL;
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(norm, "type");
    CHECK(cJSON_IsString(type) && strcmp(type->valuestring, "NFC") == 0, "the NFC normalizer is kept");
    cJSON_Delete(root);
    free(json);
    hr_tokenizer_free(t), hr_tokenizer_free(back);
}

/* Mistral's tokenizer.json (character BPE) also survives both writers:
 * its own tokenizer.json and GGUF "llama" with rank-derived scores. */
static void mistral_tokenizer_json_survives_tokenizer_json_and_gguf_export(void) {
    hr_tokenizer *t = load(MISTRAL_JSON), *back = export_and_reload(t, "mistral");
    same_vocabulary("mistral json", t, back);
    if (t && back) same_on_vectors("mistral -> tokenizer.json", t, back, VEC_INP("llama-spm"));
    hr_model *m = NULL;
    CHECK(hr_model_load(STORIES, &m) == HR_OK, "%s", hr_last_error());
    CHECK(m && t && hr_model_save_gguf(m, t, tmp_path("mistral.gguf"), HR_DTYPE_F32) == HR_OK, "%s", hr_last_error());
    hr_tokenizer *g = load(tmp_path("mistral.gguf"));
    CHECK(g && hr_tokenizer_model(g) == HR_TOKENIZER_SPM, "written as a SentencePiece vocabulary");
    if (t && g) {
        same_on_vectors("mistral -> GGUF llama", t, g, VEC_INP("llama-spm"));
        same_on_tinystories("mistral -> GGUF llama", t, g, PREFIX_BYTES);
    }
    hr_tokenizer_free(g);
    hr_model_free(m);
    hr_tokenizer_free(t), hr_tokenizer_free(back);
}

/* HF's converters order derived merges by the score of the piece they make. */
static void derived_merges_are_ordered_by_the_score_of_the_merged_piece(void) {
    hr_tokenizer *t = load(TOK512), *back = export_and_reload(t, "tok512-order");
    if (!t || !back) goto done;
    CHECK(hr_tokenizer_n_merges(t) == 0, "a SentencePiece vocabulary has no merges of its own");
    size_t n = hr_tokenizer_n_merges(back);
    int nv = hr_tokenizer_vocab_size(t);
    bool *made = calloc((size_t)nv, 1); // (nv) piece is the result of some merge
    int unordered = 0, missing = 0;
    float prev = INFINITY;
    for (size_t i = 0; i < n; i++) {
        int32_t l, r;
        CHECK(hr_tokenizer_merge(back, i, &l, &r) == HR_OK, "merge %zu", i);
        size_t ll, rl;
        const char *ls = hr_tokenizer_token_text(back, l, &ll), *rs = hr_tokenizer_token_text(back, r, &rl);
        char buf[256];
        if (ll + rl > sizeof buf) continue;
        memcpy(buf, ls, ll);
        memcpy(buf + ll, rs, rl);
        int32_t id = -1; /* the merged piece in the source vocabulary */
        for (int32_t k = 0; k < hr_tokenizer_vocab_size(t) && id < 0; k++) {
            size_t kl;
            const char *ks = hr_tokenizer_token_text(t, k, &kl);
            if (kl == ll + rl && memcmp(ks, buf, kl) == 0) id = k;
        }
        missing += id < 0;
        if (id < 0) continue;
        made[id] = true;
        float sc = hr_tokenizer_score(t, id);
        unordered += sc > prev;
        prev = sc;
    }
    CHECK(n > 0 && missing == 0 && unordered == 0, "%zu merges: %d make unknown pieces, %d break the score order", n,
          missing, unordered);
    /* every normal piece of two or more characters can be built */
    int unmade = 0;
    for (int32_t k = 0; k < nv; k++) {
        size_t kl;
        const char *ks = hr_tokenizer_token_text(t, k, &kl);
        size_t first = kl ? ((uint8_t)ks[0] < 0x80 ? 1 : (uint8_t)ks[0] < 0xE0 ? 2 : (uint8_t)ks[0] < 0xF0 ? 3 : 4) : 0;
        unmade += hr_tokenizer_token_type(t, k) == HR_TOKEN_NORMAL && kl > first && !made[k];
    }
    CHECK(unmade == 0, "%d multi-character pieces are the result of no merge", unmade);
    free(made);
    int32_t l, r;
    CHECK(hr_tokenizer_merge(t, 0, &l, &r) == HR_ERR_RANGE, "no merge 0 in a SentencePiece vocabulary");
done:
    hr_tokenizer_free(t), hr_tokenizer_free(back);
}

static void accessors_spell_pieces_as_vocabulary_files_do(void) {
    hr_tokenizer *spm = load(TOK512), *gpt2 = load(GPT2_DIR);
    if (spm) {
        size_t len;
        const char *s = hr_tokenizer_token_text(spm, 1, &len);
        CHECK(len == 3 && memcmp(s, "<s>", 3) == 0, "BOS of the .bin is spelled <s>, got '%.*s'", (int)len, s);
        CHECK(hr_tokenizer_token_type(spm, 1) == HR_TOKEN_CONTROL && hr_tokenizer_token_type(spm, 3) == HR_TOKEN_BYTE,
              "types");
        int32_t sp = -1; /* a piece with a space, spelled with U+2581 */
        for (int32_t i = 3; i < hr_tokenizer_vocab_size(spm) && sp < 0; i++) {
            size_t rl;
            const char *raw = hr_tokenizer_piece(spm, i, &rl);
            if (rl && raw[0] == ' ') sp = i;
        }
        s = sp >= 0 ? hr_tokenizer_token_text(spm, sp, &len) : NULL;
        CHECK(s && len >= 3 && memcmp(s, "\xE2\x96\x81", 3) == 0, "spaces become U+2581");
        CHECK(hr_tokenizer_model(spm) == HR_TOKENIZER_SPM && hr_tokenizer_pre_name(spm) == NULL, "spm");
        CHECK(hr_tokenizer_token_text(spm, -1, &len) == NULL && len == 0 &&
                  hr_tokenizer_token_text(spm, hr_tokenizer_vocab_size(spm), &len) == NULL,
              "out-of-range ids");
    }
    if (gpt2) {
        size_t len;
        int32_t l, r;
        CHECK(hr_tokenizer_model(gpt2) == HR_TOKENIZER_BPE_BYTES, "byte-level");
        CHECK(hr_tokenizer_n_merges(gpt2) == 50000, "GPT-2 has 50000 merges, got %zu", hr_tokenizer_n_merges(gpt2));
        CHECK(hr_tokenizer_merge(gpt2, 0, &l, &r) == HR_OK, "%s", hr_last_error());
        /* vocab.bpe's first merge is "Ġ t" */
        const char *a = hr_tokenizer_token_text(gpt2, l, &len);
        CHECK(len == 2 && memcmp(a, "\xC4\xA0", 2) == 0, "left side 'Ġ'");
        a = hr_tokenizer_token_text(gpt2, r, &len);
        CHECK(len == 1 && a[0] == 't', "right side 't'");
        CHECK(hr_tokenizer_merge(gpt2, 50000, &l, &r) == HR_ERR_RANGE, "merge past the end");
    }
    hr_tokenizer_free(spm), hr_tokenizer_free(gpt2);
}

static bool gguf_str_is(const hr_gguf *g, const char *key, const char *want) {
    const char *s;
    size_t len;
    return hr_gguf_get_str(g, key, &s, &len) == HR_OK && len == strlen(want) && memcmp(s, want, len) == 0;
}

static void gguf_from_byte_level_vocabularies_names_the_pre_tokenizer(void) {
    hr_model *m = NULL;
    CHECK(hr_model_load(STORIES, &m) == HR_OK, "%s", hr_last_error());
    const char *src[] = {GPT2_DIR, QWEN3_JSON}, *out[] = {"gpt2-vocab.gguf", "qwen3-vocab.gguf"};
    const char *pre[] = {"gpt-2", "qwen2"};
    for (int i = 0; i < 2 && m; i++) {
        hr_tokenizer *t = load(src[i]);
        CHECK(t && hr_model_save_gguf(m, t, tmp_path(out[i]), HR_DTYPE_F32) == HR_OK, "%s", hr_last_error());
        hr_gguf *g = NULL;
        CHECK(hr_gguf_open(tmp_path(out[i]), &g) == HR_OK, "%s", hr_last_error());
        CHECK(g && gguf_str_is(g, "tokenizer.ggml.model", "gpt2") && gguf_str_is(g, "tokenizer.ggml.pre", pre[i]),
              "%s: tokenizer.ggml.pre is %s", out[i], pre[i]);
        hr_tokenizer *back = NULL;
        CHECK(g && hr_tokenizer_from_gguf(g, &back) == HR_OK, "%s", hr_last_error());
        if (t && back) same_on_vectors(out[i], t, back, VEC_INP("gpt-2"));
        hr_tokenizer_free(back);
        hr_gguf_close(g);
        hr_tokenizer_free(t);
    }
    hr_model_free(m);
}

static void bin_to_hf_folder_carries_a_tokenizer_that_encodes_identically(void) {
    hr_model *m = NULL;
    hr_tokenizer *t = load(TOK512);
    CHECK(hr_model_load(STORIES, &m) == HR_OK, "%s", hr_last_error());
    const char *dir = tmp_path("stories_hf");
    CHECK(m && t && hr_model_save_hf(m, t, dir, HR_DTYPE_F32) == HR_OK, "%s", hr_last_error());
    char buf[4096];
    CHECK(hr_tokenizer_find_for_model(dir, NULL, buf, sizeof buf) == HR_OK && strstr(buf, "tokenizer.json"),
          "the folder's tokenizer is found: '%s' (%s)", buf, hr_last_error());
    hr_tokenizer *back = load(dir);
    same_vocabulary("stories HF folder", t, back);
    if (t && back) same_on_tinystories("stories HF folder", t, back, SIZE_MAX);
    size_t len = 0;
    char *cfg = read_all(tmp_path("stories_hf/tokenizer_config.json"), &len);
    cJSON *j = cfg ? cJSON_ParseWithLength(cfg, len) : NULL;
    const cJSON *bos = cJSON_GetObjectItemCaseSensitive(j, "bos_token"),
                *eos = cJSON_GetObjectItemCaseSensitive(j, "eos_token");
    CHECK(cJSON_IsString(bos) && strcmp(bos->valuestring, "<s>") == 0 && cJSON_IsString(eos) &&
              strcmp(eos->valuestring, "</s>") == 0,
          "tokenizer_config.json names <s> and </s>");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "add_bos_token")), "add_bos_token true");
    cJSON_Delete(j);
    free(cfg);
    hr_tokenizer_free(back), hr_tokenizer_free(t);
    hr_model_free(m);
}

/* A llama2.c .bin with one piece that is not UTF-8 (raw byte 0xFF). */
static const char *write_bad_bin(void) {
    const char *path = tmp_path("bad.bin");
    FILE *f = fopen(path, "wb");
    if (!f) return path;
    int32_t max_len = 8;
    fwrite(&max_len, 4, 1, f);
    const char *pieces[] = {"<unk>", "\n<s>\n", "\n</s>\n", "a", "\xFF"};
    for (int i = 0; i < 5; i++) {
        float sc = -(float)i;
        int32_t len = (int32_t)strlen(pieces[i]);
        fwrite(&sc, 4, 1, f);
        fwrite(&len, 4, 1, f);
        fwrite(pieces[i], 1, (size_t)len, f);
    }
    fclose(f);
    return path;
}

static void pieces_json_cannot_hold_are_refused_and_nothing_is_left_behind(void) {
    hr_tokenizer *t = load(write_bad_bin());
    const char *out = tmp_path("bad.json");
    CHECK(t && hr_tokenizer_save_json(t, out) == HR_ERR_UNSUPPORTED && strstr(hr_last_error(), "token 4"), "'%s'",
          hr_last_error());
    CHECK(access(out, F_OK) != 0, "no tokenizer.json written");
    CHECK(t && hr_tokenizer_save_json(t, "/nonexistent-dir/tokenizer.json") != HR_OK, "unwritable path fails");
    hr_tokenizer *good = load(TOK512);
    CHECK(good && hr_tokenizer_save_json(good, "/nonexistent-dir/tokenizer.json") == HR_ERR_IO, "'%s'",
          hr_last_error());
    CHECK(hr_tokenizer_save_json(NULL, out) == HR_ERR_INVALID_ARG, "NULL tokenizer");
    hr_tokenizer_free(good);
    hr_tokenizer_free(t);
}

int main(void) {
    HR_T_REQUIRE_SHARED("models/stories260K/stories260K.bin", "models/stories260K/tok512.bin",
                        "models/gguf-vocab/ggml-vocab-gpt-2.gguf", "models/gguf-vocab/ggml-vocab-llama-spm.gguf",
                        "data/tokenizers/gpt2/encoder.json", "data/tokenizers/gpt2/vocab.bpe",
                        "data/tokenizers/llama2/tokenizer.json", "data/tokenizers/qwen3/tokenizer.json",
                        "data/text/tinystories_val.txt", "data/tokenizer-vectors/ggml-vocab-gpt-2.gguf.inp",
                        "data/tokenizer-vectors/ggml-vocab-llama-spm.gguf.inp");
    if (hr_t_scratch_dir(g_dir, sizeof g_dir, "test_tok_export")) return 1;
    RUN(tok512_exports_to_a_tokenizer_json_that_encodes_all_tinystories_identically);
    RUN(llama_spm_gguf_vocabulary_exports_to_a_tokenizer_json_that_encodes_identically);
    RUN(gpt2_vocabularies_export_to_tokenizer_json_files_that_encode_identically);
    RUN(qwen3_tokenizer_json_exports_with_its_regex_and_nfc_and_encodes_identically);
    RUN(mistral_tokenizer_json_survives_tokenizer_json_and_gguf_export);
    RUN(derived_merges_are_ordered_by_the_score_of_the_merged_piece);
    RUN(accessors_spell_pieces_as_vocabulary_files_do);
    RUN(gguf_from_byte_level_vocabularies_names_the_pre_tokenizer);
    RUN(bin_to_hf_folder_carries_a_tokenizer_that_encodes_identically);
    RUN(pieces_json_cannot_hold_are_refused_and_nothing_is_left_behind);
    hr_t_rm_rf(g_dir);
    TEST_MAIN_END();
}
