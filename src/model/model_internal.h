/* Internal view of hr_model shared by library modules (context, analysis,
 * pruning). Weights are f32, row-major (n_out, n_in), read-only. */
#ifndef HR_MODEL_INTERNAL_H
#define HR_MODEL_INTERNAL_H

#include "headroom/model.h"
#include "internal.h"

typedef struct {
    const float *attn_norm; /* (dim) */
    const float *wq;        /* (n_head * head_dim, dim) */
    const float *wk;        /* (n_head_kv * head_dim, dim) */
    const float *wv;        /* (n_head_kv * head_dim, dim) */
    const float *wo;        /* (dim, n_head * head_dim) */
    const float *ffn_norm;  /* (dim) */
    const float *w_gate;    /* (n_ff, dim)  llama2.c w1 */
    const float *w_up;      /* (n_ff, dim)  llama2.c w3 */
    const float *w_down;    /* (dim, n_ff)  llama2.c w2 */
} hr_layer_weights;

typedef struct {
    const float *tok_embd; /* (vocab, dim) */
    hr_layer_weights layers[HR_MAX_LAYERS];
    const float *out_norm; /* (dim) */
    const float *output;   /* (vocab, dim); == tok_embd when tied */
} hr_weights;

struct hr_model {
    hr_config cfg;
    hr_weights w;
    hr_format format;
    char source_dtype[32];
    hr_mapped_file file; /* keeps mmapped f32 weights alive (llama2.c) */
    struct hr_gguf *gguf; /* keeps mmapped f32 weights alive (GGUF) */
    void **owned;        /* buffers of dequantized weights */
    size_t n_owned, cap_owned;
};

/* Allocates an owned f32 buffer of n floats tracked by the model. */
float *hr_model_alloc_owned(hr_model *m, size_t n);

/* Checks the config for sane, overflow-free sizes (shared by all loaders). */
hr_status hr_config_validate(const hr_config *c);

hr_status hr_load_llama2c(hr_model *m);
hr_status hr_load_llama2c_q8(hr_model *m);
hr_status hr_load_gguf(hr_model *m, const char *path);
float hr_f16_to_f32(uint16_t h);
float hr_bf16_to_f32(uint16_t h);
/* Converts n values of a ggml type to f32 (dst holds n floats). */
hr_status hr_dequant_to_f32(uint32_t type, const void *src, float *dst, size_t n);
#endif
