/* Activation patching, path patching, knockout, DLA and the logit lens
 * over prompt pairs (hr_patch_run, see circuits.h).
 *
 * Per pair the clean and the corrupt prompt are run once with every
 * activation recorded (resid entering each layer and after the last,
 * attention and MLP outputs, head outputs before their gates). Every
 * intervention is then a rerun from the first layer it touches
 * (hr_forward_from) with a hook that writes recorded rows into the
 * forward's buffers ("actions"). A rerun of all positions from layer l
 * reads only layers >= l, which it rewrites first, so it needs nothing of
 * the cache. A rerun of positions >= t also reads the cached keys/values of
 * positions < t in layers >= l: those must be the base run's. The
 * per-position sweeps therefore restore the base run once and then go
 * through t from the last position down: a rerun at t writes only rows >= t,
 * so rows below every later t stay the base run's. */
#include "study/circuits/circuits_internal.h"
#include "engine/kernels.h"
#include "study/intervene.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- actions: what the hook writes into (or records from) a forward ---- */

enum { K_HEAD = 0, K_ATTN, K_MLP, K_RESID, K_POST, K_Q, K_K, K_V, K_COUNT };

typedef struct {
    const float *set; /* rows written into the event (cache slot p <-> buffer row row0 + p - lo, ld floats apart) */
    float *record;    /* rows saved from the event before `set` is written */
    int ld;
    int lo, hi; /* the cache slots acted on, inclusive */
    int row0;   /* buffer row of slot lo */
} action;

typedef struct {
    int L, H;
    action *slot; /* (K_COUNT, L, H) */
    int *touched; /* (n_touched) slot indices in use */
    int n_touched, cap;
    uint32_t mask;  /* hook points with an action */
    int stop_after; /* abort the forward after this layer's residual (-1: never) */
} actions;

static const hr_hook_point k_points[K_COUNT] = {HR_HOOK_HEAD_OUT,  HR_HOOK_ATTN_OUT,   HR_HOOK_MLP_OUT,
                                                HR_HOOK_RESID_PRE, HR_HOOK_RESID_POST, HR_HOOK_Q,
                                                HR_HOOK_K,         HR_HOOK_V};

static int kind_of(hr_hook_point p) {
    for (int k = 0; k < K_COUNT; k++)
        if (k_points[k] == p) return k;
    return -1;
}

/* Slots lo..hi <-> buffer rows row0.. */
static void act_range(actions *a, int kind, int layer, int head, const float *set, float *record, int ld, int lo,
                      int hi, int row0) {
    int i = (kind * a->L + layer) * a->H + (head < 0 ? 0 : head);
    if (!a->slot[i].set && !a->slot[i].record) a->touched[a->n_touched++] = i;
    a->slot[i] = (action){set, record, ld, lo, hi, row0};
    a->mask |= k_points[kind];
}

/* Position pos (-1: every position) <-> buffer row pos. */
static void act_put(actions *a, int kind, int layer, int head, const float *set, float *record, int ld, int pos) {
    act_range(a, kind, layer, head, set, record, ld, pos < 0 ? 0 : pos, pos < 0 ? INT_MAX : pos, pos < 0 ? 0 : pos);
}

static void act_clear(actions *a) {
    for (int i = 0; i < a->n_touched; i++) a->slot[a->touched[i]] = (action){NULL, NULL, 0, 0, -1, 0};
    a->n_touched = 0;
    a->mask = 0;
    a->stop_after = -1;
}

static int act_hook(const hr_hook_event *ev, void *ud) {
    actions *a = ud;
    int kind = kind_of(ev->point);
    if (kind < 0) return 0;
    const action *ac = &a->slot[(kind * a->L + ev->layer) * a->H + (ev->head < 0 ? 0 : ev->head)];
    size_t bytes = sizeof(float) * (size_t)ev->n_cols;
    for (int t = 0; (ac->set || ac->record) && t < ev->n_tokens; t++) {
        int pos = ev->pos0 + t;
        if (pos < ac->lo || pos > ac->hi) continue;
        float *row = ev->data + (size_t)t * ev->stride;
        size_t at = (size_t)(ac->row0 + (pos - ac->lo)) * ac->ld;
        if (ac->record) memcpy(ac->record + at, row, bytes);
        if (ac->set) memcpy(row, ac->set + at, bytes);
    }
    return kind == K_POST && ev->layer == a->stop_after;
}

/* ---- per-pair run caches ---- */

typedef struct {
    float *resid;  /* (L + 1, Tmax, dim) residual entering each layer; [L] = after the last */
    float *attn;   /* (L, Tmax, dim) attention sublayer outputs */
    float *mlp;    /* (L, Tmax, dim) MLP outputs */
    float *head;   /* (L, H, Tmax, hd) head outputs before gates */
    float *logits; /* (vocab) last position */
    double metric;
} run_cache;

typedef struct {
    const hr_model *m;
    const hr_config *c;
    const hr_patch_params *p;
    hr_context *ctx;
    int L, H, hd, dim, V, Tmax, npos;
    run_cache run[2]; /* [0] clean, [1] corrupt */
    run_cache *base, *src;
    float *mid;         /* (L, Tmax, dim) base resid + attention output: the MLP's input residual */
    float *xbuf;        /* (max(Tmax, L), dim) scratch rows */
    float *logits;      /* (max(Tmax, L), vocab) */
    double *p_clean;    /* (vocab) clean next-token probabilities (kl) */
    double *logp_clean; /* (vocab) */
    actions act;
    const pair_rec *pair;
    int T;
    int p0; /* first position where clean and corrupt differ: rows before it are the same in both
                           runs (causal attention, deterministic kernels), so patches there change nothing */
    path_spec path;
    knock_spec knock;
    float *recv_buf;    /* (n_recv, Tmax, dim) what path receivers read */
    uint8_t *mask;      /* (n_ctx, n_ctx) knockout, and the variants' isolation in batched sweeps */
    int n_ctx;          /* cache slots: room for batches of variants side by side */
    float *post;        /* (n_ctx, dim) residual after the last block, per slot (batched sweeps) */
    int32_t *positions; /* (n_ctx) RoPE positions of a batch's rows */
    bool batched;       /* sweeps may run variants side by side (hr_patch_run) */
    const float *gates; /* (L, H) of the head mask, or NULL */
    float *means;       /* (L, H, hd) of mean-ablated heads, or NULL */
    int64_t done, total;
} circ;

struct hr_patch_result {
    hr_patch_summary s;
    int32_t *labels;
    double *pair_clean, *pair_corrupt;
    double *acc[5]; /* heads (L,H); attn, mlp, resid (L,npos); head_pos (L,H,npos): sums of the metric */
    double *col_clean, *col_corrupt, *col_n; /* (npos) sums over the pairs reaching a column */
    double *out[5];                          /* normalised */
    double *dla_heads, *dla_attn_bias, *dla_mlp;
    double *lens_ld, *lens_prob, *lens_rank;
    int32_t *lens_tokens;
    char *path, *knockout;
    double *path_acc, *path_heads, *knock_acc, *knock_heads;
};

hr_patch_params hr_patch_default_params(void) {
    hr_patch_params p;
    memset(&p, 0, sizeof p);
    p.what = HR_PATCH_HEADS;
    p.dla = true;
    p.lens = true;
    p.lens_top = 5;
    p.lens_pairs = 8;
    return p;
}

static const char *k_metric_names[3] = {"logit-diff", "prob", "kl"};

const char *hr_patch_metric_name(hr_patch_metric m) { return (unsigned)m < 3 ? k_metric_names[m] : "?"; }

hr_status hr_patch_parse_metric(const char *name, hr_patch_metric *out) {
    for (int i = 0; name && i < 3; i++)
        if (strcmp(name, k_metric_names[i]) == 0) {
            *out = (hr_patch_metric)i;
            return HR_OK;
        }
    return hr_err(HR_ERR_INVALID_ARG, "unknown metric '%s' (logit-diff, prob or kl)", name ? name : "");
}

hr_status hr_patch_parse_what(const char *list, unsigned *what) {
    static const struct {
        const char *name;
        unsigned bits;
    } k[] = {{"heads", HR_PATCH_HEADS},
             {"layers", HR_PATCH_ATTN},
             {"attn", HR_PATCH_ATTN},
             {"mlp", HR_PATCH_MLP},
             {"resid", HR_PATCH_RESID},
             {"positions", HR_PATCH_HEAD_POS},
             {"none", 0},
             {"all", HR_PATCH_HEADS | HR_PATCH_ATTN | HR_PATCH_MLP | HR_PATCH_RESID | HR_PATCH_HEAD_POS}};
    *what = 0;
    for (const char *s = list ? list : ""; *s;) {
        size_t n = strcspn(s, ",");
        bool found = false;
        for (size_t i = 0; i < sizeof k / sizeof k[0] && !found; i++)
            if (strlen(k[i].name) == n && strncmp(s, k[i].name, n) == 0) *what |= k[i].bits, found = true;
        if (!found)
            return hr_err(HR_ERR_INVALID_ARG,
                          "unknown component kind '%.*s' (heads, layers, mlp, resid, positions, all)", (int)n, s);
        s += n + (s[n] == ',');
    }
    return HR_OK;
}

hr_status hr_patch_check_path(const hr_config *c, const char *spec) {
    path_spec ps;
    hr_status st = hr_circ_parse_path(c, spec, &ps);
    hr_circ_path_free(&ps);
    return st;
}

hr_status hr_patch_check_knockout(const hr_config *c, const char *spec) {
    knock_spec ks;
    hr_status st = hr_circ_parse_knockout(c, spec, &ks);
    hr_circ_knockout_free(&ks);
    return st;
}

/* ---- metric ---- */

static double metric_of(const circ *s, const float *z) {
    int32_t a = s->pair->answer, w = s->pair->wrong;
    switch (s->p->metric) {
    case HR_METRIC_PROB: return exp((double)z[a] - hr_logsumexp(z, s->V));
    case HR_METRIC_KL: {
        double lse = hr_logsumexp(z, s->V), kl = 0;
        for (int i = 0; i < s->V; i++)
            if (s->p_clean[i] > 0) kl += s->p_clean[i] * (s->logp_clean[i] - ((double)z[i] - lse));
        return -kl;
    }
    default: return (double)z[a] - (double)z[w];
    }
}

static hr_status step(circ *s) {
    s->done++;
    if (s->p->progress && s->p->progress(s->done, s->total, s->p->progress_user_data))
        return hr_err(HR_ERR_ABORTED, "patching aborted by the progress callback");
    return HR_OK;
}

/* Reruns rows [t, T) from (layer, sub) with x (rows t.. of the residual)
 * under the current actions; *m = the last row's metric (m may be NULL:
 * no classifier). */
static hr_status rerun(circ *s, int layer, int sub, const float *x, int t, double *m) {
    hr_context_set_hook(s->ctx, s->act.mask ? act_hook : NULL, s->act.mask, &s->act);
    hr_status st = hr_forward_from(s->ctx, layer, sub, x, s->T - t, m ? s->logits : NULL, false);
    hr_context_set_hook(s->ctx, NULL, 0, NULL);
    if (st == HR_ERR_ABORTED && s->act.stop_after >= 0) st = HR_OK; /* stopped on purpose */
    if (st == HR_OK && m) *m = metric_of(s, s->logits);
    return st == HR_OK ? step(s) : st;
}

/* Offsets into the caches. */
static float *resid_at(const circ *s, const run_cache *r, int l) { return r->resid + (size_t)l * s->Tmax * s->dim; }
static float *attn_at(const circ *s, const run_cache *r, int l) { return r->attn + (size_t)l * s->Tmax * s->dim; }
static float *mlp_at(const circ *s, const run_cache *r, int l) { return r->mlp + (size_t)l * s->Tmax * s->dim; }
static float *head_at(const circ *s, const run_cache *r, int l, int h) {
    return r->head + ((size_t)l * s->H + h) * s->Tmax * s->hd;
}

/* A whole run of one prompt with every activation recorded. */
static hr_status record_run(circ *s, const int32_t *tokens, run_cache *r) {
    for (int l = 0; l < s->L; l++) {
        for (int h = 0; h < s->c->n_head[l]; h++) act_put(&s->act, K_HEAD, l, h, NULL, head_at(s, r, l, h), s->hd, -1);
        act_put(&s->act, K_ATTN, l, -1, NULL, attn_at(s, r, l), s->dim, -1);
        act_put(&s->act, K_MLP, l, -1, NULL, mlp_at(s, r, l), s->dim, -1);
        act_put(&s->act, K_RESID, l, -1, NULL, resid_at(s, r, l), s->dim, -1);
    }
    act_put(&s->act, K_POST, s->L - 1, -1, NULL, resid_at(s, r, s->L), s->dim, -1);
    hr_context_set_hook(s->ctx, act_hook, s->act.mask, &s->act);
    hr_status st = hr_context_truncate(s->ctx, 0);
    if (st == HR_OK) st = hr_forward(s->ctx, tokens, s->T, r->logits, false);
    hr_context_set_hook(s->ctx, NULL, 0, NULL);
    act_clear(&s->act);
    return st == HR_OK ? step(s) : st;
}

/* ---- the sweeps ---- */

static int column(const circ *s, int t) { return s->npos - s->T + t; }

static hr_status sweep_heads_fast(circ *s, hr_patch_result *r, bool *done);

/* A head's output differs between the runs only from p0 on: the rerun
 * starts there, on the base run's cached rows before it. */
static hr_status sweep_heads(circ *s, hr_patch_result *r) {
    bool done;
    hr_status fst = s->batched ? sweep_heads_fast(s, r, &done) : (done = false, HR_OK);
    if (fst != HR_OK || done) return fst;
    size_t off = (size_t)s->p0 * s->dim;
    for (int l = 0; l < s->L; l++)
        for (int h = 0; h < s->c->n_head[l]; h++) {
            double m = s->base->metric;
            act_put(&s->act, K_HEAD, l, h, head_at(s, s->src, l, h), NULL, s->hd, -1);
            hr_status st = s->p0 < s->T ? rerun(s, l, 0, resid_at(s, s->base, l) + off, s->p0, &m) : HR_OK;
            act_clear(&s->act);
            if (st != HR_OK) return st;
            r->acc[0][(size_t)l * s->H + h] += m;
        }
    return HR_OK;
}

/* Head patches side by side: g variants of the suffix (positions p0..T-1,
 * m rows each) in one rerun from layer l, variant v in cache slots
 * [S - (g - v) m, S - (g - v - 1) m) at its own RoPE positions, attending
 * to the base run's rows before p0 and to its own rows only (a mask shared
 * by every head); the metric from each variant's last row. One rerun
 * streams the weights once for g * m rows instead of g times for m, and
 * gives each cell what the one-variant rerun gives up to float rounding (the
 * softmax and value sums add the same terms in another order). */
static hr_status heads_batch(circ *s, hr_patch_result *r, int l, const int *heads, int g) {
    int m = s->T - s->p0, n = g * m, S = hr_context_n_past(s->ctx), pos0 = S - n;
    size_t dim = (size_t)s->dim, nc = (size_t)s->n_ctx;
    memset(s->mask, 1, nc * nc);
    for (int v = 0; v < g; v++) {
        int a = pos0 + v * m;
        for (int q = a; q < a + m; q++) {
            memset(s->mask + (size_t)q * nc, 0, (size_t)s->p0);
            memset(s->mask + (size_t)q * nc + a, 0, (size_t)(q - a + 1));
        }
        for (int j = 0; j < m; j++) s->positions[v * m + j] = s->p0 + j;
        memcpy(s->xbuf + (size_t)v * m * dim, resid_at(s, s->base, l) + (size_t)s->p0 * dim, sizeof(float) * dim * m);
        act_range(&s->act, K_HEAD, l, heads[v], head_at(s, s->src, l, heads[v]), NULL, s->hd, a, a + m - 1, s->p0);
    }
    act_put(&s->act, K_POST, s->L - 1, -1, NULL, s->post, s->dim, -1);
    hr_status st = hr_context_set_attn_mask(s->ctx, -1, -1, s->mask);
    hr_context_set_hook(s->ctx, act_hook, s->act.mask, &s->act);
    if (st == HR_OK) st = hr_forward_from_at(s->ctx, l, 0, s->xbuf, n, s->positions, NULL, false);
    hr_context_set_hook(s->ctx, NULL, 0, NULL);
    act_clear(&s->act);
    hr_context_set_attn_mask(s->ctx, -1, -1, NULL);
    for (int v = 0; st == HR_OK && v < g; v++) /* each variant's last row through the final norm and classifier */
        memcpy(s->xbuf + (size_t)v * dim, s->post + (size_t)(pos0 + (v + 1) * m - 1) * dim, sizeof(float) * dim);
    if (st == HR_OK) st = hr_forward_from(s->ctx, s->L, 0, s->xbuf, g, s->logits, true);
    for (int v = 0; st == HR_OK && v < g; v++)
        r->acc[0][(size_t)l * s->H + heads[v]] += metric_of(s, s->logits + (size_t)v * s->V);
    for (int v = 0; st == HR_OK && v < g; v++) st = step(s);
    return st;
}

/* The batched head sweep when the model rotates positions (RoPE) and two
 * variants fit: the cache is first filled to its end (the slots past T hold
 * whatever the padding computes; every batch masks them), and cut back to
 * the prompt afterwards. */
static hr_status sweep_heads_fast(circ *s, hr_patch_result *r, bool *done) {
    int m = s->T - s->p0, G = m > 0 ? (s->n_ctx - s->p0) / m : 0;
    *done = false;
    if (s->c->pos != HR_POS_ROPE || m <= 0 || G < 2 || !s->post) return HR_OK;
    if (G > s->H) G = s->H;
    int S = s->p0 + G * m, pad = S - s->T;
    int32_t *fill = malloc(sizeof(int32_t) * (size_t)(pad > 0 ? pad : 1)); /* (pad) any tokens */
    if (!fill) return hr_err(HR_ERR_NOMEM, "out of memory");
    for (int i = 0; i < pad; i++) fill[i] = s->pair->clean[s->T - 1];
    hr_status st = pad > 0 ? hr_forward(s->ctx, fill, pad, NULL, false) : HR_OK;
    free(fill);
    int heads[HR_MAX_HEADS];
    for (int l = 0; st == HR_OK && l < s->L; l++)
        for (int h0 = 0; st == HR_OK && h0 < s->c->n_head[l]; h0 += G) {
            int g = s->c->n_head[l] - h0 < G ? s->c->n_head[l] - h0 : G;
            for (int v = 0; v < g; v++) heads[v] = h0 + v;
            st = heads_batch(s, r, l, heads, g);
        }
    hr_status tt = hr_context_truncate(s->ctx, s->T);
    *done = true;
    return st != HR_OK ? st : tt;
}

/* Every per-position patch, positions from the last down (see the top). */
static hr_status sweep_positions(circ *s, hr_patch_result *r) {
    unsigned w = s->p->what;
    hr_status st = rerun(s, 0, 0, resid_at(s, s->base, 0), 0, NULL); /* restore the base run's cache */
    size_t dim = (size_t)s->dim;
    for (int t = s->T - 1; st == HR_OK && t >= 0; t--) {
        int col = column(s, t);
        for (int l = 0; st == HR_OK && t < s->p0 && l < s->L; l++) { /* identical rows: the base run's metric */
            double m = s->base->metric;
            size_t cell = (size_t)l * s->npos + col;
            if (w & HR_PATCH_ATTN) r->acc[1][cell] += m;
            if (w & HR_PATCH_MLP) r->acc[2][cell] += m;
            if (w & HR_PATCH_RESID) r->acc[3][cell] += m;
            for (int h = 0; (w & HR_PATCH_HEAD_POS) && h < s->c->n_head[l]; h++)
                r->acc[4][((size_t)l * s->H + h) * s->npos + col] += m;
        }
        for (int l = 0; st == HR_OK && t >= s->p0 && l < s->L; l++) {
            double m;
            size_t cell = (size_t)l * s->npos + col;
            const float *mid = s->mid + ((size_t)l * s->Tmax + t) * dim;
            if ((w & HR_PATCH_ATTN) && s->c->n_head[l] > 0) {
                /* the MLP's input residual with this row's attention output patched: the engine's x += proj */
                memcpy(s->xbuf, mid, sizeof(float) * dim * (size_t)(s->T - t));
                const float *x = resid_at(s, s->base, l) + (size_t)t * dim,
                            *o = attn_at(s, s->src, l) + (size_t)t * dim;
                for (size_t i = 0; i < dim; i++) s->xbuf[i] = x[i] + o[i];
                st = rerun(s, l, 1, s->xbuf, t, &m);
                if (st == HR_OK) r->acc[1][cell] += m;
            }
            if (st == HR_OK && (w & HR_PATCH_MLP) && s->c->n_ff[l] > 0) {
                act_put(&s->act, K_MLP, l, -1, mlp_at(s, s->src, l), NULL, s->dim, t);
                st = rerun(s, l, 1, mid, t, &m);
                act_clear(&s->act);
                if (st == HR_OK) r->acc[2][cell] += m;
            }
            if (st == HR_OK && (w & HR_PATCH_RESID)) {
                act_put(&s->act, K_RESID, l, -1, resid_at(s, s->src, l), NULL, s->dim, t);
                st = rerun(s, l, 0, resid_at(s, s->base, l) + (size_t)t * dim, t, &m);
                act_clear(&s->act);
                if (st == HR_OK) r->acc[3][cell] += m;
            }
            for (int h = 0; st == HR_OK && (w & HR_PATCH_HEAD_POS) && h < s->c->n_head[l]; h++) {
                act_put(&s->act, K_HEAD, l, h, head_at(s, s->src, l, h), NULL, s->hd, t);
                st = rerun(s, l, 0, resid_at(s, s->base, l) + (size_t)t * dim, t, &m);
                act_clear(&s->act);
                if (st == HR_OK) r->acc[4][((size_t)l * s->H + h) * s->npos + col] += m;
            }
        }
        r->col_clean[col] += s->run[0].metric;
        r->col_corrupt[col] += s->run[1].metric;
        r->col_n[col] += 1;
    }
    return st;
}

/* Path patching of one sender set (sel: (L, H) bytes): *m = metric. */
static hr_status path_once(circ *s, const uint8_t *sel, int first_sender, double *m) {
    const path_spec *ps = &s->path;
    bool freeze_mlp = !s->p->path_mlps_recomputed;
    int start = first_sender;
    if (!ps->logits && ps->first_recv < start) start = ps->first_recv;
    /* step 1: senders from the source, every other head (and MLP) frozen at the base run */
    for (int l = start; l < s->L; l++) {
        for (int h = 0; h < s->c->n_head[l]; h++)
            act_put(&s->act, K_HEAD, l, h, head_at(s, sel[(size_t)l * s->H + h] ? s->src : s->base, l, h), NULL, s->hd,
                    -1);
        if (freeze_mlp && s->c->n_ff[l] > 0) act_put(&s->act, K_MLP, l, -1, mlp_at(s, s->base, l), NULL, s->dim, -1);
    }
    size_t slab = (size_t)s->Tmax * s->dim;
    for (int i = 0; i < ps->n_recv; i++) {
        const receiver *rc = &ps->recv[i];
        float *buf = s->recv_buf + (size_t)i * slab;
        if (rc->kind == RECV_MLP)
            act_put(&s->act, K_MLP, rc->layer, -1, freeze_mlp ? mlp_at(s, s->base, rc->layer) : NULL, buf, s->dim, -1);
        else act_put(&s->act, K_Q + (int)rc->kind, rc->layer, rc->head, NULL, buf, s->hd, -1);
    }
    if (!ps->logits) {
        s->act.stop_after = ps->last_recv;
        s->act.mask |= HR_HOOK_RESID_POST;
    }
    hr_status st = rerun(s, start, 0, resid_at(s, s->base, start), 0, ps->logits ? m : NULL);
    act_clear(&s->act);
    if (st != HR_OK || ps->logits) return st;
    /* step 2: the receivers read what step 1 recorded; everything else recomputed */
    for (int i = 0; i < ps->n_recv; i++) {
        const receiver *rc = &ps->recv[i];
        float *buf = s->recv_buf + (size_t)i * slab;
        if (rc->kind == RECV_MLP) act_put(&s->act, K_MLP, rc->layer, -1, buf, NULL, s->dim, -1);
        else act_put(&s->act, K_Q + (int)rc->kind, rc->layer, rc->head, buf, NULL, s->hd, -1);
    }
    st = rerun(s, ps->first_recv, 0, resid_at(s, s->base, ps->first_recv), 0, m);
    act_clear(&s->act);
    return st;
}

typedef hr_status (*heads_run_fn)(circ *s, const uint8_t *sel, int first_layer, double *m);

/* A study of a head list (one run, into acc[0]) or, with `all`, of every
 * head on its own whose layer is eligible (into acc[layer * H + head]). */
static hr_status list_or_each(circ *s, bool all, const uint8_t *list, int first_layer,
                              bool (*eligible)(const circ *, int), heads_run_fn fn, double *acc) {
    double m;
    if (!all) {
        hr_status st = fn(s, list, first_layer, &m);
        if (st == HR_OK) acc[0] += m;
        return st;
    }
    uint8_t *one = calloc((size_t)s->L * s->H, 1);
    if (!one) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_status st = HR_OK;
    for (int l = 0; st == HR_OK && l < s->L; l++)
        for (int h = 0; st == HR_OK && h < s->c->n_head[l] && eligible(s, l); h++) {
            size_t i = (size_t)l * s->H + h;
            one[i] = 1;
            st = fn(s, one, l, &m);
            one[i] = 0;
            if (st == HR_OK) acc[i] += m;
        }
    free(one);
    return st;
}

static bool path_eligible(const circ *s, int layer) { return hr_circ_path_reaches(&s->path, layer); }
static bool any_layer(const circ *s, int layer) { return (void)s, (void)layer, true; }

static hr_status sweep_path(circ *s, hr_patch_result *r) {
    const path_spec *ps = &s->path;
    return list_or_each(s, ps->all_senders, ps->senders, ps->first_sender, path_eligible, path_once, r->path_acc);
}

/* Knockout on the clean prompt of the heads in sel; *m = metric. */
static hr_status knock_once(circ *s, const uint8_t *sel, int first_layer, double *m) {
    const knock_spec *k = &s->knock;
    int n_ctx = hr_context_n_ctx(s->ctx), first = s->L;
    (void)first_layer; /* the first masked head's layer, found below */
    memset(s->mask, 0, (size_t)n_ctx * n_ctx);
    for (int q = 0; q < s->T; q++)
        for (int kk = 0; kk <= q && hr_circ_pos_in(&k->queries, q, s->T); kk++)
            s->mask[(size_t)q * n_ctx + kk] = hr_circ_pos_in(&k->keys, kk, s->T);
    hr_status st = HR_OK;
    for (int l = 0; st == HR_OK && l < s->L; l++)
        for (int h = 0; st == HR_OK && h < s->c->n_head[l]; h++)
            if (sel[(size_t)l * s->H + h]) {
                st = hr_context_set_attn_mask(s->ctx, l, h, s->mask);
                if (l < first) first = l;
            }
    if (st == HR_OK) st = rerun(s, first, 0, resid_at(s, &s->run[0], first), 0, m);
    hr_context_clear_attn_masks(s->ctx);
    return st;
}

static hr_status sweep_knockout(circ *s, hr_patch_result *r) {
    const knock_spec *k = &s->knock;
    return list_or_each(s, k->all_heads, k->heads, k->first_layer, any_layer, knock_once, r->knock_acc);
}

/* ---- direct logit attribution and logit lens ---- */

/* d (dim): the direction whose dot product with a part of the final
 * residual is that part's contribution to the logit difference (see
 * circuits.h); *norm_bias = the LayerNorm bias's contribution. */
static void dla_direction(const circ *s, const float *x, double *d, double *norm_bias, float *rowbuf) {
    const hr_weights *w = &s->m->w;
    const float *ua = hr_model_rows(s->m, -1, HR_SLOT_OUTPUT, s->pair->answer, 1, rowbuf);
    const float *uw = hr_model_rows(s->m, -1, HR_SLOT_OUTPUT, s->pair->wrong, 1, rowbuf + s->dim);
    bool ln = s->c->norm == HR_NORM_LAYER;
    double mean = 0, var = 0;
    for (int i = 0; i < s->dim; i++) mean += x[i];
    mean /= s->dim;
    for (int i = 0; i < s->dim; i++) var += ln ? (x[i] - mean) * (x[i] - mean) : (double)x[i] * x[i];
    double scale = 1.0 / sqrt(var / s->dim + s->c->norm_eps), dm = 0;
    *norm_bias = 0;
    for (int i = 0; i < s->dim; i++) {
        double u = (double)ua[i] - uw[i];
        d[i] = scale * w->out_norm[i] * u;
        dm += d[i];
        if (ln && w->out_norm_b) *norm_bias += w->out_norm_b[i] * u;
    }
    if (ln)
        for (int i = 0; i < s->dim; i++) d[i] -= dm / s->dim;
}

static double dot_fd(const float *v, const double *d, int n) {
    double a = 0;
    for (int i = 0; i < n; i++) a += v[i] * d[i];
    return a;
}

/* Weight rows come from the model's f32 rows or are converted from its
 * typed sources one row at a time (model_internal.h hr_model_rows): the
 * classifier's two rows, the embedding rows, W_o row by row. */
static hr_status dla_pair(circ *s, hr_patch_result *r) {
    const hr_weights *w = &s->m->w;
    const run_cache *cl = &s->run[0];
    int last = s->T - 1, dim = s->dim, hd = s->hd;
    size_t nbuf = (size_t)(2 * dim > s->H * hd ? 2 * dim : s->H * hd);
    double *d = malloc(sizeof(double) * (size_t)dim), *wd = malloc(sizeof(double) * (size_t)s->H * hd);
    float *part = malloc(sizeof(float) * (size_t)dim); /* (dim) */
    float *rowbuf = malloc(sizeof(float) * nbuf);      /* (max(2 dim, H hd)) converted weight rows */
    if (!d || !wd || !part || !rowbuf) {
        free(d), free(wd), free(part), free(rowbuf);
        return hr_err(HR_ERR_NOMEM, "out of memory");
    }
    double norm_bias, sum = 0;
    dla_direction(s, resid_at(s, cl, s->L) + (size_t)last * dim, d, &norm_bias, rowbuf);
    hr_model_embed_row(s->m, s->pair->clean[last], part);
    const float *pe = hr_model_rows(s->m, -1, HR_SLOT_POS_EMBD, last, 1, rowbuf);
    if (pe) hr_axpy(part, 1.0f, pe, dim);
    double e = dot_fd(part, d, dim);
    r->s.dla_embed += e, sum += e;
    r->s.dla_norm_bias += norm_bias, sum += norm_bias;
    for (int l = 0; l < s->L; l++) {
        const hr_layer_weights *lw = &w->layers[l];
        int nh = s->c->n_head[l], qd = nh * hd;
        memset(wd, 0, sizeof(double) * (size_t)qd);
        for (int i = 0; i < dim && nh; i++) { /* wd = W_o^T d */
            const float *wo = hr_model_rows(s->m, l, HR_SLOT_O, i, 1, rowbuf);
            for (int j = 0; j < qd; j++) wd[j] += wo[j] * d[i];
        }
        hr_model_release_rows(s->m, l, HR_SLOT_O);
        for (int h = 0; h < nh; h++) {
            const float *o = head_at(s, cl, l, h) + (size_t)last * hd;
            float g = s->gates ? s->gates[(size_t)l * s->H + h] : 1.0f;
            const float *mean = s->means ? s->means + ((size_t)l * s->H + h) * hd : NULL;
            double c = 0;
            for (int j = 0; j < hd; j++)
                c += (double)(o[j] * g + (mean ? (1.0f - g) * mean[j] : 0.0f)) * wd[h * hd + j];
            r->dla_heads[(size_t)l * s->H + h] += c, sum += c;
        }
        if (lw->bo && nh) {
            double c = dot_fd(lw->bo, d, dim);
            r->dla_attn_bias[l] += c, sum += c;
        }
        if (s->c->n_ff[l]) {
            double c = dot_fd(mlp_at(s, cl, l) + (size_t)last * dim, d, dim);
            r->dla_mlp[l] += c, sum += c;
        }
    }
    r->s.dla_sum += sum;
    r->s.dla_total += (double)cl->logits[s->pair->answer] - cl->logits[s->pair->wrong];
    free(d), free(wd), free(part), free(rowbuf);
    return HR_OK;
}

/* The residual after each block at the last position through the final
 * norm and the classifier (the engine's, from layer n_layers). */
static hr_status lens_pair(circ *s, hr_patch_result *r, int pair_index) {
    int last = s->T - 1, k = s->p->lens_top;
    size_t V = (size_t)s->V;
    for (int l0 = 0; l0 < s->L; l0 += s->T) {
        int rows = s->L - l0 < s->T ? s->L - l0 : s->T;
        for (int i = 0; i < rows; i++)
            memcpy(s->xbuf + (size_t)i * s->dim, resid_at(s, &s->run[0], l0 + i + 1) + (size_t)last * s->dim,
                   sizeof(float) * (size_t)s->dim);
        hr_status st = hr_forward_from(s->ctx, s->L, 0, s->xbuf, rows, s->logits, true);
        if (st == HR_OK) st = step(s);
        if (st != HR_OK) return st;
        for (int i = 0; i < rows; i++) {
            const float *z = s->logits + (size_t)i * V;
            int l = l0 + i;
            float za = z[s->pair->answer];
            int rank = 1;
            for (size_t j = 0; j < V; j++) rank += z[j] > za;
            r->lens_ld[l] += (double)za - z[s->pair->wrong];
            r->lens_prob[l] += exp((double)za - hr_logsumexp(z, s->V));
            r->lens_rank[l] += rank;
            if (pair_index >= s->p->lens_pairs) continue;
            int32_t *top = r->lens_tokens + ((size_t)pair_index * s->L + l) * k;
            for (int t = 0; t < k; t++) { /* k passes of argmax over what is left */
                int32_t best = -1;
                for (size_t j = 0; j < V; j++) {
                    bool taken = false;
                    for (int u = 0; u < t; u++) taken |= top[u] == (int32_t)j;
                    if (!taken && (best < 0 || z[j] > z[best])) best = (int32_t)j;
                }
                top[t] = best;
            }
        }
    }
    return HR_OK;
}

/* ---- one pair ---- */

static hr_status clean_probs(circ *s) {
    const float *z = s->run[0].logits;
    double lse = hr_logsumexp(z, s->V);
    for (int i = 0; i < s->V; i++) {
        s->logp_clean[i] = (double)z[i] - lse;
        s->p_clean[i] = exp(s->logp_clean[i]);
    }
    return HR_OK;
}

/* Records both runs of pair i and sets base / source by the direction. */
static hr_status start_pair(circ *s, const pair_rec *pr) {
    s->pair = pr;
    s->T = pr->n;
    for (s->p0 = 0; s->p0 < s->T && pr->clean[s->p0] == pr->corrupt[s->p0]; s->p0++) {}
    bool noise = s->p->direction == HR_PATCH_NOISE;
    s->base = &s->run[noise ? 0 : 1];
    s->src = &s->run[noise ? 1 : 0];
    /* the base run last: its keys and values stay in the cache */
    hr_status st = record_run(s, noise ? pr->corrupt : pr->clean, s->src);
    if (st == HR_OK) st = record_run(s, noise ? pr->clean : pr->corrupt, s->base);
    if (st != HR_OK) return st;
    if (s->p->metric == HR_METRIC_KL) clean_probs(s);
    for (int i = 0; i < 2; i++) s->run[i].metric = metric_of(s, s->run[i].logits);
    size_t dim = (size_t)s->dim;
    for (int l = 0; l < s->L; l++)
        for (size_t j = 0; j < (size_t)s->T * dim; j++) {
            size_t o = (size_t)l * s->Tmax * dim + j;
            s->mid[o] = s->c->n_head[l] ? s->base->resid[o] + s->base->attn[o] : s->base->resid[o];
        }
    return HR_OK;
}

static hr_status do_pair(circ *s, hr_patch_result *r, const pair_rec *pr, int i) {
    hr_status st = start_pair(s, pr);
    if (st != HR_OK) return st;
    r->pair_clean[i] = s->run[0].metric;
    r->pair_corrupt[i] = s->run[1].metric;
    r->s.clean += s->run[0].metric;
    int32_t top = 0;
    for (int v = 1; v < s->V; v++)
        if (s->run[0].logits[v] > s->run[0].logits[top]) top = v;
    r->s.clean_top_answer += top == pr->answer;
    r->s.clean_top_wrong += top == pr->wrong;
    r->s.corrupt += s->run[1].metric;
    const hr_patch_params *p = s->p;
    if (p->dla) st = dla_pair(s, r);
    if (st == HR_OK && p->lens) st = lens_pair(s, r, i);
    if (st == HR_OK && (p->what & HR_PATCH_HEADS)) st = sweep_heads(s, r);
    if (st == HR_OK && p->path) st = sweep_path(s, r);
    if (st == HR_OK && p->knockout) st = sweep_knockout(s, r);
    if (st == HR_OK && (p->what & (HR_PATCH_ATTN | HR_PATCH_MLP | HR_PATCH_RESID | HR_PATCH_HEAD_POS)))
        st = sweep_positions(s, r);
    return st;
}

/* Forward passes one pair of T tokens costs (the progress total). */
static int64_t runs_per_pair(const circ *s, const pair_rec *pr) {
    const hr_patch_params *p = s->p;
    int64_t n = 2, heads = 0, ff = 0, attn = 0, T = pr->n, p0 = 0;
    while (p0 < T && pr->clean[p0] == pr->corrupt[p0]) p0++;
    for (int l = 0; l < s->L; l++) heads += s->c->n_head[l], ff += s->c->n_ff[l] > 0, attn += s->c->n_head[l] > 0;
    if (p->lens) n += (s->L + T - 1) / T;
    if (p->what & HR_PATCH_HEADS) n += p0 < T ? heads : 0;
    if (p->path) {
        int64_t per = s->path.logits ? 1 : 2, senders = 1;
        if (s->path.all_senders) {
            senders = 0;
            for (int l = 0; l < s->L; l++) senders += hr_circ_path_reaches(&s->path, l) ? s->c->n_head[l] : 0;
        }
        n += senders * per;
    }
    if (p->knockout) n += s->knock.all_heads ? heads : 1;
    unsigned w = p->what;
    if (w & (HR_PATCH_ATTN | HR_PATCH_MLP | HR_PATCH_RESID | HR_PATCH_HEAD_POS))
        n += 1 + (T - p0) * ((w & HR_PATCH_ATTN ? attn : 0) + (w & HR_PATCH_MLP ? ff : 0) +
                             (w & HR_PATCH_RESID ? s->L : 0) + (w & HR_PATCH_HEAD_POS ? heads : 0));
    return n;
}

/* ---- setup and teardown ---- */

static void circ_free(circ *s) {
    for (int i = 0; i < 2; i++) {
        free(s->run[i].resid), free(s->run[i].attn), free(s->run[i].mlp), free(s->run[i].head);
        free(s->run[i].logits);
    }
    free(s->mid), free(s->xbuf), free(s->logits), free(s->p_clean), free(s->logp_clean);
    free(s->act.slot), free(s->act.touched);
    free(s->recv_buf), free(s->mask), free(s->means), free(s->post), free(s->positions);
    hr_circ_path_free(&s->path);
    hr_circ_knockout_free(&s->knock);
    hr_context_free(s->ctx);
}

static void *falloc(size_t a, size_t b, size_t c, bool *ok) {
    size_t n;
    if (!hr_mul_size(a, b, &n) || !hr_mul_size(n, c, &n) || !hr_mul_size(n, sizeof(float), &n)) {
        *ok = false;
        return NULL;
    }
    void *p = calloc(1, n ? n : 1);
    *ok = *ok && p;
    return p;
}

/* Checks everything about the inputs, then allocates the state. */
static hr_status circ_new(const hr_model *m, const hr_pairs *pairs, const hr_patch_params *p, circ *s) {
    memset(s, 0, sizeof *s);
    if (!m || !pairs || !p) return hr_err(HR_ERR_INVALID_ARG, "patching needs a model, pairs and parameters");
    const hr_config *c = hr_model_config(m);
    s->m = m, s->c = c, s->p = p;
    s->L = c->n_layers, s->H = hr_config_max_heads(c) ? hr_config_max_heads(c) : 1, s->hd = c->head_dim;
    s->dim = c->dim, s->V = c->vocab_size;
    s->act.stop_after = -1;
    if (pairs->n < 1) return hr_err(HR_ERR_INVALID_ARG, "no prompt pairs");
    if ((unsigned)p->metric > HR_METRIC_KL || (unsigned)p->direction > HR_PATCH_NOISE || (p->what & ~31u) ||
        p->lens_top < 1 || p->lens_top > 100 || p->lens_pairs < 0 || p->n_threads < 0)
        return hr_err(HR_ERR_RANGE, "patching parameter out of range");
    for (int i = 0; i < pairs->n; i++) {
        const pair_rec *pr = &pairs->p[i];
        char where[48];
        snprintf(where, sizeof where, pr->line ? "pairs line %d" : "pair %d", pr->line ? pr->line : i + 1);
        if (pr->n > c->seq_len)
            return hr_err(HR_ERR_RANGE, "%s: %d tokens exceed the model's context of %d", where, pr->n, c->seq_len);
        for (int t = 0; t < pr->n; t++)
            if (pr->clean[t] < 0 || pr->clean[t] >= s->V || pr->corrupt[t] < 0 || pr->corrupt[t] >= s->V)
                return hr_err(HR_ERR_INVALID_ARG, "%s: token id outside the vocabulary (%d)", where, s->V);
        if (pr->answer < 0 || pr->answer >= s->V || pr->wrong < 0 || pr->wrong >= s->V)
            return hr_err(HR_ERR_INVALID_ARG, "%s: answer id outside the vocabulary (%d)", where, s->V);
        if (pr->n > s->Tmax) s->Tmax = pr->n;
    }
    s->npos = s->Tmax;
    hr_status st = HR_OK;
    if (p->path) st = hr_circ_parse_path(c, p->path, &s->path);
    if (st == HR_OK && p->knockout) st = hr_circ_parse_knockout(c, p->knockout, &s->knock);
    if (st != HR_OK) return st;
    /* room for the variants of the batched head sweep: up to H suffixes, at most ~1024 rows */
    int room = s->Tmax * s->H < s->Tmax + 1024 ? s->Tmax * s->H : s->Tmax + 1024;
    s->n_ctx = room < c->seq_len ? room : c->seq_len;
    if (s->n_ctx < s->Tmax) s->n_ctx = s->Tmax;
    hr_context_params cp = hr_context_default_params();
    cp.n_ctx = s->n_ctx;
    cp.n_batch = s->n_ctx;
    cp.n_threads = p->n_threads;
    st = hr_context_new(m, &cp, &s->ctx);
    if (st == HR_OK && p->heads) {
        s->gates = hr_head_mask_gates(p->heads);
        st = hr_head_mask_means(p->heads, m, p->n_threads, p->calib_tokens, p->n_calib_tokens, &s->means);
        if (st == HR_OK) st = hr_context_set_head_means(s->ctx, s->means);
        if (st == HR_OK) st = hr_context_set_head_gates(s->ctx, s->gates);
    }
    if (st != HR_OK) return st;
    bool ok = true;
    size_t T = (size_t)s->Tmax, L = (size_t)s->L, dim = (size_t)s->dim, rows = T > L ? T : L;
    for (int i = 0; i < 2; i++) {
        s->run[i].resid = falloc(L + 1, T, dim, &ok);
        s->run[i].attn = falloc(L, T, dim, &ok);
        s->run[i].mlp = falloc(L, T, dim, &ok);
        s->run[i].head = falloc(L * s->H, T, (size_t)s->hd, &ok);
        s->run[i].logits = falloc(1, 1, (size_t)s->V, &ok);
    }
    s->mid = falloc(L, T, dim, &ok);
    size_t nc = (size_t)s->n_ctx;
    if (rows < nc) rows = nc;
    s->post = falloc(nc, dim, 1, &ok);
    s->positions = calloc(nc, sizeof(int32_t));
    s->mask = calloc(nc * nc, 1);
    ok = ok && s->positions && s->mask;
    s->xbuf = falloc(rows, dim, 1, &ok);
    s->logits = falloc(rows, (size_t)s->V, 1, &ok);
    s->p_clean = calloc((size_t)s->V, sizeof(double));
    s->logp_clean = calloc((size_t)s->V, sizeof(double));
    ok = ok && s->p_clean && s->logp_clean;
    s->act.L = s->L, s->act.H = s->H;
    s->act.slot = calloc((size_t)K_COUNT * L * s->H, sizeof(action));
    s->act.touched = calloc((size_t)K_COUNT * L * s->H, sizeof(int));
    ok = ok && s->act.slot && s->act.touched;
    if (p->path && s->path.n_recv) s->recv_buf = falloc((size_t)s->path.n_recv, T, dim, &ok);
    if (!ok) return hr_err(HR_ERR_NOMEM, "out of memory for the patching caches (%zu positions)", T);
    for (int64_t i = 0; i < pairs->n; i++) s->total += runs_per_pair(s, &pairs->p[i]);
    return HR_OK;
}

/* ---- results ---- */

void hr_patch_result_free(hr_patch_result *r) {
    if (!r) return;
    free(r->labels), free(r->pair_clean), free(r->pair_corrupt);
    for (int i = 0; i < 5; i++) free(r->acc[i]), free(r->out[i]);
    free(r->col_clean), free(r->col_corrupt), free(r->col_n);
    free(r->dla_heads), free(r->dla_attn_bias), free(r->dla_mlp);
    free(r->lens_ld), free(r->lens_prob), free(r->lens_rank), free(r->lens_tokens);
    free(r->path), free(r->knockout), free(r->path_acc), free(r->path_heads), free(r->knock_acc), free(r->knock_heads);
    free(r);
}

const hr_patch_summary *hr_patch_result_summary(const hr_patch_result *r) { return r ? &r->s : NULL; }

static double *dalloc(size_t n, bool *ok) {
    double *p = calloc(n ? n : 1, sizeof(double));
    *ok = *ok && p;
    return p;
}

static hr_status result_new(const circ *s, const hr_pairs *pairs, hr_patch_result **out) {
    hr_patch_result *r = calloc(1, sizeof *r);
    if (!r) return hr_err(HR_ERR_NOMEM, "out of memory");
    const hr_patch_params *p = s->p;
    size_t L = (size_t)s->L, H = (size_t)s->H, P = (size_t)s->npos, n = (size_t)pairs->n;
    bool ok = true;
    r->labels = calloc(P, sizeof(int32_t)), ok = ok && r->labels;
    r->pair_clean = dalloc(n, &ok), r->pair_corrupt = dalloc(n, &ok);
    static const unsigned bits[5] = {HR_PATCH_HEADS, HR_PATCH_ATTN, HR_PATCH_MLP, HR_PATCH_RESID, HR_PATCH_HEAD_POS};
    const size_t sizes[5] = {L * H, L * P, L * P, L * P, L * H * P};
    for (int i = 0; i < 5; i++)
        if (p->what & bits[i]) r->acc[i] = dalloc(sizes[i], &ok), r->out[i] = dalloc(sizes[i], &ok);
    r->col_clean = dalloc(P, &ok), r->col_corrupt = dalloc(P, &ok), r->col_n = dalloc(P, &ok);
    if (p->dla) r->dla_heads = dalloc(L * H, &ok), r->dla_attn_bias = dalloc(L, &ok), r->dla_mlp = dalloc(L, &ok);
    int lens_pairs = p->lens_pairs < pairs->n ? p->lens_pairs : pairs->n;
    if (p->lens) {
        r->lens_ld = dalloc(L, &ok), r->lens_prob = dalloc(L, &ok), r->lens_rank = dalloc(L, &ok);
        r->lens_tokens = calloc((size_t)lens_pairs * L * (size_t)p->lens_top + 1, sizeof(int32_t));
        ok = ok && r->lens_tokens;
    }
    if (p->path) {
        r->path = strdup(p->path), ok = ok && r->path;
        r->path_acc = dalloc(L * H, &ok);
        if (s->path.all_senders) r->path_heads = dalloc(L * H, &ok);
    }
    if (p->knockout) {
        r->knockout = strdup(p->knockout), ok = ok && r->knockout;
        r->knock_acc = dalloc(L * H, &ok);
        if (s->knock.all_heads) r->knock_heads = dalloc(L * H, &ok);
    }
    if (!ok) {
        hr_patch_result_free(r);
        return hr_err(HR_ERR_NOMEM, "out of memory for the patching results");
    }
    for (int i = 0; i < pairs->n; i++)
        if (pairs->p[i].n == s->Tmax) {
            memcpy(r->labels, pairs->p[i].clean, sizeof(int32_t) * P);
            break;
        }
    r->s.lens_pairs = lens_pairs;
    *out = r;
    return HR_OK;
}

static double norm_value(double mean, double clean, double corrupt) {
    double den = clean - corrupt;
    return den != 0 ? (mean - corrupt) / den : NAN;
}

/* Means, normalisation, NaN where a component does not exist. */
static void finish(const circ *s, hr_patch_result *r, int n_pairs) {
    hr_patch_summary *q = &r->s;
    double n = n_pairs;
    q->clean /= n, q->corrupt /= n;
    int L = s->L, H = s->H, P = s->npos;
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++) {
            bool has = h < s->c->n_head[l];
            size_t i = (size_t)l * H + h;
            if (r->out[0]) r->out[0][i] = has ? norm_value(r->acc[0][i] / n, q->clean, q->corrupt) : NAN;
            if (r->path_heads)
                r->path_heads[i] = has && hr_circ_path_reaches(&s->path, l)
                                       ? norm_value(r->path_acc[i] / n, q->clean, q->corrupt)
                                       : NAN;
            if (r->knock_heads) r->knock_heads[i] = has ? norm_value(r->knock_acc[i] / n, q->clean, q->corrupt) : NAN;
            if (r->dla_heads) r->dla_heads[i] = has ? r->dla_heads[i] / n : NAN;
            for (int c = 0; r->out[4] && c < P; c++) {
                size_t k = i * P + c;
                double cn = r->col_n[c];
                r->out[4][k] =
                    has && cn ? norm_value(r->acc[4][k] / cn, r->col_clean[c] / cn, r->col_corrupt[c] / cn) : NAN;
            }
        }
    for (int k = 1; k <= 3; k++)
        for (int l = 0; r->out[k] && l < L; l++)
            for (int c = 0; c < P; c++) {
                size_t i = (size_t)l * P + c;
                double cn = r->col_n[c];
                bool has = k == 1 ? s->c->n_head[l] > 0 : k == 2 ? s->c->n_ff[l] > 0 : true;
                r->out[k][i] =
                    has && cn ? norm_value(r->acc[k][i] / cn, r->col_clean[c] / cn, r->col_corrupt[c] / cn) : NAN;
            }
    q->path_value = r->path && !r->path_heads ? norm_value(r->path_acc[0] / n, q->clean, q->corrupt) : NAN;
    q->knockout_value = r->knockout && !r->knock_heads ? norm_value(r->knock_acc[0] / n, q->clean, q->corrupt) : NAN;
    if (r->dla_heads) {
        q->has_dla = true;
        q->dla_total /= n, q->dla_sum /= n, q->dla_embed /= n, q->dla_norm_bias /= n;
        for (int l = 0; l < L; l++) {
            r->dla_attn_bias[l] = s->c->n_head[l] ? r->dla_attn_bias[l] / n : NAN;
            r->dla_mlp[l] = s->c->n_ff[l] ? r->dla_mlp[l] / n : NAN;
        }
        q->has_attn_bias = s->m->w.layers[0].bo != NULL;
        q->has_norm_bias = s->m->w.out_norm_b != NULL;
    }
    for (int l = 0; r->lens_ld && l < L; l++) r->lens_ld[l] /= n, r->lens_prob[l] /= n, r->lens_rank[l] /= n;
    q->has_lens = r->lens_ld != NULL;
    q->n_pairs = n_pairs, q->n_layers = L, q->max_heads = H, q->n_positions = P;
    q->metric = s->p->metric, q->direction = s->p->direction;
    q->labels = r->labels;
    q->pair_clean = r->pair_clean, q->pair_corrupt = r->pair_corrupt;
    q->heads = r->out[0], q->attn = r->out[1], q->mlp = r->out[2], q->resid = r->out[3], q->head_pos = r->out[4];
    q->dla_heads = r->dla_heads, q->dla_attn_bias = r->dla_attn_bias, q->dla_mlp = r->dla_mlp;
    q->lens_top = s->p->lens_top;
    q->lens_logit_diff = r->lens_ld, q->lens_prob = r->lens_prob, q->lens_rank = r->lens_rank;
    q->lens_tokens = r->lens_tokens;
    q->path = r->path, q->knockout = r->knockout;
    q->path_heads = r->path_heads, q->knockout_heads = r->knock_heads;
    q->forward_passes = s->done;
    double gap = fabs(q->clean - q->corrupt);
    if (gap < 0.01 * (fabs(q->clean) + fabs(q->corrupt) + 1))
        snprintf(q->warning, sizeof q->warning,
                 "the clean and corrupt runs differ by only %.3g in %s (%.4g vs %.4g): normalised values divide by "
                 "that and mean little; the model does not tell these pairs apart",
                 gap, hr_patch_metric_name(q->metric), q->clean, q->corrupt);
}

hr_status hr_patch_run(const hr_model *m, const hr_pairs *pairs, const hr_patch_params *p, hr_patch_result **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    circ s;
    hr_patch_result *r = NULL;
    hr_status st = circ_new(m, pairs, p, &s);
    s.batched = true;
    if (st == HR_OK) st = result_new(&s, pairs, &r);
    for (int i = 0; st == HR_OK && i < pairs->n; i++) st = do_pair(&s, r, &pairs->p[i], i);
    if (st == HR_OK) finish(&s, r, pairs->n);
    circ_free(&s);
    if (st != HR_OK) {
        hr_patch_result_free(r);
        return st;
    }
    *out = r;
    return HR_OK;
}

/* ---- one intervention ---- */

/* Buffers of merged rows per slot: base rows with source rows at the
 * components' positions. */
static hr_status patch_comps(circ *s, const hr_component *comps, int n, float **bufs, int *first) {
    const int ld_of[4] = {s->hd, s->dim, s->dim, s->dim};
    const int kind_of_comp[4] = {K_HEAD, K_ATTN, K_MLP, K_RESID};
    *first = s->L;
    for (int i = 0; i < n; i++) {
        const hr_component *cp = &comps[i];
        if ((unsigned)cp->kind > HR_COMP_RESID || cp->layer < 0 || cp->layer >= s->L ||
            (cp->kind == HR_COMP_HEAD && (cp->head < 0 || cp->head >= s->c->n_head[cp->layer])) || cp->pos < -1 ||
            cp->pos >= s->T)
            return hr_err(HR_ERR_RANGE, "component %d is outside the model or the prompt", i);
        int head = cp->kind == HR_COMP_HEAD ? cp->head : 0, ld = ld_of[cp->kind];
        size_t slot = ((size_t)kind_of_comp[cp->kind] * s->L + cp->layer) * s->H + head;
        const float *base, *src;
        switch (cp->kind) {
        case HR_COMP_HEAD:
            base = head_at(s, s->base, cp->layer, head), src = head_at(s, s->src, cp->layer, head);
            break;
        case HR_COMP_ATTN: base = attn_at(s, s->base, cp->layer), src = attn_at(s, s->src, cp->layer); break;
        case HR_COMP_MLP: base = mlp_at(s, s->base, cp->layer), src = mlp_at(s, s->src, cp->layer); break;
        default: base = resid_at(s, s->base, cp->layer), src = resid_at(s, s->src, cp->layer); break;
        }
        if (!bufs[slot]) {
            if (!(bufs[slot] = malloc(sizeof(float) * (size_t)s->Tmax * ld)))
                return hr_err(HR_ERR_NOMEM, "out of memory");
            memcpy(bufs[slot], base, sizeof(float) * (size_t)s->T * ld);
            act_put(&s->act, kind_of_comp[cp->kind], cp->layer, head, bufs[slot], NULL, ld, -1);
        }
        for (int t = 0; t < s->T; t++)
            if (cp->pos < 0 || cp->pos == t)
                memcpy(bufs[slot] + (size_t)t * ld, src + (size_t)t * ld, sizeof(float) * ld);
        if (cp->layer < *first) *first = cp->layer;
    }
    return HR_OK;
}

hr_status hr_patch_components(const hr_model *m, const hr_pairs *pairs, int pair, const hr_component *comps, int n,
                              const hr_patch_params *p, float *logits, double *value) {
    if (!pairs || pair < 0 || pair >= pairs->n || n < 0 || (n > 0 && !comps))
        return hr_err(HR_ERR_INVALID_ARG, "no pair %d or no components", pair);
    hr_pairs one = {(pair_rec *)&pairs->p[pair], 1, 1};
    hr_patch_params q = p ? *p : hr_patch_default_params();
    q.path = q.knockout = NULL, q.progress = NULL;
    circ s;
    hr_status st = circ_new(m, &one, &q, &s);
    float **bufs = NULL;
    if (st == HR_OK) st = start_pair(&s, one.p);
    if (st == HR_OK && !(bufs = calloc((size_t)K_COUNT * s.L * s.H, sizeof(float *))))
        st = hr_err(HR_ERR_NOMEM, "out of memory");
    int first = s.L;
    double mv = 0;
    if (st == HR_OK) st = patch_comps(&s, comps, n, bufs, &first);
    if (st == HR_OK && n > 0) st = rerun(&s, first, 0, resid_at(&s, s.base, first), 0, &mv);
    else if (st == HR_OK) memcpy(s.logits, s.base->logits, sizeof(float) * (size_t)s.V), mv = s.base->metric;
    if (st == HR_OK && logits) memcpy(logits, s.logits, sizeof(float) * (size_t)s.V);
    if (st == HR_OK && value) *value = norm_value(mv, s.run[0].metric, s.run[1].metric);
    for (size_t i = 0; bufs && i < (size_t)K_COUNT * s.L * s.H; i++) free(bufs[i]);
    free(bufs);
    circ_free(&s);
    return st;
}
