/* Helpers shared by the surgery modules (prune, gqa): building a new model
 * whose weights are owned copies of (parts of) another model's. */
#ifndef HR_SURGERY_INTERNAL_H
#define HR_SURGERY_INTERNAL_H

#include "model/model_internal.h"

/* A model with config c (validated) and no weights yet; format and source
 * dtype copied from src. Global tensors (embeddings, final norm,
 * classifier) are copied from src, which must have the same dim, vocab and
 * seq_len. *out owned by caller. */
hr_status hr_surgery_new_model(const hr_model *src, const hr_config *c, hr_model **out);

/* Owned copy of n floats of src (NULL src gives NULL). Sets *ok = false on
 * allocation failure. */
const float *hr_surgery_copy(hr_model *m, const float *src, size_t n, bool *ok);

/* Owned (n_rows, cols) matrix whose row i is row rows[i] of src (src_cols
 * wide); NULL src gives NULL. */
const float *hr_surgery_rows(hr_model *m, const float *src, int cols, const int *rows, int n_rows, bool *ok);

/* Owned (n_rows_total, n_cols) matrix whose column j is column cols[j] of
 * src (n_rows_total, src_cols). */
const float *hr_surgery_cols(hr_model *m, const float *src, int n_rows_total, int src_cols, const int *cols,
                             int n_cols, bool *ok);
#endif
