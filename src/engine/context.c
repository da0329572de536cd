/* Inference context: RunState, KV cache and the Llama forward pass. */
#include "headroom/context.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "engine/blas.h"
#include "engine/context_internal.h"
#include "engine/kernels.h"
#include "engine/kv/store.h"
#include "engine/pack.h"
#include "engine/pool.h"
#include "model/model_internal.h"

enum { MAX_CHUNKS = 8 }; /* token chunks per head in attention tasks */
enum { ATT_Q = 4 };      /* queries of a head sharing each key/value load */

struct hr_context {
    const hr_model *model;
    const hr_config *c;
    int n_ctx, n_batch, n_past;
    int q_dim, kv_dim, max_ff, max_heads; /* widest layer */
    hr_pool *pool;
    const hr_packed_weights *packed; /* the model's panel-packed matrices */
    bool blas;                       /* batched products through OpenBLAS */
    uint32_t *xq;  /* (n_batch, (widest product input + 1) / 2) bf16 activation pairs (kernels.h's bf16 dot), or NULL */
    hr_q8_act *xa; /* (n_batch, (widest product input + 31) / 32) int8 activation blocks (the int8 dot), or NULL */

    /* One store per KV head, keys/values transposed (head_dim, slots) so
     * attention runs along positions with contiguous vector loads; each
     * follows its policy (engine/kv/policy.h) through the store functions. */
    hr_kv_store *kv[HR_MAX_LAYERS];   /* (n_head_kv[l]) */
    bool layer_direct[HR_MAX_LAYERS]; /* every store of the layer keeps all positions */
    bool has_policies;                /* some store evicts */
    hr_kv_gather_buf gather;          /* per KV head: visible keys/values of evicting stores, gathered */
    size_t kv_bytes;                  /* stores + gather buffer (hr_context_kv_bytes) */
    float *rope_cos, *rope_sin;       /* (n_ctx, head_dim/2) */

    float *x;                /* (n_batch, dim) residual stream */
    float *xb;               /* (n_batch, dim) normed sublayer input */
    float *q;                /* (n_batch, q_dim) queries */
    float *k, *v;            /* (n_batch, kv_dim) new keys / values */
    float *att;              /* (n_batch, q_dim) per-head attention output, before Wo */
    float *proj;             /* (n_batch, dim) sublayer output */
    float *hb;               /* (n_batch, max_ff) gate, then silu(gate)*up */
    float *hb2;              /* (n_batch, max_ff) up */
    float *last_logits;      /* (vocab) */
    float *scores;           /* (max_heads * MAX_CHUNKS * ATT_Q, n_ctx) attention scratch per task */
    float *probs;            /* (max_heads, n_batch, n_ctx) kept only while a probs hook listens */
    float *gates;            /* (n_layers, max_heads) head output multipliers */
    float *head_means;       /* (n_layers, max_heads, head_dim) or NULL: what a gated-off head is replaced by */
    uint8_t **attn_mask;     /* (n_layers * max_heads) per head NULL or (n_ctx, n_ctx) blocked keys; NULL = none */
    uint8_t *attn_mask_all;  /* (n_ctx, n_ctx) blocked keys of every head without a mask of its own, or NULL */
    const int32_t *rope_pos; /* (n_ctx) RoPE position of each cache slot during hr_forward_from_at, or NULL */

    hr_hook_fn hook;
    uint32_t hook_mask;
    void *hook_ud;
    char err[512];
};

hr_context_params hr_context_default_params(void) {
    hr_context_params p = {0, 0, 0, NULL, false, false, false};
    return p;
}

static hr_status ctx_fail(hr_context *ctx, hr_status st) {
    if (ctx) snprintf(ctx->err, sizeof ctx->err, "%s", hr_last_error());
    return st;
}

const char *hr_context_last_error(const hr_context *ctx) { return ctx ? ctx->err : ""; }

static float *alloc_floats(size_t a, size_t b, size_t *bytes_acc) {
    size_t n, bytes;
    if (!hr_mul_size(a, b, &n) || !hr_mul_size(n, sizeof(float), &bytes)) return NULL;
    float *p = calloc(1, bytes ? bytes : 1);
    if (p && bytes_acc) *bytes_acc += bytes;
    return p;
}

void hr_context_free(hr_context *ctx) {
    if (!ctx) return;
    for (int l = 0; l < HR_MAX_LAYERS; l++) {
        if (!ctx->kv[l]) continue;
        for (int g = 0; g < ctx->c->n_head_kv[l]; g++) hr_kv_store_free(&ctx->kv[l][g]);
        free(ctx->kv[l]);
    }
    hr_kv_gather_buf_free(&ctx->gather);
    if (ctx->packed) hr_model_packed_release(ctx->model);
    float *bufs[] = {ctx->rope_cos, ctx->rope_sin, ctx->x,     ctx->xb,        ctx->q,   ctx->k,
                     ctx->v,        ctx->att,      ctx->proj,  ctx->hb,        ctx->hb2, ctx->last_logits,
                     ctx->scores,   ctx->probs,    ctx->gates, ctx->head_means};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(ctx->xq);
    free(ctx->xa);
    hr_context_clear_attn_masks(ctx);
    hr_pool_free(ctx->pool);
    free(ctx);
}

static hr_status alloc_kv(hr_context *ctx, const hr_kv_plan *plan) {
    const hr_config *c = ctx->c;
    int max_gather = 0;
    bool observe = false;
    for (int l = 0; l < c->n_layers; l++) {
        ctx->layer_direct[l] = true;
        if (c->n_head_kv[l] == 0) continue;
        ctx->kv[l] = calloc((size_t)c->n_head_kv[l], sizeof(hr_kv_store));
        if (!ctx->kv[l]) return hr_err(HR_ERR_NOMEM, "out of memory for the KV cache");
        for (int g = 0; g < c->n_head_kv[l]; g++) {
            hr_kv_policy pol = hr_kv_plan_get(plan, l, g);
            hr_status st = hr_kv_policy_validate(&pol, ctx->n_ctx);
            if (st != HR_OK) {
                hr_err_prefix("KV plan, layer %d KV head %d", l, g);
                return st;
            }
            st = hr_kv_store_init(&ctx->kv[l][g], &pol, ctx->n_ctx, c->head_dim, &ctx->kv_bytes);
            if (st != HR_OK) return st;
            if (!hr_kv_store_direct(&ctx->kv[l][g])) {
                ctx->layer_direct[l] = false;
                ctx->has_policies = true;
                int need = hr_kv_store_max_gathered(&ctx->kv[l][g], ctx->n_batch);
                if (need > max_gather) max_gather = need;
                observe = observe || hr_kv_store_observes(&ctx->kv[l][g]);
            }
        }
    }
    if (!ctx->has_policies) return HR_OK;
    /* +16: see hr_kv_store.ld */
    return hr_kv_gather_buf_init(&ctx->gather, hr_config_max_kv_heads(c), c->head_dim, max_gather + 16, ctx->n_batch,
                                 observe, &ctx->kv_bytes);
}

static hr_status alloc_state(hr_context *ctx, const hr_kv_plan *plan, const hr_context_params *cp) {
    const hr_config *c = ctx->c;
    size_t nb = (size_t)ctx->n_batch, hd = (size_t)c->head_dim;
    hr_status kst = alloc_kv(ctx, plan);
    if (kst != HR_OK) return kst;
    ctx->rope_cos = alloc_floats((size_t)ctx->n_ctx, hd / 2, NULL);
    ctx->rope_sin = alloc_floats((size_t)ctx->n_ctx, hd / 2, NULL);
    ctx->x = alloc_floats(nb, (size_t)c->dim, NULL);
    ctx->xb = alloc_floats(nb, (size_t)c->dim, NULL);
    ctx->q = alloc_floats(nb, (size_t)ctx->q_dim, NULL);
    ctx->k = alloc_floats(nb, (size_t)ctx->kv_dim, NULL);
    ctx->v = alloc_floats(nb, (size_t)ctx->kv_dim, NULL);
    ctx->att = alloc_floats(nb, (size_t)ctx->q_dim, NULL);
    ctx->proj = alloc_floats(nb, (size_t)c->dim, NULL);
    ctx->hb = alloc_floats(nb, (size_t)(ctx->max_ff ? ctx->max_ff : 1), NULL);
    ctx->hb2 = alloc_floats(nb, (size_t)(ctx->max_ff ? ctx->max_ff : 1), NULL);
    ctx->last_logits = alloc_floats((size_t)c->vocab_size, 1, NULL);
    ctx->scores =
        alloc_floats((size_t)(ctx->max_heads ? ctx->max_heads : 1) * MAX_CHUNKS * ATT_Q, (size_t)ctx->n_ctx, NULL);
    ctx->gates = alloc_floats((size_t)c->n_layers, (size_t)(ctx->max_heads ? ctx->max_heads : 1), NULL);
    int widest = c->dim > ctx->q_dim ? c->dim : ctx->q_dim;
    widest = ctx->max_ff > widest ? ctx->max_ff : widest;
    if (cp->bf16_dot && !(ctx->xq = malloc(sizeof(uint32_t) * nb * (size_t)((widest + 1) / 2))))
        return hr_err(HR_ERR_NOMEM, "out of memory for the run state");
    if (cp->int8_dot && !(ctx->xa = malloc(hr_q8_act_bytes((int)nb, widest + 31))))
        return hr_err(HR_ERR_NOMEM, "out of memory for the run state");
    if (!ctx->rope_cos || !ctx->rope_sin || !ctx->x || !ctx->xb || !ctx->q || !ctx->k || !ctx->v || !ctx->att ||
        !ctx->proj || !ctx->hb || !ctx->hb2 || !ctx->last_logits || !ctx->scores || !ctx->gates)
        return hr_err(HR_ERR_NOMEM, "out of memory for the run state");
    double *freqs = malloc(sizeof(double) * (hd / 2 + 1));
    if (!freqs) return hr_err(HR_ERR_NOMEM, "out of memory");
    const hr_rope_scaling *rs = &c->rope_scaling;
    hr_rope_freqs(freqs, (int)hd, c->rope_theta, rs->llama3 ? rs->factor : 0, rs->low_freq_factor, rs->high_freq_factor,
                  rs->original_ctx);
    for (int p = 0; p < ctx->n_ctx; p++)
        hr_rope_table(ctx->rope_cos + (size_t)p * (hd / 2), ctx->rope_sin + (size_t)p * (hd / 2), freqs, (int)hd, p);
    free(freqs);
    return hr_context_set_head_gates(ctx, NULL);
}

hr_status hr_context_new(const hr_model *m, const hr_context_params *p, hr_context **out) {
    *out = NULL;
    if (!m) return hr_err(HR_ERR_INVALID_ARG, "no model given");
    hr_status cst = hr_cpu_check(); /* a HEADROOM_CPU the CPU cannot run */
    if (cst != HR_OK) return cst;
    hr_context_params dp = hr_context_default_params();
    if (!p) p = &dp;
    const hr_config *c = hr_model_config(m);
    if (p->n_ctx < 0 || p->n_ctx > c->seq_len)
        return hr_err(HR_ERR_RANGE, "context of %d tokens is beyond the model's context length %d", p->n_ctx,
                      c->seq_len);
    if (p->n_threads < 0 || p->n_threads > 1024)
        return hr_err(HR_ERR_RANGE, "thread count %d out of range", p->n_threads);
    if (p->n_batch < 0) return hr_err(HR_ERR_RANGE, "batch size %d out of range", p->n_batch);
    hr_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return hr_err(HR_ERR_NOMEM, "out of memory");
    ctx->model = m;
    ctx->c = c;
    ctx->n_ctx = p->n_ctx ? p->n_ctx : c->seq_len;
    ctx->n_batch = p->n_batch ? p->n_batch : (ctx->n_ctx < 512 ? ctx->n_ctx : 512);
    if (ctx->n_batch > ctx->n_ctx) ctx->n_batch = ctx->n_ctx;
    ctx->max_heads = hr_config_max_heads(c);
    ctx->q_dim = ctx->max_heads * c->head_dim;
    ctx->kv_dim = hr_config_max_kv_heads(c) * c->head_dim;
    ctx->max_ff = hr_config_max_ff(c);
    ctx->blas = p->blas_prefill;
    /* Only the blas path touches OpenBLAS's (process-wide) thread count. */
    hr_status st = ctx->blas ? hr_blas_use_in_pool() : HR_OK;
    if (st == HR_OK) st = hr_pool_new(p->n_threads ? p->n_threads : hr_n_cores(), &ctx->pool);
    if (st == HR_OK) st = hr_model_packed(m, ctx->pool, &ctx->packed);
    if (st == HR_OK && p->kv_plan) st = hr_kv_plan_check(p->kv_plan, c);
    if (st == HR_OK) st = alloc_state(ctx, p->kv_plan, p);
    if (st != HR_OK) {
        hr_context_free(ctx);
        return st;
    }
    *out = ctx;
    return HR_OK;
}

int hr_context_n_ctx(const hr_context *ctx) { return ctx->n_ctx; }
int hr_context_n_past(const hr_context *ctx) { return ctx->n_past; }
size_t hr_context_kv_bytes(const hr_context *ctx) { return ctx->kv_bytes; }

hr_status hr_context_truncate(hr_context *ctx, int n_past) {
    if (n_past < 0 || n_past > ctx->n_past)
        return ctx_fail(ctx,
                        hr_err(HR_ERR_RANGE, "cannot truncate to %d tokens (cache holds %d)", n_past, ctx->n_past));
    if (ctx->has_policies && n_past != 0 && n_past != ctx->n_past)
        return ctx_fail(ctx,
                        hr_err(HR_ERR_UNSUPPORTED, "a KV plan that evicts tokens can only be cleared, not truncated"));
    if (n_past == 0)
        for (int l = 0; l < ctx->c->n_layers; l++)
            for (int g = 0; g < ctx->c->n_head_kv[l]; g++) hr_kv_store_reset(&ctx->kv[l][g]);
    ctx->n_past = n_past;
    return HR_OK;
}

void hr_context_set_hook(hr_context *ctx, hr_hook_fn fn, uint32_t mask, void *user_data) {
    ctx->hook = fn;
    ctx->hook_mask = fn ? mask : 0;
    ctx->hook_ud = user_data;
    if (!(ctx->hook_mask & HR_HOOK_ATTN_PROBS)) {
        free(ctx->probs);
        ctx->probs = NULL;
    }
}

hr_status hr_context_set_head_gates(hr_context *ctx, const float *gates) {
    size_t n = (size_t)ctx->c->n_layers * (size_t)(ctx->max_heads ? ctx->max_heads : 1);
    if (gates) {
        for (size_t i = 0; i < n; i++)
            if (!isfinite(gates[i])) return ctx_fail(ctx, hr_err(HR_ERR_INVALID_ARG, "head gate %zu is not finite", i));
        memcpy(ctx->gates, gates, n * sizeof(float));
    } else {
        for (size_t i = 0; i < n; i++) ctx->gates[i] = 1.0f;
    }
    return HR_OK;
}

hr_status hr_context_set_head_means(hr_context *ctx, const float *means) {
    if (!means) {
        free(ctx->head_means);
        ctx->head_means = NULL;
        return HR_OK;
    }
    size_t n = (size_t)ctx->c->n_layers * (size_t)ctx->max_heads * (size_t)ctx->c->head_dim;
    if (!ctx->head_means && !(ctx->head_means = malloc(n * sizeof(float))))
        return ctx_fail(ctx, hr_err(HR_ERR_NOMEM, "out of memory"));
    memcpy(ctx->head_means, means, n * sizeof(float));
    return HR_OK;
}

void hr_context_clear_attn_masks(hr_context *ctx) {
    free(ctx->attn_mask_all);
    ctx->attn_mask_all = NULL;
    if (!ctx->attn_mask) return;
    for (size_t i = 0; i < (size_t)ctx->c->n_layers * ctx->max_heads; i++) free(ctx->attn_mask[i]);
    free(ctx->attn_mask);
    ctx->attn_mask = NULL;
}

hr_status hr_context_set_attn_mask(hr_context *ctx, int layer, int head, const uint8_t *blocked) {
    bool all = layer == -1 && head == -1;
    if (!all && (layer < 0 || layer >= ctx->c->n_layers || head < 0 || head >= ctx->c->n_head[layer]))
        return ctx_fail(ctx, hr_err(HR_ERR_RANGE, "no head %d.%d to mask", layer, head));
    if (blocked && ctx->has_policies)
        return ctx_fail(ctx,
                        hr_err(HR_ERR_UNSUPPORTED, "attention masks need a full KV cache (the plan evicts tokens)"));
    size_t slot = (size_t)(all ? 0 : layer) * ctx->max_heads + (all ? 0 : head), n = (size_t)ctx->n_ctx * ctx->n_ctx;
    if (all) {
        if (!blocked) {
            free(ctx->attn_mask_all);
            ctx->attn_mask_all = NULL;
            return HR_OK;
        }
        if (!ctx->attn_mask_all && !(ctx->attn_mask_all = malloc(n)))
            return ctx_fail(ctx, hr_err(HR_ERR_NOMEM, "out of memory for an attention mask"));
        memcpy(ctx->attn_mask_all, blocked, n);
        return HR_OK;
    }
    if (!blocked) {
        if (ctx->attn_mask) free(ctx->attn_mask[slot]), ctx->attn_mask[slot] = NULL;
        return HR_OK;
    }
    if (!ctx->attn_mask && !(ctx->attn_mask = calloc((size_t)ctx->c->n_layers * ctx->max_heads, sizeof(uint8_t *))))
        return ctx_fail(ctx, hr_err(HR_ERR_NOMEM, "out of memory"));
    if (!ctx->attn_mask[slot] && !(ctx->attn_mask[slot] = malloc(n)))
        return ctx_fail(ctx, hr_err(HR_ERR_NOMEM, "out of memory for an attention mask"));
    memcpy(ctx->attn_mask[slot], blocked, n);
    return HR_OK;
}

const hr_model *hr_context_model(const hr_context *ctx) { return ctx->model; }
hr_pool *hr_context_pool(const hr_context *ctx) { return ctx->pool; }

/* ---- forward ---- */

static int emit(hr_context *ctx, hr_hook_point pt, int layer, int head, int n, int pos0, int n_cols, int stride,
                float *data) {
    if (!(ctx->hook_mask & pt)) return 0;
    hr_hook_event ev = {pt, layer, head, n, pos0, n_cols, stride, data};
    return ctx->hook(&ev, ctx->hook_ud);
}

/* The architecture's normalisation over n rows of width dim. */
/* Row-parallel helpers: per-row work (norms, residual adds, SwiGLU) split
 * into contiguous row ranges across the pool, so the caller's thread does
 * not run it alone while the workers wait. Results do not depend on the
 * split: each row is computed the same way. */
typedef void (*rows_fn)(hr_context *ctx, void *arg, int t0, int t1);

typedef struct {
    hr_context *ctx;
    rows_fn fn;
    void *arg;
    int n, per;
} rows_job;

static void rows_task(void *vp, int i) {
    const rows_job *j = vp;
    int t0 = i * j->per, t1 = t0 + j->per < j->n ? t0 + j->per : j->n;
    if (t0 < t1) j->fn(j->ctx, j->arg, t0, t1);
}

static void par_rows(hr_context *ctx, int n, rows_fn fn, void *arg) {
    int nt = hr_pool_n_threads(ctx->pool);
    if (n < 4 || nt < 2) { /* one token: waking the pool costs more than it saves */
        fn(ctx, arg, 0, n);
        return;
    }
    rows_job j = {ctx, fn, arg, n, (n + nt - 1) / nt};
    hr_pool_run(ctx->pool, rows_task, &j, (n + j.per - 1) / j.per);
}

typedef struct {
    float *y;
    const float *x, *g, *b;
} norm_arg;

static void norm_range(hr_context *ctx, void *vp, int t0, int t1) {
    const norm_arg *a = vp;
    const hr_config *c = ctx->c;
    for (int t = t0; t < t1; t++) {
        const float *xr = a->x + (size_t)t * c->dim;
        float *yr = a->y + (size_t)t * c->dim;
        if (c->norm == HR_NORM_LAYER) hr_layernorm(yr, xr, a->g, a->b, c->dim, c->norm_eps);
        else hr_rmsnorm(yr, xr, a->g, c->dim, c->norm_eps);
    }
}

/* y (n, dim) = norm(x) row by row. */
static void norm_rows(hr_context *ctx, float *y, const float *x, const float *g, const float *b, int n) {
    norm_arg a = {y, x, g, b};
    par_rows(ctx, n, norm_range, &a);
}

static void residual_range(hr_context *ctx, void *vp, int t0, int t1) {
    (void)vp;
    size_t dim = (size_t)ctx->c->dim;
    for (size_t i = (size_t)t0 * dim; i < (size_t)t1 * dim; i++) ctx->x[i] += ctx->proj[i];
}

static void swiglu_range(hr_context *ctx, void *vp, int t0, int t1) {
    size_t ff = (size_t) * (const int *)vp, off = (size_t)t0 * ff;
    hr_swiglu(ctx->hb + off, ctx->hb + off, ctx->hb2 + off, (int)((size_t)(t1 - t0) * ff));
}

/* y (n, d) += bias (d) on every row; no-op without a bias. */
static void add_bias(float *y, const float *bias, int n, int d) {
    if (!bias) return;
    for (int t = 0; t < n; t++) {
        float *r = y + (size_t)t * d;
        for (int i = 0; i < d; i++) r[i] += bias[i];
    }
}

typedef struct {
    hr_context *ctx;
    int layer, n, pos0, n_chunks, chunk_len;
} attn_job;

/* Softmax of a score row of len keys, or the knockout's: keys blocked by
 * mask (the query's row of a (n_ctx, n_ctx) mask) get -inf, and a row with
 * every key blocked gets all-zero weights. */
static void masked_softmax(float *s, int len, const uint8_t *mask) {
    if (!mask) {
        hr_softmax(s, len);
        return;
    }
    int open = 0;
    for (int p = 0; p < len; p++) {
        if (mask[p]) s[p] = -INFINITY;
        else open++;
    }
    if (open) hr_softmax(s, len);
    else memset(s, 0, sizeof(float) * (size_t)len);
}

/* One (head, chunk of tokens): causal softmax attention over the cache. */
static void attn_task(void *vp, int i) {
    const attn_job *j = vp;
    hr_context *ctx = j->ctx;
    const hr_config *c = ctx->c;
    int l = j->layer, hd = c->head_dim, n_head = c->n_head[l];
    int h = i % n_head, chunk = i / n_head;
    int g = h / (n_head / c->n_head_kv[l]);
    int t0 = chunk * j->chunk_len, t1 = t0 + j->chunk_len;
    if (t1 > j->n) t1 = j->n;
    const float scale = 1.0f / sqrtf((float)hd);
    const float *kc = ctx->kv[l][g].kt; /* (hd, ld) */
    const float *vc = ctx->kv[l][g].vt; /* (hd, ld) */
    const int ld = ctx->kv[l][g].ld;
    int n_kv = j->pos0 + j->n;
    for (int t = t0; t < t1; t += ATT_Q) {
        int nq = t1 - t < ATT_Q ? t1 - t : ATT_Q, len[ATT_Q];
        for (int r = 0; r < nq; r++) len[r] = j->pos0 + t + r + 1;
        /* Rows of nq consecutive tokens: probability rows are n_ctx apart. */
        float *s = ctx->probs ? ctx->probs + ((size_t)h * ctx->n_batch + t) * ctx->n_ctx
                              : ctx->scores + (size_t)i * ATT_Q * ctx->n_ctx;
        const float *qv = ctx->q + (size_t)t * ctx->q_dim + (size_t)h * hd;
        float *o = ctx->att + (size_t)t * ctx->q_dim + (size_t)h * hd;
        hr_attn_scores_multi(s, (size_t)ctx->n_ctx, qv, (size_t)ctx->q_dim, nq, kc, ld, hd, len[nq - 1], scale);
        const uint8_t *mask = ctx->attn_mask ? ctx->attn_mask[(size_t)l * ctx->max_heads + h] : NULL;
        if (!mask) mask = ctx->attn_mask_all;
        for (int q = 0; q < nq; q++)
            masked_softmax(s + (size_t)q * ctx->n_ctx, len[q], mask ? mask + (size_t)(len[q] - 1) * ctx->n_ctx : NULL);
        hr_attn_values_multi(o, (size_t)ctx->q_dim, s, (size_t)ctx->n_ctx, nq, vc, ld, hd, len);
        if (ctx->probs)
            for (int q = 0; q < nq; q++)
                for (int p = len[q]; p < n_kv; p++) s[(size_t)q * ctx->n_ctx + p] = 0;
    }
}

/* One KV group of a layer with an evicting store: every query head of the
 * group over every batch token, then the batch enters the store; what is
 * visible, kept and recorded is the store's policy's. */
static void attn_group_task(void *vp, int g) {
    const attn_job *j = vp;
    hr_context *ctx = j->ctx;
    const hr_config *c = ctx->c;
    int l = j->layer, hd = c->head_dim, nh = c->n_head[l], group = nh / c->n_head_kv[l];
    hr_kv_store *s = &ctx->kv[l][g];
    if (hr_kv_store_direct(s)) { /* a full head inside a mixed layer */
        for (int h = g * group; h < (g + 1) * group; h++) attn_task(vp, h);
        return;
    }
    hr_kv_scratch scr = hr_kv_gather_buf_head(&ctx->gather, g);
    hr_kv_batch b = {ctx->k + (size_t)g * hd, ctx->v + (size_t)g * hd, (size_t)ctx->kv_dim, j->n, j->pos0};
    int n_kv = j->pos0 + j->n;
    const float scale = 1.0f / sqrtf((float)hd);
    hr_kv_batch_begin(s, &scr, j->n);
    for (int t = 0; t < j->n; t++) {
        int len = hr_kv_gather(s, &b, t, &scr);
        for (int h = g * group; h < (g + 1) * group; h++) {
            const float *qv = ctx->q + (size_t)t * ctx->q_dim + (size_t)h * hd;
            hr_attn_scores(scr.gs, qv, scr.gk, scr.cap, hd, len, scale);
            hr_softmax(scr.gs, len);
            float *o = ctx->att + (size_t)t * ctx->q_dim + (size_t)h * hd;
            hr_attn_values(o, scr.gs, scr.gv, scr.cap, hd, len);
            hr_kv_observe(s, &scr, len);
            if (ctx->probs) {
                float *row = ctx->probs + ((size_t)h * ctx->n_batch + t) * ctx->n_ctx;
                memset(row, 0, sizeof(float) * (size_t)n_kv);
                for (int i = 0; i < len; i++) row[hr_kv_gathered_pos(s, &b, &scr, i)] = scr.gs[i];
            }
        }
    }
    hr_kv_batch_end(s, &b, &scr);
}

/* y (n, d_out) = x (n, d_in) · W^T through the packed copy wp, or OpenBLAS
 * on the row-major w for batches when the context asked for it; bf16
 * panels by the bf16 dot when the context asked for that (ctx->xq), Q8_0
 * panels by the int8 dot when it asked for that (ctx->xa). */
static void matmul(hr_context *ctx, float *y, const float *x, const float *w, hr_panels wp, int n, int d_in,
                   int d_out) {
    hr_matmul_out o = {y, w, wp, d_out};
    hr_matmul_multi(ctx->pool, x, n, d_in, &o, 1, ctx->blas, ctx->xq, ctx->xa);
}

static hr_status attention(hr_context *ctx, int l, int n, int pos0) {
    const hr_config *c = ctx->c;
    const hr_layer_weights *w = &ctx->model->w.layers[l];
    int hd = c->head_dim, nh = c->n_head[l], nkv = c->n_head_kv[l];
    int qd = nh * hd, kvd = nkv * hd;
    norm_rows(ctx, ctx->xb, ctx->x, w->attn_norm, w->attn_norm_b, n);
    /* Row strides of q/k/v/att are the widest layer's, so project row by row
     * into them only when this layer is narrower (pruned models). */
    const hr_layer_packed *pk = &ctx->packed->layers[l];
    hr_matmul_out qkv[3] = {{ctx->q, w->wq, pk->wq, qd}, {ctx->k, w->wk, pk->wk, kvd}, {ctx->v, w->wv, pk->wv, kvd}};
    hr_matmul_multi(ctx->pool, ctx->xb, n, c->dim, qkv, 3, ctx->blas, ctx->xq, ctx->xa);
    add_bias(ctx->q, w->bq, n, qd);
    add_bias(ctx->k, w->bk, n, kvd);
    add_bias(ctx->v, w->bv, n, kvd);
    if (qd != ctx->q_dim || kvd != ctx->kv_dim) {
        for (int t = n - 1; t >= 0; t--) { /* spread packed rows to the wide stride, back to front */
            memmove(ctx->q + (size_t)t * ctx->q_dim, ctx->q + (size_t)t * qd, (size_t)qd * sizeof(float));
            memmove(ctx->k + (size_t)t * ctx->kv_dim, ctx->k + (size_t)t * kvd, (size_t)kvd * sizeof(float));
            memmove(ctx->v + (size_t)t * ctx->kv_dim, ctx->v + (size_t)t * kvd, (size_t)kvd * sizeof(float));
        }
    }
    for (int h = 0; h < nh; h++) /* interventions on queries, keys and values see them before RoPE */
        if (emit(ctx, HR_HOOK_Q, l, h, n, pos0, hd, ctx->q_dim, ctx->q + (size_t)h * hd))
            return hr_err(HR_ERR_ABORTED, "forward aborted by hook");
    for (int g = 0; g < nkv; g++)
        if (emit(ctx, HR_HOOK_K, l, g, n, pos0, hd, ctx->kv_dim, ctx->k + (size_t)g * hd) ||
            emit(ctx, HR_HOOK_V, l, g, n, pos0, hd, ctx->kv_dim, ctx->v + (size_t)g * hd))
            return hr_err(HR_ERR_ABORTED, "forward aborted by hook");
    size_t half = (size_t)hd / 2;
    for (int t = 0; t < n; t++) {
        int pos = pos0 + t, rpos = ctx->rope_pos ? ctx->rope_pos[pos] : pos; /* cache slot, RoPE position */
        const float *ct = ctx->rope_cos + (size_t)rpos * half, *st = ctx->rope_sin + (size_t)rpos * half;
        float *qr = ctx->q + (size_t)t * ctx->q_dim, *kr = ctx->k + (size_t)t * ctx->kv_dim;
        if (c->pos == HR_POS_ROPE) {
            hr_rope(qr, nh, hd, ct, st);
            hr_rope(kr, nkv, hd, ct, st);
        }
        const float *vr = ctx->v + (size_t)t * ctx->kv_dim;
        for (int g = 0; g < nkv; g++) /* evicting stores take new tokens after attention */
            if (hr_kv_store_direct(&ctx->kv[l][g]))
                hr_kv_store_put(&ctx->kv[l][g], pos, kr + (size_t)g * hd, vr + (size_t)g * hd, 0);
    }
    /* Many more tasks than threads: later token chunks cost more (causal),
     * and the pool hands tasks out as threads free up, which evens the load.
     * Chunks are whole groups of ATT_Q queries. */
    int want_chunks = (16 * hr_pool_n_threads(ctx->pool) + nh - 1) / nh;
    int n_chunks = want_chunks < MAX_CHUNKS ? want_chunks : MAX_CHUNKS;
    if (n_chunks > (n + ATT_Q - 1) / ATT_Q) n_chunks = (n + ATT_Q - 1) / ATT_Q;
    if (n_chunks < 1) n_chunks = 1;
    if (!ctx->layer_direct[l]) n_chunks = 1; /* group tasks run whole heads */
    int chunk_len = (n + n_chunks - 1) / n_chunks;
    chunk_len = (chunk_len + ATT_Q - 1) / ATT_Q * ATT_Q;
    n_chunks = (n + chunk_len - 1) / chunk_len;
    attn_job job = {ctx, l, n, pos0, n_chunks, chunk_len};
    if (ctx->layer_direct[l]) hr_pool_run(ctx->pool, attn_task, &job, nh * n_chunks);
    else hr_pool_run(ctx->pool, attn_group_task, &job, nkv);
    for (int h = 0; h < nh; h++) {
        if (ctx->probs && emit(ctx, HR_HOOK_ATTN_PROBS, l, h, n, pos0, pos0 + n, ctx->n_ctx,
                               ctx->probs + (size_t)h * ctx->n_batch * ctx->n_ctx))
            return hr_err(HR_ERR_ABORTED, "forward aborted by hook");
        if (emit(ctx, HR_HOOK_HEAD_OUT, l, h, n, pos0, hd, ctx->q_dim, ctx->att + (size_t)h * hd))
            return hr_err(HR_ERR_ABORTED, "forward aborted by hook");
    }
    /* out = gate * out + (1 - gate) * mean: zero-ablation without means,
     * mean-ablation with them; packs rows to this layer's width. */
    const float *gate = ctx->gates + (size_t)l * ctx->max_heads;
    const float *mean = ctx->head_means ? ctx->head_means + (size_t)l * ctx->max_heads * hd : NULL;
    for (int t = 0; t < n; t++) {
        float *src = ctx->att + (size_t)t * ctx->q_dim, *dst = ctx->att + (size_t)t * qd;
        for (int h = 0; h < nh; h++) {
            const float *mh = mean ? mean + (size_t)h * hd : NULL;
            for (int d = 0; d < hd; d++)
                dst[(size_t)h * hd + d] = src[(size_t)h * hd + d] * gate[h] + (mh ? (1.0f - gate[h]) * mh[d] : 0.0f);
        }
    }
    matmul(ctx, ctx->proj, ctx->att, w->wo, pk->wo, n, qd, c->dim);
    add_bias(ctx->proj, w->bo, n, c->dim);
    if (emit(ctx, HR_HOOK_ATTN_OUT, l, -1, n, pos0, c->dim, c->dim, ctx->proj))
        return hr_err(HR_ERR_ABORTED, "forward aborted by hook");
    par_rows(ctx, n, residual_range, NULL);
    return HR_OK;
}

static hr_status mlp(hr_context *ctx, int l, int n, int pos0) {
    const hr_config *c = ctx->c;
    const hr_layer_weights *w = &ctx->model->w.layers[l];
    const hr_layer_packed *pk = &ctx->packed->layers[l];
    int ff = c->n_ff[l];
    norm_rows(ctx, ctx->xb, ctx->x, w->ffn_norm, w->ffn_norm_b, n);
    if (c->mlp == HR_MLP_SWIGLU) {
        hr_matmul_out gu[2] = {{ctx->hb, w->w_gate, pk->w_gate, ff}, {ctx->hb2, w->w_up, pk->w_up, ff}};
        hr_matmul_multi(ctx->pool, ctx->xb, n, c->dim, gu, 2, ctx->blas, ctx->xq, ctx->xa);
        par_rows(ctx, n, swiglu_range, &ff);
    } else {
        matmul(ctx, ctx->hb, ctx->xb, w->w_up, pk->w_up, n, c->dim, ff);
        add_bias(ctx->hb, w->b_up, n, ff);
        hr_gelu_tanh(ctx->hb, n * ff);
    }
    matmul(ctx, ctx->proj, ctx->hb, w->w_down, pk->w_down, n, ff, c->dim);
    add_bias(ctx->proj, w->b_down, n, c->dim);
    if (emit(ctx, HR_HOOK_MLP_OUT, l, -1, n, pos0, c->dim, c->dim, ctx->proj))
        return hr_err(HR_ERR_ABORTED, "forward aborted by hook");
    par_rows(ctx, n, residual_range, NULL);
    return HR_OK;
}

/* Runs the blocks from (layer0, sublayer0) to the end and the classifier on
 * ctx->x, n rows at positions pos0.. (sublayer 0 = attention, 1 = MLP). */
static hr_status run_from(hr_context *ctx, int layer0, int sublayer0, int n, int pos0, float *logits, bool all_logits) {
    const hr_config *c = ctx->c;
    const hr_weights *w = &ctx->model->w;
    int dim = c->dim;
    if ((ctx->hook_mask & HR_HOOK_ATTN_PROBS) && !ctx->probs) {
        ctx->probs = alloc_floats((size_t)ctx->max_heads * ctx->n_batch, (size_t)ctx->n_ctx, NULL);
        if (!ctx->probs) return hr_err(HR_ERR_NOMEM, "out of memory for attention probabilities");
    }
    for (int l = layer0; l < c->n_layers; l++) {
        bool whole = l > layer0 || sublayer0 == 0;
        if (whole && emit(ctx, HR_HOOK_RESID_PRE, l, -1, n, pos0, dim, dim, ctx->x))
            return hr_err(HR_ERR_ABORTED, "forward aborted by hook");
        hr_status st = whole && c->n_head[l] > 0 ? attention(ctx, l, n, pos0) : HR_OK;
        if (st == HR_OK && c->n_ff[l] > 0) st = mlp(ctx, l, n, pos0);
        if (st != HR_OK) return st;
        if (emit(ctx, HR_HOOK_RESID_POST, l, -1, n, pos0, dim, dim, ctx->x))
            return hr_err(HR_ERR_ABORTED, "forward aborted by hook");
    }
    if (!logits && !(ctx->hook_mask & HR_HOOK_FINAL)) return HR_OK;
    /* Only the rows whose logits are wanted go through the classifier. */
    int first = all_logits ? 0 : n - 1, rows = n - first;
    norm_rows(ctx, ctx->xb + (size_t)first * dim, ctx->x + (size_t)first * dim, w->out_norm, w->out_norm_b, rows);
    if (emit(ctx, HR_HOOK_FINAL, c->n_layers, -1, rows, pos0 + first, dim, dim, ctx->xb + (size_t)first * dim))
        return hr_err(HR_ERR_ABORTED, "forward aborted by hook");
    if (logits)
        matmul(ctx, logits, ctx->xb + (size_t)first * dim, w->output, ctx->packed->output, rows, dim, c->vocab_size);
    return HR_OK;
}

/* One batch of n <= n_batch tokens at position n_past. */
static hr_status forward_batch(hr_context *ctx, const int32_t *tokens, int n, float *logits, bool all_logits) {
    const hr_weights *w = &ctx->model->w;
    int pos0 = ctx->n_past, dim = ctx->c->dim;
    for (int t = 0; t < n; t++) {
        float *xr = ctx->x + (size_t)t * dim;
        hr_model_embed_row(ctx->model, tokens[t], xr); /* one row, converted from a typed embedding */
        if (w->pos_embd) hr_axpy(xr, 1.0f, w->pos_embd + (size_t)(pos0 + t) * dim, dim);
    }
    hr_status st = run_from(ctx, 0, 0, n, pos0, logits, all_logits);
    if (st == HR_OK) ctx->n_past += n;
    return st;
}

hr_status hr_forward_from(hr_context *ctx, int layer, int sublayer, const float *x, int n, float *logits,
                          bool all_logits) {
    return hr_forward_from_at(ctx, layer, sublayer, x, n, NULL, logits, all_logits);
}

static hr_status forward_from(hr_context *ctx, int layer, int sublayer, const float *x, int n, float *logits,
                              bool all_logits);

hr_status hr_forward_from_at(hr_context *ctx, int layer, int sublayer, const float *x, int n, const int32_t *positions,
                             float *logits, bool all_logits) {
    if (!ctx || !x || n <= 0) return hr_err(HR_ERR_INVALID_ARG, "invalid forward_from arguments");
    if (!positions) return forward_from(ctx, layer, sublayer, x, n, logits, all_logits);
    if (ctx->c->pos != HR_POS_ROPE)
        return ctx_fail(
            ctx, hr_err(HR_ERR_UNSUPPORTED, "explicit positions need RoPE (learned positions are in the residual)"));
    if (n > ctx->n_past)
        return ctx_fail(ctx, hr_err(HR_ERR_RANGE, "re-running %d tokens but only %d are cached", n, ctx->n_past));
    int32_t *slots = malloc(sizeof(int32_t) * (size_t)ctx->n_ctx); /* (n_ctx) RoPE position per cache slot */
    if (!slots) return ctx_fail(ctx, hr_err(HR_ERR_NOMEM, "out of memory"));
    int pos0 = ctx->n_past - n;
    for (int i = 0; i < ctx->n_ctx; i++) slots[i] = i;
    for (int i = 0; i < n; i++) {
        if (positions[i] < 0 || positions[i] >= ctx->n_ctx) {
            free(slots);
            return ctx_fail(ctx, hr_err(HR_ERR_RANGE, "position %d of row %d is outside the context of %d",
                                        positions[i], i, ctx->n_ctx));
        }
        slots[pos0 + i] = positions[i];
    }
    ctx->rope_pos = slots;
    hr_status st = forward_from(ctx, layer, sublayer, x, n, logits, all_logits);
    ctx->rope_pos = NULL;
    free(slots);
    return st;
}

static hr_status forward_from(hr_context *ctx, int layer, int sublayer, const float *x, int n, float *logits,
                              bool all_logits) {
    const hr_config *c = ctx->c;
    if (layer < 0 || layer > c->n_layers || sublayer < 0 || sublayer > 1)
        return ctx_fail(ctx, hr_err(HR_ERR_RANGE, "layer %d / sublayer %d out of range", layer, sublayer));
    if (n > ctx->n_past)
        return ctx_fail(ctx, hr_err(HR_ERR_RANGE, "re-running %d tokens but only %d are cached", n, ctx->n_past));
    if (ctx->has_policies)
        return ctx_fail(ctx,
                        hr_err(HR_ERR_UNSUPPORTED, "re-running layers needs a full KV cache (the plan evicts tokens)"));
    size_t vocab = (size_t)c->vocab_size;
    int pos0 = ctx->n_past - n;
    for (int done = 0; done < n;) {
        int b = n - done < ctx->n_batch ? n - done : ctx->n_batch;
        memcpy(ctx->x, x + (size_t)done * c->dim, (size_t)b * c->dim * sizeof(float));
        float *out = NULL;
        if (logits && all_logits) out = logits + (size_t)done * vocab;
        else if (logits && done + b == n) out = logits;
        hr_status st = run_from(ctx, layer, sublayer, b, pos0 + done, out, all_logits);
        if (st != HR_OK) return ctx_fail(ctx, st);
        done += b;
    }
    return HR_OK;
}

hr_status hr_forward(hr_context *ctx, const int32_t *tokens, int n, float *logits, bool all_logits) {
    if (!ctx || (!tokens && n > 0) || n < 0) return hr_err(HR_ERR_INVALID_ARG, "invalid forward arguments");
    if (n == 0) return HR_OK;
    if (n > ctx->n_ctx - ctx->n_past)
        return ctx_fail(ctx, hr_err(HR_ERR_RANGE, "%d tokens after %d cached exceed the context of %d", n, ctx->n_past,
                                    ctx->n_ctx));
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= ctx->c->vocab_size)
            return ctx_fail(ctx, hr_err(HR_ERR_INVALID_ARG, "token id %d at index %d is outside the vocabulary (%d)",
                                        tokens[i], i, ctx->c->vocab_size));
    size_t vocab = (size_t)ctx->c->vocab_size;
    for (int done = 0; done < n;) {
        int b = n - done < ctx->n_batch ? n - done : ctx->n_batch;
        bool last = done + b == n;
        float *out = NULL;
        if (logits && all_logits) out = logits + (size_t)done * vocab;
        else if (logits && last) out = logits;
        hr_status st = forward_batch(ctx, tokens + done, b, out, all_logits);
        if (st != HR_OK) return ctx_fail(ctx, st);
        done += b;
    }
    return HR_OK;
}
