/* Vocabulary storage shared by both file formats: piece blobs, the piece
 * hash used by encoding, byte-fallback table, accessors. */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

static uint32_t tok_hash(const char *s, size_t len) {
    uint32_t h = 2166136261u; /* FNV-1a: pieces are short, this is plenty */
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    return h;
}

int tok_parse_byte_piece(const char *s, size_t len) {
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                       : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Types whose pieces can come out of merging text: control, unknown and
 * byte pieces never do (they are produced only by id). */
static bool tok_mergeable(uint8_t type) { return type != TOK_CONTROL && type != TOK_UNKNOWN && type != TOK_BYTE; }

int32_t tok_lookup(const hr_tokenizer *t, const char *s, size_t len) {
    if (len == 0 || len > t->max_norm_len) return -1;
    size_t i = tok_hash(s, len) & t->slot_mask;
    for (;;) {
        int32_t id = t->slots[i];
        if (id < 0) return -1;
        size_t off = t->norm_off[id];
        if (t->norm_off[id + 1] - off - 1 == len && memcmp(t->norm + off, s, len) == 0) return id;
        i = (i + 1) & t->slot_mask;
    }
}

/* Bytes of piece i in the norm and dec views (dec is computed from norm). */
static size_t norm_piece(const tok_span *p, uint8_t type, bool spaces_plain, char *dst) {
    size_t n = 0;
    for (size_t i = 0; i < p->len; i++) {
        if (spaces_plain && p->s[i] == ' ' && tok_mergeable(type)) {
            if (dst) memcpy(dst + n, TOK_SPACE_MARK, TOK_SPACE_MARK_LEN);
            n += TOK_SPACE_MARK_LEN;
        } else {
            if (dst) dst[n] = p->s[i];
            n++;
        }
    }
    return n;
}

static size_t dec_piece(const char *norm, size_t len, uint8_t type, char *dst) {
    if (type == TOK_CONTROL) return 0;
    if (type == TOK_UNKNOWN) { /* SentencePiece's surface for <unk>: " ⁇ " */
        if (dst) memcpy(dst, " \xE2\x81\x87 ", 5);
        return 5;
    }
    if (type == TOK_BYTE) {
        int b = tok_parse_byte_piece(norm, len);
        if (dst) dst[0] = (char)b;
        return 1;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (i + TOK_SPACE_MARK_LEN <= len && memcmp(norm + i, TOK_SPACE_MARK, TOK_SPACE_MARK_LEN) == 0) {
            if (dst) dst[n] = ' ';
            n++;
            i += TOK_SPACE_MARK_LEN - 1;
        } else {
            if (dst) dst[n] = norm[i];
            n++;
        }
    }
    return n;
}

static hr_status alloc_views(hr_tokenizer *t, int32_t n, const tok_span *pieces) {
    size_t raw_total = 0, norm_total = 0, n1 = (size_t)n + 1, offs;
    for (int32_t i = 0; i < n; i++) {
        size_t r, m;
        if (!hr_add_size(pieces[i].len, 1, &r) || !hr_add_size(raw_total, r, &raw_total) ||
            !hr_mul_size(pieces[i].len, TOK_SPACE_MARK_LEN, &m) || !hr_add_size(m, 1, &m) ||
            !hr_add_size(norm_total, m, &norm_total))
            return hr_err(HR_ERR_NOMEM, "vocabulary too large");
    }
    if (!hr_mul_size(n1, sizeof(size_t), &offs)) return hr_err(HR_ERR_NOMEM, "vocabulary too large");
    /* dec is never longer than norm, except <unk>'s 5-byte surface */
    size_t dec_total;
    if (!hr_add_size(norm_total, 8, &dec_total)) return hr_err(HR_ERR_NOMEM, "vocabulary too large");
    t->raw = malloc(raw_total);
    t->norm = malloc(norm_total);
    t->dec = malloc(dec_total);
    t->raw_off = malloc(offs);
    t->norm_off = malloc(offs);
    t->dec_off = malloc(offs);
    t->scores = malloc((size_t)n * sizeof(float) + 1);
    t->types = malloc((size_t)n + 1);
    if (!t->raw || !t->norm || !t->dec || !t->raw_off || !t->norm_off || !t->dec_off || !t->scores || !t->types)
        return hr_err(HR_ERR_NOMEM, "out of memory for a vocabulary of %d pieces", (int)n);
    return HR_OK;
}

static hr_status build_hash(hr_tokenizer *t) {
    size_t cap = 16;
    while (cap < (size_t)t->n_vocab * 2) cap *= 2;
    t->slots = malloc(cap * sizeof(int32_t));
    if (!t->slots) return hr_err(HR_ERR_NOMEM, "out of memory for the piece table");
    memset(t->slots, 0xff, cap * sizeof(int32_t));
    t->slot_mask = cap - 1;
    t->max_norm_len = 0;
    size_t dups = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        size_t len = t->norm_off[id + 1] - t->norm_off[id] - 1;
        if (!tok_mergeable(t->types[id]) || len == 0) continue;
        const char *s = t->norm + t->norm_off[id];
        if (len > t->max_norm_len) t->max_norm_len = len;
        if (tok_lookup(t, s, len) >= 0) { /* first id wins, deterministically */
            dups++;
            continue;
        }
        size_t i = tok_hash(s, len) & t->slot_mask;
        while (t->slots[i] >= 0) i = (i + 1) & t->slot_mask;
        t->slots[i] = id;
    }
    if (dups) hr_log(HR_LOG_WARN, "tokenizer: %zu duplicate pieces ignored (first id kept)", dups);
    return HR_OK;
}

static size_t pair_slot(uint64_t key, size_t mask) {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h ^ h >> 29) & mask;
}

bool tok_pair_possible(const hr_tokenizer *t, uint64_t key) {
    for (size_t i = pair_slot(key, t->pair_mask);; i = (i + 1) & t->pair_mask) {
        if (t->pairs[i] == key) return true;
        if (t->pairs[i] == TOK_NO_PAIR) return false;
    }
}

static void pair_insert(hr_tokenizer *t, uint64_t key) {
    size_t i = pair_slot(key, t->pair_mask);
    while (t->pairs[i] != TOK_NO_PAIR && t->pairs[i] != key) i = (i + 1) & t->pair_mask;
    t->pairs[i] = key;
}

/* Records every adjacent character pair inside a hashed piece. Pieces that
 * are not valid UTF-8 can never be assembled from (validated) text, so
 * they contribute nothing. */
static hr_status build_pairs(hr_tokenizer *t) {
    size_t bound = t->norm_off[t->n_vocab], cap = 16;
    while (cap < bound * 2) cap *= 2;
    t->pairs = malloc(cap * sizeof(uint64_t));
    if (!t->pairs) return hr_err(HR_ERR_NOMEM, "out of memory for the piece pair table");
    memset(t->pairs, 0xff, cap * sizeof(uint64_t));
    t->pair_mask = cap - 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (!tok_mergeable(t->types[id])) continue;
        const uint8_t *s = (const uint8_t *)t->norm + t->norm_off[id];
        size_t len = t->norm_off[id + 1] - t->norm_off[id] - 1, n = 0, k = 0;
        uint64_t codes[2] = {0, 0};
        const char *why;
        for (size_t i = 0; i < len; i += n, k++) {
            if (!(n = tok_utf8_seq(s + i, len - i, &why))) break;
            codes[k & 1] = tok_char_code((const char *)s + i, n);
            if (k) pair_insert(t, codes[(k - 1) & 1] << 32 | codes[k & 1]);
        }
    }
    return HR_OK;
}

/* Writes piece id's norm and dec views at t->norm + *m and t->dec + *d. */
static void build_views(hr_tokenizer *t, int32_t id, const tok_span *piece, uint8_t type, tok_view_mode mode,
                        const tok_span *given, size_t *m, size_t *d) {
    t->norm_off[id] = *m;
    t->dec_off[id] = *d;
    if (mode == TOK_VIEW_GIVEN) {
        if (given->len) memcpy(t->norm + *m, given->s, given->len);
        *m += given->len;
        if (type != TOK_CONTROL && given->len) memcpy(t->dec + *d, given->s, given->len);
        *d += type != TOK_CONTROL ? given->len : 0;
    } else {
        size_t nl = norm_piece(piece, type, mode == TOK_VIEW_SPM_PLAIN, t->norm + *m);
        *d += dec_piece(t->norm + *m, nl, type, t->dec + *d);
        *m += nl;
    }
    t->dec[(*d)++] = 0;
    t->norm[(*m)++] = 0;
}

hr_status tok_build(hr_tokenizer *t, int32_t n, const tok_span *pieces, const float *scores, const uint8_t *types,
                    tok_view_mode mode, const tok_span *given) {
    if (n <= 0) return hr_err(HR_ERR_FORMAT, "vocabulary is empty");
    hr_status st = alloc_views(t, n, pieces);
    if (st) return st;
    t->n_vocab = n;
    for (int i = 0; i < 256; i++) t->byte_id[i] = -1;
    size_t r = 0, m = 0, d = 0;
    for (int32_t id = 0; id < n; id++) {
        uint8_t type = types ? types[id] : TOK_NORMAL;
        int b = tok_parse_byte_piece(pieces[id].s, pieces[id].len);
        if (type == TOK_BYTE && b < 0)
            return hr_err(HR_ERR_FORMAT, "token %d has type BYTE but its text is not <0xNN>", (int)id);
        if (type == TOK_BYTE && t->byte_id[b] < 0) t->byte_id[b] = id;
        t->types[id] = type;
        t->scores[id] = scores ? scores[id] : 0.0f;
        t->raw_off[id] = r;
        if (pieces[id].len) memcpy(t->raw + r, pieces[id].s, pieces[id].len);
        r += pieces[id].len;
        t->raw[r++] = 0;
        build_views(t, id, &pieces[id], type, mode, given ? &given[id] : NULL, &m, &d);
    }
    t->raw_off[n] = r;
    t->norm_off[n] = m;
    t->dec_off[n] = d;
    st = build_hash(t);
    if (!st && mode != TOK_VIEW_GIVEN) st = build_pairs(t);
    return st ? st : tok_collect_specials(t);
}

void hr_tokenizer_free(hr_tokenizer *t) {
    if (!t) return;
    free(t->raw);
    free(t->raw_off);
    free(t->norm);
    free(t->norm_off);
    free(t->dec);
    free(t->dec_off);
    free(t->scores);
    free(t->types);
    free(t->slots);
    free(t->pairs);
    free(t->specials);
    tok_free_bpe(t);
    free(t);
}

int hr_tokenizer_vocab_size(const hr_tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t hr_tokenizer_bos(const hr_tokenizer *t) { return t ? t->bos : -1; }
int32_t hr_tokenizer_eos(const hr_tokenizer *t) { return t ? t->eos : -1; }
bool hr_tokenizer_add_bos_default(const hr_tokenizer *t) { return t && t->add_bos && t->bos >= 0; }

const char *hr_tokenizer_piece(const hr_tokenizer *t, int32_t id, size_t *len) {
    if (!t || id < 0 || id >= t->n_vocab) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = t->raw_off[id + 1] - t->raw_off[id] - 1;
    return t->raw + t->raw_off[id];
}

hr_encode_params hr_encode_default_params(void) {
    hr_encode_params p = {.add_bos = true, .add_eos = false, .add_space_prefix = -1, .parse_special = false};
    return p;
}

bool tok_ids_reserve(tok_ids *v, size_t extra) {
    size_t need;
    if (!hr_add_size(v->n, extra, &need)) return false;
    if (need <= v->cap) return true;
    size_t cap = v->cap ? v->cap : 256;
    while (cap < need)
        if (!hr_mul_size(cap, 2, &cap)) return false;
    size_t bytes;
    if (!hr_mul_size(cap, sizeof *v->a, &bytes)) return false;
    int32_t *a = realloc(v->a, bytes);
    if (!a) return false;
    v->a = a;
    v->cap = cap;
    return true;
}

static size_t raw_len(const hr_tokenizer *t, int32_t id) { return t->raw_off[id + 1] - t->raw_off[id] - 1; }

typedef struct {
    size_t len;
    int32_t id;
} special_key;

/* Longest first, so that "<|im_start|>" wins over a shorter special that
 * is its prefix; ties by id keep the order deterministic. */
static int longer_first(const void *a, const void *b) {
    const special_key *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* A special piece that is not whole UTF-8 characters could match inside a
 * character of (validated) text and cut it: such pieces are never matched. */
static bool matchable_special(const hr_tokenizer *t, int32_t id) {
    if ((t->types[id] != TOK_CONTROL && t->types[id] != TOK_USER) || raw_len(t, id) == 0) return false;
    const uint8_t *s = (const uint8_t *)t->raw + t->raw_off[id];
    const char *why;
    for (size_t i = 0, n = raw_len(t, id), l; i < n; i += l)
        if (!(l = tok_utf8_seq(s + i, n - i, &why))) return false;
    return true;
}

hr_status tok_collect_specials(hr_tokenizer *t) {
    free(t->specials);
    t->specials = NULL;
    t->n_specials = 0;
    memset(t->special_first, 0, sizeof t->special_first);
    size_t n = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) n += matchable_special(t, id);
    if (!n) return HR_OK;
    t->specials = malloc(n * sizeof *t->specials);
    special_key *keys = malloc(n * sizeof *keys);
    if (!t->specials || !keys) {
        free(keys);
        return hr_err(HR_ERR_NOMEM, "out of memory for %zu special tokens", n);
    }
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (!matchable_special(t, id)) continue;
        keys[t->n_specials++] = (special_key){raw_len(t, id), id};
        uint8_t c = (uint8_t)t->raw[t->raw_off[id]];
        t->special_first[c >> 3] |= (uint8_t)(1u << (c & 7));
    }
    qsort(keys, n, sizeof *keys, longer_first);
    for (size_t i = 0; i < n; i++) t->specials[i] = keys[i].id;
    free(keys);
    return HR_OK;
}
