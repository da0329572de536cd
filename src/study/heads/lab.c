/* Head lab driver: builds calibration windows, runs the selected methods,
 * and owns the helpers the method files share (RNG, loss/KL, greedy
 * decoding, sublayer removal, the attention-statistics pass). */
#include "study/heads/heads_internal.h"

#include "core/progress.h"
#include "headroom/study.h"
#include "engine/context_internal.h"
#include "engine/kernels.h"
#include "headroom/sample.h"
#include "engine/grad/grad_internal.h"
#include "model/config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hr_heads_result {
    hr_lab lab; /* the result is the finished lab, minus its context */
};

hr_heads_params hr_heads_default_params(void) {
    hr_heads_params p;
    memset(&p, 0, sizeof p);
    p.bos = 1;
    return p;
}

/* ---- small shared helpers ---- */

void lab_note(hr_lab *lab, int method, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lab->notes[method], sizeof lab->notes[method], fmt, ap);
    va_end(ap);
}

hr_status lab_progress(hr_lab *lab, int64_t done, int64_t total) {
    if (lab->p.progress) { /* the phase-blind callback: the whole run in slots of 1000 */
        int64_t per = 1000;
        int64_t units = (int64_t)lab->prog_slot * per + (total > 0 ? done * per / total : per);
        if (lab->p.progress(units, (int64_t)lab->prog_slots * per, lab->p.progress_ud))
            return hr_err(HR_ERR_ABORTED, "head analysis aborted");
    }
    return hr_progress_update(done);
}

double lab_heads_depth(const hr_lab *lab) {
    double d = 0;
    for (int l = 0; l < lab->L; l++) d += (double)lab->c->n_head[l] * (lab->L - l) / lab->L;
    return d;
}

int lab_n_heads(const hr_lab *lab) {
    int n = 0;
    for (int l = 0; l < lab->L; l++) n += lab->c->n_head[l];
    return n;
}

int lab_rep_len(const hr_lab *lab) {
    int n_ctx = hr_context_n_ctx(lab->ctx);
    return lab->p.rep_len ? lab->p.rep_len : ((n_ctx - 1) / 2 < 48 ? (n_ctx - 1) / 2 : 48);
}

static int lab_rep_seqs(const hr_lab *lab) { return lab->p.rep_seqs ? lab->p.rep_seqs : 4; }

/* One forward per calibration window, no logits. */
void lab_cost_calib_pass(const hr_lab *lab, lab_cost *out) {
    out->work = (hr_heads_work){(double)lab->n_windows * lab->W, 0, 0, 0};
    out->items = lab->n_windows;
    out->exact = true;
}

/* One forward per repeated sequence of 2k + 1 tokens, no logits. */
void lab_cost_repeat_pass(const hr_lab *lab, lab_cost *out) {
    out->work = (hr_heads_work){(double)lab_rep_seqs(lab) * (2 * lab_rep_len(lab) + 1), 0, 0, 0};
    out->items = lab_rep_seqs(lab);
    out->exact = true;
}

/* Logit reductions in double precision (engine/kernels.h: hr_logsumexp's
 * vectorised exp), so a 49152-entry vocabulary costs microseconds; rows are
 * spread over the context's pool and their results summed in row order, so
 * scores do not depend on the thread count. */
typedef struct {
    float *x;             /* (n, vocab) logits, or probabilities once converted */
    const float *base_p;  /* (n, vocab) or NULL */
    const double *negent; /* (n) */
    const int32_t *tokens;
    int vocab;
    double *nll, *kl; /* (n - 1) per row; lab_base_probs: negent out in nll */
    bool to_probs;
} rows_job;

static void rows_task(void *vp, int t) {
    const rows_job *j = vp;
    float *r = j->x + (size_t)t * j->vocab;
    double lse = hr_logsumexp(r, j->vocab);
    if (j->to_probs) { /* base side: probabilities and sum p log p */
        double ne = 0;
        for (int v = 0; v < j->vocab; v++) {
            double lp = (double)r[v] - lse, pv = exp(lp);
            ne += pv * lp;
            r[v] = (float)pv;
        }
        j->nll[t] = ne;
        return;
    }
    j->nll[t] = lse - r[j->tokens[t + 1]];
    /* KL(b || a) = sum b log b - sum b x + lse(x) since sum b = 1 */
    if (j->base_p) j->kl[t] = j->negent[t] - hr_dot_f64(j->base_p + (size_t)t * j->vocab, r, j->vocab) + lse;
}

static void run_rows(hr_lab *lab, rows_job *j, int rows) {
    hr_pool *pool = lab->ctx ? hr_context_pool(lab->ctx) : NULL;
    if (pool) hr_pool_run(pool, rows_task, j, rows);
    else
        for (int t = 0; t < rows; t++) rows_task(j, t);
}

void lab_base_probs(hr_lab *lab, float *x, double *negent, int n, int vocab) {
    rows_job j = {x, NULL, NULL, NULL, vocab, negent, NULL, true};
    run_rows(lab, &j, n - 1);
}

void lab_nll_kl(hr_lab *lab, const float *logits, const float *base_p, const double *base_negent, const int32_t *tokens,
                int n, int vocab, double *nll, double *kl) {
    int rows = n > 1 ? n - 1 : 0;
    double *row_nll = lab->row_scratch, *row_kl = lab->row_scratch + lab->W, s_nll = 0, s_kl = 0;
    rows_job j = {(float *)logits, base_p, base_negent, tokens, vocab, row_nll, row_kl, false};
    run_rows(lab, &j, rows);
    for (int t = 0; t < rows; t++) s_nll += row_nll[t], s_kl += base_p ? row_kl[t] : 0;
    *nll = s_nll / (rows ? rows : 1);
    if (kl) *kl = base_p ? s_kl / (rows ? rows : 1) : 0;
}

hr_status lab_greedy(hr_context *ctx, const int32_t *prompt, int n, int gen, const int32_t *ref, int32_t *out,
                     int *n_out, float *logits) {
    int vocab = hr_model_config(hr_context_model(ctx))->vocab_size;
    *n_out = 0;
    hr_status st = hr_context_truncate(ctx, 0);
    if (st == HR_OK) st = hr_forward(ctx, prompt, n, logits, false);
    for (int i = 0; st == HR_OK && i < gen; i++) {
        int32_t tok = hr_argmax(logits, vocab);
        out[i] = tok;
        *n_out = i + 1;
        if ((ref && tok != ref[i]) || i + 1 == gen) break;
        st = hr_forward(ctx, &tok, 1, logits, false);
    }
    return st;
}

static int removal_hook(const hr_hook_event *ev, void *ud) {
    const lab_removal *r = ud;
    int hit = (ev->point == HR_HOOK_ATTN_OUT && ev->layer == r->attn_layer) ||
              (ev->point == HR_HOOK_MLP_OUT && ev->layer == r->mlp_layer);
    if (hit)
        for (int t = 0; t < ev->n_tokens; t++)
            memset(ev->data + (size_t)t * ev->stride, 0, (size_t)ev->n_cols * sizeof(float));
    return 0;
}

void lab_set_removal(hr_context *ctx, lab_removal *r) {
    if (r) hr_context_set_hook(ctx, removal_hook, HR_HOOK_ATTN_OUT | HR_HOOK_MLP_OUT, r);
    else hr_context_set_hook(ctx, NULL, 0, NULL);
}

hr_status lab_grad_new(hr_lab *lab, uint64_t kinds, hr_params **params, hr_grad **grad) {
    *grad = NULL;
    hr_grad_params gp = hr_grad_default_params();
    gp.kinds = kinds;
    gp.max_tokens = lab->W;
    hr_status st = hr_params_new(lab->model, NULL, params);
    if (st == HR_OK) st = hr_grad_new_on_pool(*params, &gp, hr_context_pool(lab->ctx), grad);
    if (st != HR_OK) {
        hr_params_free(*params);
        *params = NULL;
    }
    return st;
}

/* ---- attention-statistics pass ---- */

typedef struct {
    hr_lab *lab;
    lab_input input;
    int n, rep_k;     /* current sequence */
    double *sum, *wt; /* (n_methods, L, H) */
    float **partial;  /* (L*H) lazily allocated (n, n) buffers when batches split a sequence */
    bool oom;
} attn_pass;

static void attn_dispatch(attn_pass *ap, int l, int h, const float *P, int stride) {
    hr_lab *lab = ap->lab;
    lab_attn a = {P, ap->n, stride, ap->rep_k};
    size_t base = (size_t)lab->L * lab->H;
    for (int m = 0; m < hr_head_methods_count; m++) {
        const hr_head_method *hm = hr_head_methods[m];
        if (!lab->selected[m] || hm->input != ap->input || !hm->attn) continue;
        size_t k = (size_t)m * base + lab_idx(lab, l, h);
        hm->attn(&a, &ap->sum[k], &ap->wt[k]);
    }
}

static int attn_hook(const hr_hook_event *ev, void *ud) {
    attn_pass *ap = ud;
    int l = ev->layer, h = ev->head;
    if (ev->pos0 == 0 && ev->n_tokens == ap->n) {
        attn_dispatch(ap, l, h, ev->data, ev->stride);
        return 0;
    }
    /* The sequence arrived in several batches: assemble it first. */
    size_t k = lab_idx(ap->lab, l, h);
    if (!ap->partial[k] && !(ap->partial[k] = calloc((size_t)ap->n * ap->n, sizeof(float)))) {
        ap->oom = true;
        return 1;
    }
    for (int t = 0; t < ev->n_tokens; t++)
        memcpy(ap->partial[k] + (size_t)(ev->pos0 + t) * ap->n, ev->data + (size_t)t * ev->stride,
               (size_t)ev->n_cols * sizeof(float));
    if (ev->pos0 + ev->n_tokens == ap->n) {
        attn_dispatch(ap, l, h, ap->partial[k], ap->n);
        free(ap->partial[k]);
        ap->partial[k] = NULL;
    }
    return 0;
}

/* Repeated random sequence [BOS, r1..rk, r1..rk] into seq (2k+1). Tokens
 * are distinct within a half when the vocabulary allows it, so the
 * induction and duplicate targets are unambiguous. */
static void make_repeat(hr_lab *lab, hr_rng *rng, int k, int32_t *seq) {
    int vocab = lab->c->vocab_size;
    seq[0] = lab->p.bos;
    for (int i = 1; i <= k; i++) {
        int32_t t;
        for (int tries = 0;; tries++) {
            t = (int32_t)hr_rng_below(rng, (uint64_t)vocab);
            if (t == lab->p.bos) continue;
            bool dup = false;
            for (int j = 1; j < i && !dup; j++) dup = seq[j] == t;
            if (!dup || tries > 64) break;
        }
        seq[i] = t;
        seq[k + i] = t;
    }
}

hr_status lab_run_attn_methods(hr_lab *lab, lab_input input) {
    size_t n_all = (size_t)hr_head_methods_count * lab->L * lab->H;
    attn_pass ap = {lab,
                    input,
                    0,
                    0,
                    calloc(n_all, sizeof(double)),
                    calloc(n_all, sizeof(double)),
                    calloc((size_t)lab->L * lab->H, sizeof(float *)),
                    false};
    int n_ctx = hr_context_n_ctx(lab->ctx);
    int k = lab_rep_len(lab);
    int n_seqs = input == LAB_INPUT_CALIB ? lab->n_windows : lab_rep_seqs(lab);
    int32_t *seq = malloc(sizeof(int32_t) * (size_t)(2 * k + 1 > lab->W ? 2 * k + 1 : lab->W));
    hr_status st = HR_OK;
    if (!ap.sum || !ap.wt || !ap.partial || !seq) st = hr_err(HR_ERR_NOMEM, "out of memory");
    else if (input == LAB_INPUT_REPEAT && (k < 2 || 2 * k + 1 > n_ctx))
        st = hr_err(HR_ERR_RANGE, "repeated sequences of 2x%d tokens do not fit the context of %d", k, n_ctx);
    hr_rng rng = hr_rng_stream(lab->p.seed, 0x5EB0 + (uint64_t)input);
    hr_context_set_hook(lab->ctx, attn_hook, HR_HOOK_ATTN_PROBS, &ap);
    for (int s = 0; st == HR_OK && s < n_seqs; s++) {
        const int32_t *toks = seq;
        if (input == LAB_INPUT_CALIB) {
            toks = lab->windows + (size_t)s * lab->W;
            ap.n = lab->W;
            ap.rep_k = 0;
        } else {
            make_repeat(lab, &rng, k, seq);
            ap.n = 2 * k + 1;
            ap.rep_k = k;
        }
        st = hr_context_truncate(lab->ctx, 0);
        if (st == HR_OK) st = hr_forward(lab->ctx, toks, ap.n, NULL, false);
        if (ap.oom) st = hr_err(HR_ERR_NOMEM, "out of memory for attention patterns");
        if (st == HR_OK) st = lab_progress(lab, s + 1, n_seqs);
    }
    hr_context_set_hook(lab->ctx, NULL, 0, NULL);
    size_t base = (size_t)lab->L * lab->H;
    for (int m = 0; st == HR_OK && m < hr_head_methods_count; m++) {
        const hr_head_method *hm = hr_head_methods[m];
        if (!lab->selected[m] || hm->input != input || !hm->attn) continue;
        for (int l = 0; l < lab->L; l++)
            for (int h = 0; h < lab->c->n_head[l]; h++) {
                size_t i = (size_t)m * base + lab_idx(lab, l, h);
                lab->scores[i] = ap.wt[i] > 0 ? ap.sum[i] / ap.wt[i] : NAN;
            }
        lab->has[m] = true;
    }
    for (size_t i = 0; ap.partial && i < base; i++) free(ap.partial[i]);
    free(ap.partial);
    free(ap.sum);
    free(ap.wt);
    free(seq);
    return st;
}

/* ---- driver ---- */

void hr_heads_result_free(hr_heads_result *r) {
    if (!r) return;
    lab_release(&r->lab);
    free(r);
}

void lab_release(hr_lab *lab) {
    free(lab->windows);
    free(lab->scores);
    free(lab->has);
    free(lab->notes);
    free((void *)lab->selected);
    free(lab->abl_loss);
    free(lab->abl_kl);
    free(lab->fdtm_heads);
    free(lab->layer_scores);
    free(lab->row_scratch);
}

hr_status lab_validate(hr_context *ctx, const hr_heads_params *p) {
    if (!ctx || !p) return hr_err(HR_ERR_INVALID_ARG, "no context or parameters given");
    const hr_config *c = hr_model_config(hr_context_model(ctx));
    if (!p->tokens && p->n_tokens) return hr_err(HR_ERR_INVALID_ARG, "no calibration tokens given");
    if (p->bos < 0 || p->bos >= c->vocab_size)
        return hr_err(HR_ERR_INVALID_ARG, "BOS id %d outside the vocabulary", p->bos);
    for (size_t i = 0; i < p->n_tokens; i++)
        if (p->tokens[i] < 0 || p->tokens[i] >= c->vocab_size)
            return hr_err(HR_ERR_INVALID_ARG, "calibration token %d at index %zu is outside the vocabulary (%d)",
                          p->tokens[i], i, c->vocab_size);
    int n_ctx = hr_context_n_ctx(ctx);
    if (p->window < 0 || p->window > n_ctx || (p->window && p->window < 4))
        return hr_err(HR_ERR_RANGE, "window %d must be within [4, %d]", p->window, n_ctx);
    if (p->max_tokens < 0 || p->rep_len < 0 || p->rep_seqs < 0 || p->n_needles < 0 || p->needle_len < 0 ||
        p->fdtm_prompts < 0 || p->fdtm_prompt_len < 0 || p->fdtm_gen < 0)
        return hr_err(HR_ERR_RANGE, "negative head-lab parameter");
    return HR_OK;
}

hr_status lab_init(hr_lab *lab, hr_context *ctx, const hr_heads_params *p, const bool *selected, bool warn) {
    lab->ctx = ctx;
    lab->model = hr_context_model(ctx);
    lab->c = hr_model_config(lab->model);
    lab->p = *p;
    lab->L = lab->c->n_layers;
    lab->H = hr_config_max_heads(lab->c);
    int n_ctx = hr_context_n_ctx(ctx);
    lab->W = hr_calib_window(n_ctx, p->window);
    size_t per = (size_t)lab->W - 1, max_tok = p->max_tokens ? (size_t)p->max_tokens : HR_CALIB_HEADS_TOKENS;
    if (p->n_tokens < per)
        return hr_err(HR_ERR_RANGE, "calibration text has %zu tokens, shorter than one window of %d", p->n_tokens,
                      lab->W);
    if (max_tok < (size_t)lab->W)
        return hr_err(HR_ERR_RANGE,
                      "%zu calibration tokens are fewer than one window of %d (ask for at least %d "
                      "tokens, or a shorter window)",
                      max_tok, lab->W, lab->W);
    size_t nw = p->n_tokens / per, want = max_tok / (size_t)lab->W;
    lab->n_windows = (int)(nw < want ? nw : want);
    if ((size_t)lab->n_windows * lab->W != max_tok && warn)
        hr_log(HR_LOG_WARN, "head lab: using %zu calibration tokens (%d windows of %d), not the %zu asked: %s",
               (size_t)lab->n_windows * lab->W, lab->n_windows, lab->W, max_tok,
               nw < want ? "the text is shorter" : "only whole windows are used");
    size_t n_m = (size_t)hr_head_methods_count, lh = (size_t)lab->L * lab->H;
    bool *sel = calloc(n_m, sizeof(bool));
    lab->selected = sel;
    lab->windows = malloc(sizeof(int32_t) * (size_t)lab->n_windows * lab->W);
    lab->scores = malloc(sizeof(double) * n_m * (lh ? lh : 1));
    lab->has = calloc(n_m, sizeof(bool));
    lab->notes = calloc(n_m, sizeof *lab->notes);
    lab->layer_scores = malloc(sizeof(double) * LM_COUNT * (size_t)(lab->L ? lab->L : 1));
    lab->row_scratch = malloc(sizeof(double) * 2 * (size_t)lab->W);
    if (!sel || !lab->windows || !lab->scores || !lab->has || !lab->notes || !lab->layer_scores || !lab->row_scratch)
        return hr_err(HR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n_m; i++) sel[i] = selected ? selected[i] : true;
    for (size_t i = 0; i < n_m * lh; i++) lab->scores[i] = NAN;
    for (size_t i = 0; i < (size_t)LM_COUNT * lab->L; i++) lab->layer_scores[i] = NAN;
    for (int w = 0; w < lab->n_windows; w++) {
        int32_t *dst = lab->windows + (size_t)w * lab->W;
        dst[0] = p->bos;
        memcpy(dst + 1, p->tokens + (size_t)w * per, per * sizeof(int32_t));
    }
    lab->prog_slots = p->no_layer_metrics ? 0 : 1;
    for (size_t i = 0; i < n_m; i++) lab->prog_slots += sel[i];
    return HR_OK;
}

bool lab_shares_earlier(const bool *sel, int m) {
    const hr_head_method *hm = hr_head_methods[m];
    for (int i = 0; i < m; i++)
        if ((!sel || sel[i]) && hr_head_methods[i]->work.cost && hr_head_methods[i]->work.cost == hm->work.cost)
            return true;
    return false;
}

/* Progress phases of the selection: one per group sharing work, and the
 * layer metrics. */
static int lab_n_phases(const hr_lab *lab) {
    int n = lab->p.no_layer_metrics ? 0 : 1;
    for (int m = 0; m < hr_head_methods_count; m++) n += lab->selected[m] && !lab_shares_earlier(lab->selected, m);
    return n;
}

static hr_status start_phase(const hr_lab *lab, const lab_work *w, const char *fallback) {
    lab_cost c = {{0, 0, 0, 0}, 1, true, false};
    if (w->cost) w->cost(lab, &c);
    return hr_progress_phase(w->phase ? w->phase : fallback, w->unit ? w->unit : "items", c.items);
}

static const lab_work k_layer_work = {"layer metrics", "layers x windows", lab_cost_layer_metrics};

static hr_status lab_run_methods(hr_lab *lab) {
    bool done_input[3] = {false, false, false};
    hr_status st = HR_OK;
    for (int m = 0; st == HR_OK && m < hr_head_methods_count; m++) {
        const hr_head_method *hm = hr_head_methods[m];
        if (!lab->selected[m]) continue;
        if (!lab_shares_earlier(lab->selected, m)) st = start_phase(lab, &hm->work, hm->info.id);
        if (st == HR_OK && hm->attn) {
            if (!done_input[hm->input]) st = lab_run_attn_methods(lab, hm->input);
            done_input[hm->input] = true;
        } else if (st == HR_OK) {
            size_t lh = (size_t)lab->L * lab->H;
            st = hm->compute(lab, m, lab->scores + (size_t)m * lh);
            if (st == HR_OK && !lab->notes[m][0]) lab->has[m] = true;
        }
        if (st != HR_OK) hr_err_prefix("%s", hm->info.id);
        lab->prog_slot++;
    }
    if (lab->p.no_layer_metrics) return st;
    if (st == HR_OK) st = start_phase(lab, &k_layer_work, "layer metrics");
    if (st == HR_OK) st = lab_layer_metrics(lab);
    return st;
}

hr_status hr_heads_run(hr_context *ctx, const hr_heads_params *p, const bool *selected, hr_heads_result **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    hr_status st = lab_validate(ctx, p);
    if (st != HR_OK) return st;
    hr_heads_result *r = calloc(1, sizeof *r);
    if (!r) return hr_err(HR_ERR_NOMEM, "out of memory");
    st = lab_init(&r->lab, ctx, p, selected, true);
    if (st == HR_OK) {
        hr_progress_run run;
        hr_progress_enter(&run, p->progress_phase, p->progress_ud, lab_n_phases(&r->lab));
        st = lab_run_methods(&r->lab);
        hr_progress_leave(&run);
    }
    hr_context_set_hook(ctx, NULL, 0, NULL);
    hr_context_set_head_gates(ctx, NULL);
    hr_context_set_head_means(ctx, NULL);
    hr_context_truncate(ctx, 0);
    r->lab.ctx = NULL;
    if (st != HR_OK) {
        hr_heads_result_free(r);
        return st;
    }
    *out = r;
    return HR_OK;
}

/* ---- result accessors ---- */

int hr_heads_result_n_layers(const hr_heads_result *r) { return r->lab.L; }
int hr_heads_result_n_heads(const hr_heads_result *r, int layer) {
    return layer >= 0 && layer < r->lab.L ? r->lab.c->n_head[layer] : 0;
}
int hr_heads_result_n_calib_tokens(const hr_heads_result *r) { return r->lab.n_windows * r->lab.W; }
int hr_heads_result_window(const hr_heads_result *r) { return r->lab.W; }

bool hr_heads_result_has(const hr_heads_result *r, int m) {
    return m >= 0 && m < hr_head_methods_count && r->lab.has[m];
}

const char *hr_heads_result_note(const hr_heads_result *r, int m) {
    return m >= 0 && m < hr_head_methods_count ? r->lab.notes[m] : "";
}

double hr_heads_score(const hr_heads_result *r, int m, int layer, int head) {
    const hr_lab *lab = &r->lab;
    if (!hr_heads_result_has(r, m) || layer < 0 || layer >= lab->L || head < 0 || head >= lab->c->n_head[layer])
        return NAN;
    return lab->scores[(size_t)m * lab->L * lab->H + lab_idx(lab, layer, head)];
}

int hr_heads_rank(const hr_heads_result *r, int m, int layer, int head) {
    double s = hr_heads_score(r, m, layer, head);
    if (isnan(s)) return 0;
    int rank = 1;
    for (int l = 0; l < r->lab.L; l++)
        for (int h = 0; h < r->lab.c->n_head[l]; h++) {
            double o = hr_heads_score(r, m, l, h);
            if (isnan(o)) continue;
            /* ties go to the earlier (layer, head) so ranks are a permutation */
            if (o > s || (o == s && (l < layer || (l == layer && h < head)))) rank++;
        }
    return rank;
}

bool hr_heads_result_has_layer_metrics(const hr_heads_result *r) { return r && !r->lab.p.no_layer_metrics; }

double hr_heads_layer_score(const hr_heads_result *r, int metric, int layer) {
    if (metric < 0 || metric >= LM_COUNT || layer < 0 || layer >= r->lab.L) return NAN;
    return r->lab.layer_scores[(size_t)metric * r->lab.L + layer];
}

/* ---- attention map for pictures ---- */

typedef struct {
    int layer, head, n;
    float *out; /* (n, n) */
} map_pass;

static int map_hook(const hr_hook_event *ev, void *ud) {
    map_pass *mp = ud;
    if (ev->layer != mp->layer || ev->head != mp->head) return 0;
    for (int t = 0; t < ev->n_tokens; t++)
        memcpy(mp->out + (size_t)(ev->pos0 + t) * mp->n, ev->data + (size_t)t * ev->stride,
               (size_t)ev->n_cols * sizeof(float));
    return 0;
}

hr_status hr_heads_attention_map(hr_context *ctx, const int32_t *tokens, int n, int layer, int head, float *out) {
    if (!ctx || !tokens || !out || n <= 0) return hr_err(HR_ERR_INVALID_ARG, "invalid attention map arguments");
    const hr_config *c = hr_model_config(hr_context_model(ctx));
    if (layer < 0 || layer >= c->n_layers || head < 0 || head >= c->n_head[layer])
        return hr_err(HR_ERR_RANGE, "head %d.%d does not exist", layer, head);
    memset(out, 0, sizeof(float) * (size_t)n * n);
    map_pass mp = {layer, head, n, out};
    hr_status st = hr_context_truncate(ctx, 0);
    hr_context_set_hook(ctx, map_hook, HR_HOOK_ATTN_PROBS, &mp);
    if (st == HR_OK) st = hr_forward(ctx, tokens, n, NULL, false);
    hr_context_set_hook(ctx, NULL, 0, NULL);
    hr_context_truncate(ctx, 0);
    return st;
}
