/* BPE by merge rank (GPT-2 / Hugging Face "BPE" model).
 *
 * Encoding: optional normalisation (prefix, literal replacements), split
 * into words by the pre-tokenizer regex (PCRE2, UTF + UCP), then each word
 * starts as one symbol per byte (byte-level) or per character (char-level,
 * with <0xNN> byte fallback) and the adjacent pair with the lowest merge
 * rank is merged (leftmost on ties) until no pair has a merge. A binary
 * heap keeps that O(n log n) per word; words repeat a lot in text, so one
 * encode call caches the ids of each distinct word. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/tok_internal.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

/* ---- merge table ---- */

static size_t merge_slot(uint64_t key, size_t mask) {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h ^ h >> 31) & mask;
}

static const tok_merge *merge_find(const hr_tokenizer *t, int32_t l, int32_t r) {
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    for (size_t i = merge_slot(key, t->merge_mask);; i = (i + 1) & t->merge_mask) {
        if (t->merges[i].key == key) return &t->merges[i];
        if (t->merges[i].key == TOK_NO_PAIR) return NULL;
    }
}

/* The first occurrence of a pair keeps its (lowest) rank; false when the
 * pair was already there. */
static bool merge_insert(hr_tokenizer *t, int32_t l, int32_t r, int32_t rank, int32_t id) {
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    size_t i = merge_slot(key, t->merge_mask);
    while (t->merges[i].key != TOK_NO_PAIR) {
        if (t->merges[i].key == key) return false;
        i = (i + 1) & t->merge_mask;
    }
    t->merges[i] = (tok_merge){key, rank, id};
    return true;
}

/* Records a distinct merge in rank order for writers, and gives the piece
 * it produces the score -rank of its first merge: SentencePiece's "highest
 * score first" then picks merges in the same order (hr_tokenizer_score). */
static void merge_record(hr_tokenizer *t, int32_t l, int32_t r, int32_t rank, int32_t id, bool *scored) {
    t->merge_list[t->n_merge_list][0] = l;
    t->merge_list[t->n_merge_list++][1] = r;
    if (!scored[id]) {
        scored[id] = true;
        t->scores[id] = -(float)rank;
    }
}

/* Text a merge side is matched by: byte-level sides are unmapped. */
static hr_status side_id(const hr_tokenizer *t, bool byte_level, tok_span side, char *buf, size_t i, const char *which,
                         int32_t *id) {
    long n = byte_level ? tok_byte_unmap(side.s, side.len, buf) : (long)side.len;
    *id = n < 0 ? -1 : tok_lookup(t, byte_level ? buf : side.s, (size_t)n);
    if (*id < 0)
        return hr_err(HR_ERR_FORMAT, "merge %zu ('%.*s' + ...) references the unknown token '%.*s' as its %s side", i,
                      (int)(side.len > 64 ? 64 : side.len), side.s, (int)(side.len > 64 ? 64 : side.len), side.s,
                      which);
    return HR_OK;
}

static hr_status build_merges(hr_tokenizer *t, const tok_bpe_spec *spec) {
    if (spec->n_merges > INT32_MAX) return hr_err(HR_ERR_FORMAT, "%zu merges is too many", spec->n_merges);
    size_t cap = 16, bytes;
    while (cap < spec->n_merges * 2) cap *= 2;
    if (!hr_mul_size(cap, sizeof(tok_merge), &bytes) || !(t->merges = malloc(bytes)))
        return hr_err(HR_ERR_NOMEM, "out of memory for %zu merges", spec->n_merges);
    for (size_t i = 0; i < cap; i++) t->merges[i].key = TOK_NO_PAIR;
    t->merge_mask = cap - 1;
    size_t max_side = 0;
    for (size_t i = 0; i < spec->n_merges; i++) {
        if (spec->merge_l[i].len > max_side) max_side = spec->merge_l[i].len;
        if (spec->merge_r[i].len > max_side) max_side = spec->merge_r[i].len;
    }
    char *buf = malloc(2 * max_side + 2);                      /* both sides, then their concatenation */
    bool *scored = calloc((size_t)t->n_vocab, sizeof *scored); // (n_vocab)
    t->merge_list = malloc((spec->n_merges ? spec->n_merges : 1) * sizeof *t->merge_list); // (n_merges, 2)
    if (!buf || !scored || !t->merge_list) {
        free(buf);
        free(scored);
        return hr_err(HR_ERR_NOMEM, "out of memory for merges");
    }
    hr_status st = HR_OK;
    for (size_t i = 0; i < spec->n_merges && !st; i++) {
        int32_t l, r;
        if ((st = side_id(t, spec->byte_level, spec->merge_l[i], buf, i, "left", &l)) ||
            (st = side_id(t, spec->byte_level, spec->merge_r[i], buf, i, "right", &r)))
            break;
        size_t ll = t->norm_off[l + 1] - t->norm_off[l] - 1, rl = t->norm_off[r + 1] - t->norm_off[r] - 1;
        memcpy(buf, t->norm + t->norm_off[l], ll);
        memcpy(buf + ll, t->norm + t->norm_off[r], rl);
        int32_t id = tok_lookup(t, buf, ll + rl);
        if (id < 0)
            st = hr_err(HR_ERR_FORMAT, "merge %zu ('%.*s' + '%.*s') produces a token that is not in the vocabulary", i,
                        (int)(spec->merge_l[i].len > 64 ? 64 : spec->merge_l[i].len), spec->merge_l[i].s,
                        (int)(spec->merge_r[i].len > 64 ? 64 : spec->merge_r[i].len), spec->merge_r[i].s);
        else if (merge_insert(t, l, r, (int32_t)i, id)) merge_record(t, l, r, (int32_t)i, id, scored);
    }
    /* pieces no merge produces rank below every merged one */
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (!scored[id] && t->types[id] != TOK_CONTROL && t->types[id] != TOK_BYTE && t->types[id] != TOK_UNKNOWN)
            t->scores[id] = -(float)spec->n_merges - 1.0f;
    free(buf);
    free(scored);
    return st;
}

/* Byte-level views: each piece's raw bytes; added tokens (CONTROL, USER)
 * are stored as plain text, and so is any piece outside the alphabet. */
static hr_status byte_level_views(const tok_bpe_spec *spec, char **blob, tok_span *given) {
    size_t total = 1;
    for (int32_t i = 0; i < spec->n; i++)
        if (!hr_add_size(total, spec->pieces[i].len, &total)) return hr_err(HR_ERR_NOMEM, "vocabulary too large");
    if (!(*blob = malloc(total))) return hr_err(HR_ERR_NOMEM, "out of memory for the vocabulary");
    size_t o = 0, plain = 0;
    for (int32_t i = 0; i < spec->n; i++) {
        const tok_span *p = &spec->pieces[i];
        long n =
            spec->types[i] == TOK_CONTROL || spec->types[i] == TOK_USER ? -1 : tok_byte_unmap(p->s, p->len, *blob + o);
        if (n < 0) {
            plain += spec->types[i] != TOK_CONTROL && spec->types[i] != TOK_USER;
            if (p->len) memcpy(*blob + o, p->s, p->len);
            n = (long)p->len;
        }
        given[i] = (tok_span){*blob + o, (size_t)n};
        o += (size_t)n;
    }
    if (plain) hr_log(HR_LOG_DEBUG, "tokenizer: %zu pieces are not byte-level text, kept as written", plain);
    return HR_OK;
}

hr_status tok_bpe_build(hr_tokenizer *t, const tok_bpe_spec *spec) {
    t->model = &tok_model_bpe;
    t->byte_level = spec->byte_level;
    char *blob = NULL;
    tok_span *given = NULL;
    hr_status st = HR_OK;
    if (spec->byte_level) {
        if (!(given = malloc((size_t)spec->n * sizeof *given)))
            return hr_err(HR_ERR_NOMEM, "out of memory for the vocabulary");
        st = byte_level_views(spec, &blob, given);
    }
    if (!st)
        st = tok_build(t, spec->n, spec->pieces, NULL, spec->types, spec->byte_level ? TOK_VIEW_GIVEN : TOK_VIEW_SPM,
                       given);
    free(blob);
    free(given);
    if (st) return st;
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        t->byte_tok[b] = spec->byte_level ? tok_lookup(t, &c, 1) : -1;
    }
    return build_merges(t, spec);
}

void tok_free_bpe(hr_tokenizer *t) {
    free(t->merges);
    free(t->merge_list);
    free(t->pre_pattern);
    if (t->pre_re) pcre2_code_free(t->pre_re);
    free(t->prefix);
    for (int i = 0; i < t->n_repl; i++) {
        free(t->repl[i].from);
        free(t->repl[i].to);
    }
}

/* ---- encoding ---- */

typedef struct {
    int32_t prev, next, id; /* id -1 = merged away */
} bpe_sym;

typedef struct {
    int32_t rank, left, right, lid, rid, id;
} bpe_pair;

typedef struct {
    uint64_t h;
    size_t word, ids; /* offsets into the arenas */
    uint32_t wlen, n_ids;
} cache_ent;

#define CACHE_MAX_ENTRIES (1u << 20)
#define CACHE_MAX_BYTES ((size_t)64 << 20)

typedef struct {
    pcre2_match_data *md;
    bpe_sym *sym;
    size_t sym_cap;
    bpe_pair *heap;
    size_t heap_n, heap_cap;
    char *norm; /* normalised text of the current fragment */
    /* word cache: open addressing over cache_ent, arenas for the keys and ids */
    cache_ent *ents;
    size_t ent_mask, n_ents;
    char *words;
    size_t words_n, words_cap;
    tok_ids ids;
} bpe_scratch;

static void scratch_free(void *p) {
    bpe_scratch *s = p;
    if (!s) return;
    if (s->md) pcre2_match_data_free(s->md);
    free(s->sym);
    free(s->heap);
    free(s->norm);
    free(s->ents);
    free(s->words);
    free(s->ids.a);
    free(s);
}

static bool pair_before(const bpe_pair *x, const bpe_pair *y) {
    return x->rank < y->rank || (x->rank == y->rank && x->left < y->left);
}

static bool heap_push(bpe_scratch *s, bpe_pair p) {
    if (s->heap_n == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 256;
        bpe_pair *a = realloc(s->heap, cap * sizeof *a);
        if (!a) return false;
        s->heap = a;
        s->heap_cap = cap;
    }
    size_t i = s->heap_n++;
    while (i > 0 && pair_before(&p, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = p;
    return true;
}

static bpe_pair heap_pop(bpe_scratch *s) {
    bpe_pair top = s->heap[0], last = s->heap[--s->heap_n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->heap_n) break;
        if (c + 1 < s->heap_n && pair_before(&s->heap[c + 1], &s->heap[c])) c++;
        if (!pair_before(&s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->heap_n) s->heap[i] = last;
    return top;
}

static bool try_pair(const hr_tokenizer *t, bpe_scratch *s, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return true;
    const tok_merge *m = merge_find(t, s->sym[l].id, s->sym[r].id);
    if (!m) return true;
    return heap_push(s, (bpe_pair){m->rank, l, r, s->sym[l].id, s->sym[r].id, m->id});
}

static hr_status merge_symbols(const hr_tokenizer *t, bpe_scratch *s, int32_t n) {
    s->heap_n = 0;
    for (int32_t i = 0; i + 1 < n; i++)
        if (!try_pair(t, s, i, i + 1)) return hr_err(HR_ERR_NOMEM, "out of memory while encoding");
    while (s->heap_n) {
        bpe_pair p = heap_pop(s);
        bpe_sym *l = &s->sym[p.left], *r = &s->sym[p.right];
        /* stale: either side merged since the pair was pushed */
        if (l->id != p.lid || r->id != p.rid || l->next != p.right) continue;
        l->id = p.id;
        r->id = -1;
        l->next = r->next;
        if (r->next >= 0) s->sym[r->next].prev = p.left;
        if (!try_pair(t, s, l->prev, p.left) || !try_pair(t, s, p.left, l->next))
            return hr_err(HR_ERR_NOMEM, "out of memory while encoding");
    }
    return HR_OK;
}

static bool add_sym(bpe_scratch *s, int32_t *n, int32_t id) {
    if ((size_t)*n == s->sym_cap) {
        size_t cap = s->sym_cap ? s->sym_cap * 2 : 64;
        bpe_sym *a = realloc(s->sym, cap * sizeof *a);
        if (!a) return false;
        s->sym = a;
        s->sym_cap = cap;
    }
    s->sym[*n] = (bpe_sym){*n - 1, *n + 1, id};
    (*n)++;
    return true;
}

/* One symbol per byte, each the piece of that byte. */
static hr_status byte_symbols(const hr_tokenizer *t, bpe_scratch *s, const char *w, size_t len, int32_t *n) {
    for (size_t i = 0; i < len; i++) {
        int32_t id = t->byte_tok[(uint8_t)w[i]];
        if (id < 0) id = t->unk;
        if (id < 0)
            return hr_err(HR_ERR_UNSUPPORTED, "byte 0x%02X has no piece in this byte-level vocabulary", (uint8_t)w[i]);
        if (!add_sym(s, n, id)) return hr_err(HR_ERR_NOMEM, "out of memory while encoding");
    }
    return HR_OK;
}

/* One symbol per character; characters without a piece become their
 * <0xNN> byte pieces (byte_fallback) or <unk>. */
static hr_status char_symbols(const hr_tokenizer *t, bpe_scratch *s, const char *w, size_t len, int32_t *n) {
    for (size_t i = 0; i < len;) {
        size_t cl = tok_char_len((uint8_t)w[i]);
        if (cl > len - i) cl = len - i; /* a cut character (checked at load: never in valid text) */
        int32_t id = tok_lookup(t, w + i, cl);
        bool bytes = id < 0 && t->byte_fallback;
        for (size_t k = 0; bytes && k < cl; k++) bytes = t->byte_id[(uint8_t)w[i + k]] >= 0;
        if (id < 0 && !bytes && t->unk < 0)
            return hr_err(HR_ERR_UNSUPPORTED, "character '%.*s' is not in the vocabulary, which has no <unk>", (int)cl,
                          w + i);
        for (size_t k = 0; k < (bytes ? cl : 1); k++)
            if (!add_sym(s, n, id >= 0 ? id : bytes ? t->byte_id[(uint8_t)w[i + k]] : t->unk))
                return hr_err(HR_ERR_NOMEM, "out of memory while encoding");
        i += cl;
    }
    return HR_OK;
}

static hr_status bpe_word(const hr_tokenizer *t, bpe_scratch *s, const char *w, size_t len, tok_ids *out) {
    int32_t id = t->ignore_merges ? tok_lookup(t, w, len) : -1;
    if (id >= 0) return tok_ids_push(out, id) ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory while encoding");
    if (len >= (size_t)INT32_MAX / 2) return hr_err(HR_ERR_RANGE, "word of %zu bytes is too long to encode", len);
    int32_t n = 0;
    hr_status st = t->byte_level ? byte_symbols(t, s, w, len, &n) : char_symbols(t, s, w, len, &n);
    if (st) return st;
    if (!n) return HR_OK;
    s->sym[n - 1].next = -1;
    if ((st = merge_symbols(t, s, n))) return st;
    for (int32_t i = 0; i >= 0; i = s->sym[i].next)
        if (!tok_ids_push(out, s->sym[i].id)) return hr_err(HR_ERR_NOMEM, "out of memory while encoding");
    return HR_OK;
}

/* ---- word cache ---- */

static uint64_t word_hash(const char *w, size_t len) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)w[i]) * 1099511628211ull;
    return h | 1; /* 0 marks an empty slot */
}

static cache_ent *cache_slot(bpe_scratch *s, uint64_t h, const char *w, size_t len) {
    for (size_t i = (size_t)h & s->ent_mask;; i = (i + 1) & s->ent_mask) {
        cache_ent *e = &s->ents[i];
        if (!e->h || (e->h == h && e->wlen == len && memcmp(s->words + e->word, w, len) == 0)) return e;
    }
}

static bool cache_grow(bpe_scratch *s) {
    size_t cap = s->ents ? (s->ent_mask + 1) * 2 : 4096;
    cache_ent *old = s->ents;
    size_t old_cap = s->ents ? s->ent_mask + 1 : 0;
    if (!(s->ents = calloc(cap, sizeof *s->ents))) {
        s->ents = old;
        return false;
    }
    s->ent_mask = cap - 1;
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].h) continue;
        size_t j = (size_t)old[i].h & s->ent_mask;
        while (s->ents[j].h) j = (j + 1) & s->ent_mask;
        s->ents[j] = old[i];
    }
    free(old);
    return true;
}

/* Remembers the ids just appended to out for word w (best effort: a full
 * or failed cache only costs speed). */
static void cache_put(bpe_scratch *s, uint64_t h, const char *w, size_t len, const int32_t *ids, size_t n) {
    if (s->n_ents >= CACHE_MAX_ENTRIES || s->words_n + len > CACHE_MAX_BYTES || len > UINT32_MAX || n > UINT32_MAX)
        return;
    if ((s->n_ents + 1) * 2 > (s->ents ? s->ent_mask + 1 : 0) && !cache_grow(s)) return;
    if (s->words_n + len > s->words_cap) {
        size_t cap = s->words_cap ? s->words_cap * 2 : 1 << 16;
        while (cap < s->words_n + len) cap *= 2;
        char *a = realloc(s->words, cap);
        if (!a) return;
        s->words = a;
        s->words_cap = cap;
    }
    size_t ids_at = s->ids.n;
    if (!tok_ids_reserve(&s->ids, n)) return;
    memcpy(s->ids.a + ids_at, ids, n * sizeof *ids);
    s->ids.n += n;
    memcpy(s->words + s->words_n, w, len);
    cache_ent *e = cache_slot(s, h, w, len);
    *e = (cache_ent){h, s->words_n, ids_at, (uint32_t)len, (uint32_t)n};
    s->words_n += len;
    s->n_ents++;
}

static hr_status encode_word(const hr_tokenizer *t, bpe_scratch *s, const char *w, size_t len, tok_ids *out) {
    if (!len) return HR_OK;
    if (!t->byte_level) return bpe_word(t, s, w, len, out); /* char-level runs on whole texts: nothing repeats */
    uint64_t h = word_hash(w, len);
    if (s->ents) {
        cache_ent *e = cache_slot(s, h, w, len);
        if (e->h) {
            if (!tok_ids_reserve(out, e->n_ids)) return hr_err(HR_ERR_NOMEM, "out of memory while encoding");
            memcpy(out->a + out->n, s->ids.a + e->ids, e->n_ids * sizeof *out->a);
            out->n += e->n_ids;
            return HR_OK;
        }
    }
    size_t before = out->n;
    hr_status st = bpe_word(t, s, w, len, out);
    if (!st) cache_put(s, h, w, len, out->a + before, out->n - before);
    return st;
}

/* ---- normalisation and pre-tokenization ---- */

/* Writes text with every occurrence of r->from replaced into dst. */
static size_t replace_all(const tok_replace *r, const char *src, size_t n, char *dst) {
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        if (i + r->from_len <= n && memcmp(src + i, r->from, r->from_len) == 0) {
            memcpy(dst + m, r->to, r->to_len);
            m += r->to_len;
            i += r->from_len;
        } else {
            dst[m++] = src[i++];
        }
    }
    return m;
}

/* Prefix rule and literal replacements; *res points at text itself when
 * nothing changes. */
static hr_status normalise(const hr_tokenizer *t, bpe_scratch *s, const char *text, size_t len, bool prefix,
                           const char **res, size_t *res_len) {
    bool add = prefix && t->prefix_len && !(t->prefix_if_no_space && text[0] == ' ');
    *res = text;
    *res_len = len;
    if (!add && !t->n_repl) return HR_OK;
    size_t grow = 1; /* no replacement makes the text more than grow times longer */
    for (int i = 0; i < t->n_repl; i++) {
        size_t g = (t->repl[i].to_len + t->repl[i].from_len - 1) / t->repl[i].from_len;
        if (g > grow) grow = g;
    }
    size_t cap = len + t->prefix_len;
    for (int i = 0; i < t->n_repl; i++)
        if (!hr_mul_size(cap, grow, &cap)) return hr_err(HR_ERR_NOMEM, "text too long to normalise");
    free(s->norm);
    if (!(s->norm = malloc(cap + 1))) return hr_err(HR_ERR_NOMEM, "out of memory normalising %zu bytes", len);
    size_t n = 0;
    if (add) memcpy(s->norm, t->prefix, t->prefix_len), n = t->prefix_len;
    memcpy(s->norm + n, text, len);
    n += len;
    for (int r = 0; r < t->n_repl; r++) {
        char *dst = malloc(cap + 1);
        if (!dst) return hr_err(HR_ERR_NOMEM, "out of memory normalising %zu bytes", len);
        n = replace_all(&t->repl[r], s->norm, n, dst);
        free(s->norm);
        s->norm = dst;
    }
    *res = s->norm;
    *res_len = n;
    return HR_OK;
}

static hr_status split_words(const hr_tokenizer *t, bpe_scratch *s, const char *text, size_t len, tok_ids *out) {
    if (!t->pre_re) return encode_word(t, s, text, len, out);
    if (!s->md && !(s->md = pcre2_match_data_create_from_pattern(t->pre_re, NULL)))
        return hr_err(HR_ERR_NOMEM, "out of memory for regex match data");
    size_t off = 0;
    hr_status st = HR_OK;
    while (off < len && !st) {
        int rc = pcre2_match(t->pre_re, (PCRE2_SPTR)text, len, off, PCRE2_NO_UTF_CHECK, s->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return hr_err(HR_ERR_UNSUPPORTED, "pre-tokenizer regex failed at byte %zu: %s", off, (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
        size_t a = ov[0], b = ov[1];
        if (b == a) {            /* an empty match splits nothing: step over one character */
            if (a >= len) break; /* empty at the end (e.g. \z): the rest is one word, below */
            b = a + tok_char_len((uint8_t)text[a]);
            if (b > len) b = len;
            if ((st = encode_word(t, s, text + off, b - off, out))) return st;
            off = b;
            continue;
        }
        /* text between matches is a word of its own (HF "Isolated" split) */
        if (a > off) st = encode_word(t, s, text + off, a - off, out);
        if (!st) st = encode_word(t, s, text + a, b - a, out);
        off = b;
    }
    if (!st && off < len) st = encode_word(t, s, text + off, len - off, out);
    return st;
}

static hr_status bpe_encode(const hr_tokenizer *t, const char *text, size_t len, bool prefix, tok_ids *out,
                            void **scratch) {
    if (!*scratch && !(*scratch = calloc(1, sizeof(bpe_scratch))))
        return hr_err(HR_ERR_NOMEM, "out of memory while encoding");
    bpe_scratch *s = *scratch;
    const char *norm;
    size_t norm_len;
    hr_status st = normalise(t, s, text, len, prefix, &norm, &norm_len);
    return st ? st : split_words(t, s, norm, norm_len, out);
}

const tok_model tok_model_bpe = {"bpe", bpe_encode, scratch_free};
