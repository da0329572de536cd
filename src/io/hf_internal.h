/* Internals shared by the Hugging Face loader/writer and the GGUF writer
 * (src/model only, plus tests). */
#ifndef HR_HF_INTERNAL_H
#define HR_HF_INTERNAL_H

#include "model/model_internal.h"
#include "formats/dtype.h"
#include "headroom/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

/* Extra config.json fields headroom keeps beside hr_config. */
typedef struct {
    int bos_id, eos_id; /* -1 when absent */
} hr_hf_extra;

/* Parses config.json text (len bytes) into c (arch traits set, vocab from
 * vocab_size) and extra (may be NULL). Missing, mistyped or contradictory
 * fields are HR_ERR_FORMAT with the field's name; unsupported features
 * (other model types, activations, RoPE scalings) HR_ERR_UNSUPPORTED. */
hr_status hr_hf_parse_config(const char *json, size_t len, hr_config *c, hr_hf_extra *extra);

/* Q/K row layouts of one projection (n_heads blocks of head_dim rows, each
 * row of `cols` floats; cols = 1 for a bias). Rotate-half checkpoints (HF
 * llama/qwen2, GGUF qwen2: the architecture row says which) rotate pairs
 * (i, i + hd/2); llama2.c/GGUF llama rotate (2i, 2i+1). */
void hr_qk_to_interleaved(float *w, int n_heads, int head_dim, size_t cols, float *tmp /* (head_dim * cols) */);
void hr_qk_to_rotate_half(float *w, int n_heads, int head_dim, size_t cols, float *tmp /* (head_dim * cols) */);
/* hr_qk_rotate_half_src: formats/panels.h. */

/* llama.cpp's rope_freqs.weight: the divisor of each RoPE frequency under
 * llama3 scaling (div holds head_dim / 2 floats). */
void hr_llama3_rope_divisors(int head_dim, float theta, const hr_rope_scaling *rs, float *div);
/* Recovers c->rope_scaling from such divisors (GGUFs written by llama.cpp
 * carry only the tensor); HR_ERR_UNSUPPORTED when no llama3 setting fits. */
hr_status hr_rope_scaling_from_divisors(hr_config *c, const float *div);


/* A tensor to write: up to 3 f32 sources stacked by rows (vectors: by
 * elements), optionally with Q/K rows turned from interleaved into
 * rotate-half per head (perm_heads > 0) and/or transposed. A matrix part
 * kept typed has part[p] NULL and its typed source in tpart[p] (both
 * writers read it row by row; the HF writer converts a transposed GPT-2
 * Conv1D one matrix at a time). */
typedef struct {
    char name[96];
    int64_t rows, cols; /* headroom layout (vectors: rows = 1) */
    bool vec;
    const float *part[3];
    const hr_mat_src *tpart[3]; /* the model's typed source of a part with no f32 rows, or NULL */
    int64_t part_rows[3];       /* rows (vectors: elements) of each part */
    int n_parts;
    int perm_heads;
    bool transpose; /* written as (cols, rows) */
    bool linear;    /* an attention / MLP projection (a compressed-tensors "Linear" target) */
    uint32_t type;  /* writer's dtype id */
    uint64_t offset;
    size_t nbytes;
} hr_wtensor;

/* The tensor as one contiguous f32 array in its written layout: the source
 * itself, or a malloc'ed copy returned in *tmp (caller frees). Parts kept
 * typed are converted (one matrix at a time). */
hr_status hr_wtensor_gather(int head_dim, const hr_wtensor *o, const float **out, float **tmp);
/* Written row w of a matrix tensor (not transposed): its part *p and the
 * row *r of that part in headroom's order (Q/K rows turned back from
 * rotate-half when perm_heads). */
void hr_wtensor_locate(int head_dim, const hr_wtensor *o, int64_t w, int *p, int64_t *r);
/* HR_ERR_INVALID_ARG naming the tensor and the first index when one of n
 * values is not finite: 8-bit formats (Q8_0 blocks, per-channel int8 rows)
 * take their scales from the largest |x| and cannot store it. */
hr_status hr_check_finite(const char *tensor, const char *format, const float *v, size_t n);
/* Written row w of a matrix tensor (not transposed) as f32 (cols floats),
 * from its f32 part or converted from its typed one. */
hr_status hr_wtensor_row(int head_dim, const hr_wtensor *o, int64_t w, float *row);

#endif
