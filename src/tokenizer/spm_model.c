/* SentencePiece .model files: sentencepiece's ModelProto in protobuf wire
 * format (protobuf.h). Field numbers as in sentencepiece_model.proto; only
 * the fields below are read, every other field is skipped by its wire type:
 *
 *   ModelProto
 *     1  pieces           repeated SentencePiece, in id order
 *          1  piece       string, non-empty
 *          2  score       float (higher merges first)
 *          3  type        enum NORMAL=1 (default) UNKNOWN=2 CONTROL=3
 *                         USER_DEFINED=4 UNUSED=5 BYTE=6
 *     2  trainer_spec     TrainerSpec
 *          3  model_type  enum UNIGRAM=1 (default) BPE=2 WORD=3 CHAR=4
 *          24 treat_whitespace_as_suffix  bool (false)
 *          35 byte_fallback               bool (false)
 *          40 unk_id (0)  41 bos_id (1)  42 eos_id (2)  43 pad_id (-1)
 *                         int32, -1 = none
 *     3  normalizer_spec  NormalizerSpec
 *          1  name                      string ("identity", "nmt_nfkc", ...)
 *          2  precompiled_charsmap      bytes (the normalisation rules)
 *          3  add_dummy_prefix          bool (true)
 *          4  remove_extra_whitespaces  bool (true)
 *          5  escape_whitespaces        bool (true)
 *     4  self_test_data, 5 denormalizer_spec: skipped
 *
 * Serialisers write fields in number order, so a file starts with its first
 * piece: byte 0x0A (field 1, length-delimited), a length, 0x0A again (the
 * piece's text). A llama2.c tokenizer .bin never starts that way (its first
 * int32 would exceed any max_token_length it allows).
 *
 * Both specs must be present (SentencePiece always writes them; a file cut
 * after its pieces would otherwise read as a default UNIGRAM model).
 * Everything is parsed and checked before the vocabulary is built. BPE
 * models map onto the SentencePiece encoder (merges by piece score, byte
 * fallback, leading-space rule = add_dummy_prefix). Refused with
 * HR_ERR_UNSUPPORTED, each named: UNIGRAM, WORD and CHAR models, a
 * normalizer with precompiled rules (anything but identity), removal of
 * extra whitespace, unescaped whitespace, whitespace as suffix. */
#include "tokenizer/protobuf.h"
#include "tokenizer/tok_internal.h"
#include "core/limits.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { SPM_UNIGRAM = 1, SPM_BPE = 2, SPM_WORD = 3, SPM_CHAR = 4 };

/* The settings read from trainer_spec and normalizer_spec, with the
 * proto's defaults. */
typedef struct {
    bool have_trainer, have_normalizer; /* SentencePiece always writes both */
    int32_t model_type;
    bool byte_fallback;
    bool ws_suffix;
    int32_t unk, bos, eos, pad;
    const uint8_t *norm_name;
    size_t norm_name_len;
    size_t charsmap_len;
    bool dummy_prefix;
    bool remove_extra_ws;
    bool escape_ws;
} spm_spec;

static const spm_spec k_spec_defaults = {
    .model_type = SPM_UNIGRAM,
    .unk = 0,
    .bos = 1,
    .eos = 2,
    .pad = -1,
    .dummy_prefix = true,
    .remove_extra_ws = true,
    .escape_ws = true,
};

bool tok_is_spm_model(const uint8_t *data, size_t size) {
    if (size < 3 || data[0] != 0x0A) return false;
    size_t i = 1;
    while (i < size && i < 6 && (data[i] & 0x80)) i++; /* the first piece's length */
    return i + 1 < size && !(data[i] & 0x80) && data[i + 1] == 0x0A;
}

static hr_status read_trainer(pb_reader r, spm_spec *s) {
    pb_field f;
    bool more;
    hr_status st;
    while (!(st = pb_next(&r, &f, &more)) && more) {
        switch (f.number) {
        case 3: st = pb_int32(&f, "trainer_spec.model_type", &s->model_type); break;
        case 24: st = pb_bool(&f, "trainer_spec.treat_whitespace_as_suffix", &s->ws_suffix); break;
        case 35: st = pb_bool(&f, "trainer_spec.byte_fallback", &s->byte_fallback); break;
        case 40: st = pb_int32(&f, "trainer_spec.unk_id", &s->unk); break;
        case 41: st = pb_int32(&f, "trainer_spec.bos_id", &s->bos); break;
        case 42: st = pb_int32(&f, "trainer_spec.eos_id", &s->eos); break;
        case 43: st = pb_int32(&f, "trainer_spec.pad_id", &s->pad); break;
        default: break;
        }
        if (st) return st;
    }
    return st;
}

static hr_status read_normalizer(pb_reader r, spm_spec *s) {
    pb_field f;
    bool more;
    hr_status st;
    while (!(st = pb_next(&r, &f, &more)) && more) {
        switch (f.number) {
        case 1:
            if (!(st = pb_expect(&f, PB_LEN, "normalizer_spec.name"))) s->norm_name = f.data, s->norm_name_len = f.len;
            break;
        case 2:
            if (!(st = pb_expect(&f, PB_LEN, "normalizer_spec.precompiled_charsmap"))) s->charsmap_len = f.len;
            break;
        case 3: st = pb_bool(&f, "normalizer_spec.add_dummy_prefix", &s->dummy_prefix); break;
        case 4: st = pb_bool(&f, "normalizer_spec.remove_extra_whitespaces", &s->remove_extra_ws); break;
        case 5: st = pb_bool(&f, "normalizer_spec.escape_whitespaces", &s->escape_ws); break;
        default: break;
        }
        if (st) return st;
    }
    return st;
}

/* One SentencePiece message: its text, score and type. */
static hr_status read_piece(pb_reader r, int32_t id, size_t at, tok_span *piece, float *score, uint8_t *type) {
    pb_field f;
    bool more;
    hr_status st;
    int32_t ty = TOK_NORMAL;
    *piece = (tok_span){NULL, 0};
    *score = 0.0f;
    while (!(st = pb_next(&r, &f, &more)) && more) {
        switch (f.number) {
        case 1:
            if (!(st = pb_expect(&f, PB_LEN, "piece text"))) *piece = (tok_span){(const char *)f.data, f.len};
            break;
        case 2: st = pb_float(&f, "piece score", score); break;
        case 3: st = pb_int32(&f, "piece type", &ty); break;
        default: break;
        }
        if (st) return st;
    }
    if (st) return st;
    if (piece->len == 0) return hr_err(HR_ERR_FORMAT, "piece %d (byte %zu) has no text", (int)id, at);
    if (!isfinite(*score))
        return hr_err(HR_ERR_FORMAT, "piece %d '%.*s' has a non-finite score", (int)id,
                      (int)(piece->len > 32 ? 32 : piece->len), piece->s);
    if (ty < TOK_NORMAL || ty > TOK_BYTE)
        return hr_err(HR_ERR_FORMAT, "piece %d '%.*s' has type %d (valid: 1..6, NORMAL..BYTE)", (int)id,
                      (int)(piece->len > 32 ? 32 : piece->len), piece->s, (int)ty);
    *type = (uint8_t)ty;
    return HR_OK;
}

/* Pass 1: the top level is well formed; counts the pieces. */
static hr_status count_pieces(const uint8_t *data, size_t size, int32_t *n) {
    pb_reader r = pb_reader_of(data, size);
    pb_field f;
    bool more;
    hr_status st;
    size_t count = 0;
    while (!(st = pb_next(&r, &f, &more)) && more) {
        if (f.number != 1) continue;
        if ((st = pb_expect(&f, PB_LEN, "pieces"))) return st;
        if (++count > HR_MAX_VOCAB)
            return hr_err(HR_ERR_FORMAT, "more than %d pieces (the vocabulary limit)", (int)HR_MAX_VOCAB);
    }
    if (st) return st;
    if (count == 0) return hr_err(HR_ERR_FORMAT, "the model has no pieces");
    *n = (int32_t)count;
    return HR_OK;
}

/* Pass 2: every piece and both specs (a message written twice merges). */
static hr_status read_model(const uint8_t *data, size_t size, tok_span *pieces, float *scores, uint8_t *types,
                            spm_spec *s) {
    pb_reader r = pb_reader_of(data, size);
    pb_field f;
    bool more;
    hr_status st;
    int32_t id = 0;
    while (!(st = pb_next(&r, &f, &more)) && more) {
        switch (f.number) {
        case 1:
            st = read_piece(pb_sub(&r, &f), id, f.offset, &pieces[id], &scores[id], &types[id]);
            id++;
            break;
        case 2:
            if (!(st = pb_expect(&f, PB_LEN, "trainer_spec"))) st = read_trainer(pb_sub(&r, &f), s);
            s->have_trainer = true;
            break;
        case 3:
            if (!(st = pb_expect(&f, PB_LEN, "normalizer_spec"))) st = read_normalizer(pb_sub(&r, &f), s);
            s->have_normalizer = true;
            break;
        default: break;
        }
        if (st) return st;
    }
    return st;
}

static hr_status check_id(const char *what, int32_t id, int32_t n) {
    if (id == -1 || (id >= 0 && id < n)) return HR_OK;
    return hr_err(HR_ERR_FORMAT, "trainer_spec.%s = %d is outside the vocabulary (0..%d, or -1 for none)", what,
                  (int)id, (int)n - 1);
}

/* What the encoder cannot reproduce is refused, by name. */
static hr_status check_spec(const spm_spec *s, int32_t n, const tok_span *pieces, const uint8_t *types) {
    static const char *const model_names[] = {"", "UNIGRAM", "BPE", "WORD", "CHAR"};
    /* without them every setting would be a default (UNIGRAM, ...): a file
     * cut after its pieces is still well-formed protobuf */
    if (!s->have_trainer || !s->have_normalizer)
        return hr_err(HR_ERR_FORMAT,
                      "no %s (field %d) after the %d pieces: the file is truncated or not a "
                      "complete SentencePiece model",
                      s->have_trainer ? "normalizer_spec" : "trainer_spec", s->have_trainer ? 3 : 2, (int)n);
    if (s->model_type < SPM_UNIGRAM || s->model_type > SPM_CHAR)
        return hr_err(HR_ERR_FORMAT, "trainer_spec.model_type %d is not a SentencePiece model type (1..4)",
                      (int)s->model_type);
    if (s->model_type != SPM_BPE)
        return hr_err(HR_ERR_UNSUPPORTED,
                      "%s models are not supported, only BPE (trainer_spec.model_type = 2, as in "
                      "Llama and Mistral)",
                      model_names[s->model_type]);
    if (s->charsmap_len)
        return hr_err(HR_ERR_UNSUPPORTED,
                      "normalizer '%.*s' rewrites the text with %zu bytes of precompiled rules, which are not "
                      "applied; only the identity normalizer is supported",
                      (int)(s->norm_name_len > 64 ? 64 : s->norm_name_len), (const char *)s->norm_name,
                      s->charsmap_len);
    if (s->remove_extra_ws)
        return hr_err(HR_ERR_UNSUPPORTED, "normalizer_spec.remove_extra_whitespaces is set (collapsing spaces is "
                                          "not supported; Llama-style models clear it)");
    if (!s->escape_ws)
        return hr_err(HR_ERR_UNSUPPORTED, "normalizer_spec.escape_whitespaces is off (pieces with plain spaces "
                                          "are not supported)");
    if (s->ws_suffix) return hr_err(HR_ERR_UNSUPPORTED, "trainer_spec.treat_whitespace_as_suffix is not supported");
    hr_status st;
    if ((st = check_id("unk_id", s->unk, n)) || (st = check_id("bos_id", s->bos, n)) ||
        (st = check_id("eos_id", s->eos, n)) || (st = check_id("pad_id", s->pad, n)))
        return st;
    if (s->unk < 0 || types[s->unk] != TOK_UNKNOWN)
        return hr_err(HR_ERR_FORMAT, "trainer_spec.unk_id = %d does not name a piece of type UNKNOWN", (int)s->unk);
    if (!s->byte_fallback) return HR_OK;
    bool have[256] = {false};
    for (int32_t i = 0; i < n; i++) {
        int b = types[i] == TOK_BYTE ? tok_parse_byte_piece(pieces[i].s, pieces[i].len) : -1;
        if (b >= 0) have[b] = true;
    }
    for (int b = 0; b < 256; b++)
        if (!have[b])
            return hr_err(HR_ERR_FORMAT, "trainer_spec.byte_fallback is set but there is no BYTE piece <0x%02X>", b);
    return HR_OK;
}

static hr_status load_model(const uint8_t *data, size_t size, hr_tokenizer **out) {
    int32_t n = 0;
    hr_status st = count_pieces(data, size, &n);
    if (st) return st;
    tok_span *pieces = malloc((size_t)n * sizeof *pieces);
    float *scores = malloc((size_t)n * sizeof *scores);
    uint8_t *types = malloc((size_t)n);
    hr_tokenizer *t = NULL;
    spm_spec spec = k_spec_defaults;
    if (!pieces || !scores || !types) {
        st = hr_err(HR_ERR_NOMEM, "out of memory for %d pieces", (int)n);
        goto done;
    }
    if ((st = read_model(data, size, pieces, scores, types, &spec)) || (st = check_spec(&spec, n, pieces, types)))
        goto done;
    if (!(t = calloc(1, sizeof *t))) {
        st = hr_err(HR_ERR_NOMEM, "out of memory");
        goto done;
    }
    t->model = &tok_model_spm;
    t->kind = "spm (SentencePiece .model)";
    if ((st = tok_build(t, n, pieces, scores, types, TOK_VIEW_SPM, NULL))) goto done;
    if (!spec.byte_fallback) /* BYTE pieces are then only decoded, never produced */
        for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    t->unk = spec.unk;
    t->bos = spec.bos;
    t->eos = spec.eos;
    t->add_space_prefix = spec.dummy_prefix;
    t->dec_strip = spec.dummy_prefix;
    t->add_bos = true; /* as llama.cpp and llama2.c encode these models */
    t->add_eos = false;
    *out = t;
    t = NULL;
done:
    hr_tokenizer_free(t);
    free(pieces);
    free(scores);
    free(types);
    return st;
}

hr_status tok_load_spm_model(const uint8_t *data, size_t size, hr_tokenizer **out) {
    *out = NULL;
    hr_status st = load_model(data, size, out);
    if (st) hr_err_prefix("SentencePiece .model");
    return st;
}
