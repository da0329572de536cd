/* Helpers shared by the surgery modules (prune, gqa): building a new model
 * whose weights are owned copies of (parts of) another model's. */
#ifndef HR_SURGERY_INTERNAL_H
#define HR_SURGERY_INTERNAL_H

#include "model/model_internal.h"
#include "headroom/prune.h"

/* What to remove (opaque hr_prune_spec of headroom/prune.h). Arrays are
 * indexed by the base model's layers. */
struct hr_prune_spec {
    int n_layers;
    int n_head[HR_MAX_LAYERS], n_ff[HR_MAX_LAYERS]; /* the base model's sizes */
    uint8_t *keep_head[HR_MAX_LAYERS];              /* (n_head[l]) 1 = keep query head; owned by the spec */
    uint8_t *keep_ff[HR_MAX_LAYERS];                /* (n_ff[l]) 1 = keep neuron; owned by the spec */
    bool drop_attn[HR_MAX_LAYERS];                  /* remove the attention sublayer */
    bool drop_mlp[HR_MAX_LAYERS];                   /* remove the MLP sublayer */
    bool drop_block[HR_MAX_LAYERS];                 /* remove the whole layer */
    bool uneven_duplicate;                          /* make uneven KV groups even by duplicating K/V rows */
};

/* A spec that keeps everything of m. *out owned by caller: hr_prune_spec_free(). */
hr_status hr_prune_spec_new(const hr_model *m, hr_prune_spec **out);
void hr_prune_spec_free(hr_prune_spec *s); /* NULL ok */


/* A model with config c (validated) and no weights yet; format and source
 * dtype copied from src. Global tensors (embeddings, final norm,
 * classifier) are copied from src, which must have the same dim, vocab and
 * seq_len; typed embeddings / classifier stay typed (hr_surgery_rows_any).
 * *out owned by caller. */
hr_status hr_surgery_new_model(const hr_model *src, const hr_config *c, hr_model **out);

/* Owned copy of n floats of src (NULL src gives NULL). Sets *ok = false on
 * allocation failure. */
const float *hr_surgery_copy(hr_model *m, const float *src, size_t n, bool *ok);

/* Owned (n_rows, cols) matrix whose row i is row rows[i] of src (src_cols
 * wide); NULL src gives NULL. */
const float *hr_surgery_rows(hr_model *m, const float *src, int cols, const int *rows, int n_rows, bool *ok);

/* Owned (n_rows_total, n_cols) matrix whose column j is column cols[j] of
 * src (n_rows_total, src_cols). */
const float *hr_surgery_cols(hr_model *m, const float *src, int n_rows_total, int src_cols, const int *cols, int n_cols,
                             bool *ok);

/* hr_surgery_rows / hr_surgery_cols of slot s of src's layer sl (-1: a
 * model-level slot) into slot s of dst's layer dl. A slot with f32 rows:
 * the f32 result is returned (rows NULL: every row, a copy). A slot kept
 * typed (f32 pointer NULL, a typed source; model_internal.h): no f32 copy;
 * the result becomes dst's typed source of the slot, an owned buffer in the
 * same dtype, rows in headroom's order (perm_heads 0), and NULL is
 * returned. Rows and bf16 / f16 / f32 / int8 columns are copied exactly
 * (int8 rows keep their scale; int8 rows whose new length is not a
 * multiple of 32 become f32, scale * q); Q8_0
 * columns that are whole 32-blocks copy blocks, others dequantize the row,
 * drop the columns and re-quantize it (counted in dst->requantized_rows; hr_quantize_q8_0: the bytes the
 * GGUF writer makes of today's f32 result), or keep it f32 when the new
 * row length is not a multiple of 32. Sets *ok = false on allocation
 * failure. */
const float *hr_surgery_rows_any(hr_model *dst, int dl, const hr_model *src, int sl, hr_slot s, int cols,
                                 const int *rows, int n_rows, bool *ok);
const float *hr_surgery_cols_any(hr_model *dst, int dl, const hr_model *src, int sl, hr_slot s, int n_rows,
                                 int src_cols, const int *cols, int n_cols, bool *ok);
#endif
