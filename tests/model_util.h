/* Test helper: a copy of a model whose weights a test may change in place
 * (f32 rows of its own in every slot). A model built in memory holds its
 * matrices as panels (hr_model_own_panels), so the identity prune alone is
 * not writable: each matrix gets owned f32 rows, which the forward then
 * packs from (the panels become a stale source, model_internal.h). */
#ifndef HR_TEST_MODEL_UTIL_H
#define HR_TEST_MODEL_UTIL_H

#include <string.h>

#include "headroom/prune.h"
#include "model/model_internal.h"

static inline hr_model *hr_t_writable_copy(const hr_model *m) {
    hr_prune_spec *s = NULL;
    hr_model *c = NULL;
    if (hr_prune_spec_new(m, &s) == HR_OK) hr_prune_apply(m, s, &c);
    hr_prune_spec_free(s);
    if (!c) return NULL;
    const hr_config *cfg = &c->cfg;
    for (int l = -1; l < cfg->n_layers; l++)
        for (int k = l < 0 ? HR_SLOT_TOK_EMBD : 0; k < (l < 0 ? HR_N_SLOTS : HR_N_LAYER_SLOTS); k++) {
            const float **pp = hr_slot_ptr(&c->w, l < 0 ? 0 : l, (hr_slot)k);
            if (!pp || *pp || !hr_model_src(c, l, (hr_slot)k)) continue;
            if (k == HR_SLOT_OUTPUT && cfg->tied_classifier) continue;
            int64_t rows, cols;
            hr_slot_shape(cfg, l, (hr_slot)k, &rows, &cols);
            float *f = hr_model_alloc_owned(c, (size_t)(rows * cols)); // (rows, cols)
            if (!f || !hr_model_rows(c, l, (hr_slot)k, 0, (int)rows, f)) {
                hr_model_free(c);
                return NULL;
            }
            *pp = f;
        }
    if (cfg->tied_classifier) c->w.output = c->w.tok_embd;
    return c;
}

#endif
