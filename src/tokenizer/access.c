/* Read-only accessors of the vocabulary for writers (GGUF, tokenizer.json):
 * pieces in file spelling, types, scores, merges, the split regex. */
#include "tokenizer/tok_internal.h"

#include <string.h>

static bool in_range(const hr_tokenizer *t, int32_t id) { return t && id >= 0 && id < t->n_vocab; }

hr_tokenizer_model_type hr_tokenizer_model(const hr_tokenizer *t) {
    if (!t || t->model == &tok_model_spm) return HR_TOKENIZER_SPM;
    return t->byte_level ? HR_TOKENIZER_BPE_BYTES : HR_TOKENIZER_BPE_CHARS;
}

static bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

const char *hr_tokenizer_token_text(const hr_tokenizer *t, int32_t id, size_t *len) {
    if (!in_range(t, id)) {
        if (len) *len = 0;
        return NULL;
    }
    /* byte-level files store the raw (alphabet) text; the others the view
     * with U+2581, which for their non-mergeable pieces is the raw text */
    bool bytes = hr_tokenizer_model(t) == HR_TOKENIZER_BPE_BYTES;
    const char *blob = bytes ? t->raw : t->norm;
    const size_t *off = bytes ? t->raw_off : t->norm_off;
    const char *s = blob + off[id];
    size_t n = off[id + 1] - off[id] - 1;
    if (t->model == &tok_model_spm && t->types[id] == TOK_CONTROL) {
        while (n && is_space(*s)) s++, n--;
        while (n && is_space(s[n - 1])) n--;
    }
    if (len) *len = n;
    return s;
}

hr_token_type hr_tokenizer_token_type(const hr_tokenizer *t, int32_t id) {
    return in_range(t, id) ? (hr_token_type)t->types[id] : HR_TOKEN_UNDEFINED;
}

float hr_tokenizer_score(const hr_tokenizer *t, int32_t id) { return in_range(t, id) ? t->scores[id] : 0.0f; }

int32_t hr_tokenizer_unk(const hr_tokenizer *t) { return t ? t->unk : -1; }

bool hr_tokenizer_add_eos_default(const hr_tokenizer *t) { return t && t->add_eos && t->eos >= 0; }

bool hr_tokenizer_add_space_prefix(const hr_tokenizer *t) { return t && t->add_space_prefix; }

size_t hr_tokenizer_n_merges(const hr_tokenizer *t) { return t ? t->n_merge_list : 0; }

hr_status hr_tokenizer_merge(const hr_tokenizer *t, size_t i, int32_t *left, int32_t *right) {
    if (!t || !left || !right) return hr_err(HR_ERR_INVALID_ARG, "hr_tokenizer_merge: NULL argument");
    if (i >= t->n_merge_list)
        return hr_err(HR_ERR_RANGE, "merge %zu is outside the tokenizer's %zu merges", i, t->n_merge_list);
    *left = t->merge_list[i][0];
    *right = t->merge_list[i][1];
    return HR_OK;
}

const char *hr_tokenizer_pre_name(const hr_tokenizer *t) { return t ? t->pre_name : NULL; }

const char *hr_tokenizer_pre_regex(const hr_tokenizer *t) { return t ? t->pre_pattern : NULL; }
