/* Attention and MLP sublayers as one pool of candidates to drop
 * (hr_prune_plan_sublayers, see prune.h): FinerCut's output criterion,
 * re-scored after every removal or ranked once, and "What Matters in
 * Transformers"' joint layer drop by layer metrics (prune_internal.h).
 *
 * Dropping a sublayer is done here with a forward hook that zeroes its
 * output before it is added to the residual stream: x + 0 is x, so the run
 * is the physically pruned model's (tests/test_prune.c checks the choices
 * against models built by surgery). */
#include "headroom/prune.h"
#include "headroom/study.h"
#include "study/prune/prune_internal.h"
#include "core/progress.h"
#include "engine/kernels.h"
#include "model/config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PIECE = 64 }; /* tokens per hr_forward call: bounds the logits buffers */

typedef struct {
    const uint8_t *drop; /* (n_layers, 2) 1 = the sublayer's output is zeroed */
} drop_hook_state;

static int drop_hook(const hr_hook_event *ev, void *user_data) {
    const drop_hook_state *d = user_data;
    int j = ev->layer * 2 + (ev->point == HR_HOOK_MLP_OUT);
    if (d->drop[j])
        for (int t = 0; t < ev->n_tokens; t++) memset(ev->data + (size_t)t * ev->stride, 0, sizeof(float) * ev->n_cols);
    return 0;
}

/* Jensen-Shannon divergence (nats) between softmax(lp) given as
 * log-probabilities and softmax(z) given as logits, both (V). */
static double js_row(const float *lp, const float *z, int V) {
    double lse = hr_logsumexp(z, V), js = 0;
    for (int i = 0; i < V; i++) {
        double a = lp[i], b = (double)z[i] - lse, p = exp(a), q = exp(b), m = 0.5 * (p + q);
        if (m <= 0) continue;
        double lm = log(m);
        if (p > 0) js += 0.5 * p * (a - lm);
        if (q > 0) js += 0.5 * q * (b - lm);
    }
    return js > 0 ? js : 0; /* rounding of identical distributions */
}

typedef struct {
    hr_context *ctx;
    int L, V, window;
    const int32_t *tokens;
    size_t n_tokens;
    uint8_t *drop; /* (L, 2) dropped now, candidates included while they are scored */
    float *base;   /* (window, V) the base model's log-probabilities of the current window */
    float *logits; /* (PIECE, V) */
    int64_t done;
} search;

/* Runs window [off, off + n) with the sublayers of s->drop zeroed; with
 * sum NULL stores the log-probabilities in s->base, else adds the JS
 * divergence from s->base of every row to *sum. */
static hr_status run_window(search *s, size_t off, int n, double *sum) {
    hr_status st = hr_context_truncate(s->ctx, 0);
    for (int p = 0; st == HR_OK && p < n; p += PIECE) {
        int k = n - p < PIECE ? n - p : PIECE;
        st = hr_forward(s->ctx, s->tokens + off + p, k, s->logits, true);
        for (int t = 0; st == HR_OK && t < k; t++) {
            const float *z = s->logits + (size_t)t * s->V;
            float *lp = s->base + (size_t)(p + t) * s->V;
            if (sum) {
                *sum += js_row(lp, z, s->V);
                continue;
            }
            double lse = hr_logsumexp(z, s->V);
            for (int i = 0; i < s->V; i++) lp[i] = (float)((double)z[i] - lse);
        }
    }
    return st;
}

/* Whether sublayer j (layer j / 2; attention when j is even) exists in the
 * model and is not dropped. */
static bool alive(const hr_config *c, const uint8_t *drop, int j) {
    int l = j / 2;
    return !drop[j] && (j % 2 == 0 ? c->n_head[l] > 0 : c->n_ff[l] > 0);
}

/* One scoring pass: out[j] = mean JS divergence of the base model from the
 * model with s->drop and sublayer j zeroed, for every alive j (NaN
 * otherwise). */
static hr_status score_candidates(search *s, const hr_config *c, double *out) {
    int J = 2 * s->L;
    size_t rows = 0;
    for (int j = 0; j < J; j++) out[j] = alive(c, s->drop, j) ? 0.0 : NAN;
    drop_hook_state base_state = {NULL};
    uint8_t *none = calloc((size_t)J, 1);
    if (!none) return hr_err(HR_ERR_NOMEM, "out of memory");
    base_state.drop = none;
    drop_hook_state cand_state = {s->drop};
    hr_status st = HR_OK;
    for (size_t off = 0; st == HR_OK && off < s->n_tokens; off += (size_t)s->window) {
        int n = s->n_tokens - off < (size_t)s->window ? (int)(s->n_tokens - off) : s->window;
        hr_context_set_hook(s->ctx, drop_hook, HR_HOOK_ATTN_OUT | HR_HOOK_MLP_OUT, &base_state);
        st = run_window(s, off, n, NULL);
        hr_context_set_hook(s->ctx, drop_hook, HR_HOOK_ATTN_OUT | HR_HOOK_MLP_OUT, &cand_state);
        for (int j = 0; st == HR_OK && j < J; j++) {
            if (isnan(out[j])) continue;
            s->drop[j] = 1;
            st = run_window(s, off, n, &out[j]);
            s->drop[j] = 0;
            if (st == HR_OK) st = hr_progress_update(++s->done);
        }
        rows += (size_t)n;
    }
    hr_context_set_hook(s->ctx, NULL, 0, NULL);
    hr_context_truncate(s->ctx, 0);
    free(none);
    for (int j = 0; j < J; j++)
        if (!isnan(out[j])) out[j] /= (double)(rows ? rows : 1);
    return st;
}

static int argmin_alive(const double *v, int J) {
    int best = -1;
    for (int j = 0; j < J; j++)
        if (!isnan(v[j]) && (best < 0 || v[j] < v[best])) best = j;
    return best;
}

/* Marks sublayer j dropped in spec; a layer left with neither drops its block. */
static void mark(const hr_config *c, hr_prune_spec *sp, uint8_t *drop, int j) {
    int l = j / 2;
    drop[j] = 1;
    hr_prune_spec_set_dropped(sp, l, j % 2 ? HR_PRUNE_MLP : HR_PRUNE_ATTN, true);
    if (!alive(c, drop, 2 * l) && !alive(c, drop, 2 * l + 1)) hr_prune_spec_set_dropped(sp, l, HR_PRUNE_BLOCK, true);
}

/* Sublayers already gone in spec (dropped, or absent from the model). */
static int init_drops(const hr_config *c, const hr_prune_spec *sp, uint8_t *drop) {
    int avail = 0;
    for (int l = 0; l < c->n_layers; l++) {
        drop[2 * l] = hr_prune_spec_dropped(sp, l, HR_PRUNE_ATTN);
        drop[2 * l + 1] = hr_prune_spec_dropped(sp, l, HR_PRUNE_MLP);
        avail += alive(c, drop, 2 * l) + alive(c, drop, 2 * l + 1);
    }
    return avail;
}

static hr_status check_k(int k, int avail) {
    if (k < 0 || k >= avail)
        return hr_err(HR_ERR_RANGE, "cannot drop %d sublayers: %d remain and at least one must stay", k, avail);
    return HR_OK;
}

hr_status hr_prune_plan_sublayers(hr_context *ctx, const int32_t *tokens, size_t n_tokens, int window, int k,
                                  bool iterative, hr_prune_spec *spec, int *order, double *scores) {
    if (!ctx || !tokens || !spec) return hr_err(HR_ERR_INVALID_ARG, "no context, tokens or pruning spec given");
    const hr_model *m = hr_context_model(ctx);
    const hr_config *c = &m->cfg;
    int L = c->n_layers, J = 2 * L, n_ctx = hr_context_n_ctx(ctx);
    if (hr_prune_check(m, spec, NULL) != HR_OK) return HR_ERR_INVALID_ARG;
    if (n_tokens < 2) return hr_err(HR_ERR_RANGE, "need at least 2 calibration tokens");
    if (window > n_ctx) return hr_err(HR_ERR_RANGE, "calibration window %d exceeds the context (%d)", window, n_ctx);
    search s = {ctx, L, c->vocab_size, hr_calib_window(n_ctx, window), tokens, n_tokens, NULL, NULL, NULL, 0};
    s.drop = calloc((size_t)J, 1);
    if (!s.drop) return hr_err(HR_ERR_NOMEM, "out of memory");
    int avail = init_drops(c, spec, s.drop);
    hr_status st = check_k(k, avail);
    s.base = malloc(sizeof(float) * (size_t)s.window * s.V); // (window, V)
    s.logits = malloc(sizeof(float) * (size_t)PIECE * s.V);  // (PIECE, V)
    double *row = malloc(sizeof(double) * (size_t)J);        // (2 L) scores of one pass
    if (st == HR_OK && (!s.base || !s.logits || !row)) st = hr_err(HR_ERR_NOMEM, "out of memory");
    int64_t windows = (int64_t)((n_tokens + (size_t)s.window - 1) / (size_t)s.window), work = 0;
    for (int i = 0; i < (iterative ? k : (k > 0)); i++) work += (int64_t)(avail - i) * windows;
    hr_progress_run run;
    hr_progress_enter(&run, NULL, NULL, 1);
    if (st == HR_OK)
        st = hr_progress_phase(iterative ? "sublayer search (iterative)" : "sublayer scores", "runs", work);
    for (int i = 0; st == HR_OK && i < k; i++) {
        if (i == 0 || iterative) st = score_candidates(&s, c, row); /* one shot: the first pass's scores */
        int best = st == HR_OK ? argmin_alive(row, J) : -1;
        if (best < 0) break;
        if (scores) memcpy(scores + (size_t)i * J, row, sizeof(double) * (size_t)J);
        if (order) order[i] = best;
        mark(c, spec, s.drop, best);
        row[best] = NAN;
    }
    hr_progress_leave(&run);
    free(row);
    free(s.base);
    free(s.logits);
    free(s.drop);
    return st;
}

hr_status hr_prune_joint_drop(const hr_model *m, const float *attn, const float *mlp, int k, hr_prune_spec *spec,
                              int *order, double *scores) {
    const hr_config *c = &m->cfg;
    int J = 2 * c->n_layers;
    uint8_t *drop = calloc((size_t)J, 1);
    double *row = malloc(sizeof(double) * (size_t)J); // (2 L) layer metric per sublayer
    if (!drop || !row) {
        free(drop);
        free(row);
        return hr_err(HR_ERR_NOMEM, "out of memory");
    }
    hr_status st = check_k(k, init_drops(c, spec, drop));
    for (int j = 0; j < J; j++) {
        double v = j % 2 ? mlp[j / 2] : attn[j / 2];
        row[j] = alive(c, drop, j) ? (isnan(v) ? 1e30 : v) : NAN;
    }
    for (int i = 0; st == HR_OK && i < k; i++) {
        int best = argmin_alive(row, J);
        if (scores) memcpy(scores + (size_t)i * J, row, sizeof(double) * (size_t)J);
        order[i] = best;
        mark(c, spec, drop, best);
        row[best] = NAN;
    }
    free(drop);
    free(row);
    return st;
}
