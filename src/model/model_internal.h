/* Internal view of hr_model shared by library modules (context, analysis,
 * pruning). Weights are f32, row-major (n_out, n_in), read-only. */
#ifndef HR_MODEL_INTERNAL_H
#define HR_MODEL_INTERNAL_H

#include "headroom/model.h"
#include "model/config.h"
#include "core/internal.h"
#include "core/limits.h"

/* Q/K rows are in the interleaved-pair RoPE layout (llama2.c, GGUF llama);
 * loaders of rotate-half layouts (HF llama/qwen2) permute them on load.
 * Bias pointers are NULL when the architecture has none. */
typedef struct {
    const float *attn_norm;   /* (dim) */
    const float *attn_norm_b; /* (dim) LayerNorm only */
    const float *wq;          /* (n_head * head_dim, dim) */
    const float *wk;          /* (n_head_kv * head_dim, dim) */
    const float *wv;          /* (n_head_kv * head_dim, dim) */
    const float *bq;          /* (n_head * head_dim) */
    const float *bk;          /* (n_head_kv * head_dim) */
    const float *bv;          /* (n_head_kv * head_dim) */
    const float *wo;          /* (dim, n_head * head_dim) */
    const float *bo;          /* (dim) */
    const float *ffn_norm;    /* (dim) */
    const float *ffn_norm_b;  /* (dim) LayerNorm only */
    const float *w_gate;      /* (n_ff, dim)  SwiGLU only; llama2.c w1 */
    const float *w_up;        /* (n_ff, dim)  llama2.c w3; GPT-2 c_fc */
    const float *b_up;        /* (n_ff) */
    const float *w_down;      /* (dim, n_ff)  llama2.c w2; GPT-2 c_proj */
    const float *b_down;      /* (dim) */
} hr_layer_weights;

typedef struct {
    const float *tok_embd;   /* (vocab, dim) */
    const float *pos_embd;   /* (seq_len, dim) learned positions only */
    hr_layer_weights layers[HR_MAX_LAYERS];
    const float *out_norm;   /* (dim) */
    const float *out_norm_b; /* (dim) LayerNorm only */
    const float *output;     /* (vocab, dim); == tok_embd when tied */
} hr_weights;

struct hr_model {
    hr_config cfg;
    hr_weights w;
    hr_format format;
    char source_dtype[32];
    hr_mapped_file file; /* keeps mmapped f32 weights alive (llama2.c) */
    struct hr_gguf *gguf; /* keeps mmapped f32 weights alive (GGUF) */
    struct hr_safetensors **shards; /* keep mmapped f32 weights alive (HF) */
    size_t n_shards;
    void **owned;        /* buffers of dequantized weights */
    size_t n_owned, cap_owned;
    /* Built and owned by the engine (src/engine/pack.c), freed with the
     * model through packed_free: the model layer does not know its type. */
    void *packed;
    void (*packed_free)(void *packed);
};

/* One present weight tensor, GGUF-named, f32 row-major (rows, cols). */
typedef struct {
    char name[64];
    int64_t rows, cols;
    const float *data;
    int layer; /* -1 for global tensors */
} hr_tensor_ref;

/* Lists the model's present tensors in canonical order into out (up to
 * cap); returns how many there are. out may be NULL with cap 0. */
int hr_model_tensors(const hr_model *m, hr_tensor_ref *out, int cap);

/* Allocates an owned f32 buffer of n floats tracked by the model. */
float *hr_model_alloc_owned(hr_model *m, size_t n);

/* Checks the config for sane, overflow-free sizes (shared by all loaders). */
hr_status hr_config_validate(const hr_config *c);

#endif
