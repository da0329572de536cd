/* Vocabulary from a GGUF's tokenizer.ggml.* keys: SentencePiece "llama"
 * and byte-level BPE "gpt2" (tokens + merges + tokenizer.ggml.pre naming
 * the split regex); other tokenizer models are reported as unsupported. */
#include "tokenizer/tok_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Array key of the expected element type and count; absent is allowed when
 * required is false (then v->n is set to 0). */
static hr_status get_array(const hr_gguf *g, const char *key, bool is_string, uint64_t n, bool required,
                           hr_gguf_value *v) {
    hr_status st = hr_gguf_get_arr(g, key, v);
    if (st == HR_ERR_NOT_FOUND && !required) {
        v->n = 0;
        return HR_OK;
    }
    if (st == HR_ERR_NOT_FOUND) return hr_err(HR_ERR_NOT_FOUND, "GGUF has no '%s' key", key);
    if (st) return st;
    if (is_string != (v->elem_type == HR_GGUF_STRING))
        return hr_err(HR_ERR_FORMAT, "'%s' has element type %d, expected %s", key, (int)v->elem_type,
                      is_string ? "string" : "a number");
    if (n && v->n != n)
        return hr_err(HR_ERR_FORMAT, "'%s' has %llu entries but the vocabulary has %llu", key, (unsigned long long)v->n,
                      (unsigned long long)n);
    return HR_OK;
}

/* Special-token id: absent -> dflt; -1 / 0xFFFFFFFF (llama.cpp's "none") -> -1. */
static hr_status get_special(const hr_gguf *g, const char *key, int32_t dflt, int32_t n, int32_t *out) {
    int64_t v;
    hr_status st = hr_gguf_get_i64(g, key, &v);
    if (st == HR_ERR_NOT_FOUND) {
        *out = dflt < n ? dflt : -1;
        return HR_OK;
    }
    if (st) return st;
    if (v == -1 || v == (int64_t)UINT32_MAX) {
        *out = -1;
        return HR_OK;
    }
    if (v < 0 || v >= n)
        return hr_err(HR_ERR_FORMAT, "'%s' = %lld is outside the vocabulary (0..%d)", key, (long long)v, (int)n - 1);
    *out = (int32_t)v;
    return HR_OK;
}

static hr_status get_flag(const hr_gguf *g, const char *key, bool dflt, bool *out) {
    hr_status st = hr_gguf_get_bool(g, key, out);
    if (st == HR_ERR_NOT_FOUND) {
        *out = dflt;
        return HR_OK;
    }
    return st;
}

/* 1 = "llama" (SentencePiece), 2 = "gpt2" (byte-level BPE). */
static hr_status check_model(const hr_gguf *g, int *kind) {
    const char *model;
    size_t len;
    hr_status st = hr_gguf_get_str(g, "tokenizer.ggml.model", &model, &len);
    if (st == HR_ERR_NOT_FOUND)
        return hr_err(HR_ERR_NOT_FOUND, "GGUF has no tokenizer.ggml.model key (no embedded vocabulary)");
    if (st) return st;
    *kind = len == 5 && memcmp(model, "llama", 5) == 0 ? 1 : len == 4 && memcmp(model, "gpt2", 4) == 0 ? 2 : 0;
    if (*kind) return HR_OK;
    if (len > 64) len = 64;
    return hr_err(HR_ERR_UNSUPPORTED,
                  "tokenizer model '%.*s' is not supported (only 'llama' SentencePiece BPE and 'gpt2' "
                  "byte-level BPE)",
                  (int)len, model);
}

/* Reads tokens, scores and types into the caller's arrays (n entries). */
static hr_status read_entries(const hr_gguf *g, const hr_gguf_value *tokens, const hr_gguf_value *sc,
                              const hr_gguf_value *ty, tok_span *spans, float *scores, uint8_t *types) {
    for (uint64_t i = 0; i < tokens->n; i++) {
        hr_status st = hr_gguf_arr_str(g, tokens, i, &spans[i].s, &spans[i].len);
        if (st) return st;
        double s = 0;
        if (sc->n && (st = hr_gguf_arr_f64(g, sc, i, &s))) return st;
        if (isnan(s)) return hr_err(HR_ERR_FORMAT, "token %llu has a NaN score", (unsigned long long)i);
        scores[i] = (float)s;
        int64_t tt = TOK_NORMAL;
        if (ty->n && (st = hr_gguf_arr_i64(g, ty, i, &tt))) return st;
        if (tt < 0 || tt >= TOK_TYPE_COUNT)
            return hr_err(HR_ERR_FORMAT, "token %llu has unknown token_type %lld", (unsigned long long)i,
                          (long long)tt);
        types[i] = (uint8_t)tt;
    }
    return HR_OK;
}

static hr_status read_specials(const hr_gguf *g, hr_tokenizer *t) {
    hr_status st;
    if ((st = get_special(g, "tokenizer.ggml.bos_token_id", 1, t->n_vocab, &t->bos)) ||
        (st = get_special(g, "tokenizer.ggml.eos_token_id", 2, t->n_vocab, &t->eos)) ||
        (st = get_special(g, "tokenizer.ggml.unknown_token_id", 0, t->n_vocab, &t->unk)) ||
        (st = get_flag(g, "tokenizer.ggml.add_space_prefix", true, &t->add_space_prefix)) ||
        (st = get_flag(g, "tokenizer.ggml.add_bos_token", true, &t->add_bos)) ||
        (st = get_flag(g, "tokenizer.ggml.add_eos_token", false, &t->add_eos)))
        return st;
    return HR_OK;
}

/* The split regex named by tokenizer.ggml.pre (llama.cpp's names). */
static hr_status read_pre(const hr_gguf *g, hr_tokenizer *t) {
    const char *pre = NULL;
    size_t len = 0;
    hr_status st = hr_gguf_get_str(g, "tokenizer.ggml.pre", &pre, &len);
    if (st && st != HR_ERR_NOT_FOUND) return st;
    const char *re = st ? tok_pre_regex("gpt-2", 5) : tok_pre_regex(pre, len);
    if (st) hr_log(HR_LOG_WARN, "tokenizer: GGUF has no tokenizer.ggml.pre; using the GPT-2 split regex");
    if (!re)
        return hr_err(HR_ERR_UNSUPPORTED,
                      "pre-tokenizer '%.*s' (tokenizer.ggml.pre) is not supported (supported: gpt-2, llama-bpe, "
                      "qwen2 and their aliases)",
                      (int)(len > 64 ? 64 : len), pre);
    return tok_set_pre_regex(t, re, strlen(re));
}

/* Splits every "a b" entry of tokenizer.ggml.merges. */
static hr_status read_merges(const hr_gguf *g, tok_span **ml, tok_span **mr, size_t *n) {
    hr_gguf_value mv;
    hr_status st = get_array(g, "tokenizer.ggml.merges", true, 0, true, &mv);
    if (st) return st;
    if (mv.n > INT32_MAX)
        return hr_err(HR_ERR_FORMAT, "tokenizer.ggml.merges has %llu entries", (unsigned long long)mv.n);
    *n = (size_t)mv.n;
    *ml = malloc((*n ? *n : 1) * sizeof **ml);
    *mr = malloc((*n ? *n : 1) * sizeof **mr);
    if (!*ml || !*mr) return hr_err(HR_ERR_NOMEM, "out of memory for %zu merges", *n);
    for (size_t i = 0; i < *n; i++) {
        const char *s;
        size_t len;
        if ((st = hr_gguf_arr_str(g, &mv, i, &s, &len))) return st;
        const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
        if (!sp || sp + 1 == s + len) return hr_err(HR_ERR_FORMAT, "merge %zu is not \"a b\"", i);
        (*ml)[i] = (tok_span){s, (size_t)(sp - s)};
        (*mr)[i] = (tok_span){sp + 1, len - (size_t)(sp - s) - 1};
    }
    return HR_OK;
}

static hr_status read_bpe_specials(const hr_gguf *g, hr_tokenizer *t) {
    hr_status st;
    bool prefix = false;
    if ((st = get_special(g, "tokenizer.ggml.bos_token_id", -1, t->n_vocab, &t->bos)) ||
        (st = get_special(g, "tokenizer.ggml.eos_token_id", -1, t->n_vocab, &t->eos)) ||
        (st = get_special(g, "tokenizer.ggml.unknown_token_id", -1, t->n_vocab, &t->unk)) ||
        (st = get_flag(g, "tokenizer.ggml.add_space_prefix", false, &prefix)) ||
        (st = get_flag(g, "tokenizer.ggml.add_bos_token", false, &t->add_bos)) ||
        (st = get_flag(g, "tokenizer.ggml.add_eos_token", false, &t->add_eos)))
        return st;
    if (prefix) { /* the byte-level form of the rule: a space unless there is one */
        if (!(t->prefix = malloc(2))) return hr_err(HR_ERR_NOMEM, "out of memory");
        memcpy(t->prefix, " ", 2);
        t->prefix_len = 1;
        t->prefix_if_no_space = true;
        t->add_space_prefix = true;
    }
    return HR_OK;
}

static hr_status gguf_bpe(const hr_gguf *g, hr_tokenizer **out) {
    hr_gguf_value tokens, sc, ty;
    hr_status st = get_array(g, "tokenizer.ggml.tokens", true, 0, true, &tokens);
    if (st) return st;
    if (tokens.n == 0 || tokens.n > INT32_MAX)
        return hr_err(HR_ERR_FORMAT, "tokenizer.ggml.tokens has %llu entries", (unsigned long long)tokens.n);
    if ((st = get_array(g, "tokenizer.ggml.scores", false, tokens.n, false, &sc)) ||
        (st = get_array(g, "tokenizer.ggml.token_type", false, tokens.n, false, &ty)))
        return st;
    size_t n = (size_t)tokens.n, n_merges = 0;
    tok_span *spans = malloc(n * sizeof *spans), *ml = NULL, *mr = NULL;
    float *scores = malloc(n * sizeof *scores);
    uint8_t *types = malloc(n);
    hr_tokenizer *t = calloc(1, sizeof *t);
    if (!spans || !scores || !types || !t) {
        st = hr_err(HR_ERR_NOMEM, "out of memory for %zu vocabulary entries", n);
        goto done;
    }
    if ((st = read_entries(g, &tokens, &sc, &ty, spans, scores, types))) goto done;
    for (size_t i = 0; i < n; i++)
        if (types[i] == TOK_BYTE) types[i] = TOK_NORMAL; /* byte-level vocabularies have no <0xNN> pieces */
    if ((st = read_merges(g, &ml, &mr, &n_merges))) goto done;
    tok_bpe_spec spec = {(int32_t)n, spans, types, n_merges, ml, mr, true};
    if ((st = tok_bpe_build(t, &spec)) || (st = read_pre(g, t)) || (st = read_bpe_specials(g, t))) goto done;
    t->kind = "bpe (byte-level, GGUF)";
    *out = t;
    t = NULL;
done:
    hr_tokenizer_free(t);
    free(spans);
    free(scores);
    free(types);
    free(ml);
    free(mr);
    return st;
}

hr_status hr_tokenizer_from_gguf(const hr_gguf *g, hr_tokenizer **out) {
    if (!g || !out) return hr_err(HR_ERR_INVALID_ARG, "hr_tokenizer_from_gguf: NULL argument");
    *out = NULL;
    int kind = 0;
    hr_status st = check_model(g, &kind);
    if (st) return st;
    if (kind == 2) return gguf_bpe(g, out);
    hr_gguf_value tokens, sc, ty;
    if ((st = get_array(g, "tokenizer.ggml.tokens", true, 0, true, &tokens))) return st;
    if (tokens.n == 0 || tokens.n > INT32_MAX)
        return hr_err(HR_ERR_FORMAT, "tokenizer.ggml.tokens has %llu entries", (unsigned long long)tokens.n);
    if ((st = get_array(g, "tokenizer.ggml.scores", false, tokens.n, false, &sc)) ||
        (st = get_array(g, "tokenizer.ggml.token_type", false, tokens.n, false, &ty)))
        return st;
    size_t n = (size_t)tokens.n;
    tok_span *spans = malloc(n * sizeof *spans);
    float *scores = malloc(n * sizeof *scores);
    uint8_t *types = malloc(n);
    hr_tokenizer *t = calloc(1, sizeof *t);
    if (!spans || !scores || !types || !t) {
        st = hr_err(HR_ERR_NOMEM, "out of memory for %zu vocabulary entries", n);
        goto done;
    }
    if ((st = read_entries(g, &tokens, &sc, &ty, spans, scores, types))) goto done;
    t->model = &tok_model_spm;
    t->kind = "spm (GGUF)";
    if ((st = tok_build(t, (int32_t)n, spans, scores, types, TOK_VIEW_SPM, NULL))) goto done;
    if ((st = read_specials(g, t))) goto done;
    t->dec_strip = t->add_space_prefix;
    *out = t;
    t = NULL;
done:
    hr_tokenizer_free(t);
    free(spans);
    free(scores);
    free(types);
    return st;
}
