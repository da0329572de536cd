/* SentencePiece-BPE encoding: UTF-8 validation, space normalisation, then
 * greedy best-score merging driven by a binary heap over a doubly linked
 * list of symbols, so the whole text costs O(n log n). */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

size_t tok_utf8_seq(const uint8_t *s, size_t n, const char **why) {
    uint8_t c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0xC0) {
        *why = "unexpected continuation byte";
        return 0;
    }
    if (c < 0xC2) {
        *why = "overlong 2-byte sequence";
        return 0;
    }
    if (c < 0xE0) len = 2;
    else if (c < 0xF0) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;      /* below: overlong */
        else if (c == 0xED) hi = 0x9F; /* above: UTF-16 surrogates */
    } else if (c < 0xF5) {
        len = 4;
        if (c == 0xF0) lo = 0x90;      /* below: overlong */
        else if (c == 0xF4) hi = 0x8F; /* above: beyond U+10FFFF */
    } else {
        *why = "byte 0xF5..0xFF never occurs in UTF-8";
        return 0;
    }
    if (n < len) {
        *why = "sequence truncated by the end of the text";
        return 0;
    }
    if (s[1] < lo || s[1] > hi) {
        *why = (s[1] & 0xC0) != 0x80 ? "sequence truncated (missing continuation byte)"
               : c == 0xED           ? "UTF-16 surrogate code point"
               : c == 0xF4           ? "code point beyond U+10FFFF"
                                     : "overlong encoding";
        return 0;
    }
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) {
            *why = "sequence truncated (missing continuation byte)";
            return 0;
        }
    return len;
}

typedef struct {
    int32_t prev, next;  /* live neighbours, -1 at the ends */
    uint32_t start, len; /* bytes in the normalised text; len 0 = merged away */
    int32_t id;          /* vocabulary id of the symbol's text, -1 if none */
} tok_sym;

typedef struct {
    float score;
    int32_t left, right; /* symbol indices at the time of pushing */
    uint32_t len;        /* combined length: detects stale entries */
    int32_t id;          /* piece the merge produces */
} tok_pair;

typedef struct {
    tok_pair *a;
    size_t n, cap;
} tok_heap;

/* Higher score first; on ties the leftmost pair (symbol indices follow text
 * order), as SentencePiece does. */
static bool pair_before(const tok_pair *x, const tok_pair *y) {
    return x->score > y->score || (x->score == y->score && x->left < y->left);
}

static bool heap_push(tok_heap *h, tok_pair p) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 1024;
        tok_pair *a = realloc(h->a, cap * sizeof *a);
        if (!a) return false;
        h->a = a;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!pair_before(&p, &h->a[parent])) break;
        h->a[i] = h->a[parent];
        i = parent;
    }
    h->a[i] = p;
    return true;
}

static tok_pair heap_pop(tok_heap *h) {
    tok_pair top = h->a[0], last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && pair_before(&h->a[c + 1], &h->a[c])) c++;
        if (!pair_before(&h->a[c], &last)) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n) h->a[i] = last;
    return top;
}

typedef struct {
    const hr_tokenizer *t;
    const char *text; /* normalised */
    tok_sym *sym;
    tok_heap heap;
} tok_state;

static bool try_pair(tok_state *s, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return true;
    const tok_sym *l = &s->sym[left], *r = &s->sym[right];
    uint32_t len = l->len + r->len;
    int32_t id = tok_lookup(s->t, s->text + l->start, len);
    if (id < 0) return true;
    tok_pair p = {s->t->scores[id], left, right, len, id};
    return heap_push(&s->heap, p);
}

/* Pops merges until the heap is empty. */
static bool drain(tok_state *s) {
    while (s->heap.n) {
        tok_pair p = heap_pop(&s->heap);
        tok_sym *l = &s->sym[p.left], *r = &s->sym[p.right];
        /* lengths only grow, so a changed sum means either side moved on */
        if (l->len == 0 || r->len == 0 || l->len + r->len != p.len) continue;
        l->len += r->len;
        l->id = p.id;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) s->sym[r->next].prev = p.left;
        if (!try_pair(s, l->prev, p.left) || !try_pair(s, p.left, l->next)) return false;
    }
    return true;
}

/* Could a merged symbol ever contain both symbol i and i + 1 (still single
 * characters)? Only if some piece contains that character pair. */
static bool crossable(const tok_state *s, int32_t i) {
    const tok_sym *a = &s->sym[i], *b = &s->sym[i + 1];
    uint64_t key =
        (uint64_t)tok_char_code(s->text + a->start, a->len) << 32 | tok_char_code(s->text + b->start, b->len);
    return tok_pair_possible(s->t, key);
}

/* Greedy BPE over the whole text, run segment by segment between
 * boundaries that no piece can span: merges on the two sides of such a
 * boundary never interact, so the result equals one global run, while the
 * heap stays small and cache-resident. */
static hr_status merge_all(tok_state *s, int32_t n_sym) {
    for (int32_t i = 0; i < n_sym; i++) {
        bool ok = i + 1 < n_sym && crossable(s, i) ? try_pair(s, i, i + 1) : drain(s);
        if (!ok) return hr_err(HR_ERR_NOMEM, "out of memory while encoding");
    }
    return HR_OK;
}

/* Appends character c[0..clen) to the normalised text as symbol n. */
static void add_symbol(const hr_tokenizer *t, const char *c, size_t clen, char *out, uint32_t *o, tok_sym *sym,
                       int32_t n) {
    sym[n].start = *o;
    if (clen == 1 && *c == ' ') {
        memcpy(out + *o, TOK_SPACE_MARK, TOK_SPACE_MARK_LEN);
        *o += TOK_SPACE_MARK_LEN;
    } else {
        memcpy(out + *o, c, clen);
        *o += (uint32_t)clen;
    }
    sym[n].len = *o - sym[n].start;
    sym[n].prev = n - 1;
    sym[n].next = n + 1;
    sym[n].id = tok_lookup(t, out + sym[n].start, sym[n].len);
}

/* Writes the normalised text (leading space if asked, ' ' -> U+2581) and
 * one symbol per UTF-8 character. Input is already validated. */
static int32_t split_symbols(const hr_tokenizer *t, const char *in, size_t len, bool prefix, char *out, tok_sym *sym) {
    uint32_t o = 0;
    int32_t n = 0;
    if (prefix) add_symbol(t, " ", 1, out, &o, sym, n++);
    for (size_t i = 0; i < len;) {
        size_t clen = tok_char_len((uint8_t)in[i]);
        add_symbol(t, in + i, clen, out, &o, sym, n++);
        i += clen;
    }
    if (n) sym[n - 1].next = -1;
    return n;
}

/* Appends the ids of one final symbol: its piece, else one <0xNN> per byte,
 * else <unk> for the whole character (SentencePiece without byte pieces). */
static hr_status emit_symbol(const hr_tokenizer *t, const char *text, const tok_sym *s, int32_t *ids, size_t *n) {
    if (s->id >= 0) {
        ids[(*n)++] = s->id;
        return HR_OK;
    }
    bool all_bytes = true;
    for (uint32_t i = 0; i < s->len; i++) all_bytes &= t->byte_id[(uint8_t)text[s->start + i]] >= 0;
    if (all_bytes) {
        for (uint32_t i = 0; i < s->len; i++) ids[(*n)++] = t->byte_id[(uint8_t)text[s->start + i]];
        return HR_OK;
    }
    if (t->unk < 0)
        return hr_err(HR_ERR_UNSUPPORTED,
                      "character '%.*s' is not in the vocabulary, which has neither byte pieces nor <unk>", (int)s->len,
                      text + s->start);
    ids[(*n)++] = t->unk;
    return HR_OK;
}

hr_status tok_validate_utf8(const char *text, size_t len) {
    const uint8_t *s = (const uint8_t *)text;
    for (size_t i = 0; i < len;) {
        const char *why = "";
        size_t l = tok_utf8_seq(s + i, len - i, &why);
        if (!l) return hr_err(HR_ERR_FORMAT, "invalid UTF-8 at byte offset %zu (0x%02X): %s", i, s[i], why);
        i += l;
    }
    return HR_OK;
}

/* Largest text whose normalised form (3 bytes per space, plus the prefix)
 * still fits the 32-bit symbol offsets. */
#define TOK_MAX_TEXT (((size_t)INT32_MAX - TOK_SPACE_MARK_LEN) / TOK_SPACE_MARK_LEN)

static hr_status spm_encode(const hr_tokenizer *t, const char *text, size_t len, bool prefix, tok_ids *out,
                            void **scratch) {
    (void)scratch;
    if (len > TOK_MAX_TEXT)
        return hr_err(HR_ERR_RANGE, "text of %zu bytes is too long to encode (at most %zu)", len, TOK_MAX_TEXT);
    size_t norm_cap, sym_bytes; /* len fits TOK_MAX_TEXT, so only 32-bit hosts can overflow */
    bool ok = hr_mul_size(len + 1, TOK_SPACE_MARK_LEN, &norm_cap) &&
              hr_mul_size(len + 1, sizeof(tok_sym), &sym_bytes) && tok_ids_reserve(out, norm_cap);
    char *norm = ok ? malloc(norm_cap) : NULL;
    tok_state s = {.t = t, .text = norm, .sym = ok ? malloc(sym_bytes) : NULL};
    hr_status st = HR_OK;
    if (!norm || !s.sym) {
        st = hr_err(HR_ERR_NOMEM, "out of memory encoding %zu bytes", len);
        goto done;
    }
    int32_t n_sym = split_symbols(t, text, len, prefix, norm, s.sym);
    if ((st = merge_all(&s, n_sym))) goto done;
    /* each normalised byte yields at most one id: out has room */
    for (int32_t i = n_sym ? 0 : -1; i >= 0; i = s.sym[i].next)
        if ((st = emit_symbol(t, norm, &s.sym[i], out->a, &out->n))) goto done;
done:
    free(norm);
    free(s.sym);
    free(s.heap.a);
    return st;
}

const tok_model tok_model_spm = {"spm", spm_encode, NULL};
