/* Panel-packed weights of a model (engine layer): built once by the first
 * context and cached on the model. */
#ifndef HR_ENGINE_PACK_H
#define HR_ENGINE_PACK_H

#include "model/model_internal.h"
#include "engine/pool.h"

/* Panel-packed copies of the matrices the forward pass multiplies by (the
 * layout of hr_pack_panels in src/engine/kernels.h), NULL where the model
 * has no such matrix. The row-major weights stay for everything else
 * (analysis, surgery, writers). */
typedef struct {
    const float *wq, *wk, *wv, *wo, *w_gate, *w_up, *w_down;
} hr_layer_packed;

typedef struct hr_packed_weights {
    hr_layer_packed layers[HR_MAX_LAYERS];
    const float *output; /* (vocab, dim) classifier, packed */
    float *buf;          /* one allocation holding every panel */
    size_t n_floats;
} hr_packed_weights;

/* The model's packed matrices, packed on first use (in parallel on pool)
 * and kept until hr_model_free (which calls the free function the engine
 * registered on the model); safe to call from several threads. The
 * model's weights must not change afterwards (they never do: surgery
 * builds new models). *out is owned by the model. */
hr_status hr_model_packed(const hr_model *m, hr_pool *pool, const hr_packed_weights **out);

/* Packs weights that are not a model's own (a trainable copy, see
 * engine/grad/): *out owned by the caller, released with
 * hr_packed_weights_free (NULL ok). */
hr_status hr_pack_weights(const hr_config *c, const hr_weights *w, hr_pool *pool, hr_packed_weights **out);
void hr_packed_weights_free(hr_packed_weights *p);
/* Packs w again into pw's existing buffer (w of the shape pw was packed
 * from; HR_ERR_INVALID_ARG otherwise): a training loop's weights after each
 * update, without a fresh allocation (whose first touch of a 135M model's
 * 540 MB costs more than the packing on a virtual machine). */
hr_status hr_repack_weights(const hr_config *c, const hr_weights *w, hr_pool *pool, hr_packed_weights *pw);

#endif
