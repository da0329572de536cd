/* Limits of what headroom accepts: the one home of every size bound.
 *
 * They lie far above any real model but low enough that every product of
 * them used for sizes fits in 64 bits without overflow. Loaders reject
 * files beyond them (hr_config_validate); internal tables use
 * HR_MAX_LAYERS as their fixed length. */
#ifndef HR_CORE_LIMITS_H
#define HR_CORE_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#ifndef HR_MAX_LAYERS
#define HR_MAX_LAYERS 256 /* transformer blocks */
#endif

/* Model shapes (hr_config_validate; the loaders check each field against
 * these as they read it). */
enum {
    HR_MAX_DIM = 1 << 16,              /* residual width */
    HR_MAX_HEADS = 1 << 10,            /* query or KV heads of one layer */
    HR_MAX_HEAD_DIM = 1 << 10,         /* size of one head */
    HR_MAX_FF = 1 << 18,               /* MLP hidden size of one layer */
    HR_MAX_VOCAB = 1 << 22,            /* vocabulary */
    HR_MAX_SEQ = 1 << 22,              /* context length */
    HR_MAX_ROPE_ORIGINAL_CTX = 1 << 24 /* llama3 RoPE scaling's original context */
};

/* Files and documents. */
enum {
    HR_JSON_MAX_DEPTH = 64,       /* nesting accepted in any JSON document read (hr_json_parse) */
    HR_SAFETENSORS_MAX_DEPTH = 3, /* header -> tensor entry -> shape array: anything deeper is hostile */
    HR_GGUF_MAX_ARRAY_DEPTH = 8,  /* GGUF arrays of arrays */
    HR_MAX_SHARDS = 4096,         /* safetensors files of one Hugging Face checkpoint */
    HR_MAX_TOKEN_BYTES = 1 << 16  /* one piece of a llama2.c tokenizer file */
};
#define HR_MAX_SAFETENSORS_HEADER_BYTES ((uint64_t)100 << 20) /* the JSON header of one safetensors file */
#define HR_MAX_JSON_FILE_BYTES ((size_t)1 << 30)              /* tokenizer.json and other JSON inputs */
#define HR_MAX_REPORT_IMAGE_BYTES ((size_t)64 << 20)          /* one picture embedded in report.html */
#define HR_GGUF_MAX_ALIGNMENT ((int64_t)1 << 31)              /* GGUF general.alignment */

#endif
