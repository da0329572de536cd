/* headroom — tokenizers.
 *
 * Supported vocabularies (detected from file content, not name):
 *  - llama2.c tokenizer .bin (e.g. tok512.bin):
 *      i32 max_token_length
 *      repeated until EOF: f32 score | i32 len | len bytes (piece text)
 *    Ids 0,1,2 are <unk>, <s>, </s>; ids 3..258 are the byte pieces <0x00>..<0xFF>
 *    when present. Pieces use a plain space where SentencePiece uses U+2581.
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

/* Loads a tokenizer from a llama2.c tokenizer .bin, a GGUF file (its
 * vocabulary), a tokenizer.json, a vocab.json/encoder.json or merges.txt/
 * vocab.bpe (the other file of the pair lies beside it), or a directory
 * holding one of those (a Hugging Face model folder). The format is
 * detected from the content. *out owned by caller: hr_tokenizer_free(). */
hr_status hr_tokenizer_load(const char *path, hr_tokenizer **out);
/* Builds a tokenizer from an open GGUF's tokenizer.ggml.* keys; copies what
 * it needs, so g may be closed afterwards. */
hr_status hr_tokenizer_from_gguf(const hr_gguf *g, hr_tokenizer **out);
void hr_tokenizer_free(hr_tokenizer *t); /* NULL ok */

/* For a model file that does not embed a vocabulary (llama2.c .bin), the
 * tokenizer to use: explicit if non-NULL, else tok512.bin / tokenizer.bin in
 * the model's directory, else the model itself when it is a GGUF with
 * tokenizer keys, else tokenizer.json in the model's directory (or in the
 * model path itself when it is a Hugging Face model folder). Writes a path
 * into buf. HR_ERR_NOT_FOUND with a message
 * naming the places searched when none exists. */
hr_status hr_tokenizer_find_for_model(const char *model_path, const char *explicit_path,
                                      char *buf, size_t cap);

int hr_tokenizer_vocab_size(const hr_tokenizer *t);
/* Short description of the tokenizer model and source, e.g.
 * "bpe (byte-level, GGUF)" or "spm (llama2.c .bin)". Never NULL. */
const char *hr_tokenizer_kind(const hr_tokenizer *t);
int32_t hr_tokenizer_bos(const hr_tokenizer *t); /* -1 if none */
int32_t hr_tokenizer_eos(const hr_tokenizer *t); /* -1 if none */
/* Whether the vocabulary asks for BOS (GGUF tokenizer.ggml.add_bos_token;
 * true for llama2.c .bin) and has one. */
bool hr_tokenizer_add_bos_default(const hr_tokenizer *t);

typedef struct {
    bool add_bos;          /* prepend BOS (default true) */
    bool add_eos;          /* append EOS (default false) */
    int add_space_prefix;  /* -1 = the vocabulary's default (default), 0/1 */
    bool parse_special;    /* match special-token text (e.g. "<|im_start|>")
                              in the input and emit its id (default false) */
} hr_encode_params;

hr_encode_params hr_encode_default_params(void);

/* Encodes len bytes of UTF-8 text. *ids is malloc'ed (caller frees with
 * free()); *n_ids its length. Invalid UTF-8 is HR_ERR_FORMAT with the byte
 * offset in the message. Empty text gives only the requested BOS/EOS.
 * Thread-safe: t is only read (caches live for one call). */
hr_status hr_tokenizer_encode(const hr_tokenizer *t, const char *text, size_t len,
                              const hr_encode_params *p, int32_t **ids, size_t *n_ids);

/* Decodes ids into malloc'ed NUL-terminated text (caller frees). BOS/EOS are
 * skipped; the leading-space rule is undone for the first piece when
 * strip_leading_space is true (it is what encode added). */
hr_status hr_tokenizer_decode(const hr_tokenizer *t, const int32_t *ids, size_t n,
                              bool strip_leading_space, char **text, size_t *len);

/* Raw piece of one id as stored in the vocabulary (borrowed), or NULL. */
const char *hr_tokenizer_piece(const hr_tokenizer *t, int32_t id, size_t *len);

/* Streaming decode of one token for printing: bytes of `id` given the
 * previous id (the leading space after BOS is dropped, as llama2.c does).
 * Writes up to cap bytes into buf; returns the byte count via *len. */
hr_status hr_tokenizer_decode_one(const hr_tokenizer *t, int32_t prev, int32_t id,
                                  char *buf, size_t cap, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
