/* Panel-packed weight copies for the forward pass (see model_internal.h). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "engine/kernels.h"
#include "engine/pack.h"
#include "model/config.h"

enum { MAX_MATS = 7 * HR_MAX_LAYERS + 1, PANELS_PER_TASK = 64 };

typedef struct {
    const float *w; /* (rows, cols) row-major source */
    float *dst;     /* packed destination */
    int rows, cols;
    int first_task; /* index of this matrix's first task */
} pack_mat;

typedef struct {
    pack_mat mats[MAX_MATS];
    int n_mats, n_tasks;
} pack_job;

static void pack_task(void *vp, int i) {
    const pack_job *j = vp;
    int m = 0;
    while (m + 1 < j->n_mats && j->mats[m + 1].first_task <= i) m++;
    const pack_mat *pm = &j->mats[m];
    int n_panels = (pm->rows + 15) / 16, p0 = (i - pm->first_task) * PANELS_PER_TASK;
    int p1 = p0 + PANELS_PER_TASK < n_panels ? p0 + PANELS_PER_TASK : n_panels;
    hr_pack_panels(pm->dst, pm->w, pm->rows, pm->cols, p0, p1);
}

/* Sizing pass (base NULL): only advances *off. Filling pass: records the
 * matrix, its destination and its tasks. */
static void add_mat(pack_job *j, float *base, const float *w, int rows, int cols, const float **slot, size_t *off) {
    if (!w || rows <= 0 || cols <= 0) return;
    if (base) {
        pack_mat *pm = &j->mats[j->n_mats++];
        pm->w = w, pm->rows = rows, pm->cols = cols, pm->dst = base + *off;
        pm->first_task = j->n_tasks;
        j->n_tasks += ((rows + 15) / 16 + PANELS_PER_TASK - 1) / PANELS_PER_TASK;
        *slot = pm->dst;
    }
    *off += hr_packed_floats(rows, cols);
}

static size_t lay_out(const hr_config *c, const hr_weights *mw, pack_job *j, hr_packed_weights *pw, float *base) {
    size_t off = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const hr_layer_weights *w = &mw->layers[l];
        hr_layer_packed *p = &pw->layers[l];
        int qd = c->n_head[l] * c->head_dim, kvd = c->n_head_kv[l] * c->head_dim, ff = c->n_ff[l];
        if (qd > 0) {
            add_mat(j, base, w->wq, qd, c->dim, &p->wq, &off);
            add_mat(j, base, w->wk, kvd, c->dim, &p->wk, &off);
            add_mat(j, base, w->wv, kvd, c->dim, &p->wv, &off);
            add_mat(j, base, w->wo, c->dim, qd, &p->wo, &off);
        }
        if (ff > 0) {
            add_mat(j, base, w->w_gate, ff, c->dim, &p->w_gate, &off);
            add_mat(j, base, w->w_up, ff, c->dim, &p->w_up, &off);
            add_mat(j, base, w->w_down, c->dim, ff, &p->w_down, &off);
        }
    }
    add_mat(j, base, mw->output, c->vocab_size, c->dim, &pw->output, &off);
    return off;
}

hr_status hr_pack_weights(const hr_config *c, const hr_weights *w, hr_pool *pool, hr_packed_weights **out) {
    hr_packed_weights *pw = calloc(1, sizeof *pw);
    pack_job *j = calloc(1, sizeof *j);
    size_t n = 0;
    if (pw && j) {
        n = lay_out(c, w, j, pw, NULL);
        pw->buf = aligned_alloc(64, ((n * sizeof(float)) + 63) & ~(size_t)63);
    }
    if (!pw || !j || !pw->buf) {
        if (pw) free(pw->buf);
        free(pw), free(j);
        return hr_err(HR_ERR_NOMEM, "out of memory packing the weights (%zu MB)", n * sizeof(float) >> 20);
    }
    pw->n_floats = lay_out(c, w, j, pw, pw->buf);
    hr_pool_run(pool, pack_task, j, j->n_tasks);
    free(j);
    *out = pw;
    return HR_OK;
}

hr_status hr_repack_weights(const hr_config *c, const hr_weights *w, hr_pool *pool, hr_packed_weights *pw) {
    pack_job *j = calloc(1, sizeof *j);
    if (!j) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_packed_weights again = {0};
    size_t n = lay_out(c, w, j, &again, NULL);
    if (n != pw->n_floats) {
        free(j);
        return hr_err(HR_ERR_INVALID_ARG, "repacking weights of another shape (%zu floats, packed %zu)", n,
                      pw->n_floats);
    }
    lay_out(c, w, j, pw, pw->buf);
    hr_pool_run(pool, pack_task, j, j->n_tasks);
    free(j);
    return HR_OK;
}

void hr_packed_weights_free(hr_packed_weights *p) {
    if (!p) return;
    free(p->buf);
    free(p);
}

static void packed_free(void *vp) { hr_packed_weights_free(vp); }

hr_status hr_model_packed(const hr_model *m, hr_pool *pool, const hr_packed_weights **out) {
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    hr_status st = HR_OK;
    pthread_mutex_lock(&lock);
    hr_model *mm = (hr_model *)m; /* the cache is not part of the model's value */
    if (!mm->packed) {
        hr_packed_weights *pw = NULL;
        st = hr_pack_weights(&m->cfg, &m->w, pool, &pw);
        if (st == HR_OK) {
            mm->packed = pw;
            mm->packed_free = packed_free;
        }
    }
    *out = mm->packed;
    pthread_mutex_unlock(&lock);
    return st;
}
