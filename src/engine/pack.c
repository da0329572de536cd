/* Panel-packed weights for the forward pass (see pack.h): each matrix
 * packed once, in its own number format, from the model's typed source in
 * the mapped file (whose pages are then released) or from its f32 rows;
 * matrices the model holds as panels (hr_model_own_panels) are used in
 * place. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "engine/kernels.h"
#include "engine/pack.h"
#include "model/config.h"

enum { MAX_MATS = HR_N_PACKED_LAYER_SLOTS * HR_MAX_LAYERS + 1, PANELS_PER_TASK = 64 };

typedef struct {
    hr_mat_src src;     /* row-major source in its file encoding */
    unsigned char *dst; /* packed destination */
    int rows, cols;
    int first_task; /* index of this matrix's first task */
    int layer;      /* -1: the classifier */
    bool mapped;    /* a typed source of the model, in its mapped file (not an owned surgery result) */
} pack_mat;

typedef struct {
    pack_mat mats[MAX_MATS];
    int n_mats, n_tasks;
    int head_dim;
    int m0, t0; /* the batch being packed: its first matrix and task */
} pack_job;

static void pack_task(void *vp, int i) {
    const pack_job *j = vp;
    i += j->t0;
    int m = j->m0;
    while (m + 1 < j->n_mats && j->mats[m + 1].first_task <= i) m++;
    const pack_mat *pm = &j->mats[m];
    int n_panels = (pm->rows + 15) / 16, p0 = (i - pm->first_task) * PANELS_PER_TASK;
    int p1 = p0 + PANELS_PER_TASK < n_panels ? p0 + PANELS_PER_TASK : n_panels;
    hr_pack_panels_t(pm->src.type, pm->dst, pm->src.data, pm->src.scale, pm->src.row_bytes, pm->src.perm_heads,
                     j->head_dim, pm->rows, pm->cols, p0, p1);
}

/* The source of one matrix: the model's typed one, else its f32 rows. */
typedef struct {
    hr_mat_src src;
    bool mapped;
} source;
static source source_of(const hr_model *m, const float *w, int layer, hr_slot s, int cols) {
    const hr_mat_src *ts = m ? hr_model_src(m, layer, s) : NULL;
    source r = {{w, (size_t)cols * sizeof(float), HR_WT_F32, 0, NULL, false, NULL, false}, ts != NULL && !ts->owned};
    if (ts) r.src = *ts;
    return r;
}

/* Sizing pass (base NULL): only advances *off. Filling pass: records the
 * matrix, its destination and its tasks. */
static void add_mat(pack_job *j, unsigned char *base, source so, int rows, int cols, int layer, hr_panels *slot,
                    size_t *off) {
    hr_mat_src src = so.src;
    if (!src.data || rows <= 0 || cols <= 0) return;
    if (src.panels) { /* the model holds this matrix as panels already: used in place */
        if (base) slot->p = src.data, slot->t = src.type;
        return;
    }
    if (base) {
        pack_mat *pm = &j->mats[j->n_mats++];
        pm->src = src, pm->rows = rows, pm->cols = cols, pm->dst = base + *off, pm->layer = layer;
        pm->mapped = so.mapped;
        pm->first_task = j->n_tasks;
        j->n_tasks += ((rows + 15) / 16 + PANELS_PER_TASK - 1) / PANELS_PER_TASK;
        slot->p = pm->dst, slot->t = src.type;
    }
    *off += (hr_packed_bytes(src.type, rows, cols) + 63) & ~(size_t)63; /* each matrix 64-byte aligned */
}

/* Where a packed layer slot's panels go. */
static hr_panels *panels_of(hr_layer_packed *p, hr_slot s) {
    switch (s) {
    case HR_SLOT_Q: return &p->wq;
    case HR_SLOT_K: return &p->wk;
    case HR_SLOT_V: return &p->wv;
    case HR_SLOT_O: return &p->wo;
    case HR_SLOT_GATE: return &p->w_gate;
    case HR_SLOT_UP: return &p->w_up;
    default: return &p->w_down;
    }
}

/* The matrices of hr_packed_layer_slots that the model has, layer by
 * layer, then the classifier. */
static size_t lay_out(const hr_config *c, const hr_weights *mw, const hr_model *m, pack_job *j, hr_packed_weights *pw,
                      unsigned char *base) {
    size_t off = 0;
    for (int l = 0; l < c->n_layers; l++)
        for (int i = 0; i < HR_N_PACKED_LAYER_SLOTS; i++) {
            hr_slot s = hr_packed_layer_slots[i];
            if (!hr_slot_expected(c, l, s)) continue;
            int64_t rows, cols;
            hr_slot_shape(c, l, s, &rows, &cols);
            const float *w = *hr_slot_ptr((hr_weights *)mw, l, s);
            add_mat(j, base, source_of(m, w, l, s, (int)cols), (int)rows, (int)cols, l, panels_of(&pw->layers[l], s),
                    &off);
        }
    add_mat(j, base, source_of(m, mw->output, -1, HR_SLOT_OUTPUT, c->dim), c->vocab_size, c->dim, -1, &pw->output,
            &off);
    return off;
}

/* Packs layer by layer; after each layer the mapped pages of its typed
 * sources are released, so the file's pages and the panels are not both
 * resident (only the model's own typed sources: others are not mapped). */
static hr_status pack(const hr_config *c, const hr_weights *w, const hr_model *m, hr_pool *pool,
                      hr_packed_weights **out) {
    hr_packed_weights *pw = calloc(1, sizeof *pw);
    pack_job *j = calloc(1, sizeof *j);
    size_t n = 0;
    if (pw && j) {
        n = lay_out(c, w, m, j, pw, NULL);
        pw->map_bytes = n + 64;
        pw->buf = hr_map_anon(&pw->map_bytes, true); /* filled in up front, not faulted page by page */
    }
    if (!pw || !j || !pw->buf) {
        free(pw), free(j);
        return hr_err(HR_ERR_NOMEM, "out of memory packing the weights (%zu MB)", n >> 20);
    }
    pw->n_bytes = lay_out(c, w, m, j, pw, pw->buf);
    j->head_dim = c->head_dim;
    for (int m0 = 0; m0 < j->n_mats;) {
        int m1 = m0;
        while (m1 < j->n_mats && j->mats[m1].layer == j->mats[m0].layer) m1++;
        int t1 = m1 < j->n_mats ? j->mats[m1].first_task : j->n_tasks;
        j->m0 = m0, j->t0 = j->mats[m0].first_task;
        for (int i = m0; i < m1; i++) /* the layer's file pages in one call each, not a fault a page */
            if (j->mats[i].mapped) hr_prefault_pages(j->mats[i].src.data, j->mats[i].src.row_bytes * j->mats[i].rows);
        hr_pool_run(pool, pack_task, j, t1 - j->t0);
        for (int i = m0; i < m1; i++)
            if (j->mats[i].mapped) hr_release_pages(j->mats[i].src.data, j->mats[i].src.row_bytes * j->mats[i].rows);
        m0 = m1;
    }
    free(j);
    *out = pw;
    return HR_OK;
}

hr_status hr_pack_weights(const hr_config *c, const hr_weights *w, hr_pool *pool, hr_packed_weights **out) {
    return pack(c, w, NULL, pool, out);
}


hr_status hr_repack_weights(const hr_config *c, const hr_weights *w, hr_pool *pool, hr_packed_weights *pw) {
    pack_job *j = calloc(1, sizeof *j);
    if (!j) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_packed_weights again = {0};
    size_t n = lay_out(c, w, NULL, j, &again, NULL);
    if (n != pw->n_bytes) {
        free(j);
        return hr_err(HR_ERR_INVALID_ARG, "repacking weights of another shape (%zu bytes, packed %zu)", n, pw->n_bytes);
    }
    lay_out(c, w, NULL, j, pw, pw->buf);
    j->head_dim = c->head_dim;
    hr_pool_run(pool, pack_task, j, j->n_tasks);
    free(j);
    return HR_OK;
}

static hr_status hr_pack_weights_of(const hr_model *m, hr_pool *pool, hr_packed_weights **out) {
    return pack(&m->cfg, &m->w, m, pool, out);
}

void hr_packed_weights_free(hr_packed_weights *p) {
    if (!p) return;
    hr_unmap_anon(p->buf, p->map_bytes);
    free(p);
}

static void packed_free(void *vp) { hr_packed_weights_free(vp); }

/* The model's panels (packed on first use), one more holder; the lock held. */
static hr_status packed_locked(const hr_model *m, hr_pool *pool, const hr_packed_weights **out) {
    hr_status st = HR_OK;
    hr_model *mm = (hr_model *)m; /* the cache is not part of the model's value */
    if (!mm->packed) {
        hr_packed_weights *pw = NULL;
        st = hr_pack_weights_of(m, pool, &pw);
        if (st == HR_OK) {
            mm->packed = pw;
            mm->packed_free = packed_free;
            mm->packed_bytes = pw->n_bytes;
        }
    }
    if (st == HR_OK) mm->packed_users++;
    *out = mm->packed;
    return st;
}

hr_status hr_model_packed(const hr_model *m, hr_pool *pool, const hr_packed_weights **out) {
    hr_model_packed_lock();
    hr_status st = packed_locked(m, pool, out);
    hr_model_packed_unlock();
    return st;
}

hr_status hr_model_packed_hold(const hr_model *m, hr_pool *pool, const hr_packed_weights **slot) {
    hr_model_packed_lock();
    hr_status st = *slot ? HR_OK : packed_locked(m, pool, slot);
    hr_model_packed_unlock();
    return st;
}

void hr_model_packed_release(const hr_model *m) {
    hr_model_packed_lock();
    hr_model *mm = (hr_model *)m;
    if (mm->packed_users > 0) mm->packed_users--;
    hr_model_packed_unlock();
}

bool hr_model_packed_drop_unused(const hr_model *m) {
    hr_model_packed_lock();
    hr_model *mm = (hr_model *)m;
    bool drop = mm->packed && mm->packed_users == 0;
    if (drop) {
        mm->packed_free(mm->packed);
        mm->packed = NULL;
        mm->packed_free = NULL;
        mm->packed_bytes = 0;
    }
    hr_model_packed_unlock();
    return drop;
}
