/* Internal view of hr_model shared by library modules (context, analysis,
 * pruning). Weights are f32, row-major (n_out, n_in), read-only — except
 * that the weight matrices of GGUF and safetensors files in f32, bf16, f16
 * or Q8_0 stay in the file (memory-mapped, typed sources: hr_mat_src) and
 * their f32 pointers are NULL until something calls hr_model_need_f32 —
 * and that a model built in memory holds its matrices as panels of its own
 * (hr_model_own_panels; f32 pointers NULL likewise). The forward pass
 * never converts: it packs from the typed sources or uses the panels in
 * place (engine/pack.c) and looks embeddings up row by row
 * (hr_model_embed_row). */
#ifndef HR_MODEL_INTERNAL_H
#define HR_MODEL_INTERNAL_H

#include "headroom/model.h"
#include "model/config.h"
#include "core/internal.h"
#include "core/limits.h"
#include "formats/dtype.h"
#include "formats/panels.h"

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

/* A weight matrix in its file's number format, memory-mapped: row r (in
 * headroom's interleaved Q/K order) is stored at data + src_row(r) *
 * row_bytes, src_row(r) = r, or when perm_heads > 0 (rotate-half Q/K rows
 * of perm_heads heads) h * head_dim + hr_qk_rotate_half_src(r % head_dim)
 * for h = r / head_dim. data NULL: no typed source (the f32 pointer is the
 * weight: an owned conversion or an f32 surgery result). owned: data is a
 * buffer the model owns (a typed surgery result, study/prune/build.c; an
 * HF GPT-2's bf16 / f16 Conv1D matrix transposed at load), not pages of a
 * mapped file — nobody may release its pages. HR_WT_I8 rows
 * are d_in int8 with scale[stored row] beside them. panels: data is not
 * rows but the matrix packed in its dtype (formats/panels.h: the layout
 * the forward multiplies by, used in place by engine/pack.c), owned by
 * the model, perm_heads 0, scale NULL (int8 panels hold their scales);
 * row_bytes is still one row's bytes in the file encoding. Read rows of
 * any source through hr_mat_src_row / hr_mat_src_raw_row, never data. */
typedef struct {
    const void *data;
    size_t row_bytes;
    hr_wtype type;
    int perm_heads;
    const float *f32; /* the rows hr_model_need_f32 made from it, or NULL */
    bool owned;
    const float *scale; /* (stored rows) HR_WT_I8 only: each stored row's scale (owned by the model) */
    bool panels;        /* data is owned panels (hr_model_own_panels), not rows */
} hr_mat_src;


/* Stored row (index into data) of headroom row `row` of a typed source. */
static inline size_t hr_mat_src_stored_row(const hr_mat_src *s, int head_dim, int row) {
    if (!s->perm_heads) return (size_t)row;
    return (size_t)(row / head_dim * head_dim + hr_qk_rotate_half_src(row % head_dim, head_dim));
}

enum { HR_N_SLOTS = 24 }; /* hr_slot values, HR_SLOT_OUTPUT + 1 */

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
    void **owned;      /* buffers of dequantized weights */
    size_t *owned_n;   /* (cap_owned) their sizes in bytes */
    size_t *owned_map; /* (cap_owned) hr_map_anon's size for a mapped one, 0 for malloc's */
    size_t n_owned, cap_owned;
    size_t owned_bytes;
    hr_mat_src *src;  /* (n_layers + 1, HR_N_SLOTS) typed sources; row n_layers: model-level slots; may be NULL */
    int f32_ready;    /* hr_model_need_f32 has run */
    int src_released; /* the mapped pages of the sources were released after packing */
    int64_t requantized_rows; /* Q8_0 rows a typed surgery re-quantized (study/prune/build.c) */
    /* Built and owned by the engine (src/engine/pack.c), freed with the
     * model through packed_free: the model layer does not know its type. */
    void *packed;
    void (*packed_free)(void *packed);
    size_t packed_bytes;
    int packed_users; /* contexts and parameter sets holding packed (engine/pack.c, under hr_model_packed_lock) */
};

/* The one lock of every model's packed, packed_bytes and packed_users:
 * the engine packs and counts holders under it, hr_model_weight_bytes
 * reads under it. */
void hr_model_packed_lock(void);
void hr_model_packed_unlock(void);

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
_Static_assert(HR_SLOT_OUTPUT + 1 == HR_N_SLOTS, "HR_N_SLOTS counts the slots");

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
/* The matrices the forward multiplies by as panels: each layer's Q K V O
 * gate up down, in the order engine/pack.c lays them out, then the
 * classifier (the embedding when tied). The one list for the packer, the
 * model's own panels (hr_model_own_panels, hr_model_weight_bytes) and the
 * loaders (io/load.c). */
enum { HR_N_PACKED_LAYER_SLOTS = 7 };
extern const hr_slot hr_packed_layer_slots[HR_N_PACKED_LAYER_SLOTS];
/* Is (layer, s) one of them (layer -1: the model slots)? Whether this
 * model has the weight is hr_slot_expected's question. */
bool hr_slot_packed(const hr_config *c, int layer, hr_slot s);

/* One present weight tensor, GGUF-named, f32 row-major (rows, cols);
 * data is NULL for a matrix kept typed until hr_model_need_f32 ran. */
typedef struct {
    char name[64];
    int64_t rows, cols;
    int n_dims; /* 1 for vectors (rows = 1), else 2 */
    const float *data;
    int layer;     /* -1 for global tensors */
    hr_slot wslot; /* its weight slot (hr_model_src(m, layer, wslot): the typed source when data is NULL) */
} hr_tensor_ref;

/* Lists the model's present tensors in canonical order into out (up to
 * cap); returns how many there are. out may be NULL with cap 0. */
int hr_model_tensors(const hr_model *m, hr_tensor_ref *out, int cap);

/* Records the typed source of a matrix slot (layer -1: a model-level slot). */
hr_status hr_model_set_src(hr_model *m, int layer, hr_slot s, hr_mat_src src);
/* The typed source of a slot, or NULL when it has none — or when the
 * slot's f32 pointer was replaced by something else than the source's own
 * floats or its hr_model_need_f32 rows (a stale source). The tied
 * classifier's is the embedding's. */
const hr_mat_src *hr_model_src(const hr_model *m, int layer, hr_slot s);
/* Converts row `row` of a typed source (cols values) into out. */
void hr_mat_src_row(const hr_mat_src *s, int head_dim, int row, int cols, float *out);
/* Row `row` (headroom's order) of a typed source in its file encoding
 * (s->row_bytes bytes) into raw; HR_WT_I8: *scale its scale (scale may be
 * NULL for the other types). */
void hr_mat_src_raw_row(const hr_mat_src *s, int head_dim, int row, int cols, void *raw, float *scale);
/* The embedding of token tok (dim floats) into out, from the f32 rows or
 * converted from the typed source. */
void hr_model_embed_row(const hr_model *m, int tok, float *out);
/* Rows [r0, r0 + n) of matrix slot s of `layer` (-1 for the model-level
 * slots; the tied classifier reads the embedding) as f32: a pointer into
 * the model's own f32 rows when it has them, else those rows converted
 * from the typed source into buf (n * cols floats, caller-owned) — the
 * floats hr_model_need_f32 would make, one row at a time, without
 * converting the model. NULL when the model has no such matrix. */
const float *hr_model_rows(const hr_model *m, int layer, hr_slot s, int r0, int n, float *buf);
/* The whole matrix slot s of `layer` as f32 rows (*rows): the model's own
 * (*owned NULL), or converted from its typed source into a new buffer
 * (*owned = *rows; the caller frees it) — memory for one matrix, not the
 * model; the source's mapped pages are given back after.
 * HR_ERR_INVALID_ARG when the model has no such matrix, HR_ERR_NOMEM when
 * the buffer cannot be allocated. */
hr_status hr_model_matrix_f32(const hr_model *m, int layer, hr_slot s, const float **rows, float **owned);
/* Gives back the pages of a typed source read through hr_model_rows (a
 * mapped file's: they leave the process's resident memory, re-read from
 * the file if asked again); no-op for f32 rows and owned buffers.
 * hr_model_matrix_f32 does this itself. */
void hr_model_release_rows(const hr_model *m, int layer, hr_slot s);
/* Makes every f32 weight pointer valid: converts the matrices kept typed
 * into owned f32 rows (once; thread-safe). Costs their f32 memory: only
 * code that needs f32 rows calls it (analysis of weights, surgery,
 * writers, training), never the forward pass. */
hr_status hr_model_need_f32(const hr_model *m);

/* One copy of each matrix of a model built in memory (surgery, GQA,
 * training; loaders' conversions): every matrix the forward multiplies by
 * that the model holds as rows in a buffer of its own (f32 rows, or typed
 * rows of a typed source) is packed into owned panels of its dtype
 * (panels sources) and the rows are freed; its f32 pointer becomes NULL,
 * as for a matrix kept typed in a file. Contexts then use the panels in
 * place, and rows come back through hr_model_rows, hr_mat_src_raw_row and
 * hr_model_need_f32. Matrices in a mapped file, shared buffers (a fused
 * QKV) and models whose f32 rows were asked for (hr_model_need_f32) are
 * left as they are. Only for a model nobody else uses yet (its builder's);
 * HR_ERR_NOMEM leaves the model valid, partly converted. */
hr_status hr_model_own_panels(hr_model *m);

/* Allocates an owned f32 buffer of n floats tracked by the model. */
float *hr_model_alloc_owned(hr_model *m, size_t n);
/* Allocates an owned buffer of n bytes (typed rows, panels) tracked by
 * the model, 64-byte aligned. */
void *hr_model_alloc_owned_bytes(hr_model *m, size_t n);
/* Frees an owned buffer (as returned by hr_model_alloc_owned*) before the
 * model goes; false when buf is not one. */
bool hr_model_free_owned(hr_model *m, const void *buf);

/* Checks the config for sane, overflow-free sizes (shared by all loaders). */
hr_status hr_config_validate(const hr_config *c);

#endif
