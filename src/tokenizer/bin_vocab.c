/* llama2.c tokenizer .bin: i32 max_token_length, then (f32 score, i32 len,
 * len bytes) records until EOF. The format has no magic and no count, so
 * every record is checked against the bytes that remain. */
#include "tokenizer/tok_internal.h"
#include "core/limits.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Generous: real exports use < 64; this only rejects garbage headers. */

static int32_t rd_i32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static float rd_f32(const uint8_t *p) {
    float v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Walks the records; with spans/scores NULL it only validates and counts. */
static hr_status walk_records(const uint8_t *data, size_t size, int32_t max_len, int32_t *n_out, tok_span *spans,
                              float *scores) {
    size_t off = 4;
    int32_t n = 0;
    while (off < size) {
        if (size - off < 8)
            return hr_err(HR_ERR_FORMAT,
                          "truncated file: entry %d starts at byte %zu but only %zu of its 8 "
                          "header bytes are present",
                          (int)n, off, size - off);
        float score = rd_f32(data + off);
        int32_t len = rd_i32(data + off + 4);
        if (isnan(score)) return hr_err(HR_ERR_FORMAT, "entry %d (byte %zu) has a NaN score", (int)n, off);
        if (len < 0 || len > max_len)
            return hr_err(HR_ERR_FORMAT, "entry %d (byte %zu) has length %d, outside 0..max_token_length=%d", (int)n,
                          off, (int)len, (int)max_len);
        off += 8;
        if (size - off < (size_t)len)
            return hr_err(HR_ERR_FORMAT,
                          "truncated file: entry %d needs %d piece bytes at byte %zu but only %zu remain", (int)n,
                          (int)len, off, size - off);
        if (spans) {
            spans[n].s = (const char *)data + off;
            spans[n].len = (size_t)len;
            scores[n] = score;
        }
        off += (size_t)len;
        if (n == INT32_MAX) return hr_err(HR_ERR_FORMAT, "too many entries");
        n++;
    }
    *n_out = n;
    return HR_OK;
}

static void classify(int32_t n, const tok_span *spans, uint8_t *types) {
    for (int32_t i = 0; i < n; i++) {
        if (i == 0) types[i] = TOK_UNKNOWN;
        else if (i <= 2) types[i] = TOK_CONTROL;
        else if (tok_parse_byte_piece(spans[i].s, spans[i].len) >= 0) types[i] = TOK_BYTE;
        else types[i] = TOK_NORMAL;
    }
}

hr_status tok_load_bin(const uint8_t *data, size_t size, hr_tokenizer **out) {
    if (size < 4) return hr_err(HR_ERR_FORMAT, "file is %zu bytes, too short for a llama2.c tokenizer header", size);
    int32_t max_len = rd_i32(data);
    if (max_len <= 0 || max_len > HR_MAX_TOKEN_BYTES)
        return hr_err(HR_ERR_FORMAT, "max_token_length %d is outside 1..%d: not a llama2.c tokenizer .bin",
                      (int)max_len, HR_MAX_TOKEN_BYTES);
    int32_t n = 0;
    hr_status st = walk_records(data, size, max_len, &n, NULL, NULL);
    if (st) return st;
    if (n < 3) return hr_err(HR_ERR_FORMAT, "only %d entries; ids 0..2 (<unk>, <s>, </s>) are required", (int)n);
    tok_span *spans = malloc((size_t)n * sizeof *spans);
    float *scores = malloc((size_t)n * sizeof *scores);
    uint8_t *types = malloc((size_t)n);
    hr_tokenizer *t = calloc(1, sizeof *t);
    if (!spans || !scores || !types || !t) {
        st = hr_err(HR_ERR_NOMEM, "out of memory for %d vocabulary entries", (int)n);
        goto done;
    }
    walk_records(data, size, max_len, &n, spans, scores);
    classify(n, spans, types);
    t->model = &tok_model_spm;
    t->kind = "spm (llama2.c .bin)";
    st = tok_build(t, n, spans, scores, types, TOK_VIEW_SPM_PLAIN, NULL);
    if (st) goto done;
    t->dec_strip = true;
    t->unk = 0;
    t->bos = 1;
    t->eos = 2;
    t->add_space_prefix = true;
    t->add_bos = true;
    t->add_eos = false;
    *out = t;
    t = NULL;
done:
    hr_tokenizer_free(t);
    free(spans);
    free(scores);
    free(types);
    return st;
}
