/* Private state of the SentencePiece-BPE tokenizer (src/tokenizer only). */
#ifndef HR_TOK_INTERNAL_H
#define HR_TOK_INTERNAL_H

#include "headroom/tokenizer.h"
#include "internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* GGUF / llama.cpp token types. */
enum {
    TOK_UNDEFINED = 0,
    TOK_NORMAL = 1,
    TOK_UNKNOWN = 2,
    TOK_CONTROL = 3,
    TOK_USER = 4,
    TOK_UNUSED = 5,
    TOK_BYTE = 6,
    TOK_TYPE_COUNT
};

/* U+2581 LOWER ONE EIGHTH BLOCK: SentencePiece's visible space. */
#define TOK_SPACE_MARK "\xE2\x96\x81"
#define TOK_SPACE_MARK_LEN 3

/* A piece as the loaders see it before it is copied (borrowed bytes). */
typedef struct {
    const char *s;
    size_t len;
} tok_span;

struct hr_tokenizer {
    int32_t n_vocab;
    /* Three views of every piece, each a blob of NUL-terminated strings with
     * n_vocab + 1 offsets: raw = as stored in the file (hr_tokenizer_piece);
     * norm = spaces written as U+2581, what encoding matches against;
     * dec = the bytes decoding emits (U+2581 -> space, <0xNN> -> byte,
     * control -> nothing). */
    char *raw;
    size_t *raw_off;  /* (n_vocab + 1) */
    char *norm;
    size_t *norm_off; /* (n_vocab + 1) */
    char *dec;
    size_t *dec_off;  /* (n_vocab + 1) */
    float *scores;    /* (n_vocab) */
    uint8_t *types;   /* (n_vocab) TOK_* */
    int32_t byte_id[256]; /* id of piece <0xNN>, -1 when absent */
    /* Open-addressing hash of the pieces merging may produce (normal, user,
     * unused, undefined types): norm text -> id. */
    int32_t *slots;   /* (slot_mask + 1), -1 = empty */
    size_t slot_mask;
    size_t max_norm_len; /* longest hashed piece, in bytes */
    /* Set of adjacent character pairs (tok_char_code of each, packed hi|lo)
     * occurring inside hashed pieces. A boundary between two characters
     * that is not in the set can never lie inside a merged symbol, so the
     * text is merged segment by segment there. */
    uint64_t *pairs;  /* (pair_mask + 1), TOK_NO_PAIR = empty */
    size_t pair_mask;
    int32_t bos, eos, unk;
    bool add_space_prefix;
    bool add_bos;
    bool add_eos;
};

#define TOK_NO_PAIR UINT64_MAX /* 0xFF never occurs in UTF-8 */

/* Bytes of the valid UTF-8 character at s, as one number (unique per
 * character because UTF-8 is self-delimiting). */
static inline uint32_t tok_char_code(const char *s, size_t clen) {
    uint32_t c = 0;
    for (size_t i = 0; i < clen; i++) c = c << 8 | (uint8_t)s[i];
    return c;
}

static inline size_t tok_char_len(uint8_t lead) {
    return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

bool tok_pair_possible(const hr_tokenizer *t, uint64_t key);

/* Length of the valid UTF-8 sequence at s[0..n) (n >= 1), or 0 with *why
 * set to the reason it is invalid. */
size_t tok_utf8_seq(const uint8_t *s, size_t n, const char **why);

/* Copies n pieces into t (which must be zeroed). types may be NULL (all
 * normal); scores may be NULL (all 0). spaces_plain: the vocabulary writes
 * spaces as ' ' (llama2.c export) rather than U+2581. */
hr_status tok_build(hr_tokenizer *t, int32_t n, const tok_span *pieces, const float *scores,
                    const uint8_t *types, bool spaces_plain);

/* Id of the hashed piece whose norm text is s[0..len), or -1. */
int32_t tok_lookup(const hr_tokenizer *t, const char *s, size_t len);

/* Parses "<0xNN>" (hex digits of either case); -1 if it is not one. */
int tok_parse_byte_piece(const char *s, size_t len);

hr_status tok_load_bin(const uint8_t *data, size_t size, hr_tokenizer **out);

#endif
