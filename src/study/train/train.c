/* The training loop (see headroom/train.h): data split and window draws,
 * the part of the weights that trains, clipping, AdamW with warm-up +
 * cosine, held-out evaluation, progress, stop and checkpoints. */
#include "study/train/train_internal.h"
#include "core/internal.h"
#include "core/progress.h"
#include "study/intervene.h"
#include "headroom/study.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

hr_train_params hr_train_default_params(void) {
    hr_train_params p;
    memset(&p, 0, sizeof p);
    p.steps = 100;
    p.lr = 1e-3f;
    p.min_lr_ratio = 0.1f;
    p.beta1 = 0.9f, p.beta2 = 0.999f, p.eps = 1e-8f;
    p.clip = 1.0f;
    p.batch = 1, p.accum = 1;
    p.heldout = 0.1f;
    p.eval_windows = 16;
    return p;
}

double hr_train_lr_at(const hr_train_params *p, int s) {
    double lr = p->lr, lo = lr * p->min_lr_ratio;
    if (s < p->warmup) return lr * (double)(s + 1) / (double)p->warmup;
    int span = p->steps - p->warmup;
    double x = span > 0 ? (double)(s - p->warmup) / (double)span : 0.0;
    if (x > 1) x = 1;
    return lo + (lr - lo) * 0.5 * (1.0 + cos(M_PI * x));
}

void hr_train_free(hr_train *t) {
    if (!t) return;
    for (int i = 0; i < t->n_tt; i++) free(t->tt[i].m), free(t->tt[i].v), free(t->tt[i].mask);
    free(t->tt);
    hr_grad_free(t->grad);
    hr_params_free(t->params);
    free(t->only);
    free(t->checkpoint);
    free(t->ranks);
    free(t);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

hr_status hr_lora_targets_parse(const char *list, uint32_t *out) {
    static const char *names[] = {"q", "k", "v", "o", "gate", "up", "down"};
    if (!list || !out) return hr_err(HR_ERR_INVALID_ARG, "no LoRA target list given");
    uint32_t m = 0;
    for (const char *s = list; *s;) {
        size_t n = strcspn(s, ", ");
        bool found = n == 3 && !strncmp(s, "all", 3);
        if (found) m |= HR_LORA_ALL;
        for (int i = 0; i < 7 && !found && n; i++)
            if (strlen(names[i]) == n && !strncmp(s, names[i], n)) m |= 1u << i, found = true;
        if (n && !found)
            return hr_err(HR_ERR_INVALID_ARG, "unknown LoRA target '%.*s' (expected q, k, v, o, gate, up, down or all)",
                          (int)n, s);
        s += n;
        s += strspn(s, ", ");
    }
    if (!m) return hr_err(HR_ERR_INVALID_ARG, "no LoRA target named");
    *out = m;
    return HR_OK;
}

static char *dup_str(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static hr_status check_params(const hr_model *m, const hr_train_params *p, size_t n_tokens, int *window) {
    const hr_config *c = hr_model_config(m);
    if (!(p->lr > 0) || !isfinite(p->lr))
        return hr_err(HR_ERR_RANGE, "learning rate must be a finite number > 0 (got %g)", p->lr);
    if (p->steps < 1) return hr_err(HR_ERR_RANGE, "steps must be >= 1 (got %d)", p->steps);
    if (p->warmup < 0 || p->warmup > p->steps)
        return hr_err(HR_ERR_RANGE, "warm-up must be between 0 and the steps (%d; got %d)", p->steps, p->warmup);
    if (!(p->min_lr_ratio >= 0 && p->min_lr_ratio <= 1)) return hr_err(HR_ERR_RANGE, "min_lr_ratio must be in [0, 1]");
    if (!(p->beta1 >= 0 && p->beta1 < 1) || !(p->beta2 >= 0 && p->beta2 < 1))
        return hr_err(HR_ERR_RANGE, "Adam betas must be in [0, 1)");
    if (!(p->eps > 0) || !isfinite(p->eps)) return hr_err(HR_ERR_RANGE, "Adam eps must be a finite number > 0");
    if (!(p->weight_decay >= 0) || !isfinite(p->weight_decay)) return hr_err(HR_ERR_RANGE, "weight decay must be >= 0");
    if (!(p->clip >= 0) || !isfinite(p->clip)) return hr_err(HR_ERR_RANGE, "gradient clip must be >= 0 (0 = none)");
    if (p->batch < 1 || p->accum < 1 || (int64_t)p->batch * p->accum > 65536)
        return hr_err(HR_ERR_RANGE, "batch and accum must be >= 1 (batch * accum <= 65536)");
    if (!(p->heldout > 0 && p->heldout < 1))
        return hr_err(HR_ERR_RANGE, "held-out share must be in (0, 1) (got %g)", p->heldout);
    if (p->eval_every < 0 || p->eval_windows < 1 || p->checkpoint_every < 0)
        return hr_err(HR_ERR_RANGE, "eval_every and checkpoint_every must be >= 0, eval_windows >= 1");
    if (p->full == (p->lora_rank > 0))
        return hr_err(HR_ERR_INVALID_ARG, p->full ? "choose full training or a LoRA rank, not both"
                                                  : "nothing to train: give a LoRA rank > 0 or full training");
    if (p->only && !p->full) return hr_err(HR_ERR_INVALID_ARG, "a part of the weights (only) needs full training");
    if (p->lora_layer_ranks && p->full) return hr_err(HR_ERR_INVALID_ARG, "per-layer LoRA ranks need LoRA training");
    for (int l = 0; p->lora_layer_ranks && l < c->n_layers; l++)
        if (p->lora_layer_ranks[l] < 0 || p->lora_layer_ranks[l] > p->lora_rank)
            return hr_err(HR_ERR_RANGE, "layer %d's LoRA rank %d is outside 0..%d (the adapters' rank)", l,
                          p->lora_layer_ranks[l], p->lora_rank);
    int W = p->window > 0 ? p->window : hr_calib_window(c->seq_len, 0);
    if (W < 2 || W > c->seq_len) return hr_err(HR_ERR_RANGE, "window %d outside 2..%d (the context)", W, c->seq_len);
    int64_t held = (int64_t)llround((double)p->heldout * (double)n_tokens);
    if (held < W) held = W;
    if ((int64_t)n_tokens - held < W)
        return hr_err(HR_ERR_RANGE,
                      "the text gives %zu tokens: too short for one training window and one held-out "
                      "window of %d tokens",
                      n_tokens, W);
    if (p->lora_rank > 0) {
        uint32_t tg = p->lora_targets ? p->lora_targets : HR_LORA_ALL;
        if ((tg & HR_LORA_GATE) && c->mlp != HR_MLP_SWIGLU && p->lora_targets)
            return hr_err(HR_ERR_INVALID_ARG, "LoRA target gate: the model has no gate projection (no SwiGLU)");
        for (int l = 0; l < c->n_layers; l++) {
            int qd = c->n_head[l] * c->head_dim, kd = c->n_head_kv[l] * c->head_dim, ff = c->n_ff[l];
            int mins[7] = {qd < c->dim ? qd : c->dim, kd < c->dim ? kd : c->dim, kd < c->dim ? kd : c->dim,
                           qd < c->dim ? qd : c->dim, ff < c->dim ? ff : c->dim, ff < c->dim ? ff : c->dim,
                           ff < c->dim ? ff : c->dim};
            static const char *names[7] = {"q", "k", "v", "o", "gate", "up", "down"};
            for (int i = 0; i < 7; i++)
                if ((tg & (1u << i)) && mins[i] > 0 && p->lora_rank > mins[i])
                    return hr_err(HR_ERR_RANGE, "LoRA rank %d is larger than layer %d's %s matrix allows (%d)",
                                  p->lora_rank, l, names[i], mins[i]);
        }
    }
    *window = W;
    return HR_OK;
}

/* Marks rows [r0, r1) of an (rows, cols) mask. */
static void mask_rows(uint8_t *mk, int64_t cols, int64_t r0, int64_t r1) {
    memset(mk + r0 * cols, 1, (size_t)((r1 - r0) * cols));
}
static void mask_cols(uint8_t *mk, int64_t rows, int64_t cols, int64_t c0, int64_t c1) {
    for (int64_t r = 0; r < rows; r++) memset(mk + r * cols + c0, 1, (size_t)(c1 - c0));
}

/* Parses `only` into which layers' MLPs and which heads train. */
static hr_status parse_only(const hr_config *c, const char *only, uint8_t *heads, uint8_t *mlp) {
    char buf[4096];
    if (strlen(only) >= sizeof buf) return hr_err(HR_ERR_INVALID_ARG, "only: text too long");
    snprintf(buf, sizeof buf, "%s", only);
    bool any = false;
    for (char *save = NULL, *part = strtok_r(buf, ";|", &save); part; part = strtok_r(NULL, ";|", &save)) {
        while (*part == ' ') part++;
        if (!strncmp(part, "heads:", 6)) {
            int n = 0;
            hr_status st = hr_parse_head_list(c, part + 6, "only heads", heads, &n);
            if (st != HR_OK) return st;
            any |= n > 0;
        } else if (!strncmp(part, "mlp:", 4)) {
            for (char *s2 = NULL, *it = strtok_r(part + 4, ", ", &s2); it; it = strtok_r(NULL, ", ", &s2)) {
                char *end;
                long l = strtol(it, &end, 10);
                if (end == it || *end) return hr_err(HR_ERR_INVALID_ARG, "only mlp: '%s' is not a layer number", it);
                if (l < 0 || l >= c->n_layers || c->n_ff[l] == 0)
                    return hr_err(HR_ERR_INVALID_ARG, "only mlp: layer %ld has no MLP (the model has %d layers)", l,
                                  c->n_layers);
                mlp[l] = 1, any = true;
            }
        } else return hr_err(HR_ERR_INVALID_ARG, "only: '%s' is neither heads:L.H,... nor mlp:L,...", part);
    }
    if (!any) return hr_err(HR_ERR_INVALID_ARG, "only: names no head or MLP");
    return HR_OK;
}

/* The element mask of tensor info under `only` (NULL = nothing of it). */
static uint8_t *only_mask(const hr_config *c, const hr_param_info *in, const uint8_t *heads, const uint8_t *mlp,
                          int max_h) {
    int l = in->layer;
    if (l < 0) return NULL;
    int hd = c->head_dim, H = c->n_head[l], G = c->n_head_kv[l] > 0 ? H / c->n_head_kv[l] : 1;
    bool any = false;
    for (int h = 0; h < H; h++) any |= heads[l * max_h + h] != 0;
    bool is_mlp = in->kind == HR_PARAM_W_GATE || in->kind == HR_PARAM_W_UP || in->kind == HR_PARAM_B_UP ||
                  in->kind == HR_PARAM_W_DOWN || in->kind == HR_PARAM_B_DOWN;
    if (is_mlp && !mlp[l]) return NULL;
    bool is_attn = in->kind == HR_PARAM_WQ || in->kind == HR_PARAM_BQ || in->kind == HR_PARAM_WK ||
                   in->kind == HR_PARAM_BK || in->kind == HR_PARAM_WV || in->kind == HR_PARAM_BV ||
                   in->kind == HR_PARAM_WO;
    if (!is_mlp && (!is_attn || !any)) return NULL;
    uint8_t *mk = calloc((size_t)(in->rows * in->cols), 1); // (rows, cols)
    if (!mk) return NULL;
    if (is_mlp) {
        memset(mk, 1, (size_t)(in->rows * in->cols));
        return mk;
    }
    for (int h = 0; h < H; h++) {
        if (!heads[l * max_h + h]) continue;
        int64_t q0 = (int64_t)h * hd, k0 = (int64_t)(h / G) * hd;
        switch (in->kind) {
        case HR_PARAM_WQ: mask_rows(mk, in->cols, q0, q0 + hd); break;
        case HR_PARAM_WK:
        case HR_PARAM_WV: mask_rows(mk, in->cols, k0, k0 + hd); break;
        case HR_PARAM_BQ: memset(mk + q0, 1, (size_t)hd); break;
        case HR_PARAM_BK:
        case HR_PARAM_BV: memset(mk + k0, 1, (size_t)hd); break;
        case HR_PARAM_WO: mask_cols(mk, in->rows, in->cols, q0, q0 + hd); break;
        default: break;
        }
    }
    return mk;
}

/* Layer rank r of a LoRA tensor at a larger rank: the first r rows of A
 * (r_max, d_in) or columns of B (d_out, r_max) train; A's other rows are
 * zeroed (B's are 0 from the start), so the update is a rank-r product. */
static uint8_t *rank_mask(hr_params *P, int i, const hr_param_info *in, int r) {
    uint8_t *mk = calloc((size_t)(in->rows * in->cols), 1); // (rows, cols)
    if (!mk) return NULL;
    if (in->kind == HR_PARAM_LORA_A) {
        mask_rows(mk, in->cols, 0, r);
        float *a = hr_params_data_mut(P, i); // (r_max, d_in)
        memset(a + (size_t)r * (size_t)in->cols, 0, sizeof(float) * (size_t)((in->rows - r) * in->cols));
    } else mask_cols(mk, in->rows, in->cols, 0, r);
    return mk;
}

/* Picks the trainable tensors (and masks) and creates the gradient object. */
static hr_status setup_tensors(hr_train *t) {
    const hr_config *c = hr_model_config(t->model);
    int n = hr_params_n_tensors(t->params), max_h = hr_config_max_heads(c);
    uint8_t *heads = NULL, mlp[HR_MAX_LAYERS] = {0};
    if (t->only) {
        heads = calloc((size_t)c->n_layers * (size_t)(max_h ? max_h : 1), 1); // (n_layers, max_heads)
        if (!heads) return hr_err(HR_ERR_NOMEM, "out of memory");
        hr_status st = parse_only(c, t->only, heads, mlp);
        if (st != HR_OK) {
            free(heads);
            return st;
        }
    }
    bool *sel = calloc((size_t)n, sizeof *sel); // (n_tensors)
    t->tt = calloc((size_t)n, sizeof *t->tt);
    hr_status st = sel && t->tt ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory");
    for (int i = 0; st == HR_OK && i < n; i++) {
        hr_param_info in;
        hr_params_info(t->params, i, &in);
        bool lora = in.kind == HR_PARAM_LORA_A || in.kind == HR_PARAM_LORA_B;
        bool base = in.kind < HR_PARAM_HEAD_GATE;
        if (t->p.full ? !base : !lora) continue;
        uint8_t *mk = NULL;
        if (heads) {
            mk = only_mask(c, &in, heads, mlp, max_h);
            if (!mk) continue;
        }
        if (lora && t->ranks) {
            int r = t->ranks[in.layer];
            if (r == 0) continue;
            mk = rank_mask(t->params, i, &in, r);
            if (!mk) st = hr_err(HR_ERR_NOMEM, "out of memory");
        }
        hr_train_tensor *x = &t->tt[t->n_tt++];
        x->index = i, x->n = (size_t)(in.rows * in.cols), x->mask = mk, x->decay = in.rows > 1;
        x->m = calloc(x->n, sizeof(float)); // (rows, cols)
        x->v = calloc(x->n, sizeof(float)); // (rows, cols)
        if (!x->m || !x->v) st = hr_err(HR_ERR_NOMEM, "out of memory for the optimiser state");
        sel[i] = true;
    }
    free(heads);
    if (st == HR_OK && t->n_tt == 0) st = hr_err(HR_ERR_INVALID_ARG, "no tensor to train");
    if (st == HR_OK) {
        hr_grad_params gp = hr_grad_default_params();
        gp.n_threads = t->p.n_threads;
        gp.max_tokens = t->window;
        gp.recompute = t->p.recompute;
        gp.select = sel;
        gp.kinds = 0;
        st = hr_grad_new(t->params, &gp, &t->grad);
    }
    free(sel);
    return st;
}

hr_status hr_train_new(const hr_model *m, const int32_t *tokens, size_t n_tokens, const hr_train_params *pp,
                       hr_train **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!m || !tokens || !pp) return hr_err(HR_ERR_INVALID_ARG, "no model, tokens or parameters given");
    const hr_config *c = hr_model_config(m);
    for (size_t i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return hr_err(HR_ERR_RANGE, "token %zu (id %d) is outside the vocabulary (%d)", i, tokens[i],
                          c->vocab_size);
    int W = 0;
    hr_status st = check_params(m, pp, n_tokens, &W);
    if (st != HR_OK) return st;
    hr_train *t = calloc(1, sizeof *t);
    if (!t) return hr_err(HR_ERR_NOMEM, "out of memory");
    t->model = m, t->p = *pp, t->tokens = tokens, t->n_tokens = n_tokens, t->window = W;
    t->only = dup_str(pp->only), t->checkpoint = dup_str(pp->checkpoint);
    if (pp->lora_layer_ranks && (t->ranks = malloc(sizeof(int) * (size_t)c->n_layers)))
        memcpy(t->ranks, pp->lora_layer_ranks, sizeof(int) * (size_t)c->n_layers);
    t->p.lora_layer_ranks = t->ranks;
    t->p.only = t->only, t->p.checkpoint = t->checkpoint, t->p.resume = NULL;
    t->per_step = pp->batch * pp->accum;
    int64_t held = (int64_t)llround((double)pp->heldout * (double)n_tokens);
    t->n_train = (int64_t)n_tokens - (held < W ? W : held);
    t->rng = hr_rng_stream(pp->seed, 0x747261696eull); /* "train" */
    t->info.loss = t->info.heldout_loss = NAN;
    t->info.train_tokens = t->n_train, t->info.heldout_tokens = (int64_t)n_tokens - t->n_train;
    hr_params_params prm = hr_params_default_params();
    prm.copy_weights = pp->full;
    prm.lora_rank = pp->lora_rank, prm.lora_alpha = pp->lora_alpha;
    prm.lora_targets = pp->lora_targets ? pp->lora_targets : HR_LORA_ALL;
    prm.seed = pp->seed;
    if ((pp->only && !t->only) || (pp->checkpoint && !t->checkpoint) || (pp->lora_layer_ranks && !t->ranks))
        st = hr_err(HR_ERR_NOMEM, "out of memory");
    /* training reads and writes base weights as f32 rows (a LoRA merge too) */
    if (st == HR_OK) st = hr_model_need_f32(m);
    if (st == HR_OK) st = hr_params_new(m, &prm, &t->params);
    if (st == HR_OK) st = setup_tensors(t);
    if (st == HR_OK && pp->resume) st = hr_train_load(t, pp->resume);
    if (st != HR_OK) {
        hr_train_free(t);
        return st;
    }
    snprintf(t->unit, sizeof t->unit, "steps");
    *out = t;
    return HR_OK;
}

static int64_t draw_start(const hr_train *t, hr_rng *r) {
    return (int64_t)hr_rng_below(r, (uint64_t)(t->n_train - t->window + 1));
}

hr_status hr_train_peek_starts(const hr_train *t, int step, int64_t *starts) {
    if (!t || !starts || step < t->info.step)
        return hr_err(HR_ERR_INVALID_ARG, "bad arguments (step before the current one?)");
    hr_rng r = t->rng;
    for (int s = t->info.step; s < step; s++)
        for (int k = 0; k < t->per_step; k++) draw_start(t, &r);
    for (int k = 0; k < t->per_step; k++) starts[k] = draw_start(t, &r);
    return HR_OK;
}

/* The optimiser's passes run on the gradient engine's pool in blocks of
 * OPT_BLOCK elements of a tensor: fixed blocks, so results do not depend on
 * the thread count (a 135M-parameter model has 540 MB each of weights,
 * gradients and both moments: one thread would take most of a step). */
enum { OPT_BLOCK = 1 << 15 };

typedef struct {
    const hr_train *t;
    const hr_train_tensor *x;
    const float *g; /* (x->n) gradient */
    float *w;       /* (x->n) weights (adamw) */
    double *part;   /* (blocks) sums of squares (norm) */
    float coef, b1, b2, eps, step_size, bc2_sqrt, decay;
} opt_job;

static int n_blocks(size_t n) { return (int)((n + OPT_BLOCK - 1) / OPT_BLOCK); }

static void block_range(const opt_job *j, int b, size_t *k0, size_t *k1) {
    *k0 = (size_t)b * OPT_BLOCK;
    *k1 = *k0 + OPT_BLOCK < j->x->n ? *k0 + OPT_BLOCK : j->x->n;
}

static void norm_task(void *vp, int b) {
    const opt_job *j = vp;
    size_t k0, k1;
    block_range(j, b, &k0, &k1);
    double s = 0;
    for (size_t k = k0; k < k1; k++)
        if (!j->x->mask || j->x->mask[k]) s += (double)j->g[k] * (double)j->g[k];
    j->part[b] = s;
}

/* Global norm of the (masked) gradient, in double: per block in order, the
 * blocks' sums in order. */
static double grad_norm(const hr_train *t, double *part) {
    double s = 0;
    for (int i = 0; i < t->n_tt; i++) {
        opt_job j = {.t = t, .x = &t->tt[i], .g = hr_grad_tensor(t->grad, t->tt[i].index), .part = part};
        int nb = n_blocks(j.x->n);
        hr_pool_run(hr_grad_pool(t->grad), norm_task, &j, nb);
        for (int b = 0; b < nb; b++) s += part[b];
    }
    return sqrt(s);
}

static void adamw_task(void *vp, int b) {
    const opt_job *j = vp;
    hr_train_tensor *x = (hr_train_tensor *)j->x;
    size_t k0, k1;
    block_range(j, b, &k0, &k1);
    for (size_t k = k0; k < k1; k++) {
        if (x->mask && !x->mask[k]) continue;
        float gk = j->g[k] * j->coef;
        if (x->decay && j->t->p.weight_decay > 0) j->w[k] *= j->decay;
        x->m[k] = j->b1 * x->m[k] + (1 - j->b1) * gk;
        x->v[k] = j->b2 * x->v[k] + (1 - j->b2) * gk * gk;
        j->w[k] -= j->step_size * x->m[k] / (sqrtf(x->v[k]) / j->bc2_sqrt + j->eps);
    }
}

/* AdamW (torch.optim.AdamW's single-tensor update) on every trainable element. */
static void adamw(hr_train *t, double lr, float coef, int step) {
    const hr_train_params *p = &t->p;
    double bc1 = 1.0 - pow(p->beta1, step), bc2 = 1.0 - pow(p->beta2, step);
    for (int i = 0; i < t->n_tt; i++) {
        opt_job j = {t,
                     &t->tt[i],
                     hr_grad_tensor(t->grad, t->tt[i].index),
                     hr_params_data_mut(t->params, t->tt[i].index),
                     NULL,
                     coef,
                     p->beta1,
                     p->beta2,
                     p->eps,
                     (float)(lr / bc1),
                     (float)sqrt(bc2),
                     (float)(1.0 - lr * p->weight_decay)};
        hr_pool_run(hr_grad_pool(t->grad), adamw_task, &j, n_blocks(j.x->n));
    }
    hr_params_touch(t->params);
}

hr_status hr_train_step(hr_train *t) {
    if (!t) return hr_err(HR_ERR_INVALID_ARG, "no training run given");
    double t0 = now_s(), loss_sum = 0;
    hr_rng r = t->rng;
    hr_grad_zero(t->grad);
    float scale = 1.0f / (float)t->per_step;
    for (int k = 0; k < t->per_step; k++) {
        int64_t s0 = draw_start(t, &r);
        double loss = 0;
        hr_status st = hr_grad_accumulate(t->grad, t->tokens + s0, t->window, scale, &loss);
        if (st != HR_OK) return hr_err(st, "training step %d: %s", t->info.step + 1, hr_grad_last_error(t->grad));
        if (!isfinite(loss))
            return hr_err(HR_ERR_RANGE,
                          "training step %d: the loss is not finite (%g); stopped before changing "
                          "anything (lower the learning rate?)",
                          t->info.step + 1, loss);
        loss_sum += loss;
    }
    size_t most = 0; /* blocks of the largest tensor: the norm's partial sums */
    for (int i = 0; i < t->n_tt; i++) most = t->tt[i].n > most ? t->tt[i].n : most;
    double *part = malloc(sizeof(double) * (size_t)n_blocks(most ? most : 1)); // (blocks)
    if (!part) return hr_err(HR_ERR_NOMEM, "out of memory");
    double norm = grad_norm(t, part);
    free(part);
    if (!isfinite(norm))
        return hr_err(HR_ERR_RANGE, "training step %d: the gradient is not finite; stopped before changing anything",
                      t->info.step + 1);
    float coef = t->p.clip > 0 && norm > t->p.clip ? (float)(t->p.clip / (norm + 1e-6)) : 1.0f;
    double lr = hr_train_lr_at(&t->p, t->info.step);
    adamw(t, lr, coef, t->info.step + 1);
    t->rng = r;
    t->info.step++;
    t->info.loss = loss_sum / t->per_step;
    t->info.lr = lr, t->info.grad_norm = norm;
    double dt = now_s() - t0;
    t->info.tokens_per_s = dt > 0 ? (double)t->per_step * t->window / dt : 0;
    return HR_OK;
}

hr_status hr_train_eval(hr_train *t, double *loss) {
    if (!t || !loss) return hr_err(HR_ERR_INVALID_ARG, "no training run or output given");
    double sum = 0;
    int n = 0;
    for (int64_t s0 = t->n_train; n < t->p.eval_windows && s0 + t->window <= (int64_t)t->n_tokens;
         s0 += t->window, n++) {
        double l = 0;
        hr_status st = hr_grad_loss(t->grad, t->tokens + s0, t->window, &l, NULL);
        if (st != HR_OK) return hr_err(st, "held-out evaluation: %s", hr_grad_last_error(t->grad));
        sum += l;
    }
    *loss = sum / n;
    t->info.heldout_loss = *loss;
    if (!isfinite(*loss)) return hr_err(HR_ERR_RANGE, "held-out loss is not finite after step %d", t->info.step);
    return HR_OK;
}

void hr_train_get_info(const hr_train *t, hr_train_info *out) {
    if (t && out) *out = t->info;
}
const hr_params *hr_train_parameters(const hr_train *t) { return t ? t->params : NULL; }
hr_params *hr_train_parameters_mut(hr_train *t) { return t ? t->params : NULL; }

void hr_train_set_unit(hr_train *t) {
    char held[48] = "";
    if (isfinite(t->info.heldout_loss)) snprintf(held, sizeof held, ", held-out %.3f", t->info.heldout_loss);
    snprintf(t->unit, sizeof t->unit, "steps (loss %.3f%s, %.0f tokens/s)", t->info.loss, held, t->info.tokens_per_s);
}

hr_status hr_train_run(hr_train *t) {
    if (!t) return hr_err(HR_ERR_INVALID_ARG, "no training run given");
    hr_progress_run saved;
    hr_progress_enter(&saved, t->p.progress_phase, t->p.progress_user_data, 1);
    hr_status st = hr_progress_phase("training", t->unit, t->p.steps);
    if (st == HR_OK && t->info.step > 0) st = hr_progress_update(t->info.step);
    while (st == HR_OK && t->info.step < t->p.steps) {
        st = hr_train_step(t);
        if (st != HR_OK) break;
        bool last = t->info.step == t->p.steps;
        double hl;
        if (last || (t->p.eval_every > 0 && t->info.step % t->p.eval_every == 0)) st = hr_train_eval(t, &hl);
        if (st != HR_OK) break;
        if (t->checkpoint && (last || (t->p.checkpoint_every > 0 && t->info.step % t->p.checkpoint_every == 0)))
            st = hr_train_save(t, t->checkpoint);
        if (st != HR_OK) break;
        hr_train_set_unit(t);
        bool stop = t->p.stop && *t->p.stop;
        st = hr_progress_update(t->info.step);
        if (st == HR_OK && stop && !last)
            st = hr_err(HR_ERR_ABORTED, "training stopped after step %d of %d", t->info.step, t->p.steps);
        if (st == HR_ERR_ABORTED && t->checkpoint && !last) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", hr_last_error());
            hr_status cs = hr_train_save(t, t->checkpoint);
            if (cs != HR_OK) st = cs;
            else hr_err(HR_ERR_ABORTED, "%s; checkpoint written to %s", msg, t->checkpoint);
        }
    }
    double hl;
    if (st == HR_OK && !isfinite(t->info.heldout_loss)) st = hr_train_eval(t, &hl); /* resumed at the end */
    /* Training is over: the window buffers and the packed copy of trained weights are given back before
     * hr_train_model copies the weights (peak memory of a LoRA merge or full save); both are rebuilt if
     * the run is evaluated or continued. */
    hr_grad_release_window(t->grad);
    hr_params_release_packed(t->params);
    hr_progress_leave(&saved);
    return st;
}
