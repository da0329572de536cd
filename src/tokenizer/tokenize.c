/* hr_tokenizer_encode: validation, BOS/EOS, special-token splitting, then
 * the registered model encodes each plain-text fragment. */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

/* Id of the special token starting at s (longest match), or -1. */
static int32_t match_special(const hr_tokenizer *t, const char *s, size_t left) {
    uint8_t c = (uint8_t)s[0];
    if (!(t->special_first[c >> 3] & (1u << (c & 7)))) return -1;
    for (size_t i = 0; i < t->n_specials; i++) {
        int32_t id = t->specials[i];
        size_t len = t->raw_off[id + 1] - t->raw_off[id] - 1;
        if (len <= left && memcmp(s, t->raw + t->raw_off[id], len) == 0) return id;
    }
    return -1;
}

static hr_status encode_fragment(const hr_tokenizer *t, const char *s, size_t len, bool prefix, tok_ids *out,
                                 void **scratch) {
    return len ? t->model->encode(t, s, len, prefix, out, scratch) : HR_OK;
}

/* Text between special tokens is encoded as separate fragments, each with
 * the leading-space rule (what llama.cpp and HF tokenizers do). */
static hr_status encode_body(const hr_tokenizer *t, const char *text, size_t len, bool prefix, bool parse_special,
                             tok_ids *out, void **scratch) {
    if (!parse_special || !t->n_specials) return encode_fragment(t, text, len, prefix, out, scratch);
    size_t start = 0;
    for (size_t i = 0; i < len;) {
        int32_t id = match_special(t, text + i, len - i);
        if (id < 0) {
            i++;
            continue;
        }
        hr_status st = encode_fragment(t, text + start, i - start, prefix, out, scratch);
        if (st) return st;
        if (!tok_ids_push(out, id)) return hr_err(HR_ERR_NOMEM, "out of memory while encoding");
        i += t->raw_off[id + 1] - t->raw_off[id] - 1;
        start = i;
    }
    return encode_fragment(t, text + start, len - start, prefix, out, scratch);
}

hr_status hr_tokenizer_encode(const hr_tokenizer *t, const char *text, size_t len, const hr_encode_params *p,
                              int32_t **ids, size_t *n_ids) {
    if (!t || !ids || !n_ids || (!text && len)) return hr_err(HR_ERR_INVALID_ARG, "hr_tokenizer_encode: NULL argument");
    *ids = NULL;
    *n_ids = 0;
    hr_encode_params dp = hr_encode_default_params();
    if (!p) p = &dp;
    hr_status st = tok_validate_utf8(text, len);
    if (st) return st;
    bool prefix = p->add_space_prefix < 0 ? t->add_space_prefix : p->add_space_prefix != 0;
    tok_ids out = {0};
    void *scratch = NULL;
    if (!tok_ids_reserve(&out, 2)) return hr_err(HR_ERR_NOMEM, "out of memory encoding %zu bytes", len);
    if (p->add_bos && t->bos >= 0) out.a[out.n++] = t->bos;
    st = encode_body(t, text, len, prefix, p->parse_special, &out, &scratch);
    if (t->model->scratch_free) t->model->scratch_free(scratch);
    if (!st && p->add_eos && t->eos >= 0 && !tok_ids_push(&out, t->eos))
        st = hr_err(HR_ERR_NOMEM, "out of memory while encoding");
    if (st) {
        free(out.a);
        return st;
    }
    int32_t *shrunk = realloc(out.a, (out.n ? out.n : 1) * sizeof *out.a);
    *ids = shrunk ? shrunk : out.a;
    *n_ids = out.n;
    return HR_OK;
}

const char *hr_tokenizer_kind(const hr_tokenizer *t) { return t && t->kind ? t->kind : "unknown"; }
