/* Hugging Face tokenizer.json (model type "BPE") and OpenAI/HF
 * vocab.json (= GPT-2 encoder.json) + merges.txt (= vocab.bpe).
 *
 * Supported tokenizer.json pipelines:
 *  - byte-level: pre_tokenizer ByteLevel (GPT-2 regex when use_regex), or
 *    Sequence[Split(Regex, Isolated), ByteLevel(use_regex false)];
 *    decoder ByteLevel.
 *  - SentencePiece-style: normalizer Prepend/Replace (Llama-2: Prepend "▁",
 *    Replace " " -> "▁"), no pre_tokenizer, byte_fallback; decoder
 *    Replace/ByteFallback/Fuse/Strip.
 * The NFC normalizer is accepted and not applied (llama.cpp does the same):
 * text that is already NFC, as almost all text is, is unaffected.
 * Anything else is HR_ERR_UNSUPPORTED naming the component. */
#include "tokenizer/tok_internal.h"

#include "core/json.h"
#include "core/limits.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static hr_status parse_json(const uint8_t *data, size_t size, cJSON **root) {
    *root = NULL;
    if (size > HR_MAX_JSON_FILE_BYTES) return hr_err(HR_ERR_RANGE, "JSON file of %zu bytes is too large", size);
    return hr_json_parse((const char *)data, size, root);
}

static const char *str_of(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool type_is(const cJSON *o, const char *type) {
    const char *t = str_of(o, "type");
    return t && strcmp(t, type) == 0;
}

static bool bool_of(const cJSON *o, const char *key, bool dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

/* A JSON number that is an exact id in [0, limit). */
static bool id_of(const cJSON *v, double limit, int32_t *id) {
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble >= limit ||
        v->valuedouble != floor(v->valuedouble))
        return false;
    *id = (int32_t)v->valuedouble;
    return true;
}

/* ---- vocabulary collection ---- */

typedef struct {
    int32_t n;
    tok_span *pieces; /* (n) */
    uint8_t *types;   /* (n) */
    size_t n_merges;
    tok_span *ml, *mr; /* (n_merges) */
} vocab_parts;

static void parts_free(vocab_parts *p) {
    free(p->pieces);
    free(p->types);
    free(p->ml);
    free(p->mr);
}

/* Counts entries and the largest id of a {piece: id} object plus an
 * optional added_tokens array; ids may leave holes but not absurd ones. */
static hr_status size_vocab(const cJSON *vocab, const cJSON *added, int32_t *n) {
    size_t count = (size_t)cJSON_GetArraySize(vocab) + (size_t)cJSON_GetArraySize(added);
    double limit = (double)count * 2 + 1024;
    if (limit > INT32_MAX) limit = INT32_MAX;
    int32_t max_id = -1, id;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        if (!id_of(e, limit, &id))
            return hr_err(HR_ERR_FORMAT, "vocabulary entry '%.64s' has id %.17g, not an integer in 0..%.0f",
                          e->string ? e->string : "?", cJSON_IsNumber(e) ? e->valuedouble : NAN, limit - 1);
        if (id > max_id) max_id = id;
    }
    cJSON_ArrayForEach(e, added) {
        if (!id_of(cJSON_GetObjectItemCaseSensitive(e, "id"), limit, &id) || !str_of(e, "content"))
            return hr_err(HR_ERR_FORMAT, "added_tokens entry without a valid id and content");
        if (id > max_id) max_id = id;
    }
    if (max_id < 0) return hr_err(HR_ERR_FORMAT, "vocabulary is empty");
    *n = max_id + 1;
    return HR_OK;
}

static hr_status collect_vocab(const cJSON *vocab, const cJSON *added, vocab_parts *p) {
    hr_status st = size_vocab(vocab, added, &p->n);
    if (st) return st;
    p->pieces = calloc((size_t)p->n, sizeof *p->pieces);
    p->types = malloc((size_t)p->n);
    if (!p->pieces || !p->types) return hr_err(HR_ERR_NOMEM, "out of memory for %d tokens", (int)p->n);
    memset(p->types, TOK_UNUSED, (size_t)p->n); /* holes stay unused */
    const cJSON *e;
    int32_t id = 0;
    cJSON_ArrayForEach(e, vocab) {
        id_of(e, INT32_MAX, &id);
        if (p->pieces[id].s)
            return hr_err(HR_ERR_FORMAT, "id %d is given to both '%.64s' and '%.64s'", (int)id, p->pieces[id].s,
                          e->string);
        p->pieces[id] = (tok_span){e->string, strlen(e->string)};
        p->types[id] = TOK_NORMAL;
    }
    cJSON_ArrayForEach(e, added) {
        id_of(cJSON_GetObjectItemCaseSensitive(e, "id"), INT32_MAX, &id);
        const char *content = str_of(e, "content");
        if (!p->pieces[id].s) p->pieces[id] = (tok_span){content, strlen(content)};
        p->types[id] = bool_of(e, "special", false) ? TOK_CONTROL : TOK_USER;
    }
    for (int32_t i = 0; i < p->n; i++)
        if (!p->pieces[i].s) p->pieces[i] = (tok_span){"", 0};
    return HR_OK;
}

/* Splits "a b" at the first space after the first byte (a side may itself
 * start with a space in some vocabularies). */
static bool split_merge(const char *s, size_t len, tok_span *l, tok_span *r) {
    const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
    if (!sp || sp + 1 == s + len) return false;
    *l = (tok_span){s, (size_t)(sp - s)};
    *r = (tok_span){sp + 1, len - (size_t)(sp - s) - 1};
    return true;
}

static hr_status collect_json_merges(const cJSON *merges, vocab_parts *p) {
    if (!cJSON_IsArray(merges)) return hr_err(HR_ERR_FORMAT, "model.merges is missing or not an array");
    size_t n = (size_t)cJSON_GetArraySize(merges), i = 0;
    p->ml = malloc((n ? n : 1) * sizeof *p->ml);
    p->mr = malloc((n ? n : 1) * sizeof *p->mr);
    if (!p->ml || !p->mr) return hr_err(HR_ERR_NOMEM, "out of memory for %zu merges", n);
    const cJSON *e;
    cJSON_ArrayForEach(e, merges) {
        bool ok;
        if (cJSON_IsString(e)) {
            ok = split_merge(e->valuestring, strlen(e->valuestring), &p->ml[i], &p->mr[i]);
        } else {
            const cJSON *a = cJSON_GetArrayItem(e, 0), *b = cJSON_GetArrayItem(e, 1);
            ok = cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(a) && cJSON_IsString(b);
            if (ok) {
                p->ml[i] = (tok_span){a->valuestring, strlen(a->valuestring)};
                p->mr[i] = (tok_span){b->valuestring, strlen(b->valuestring)};
            }
        }
        if (!ok) return hr_err(HR_ERR_FORMAT, "merge %zu is neither \"a b\" nor [\"a\", \"b\"]", i);
        i++;
    }
    p->n_merges = i;
    return HR_OK;
}

/* ---- pipeline components ---- */

typedef struct {
    bool byte_level, byte_fallback, ignore_merges, dec_strip, prefix_if_no_space, nfc;
    const char *regex;  /* borrowed from the JSON or a static table */
    const char *prefix; /* borrowed */
    const char *unk;    /* unk_token text */
    int n_repl;
    const char *repl_from[TOK_MAX_REPLACE], *repl_to[TOK_MAX_REPLACE];
    const char *bos, *eos; /* special token texts */
    bool add_bos, add_eos;
} hf_pipeline;

static hr_status unsupported(const char *what, const cJSON *o) {
    const char *t = str_of(o, "type");
    return hr_err(HR_ERR_UNSUPPORTED, "tokenizer.json %s '%s' is not supported", what, t ? t : "(no type)");
}

/* A normalizer's text goes into the text the encoder splits by
 * characters: it must be as valid UTF-8 as the input (tok_validate_utf8). */
static hr_status check_utf8(const char *what, const char *s) {
    hr_status st = tok_validate_utf8(s, strlen(s));
    if (st != HR_OK) hr_err_prefix("%s normalizer text", what);
    return st;
}

static hr_status add_normalizer(const cJSON *n, hf_pipeline *pl) {
    if (type_is(n, "NFC")) { /* see the file comment */
        pl->nfc = true;
        return HR_OK;
    }
    if (type_is(n, "Prepend")) {
        if (!(pl->prefix = str_of(n, "prepend"))) return hr_err(HR_ERR_FORMAT, "Prepend normalizer without text");
        return check_utf8("Prepend", pl->prefix);
    }
    if (type_is(n, "Replace")) {
        const char *from = str_of(cJSON_GetObjectItemCaseSensitive(n, "pattern"), "String"), *to = str_of(n, "content");
        if (!from || !to)
            return hr_err(HR_ERR_UNSUPPORTED,
                          "tokenizer.json Replace normalizer with a regex pattern is not supported");
        if (!*from) return hr_err(HR_ERR_FORMAT, "Replace normalizer with an empty pattern");
        hr_status st = check_utf8("Replace", from);
        if (st == HR_OK) st = check_utf8("Replace", to);
        if (st != HR_OK) return st;
        if (pl->n_repl == TOK_MAX_REPLACE)
            return hr_err(HR_ERR_UNSUPPORTED, "more than %d Replace normalizers", TOK_MAX_REPLACE);
        pl->repl_from[pl->n_repl] = from;
        pl->repl_to[pl->n_repl++] = to;
        return HR_OK;
    }
    if (type_is(n, "Sequence")) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(n, "normalizers")) {
            hr_status st = add_normalizer(e, pl);
            if (st) return st;
        }
        return HR_OK;
    }
    return unsupported("normalizer", n);
}

static hr_status add_pre_tokenizer(const cJSON *p, hf_pipeline *pl) {
    if (type_is(p, "ByteLevel")) {
        pl->byte_level = true;
        if (bool_of(p, "use_regex", true)) {
            if (pl->regex) return hr_err(HR_ERR_UNSUPPORTED, "tokenizer.json with two split regexes is not supported");
            pl->regex = tok_pre_regex("gpt-2", 5);
        }
        if (bool_of(p, "add_prefix_space", false)) pl->prefix = " ", pl->prefix_if_no_space = true;
        return HR_OK;
    }
    if (type_is(p, "Split")) {
        const char *re = str_of(cJSON_GetObjectItemCaseSensitive(p, "pattern"), "Regex");
        const char *beh = str_of(p, "behavior");
        if (!re || !beh || strcmp(beh, "Isolated") != 0 || bool_of(p, "invert", false))
            return hr_err(HR_ERR_UNSUPPORTED, "tokenizer.json Split pre-tokenizer: only a Regex pattern with "
                                              "behavior Isolated and invert false is supported");
        if (pl->regex) return hr_err(HR_ERR_UNSUPPORTED, "tokenizer.json with two split regexes is not supported");
        pl->regex = re;
        return HR_OK;
    }
    if (type_is(p, "Sequence")) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(p, "pretokenizers")) {
            hr_status st = add_pre_tokenizer(e, pl);
            if (st) return st;
        }
        return HR_OK;
    }
    return unsupported("pre_tokenizer", p);
}

static hr_status add_decoder(const cJSON *d, hf_pipeline *pl) {
    if (type_is(d, "ByteLevel") || type_is(d, "ByteFallback") || type_is(d, "Fuse")) return HR_OK;
    if (type_is(d, "Replace")) {
        const char *from = str_of(cJSON_GetObjectItemCaseSensitive(d, "pattern"), "String"), *to = str_of(d, "content");
        if (from && to && strcmp(from, TOK_SPACE_MARK) == 0 && strcmp(to, " ") == 0) return HR_OK;
        return hr_err(HR_ERR_UNSUPPORTED, "tokenizer.json Replace decoder other than \"\xE2\x96\x81\" -> \" \"");
    }
    if (type_is(d, "Strip")) {
        const cJSON *start = cJSON_GetObjectItemCaseSensitive(d, "start");
        pl->dec_strip = cJSON_IsNumber(start) && start->valuedouble >= 1;
        return HR_OK;
    }
    if (type_is(d, "Sequence")) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(d, "decoders")) {
            hr_status st = add_decoder(e, pl);
            if (st) return st;
        }
        return HR_OK;
    }
    return unsupported("decoder", d);
}

/* BOS / EOS from a TemplateProcessing "single" template: special tokens
 * before the sequence are added at the start, after it at the end. */
static void read_template(const cJSON *pp, hf_pipeline *pl) {
    if (type_is(pp, "Sequence")) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(pp, "processors")) read_template(e, pl);
        return;
    }
    if (!type_is(pp, "TemplateProcessing")) return;
    bool after = false;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(pp, "single")) {
        if (cJSON_GetObjectItemCaseSensitive(e, "Sequence")) after = true;
        const char *id = str_of(cJSON_GetObjectItemCaseSensitive(e, "SpecialToken"), "id");
        if (!id) continue;
        if (after) pl->eos = id, pl->add_eos = true;
        else pl->bos = id, pl->add_bos = true;
    }
}

static hr_status read_model_flags(const cJSON *model, hf_pipeline *pl) {
    const char *type = str_of(model, "type");
    if (type && strcmp(type, "BPE") != 0)
        return hr_err(HR_ERR_UNSUPPORTED, "tokenizer.json model type '%.64s' is not supported (only BPE)", type);
    if (!type && !cJSON_GetObjectItemCaseSensitive(model, "merges"))
        return hr_err(HR_ERR_UNSUPPORTED, "tokenizer.json model has no type and no merges: not a BPE model");
    const char *cont = str_of(model, "continuing_subword_prefix"), *suffix = str_of(model, "end_of_word_suffix");
    if ((cont && *cont) || (suffix && *suffix))
        return hr_err(HR_ERR_UNSUPPORTED,
                      "BPE with a continuing_subword_prefix or end_of_word_suffix is not supported");
    pl->byte_fallback = bool_of(model, "byte_fallback", false);
    pl->ignore_merges = bool_of(model, "ignore_merges", false);
    pl->unk = str_of(model, "unk_token");
    return HR_OK;
}

/* bpe.c's normalise() sizes its buffer as the text times the largest
 * Replace growth, once per Replace: bound that factor up front, so that a
 * hostile file cannot make every encode ask for gigabytes. */
#define HF_MAX_NORM_GROWTH 64

static hr_status check_norm_growth(const hf_pipeline *pl) {
    size_t grow = 1, worst = 1;
    for (int i = 0; i < pl->n_repl; i++) {
        size_t from = strlen(pl->repl_from[i]), g = (strlen(pl->repl_to[i]) + from - 1) / from;
        if (g > grow) grow = g;
    }
    for (int i = 0; i < pl->n_repl && worst <= HF_MAX_NORM_GROWTH; i++) worst *= grow;
    if (worst > HF_MAX_NORM_GROWTH)
        return hr_err(HR_ERR_UNSUPPORTED,
                      "tokenizer.json Replace normalizers can grow the text %zu-fold (at most "
                      "%d-fold is supported)",
                      worst, HF_MAX_NORM_GROWTH);
    return HR_OK;
}

static hr_status read_pipeline(const cJSON *root, hf_pipeline *pl) {
    hr_status st = read_model_flags(cJSON_GetObjectItemCaseSensitive(root, "model"), pl);
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "normalizer"),
                *p = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"),
                *d = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    if (!st && n && !cJSON_IsNull(n)) st = add_normalizer(n, pl);
    if (!st && p && !cJSON_IsNull(p)) st = add_pre_tokenizer(p, pl);
    if (!st && d && !cJSON_IsNull(d)) st = add_decoder(d, pl);
    if (!st) st = check_norm_growth(pl);
    if (st) return st;
    if (pl->byte_level && (pl->n_repl || (pl->prefix && !pl->prefix_if_no_space)))
        return hr_err(HR_ERR_UNSUPPORTED, "tokenizer.json combining a byte-level pre-tokenizer with Prepend/Replace "
                                          "normalizers is not supported");
    read_template(cJSON_GetObjectItemCaseSensitive(root, "post_processor"), pl);
    return HR_OK;
}

/* ---- companion tokenizer_config.json ---- */

static const char *config_token(const cJSON *cfg, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    return cJSON_IsString(v) ? v->valuestring : str_of(v, "content");
}

/* Special tokens of the tokenizer_config.json beside path, if any (a
 * missing or unreadable config is not an error: the template decides). */
static cJSON *read_config(const char *path, hf_pipeline *pl) {
    const char *slash = strrchr(path, '/');
    char cfg_path[4096];
    int k = snprintf(cfg_path, sizeof cfg_path, "%.*stokenizer_config.json", slash ? (int)(slash - path + 1) : 0, path);
    if (k < 0 || (size_t)k >= sizeof cfg_path) return NULL;
    hr_mapped_file f;
    if (hr_map_file(cfg_path, &f) != HR_OK) return NULL;
    cJSON *cfg = NULL;
    if (f.size < ((size_t)16 << 20) && parse_json(f.data, f.size, &cfg) != HR_OK)
        hr_log(HR_LOG_WARN, "tokenizer: ignoring %s: %s", cfg_path, hr_last_error());
    hr_unmap_file(&f);
    if (!cfg) return NULL;
    const char *bos = config_token(cfg, "bos_token"), *eos = config_token(cfg, "eos_token");
    if (bos) pl->bos = bos;
    if (eos) pl->eos = eos;
    pl->add_bos = bool_of(cfg, "add_bos_token", pl->add_bos && pl->bos);
    pl->add_eos = bool_of(cfg, "add_eos_token", pl->add_eos);
    return cfg;
}

/* ---- assembling the tokenizer ---- */

static int32_t find_piece(const vocab_parts *p, const char *s) {
    if (!s) return -1;
    size_t len = strlen(s);
    for (int32_t i = 0; i < p->n; i++)
        if (p->pieces[i].len == len && memcmp(p->pieces[i].s, s, len) == 0) return i;
    return -1;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static hr_status apply_pipeline(hr_tokenizer *t, const hf_pipeline *pl, const vocab_parts *p) {
    t->byte_fallback = pl->byte_fallback;
    t->ignore_merges = pl->ignore_merges;
    t->dec_strip = pl->dec_strip;
    t->nfc = pl->nfc;
    t->prefix_if_no_space = pl->prefix_if_no_space;
    t->add_space_prefix = pl->prefix != NULL && !pl->prefix_if_no_space;
    if (pl->prefix && pl->prefix_if_no_space) t->add_space_prefix = true;
    t->kind = pl->byte_level ? "bpe (byte-level, tokenizer.json)" : "bpe (char-level, tokenizer.json)";
    if (pl->prefix && *pl->prefix) {
        if (!(t->prefix = dup_str(pl->prefix))) return hr_err(HR_ERR_NOMEM, "out of memory");
        t->prefix_len = strlen(pl->prefix);
    }
    for (int i = 0; i < pl->n_repl; i++) {
        tok_replace *r = &t->repl[t->n_repl++];
        if (!(r->from = dup_str(pl->repl_from[i])) || !(r->to = dup_str(pl->repl_to[i])))
            return hr_err(HR_ERR_NOMEM, "out of memory");
        r->from_len = strlen(r->from);
        r->to_len = strlen(r->to);
    }
    t->bos = find_piece(p, pl->bos);
    t->eos = find_piece(p, pl->eos);
    t->unk = find_piece(p, pl->unk);
    t->add_bos = pl->add_bos && t->bos >= 0;
    t->add_eos = pl->add_eos && t->eos >= 0;
    return pl->regex ? tok_set_pre_regex(t, pl->regex, strlen(pl->regex)) : HR_OK;
}

static hr_status build_from_parts(vocab_parts *p, const hf_pipeline *pl, hr_tokenizer **out) {
    int32_t unk = find_piece(p, pl->unk);
    if (unk >= 0) p->types[unk] = TOK_UNKNOWN;
    for (int32_t i = 0; pl->byte_fallback && i < p->n; i++)
        if (p->types[i] == TOK_NORMAL && tok_parse_byte_piece(p->pieces[i].s, p->pieces[i].len) >= 0)
            p->types[i] = TOK_BYTE;
    hr_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return hr_err(HR_ERR_NOMEM, "out of memory");
    tok_bpe_spec spec = {p->n, p->pieces, p->types, p->n_merges, p->ml, p->mr, pl->byte_level};
    hr_status st = tok_bpe_build(t, &spec);
    if (!st) st = apply_pipeline(t, pl, p);
    if (st) {
        hr_tokenizer_free(t);
        return st;
    }
    *out = t;
    return HR_OK;
}

static hr_status load_hf_root(const char *path, const cJSON *root, hr_tokenizer **out) {
    cJSON *cfg = NULL;
    vocab_parts p = {0};
    hf_pipeline pl = {0};
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    hr_status st = read_pipeline(root, &pl);
    if (st) goto done;
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(vocab)) {
        st = hr_err(HR_ERR_FORMAT, "tokenizer.json model has no \"vocab\" object");
        goto done;
    }
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if ((st = collect_vocab(vocab, cJSON_IsArray(added) ? added : NULL, &p)) ||
        (st = collect_json_merges(cJSON_GetObjectItemCaseSensitive(model, "merges"), &p)))
        goto done;
    cfg = read_config(path, &pl);
    st = build_from_parts(&p, &pl, out);
done:
    parts_free(&p);
    cJSON_Delete(cfg);
    return st;
}

/* ---- vocab.json + merges.txt (GPT-2's encoder.json + vocab.bpe) ---- */

static hr_status collect_text_merges(const char *text, size_t len, vocab_parts *p) {
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    p->ml = malloc(lines * sizeof *p->ml);
    p->mr = malloc(lines * sizeof *p->mr);
    if (!p->ml || !p->mr) return hr_err(HR_ERR_NOMEM, "out of memory for %zu merges", lines);
    size_t line_no = 0;
    for (size_t pos = 0; pos < len; line_no++) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len, l = end - pos;
        const char *s = text + pos;
        pos = end + 1;
        if (l && s[l - 1] == '\r') l--;
        if (!l || (line_no == 0 && l >= 8 && memcmp(s, "#version", 8) == 0)) continue;
        if (!split_merge(s, l, &p->ml[p->n_merges], &p->mr[p->n_merges]))
            return hr_err(HR_ERR_FORMAT, "merges line %zu is not \"a b\"", line_no + 1);
        p->n_merges++;
    }
    return HR_OK;
}

static hr_status vocab_merges_root(const cJSON *root, const char *vocab_path, const char *merges_path,
                                   hr_tokenizer **out) {
    char *merges = NULL;
    size_t merges_len = 0;
    vocab_parts p = {0};
    hr_status st = hr_read_file(merges_path, &merges, &merges_len);
    if (st) goto done;
    if (!cJSON_IsObject(root)) st = hr_err(HR_ERR_FORMAT, "not a JSON object");
    if (!st) st = collect_vocab(root, NULL, &p);
    if (st) {
        hr_err_prefix("%s", vocab_path);
        goto done;
    }
    if ((st = tok_validate_utf8(merges, merges_len)) || (st = collect_text_merges(merges, merges_len, &p))) {
        hr_err_prefix("%s", merges_path);
        goto done;
    }
    /* GPT-2's one special token; it is both BOS and EOS, never added */
    hf_pipeline pl = {
        .byte_level = true, .regex = tok_pre_regex("gpt-2", 5), .bos = "<|endoftext|>", .eos = "<|endoftext|>"};
    int32_t eot = find_piece(&p, "<|endoftext|>");
    if (eot >= 0) p.types[eot] = TOK_CONTROL;
    if (!(st = build_from_parts(&p, &pl, out))) (*out)->kind = "bpe (byte-level, vocab.json + merges.txt)";
done:
    parts_free(&p);
    free(merges);
    return st;
}

hr_status tok_load_vocab_merges(const char *vocab_path, const char *merges_path, hr_tokenizer **out) {
    hr_mapped_file vf;
    cJSON *root = NULL;
    hr_status st = hr_map_file(vocab_path, &vf);
    if (st) return st;
    if ((st = parse_json(vf.data, vf.size, &root))) hr_err_prefix("%s", vocab_path);
    hr_unmap_file(&vf);
    if (!st) st = vocab_merges_root(root, vocab_path, merges_path, out);
    cJSON_Delete(root);
    return st;
}

/* merges.txt (or vocab.bpe) lying beside a vocab.json / encoder.json. */
static hr_status merges_beside(const char *path, char *buf, size_t cap) {
    static const char *const names[] = {"merges.txt", "vocab.bpe"};
    const char *slash = strrchr(path, '/');
    int dl = slash ? (int)(slash - path + 1) : 0;
    for (size_t i = 0; i < 2; i++) {
        int k = snprintf(buf, cap, "%.*s%s", dl, path, names[i]);
        if (k >= 0 && (size_t)k < cap && access(buf, R_OK) == 0) return HR_OK;
    }
    return hr_err(HR_ERR_NOT_FOUND,
                  "'%s' is a vocabulary without a tokenizer pipeline and there is no merges.txt "
                  "or vocab.bpe beside it",
                  path);
}

hr_status tok_load_json(const char *path, const uint8_t *data, size_t size, hr_tokenizer **out) {
    cJSON *root = NULL;
    hr_status st = parse_json(data, size, &root);
    if (st) return st;
    if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "model"))) {
        st = load_hf_root(path, root, out);
    } else {
        char merges[4096];
        if (!(st = merges_beside(path, merges, sizeof merges))) st = vocab_merges_root(root, path, merges, out);
    }
    cJSON_Delete(root);
    return st;
}
