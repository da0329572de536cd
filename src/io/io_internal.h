/* The loaders of each model format (io layer), called by hr_model_load. */
#ifndef HR_IO_INTERNAL_H
#define HR_IO_INTERNAL_H

#include "model/model_internal.h"
#include "headroom/save.h"

hr_status hr_load_llama2c(hr_model *m);
hr_status hr_load_llama2c_q8(hr_model *m);
hr_status hr_load_gguf(hr_model *m, const char *path);
/* Hugging Face folder (src/model/hf_load.c). */
hr_status hr_load_hf(hr_model *m, const char *dir);

/* The GGUF writer (gguf_write.c) with a per-tensor choice: weight
 * matrices named (GGUF names as written, e.g. "blk.0.attn_q.weight",
 * "blk.0.attn_qkv.weight" for a fused family) in q8_names are written as
 * Q8_0, every other tensor as hr_model_save_gguf writes it in `dtype`.
 * A named tensor that is not a matrix whose rows hold a multiple of 32
 * values (hr_gguf_q8_eligible), or a name the file would not hold, is
 * HR_ERR_INVALID_ARG before anything is written. */
hr_status hr_gguf_save_mixed(const hr_model *m, const hr_tokenizer *tok, const char *path, hr_dtype dtype,
                             const char *const *q8_names, int n_q8);
/* hr_model_save_hf with the attention / MLP projections named in
 * int8_names (GGUF names, e.g. "blk.0.attn_q.weight") as per-channel int8
 * (save.h's HR_DTYPE_INT8) and every other tensor in dtype (f32, f16,
 * bf16 or HR_DTYPE_KEEP); config.json's quantization_config ignores the
 * projections not named. A name that is not such a projection of the
 * model is HR_ERR_INVALID_ARG before anything is written. */
hr_status hr_hf_save_int8_mixed(const hr_model *m, const hr_tokenizer *tok, const char *dir, hr_dtype dtype,
                                const char *const *int8_names, int n_int8);
/* Can the matrix of slot s, rows of cols values, be written per-channel
 * int8 (save.h's HR_DTYPE_INT8): an attention or MLP projection (W_q, W_k,
 * W_v, W_o, W_gate, W_up, W_down) whose rows hold a multiple of 4 values
 * (every later safetensors tensor stays 4-byte aligned). The one rule for
 * the HF writer and `quantize --format int8`. */
bool hr_int8_channel_eligible(hr_slot s, int64_t cols);
/* Can the GGUF tensor `name` of shape (rows, cols) be Q8_0: a matrix (not
 * the learned position embedding) whose rows hold a multiple of 32 values. */
bool hr_gguf_q8_eligible(const char *name, int64_t rows, int64_t cols);

#endif
