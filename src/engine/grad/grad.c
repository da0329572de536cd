/* The gradient engine: a training forward over one window that keeps its
 * activations (llama2.c's RunState, per layer), then the backward pass from
 * the cross-entropy down to whatever the selected tensors need. */
#include "engine/grad/grad_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/grad/grad_kernels.h"
#include "engine/kernels.h"

/* Fixed work blocks: results never depend on them, only the load balance. */
enum { ROWS_PER_TASK = 8, ATT_CHUNK = 32, KEY_CHUNK = 64 };

/* Activations of one layer kept for its backward (n = tokens of the window;
 * widths are this layer's: qd = n_head*hd, kvd = n_head_kv*hd, ff = n_ff). */
typedef struct {
    float *xb;                    /* (n, dim) normed attention input */
    float *q;                     /* (n, qd) queries after bias, LoRA and RoPE */
    float *kt;                    /* (nkv, hd, ldk) keys after RoPE, transposed */
    float *vt;                    /* (nkv, hd, ldk) values, transposed */
    float *p;                     /* (nh, cap, ldp) attention probabilities: the shared g->prob, recomputed in
                                     the backward (rows s <= t written) */
    float *o;                     /* (n, qd) head outputs before the gates */
    float *xm;                    /* (n, dim) residual after the attention sublayer */
    float *xb2;                   /* (n, dim) normed MLP input */
    float *hg;                    /* (n, ff) SwiGLU gate pre-activation */
    float *hu;                    /* (n, ff) up projection (GELU: its pre-activation, bias included) */
    float *ha;                    /* (n, ff) hidden activation before the neuron gates */
    float *lu[HR_LORA_N_TARGETS]; /* (n, r) adapter bottlenecks (alpha/r) A x, or NULL */
} layer_acts;

struct hr_grad {
    hr_params *P;
    const hr_config *c;
    hr_grad_params gp;
    hr_pool *pool;
    bool own_pool;
    int max_tokens;
    int qd_max, kvd_max, ff_max, nh_max, lora_w; /* widest layer; widest adapter side */
    float **grad;                                /* (n_tensors) gradient buffers; NULL = not selected */
    /* What the backward must produce, from the selection. */
    bool attn_sel[HR_MAX_LAYERS], attn_inner[HR_MAX_LAYERS]; /* some attention parameter / one before Wo */
    bool mlp_sel[HR_MAX_LAYERS], mlp_inner[HR_MAX_LAYERS];   /* some MLP parameter / one before W_down */
    bool below[HR_MAX_LAYERS + 1]; /* gradients needed under the input of layer l (l = L: of the classifier) */
    bool embd_sel;
    /* Activations the backward reads only for weight gradients: kept per layer
     * when those are selected, else written to one shared scratch. */
    bool keep_xb[HR_MAX_LAYERS], keep_xb2[HR_MAX_LAYERS], keep_ha[HR_MAX_LAYERS];
    /* Window buffers for up to cap tokens. */
    int cap, ldp; /* ldp: row stride of probability / score rows and of transposed keys / values */
    int n_acts;
    layer_acts *acts;           /* (n_layers), or (1) reused by every layer with recompute */
    float *xin;                 /* (n_layers + 1, cap, dim) residual entering each layer; [L] leaves the last */
    float *xf;                  /* (cap, dim) final normed hidden state */
    float *logits;              /* (cap, vocab) logits, then their gradient */
    double *row_nll;            /* (cap) */
    float *rope_cos, *rope_sin; /* (cap, hd/2) */
    float *kbuf, *vbuf;         /* (cap, kvd_max) new keys / values, row-major */
    float *att;                 /* (cap, qd_max) gated head outputs */
    float *proj;                /* (cap, dim) sublayer output */
    float *hgated;              /* (cap, ff_max) gated hidden activation */
    float *xtmp;                /* (cap, dim) layer output when recomputing */
    float *xs;                  /* (cap, dim) normed sublayer inputs not kept */
    float *prob;                /* (nh_max, cap, ldp) attention probabilities of the layer being computed */
    float *has;                 /* (cap, ff_max) hidden activations not kept */
    float *dx;                  /* (cap, dim) gradient of the residual stream */
    float *dxb;                 /* (cap, dim) gradient of a normed sublayer input */
    float *datt;                /* (cap, qd_max) gradient of the gated head outputs, then of o */
    float *dq;                  /* (cap, qd_max) */
    float *dk, *dv;             /* (cap, kvd_max) */
    float *ds;                  /* (nh_max, cap, ldp) score gradients */
    float *dh1, *dh2;           /* (cap, ff_max) hidden gradients */
    float *lora_t;              /* (lora_w * r) an adapter matrix, transposed */
    float *dlu;                 /* (cap, r) adapter bottleneck gradient */
    float *dinput;              /* (cap, dim) input-embedding gradient (input_grad) */
    int dinput_n;
    /* Matrices the model keeps typed (borrowed weights, no f32 rows): the
     * backward's W products read f32 rows converted one layer at a time
     * (lw: the parameters' view of layer lw_layer with them filled in) and
     * the classifier's once (cls). */
    hr_weights lw;                     /* layer lw_layer's slots only */
    int lw_layer;                      /* -1: none converted */
    float *lw_owned[HR_N_LAYER_SLOTS]; /* (rows, cols) of each converted matrix of lw, or NULL */
    float *cls_owned;                  /* (vocab, dim) the classifier converted, or NULL */
    size_t lw_bytes, cls_bytes;        /* bytes of lw_owned's matrices and of cls_owned */
    void *win_mem, *grad_mem;          /* the arenas holding every window buffer / every gradient */
    size_t win_bytes, grad_bytes;
    char err[512];
};

hr_grad_params hr_grad_default_params(void) {
    hr_grad_params p;
    memset(&p, 0, sizeof p);
    p.kinds = HR_GRAD_WEIGHTS;
    return p;
}

static hr_status grad_fail(hr_grad *g, hr_status st) {
    if (g) snprintf(g->err, sizeof g->err, "%s", hr_last_error());
    return st;
}

const char *hr_grad_last_error(const hr_grad *g) { return g ? g->err : ""; }

/* ---- buffers ----
 * Buffers are carved from one allocation (an arena), sized by a first pass
 * over the layout (base NULL) and carved by a second. */

typedef struct {
    char *base;
    size_t off;
    bool ok;
} arena;

static float *carve(arena *A, size_t a, size_t b) {
    size_t n, nb, at = A->off;
    if (!hr_mul_size(a, b, &n) || !hr_mul_size(n, sizeof(float), &nb) || !hr_add_size(nb, 63, &nb) ||
        !hr_add_size(A->off, nb & ~(size_t)63, &A->off)) {
        A->ok = false;
        return NULL;
    }
    return A->base ? (float *)(A->base + at) : NULL;
}

/* Allocates the sized arena (*bytes: its size) and rewinds it for carving:
 * hr_map_anon, every page filled in before use in one kernel call and a
 * large arena in transparent huge pages (page faults cost ~8 us each on the
 * development VM: 0.24 s for the 117 MiB of a 128-token SmolLM-135M-shape
 * window, as long as the pass itself; measured gain in RESULTS "Gradient
 * importance: cost", clear with 1 thread, not shown with 2 on the loaded
 * VM). Released with arena_free. */
static bool arena_alloc(arena *A, size_t *bytes) {
    size_t size;
    if (!A->ok || !hr_add_size(A->off, 4096, &size)) return false; /* a page of slack past the carving */
    A->base = hr_map_anon(&size, true);
    if (!A->base) return false;
    *bytes = size;
    A->off = 0;
    return true;
}

static void arena_free(void *base, size_t bytes) { hr_unmap_anon(base, bytes); }

static void free_window(hr_grad *g) {
    free(g->acts);
    arena_free(g->win_mem, g->win_bytes);
    g->acts = NULL;
    g->win_mem = NULL;
    g->cap = 0;
    g->win_bytes = 0;
}

static bool has_lora(const hr_grad *g, int l, int i) { return g->P->lora[l][i][0] >= 0; }

/* Activation buffers of one layer (widths of layer l, or the widest with l < 0). */
static void lay_out_acts(hr_grad *g, arena *A, layer_acts *a, int l, size_t cap) {
    const hr_config *c = g->c;
    size_t dim = (size_t)c->dim, hd = (size_t)c->head_dim, ldp = (size_t)g->ldp;
    size_t nh = (size_t)(l < 0 ? g->nh_max : c->n_head[l]),
           nkv = (size_t)(l < 0 ? hr_config_max_kv_heads(c) : c->n_head_kv[l]);
    size_t ff = (size_t)(l < 0 ? g->ff_max : c->n_ff[l]), r = (size_t)g->P->p.lora_rank;
    bool any = l < 0; /* recompute: one set for every layer, so keep all */
    if (nh > 0) {
        a->xb = any || g->keep_xb[l] ? carve(A, cap, dim) : g->xs;
        a->q = carve(A, cap, nh * hd);
        a->kt = carve(A, nkv * hd, ldp);
        a->vt = carve(A, nkv * hd, ldp);
        a->p = g->prob;
        a->o = carve(A, cap, nh * hd);
    }
    a->xm = carve(A, cap, dim);
    if (ff > 0) {
        a->xb2 = any || g->keep_xb2[l] ? carve(A, cap, dim) : g->xs;
        if (c->mlp == HR_MLP_SWIGLU) a->hg = carve(A, cap, ff);
        a->hu = carve(A, cap, ff);
        a->ha = any || g->keep_ha[l] ? carve(A, cap, ff) : g->has;
    }
    for (int i = 0; i < HR_LORA_N_TARGETS && r > 0; i++) {
        bool adapted = false;
        for (int k = 0; k < c->n_layers; k++) adapted |= (l < 0 || k == l) && has_lora(g, k, i);
        if (adapted) a->lu[i] = carve(A, cap, r);
    }
}

/* Every window buffer for cap tokens, carved from A. */
static void lay_out_window(hr_grad *g, arena *A, size_t cap) {
    const hr_config *c = g->c;
    size_t dim = (size_t)c->dim, hd = (size_t)c->head_dim, L = (size_t)c->n_layers, r = (size_t)g->P->p.lora_rank;
    g->xs = carve(A, cap, dim);
    g->has = carve(A, cap, (size_t)g->ff_max + 1);
    g->prob = carve(A, (size_t)(g->nh_max ? g->nh_max : 1) * cap, (size_t)g->ldp);
    for (int i = 0; i < g->n_acts; i++) lay_out_acts(g, A, &g->acts[i], g->gp.recompute ? -1 : i, cap);
    g->xin = carve(A, (L + 1) * cap, dim);
    g->xf = carve(A, cap, dim);
    g->logits = carve(A, cap, (size_t)c->vocab_size);
    g->row_nll = (double *)carve(A, cap, 2);
    g->rope_cos = carve(A, cap, hd / 2 + 1);
    g->rope_sin = carve(A, cap, hd / 2 + 1);
    size_t qd = (size_t)g->qd_max + 1, kvd = (size_t)g->kvd_max + 1, ff = (size_t)g->ff_max + 1;
    g->kbuf = carve(A, cap, kvd);
    g->vbuf = carve(A, cap, kvd);
    g->att = carve(A, cap, qd);
    g->proj = carve(A, cap, dim);
    g->hgated = carve(A, cap, ff);
    g->xtmp = carve(A, cap, dim);
    g->dx = carve(A, cap, dim);
    g->dxb = carve(A, cap, dim);
    g->datt = carve(A, cap, qd);
    g->dq = carve(A, cap, qd);
    g->dk = carve(A, cap, kvd);
    g->dv = carve(A, cap, kvd);
    g->ds = carve(A, (size_t)(g->nh_max ? g->nh_max : 1) * cap, (size_t)g->ldp);
    g->dh1 = carve(A, cap, ff);
    g->dh2 = carve(A, cap, ff);
    g->lora_t = r > 0 ? carve(A, r, (size_t)g->lora_w) : NULL;
    g->dlu = r > 0 ? carve(A, cap, r) : NULL;
    g->dinput = g->gp.input_grad ? carve(A, cap, dim) : NULL;
}

/* Sizes every window buffer for n tokens (kept when large enough). */
static hr_status ensure_cap(hr_grad *g, int n) {
    if (n <= g->cap) return HR_OK;
    free_window(g);
    const hr_config *c = g->c;
    size_t hd = (size_t)c->head_dim;
    g->ldp = ((n + 15) & ~15) + 16; /* >= the 16-wide blocks of keys read; +16: rows of a power-of-two width
                                       would share cache sets */
    g->n_acts = g->gp.recompute ? 1 : c->n_layers;
    g->acts = calloc((size_t)(g->n_acts ? g->n_acts : 1), sizeof *g->acts);
    arena A = {NULL, 0, true};
    if (g->acts) lay_out_window(g, &A, (size_t)n); /* sizing pass */
    if (!g->acts || !arena_alloc(&A, &g->win_bytes)) {
        free_window(g);
        return hr_err(HR_ERR_NOMEM, "out of memory for the activations of a %d-token window", n);
    }
    g->win_mem = A.base;
    lay_out_window(g, &A, (size_t)n);
    g->cap = n;
    double *freqs = malloc(sizeof(double) * (hd / 2 + 1));
    if (!freqs) {
        free_window(g);
        return hr_err(HR_ERR_NOMEM, "out of memory");
    }
    const hr_rope_scaling *rs = &c->rope_scaling;
    hr_rope_freqs(freqs, (int)hd, c->rope_theta, rs->llama3 ? rs->factor : 0, rs->low_freq_factor, rs->high_freq_factor,
                  rs->original_ctx);
    for (int p = 0; p < n; p++) /* the inference context's tables, position by position */
        hr_rope_table(g->rope_cos + (size_t)p * (hd / 2), g->rope_sin + (size_t)p * (hd / 2), freqs, (int)hd, p);
    free(freqs);
    return HR_OK;
}

/* ---- selection ---- */

static bool kind_in(hr_param_kind k, const hr_param_kind *set, int n) {
    for (int i = 0; i < n; i++)
        if (set[i] == k) return true;
    return false;
}

/* Which sublayer parts each selected tensor needs (see struct hr_grad). */
static void plan_backward(hr_grad *g) {
    static const hr_param_kind attn_in[] = {HR_PARAM_ATTN_NORM, HR_PARAM_ATTN_NORM_B, HR_PARAM_WQ, HR_PARAM_BQ,
                                            HR_PARAM_WK,        HR_PARAM_BK,          HR_PARAM_WV, HR_PARAM_BV};
    static const hr_param_kind attn_out[] = {HR_PARAM_WO, HR_PARAM_BO, HR_PARAM_HEAD_GATE};
    static const hr_param_kind mlp_in[] = {HR_PARAM_FFN_NORM, HR_PARAM_FFN_NORM_B, HR_PARAM_W_GATE, HR_PARAM_W_UP,
                                           HR_PARAM_B_UP};
    static const hr_param_kind mlp_out[] = {HR_PARAM_W_DOWN, HR_PARAM_B_DOWN, HR_PARAM_NEURON_GATE};
    const hr_params *P = g->P;
    int L = g->c->n_layers;
    for (int i = 0; i < P->n; i++) {
        if (!g->grad[i]) continue;
        const hr_param_info *in = &P->t[i].info;
        int l = in->layer;
        hr_param_kind k = in->kind;
        if (k == HR_PARAM_TOK_EMBD || k == HR_PARAM_POS_EMBD) g->embd_sel = true;
        if (l < 0) continue;
        if (k == HR_PARAM_LORA_A || k == HR_PARAM_LORA_B) {
            int t = __builtin_ctz((unsigned)in->target); /* q k v | o | gate up | down */
            if (k == HR_PARAM_LORA_A) {                  /* dA = du^T x needs the adapter's input */
                g->keep_xb[l] |= t <= 2;
                g->keep_xb2[l] |= t == 4 || t == 5;
                g->keep_ha[l] |= t == 6;
            }
            if (t <= 2) g->attn_inner[l] = true;
            else if (t == 3) g->attn_sel[l] = true;
            else if (t <= 5) g->mlp_inner[l] = true;
            else g->mlp_sel[l] = true;
        }
        if (k == HR_PARAM_WQ || k == HR_PARAM_WK || k == HR_PARAM_WV) g->keep_xb[l] = true;
        if (k == HR_PARAM_W_GATE || k == HR_PARAM_W_UP) g->keep_xb2[l] = true;
        if (k == HR_PARAM_NEURON_GATE || k == HR_PARAM_W_DOWN) g->keep_ha[l] = true;
        if (kind_in(k, attn_in, 8)) g->attn_inner[l] = true;
        if (kind_in(k, attn_out, 3)) g->attn_sel[l] = true;
        if (kind_in(k, mlp_in, 5)) g->mlp_inner[l] = true;
        if (kind_in(k, mlp_out, 3)) g->mlp_sel[l] = true;
    }
    bool need = g->embd_sel || g->gp.input_grad;
    for (int l = 0; l <= L; l++) {
        g->below[l] = need;
        if (l < L) {
            g->attn_sel[l] |= g->attn_inner[l];
            g->mlp_sel[l] |= g->mlp_inner[l];
            need |= g->attn_sel[l] || g->mlp_sel[l];
        }
    }
}

static float *gbuf(const hr_grad *g, hr_param_kind k, int layer) {
    int i = hr_params_index(g->P, k, layer);
    return i >= 0 ? g->grad[i] : NULL;
}

/* ---- construction ---- */

void hr_grad_free(hr_grad *g) {
    if (!g) return;
    free_window(g);
    arena_free(g->grad_mem, g->grad_bytes);
    free(g->grad);
    for (int s = 0; s < HR_N_LAYER_SLOTS; s++) free(g->lw_owned[s]);
    free(g->cls_owned);
    if (g->own_pool) hr_pool_free(g->pool);
    free(g);
}

hr_status hr_grad_new_on_pool(hr_params *P, const hr_grad_params *gp, hr_pool *pool, hr_grad **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!P) return hr_err(HR_ERR_INVALID_ARG, "no parameters given");
    hr_grad_params dp = hr_grad_default_params();
    if (!gp) gp = &dp;
    const hr_config *c = P->c;
    if (gp->n_threads < 0 || gp->n_threads > 1024)
        return hr_err(HR_ERR_RANGE, "thread count %d out of range", gp->n_threads);
    if (gp->max_tokens < 0 || gp->max_tokens > c->seq_len)
        return hr_err(HR_ERR_RANGE, "max_tokens %d is beyond the model's context length %d", gp->max_tokens,
                      c->seq_len);
    hr_grad *g = calloc(1, sizeof *g);
    if (!g) return hr_err(HR_ERR_NOMEM, "out of memory");
    g->P = P, g->c = c, g->gp = *gp;
    g->lw_layer = -1;
    g->max_tokens = gp->max_tokens ? gp->max_tokens : c->seq_len;
    g->nh_max = hr_config_max_heads(c);
    g->qd_max = g->nh_max * c->head_dim;
    g->kvd_max = hr_config_max_kv_heads(c) * c->head_dim;
    g->ff_max = hr_config_max_ff(c);
    int widest = c->dim > g->qd_max ? c->dim : g->qd_max;
    g->lora_w = widest > g->ff_max ? widest : g->ff_max;
    g->grad = calloc((size_t)(P->n ? P->n : 1), sizeof *g->grad);
    hr_status st = g->grad ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory");
    arena A = {NULL, 0, true};
    for (int pass = 0; st == HR_OK && pass < 2; pass++) { /* sizing, then carving */
        if (pass == 1 && !arena_alloc(&A, &g->grad_bytes)) {
            st = hr_err(HR_ERR_NOMEM, "out of memory for gradients (%zu MB)", A.off >> 20);
            break;
        }
        for (int i = 0; i < P->n; i++) {
            const hr_param_info *in = &P->t[i].info;
            if (gp->select ? gp->select[i] : (gp->kinds & HR_GRAD_KIND(in->kind)) != 0)
                g->grad[i] = carve(&A, (size_t)in->rows, (size_t)in->cols);
        }
    }
    g->grad_mem = A.base; /* mapped anonymous memory is zero */
    if (st == HR_OK) {
        plan_backward(g);
        if (pool) g->pool = pool;
        else {
            st = hr_pool_new(gp->n_threads ? gp->n_threads : hr_n_cores(), &g->pool);
            g->own_pool = st == HR_OK;
        }
    }
    if (st != HR_OK) {
        hr_grad_free(g);
        return st;
    }
    *out = g;
    return HR_OK;
}

hr_status hr_grad_new(hr_params *p, const hr_grad_params *gp, hr_grad **out) {
    return hr_grad_new_on_pool(p, gp, NULL, out);
}

enum { ZERO_BLOCK = 1 << 16 }; /* floats per task of hr_grad_zero */

typedef struct {
    float *p;
    size_t n;
} zero_job;

static void zero_task(void *vp, int i) {
    const zero_job *j = vp;
    size_t a = (size_t)i * ZERO_BLOCK, b = a + ZERO_BLOCK < j->n ? a + ZERO_BLOCK : j->n;
    memset(j->p + a, 0, sizeof(float) * (b - a));
}

void hr_grad_zero(hr_grad *g) {
    if (!g) return;
    for (int i = 0; i < g->P->n; i++) /* in blocks on the pool: the gradients of a 135M model are 540 MB */
        if (g->grad[i]) {
            zero_job j = {g->grad[i], (size_t)(g->P->t[i].info.rows * g->P->t[i].info.cols)};
            hr_pool_run(g->pool, zero_task, &j, (int)((j.n + ZERO_BLOCK - 1) / ZERO_BLOCK));
        }
}

void hr_grad_release_window(hr_grad *g) {
    if (g) free_window(g);
}

const hr_params *hr_grad_owner(const hr_grad *g) { return g->P; }

hr_pool *hr_grad_pool(const hr_grad *g) { return g->pool; }

const float *hr_grad_tensor(const hr_grad *g, int i) { return g && i >= 0 && i < g->P->n ? g->grad[i] : NULL; }

const float *hr_grad_input(const hr_grad *g, int *n) {
    if (n) *n = g && g->dinput ? g->dinput_n : 0;
    return g && g->dinput_n > 0 ? g->dinput : NULL;
}

size_t hr_grad_bytes(const hr_grad *g) {
    return g ? g->win_bytes + g->grad_bytes + g->lw_bytes + g->cls_bytes + sizeof *g : 0;
}

/* ---- row-parallel helpers ---- */

typedef void (*rows_fn)(void *arg, int t0, int t1);

typedef struct {
    rows_fn fn;
    void *arg;
    int n;
} rows_job;

static void rows_task(void *vp, int i) {
    const rows_job *j = vp;
    int t0 = i * ROWS_PER_TASK, t1 = t0 + ROWS_PER_TASK < j->n ? t0 + ROWS_PER_TASK : j->n;
    j->fn(j->arg, t0, t1);
}

static void par_rows(hr_grad *g, int n, rows_fn fn, void *arg) {
    int tasks = (n + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
    if (tasks <= 1) {
        if (n > 0) fn(arg, 0, n);
        return;
    }
    rows_job j = {fn, arg, n};
    hr_pool_run(g->pool, rows_task, &j, tasks);
}

typedef struct {
    const hr_config *c;
    float *y;
    const float *x, *w, *b, *dy; /* norm weight and bias; dy for the backward */
    bool accumulate;
} norm_arg;

static void norm_range(void *vp, int t0, int t1) {
    const norm_arg *a = vp;
    int dim = a->c->dim;
    for (int t = t0; t < t1; t++) {
        const float *xr = a->x + (size_t)t * dim;
        float *yr = a->y + (size_t)t * dim;
        if (a->c->norm == HR_NORM_LAYER) hr_layernorm(yr, xr, a->w, a->b, dim, a->c->norm_eps);
        else hr_rmsnorm(yr, xr, a->w, dim, a->c->norm_eps);
    }
}

/* y (n, dim) = norm(x), row by row (the inference forward's kernels). */
static void norm_rows(hr_grad *g, float *y, const float *x, const float *w, const float *b, int n) {
    norm_arg a = {g->c, y, x, w, b, NULL, false};
    par_rows(g, n, norm_range, &a);
}

static void norm_bwd_range(void *vp, int t0, int t1) {
    const norm_arg *a = vp;
    int dim = a->c->dim;
    for (int t = t0; t < t1; t++) {
        size_t o = (size_t)t * dim;
        if (a->c->norm == HR_NORM_LAYER)
            hr_layernorm_bwd(a->y + o, a->dy + o, a->x + o, a->w, dim, a->c->norm_eps, a->accumulate);
        else hr_rmsnorm_bwd(a->y + o, a->dy + o, a->x + o, a->w, dim, a->c->norm_eps, a->accumulate);
    }
}

/* dx (n, dim) (+)= the norm's input gradient for dy; weight and bias
 * gradients gw, gb when selected. */
static void norm_bwd(hr_grad *g, float *dx, const float *dy, const float *x, const float *w, float *gw, float *gb,
                     int n, bool want_dx) {
    const hr_config *c = g->c;
    if (c->norm == HR_NORM_LAYER) {
        if (gw || gb) { /* the bias gradient alone needs no statistics */
            if (gw) hr_layernorm_bwd_weight(gw, gb, dy, x, n, c->dim, c->norm_eps);
            else hr_bias_bwd(gb, dy, n, c->dim);
        }
    } else if (gw) {
        hr_rmsnorm_bwd_weight(gw, dy, x, n, c->dim, c->norm_eps);
    }
    if (!want_dx) return;
    norm_arg a = {c, dx, x, w, NULL, dy, true};
    par_rows(g, n, norm_bwd_range, &a);
}

/* y (n, d) += bias (d) on every row (as the inference forward adds it);
 * no-op without a bias. */
static void add_bias(float *y, const float *bias, int n, int d) {
    for (int t = 0; bias && t < n; t++) hr_axpy(y + (size_t)t * d, 1.0f, bias, d);
}

/* ---- LoRA adapters ---- */

typedef struct {
    const float *a, *b; /* A (r, d_in), B (d_out, r) */
    float *ga, *gb;     /* their gradients or NULL */
    int r, d_in, d_out;
} lora_ref;

static bool lora_get(const hr_grad *g, int l, int i, lora_ref *lr) {
    const hr_params *P = g->P;
    int ia = P->lora[l][i][0], ib = P->lora[l][i][1];
    if (ia < 0) return false;
    lr->a = P->t[ia].data, lr->b = P->t[ib].data;
    lr->ga = g->grad[ia], lr->gb = g->grad[ib];
    lr->r = (int)P->t[ia].info.rows, lr->d_in = (int)P->t[ia].info.cols, lr->d_out = (int)P->t[ib].info.rows;
    return true;
}

static void transpose(float *dst, const float *src, int rows, int cols) {
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) dst[(size_t)j * rows + i] = src[(size_t)i * cols + j];
}

/* y (n, d_out) += u B^T with u (n, r) = (alpha/r) x A^T stored for the backward. */
static void lora_fwd(hr_grad *g, int l, int i, const float *x, int n, float *y, float *u) {
    lora_ref lr;
    if (!lora_get(g, l, i, &lr)) return;
    float s = g->P->lora_scale;
    transpose(g->lora_t, lr.a, lr.r, lr.d_in); /* (d_in, r) */
    hr_gemm(g->pool, u, (size_t)lr.r, x, (size_t)lr.d_in, 1, g->lora_t, (size_t)lr.r, n, lr.d_in, lr.r, false);
    for (size_t k = 0; k < (size_t)n * lr.r; k++) u[k] *= s;
    transpose(g->lora_t, lr.b, lr.d_out, lr.r); /* (r, d_out) */
    hr_gemm(g->pool, y, (size_t)lr.d_out, u, (size_t)lr.r, 1, g->lora_t, (size_t)lr.d_out, n, lr.r, lr.d_out, true);
}

/* Adapter gradients from dy, and dx += its path when dx != NULL. */
static void lora_bwd(hr_grad *g, int l, int i, const float *dy, const float *x, const float *u, int n, float *dx) {
    lora_ref lr;
    if (!lora_get(g, l, i, &lr)) return;
    size_t r = (size_t)lr.r;
    if (lr.gb) hr_gemm(g->pool, lr.gb, r, dy, 1, (size_t)lr.d_out, u, r, lr.d_out, n, lr.r, true); /* dB += dy^T u */
    if (!lr.ga && !dx) return;
    hr_gemm(g->pool, g->dlu, r, dy, (size_t)lr.d_out, 1, lr.b, r, n, lr.d_out, lr.r, false); /* du = dy B */
    for (size_t k = 0; k < (size_t)n * r; k++) g->dlu[k] *= g->P->lora_scale;
    if (lr.ga) hr_gemm(g->pool, lr.ga, (size_t)lr.d_in, g->dlu, 1, r, x, (size_t)lr.d_in, lr.r, n, lr.d_in, true);
    if (dx) hr_gemm(g->pool, dx, (size_t)lr.d_in, g->dlu, r, 1, lr.a, (size_t)lr.d_in, n, lr.r, lr.d_in, true);
}

/* y = x W^T (+ b) (+ LoRA adapter i of layer l) with x (n, d_in), y (n,
 * d_out): from dy, adds the gradients of W (gw) and b (gb) when selected, of
 * the adapter, and sets dx (n, d_in) = dy W + adapter path (+= when
 * accumulate) when dx != NULL. u: the adapter bottleneck kept by the forward. */
static void linear_bwd(hr_grad *g, int l, int lora_i, const float *dy, const float *x, const float *u, int n, int d_in,
                       int d_out, const float *w, float *gw, float *gb, float *dx, bool accumulate) {
    if (gw) hr_matmul_bwd_w(g->pool, gw, dy, x, n, d_in, d_out);
    if (gb) hr_bias_bwd(gb, dy, n, d_out);
    if (dx) hr_matmul_bwd_x(g->pool, dx, dy, w, n, d_in, d_out, accumulate);
    lora_bwd(g, l, lora_i, dy, x, u, n, dx);
}

static bool lora_has_grad(const hr_grad *g, int l, int i) {
    lora_ref lr;
    return lora_get(g, l, i, &lr) && (lr.ga || lr.gb);
}

static const float *param_values(const hr_grad *g, hr_param_kind k, int l) {
    int i = hr_params_index(g->P, k, l);
    return i >= 0 ? g->P->t[i].data : NULL;
}

/* ---- weights the model keeps typed ---- */

/* Bytes of slot s of layer l as f32 rows. */
static size_t slot_bytes(const hr_config *c, int l, hr_slot s) {
    int64_t rows, cols;
    hr_slot_shape(c, l < 0 ? 0 : l, s, &rows, &cols);
    return (size_t)rows * (size_t)cols * sizeof(float);
}

/* Layer l's weights for the backward (*out): the parameters' view, with
 * every matrix the model keeps typed converted to f32 rows — one layer at a
 * time, held until another layer is asked for (model_internal.h
 * hr_model_matrix_f32, whose error this returns). */
static hr_status bwd_weights(hr_grad *g, int l, const hr_layer_weights **out) {
    *out = &g->lw.layers[l];
    if (g->lw_layer == l) return HR_OK;
    for (int s = 0; s < HR_N_LAYER_SLOTS; s++) free(g->lw_owned[s]), g->lw_owned[s] = NULL;
    g->lw_layer = -1;
    g->lw_bytes = 0;
    g->lw.layers[l] = g->P->w.layers[l];
    for (int s = 0; s < HR_N_LAYER_SLOTS; s++) {
        const float **pp = hr_slot_ptr(&g->lw, l, (hr_slot)s);
        if (!pp || *pp || !hr_model_src(g->P->model, l, (hr_slot)s)) continue; /* f32 rows, or no such matrix */
        hr_status st = hr_model_matrix_f32(g->P->model, l, (hr_slot)s, pp, &g->lw_owned[s]);
        if (st != HR_OK) return st;
        if (g->lw_owned[s]) g->lw_bytes += slot_bytes(g->c, l, (hr_slot)s);
    }
    g->lw_layer = l;
    return HR_OK;
}

/* The classifier's f32 rows (vocab, dim) into *out: the parameters' own, or
 * converted once and kept for the object's life. */
static hr_status bwd_classifier(hr_grad *g, const float **out) {
    *out = g->P->w.output ? g->P->w.output : g->cls_owned;
    if (*out) return HR_OK;
    hr_status st = hr_model_matrix_f32(g->P->model, -1, HR_SLOT_OUTPUT, out, &g->cls_owned);
    if (g->cls_owned) g->cls_bytes = slot_bytes(g->c, -1, HR_SLOT_OUTPUT);
    return st;
}

/* x (n, dim) = token embeddings (+ learned positions, always f32 rows):
 * from the parameters' rows, or row by row from the model's typed ones. */
static void embed_fwd(hr_grad *g, float *x, const int32_t *tokens, int n) {
    const hr_weights *w = &g->P->w;
    int dim = g->c->dim;
    if (w->tok_embd) {
        hr_embed_fwd(x, tokens, n, w->tok_embd, w->pos_embd, dim);
        return;
    }
    for (int t = 0; t < n; t++) {
        float *xr = x + (size_t)t * dim;
        hr_model_embed_row(g->P->model, tokens[t], xr);
        if (w->pos_embd) hr_axpy(xr, 1.0f, w->pos_embd + (size_t)t * dim, dim);
    }
}

/* ---- forward ---- */

typedef struct {
    hr_grad *g;
    layer_acts *a;
    int n, nh, nkv, group, hd;
    float scale;
} attn_job;

/* Task i of an attention pass over (head, chunk of ATT_CHUNK queries):
 * its head, KV head and query rows [t0, t1). */
static void head_chunk(const attn_job *j, int i, int *h, int *kv, int *t0, int *t1) {
    *h = i % j->nh;
    *kv = *h / j->group;
    *t0 = (i / j->nh) * ATT_CHUNK;
    *t1 = *t0 + ATT_CHUNK < j->n ? *t0 + ATT_CHUNK : j->n;
}

static void attn_fwd_task(void *vp, int i) {
    const attn_job *j = vp;
    const hr_grad *g = j->g;
    int h, kv, t0, t1;
    head_chunk(j, i, &h, &kv, &t0, &t1);
    size_t hs = (size_t)g->cap * g->ldp, ks = (size_t)j->hd * g->ldp, qd = (size_t)j->nh * j->hd;
    hr_attn_fwd(j->a->p + h * hs, g->ldp, j->a->o + (size_t)h * j->hd, qd, j->a->q + (size_t)h * j->hd, qd,
                j->a->kt + kv * ks, j->a->vt + kv * ks, g->ldp, j->hd, j->n, t0, t1, j->scale);
}

/* ---- row-parallel elementwise work (each row's arithmetic is the same
 * whatever the split) ---- */

typedef struct {
    float *out;
    const float *in, *in2, *scale; /* out = in * scale[col / group] + 0, or in + in2 */
    int d, group;
} cols_arg;

static void scale_cols_range(void *vp, int t0, int t1) {
    const cols_arg *a = vp;
    if (a->group == 1) { /* a scale per column (neuron gates): one plain loop per row */
        for (int t = t0; t < t1; t++) {
            size_t o = (size_t)t * a->d;
            for (int c = 0; c < a->d; c++) a->out[o + c] = a->in[o + c] * a->scale[c] + 0.0f;
        }
        return;
    }
    for (int t = t0; t < t1; t++)
        for (int c0 = 0; c0 < a->d; c0 += a->group) {
            size_t o = (size_t)t * a->d + c0;
            float s = a->scale[c0 / a->group];
            for (int c = 0; c < a->group; c++) a->out[o + c] = a->in[o + c] * s + 0.0f;
        }
}

/* out (n, d) = in * scale[col / group] + 0.0f: gated head outputs as the
 * inference forward writes them (gate per head, group = head_dim), gated
 * neurons (group = 1), and the same scaling of gradients. */
static void scale_cols(hr_grad *g, float *out, const float *in, const float *scale, int n, int d, int group) {
    cols_arg a = {out, in, NULL, scale, d, group};
    par_rows(g, n, scale_cols_range, &a);
}

static void add_range(void *vp, int t0, int t1) {
    const cols_arg *a = vp;
    for (size_t i = (size_t)t0 * a->d; i < (size_t)t1 * a->d; i++) a->out[i] = a->in[i] + a->in2[i];
}

/* out (n, d) = a + b (out may alias a): the residual connection. */
static void add_rows(hr_grad *g, float *out, const float *a, const float *b, int n, int d) {
    cols_arg ar = {out, a, b, NULL, d, 1};
    par_rows(g, n, add_range, &ar);
}

static void gate_heads(hr_grad *g, int l, int n, const float *o, float *att) {
    scale_cols(g, att, o, param_values(g, HR_PARAM_HEAD_GATE, l), n, g->c->n_head[l] * g->c->head_dim, g->c->head_dim);
}

static void gate_neurons(hr_grad *g, int l, int n, const float *ha, float *out) {
    scale_cols(g, out, ha, param_values(g, HR_PARAM_NEURON_GATE, l), n, g->c->n_ff[l], 1);
}

typedef struct {
    const hr_grad *g;
    float *q, *k, *v; /* (n, qd), (n, kvd) rows; v only when transposing */
    float *kt, *vt;   /* (nkv, hd, ldp) transposed keys / values, or NULL */
    int nh, nkv, hd;
    bool bwd;
} rope_arg;

/* RoPE of q and k rows (or its backward), then the transposition of k and
 * v into kt, vt. */
static void rope_range(void *vp, int t0, int t1) {
    const rope_arg *a = vp;
    const hr_grad *g = a->g;
    size_t half = (size_t)a->hd / 2, qd = (size_t)a->nh * a->hd, kvd = (size_t)a->nkv * a->hd;
    for (int t = t0; t < t1; t++) {
        const float *ct = g->rope_cos + (size_t)t * half, *st = g->rope_sin + (size_t)t * half;
        float *qr = a->q + (size_t)t * qd, *kr = a->k + (size_t)t * kvd;
        if (g->c->pos == HR_POS_ROPE && a->bwd) {
            hr_rope_bwd(qr, a->nh, a->hd, ct, st);
            hr_rope_bwd(kr, a->nkv, a->hd, ct, st);
        } else if (g->c->pos == HR_POS_ROPE) {
            hr_rope(qr, a->nh, a->hd, ct, st);
            hr_rope(kr, a->nkv, a->hd, ct, st);
        }
        for (size_t i = 0; a->kt && i < kvd; i++) { /* row i of kt is (KV head, dim) i */
            a->kt[i * (size_t)g->ldp + t] = kr[i];
            a->vt[i * (size_t)g->ldp + t] = a->v[(size_t)t * kvd + i];
        }
    }
}

/* Attention sublayer of layer l: x_out = x_in + Attn(norm(x_in)), keeping
 * its activations in a. */
static void attention_fwd(hr_grad *g, int l, int n, layer_acts *a, const float *x_in, float *x_out,
                          const hr_packed_weights *pk) {
    const hr_config *c = g->c;
    const hr_layer_weights *w = &g->P->w.layers[l];
    const hr_layer_packed *lp = &pk->layers[l];
    int hd = c->head_dim, nh = c->n_head[l], nkv = c->n_head_kv[l], qd = nh * hd, kvd = nkv * hd, dim = c->dim;
    norm_rows(g, a->xb, x_in, w->attn_norm, w->attn_norm_b, n);
    hr_matmul_out qkv[3] = {{a->q, w->wq, lp->wq, qd}, {g->kbuf, w->wk, lp->wk, kvd}, {g->vbuf, w->wv, lp->wv, kvd}};
    hr_matmul_multi(g->pool, a->xb, n, dim, qkv, 3, false, NULL, NULL);
    add_bias(a->q, w->bq, n, qd);
    add_bias(g->kbuf, w->bk, n, kvd);
    add_bias(g->vbuf, w->bv, n, kvd);
    lora_fwd(g, l, 0, a->xb, n, a->q, a->lu[0]);
    lora_fwd(g, l, 1, a->xb, n, g->kbuf, a->lu[1]);
    lora_fwd(g, l, 2, a->xb, n, g->vbuf, a->lu[2]);
    rope_arg ra = {g, a->q, g->kbuf, g->vbuf, a->kt, a->vt, nh, nkv, hd, false};
    par_rows(g, n, rope_range, &ra);
    attn_job j = {g, a, n, nh, nkv, nh / nkv, hd, 1.0f / sqrtf((float)hd)};
    hr_pool_run(g->pool, attn_fwd_task, &j, nh * ((n + ATT_CHUNK - 1) / ATT_CHUNK));
    gate_heads(g, l, n, a->o, g->att);
    hr_matmul(g->pool, g->proj, g->att, lp->wo, n, qd, dim);
    add_bias(g->proj, w->bo, n, dim);
    lora_fwd(g, l, 3, g->att, n, g->proj, a->lu[3]);
    add_rows(g, x_out, x_in, g->proj, n, dim);
}

typedef struct {
    float *h, *gate, *up; /* SwiGLU forward: h = silu(gate) * up, rows of ff */
    float *dgate, *dup;   /* backward: from dh (in h) */
    int ff;
    bool gelu;
} act_arg;

static void swiglu_range(void *vp, int t0, int t1) {
    const act_arg *a = vp;
    size_t off = (size_t)t0 * a->ff, cnt = (size_t)(t1 - t0) * a->ff;
    hr_swiglu(a->h + off, a->gate + off, a->up + off, (int)cnt);
}

/* MLP sublayer of layer l on x (n, dim), in place: x += MLP(norm(x)). */
static void mlp_fwd(hr_grad *g, int l, int n, layer_acts *a, float *x, const hr_packed_weights *pk) {
    const hr_config *c = g->c;
    const hr_layer_weights *w = &g->P->w.layers[l];
    const hr_layer_packed *lp = &pk->layers[l];
    int ff = c->n_ff[l], dim = c->dim;
    norm_rows(g, a->xb2, x, w->ffn_norm, w->ffn_norm_b, n);
    if (c->mlp == HR_MLP_SWIGLU) {
        hr_matmul_out gu[2] = {{a->hg, w->w_gate, lp->w_gate, ff}, {a->hu, w->w_up, lp->w_up, ff}};
        hr_matmul_multi(g->pool, a->xb2, n, dim, gu, 2, false, NULL, NULL);
        lora_fwd(g, l, 4, a->xb2, n, a->hg, a->lu[4]);
        lora_fwd(g, l, 5, a->xb2, n, a->hu, a->lu[5]);
        act_arg aa = {a->ha, a->hg, a->hu, NULL, NULL, ff, false};
        par_rows(g, n, swiglu_range, &aa);
    } else {
        hr_matmul(g->pool, a->hu, a->xb2, lp->w_up, n, dim, ff);
        add_bias(a->hu, w->b_up, n, ff);
        lora_fwd(g, l, 5, a->xb2, n, a->hu, a->lu[5]);
        memcpy(a->ha, a->hu, sizeof(float) * (size_t)n * ff);
        hr_gelu_tanh(a->ha, n * ff);
    }
    gate_neurons(g, l, n, a->ha, g->hgated);
    hr_matmul(g->pool, g->proj, g->hgated, lp->w_down, n, ff, dim);
    add_bias(g->proj, w->b_down, n, dim);
    lora_fwd(g, l, 6, g->hgated, n, g->proj, a->lu[6]);
    add_rows(g, x, x, g->proj, n, dim);
}

/* Block l: x_out (n, dim) from x_in, activations into a. */
static void layer_fwd(hr_grad *g, int l, int n, layer_acts *a, const float *x_in, float *x_out,
                      const hr_packed_weights *pk) {
    size_t bytes = sizeof(float) * (size_t)n * g->c->dim;
    if (g->c->n_head[l] > 0) attention_fwd(g, l, n, a, x_in, x_out, pk);
    else memcpy(x_out, x_in, bytes);
    memcpy(a->xm, x_out, bytes);
    if (g->c->n_ff[l] > 0) mlp_fwd(g, l, n, a, x_out, pk);
}

static float *xin_at(const hr_grad *g, int l) { return g->xin + (size_t)l * g->cap * g->c->dim; }

static layer_acts *acts_of(const hr_grad *g, int l) { return &g->acts[g->gp.recompute ? 0 : l]; }

static hr_status check_window(hr_grad *g, const int32_t *tokens, int n) {
    if (!tokens) return hr_err(HR_ERR_INVALID_ARG, "no tokens given");
    if (n < 2)
        return hr_err(HR_ERR_RANGE, "a window needs at least 2 tokens (got %d): the loss predicts tokens[1..n)", n);
    if (n > g->max_tokens)
        return hr_err(HR_ERR_RANGE, "a window of %d tokens is longer than max_tokens %d", n, g->max_tokens);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= g->c->vocab_size)
            return hr_err(HR_ERR_INVALID_ARG, "token id %d at index %d is outside the vocabulary (%d)", tokens[i], i,
                          g->c->vocab_size);
    return HR_OK;
}

/* Training forward: logits of rows 0..n-2 into g->logits. */
static hr_status forward(hr_grad *g, const int32_t *tokens, int n, const hr_packed_weights **pk_out) {
    const hr_config *c = g->c;
    const hr_packed_weights *pk = NULL;
    hr_status st = ensure_cap(g, n);
    if (st == HR_OK) st = hr_params_packed(g->P, g->pool, &pk);
    if (st != HR_OK) return st;
    const hr_weights *w = &g->P->w;
    embed_fwd(g, xin_at(g, 0), tokens, n);
    for (int l = 0; l < c->n_layers; l++) layer_fwd(g, l, n, acts_of(g, l), xin_at(g, l), xin_at(g, l + 1), pk);
    norm_rows(g, g->xf, xin_at(g, c->n_layers), w->out_norm, w->out_norm_b, n - 1);
    hr_matmul(g->pool, g->logits, g->xf, pk->output, n - 1, c->dim, c->vocab_size);
    *pk_out = pk;
    return HR_OK;
}

typedef struct {
    hr_grad *g;
    const int32_t *tokens;
    float scale;
} xent_arg;

static void xent_range(void *vp, int t0, int t1) {
    const xent_arg *a = vp;
    int vocab = a->g->c->vocab_size;
    for (int t = t0; t < t1; t++)
        a->g->row_nll[t] = hr_xent_bwd(a->g->logits + (size_t)t * vocab, vocab, a->tokens[t + 1], a->scale);
}

/* Mean NLL over rows 0..n-2; the logits become scale/(n-1) * (p - onehot). */
static double xent(hr_grad *g, const int32_t *tokens, int n, float scale) {
    xent_arg a = {g, tokens, scale / (float)(n - 1)};
    par_rows(g, n - 1, xent_range, &a);
    double s = 0;
    for (int t = 0; t < n - 1; t++) s += g->row_nll[t];
    return s / (n - 1);
}

/* ---- backward ---- */

static void attn_rows_task(void *vp, int i) {
    const attn_job *j = vp;
    const hr_grad *g = j->g;
    int h, kv, t0, t1;
    head_chunk(j, i, &h, &kv, &t0, &t1);
    size_t hs = (size_t)g->cap * g->ldp, ks = (size_t)j->hd * g->ldp, qd = (size_t)j->nh * j->hd;
    hr_attn_bwd_rows(g->ds + h * hs, g->dq + (size_t)h * j->hd, qd, j->a->p + h * hs, g->ldp,
                     g->datt + (size_t)h * j->hd, qd, j->a->kt + kv * ks, j->a->vt + kv * ks, g->ldp, j->hd, j->n, t0,
                     t1, j->scale);
}

static void attn_keys_task(void *vp, int i) {
    const attn_job *j = vp;
    const hr_grad *g = j->g;
    int kv = i % j->nkv, s0 = (i / j->nkv) * KEY_CHUNK, h0 = kv * j->group;
    size_t hs = (size_t)g->cap * g->ldp, qd = (size_t)j->nh * j->hd, kvd = (size_t)j->nkv * j->hd;
    hr_attn_bwd_keys(g->dk + (size_t)kv * j->hd, g->dv + (size_t)kv * j->hd, kvd, g->ds + h0 * hs, j->a->p + h0 * hs,
                     hs, g->ldp, j->group, j->a->q + (size_t)h0 * j->hd, qd, g->datt + (size_t)h0 * j->hd, qd, j->hd,
                     j->n, s0, s0 + KEY_CHUNK, j->scale);
}

static void act_bwd_range(void *vp, int t0, int t1) {
    const act_arg *a = vp;
    size_t off = (size_t)t0 * a->ff;
    int cnt = (t1 - t0) * a->ff;
    if (a->gelu) hr_gelu_tanh_bwd(a->dup + off, a->h + off, a->up + off, cnt);
    else hr_swiglu_bwd(a->dgate + off, a->dup + off, a->h + off, a->gate + off, a->up + off, cnt);
}

/* MLP of layer l: g->dx holds dL/d(block output); becomes dL/d(xm) when
 * the gradient must go further down. */
static void mlp_bwd(hr_grad *g, int l, int n, layer_acts *a, const hr_layer_weights *w) {
    const hr_config *c = g->c;
    int ff = c->n_ff[l], dim = c->dim;
    bool upper = g->attn_sel[l] || g->below[l]; /* the residual gradient continues under the MLP */
    bool inner = g->mlp_inner[l] || upper;
    float *ggate = gbuf(g, HR_PARAM_NEURON_GATE, l), *gwd = gbuf(g, HR_PARAM_W_DOWN, l);
    if (gwd || lora_has_grad(g, l, 6)) gate_neurons(g, l, n, a->ha, g->hgated);
    float *dha = ggate || inner ? g->dh1 : NULL; /* (n, ff) dL/d(gated activation) */
    linear_bwd(g, l, 6, g->dx, g->hgated, a->lu[6], n, ff, dim, w->w_down, gwd, gbuf(g, HR_PARAM_B_DOWN, l), dha,
               false);
    if (!dha) return;
    const float *xi = param_values(g, HR_PARAM_NEURON_GATE, l);
    if (ggate)
        for (int t = 0; t < n; t++)
            for (int j = 0; j < ff; j++) ggate[j] += a->ha[(size_t)t * ff + j] * dha[(size_t)t * ff + j];
    if (!inner) return;
    scale_cols(g, dha, dha, xi, n, ff, 1);
    bool gelu = c->mlp != HR_MLP_SWIGLU;
    act_arg aa = {dha, a->hg, a->hu, g->dh1, g->dh2, ff, gelu}; /* dgate may overwrite dh in place */
    par_rows(g, n, act_bwd_range, &aa);
    float *gn = gbuf(g, HR_PARAM_FFN_NORM, l), *gnb = gbuf(g, HR_PARAM_FFN_NORM_B, l);
    float *dxb = upper || gn || gnb ? g->dxb : NULL;
    bool acc = false;
    if (!gelu) {
        linear_bwd(g, l, 4, g->dh1, a->xb2, a->lu[4], n, dim, ff, w->w_gate, gbuf(g, HR_PARAM_W_GATE, l), NULL, dxb,
                   false);
        acc = true;
    }
    linear_bwd(g, l, 5, g->dh2, a->xb2, a->lu[5], n, dim, ff, w->w_up, gbuf(g, HR_PARAM_W_UP, l),
               gbuf(g, HR_PARAM_B_UP, l), dxb, acc);
    if (dxb) norm_bwd(g, g->dx, dxb, a->xm, w->ffn_norm, gn, gnb, n, upper);
}

/* Attention of layer l: g->dx holds dL/d(xm); becomes dL/d(x_in) when the
 * gradient must go further down. */
static void attention_bwd(hr_grad *g, int l, int n, layer_acts *a, const hr_layer_weights *w) {
    const hr_config *c = g->c;
    int hd = c->head_dim, nh = c->n_head[l], nkv = c->n_head_kv[l], qd = nh * hd, kvd = nkv * hd, dim = c->dim;
    bool below = g->below[l], inner = g->attn_inner[l] || below;
    float *ggate = gbuf(g, HR_PARAM_HEAD_GATE, l), *gwo = gbuf(g, HR_PARAM_WO, l);
    if (gwo || lora_has_grad(g, l, 3)) gate_heads(g, l, n, a->o, g->att);
    float *datt = ggate || inner ? g->datt : NULL; /* (n, qd) dL/d(gated head outputs) */
    linear_bwd(g, l, 3, g->dx, g->att, a->lu[3], n, qd, dim, w->wo, gwo, gbuf(g, HR_PARAM_BO, l), datt, false);
    if (!datt) return;
    const float *gate = param_values(g, HR_PARAM_HEAD_GATE, l);
    if (ggate)
        for (int h = 0; h < nh; h++) { /* dL/dgate_h = sum over tokens of o_h . dL/d(gated o_h) */
            double s = 0;
            for (int t = 0; t < n; t++) {
                const float *o = a->o + (size_t)t * qd + (size_t)h * hd, *d = datt + (size_t)t * qd + (size_t)h * hd;
                for (int k = 0; k < hd; k++) s += (double)o[k] * d[k];
            }
            ggate[h] += (float)s;
        }
    if (!inner) return;
    scale_cols(g, datt, datt, gate, n, qd, hd); /* dL/do = gate * dL/d(gated o) */
    attn_job j = {g, a, n, nh, nkv, nh / nkv, hd, 1.0f / sqrtf((float)hd)};
    /* The probabilities are not kept per layer (n_head * n * n floats each, a third of the activations at 512
     * tokens): the forward's kernel recomputes them from the kept q, k, v, bit for bit (and rewrites o with
     * the same values); with recompute the layer's forward has just done so. */
    if (!g->gp.recompute) hr_pool_run(g->pool, attn_fwd_task, &j, nh * ((n + ATT_CHUNK - 1) / ATT_CHUNK));
    hr_pool_run(g->pool, attn_rows_task, &j, nh * ((n + ATT_CHUNK - 1) / ATT_CHUNK));
    hr_pool_run(g->pool, attn_keys_task, &j, nkv * ((n + KEY_CHUNK - 1) / KEY_CHUNK));
    rope_arg ra = {g, g->dq, g->dk, NULL, NULL, NULL, nh, nkv, hd, true};
    par_rows(g, n, rope_range, &ra);
    float *gn = gbuf(g, HR_PARAM_ATTN_NORM, l), *gnb = gbuf(g, HR_PARAM_ATTN_NORM_B, l);
    float *dxb = below || gn || gnb ? g->dxb : NULL;
    linear_bwd(g, l, 0, g->dq, a->xb, a->lu[0], n, dim, qd, w->wq, gbuf(g, HR_PARAM_WQ, l), gbuf(g, HR_PARAM_BQ, l),
               dxb, false);
    linear_bwd(g, l, 1, g->dk, a->xb, a->lu[1], n, dim, kvd, w->wk, gbuf(g, HR_PARAM_WK, l), gbuf(g, HR_PARAM_BK, l),
               dxb, true);
    linear_bwd(g, l, 2, g->dv, a->xb, a->lu[2], n, dim, kvd, w->wv, gbuf(g, HR_PARAM_WV, l), gbuf(g, HR_PARAM_BV, l),
               dxb, true);
    if (dxb) norm_bwd(g, g->dx, dxb, xin_at(g, l), w->attn_norm, gn, gnb, n, below);
}

/* From the cross-entropy gradient in g->logits down to what is selected. */
static hr_status backward(hr_grad *g, const int32_t *tokens, int n, const hr_packed_weights *pk) {
    const hr_config *c = g->c;
    const hr_weights *w = &g->P->w;
    int L = c->n_layers, dim = c->dim, m = n - 1;
    float *gcls = c->tied_classifier ? gbuf(g, HR_PARAM_TOK_EMBD, -1) : gbuf(g, HR_PARAM_OUTPUT, -1);
    float *gn = gbuf(g, HR_PARAM_OUT_NORM, -1), *gnb = gbuf(g, HR_PARAM_OUT_NORM_B, -1);
    bool down = g->below[L];
    const float *cls = NULL;
    hr_status st = down || gn || gnb ? bwd_classifier(g, &cls) : HR_OK; /* before any gradient is touched */
    if (st != HR_OK) return st;
    if (gcls) hr_matmul_bwd_w(g->pool, gcls, g->logits, g->xf, m, dim, c->vocab_size);
    if (!down && !gn && !gnb) return HR_OK;
    hr_matmul_bwd_x(g->pool, g->dxb, g->logits, cls, m, dim, c->vocab_size, false);
    memset(g->dx, 0, sizeof(float) * (size_t)n * dim); /* the last position predicts nothing */
    norm_bwd(g, g->dx, g->dxb, xin_at(g, L), w->out_norm, gn, gnb, m, down);
    if (!down) return HR_OK;
    for (int l = L - 1; l >= 0; l--) {
        if (!g->attn_sel[l] && !g->mlp_sel[l] && !g->below[l]) break; /* nothing needed here or below */
        layer_acts *a = acts_of(g, l);
        if (g->gp.recompute) layer_fwd(g, l, n, a, xin_at(g, l), g->xtmp, pk);
        const hr_layer_weights *lw;
        if ((st = bwd_weights(g, l, &lw)) != HR_OK) return st;
        if (c->n_ff[l] > 0 && (g->mlp_sel[l] || g->attn_sel[l] || g->below[l])) mlp_bwd(g, l, n, a, lw);
        if (c->n_head[l] > 0 && (g->attn_sel[l] || g->below[l])) attention_bwd(g, l, n, a, lw);
    }
    if (!g->below[0]) return HR_OK;
    if (g->dinput) {
        memcpy(g->dinput, g->dx, sizeof(float) * (size_t)n * dim);
        g->dinput_n = n;
    }
    hr_embed_bwd(gbuf(g, HR_PARAM_TOK_EMBD, -1), gbuf(g, HR_PARAM_POS_EMBD, -1), g->dx, tokens, n, dim);
    return HR_OK;
}

/* ---- API ---- */

hr_status hr_grad_loss(hr_grad *g, const int32_t *tokens, int n, double *loss, float *logits) {
    if (!g || !loss) return hr_err(HR_ERR_INVALID_ARG, "no gradient object or loss pointer given");
    const hr_packed_weights *pk;
    hr_status st = check_window(g, tokens, n);
    if (st == HR_OK) st = forward(g, tokens, n, &pk);
    if (st != HR_OK) return grad_fail(g, st);
    if (logits) memcpy(logits, g->logits, sizeof(float) * (size_t)(n - 1) * g->c->vocab_size);
    *loss = xent(g, tokens, n, 0.0f);
    return HR_OK;
}

hr_status hr_grad_accumulate(hr_grad *g, const int32_t *tokens, int n, float scale, double *loss) {
    if (!g) return hr_err(HR_ERR_INVALID_ARG, "no gradient object given");
    if (!isfinite(scale)) return grad_fail(g, hr_err(HR_ERR_INVALID_ARG, "gradient scale %g is not finite", scale));
    const hr_packed_weights *pk;
    hr_status st = check_window(g, tokens, n);
    if (st == HR_OK) st = forward(g, tokens, n, &pk);
    if (st != HR_OK) return grad_fail(g, st);
    double l = xent(g, tokens, n, scale);
    if (loss) *loss = l;
    st = backward(g, tokens, n, pk);
    return st == HR_OK ? HR_OK : grad_fail(g, st);
}
