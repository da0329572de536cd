/* Private state of the tokenizers (src/tokenizer only).
 *
 * One hr_tokenizer holds the vocabulary in a form every tokenizer model
 * shares (piece views, piece hash, token types, special ids) plus the state
 * of its model. Models are registered in models.c as a tok_model (encode
 * entry point + scratch release); adding a model is one file implementing
 * tok_model and one row in that table. */
#ifndef HR_TOK_INTERNAL_H
#define HR_TOK_INTERNAL_H

#include "headroom/tokenizer.h"
#include "core/internal.h"

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

/* Growable id list that encoders append to. */
typedef struct {
    int32_t *a;
    size_t n, cap;
} tok_ids;

bool tok_ids_reserve(tok_ids *v, size_t extra);
static inline bool tok_ids_push(tok_ids *v, int32_t id) {
    if (v->n == v->cap && !tok_ids_reserve(v, 1)) return false;
    v->a[v->n++] = id;
    return true;
}

/* A registered tokenizer model. encode appends the ids of text[0..len)
 * (valid UTF-8, no special tokens inside) to out; prefix asks for the
 * leading-space rule. *scratch starts NULL and persists across the
 * fragments of one hr_tokenizer_encode call (caches); scratch_free
 * releases it. */
typedef struct tok_model {
    const char *name;
    hr_status (*encode)(const hr_tokenizer *t, const char *text, size_t len, bool prefix, tok_ids *out, void **scratch);
    void (*scratch_free)(void *scratch);
} tok_model;

extern const tok_model tok_model_spm; /* SentencePiece: best score first */
extern const tok_model tok_model_bpe; /* merges by rank (byte-level or char-level) */

/* Merge (left id, right id) -> (rank, result id), open addressing. */
typedef struct {
    uint64_t key; /* left << 32 | right; TOK_NO_PAIR = empty */
    int32_t rank;
    int32_t id;
} tok_merge;

/* Text rewrite applied before a char-level BPE (tokenizer.json
 * normalizer "Replace" with a literal pattern). */
typedef struct {
    char *from, *to;
    size_t from_len, to_len;
} tok_replace;

#define TOK_MAX_REPLACE 4

struct hr_tokenizer {
    const tok_model *model;
    const char *kind; /* human-readable, e.g. "bpe (byte-level, qwen2)" */
    int32_t n_vocab;
    /* Three views of every piece, each a blob of NUL-terminated strings with
     * n_vocab + 1 offsets: raw = as stored in the file (hr_tokenizer_piece);
     * norm = what encoding matches against (SentencePiece: spaces written
     * as U+2581; byte-level BPE: the raw bytes the piece stands for);
     * dec = the bytes decoding emits (U+2581 -> space, <0xNN> -> byte,
     * control -> nothing). */
    char *raw;
    size_t *raw_off; /* (n_vocab + 1) */
    char *norm;
    size_t *norm_off; /* (n_vocab + 1) */
    char *dec;
    size_t *dec_off;      /* (n_vocab + 1) */
    float *scores;        /* (n_vocab) */
    uint8_t *types;       /* (n_vocab) TOK_* */
    int32_t byte_id[256]; /* id of piece <0xNN>, -1 when absent */
    /* Open-addressing hash of the pieces merging may produce (normal, user,
     * unused, undefined types): norm text -> id. */
    int32_t *slots; /* (slot_mask + 1), -1 = empty */
    size_t slot_mask;
    size_t max_norm_len; /* longest hashed piece, in bytes */
    /* SentencePiece only: set of adjacent character pairs (tok_char_code
     * of each, packed hi|lo) occurring inside hashed pieces. A boundary
     * between two characters that is not in the set can never lie inside a
     * merged symbol, so the text is merged segment by segment there. */
    uint64_t *pairs; /* (pair_mask + 1), TOK_NO_PAIR = empty */
    size_t pair_mask;
    int32_t bos, eos, unk;
    bool add_space_prefix;
    bool add_bos;
    bool add_eos;
    bool dec_strip; /* decoding may drop the space the prefix rule added */
    /* Special / added tokens matched in the text when parse_special is on
     * (CONTROL and USER pieces), longest first. */
    int32_t *specials; /* (n_specials) */
    size_t n_specials;
    uint8_t special_first[32]; /* bitmap of their first bytes */
    /* BPE by merge rank (tok_model_bpe). */
    tok_merge *merges; /* (merge_mask + 1) */
    size_t merge_mask;
    bool byte_level;       /* symbols start as bytes (GPT-2); else as characters */
    bool byte_fallback;    /* char-level: unknown characters -> <0xNN> pieces */
    bool ignore_merges;    /* a whole word that is a piece is taken as is */
    int32_t byte_tok[256]; /* byte-level: id of the piece for each byte */
    void *pre_re;          /* pcre2_code_8 *: pre-tokenizer split, NULL = none */
    char *prefix;          /* prepended to each text fragment when the prefix rule applies */
    size_t prefix_len;
    bool prefix_if_no_space; /* byte-level add_prefix_space: only when the text lacks one */
    tok_replace repl[TOK_MAX_REPLACE];
    int n_repl;
    /* What writers need to reproduce the pipeline (hr_tokenizer_merge,
     * hr_tokenizer_pre_name, hr_tokenizer_save_json). */
    int32_t (*merge_list)[2]; /* (n_merge_list, 2) distinct merges, rank order */
    size_t n_merge_list;
    char *pre_pattern;    /* the split regex as given, NUL-terminated */
    const char *pre_name; /* llama.cpp's name for it ("gpt-2", ...), or NULL */
    bool nfc;             /* tokenizer.json named an NFC normalizer (kept, not applied) */
};

#define TOK_NO_PAIR UINT64_MAX /* 0xFF never occurs in UTF-8 */

/* Bytes of the valid UTF-8 character at s, as one number (unique per
 * character because UTF-8 is self-delimiting). */
static inline uint32_t tok_char_code(const char *s, size_t clen) {
    uint32_t c = 0;
    for (size_t i = 0; i < clen; i++) c = c << 8 | (uint8_t)s[i];
    return c;
}

static inline size_t tok_char_len(uint8_t lead) { return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4; }

bool tok_pair_possible(const hr_tokenizer *t, uint64_t key);

/* Length of the valid UTF-8 sequence at s[0..n) (n >= 1), or 0 with *why
 * set to the reason it is invalid. */
size_t tok_utf8_seq(const uint8_t *s, size_t n, const char **why);
/* HR_ERR_FORMAT naming the offset of the first invalid byte. */
hr_status tok_validate_utf8(const char *text, size_t len);

/* How tok_build derives the norm/dec views from the raw pieces. */
typedef enum {
    TOK_VIEW_SPM,       /* pieces use U+2581 for spaces */
    TOK_VIEW_SPM_PLAIN, /* pieces use ' ' (llama2.c export) */
    TOK_VIEW_GIVEN      /* norm = dec = given[i] (byte-level BPE) */
} tok_view_mode;

/* Copies n pieces into t (which must be zeroed). types may be NULL (all
 * normal); scores may be NULL (all 0); given is used with TOK_VIEW_GIVEN
 * and must be no longer than the raw piece. */
hr_status tok_build(hr_tokenizer *t, int32_t n, const tok_span *pieces, const float *scores, const uint8_t *types,
                    tok_view_mode mode, const tok_span *given);

/* Id of the hashed piece whose norm text is s[0..len), or -1. */
int32_t tok_lookup(const hr_tokenizer *t, const char *s, size_t len);

/* Parses "<0xNN>" (hex digits of either case); -1 if it is not one. */
int tok_parse_byte_piece(const char *s, size_t len);

/* Collects CONTROL and USER pieces for parse_special. */
hr_status tok_collect_specials(hr_tokenizer *t);

hr_status tok_load_bin(const uint8_t *data, size_t size, hr_tokenizer **out);

/* SentencePiece .model (spm_model.c): whether data starts like a ModelProto
 * (its first piece), and the loader (BPE models only). */
bool tok_is_spm_model(const uint8_t *data, size_t size);
hr_status tok_load_spm_model(const uint8_t *data, size_t size, hr_tokenizer **out);

/* --- BPE (bpe.c, byte_level.c, hf_json.c) --- */

/* GPT-2's byte <-> printable character mapping. tok_byte_char writes the
 * UTF-8 of byte b's character (1 or 2 bytes) and returns its length. */
size_t tok_byte_char(uint8_t b, char out[2]);
/* Maps a byte-level piece back to raw bytes in out (capacity len); returns
 * the byte count, or -1 when some character is outside the mapping. */
long tok_byte_unmap(const char *s, size_t len, char *out);

/* Named pre-tokenizer regexes ("gpt-2", "llama-bpe", "qwen2", ...); NULL
 * when unknown. */
const char *tok_pre_regex(const char *name, size_t len);
/* Compiles a split regex (UTF + UCP, JIT when available) into t->pre_re,
 * keeps its text and recognises its llama.cpp name (t->pre_pattern,
 * t->pre_name). */
hr_status tok_set_pre_regex(hr_tokenizer *t, const char *pattern, size_t len);
/* llama.cpp's name of a split regex given in our spelling or in Hugging
 * Face's ("(?i:'s|'t|...)"), or NULL when it is none of the known ones. */
const char *tok_pre_name_of(const char *pattern, size_t len);

/* Everything a BPE loader collects before tok_bpe_build. */
typedef struct {
    int32_t n;              /* vocabulary size (ids 0..n-1) */
    const tok_span *pieces; /* (n) raw text as in the file; len 0 = hole */
    uint8_t *types;         /* (n) TOK_*; may be adjusted */
    size_t n_merges;
    const tok_span *merge_l, *merge_r; /* (n_merges) raw text of both sides */
    bool byte_level;
} tok_bpe_spec;

/* Builds the vocabulary views and the merge table (merges must name
 * existing pieces whose concatenation is a piece). */
hr_status tok_bpe_build(hr_tokenizer *t, const tok_bpe_spec *spec);

/* Loaders of Hugging Face / OpenAI files; the path is used in messages and
 * to find companion files. */
/* A JSON file: tokenizer.json (has "model"), else a vocab.json /
 * encoder.json whose merges.txt / vocab.bpe lies beside it. */
hr_status tok_load_json(const char *path, const uint8_t *data, size_t size, hr_tokenizer **out);
hr_status tok_load_vocab_merges(const char *vocab_path, const char *merges_path, hr_tokenizer **out);
/* GGUF tokenizer.ggml.model == "gpt2". */
hr_status tok_from_gguf_bpe(const hr_gguf *g, hr_tokenizer **out);

/* Releases the model state of t (not t itself). */
void tok_free_bpe(hr_tokenizer *t);

#endif
