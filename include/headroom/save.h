/* headroom — writing models: GGUF files and Hugging Face folders.
 *
 * Both writers take any loaded model (llama2.c, GGUF, HF; pruned or not)
 * and write its f32 weights converted to the requested dtype; asked for
 * HR_DTYPE_KEEP, they write the model's own (hr_dtype_for_model). Output
 * appears atomically: a GGUF file is written to a temporary name and
 * renamed; an HF folder is built in a temporary folder and renamed.
 *
 * GGUF (v3, 32-byte alignment): general.architecture "llama", "qwen2",
 * "gpt2", or "deci" for llama-family models whose head counts / FFN sizes
 * differ across layers (per-layer int32 arrays for
 * attention.head_count, attention.head_count_kv and feed_forward_length;
 * layers without attention have head_count 0). Q/K rows are written in the
 * layout llama.cpp expects for the architecture (interleaved pairs for
 * llama/deci, rotate-half for qwen2); gpt2 Q/K/V are fused into attn_qkv.
 * Llama 3 RoPE scaling is written as llama.cpp's rope_freqs.weight and as
 * headroom.rope_scaling.* keys (read back by headroom). Norms and biases
 * stay f32 (Q8_0: see hr_dtype). The tokenizer (optional) is copied into tokenizer.ggml.*:
 * byte-level BPE as "gpt2" with merges and tokenizer.ggml.pre, SentencePiece
 * and character BPE (scores ranking pieces in merge order) as "llama".
 *
 * HF folder: config.json, model.safetensors ("__metadata__": {"format":
 * "pt"}), Q/K permuted back to rotate-half, GPT-2 Conv1D weights
 * transposed back to (in, out). Only uniform models (same sizes in every
 * layer) can be written; others are HR_ERR_UNSUPPORTED (use GGUF).
 * With a tokenizer, tokenizer.json and tokenizer_config.json are written
 * too (hr_tokenizer_save_json, hr_tokenizer_save_config_json).
 */
#ifndef HEADROOM_SAVE_H
#define HEADROOM_SAVE_H

#include "headroom/common.h"
#include "headroom/model.h"
#include "headroom/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* HR_DTYPE_Q8_0 (GGUF only): ggml's Q8_0, blocks of 32 values with one f16
 * scale d = max|x| / 127 and 32 int8 q = round(x / d) (half away from
 * zero); a value reads back as d * q. Which tensors: every weight matrix
 * (token embedding and output included, as llama-quantize's Q8_0 does)
 * whose rows hold a multiple of 32 values; other matrices are written f16
 * (llama.cpp's convert_hf_to_gguf.py falls back the same way; an info log
 * line names each), the learned position embedding f32, norms and biases
 * f32. A matrix with a non-finite value is HR_ERR_INVALID_ARG. Readers
 * refuse Q8_0 blocks whose scale is not finite. */
typedef enum {
    HR_DTYPE_F32 = 0,
    HR_DTYPE_F16 = 1,
    HR_DTYPE_BF16 = 2,
    HR_DTYPE_Q8_0 = 3,
    HR_DTYPE_KEEP = 4, /* writers: the model's own dtype, hr_dtype_for_model() */
    HR_DTYPE_INT8 = 5  /* HF folders only: per-channel int8, see below */
} hr_dtype;
/* HR_DTYPE_INT8 (Hugging Face folders only; GGUF has no per-channel int8
 * type: HR_ERR_UNSUPPORTED): compressed-tensors' "int-quantized" layout,
 * which transformers (with the compressed-tensors package) and vLLM load:
 * each attention and MLP projection (q/k/v/o, gate/up/down; not GPT-2's
 * Conv1D) as NAME.weight I8 (rows, cols) plus NAME.weight_scale F32
 * (rows, 1), weight = scale * q; config.json gets the matching
 * quantization_config (symmetric 8-bit int weights, strategy "channel").
 * A matrix held per-channel int8 is copied as it is (bytes and scales);
 * others — including int8 inputs the loader read as f32 (rows not a
 * multiple of 32 values) — are quantized per row: scale = max |row| / 127,
 * q = round half to even (x / scale) (hr_quantize_i8_row in
 * src/formats/dtype.h). Projections whose rows are not a multiple of 4
 * values stay in f32 (so every tensor after an I8 one stays 4-byte
 * aligned; safetensors allows no padding) and are listed in the config's
 * "ignore". The other tensors (embeddings, lm_head, norms, biases) are
 * written f32. A model with no such projection (GPT-2's are Conv1D) is
 * HR_ERR_UNSUPPORTED. */

/* "f32" / "f16" / "bf16" / "q8_0" / "int8" (also "float32", "float16", "bfloat16", "Q8_0"). */
HR_API hr_status hr_dtype_from_name(const char *name, hr_dtype *out);
HR_API const char *hr_dtype_name(hr_dtype d); /* "keep" for HR_DTYPE_KEEP */

/* The dtype a writer uses for m when asked for `requested` (gguf: a GGUF
 * file, else an HF folder): requested itself, unless it is HR_DTYPE_KEEP:
 * then the model's source dtype (hr_model_source_dtype: for a mixed file
 * the dtype of most matrix parameters; a pruned, GQA-converted or
 * fine-tuned model keeps its input's) when it is f32, f16, bf16, q8_0 or
 * int8 and the format holds it; else f32 (llama2.c int8 sources; a q8_0
 * source written as an HF folder or a per-channel int8 one written as
 * GGUF, whose f32 holds every value exactly). */
HR_API hr_dtype hr_dtype_for_model(const hr_model *m, hr_dtype requested, bool gguf);

/* Writes m (and tok's vocabulary when tok is non-NULL) as GGUF at path. */
HR_API hr_status hr_model_save_gguf(const hr_model *m, const hr_tokenizer *tok, const char *path, hr_dtype dtype);

/* Writes m as a Hugging Face folder at dir, which must not exist or be an
 * empty folder. dtype f32, f16 or bf16 (Q8_0 is HR_ERR_UNSUPPORTED). tok (may be NULL) gives bos/eos ids in config.json and is
 * written as tokenizer.json + tokenizer_config.json. */
HR_API hr_status hr_model_save_hf(const hr_model *m, const hr_tokenizer *tok, const char *dir, hr_dtype dtype);

#ifdef __cplusplus
}
#endif
#endif
