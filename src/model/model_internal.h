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
    const float *tok_embd; /* (vocab, dim) */
    const float *pos_embd; /* (seq_len, dim) learned positions only */
    hr_layer_weights layers[HR_MAX_LAYERS];
    const float *out_norm;   /* (dim) */
    const float *out_norm_b; /* (dim) LayerNorm only */
    const float *output;     /* (vocab, dim); == tok_embd when tied */
} hr_weights;

struct hr_model {
    hr_config cfg;
    hr_weights w;
    hr_format format;
    char source_dtype[32]; /* the dtype of most matrix parameters (hr_model_note_dtype) */
    struct {
        char name[16];  /* "bf16", "q8_0", ... */
        int64_t params; /* matrix parameters stored in it */
    } dtypes[8];        /* (n_dtypes) in the order loaders met them */
    int n_dtypes;
    hr_mapped_file file;            /* keeps mmapped f32 weights alive (llama2.c) */
    struct hr_gguf *gguf;           /* keeps mmapped f32 weights alive (GGUF) */
    struct hr_safetensors **shards; /* keep mmapped f32 weights alive (HF) */
    size_t n_shards;
    void **owned; /* buffers of dequantized weights */
    size_t n_owned, cap_owned;
    /* Built and owned by the engine (src/engine/pack.c), freed with the
     * model through packed_free: the model layer does not know its type. */
    void *packed;
    void (*packed_free)(void *packed);
};

/* Loaders report each tensor they read: its stored dtype, its values and
 * whether it is a matrix. source_dtype becomes the dtype holding most matrix
 * parameters (ties: the one met first); until a matrix is seen, the first
 * tensor's. */
void hr_model_note_dtype(hr_model *m, const char *dtype, int64_t n, bool matrix);

/* Weight slots: the layer's in canonical (GGUF listing) order, then
 * stacked Q/K/V of fused checkpoints, then the model-level ones. */
typedef enum {
    HR_SLOT_ATTN_NORM = 0,
    HR_SLOT_ATTN_NORM_B,
    HR_SLOT_Q,
    HR_SLOT_Q_B,
    HR_SLOT_K,
    HR_SLOT_K_B,
    HR_SLOT_V,
    HR_SLOT_V_B,
    HR_SLOT_O,
    HR_SLOT_O_B,
    HR_SLOT_FFN_NORM,
    HR_SLOT_FFN_NORM_B,
    HR_SLOT_GATE,
    HR_SLOT_UP,
    HR_SLOT_UP_B,
    HR_SLOT_DOWN,
    HR_SLOT_DOWN_B,
    HR_N_LAYER_SLOTS,
    HR_SLOT_QKV = HR_N_LAYER_SLOTS, /* Q, K, V rows stacked (GPT-2's c_attn, GGUF attn_qkv) */
    HR_SLOT_QKV_B,                  /* their biases, stacked */
    HR_SLOT_TOK_EMBD,
    HR_SLOT_POS_EMBD,
    HR_SLOT_OUT_NORM,
    HR_SLOT_OUT_NORM_B,
    HR_SLOT_OUTPUT
} hr_slot;

/* GGUF name of a slot ("attn_q.weight", "token_embd.weight"; layer slots
 * without the "blk.N." part). */
const char *hr_slot_gguf_name(hr_slot s);
/* Shape of a slot in headroom's layout (rows, cols); vectors have rows 1.
 * QKV: (q + 2 kv rows, dim); QKV_B: (1, q + 2 kv). */
void hr_slot_shape(const hr_config *c, int layer, hr_slot s, int64_t *rows, int64_t *cols);
/* Does a model of config c have this weight (layer sizes and architecture
 * traits: biases, LayerNorm, SwiGLU, learned positions, tied classifier)? */
bool hr_slot_expected(const hr_config *c, int layer, hr_slot s);
/* Where the slot's pointer lives (layer slots of `layer`, model slots);
 * NULL for the stacked QKV pseudo-slots. */
const float **hr_slot_ptr(hr_weights *w, int layer, hr_slot s);

/* One present weight tensor, GGUF-named, f32 row-major (rows, cols). */
typedef struct {
    char name[64];
    int64_t rows, cols;
    int n_dims; /* 1 for vectors (rows = 1), else 2 */
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
