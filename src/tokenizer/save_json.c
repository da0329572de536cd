/* Hugging Face tokenizer.json / tokenizer_config.json writers.
 *
 * Every vocabulary becomes a `tokenizers` BPE model. SentencePiece
 * vocabularies (scores, no merges) get merges derived from the scores the
 * way Hugging Face's converters derive them: each piece, split at every
 * character boundary into two pieces of the vocabulary, is one merge;
 * merges are ordered by the score of the piece they produce (descending),
 * then by the character length of the left and the right side
 * (descending), then by piece id and side ids. BPE by rank merges the
 * same pairs in the same order as best-score SentencePiece as long as no
 * two competing pieces share a score. */
#include "tokenizer/tok_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool spm_like(const hr_tokenizer *t) { return hr_tokenizer_model(t) != HR_TOKENIZER_BPE_BYTES; }

/* Token text as a NUL-terminated copy for cJSON (caller frees); an error
 * when a JSON string cannot carry it. */
static hr_status token_string(const hr_tokenizer *t, int32_t id, char **out) {
    *out = NULL;
    size_t len;
    const char *s = hr_tokenizer_token_text(t, id, &len);
    if (memchr(s, 0, len) || tok_validate_utf8(s, len) != HR_OK)
        return hr_err(HR_ERR_UNSUPPORTED,
                      "token %d is not valid UTF-8 text without NUL bytes, which a JSON "
                      "vocabulary cannot hold",
                      (int)id);
    if (!(*out = malloc(len + 1))) return hr_err(HR_ERR_NOMEM, "out of memory");
    memcpy(*out, s, len);
    (*out)[len] = 0;
    return HR_OK;
}

/* The token's text under key, or null for id -1. */
static hr_status add_token_string(cJSON *o, const char *key, const hr_tokenizer *t, int32_t id) {
    if (id < 0) return cJSON_AddNullToObject(o, key) ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory");
    char *s;
    hr_status st = token_string(t, id, &s);
    if (!st && !cJSON_AddStringToObject(o, key, s)) st = hr_err(HR_ERR_NOMEM, "out of memory");
    free(s);
    return st;
}

/* ---- merges derived from SentencePiece scores ---- */

typedef struct {
    float score;
    uint32_t lchars, rchars;
    int32_t piece, l, r;
} cand;

static int cand_order(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->lchars != y->lchars) return x->lchars > y->lchars ? -1 : 1;
    if (x->rchars != y->rchars) return x->rchars > y->rchars ? -1 : 1;
    if (x->piece != y->piece) return x->piece < y->piece ? -1 : 1;
    if (x->l != y->l) return x->l < y->l ? -1 : 1;
    return (x->r > y->r) - (x->r < y->r);
}

static bool mergeable(uint8_t type) { return type != TOK_CONTROL && type != TOK_UNKNOWN && type != TOK_BYTE; }

/* Appends the splits of piece id (norm text s, len bytes) to c. */
static size_t splits_of(const hr_tokenizer *t, int32_t id, const char *s, size_t len, cand *c) {
    size_t n = 0, total = 0;
    for (size_t i = 0; i < len; i += tok_char_len((uint8_t)s[i])) total++;
    uint32_t lchars = 0;
    for (size_t k = 0; k < len;) {
        k += tok_char_len((uint8_t)s[k]);
        lchars++;
        if (k >= len) break;
        int32_t l = tok_lookup(t, s, k), r = l >= 0 ? tok_lookup(t, s + k, len - k) : -1;
        if (r >= 0 && c) c[n] = (cand){t->scores[id], lchars, (uint32_t)total - lchars, id, l, r};
        n += r >= 0;
    }
    return n;
}

/* Merges (*n, 2) in rank order, malloc'ed. */
static hr_status derive_merges(const hr_tokenizer *t, int32_t (**out)[2], size_t *n) {
    size_t count = 0;
    for (int pass = 0; pass < 2; pass++) {
        cand *c = NULL;
        if (pass && !(c = malloc((count ? count : 1) * sizeof *c)))
            return hr_err(HR_ERR_NOMEM, "out of memory for merges");
        size_t k = 0;
        for (int32_t id = 0; id < t->n_vocab; id++) {
            if (!mergeable(t->types[id])) continue;
            const char *s = t->norm + t->norm_off[id];
            size_t len = t->norm_off[id + 1] - t->norm_off[id] - 1;
            if (tok_validate_utf8(s, len) == HR_OK) k += splits_of(t, id, s, len, c ? c + k : NULL);
        }
        if (!pass) {
            count = k;
            continue;
        }
        qsort(c, count, sizeof *c, cand_order);
        *out = malloc((count ? count : 1) * sizeof **out);
        if (!*out) {
            free(c);
            return hr_err(HR_ERR_NOMEM, "out of memory for merges");
        }
        for (size_t i = 0; i < count; i++) (*out)[i][0] = c[i].l, (*out)[i][1] = c[i].r;
        free(c);
    }
    *n = count;
    return HR_OK;
}

/* ---- pipeline components ---- */

static cJSON *typed(const char *type) {
    cJSON *o = cJSON_CreateObject();
    if (o) cJSON_AddStringToObject(o, "type", type);
    return o;
}

static cJSON *replace_item(const char *from, const char *to) {
    cJSON *o = typed("Replace");
    cJSON *pat = cJSON_AddObjectToObject(o, "pattern");
    cJSON_AddStringToObject(pat, "String", from);
    cJSON_AddStringToObject(o, "content", to);
    return o;
}

static cJSON *sequence(const char *list_key, cJSON *items) {
    cJSON *o = typed("Sequence");
    cJSON_AddItemToObject(o, list_key, items);
    return o;
}

/* One component or a Sequence of several (NULL for none: JSON null). */
static cJSON *one_or_sequence(const char *list_key, cJSON *items) {
    int n = cJSON_GetArraySize(items);
    if (n == 0) {
        cJSON_Delete(items);
        return cJSON_CreateNull();
    }
    if (n > 1) return sequence(list_key, items);
    cJSON *only = cJSON_DetachItemFromArray(items, 0);
    cJSON_Delete(items);
    return only;
}

static cJSON *normalizer(const hr_tokenizer *t) {
    cJSON *a = cJSON_CreateArray();
    if (t->nfc) cJSON_AddItemToArray(a, typed("NFC"));
    if (hr_tokenizer_model(t) == HR_TOKENIZER_SPM) {
        if (t->add_space_prefix) {
            cJSON *p = typed("Prepend");
            cJSON_AddStringToObject(p, "prepend", TOK_SPACE_MARK);
            cJSON_AddItemToArray(a, p);
        }
        cJSON_AddItemToArray(a, replace_item(" ", TOK_SPACE_MARK));
    } else if (!t->byte_level) {
        if (t->prefix_len) {
            cJSON *p = typed("Prepend");
            cJSON_AddStringToObject(p, "prepend", t->prefix);
            cJSON_AddItemToArray(a, p);
        }
        for (int i = 0; i < t->n_repl; i++) cJSON_AddItemToArray(a, replace_item(t->repl[i].from, t->repl[i].to));
    }
    return one_or_sequence("normalizers", a);
}

static cJSON *byte_level_item(bool prefix, bool use_regex) {
    cJSON *o = typed("ByteLevel");
    cJSON_AddBoolToObject(o, "add_prefix_space", prefix);
    cJSON_AddBoolToObject(o, "trim_offsets", use_regex);
    cJSON_AddBoolToObject(o, "use_regex", use_regex);
    return o;
}

static cJSON *pre_tokenizer(const hr_tokenizer *t) {
    if (!t->byte_level) return cJSON_CreateNull();
    bool prefix = t->prefix_len > 0;
    /* GPT-2's own regex is what ByteLevel's use_regex applies */
    if (t->pre_name && strcmp(t->pre_name, "gpt-2") == 0) return byte_level_item(prefix, true);
    if (!t->pre_pattern) return byte_level_item(prefix, false);
    cJSON *split = typed("Split"), *a = cJSON_CreateArray();
    cJSON *pat = cJSON_AddObjectToObject(split, "pattern");
    cJSON_AddStringToObject(pat, "Regex", t->pre_pattern);
    cJSON_AddStringToObject(split, "behavior", "Isolated");
    cJSON_AddBoolToObject(split, "invert", false);
    cJSON_AddItemToArray(a, split);
    cJSON_AddItemToArray(a, byte_level_item(prefix, false));
    return sequence("pretokenizers", a);
}

/* Appends [BOS] $which [EOS] (as the vocabulary adds them) to a template. */
static hr_status add_template(cJSON *a, const hr_tokenizer *t, bool bos, bool eos, const char *which, int type_id) {
    hr_status st = HR_OK;
    for (int k = 0; k < 3 && !st; k++) {
        if ((k == 0 && !bos) || (k == 2 && !eos)) continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToArray(a, e);
        cJSON *inner = cJSON_AddObjectToObject(e, k == 1 ? "Sequence" : "SpecialToken");
        if (k == 1) cJSON_AddStringToObject(inner, "id", which);
        else st = add_token_string(inner, "id", t, k == 0 ? t->bos : t->eos);
        cJSON_AddNumberToObject(inner, "type_id", type_id);
    }
    return st;
}

static hr_status add_special_entry(cJSON *specials, const hr_tokenizer *t, int32_t id) {
    char *s;
    hr_status st = token_string(t, id, &s);
    if (st) return st;
    cJSON *e = cJSON_AddObjectToObject(specials, s);
    cJSON_AddStringToObject(e, "id", s);
    cJSON_AddItemToObject(e, "ids", cJSON_CreateIntArray(&id, 1));
    cJSON *toks = cJSON_AddArrayToObject(e, "tokens");
    cJSON_AddItemToArray(toks, cJSON_CreateString(s));
    free(s);
    return HR_OK;
}

/* TemplateProcessing adding BOS / EOS as the vocabulary asks; NULL when it
 * adds neither. */
static cJSON *template_processing(const hr_tokenizer *t, hr_status *st) {
    bool bos = hr_tokenizer_add_bos_default(t), eos = hr_tokenizer_add_eos_default(t);
    if (!bos && !eos) return NULL;
    cJSON *o = typed("TemplateProcessing");
    cJSON *single = cJSON_AddArrayToObject(o, "single"), *pair = cJSON_AddArrayToObject(o, "pair");
    cJSON *specials = cJSON_AddObjectToObject(o, "special_tokens");
    if (!*st) *st = add_template(single, t, bos, eos, "A", 0);
    if (!*st) *st = add_template(pair, t, bos, eos, "A", 0);
    if (!*st) *st = add_template(pair, t, bos, eos, "B", 1);
    if (!*st && bos) *st = add_special_entry(specials, t, t->bos);
    if (!*st && eos && t->eos != (bos ? t->bos : -1)) *st = add_special_entry(specials, t, t->eos);
    return o;
}

static cJSON *post_processor(const hr_tokenizer *t, hr_status *st) {
    cJSON *tp = template_processing(t, st);
    if (!t->byte_level) return tp ? tp : cJSON_CreateNull();
    cJSON *bl = byte_level_item(false, false);
    if (!tp) return bl;
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, bl);
    cJSON_AddItemToArray(a, tp);
    return sequence("processors", a);
}

static cJSON *decoder(const hr_tokenizer *t) {
    if (t->byte_level) return byte_level_item(false, false);
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, replace_item(TOK_SPACE_MARK, " "));
    cJSON_AddItemToArray(a, typed("ByteFallback"));
    cJSON_AddItemToArray(a, typed("Fuse"));
    if (t->dec_strip) {
        cJSON *s = typed("Strip");
        cJSON_AddStringToObject(s, "content", " ");
        cJSON_AddNumberToObject(s, "start", 1);
        cJSON_AddNumberToObject(s, "stop", 0);
        cJSON_AddItemToArray(a, s);
    }
    return sequence("decoders", a);
}

static cJSON *added_tokens(const hr_tokenizer *t, hr_status *st) {
    cJSON *a = cJSON_CreateArray();
    for (int32_t id = 0; id < t->n_vocab && !*st; id++) {
        uint8_t ty = t->types[id];
        if (ty != TOK_CONTROL && ty != TOK_USER && ty != TOK_UNKNOWN) continue;
        size_t len;
        hr_tokenizer_token_text(t, id, &len);
        if (!len) continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToArray(a, e);
        cJSON_AddNumberToObject(e, "id", id);
        *st = add_token_string(e, "content", t, id);
        cJSON_AddBoolToObject(e, "single_word", false);
        cJSON_AddBoolToObject(e, "lstrip", false);
        cJSON_AddBoolToObject(e, "rstrip", false);
        cJSON_AddBoolToObject(e, "normalized", false);
        cJSON_AddBoolToObject(e, "special", ty != TOK_USER);
    }
    return a;
}

/* ---- model ---- */

static bool any_byte_piece(const hr_tokenizer *t) {
    for (int b = 0; b < 256; b++)
        if (t->byte_id[b] >= 0) return true;
    return false;
}

static hr_status add_vocab(cJSON *model, const hr_tokenizer *t) {
    cJSON *v = cJSON_AddObjectToObject(model, "vocab");
    for (int32_t id = 0; id < t->n_vocab; id++) {
        size_t len;
        hr_tokenizer_token_text(t, id, &len);
        if (!len) continue; /* a hole: the id stays unassigned */
        char *s;
        hr_status st = token_string(t, id, &s);
        if (st) return st;
        cJSON_AddItemToObject(v, s, cJSON_CreateNumber(id));
        free(s);
    }
    return HR_OK;
}

/* "a b" strings, or ["a", "b"] pairs when some side contains a space
 * (newer `tokenizers` read both). */
static hr_status add_merges(cJSON *model, const hr_tokenizer *t, int32_t (*m)[2], size_t n) {
    bool pairs = false;
    for (size_t i = 0; i < n && !pairs; i++)
        for (int k = 0; k < 2; k++) {
            size_t len;
            const char *s = hr_tokenizer_token_text(t, m[i][k], &len);
            pairs |= memchr(s, ' ', len) != NULL;
        }
    cJSON *a = cJSON_AddArrayToObject(model, "merges");
    for (size_t i = 0; i < n; i++) {
        char *l = NULL, *r = NULL;
        hr_status st = token_string(t, m[i][0], &l);
        if (!st) st = token_string(t, m[i][1], &r);
        if (st) {
            free(l);
            return st;
        }
        if (pairs) {
            cJSON *p = cJSON_CreateArray();
            cJSON_AddItemToArray(p, cJSON_CreateString(l));
            cJSON_AddItemToArray(p, cJSON_CreateString(r));
            cJSON_AddItemToArray(a, p);
        } else {
            size_t ll = strlen(l), rl = strlen(r);
            char *s = malloc(ll + rl + 2);
            if (!s) {
                free(l), free(r);
                return hr_err(HR_ERR_NOMEM, "out of memory");
            }
            memcpy(s, l, ll);
            s[ll] = ' ';
            memcpy(s + ll + 1, r, rl + 1);
            cJSON_AddItemToArray(a, cJSON_CreateString(s));
            free(s);
        }
        free(l), free(r);
    }
    return HR_OK;
}

static hr_status build_model(cJSON *root, const hr_tokenizer *t) {
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    hr_status st = add_token_string(model, "unk_token", t, t->unk);
    if (st) return st;
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", spm_like(t));
    bool fallback = hr_tokenizer_model(t) == HR_TOKENIZER_SPM ? any_byte_piece(t) : t->byte_fallback;
    cJSON_AddBoolToObject(model, "byte_fallback", fallback);
    cJSON_AddBoolToObject(model, "ignore_merges", t->ignore_merges);
    if ((st = add_vocab(model, t))) return st;
    int32_t(*m)[2] = t->merge_list; // (n, 2)
    size_t n = t->n_merge_list;
    if (hr_tokenizer_model(t) == HR_TOKENIZER_SPM && (st = derive_merges(t, &m, &n))) return st;
    st = add_merges(model, t, m, n);
    if (m != t->merge_list) free(m);
    return st;
}

static cJSON *tokenizer_json(const hr_tokenizer *t, hr_status *st) {
    cJSON *root = cJSON_CreateObject();
    if (!root) {
        *st = hr_err(HR_ERR_NOMEM, "out of memory");
        return NULL;
    }
    *st = HR_OK;
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON_AddItemToObject(root, "added_tokens", added_tokens(t, st));
    cJSON_AddItemToObject(root, "normalizer", normalizer(t));
    cJSON_AddItemToObject(root, "pre_tokenizer", pre_tokenizer(t));
    cJSON_AddItemToObject(root, "post_processor", post_processor(t, st));
    cJSON_AddItemToObject(root, "decoder", decoder(t));
    if (!*st) *st = build_model(root, t);
    if (*st) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static hr_status write_json(cJSON *root, const char *path) {
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) return hr_err(HR_ERR_NOMEM, "out of memory printing JSON");
    hr_atomic_file af;
    hr_status st = hr_atomic_open(path, &af);
    if (!st) {
        st = hr_atomic_write(&af, text, strlen(text));
        if (!st) st = hr_atomic_write(&af, "\n", 1);
        if (!st) st = hr_atomic_commit(&af);
        else hr_atomic_abort(&af);
    }
    free(text);
    return st;
}

hr_status hr_tokenizer_save_json(const hr_tokenizer *t, const char *path) {
    if (!t || !path) return hr_err(HR_ERR_INVALID_ARG, "hr_tokenizer_save_json: NULL argument");
    hr_status st = HR_OK;
    cJSON *root = tokenizer_json(t, &st);
    return st ? st : write_json(root, path);
}

hr_status hr_tokenizer_save_config_json(const hr_tokenizer *t, const char *path, int model_max_length) {
    if (!t || !path) return hr_err(HR_ERR_INVALID_ARG, "hr_tokenizer_save_config_json: NULL argument");
    cJSON *j = cJSON_CreateObject();
    if (!j) return hr_err(HR_ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(j, "tokenizer_class", "PreTrainedTokenizerFast");
    hr_status st = add_token_string(j, "bos_token", t, t->bos);
    if (!st) st = add_token_string(j, "eos_token", t, t->eos);
    if (!st) st = add_token_string(j, "unk_token", t, t->unk);
    if (st) {
        cJSON_Delete(j);
        return st;
    }
    cJSON_AddBoolToObject(j, "add_bos_token", hr_tokenizer_add_bos_default(t));
    cJSON_AddBoolToObject(j, "add_eos_token", hr_tokenizer_add_eos_default(t));
    cJSON_AddBoolToObject(j, "clean_up_tokenization_spaces", false);
    if (model_max_length > 0) cJSON_AddNumberToObject(j, "model_max_length", model_max_length);
    return write_json(j, path);
}
