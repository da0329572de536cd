/* headroom — tokenizers.
 *
 * Supported vocabularies (detected from file content, not name):
 *  - llama2.c tokenizer .bin (e.g. tok512.bin):
 *      i32 max_token_length
 *      repeated until EOF: f32 score | i32 len | len bytes (piece text)
 *    Ids 0,1,2 are <unk>, <s>, </s>; ids 3..258 are the byte pieces <0x00>..<0xFF>
 *    when present. Pieces use a plain space where SentencePiece uses U+2581.
 *  - SentencePiece .model (tokenizer.model): sentencepiece's ModelProto,
 *    protobuf wire format, read by headroom itself (field numbers from
 *    sentencepiece_model.proto): pieces (1) {piece (1), score (2), type (3):
 *    NORMAL=1 UNKNOWN=2 CONTROL=3 USER_DEFINED=4 UNUSED=5 BYTE=6},
 *    trainer_spec (2) {model_type (3), treat_whitespace_as_suffix (24),
 *    byte_fallback (35), unk_id/bos_id/eos_id/pad_id (40..43)},
 *    normalizer_spec (3) {name (1), precompiled_charsmap (2),
 *    add_dummy_prefix (3), remove_extra_whitespaces (4), escape_whitespaces
 *    (5)}; every other field is skipped. The whole file is parsed and
 *    checked first: truncated varints, lengths past the end, more pieces
 *    than HR_MAX_VOCAB, wrong wire types, unknown piece types, non-finite
 *    scores, ids outside the vocabulary, a missing spec, byte_fallback
 *    without all 256 <0xNN> pieces are HR_ERR_FORMAT naming the byte
 *    offset or field. BPE models (Llama, Mistral) use the SentencePiece-BPE
 *    encoder below with the file's scores, types, special ids, byte
 *    fallback and add_dummy_prefix (the leading-space rule); BOS is added
 *    by default. HR_ERR_UNSUPPORTED, naming the setting: UNIGRAM, WORD and
 *    CHAR models; a normalizer with precompiled rules (anything but
 *    "identity"); remove_extra_whitespaces; escape_whitespaces off;
 *    treat_whitespace_as_suffix. Detected by its start: 0x0A, a varint,
 *    0x0A (the first piece), which no llama2.c .bin can begin with.
 *    USER_DEFINED pieces, which sentencepiece always matches in the text,
 *    are matched only with parse_special, as for every other source.
 *    Llama-2's tokenizer.model, its llama2.c export tokenizer.bin and
 *    llama.cpp's ggml-vocab-llama-spm.gguf pass llama.cpp's Llama-SPM test
 *    vectors and give identical ids.
 *  - GGUF vocabulary with tokenizer.ggml.model = "llama" (SentencePiece BPE):
 *    tokenizer.ggml.tokens (string[]), .scores (f32[]), .token_type (i32[]),
 *    .bos_token_id / .eos_token_id / .unknown_token_id / .add_bos_token /
 *    .add_space_prefix.
 *
 * SentencePiece-BPE encoding (what llama.cpp and sentencepiece do):
 *   1. optionally prepend a space (the "leading-space rule"), then map every
 *      space to U+2581;
 *   2. split into UTF-8 characters; each character that is a vocabulary piece
 *      becomes that piece, others become their bytes' <0xNN> pieces (byte
 *      fallback) or <unk>;
 *   3. repeatedly merge the adjacent pair whose concatenation is a piece with
 *      the highest score (leftmost on ties) — done with a priority queue, so
 *      encoding is O(n log n), never quadratic.
 * Decoding maps U+2581 back to space, <0xNN> pieces back to their byte, and
 * drops the space that the leading-space rule added.
 *
 * BPE by merge rank (GPT-2 family, Hugging Face "BPE" models):
 *  - GGUF with tokenizer.ggml.model = "gpt2": tokenizer.ggml.tokens,
 *    .token_type, .merges ("a b"), .pre naming the split regex ("gpt-2",
 *    "llama-bpe", "qwen2" and llama.cpp's aliases for them);
 *  - Hugging Face tokenizer.json with model.type "BPE", either byte-level
 *    (pre_tokenizer ByteLevel or Split(Regex)+ByteLevel, decoder ByteLevel)
 *    or SentencePiece-style (normalizer Prepend("▁")/Replace(" ", "▁"),
 *    byte_fallback, decoder Replace/ByteFallback/Fuse/Strip); merges as
 *    "a b" strings or ["a", "b"] pairs; added_tokens; BOS/EOS from the
 *    post_processor template and a tokenizer_config.json lying beside it.
 *    The NFC normalizer is accepted but not applied. Other model types
 *    and pipeline components are HR_ERR_UNSUPPORTED naming them;
 *  - vocab.json + merges.txt (GPT-2's encoder.json + vocab.bpe): load
 *    either file, or the directory holding them.
 * Byte-level encoding maps the text's bytes through GPT-2's printable
 * byte alphabet, splits it into words with the regex (PCRE2, Unicode
 * properties), and in each word repeatedly merges the adjacent pair with
 * the lowest merge rank (leftmost on ties).
 *
 * Special tokens (CONTROL and user-defined pieces, tokenizer.json
 * added_tokens) are recognised inside the text only when
 * hr_encode_params.parse_special is set; by default (as in llama.cpp's
 * tokenizer tests) "<|endoftext|>" in the text is encoded as plain text.
 */
#ifndef HEADROOM_TOKENIZER_H
#define HEADROOM_TOKENIZER_H

#include "headroom/common.h"
#include "headroom/gguf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hr_tokenizer hr_tokenizer;

/* Loads a tokenizer from a llama2.c tokenizer .bin, a SentencePiece .model,
 * a GGUF file (its vocabulary), a tokenizer.json, a vocab.json/
 * encoder.json or merges.txt/vocab.bpe (the other file of the pair lies
 * beside it), or a directory holding one of those (a Hugging Face model
 * folder; tokenizer.json, vocab.json, encoder.json, tokenizer.bin,
 * tok512.bin, tokenizer.model, first found). The format is detected from
 * the content. *out owned by caller: hr_tokenizer_free(). */
HR_API hr_status hr_tokenizer_load(const char *path, hr_tokenizer **out);
/* Builds a tokenizer from an open GGUF's tokenizer.ggml.* keys; copies what
 * it needs, so g may be closed afterwards. */
HR_API hr_status hr_tokenizer_from_gguf(const hr_gguf *g, hr_tokenizer **out);
HR_API void hr_tokenizer_free(hr_tokenizer *t); /* NULL ok */

/* For a model file that does not embed a vocabulary (llama2.c .bin), the
 * tokenizer to use: explicit if non-NULL, else the model itself when it is
 * a GGUF with tokenizer keys, else tok512.bin / tokenizer.bin /
 * tokenizer.json / tokenizer.model in the model's directory (for a Hugging
 * Face model folder: its tokenizer.json, else its tokenizer.model). Writes
 * a path into buf. HR_ERR_NOT_FOUND with a message naming the places
 * searched when none exists. */
HR_API hr_status hr_tokenizer_find_for_model(const char *model_path, const char *explicit_path, char *buf, size_t cap);

HR_API int hr_tokenizer_vocab_size(const hr_tokenizer *t);
/* Short description of the tokenizer model and source, e.g.
 * "bpe (byte-level, GGUF)" or "spm (llama2.c .bin)". Never NULL. */
HR_API const char *hr_tokenizer_kind(const hr_tokenizer *t);
HR_API int32_t hr_tokenizer_bos(const hr_tokenizer *t); /* -1 if none */
HR_API int32_t hr_tokenizer_eos(const hr_tokenizer *t); /* -1 if none */
/* Whether the vocabulary asks for BOS (GGUF tokenizer.ggml.add_bos_token;
 * true for llama2.c .bin) and has one. */
HR_API bool hr_tokenizer_add_bos_default(const hr_tokenizer *t);

typedef struct {
    bool add_bos;         /* prepend BOS (default true) */
    bool add_eos;         /* append EOS (default false) */
    int add_space_prefix; /* -1 = the vocabulary's default (default), 0/1 */
    bool parse_special;   /* match special-token text (e.g. "<|im_start|>")
                              in the input and emit its id (default false) */
} hr_encode_params;

HR_API hr_encode_params hr_encode_default_params(void);

/* Encodes len bytes of UTF-8 text. *ids is malloc'ed (caller frees with
 * free()); *n_ids its length. Invalid UTF-8 is HR_ERR_FORMAT with the byte
 * offset in the message. Empty text gives only the requested BOS/EOS.
 * Thread-safe: t is only read (caches live for one call). */
HR_API hr_status hr_tokenizer_encode(const hr_tokenizer *t, const char *text, size_t len, const hr_encode_params *p,
                                     int32_t **ids, size_t *n_ids);

/* Decodes ids into malloc'ed NUL-terminated text (caller frees). BOS/EOS are
 * skipped; the leading-space rule is undone for the first piece when
 * strip_leading_space is true (it is what encode added). */
HR_API hr_status hr_tokenizer_decode(const hr_tokenizer *t, const int32_t *ids, size_t n, bool strip_leading_space,
                                     char **text, size_t *len);

/* Raw piece of one id as stored in the vocabulary (borrowed), or NULL. */
HR_API const char *hr_tokenizer_piece(const hr_tokenizer *t, int32_t id, size_t *len);

/* Streaming decode of one token for printing: bytes of `id` given the
 * previous id (the leading space after BOS is dropped, as llama2.c does).
 * Writes up to cap bytes into buf; returns the byte count via *len. */
HR_API hr_status hr_tokenizer_decode_one(const hr_tokenizer *t, int32_t prev, int32_t id, char *buf, size_t cap,
                                         size_t *len);

/* ---- The vocabulary as writers see it (GGUF, tokenizer.json) ---- */

/* Token types, numbered as GGUF's tokenizer.ggml.token_type. */
typedef enum {
    HR_TOKEN_UNDEFINED = 0,
    HR_TOKEN_NORMAL = 1,
    HR_TOKEN_UNKNOWN = 2,
    HR_TOKEN_CONTROL = 3,      /* BOS, EOS, special added tokens */
    HR_TOKEN_USER_DEFINED = 4, /* non-special added tokens */
    HR_TOKEN_UNUSED = 5,
    HR_TOKEN_BYTE = 6 /* <0xNN> byte-fallback pieces */
} hr_token_type;

typedef enum {
    HR_TOKENIZER_SPM = 0,       /* SentencePiece BPE by piece score (llama2.c .bin, .model, GGUF "llama") */
    HR_TOKENIZER_BPE_BYTES = 1, /* byte-level BPE by merge rank (GPT-2 family, GGUF "gpt2") */
    HR_TOKENIZER_BPE_CHARS = 2  /* character BPE by merge rank, SentencePiece-style
                                    (Llama / Mistral tokenizer.json: ▁ for spaces, byte fallback) */
} hr_tokenizer_model_type;

HR_API hr_tokenizer_model_type hr_tokenizer_model(const hr_tokenizer *t);

/* Piece id spelled as vocabulary files spell it, borrowed, *len bytes (not
 * NUL-terminated at *len): SentencePiece-style pieces with U+2581 for
 * spaces (the plain spaces of a llama2.c .bin converted); control pieces
 * without surrounding whitespace (the .bin's "\n<s>\n" is "<s>");
 * byte-level pieces in GPT-2's printable alphabet ("Ġ" for space); added
 * tokens as their text. NULL (and *len 0) for an id outside the
 * vocabulary; *len 0 for a hole in a vocabulary with gaps in its ids. */
HR_API const char *hr_tokenizer_token_text(const hr_tokenizer *t, int32_t id, size_t *len);
HR_API hr_token_type hr_tokenizer_token_type(const hr_tokenizer *t, int32_t id); /* UNDEFINED if out of range */
/* SentencePiece: the piece's score (higher merges first). Merge-rank BPE:
 * minus the rank of the first merge producing the piece, and for pieces no
 * merge produces a value below all of those (0 for control, byte and
 * unknown pieces), so that score order is merge order. 0 out of range. */
HR_API float hr_tokenizer_score(const hr_tokenizer *t, int32_t id);
HR_API int32_t hr_tokenizer_unk(const hr_tokenizer *t); /* -1 if none */
HR_API bool hr_tokenizer_add_eos_default(const hr_tokenizer *t);
/* Whether encoding prepends a space ("▁" / " ") to the text by default. */
HR_API bool hr_tokenizer_add_space_prefix(const hr_tokenizer *t);

/* Merge-rank BPE: the number of distinct merges, and merge i (rank order,
 * 0 = applied first) as (left id, right id). SentencePiece vocabularies
 * have none (0; hr_tokenizer_merge is HR_ERR_RANGE). */
HR_API size_t hr_tokenizer_n_merges(const hr_tokenizer *t);
HR_API hr_status hr_tokenizer_merge(const hr_tokenizer *t, size_t i, int32_t *left, int32_t *right);

/* Byte-level BPE: llama.cpp's name of the pre-tokenizer split regex
 * ("gpt-2", "llama-bpe", "qwen2"; GGUF tokenizer.ggml.pre), or NULL when
 * the tokenizer has no split regex or one of no known family. */
HR_API const char *hr_tokenizer_pre_name(const hr_tokenizer *t);
/* The split regex itself (PCRE2 syntax, as loaded), or NULL. */
HR_API const char *hr_tokenizer_pre_regex(const hr_tokenizer *t);

/* Writes a Hugging Face tokenizer.json (model type BPE) that the
 * `tokenizers` library and hr_tokenizer_load read back to the same ids:
 *  - SentencePiece and character BPE vocabularies: normalizer
 *    Prepend("▁") (when the vocabulary adds a space prefix) + Replace(" ",
 *    "▁"), byte_fallback when <0xNN> pieces exist, decoder Replace /
 *    ByteFallback / Fuse / Strip, post_processor TemplateProcessing adding
 *    BOS (and EOS) as the vocabulary asks. A SentencePiece vocabulary has
 *    scores, not merges: the merges are derived as Hugging Face's
 *    converters do (every split of a piece into two pieces, ordered by the
 *    piece's score, descending), which encodes identically whenever no two
 *    pieces that can compete for the same characters share a score;
 *  - byte-level vocabularies: pre_tokenizer ByteLevel (GPT-2 regex) or
 *    Split(the family's regex) + ByteLevel, decoder ByteLevel;
 *  - control and user-defined pieces as added_tokens (special / not).
 * Pieces must be valid UTF-8 without NUL bytes (JSON strings), else
 * HR_ERR_UNSUPPORTED naming the piece. Written atomically (temporary
 * file, renamed). */
HR_API hr_status hr_tokenizer_save_json(const hr_tokenizer *t, const char *path);
/* Writes the tokenizer_config.json that goes beside it: tokenizer_class
 * PreTrainedTokenizerFast, bos/eos/unk tokens, add_bos_token /
 * add_eos_token, model_max_length when > 0. Atomic. */
HR_API hr_status hr_tokenizer_save_config_json(const hr_tokenizer *t, const char *path, int model_max_length);

#ifdef __cplusplus
}
#endif
#endif
