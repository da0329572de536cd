/* headroom — models: configuration and weights.
 *
 * Formats (detected from the file's first bytes, never its name):
 *  - llama2.c v0 float32 (llama2.c's run.c "legacy" export):
 *      7 × i32: dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 *               vocab_size (negative = separate classifier), seq_len
 *      f32 token_embedding (vocab, dim) | rms_att (L, dim)
 *      wq (L, n_heads*hd, dim) | wk (L, n_kv*hd, dim) | wv (L, n_kv*hd, dim)
 *      wo (L, dim, n_heads*hd) | rms_ffn (L, dim)
 *      w1 (L, hidden, dim) | w2 (L, dim, hidden) | w3 (L, hidden, dim)
 *      rms_final (dim) | freq_cis_real (seq, hd/2) | freq_cis_imag (seq, hd/2)
 *      [wcls (vocab, dim) when vocab_size < 0]
 *    RoPE theta 10000, RMSNorm eps 1e-5; hd = dim / n_heads.
 *  - llama2.c int8 "runq" v2 (magic "ak42" = 0x616b3432):
 *      256-byte header: u32 magic | i32 version (2) | 7 × i32 as above
 *      (vocab positive) | u8 shared_classifier | i32 group_size | zero pad
 *      f32 rms_att (L, dim) | rms_ffn (L, dim) | rms_final (dim)
 *      then each quantized tensor as int8 q[numel] followed by f32
 *      s[numel / group_size] (value = q * s of its group), in the order
 *      token_embedding, wq[0..L), wk[..], wv[..], wo[..], w1[..], w2[..],
 *      w3[..], [wcls when not shared].
 *  - GGUF (see gguf.h) with general.architecture "llama" (or "deci": per-layer
 *    head counts / FFN sizes): keys llama.block_count, .embedding_length,
 *    .feed_forward_length, .attention.head_count, .attention.head_count_kv
 *    (scalars or per-layer arrays), .context_length, .rope.freq_base,
 *    .attention.layer_norm_rms_epsilon, .rope.dimension_count; tensors
 *    token_embd, output_norm, [output], blk.N.{attn_norm, attn_q, attn_k,
 *    attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}.weight.
 *
 * Weights are memory-mapped where stored as f32; other dtypes (f16, bf16,
 * Q8_0, llama2.c int8) are dequantized to f32 at load.
 * Q/K rows use the interleaved-pair RoPE layout of llama2.c and GGUF.
 */
#ifndef HEADROOM_MODEL_H
#define HEADROOM_MODEL_H

#include "headroom/common.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Architectures: rows of the registry in src/model/arch.c (an id is its
 * row; this enum names the built-in rows). Llama covers Llama 2/3, Mistral,
 * SmolLM, TinyLlama; Qwen2 adds Q/K/V biases; GPT-2 has LayerNorm, learned
 * positions, GELU MLP and biases everywhere. */
typedef enum { HR_ARCH_LLAMA = 0, HR_ARCH_QWEN2 = 1, HR_ARCH_GPT2 = 2, HR_ARCH_COUNT } hr_arch;

typedef enum { HR_NORM_RMS = 0, HR_NORM_LAYER = 1 } hr_norm_type;
typedef enum { HR_MLP_SWIGLU = 0, HR_MLP_GELU = 1 } hr_mlp_type;
typedef enum { HR_POS_ROPE = 0, HR_POS_LEARNED = 1 } hr_pos_type;

/* RoPE frequency scaling (Llama 3.x "llama3" rope_scaling). */
typedef struct {
    bool llama3; /* false = plain RoPE */
    float factor;
    float low_freq_factor;
    float high_freq_factor;
    int original_ctx; /* original_max_position_embeddings */
} hr_rope_scaling;

typedef enum {
    HR_FORMAT_LLAMA2C = 0,    /* llama2.c v0 float32 */
    HR_FORMAT_LLAMA2C_Q8 = 1, /* llama2.c runq v2 int8 */
    HR_FORMAT_GGUF = 2,
    HR_FORMAT_HF = 3 /* Hugging Face folder: config.json + safetensors */
} hr_format;

/* Hyper-parameters of a model, read through the accessors below (the
 * struct is private, so the ABI does not freeze the layer count). Per-layer
 * values allow pruned (non-uniform) models. */
typedef struct hr_config hr_config;

HR_API hr_arch hr_config_arch(const hr_config *c);
HR_API int hr_config_dim(const hr_config *c); /* residual width */
HR_API int hr_config_n_layers(const hr_config *c);
HR_API int hr_config_head_dim(const hr_config *c);
/* Query heads / KV heads / MLP hidden size of a layer (0 = no attention /
 * no MLP); -1 for a layer outside the model. */
HR_API int hr_config_n_head(const hr_config *c, int layer);
HR_API int hr_config_n_head_kv(const hr_config *c, int layer);
HR_API int hr_config_n_ff(const hr_config *c, int layer);
HR_API int hr_config_vocab_size(const hr_config *c);
HR_API int hr_config_seq_len(const hr_config *c); /* maximum context */
HR_API float hr_config_rope_theta(const hr_config *c);
HR_API float hr_config_norm_eps(const hr_config *c);
HR_API bool hr_config_tied_classifier(const hr_config *c); /* output weights shared with the embedding */
HR_API hr_norm_type hr_config_norm(const hr_config *c);
HR_API hr_mlp_type hr_config_mlp(const hr_config *c);
HR_API hr_pos_type hr_config_pos(const hr_config *c);
HR_API bool hr_config_qkv_bias(const hr_config *c); /* biases on Q, K, V projections */
HR_API bool hr_config_out_bias(const hr_config *c); /* bias on the attention output projection */
HR_API bool hr_config_mlp_bias(const hr_config *c); /* biases on MLP projections */
HR_API hr_rope_scaling hr_config_rope_scaling(const hr_config *c);

/* Architecture from its name ("llama", "mistral", "qwen2", "gpt2", ...). */
HR_API hr_status hr_arch_from_name(const char *name, hr_arch *out);

typedef struct hr_model hr_model;

/* Loads a model; format detected from content. *out owned by caller:
 * hr_model_free(). Hostile files fail with HR_ERR_FORMAT and a message. */
HR_API hr_status hr_model_load(const char *path, hr_model **out);
HR_API void hr_model_free(hr_model *m); /* NULL ok */

HR_API const hr_config *hr_model_config(const hr_model *m); /* borrowed */
HR_API hr_format hr_model_format(const hr_model *m);
HR_API const char *hr_format_name(hr_format f);
HR_API const char *hr_arch_name(hr_arch a);
/* Rows of the architecture registry: ids 0 .. hr_arch_count()-1 are valid. */
HR_API int hr_arch_count(void);
/* dtype the weights were stored in ("f32", "f16", "bf16", "q8_0", "int8-g4"...). */
HR_API const char *hr_model_source_dtype(const hr_model *m);
HR_API int64_t hr_model_n_params(const hr_model *m);
/* Bytes of weight memory the model holds now: its packed panels (built by
 * the first context, each matrix in its own number format: f32, bf16, f16
 * or Q8_0), the buffers it owns (the panels of a model built in memory —
 * pruned, GQA, trained — which contexts use in place; conversions at load;
 * f32 rows made for analysis or training), and the file-mapped tensors the
 * forward pass still reads in place (vectors; matrices only until they are
 * packed, after which their pages are released). An upper bound on what is resident:
 * mapped pages count before they are touched. */
HR_API int64_t hr_model_weight_bytes(const hr_model *m);
/* The number format tensor i (hr_model_tensor_info's order) is kept in for
 * the forward pass: "f32", "bf16", "f16" or "q8_0"; NULL out of range. */
HR_API const char *hr_model_tensor_dtype(const hr_model *m, int i);
/* Largest n_head / n_head_kv / n_ff over layers. */
HR_API int hr_config_max_heads(const hr_config *c);
HR_API int hr_config_max_kv_heads(const hr_config *c);
HR_API int hr_config_max_ff(const hr_config *c);
/* Whether every layer has the same heads, KV heads and FFN size, none of
 * them zero (what a Hugging Face folder can hold). */
HR_API bool hr_config_uniform(const hr_config *c);

/* Describes tensor i (0 <= i < hr_model_n_tensors) for listings. */
typedef struct {
    char name[64];      /* GGUF-style name, e.g. "blk.0.attn_q.weight" */
    int64_t rows, cols; /* (rows, cols) row-major; vectors have rows = 1 */
    int n_dims;         /* 1 for vectors (norm weights, biases: cols values), else 2 */
} hr_tensor_info;
HR_API int hr_model_n_tensors(const hr_model *m);
HR_API hr_status hr_model_tensor_info(const hr_model *m, int i, hr_tensor_info *out);

#ifdef __cplusplus
}
#endif
#endif
