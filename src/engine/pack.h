/* Panel-packed weights of a model (engine layer): built once by the first
 * context and cached on the model. */
#ifndef HR_ENGINE_PACK_H
#define HR_ENGINE_PACK_H

#include "model/model_internal.h"
#include "engine/kernels.h"
#include "engine/pool.h"

/* Panel-packed copies of the matrices the forward pass multiplies by (the
 * layout of hr_pack_panels_t in src/formats/panels.h), each in its own
 * number format (a model's typed sources keep theirs: bf16, f16, Q8_0;
 * f32 rows pack as f32); p NULL where the model has no such matrix. The
 * mapped pages of typed sources are released after packing (read again
 * from the file if something asks for them: hr_model_need_f32, the
 * embedding lookup); row-major f32 that the model owns stays. A matrix the
 * model holds as panels of its own (a model built in memory:
 * hr_model_own_panels) is not copied: its hr_panels point at the model's. */
typedef struct {
    hr_panels wq, wk, wv, wo, w_gate, w_up, w_down;
} hr_layer_packed;

typedef struct hr_packed_weights {
    hr_layer_packed layers[HR_MAX_LAYERS];
    hr_panels output; /* (vocab, dim) classifier, packed */
    void *buf;        /* one allocation holding every panel (hr_map_anon) */
    size_t n_bytes;   /* the panels' bytes */
    size_t map_bytes; /* the allocation's size (hr_unmap_anon) */
} hr_packed_weights;

/* The model's packed matrices, packed on first use (in parallel on pool,
 * layer by layer, from its typed sources where it has them)
 * and kept until hr_model_free (which calls the free function the engine
 * registered on the model); safe to call from several threads. The
 * model's weights must not change afterwards (they never do: surgery
 * builds new models). *out is owned by the model. */
hr_status hr_model_packed(const hr_model *m, hr_pool *pool, const hr_packed_weights **out);
/* Each successful hr_model_packed is one holder of the panels (a context,
 * a parameter set); the holder lets go with hr_model_packed_release. */
void hr_model_packed_release(const hr_model *m);
/* hr_model_packed for a holder that keeps the panels in *slot: packs and
 * becomes a holder only when *slot is NULL, all under the panels' lock, so
 * several threads sharing one holder count it once. */
hr_status hr_model_packed_hold(const hr_model *m, hr_pool *pool, const hr_packed_weights **slot);
/* Frees the model's panels when nobody holds them (the next
 * hr_model_packed packs again, from the mapped file): a study that
 * calibrated on the model and now builds a new one from it gives the
 * memory back first. Whether they were freed. */
bool hr_model_packed_drop_unused(const hr_model *m);

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
