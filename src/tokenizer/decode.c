/* Decoding ids back to text, from the precomputed per-piece "dec" bytes
 * (the same for every tokenizer model). */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

static const char *dec_text(const hr_tokenizer *t, int32_t id, size_t *len) {
    *len = t->dec_off[id + 1] - t->dec_off[id] - 1;
    return t->dec + t->dec_off[id];
}

/* The space that the leading-space rule adds lives at the start of a
 * text piece; a <0x20> byte piece is a real space, so it is kept. */
static size_t leading_space(const hr_tokenizer *t, int32_t id, const char *s, size_t len) {
    return len && s[0] == ' ' && t->types[id] != TOK_BYTE ? 1 : 0;
}

static hr_status check_ids(const hr_tokenizer *t, const int32_t *ids, size_t n, size_t *total) {
    *total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return hr_err(HR_ERR_RANGE, "token id %d at position %zu is outside the vocabulary (0..%d)", (int)ids[i], i,
                          (int)t->n_vocab - 1);
        size_t len;
        dec_text(t, ids[i], &len);
        if (!hr_add_size(*total, len, total)) return hr_err(HR_ERR_NOMEM, "decoded text too large");
    }
    return HR_OK;
}

hr_status hr_tokenizer_decode(const hr_tokenizer *t, const int32_t *ids, size_t n, bool strip_leading_space,
                              char **text, size_t *len) {
    if (!t || !text || (!ids && n)) return hr_err(HR_ERR_INVALID_ARG, "hr_tokenizer_decode: NULL argument");
    *text = NULL;
    if (len) *len = 0;
    size_t total;
    hr_status st = check_ids(t, ids, n, &total);
    if (st) return st;
    char *out = malloc(total + 1);
    if (!out) return hr_err(HR_ERR_NOMEM, "out of memory decoding %zu ids", n);
    size_t o = 0;
    bool at_start = strip_leading_space && t->dec_strip;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == t->bos || ids[i] == t->eos) continue;
        size_t l;
        const char *s = dec_text(t, ids[i], &l);
        if (!l) continue;
        size_t skip = at_start ? leading_space(t, ids[i], s, l) : 0;
        at_start = false;
        memcpy(out + o, s + skip, l - skip);
        o += l - skip;
    }
    out[o] = 0;
    *text = out;
    if (len) *len = o;
    return HR_OK;
}

hr_status hr_tokenizer_decode_one(const hr_tokenizer *t, int32_t prev, int32_t id, char *buf, size_t cap, size_t *len) {
    if (!t || !len || (!buf && cap)) return hr_err(HR_ERR_INVALID_ARG, "hr_tokenizer_decode_one: NULL argument");
    *len = 0;
    if (id < 0 || id >= t->n_vocab)
        return hr_err(HR_ERR_RANGE, "token id %d is outside the vocabulary (0..%d)", (int)id, (int)t->n_vocab - 1);
    if (id == t->bos || id == t->eos) return HR_OK;
    size_t l;
    const char *s = dec_text(t, id, &l);
    size_t skip = t->dec_strip && prev >= 0 && prev == t->bos ? leading_space(t, id, s, l) : 0;
    l -= skip;
    if (l > cap) return hr_err(HR_ERR_RANGE, "token %d decodes to %zu bytes, buffer holds %zu", (int)id, l, cap);
    if (l) memcpy(buf, s + skip, l);
    if (l < cap) buf[l] = 0;
    *len = l;
    return HR_OK;
}
