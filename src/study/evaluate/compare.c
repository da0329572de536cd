/* Base-vs-candidate comparisons: KL / top-1 agreement, FDTM, speed, sizes
 * (see evaluate.h). */
#include "headroom/evaluate.h"
#include "study/evaluate/evaluate_internal.h"
#include "model/model_internal.h"
#include "core/progress.h"
#include "core/rng.h"
#include "engine/kernels.h"
#include "headroom/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PIECE = 64 }; /* tokens per hr_forward call: bounds the logits buffers */

/* log-softmax of x (n) into y, in double (hr_logsumexp). */
static void log_softmax(double *y, const float *x, int n) {
    double lse = hr_logsumexp(x, n);
    for (int i = 0; i < n; i++) y[i] = x[i] - lse;
}

typedef struct {
    double kl, kl_max, nll_b, nll_c;
    int64_t n, agree;
} cmp_acc;

/* Adds one position: logits of both models predicting `next`. */
static void add_position(cmp_acc *a, const float *lb, const float *lc, int V, int32_t next, double *pb, double *pc) {
    log_softmax(pb, lb, V);
    log_softmax(pc, lc, V);
    double kl = 0;
    for (int i = 0; i < V; i++) kl += exp(pb[i]) * (pb[i] - pc[i]);
    if (kl < 0) kl = 0; /* rounding of identical distributions */
    a->kl += kl;
    if (kl > a->kl_max) a->kl_max = kl;
    a->agree += hr_argmax(lb, V) == hr_argmax(lc, V);
    a->nll_b -= pb[next];
    a->nll_c -= pc[next];
    a->n++;
}

/* Scores positions first..n-2 of window w (n tokens). */
static hr_status compare_window(hr_context *base, hr_context *cand, const int32_t *w, int n, int first, int V,
                                cmp_acc *a, float *lb, float *lc, double *pb, double *pc) {
    hr_status st = hr_context_truncate(base, 0);
    if (st == HR_OK) st = hr_context_truncate(cand, 0);
    for (int off = 0; st == HR_OK && off < n; off += PIECE) {
        int k = n - off < PIECE ? n - off : PIECE;
        st = hr_forward(base, w + off, k, lb, true);
        if (st == HR_OK) st = hr_forward(cand, w + off, k, lc, true);
        for (int t = 0; st == HR_OK && t < k; t++)
            if (off + t >= first && off + t + 1 < n)
                add_position(a, lb + (size_t)t * V, lc + (size_t)t * V, V, w[off + t + 1], pb, pc);
    }
    return st;
}

static hr_status check_pair(hr_context *base, hr_context *cand, int n_ctx) {
    const hr_model *mb = hr_context_model(base), *mc = hr_context_model(cand);
    if (mb->cfg.vocab_size != mc->cfg.vocab_size)
        return hr_err(HR_ERR_INVALID_ARG, "the models have different vocabularies (%d and %d tokens)",
                      mb->cfg.vocab_size, mc->cfg.vocab_size);
    if (n_ctx < 2 || n_ctx > hr_context_n_ctx(base) || n_ctx > hr_context_n_ctx(cand))
        return hr_err(HR_ERR_RANGE, "window of %d tokens does not fit the contexts (%d, %d)", n_ctx,
                      hr_context_n_ctx(base), hr_context_n_ctx(cand));
    return HR_OK;
}

/* The windows hr_compare_logits scores (its loop, without the work). */
static int64_t compare_windows(size_t n_tokens, int n_ctx, int max_windows) {
    size_t next = 0;
    int64_t win = 0;
    for (; next + 1 < n_tokens && (max_windows <= 0 || win < max_windows); win++) {
        size_t n = win > 0 ? 1 : 0, take = n_tokens - next < (size_t)n_ctx - n ? n_tokens - next : (size_t)n_ctx - n;
        next += take;
        if (win > 0 && n + take < 2) break;
        if (next < n_tokens) next--;
    }
    return win;
}

hr_status hr_compare_logits(hr_context *base, hr_context *cand, const int32_t *tokens, size_t n_tokens, int n_ctx,
                            int max_windows, hr_compare_result *out) {
    hr_status st = check_pair(base, cand, n_ctx);
    if (st != HR_OK) return st;
    if (n_tokens < 2) return hr_err(HR_ERR_RANGE, "need at least 2 tokens to compare");
    if (n_ctx < 3) return hr_err(HR_ERR_RANGE, "comparison windows need at least 3 tokens");
    int V = hr_context_model(base)->cfg.vocab_size;
    float *lb = malloc(sizeof(float) * PIECE * (size_t)V), *lc = malloc(sizeof(float) * PIECE * (size_t)V);
    double *pb = malloc(sizeof(double) * (size_t)V), *pc = malloc(sizeof(double) * (size_t)V);
    int32_t *w = malloc(sizeof(int32_t) * (size_t)n_ctx);
    cmp_acc a = {0};
    if (!lb || !lc || !pb || !pc || !w) st = hr_err(HR_ERR_NOMEM, "out of memory");
    /* window 0 is tokens[0..n_ctx); later ones are BOS + the next n_ctx-1 */
    size_t next = 0;
    int win = 0;
    hr_progress_run run;
    hr_progress_enter(&run, NULL, NULL, 1);
    if (st == HR_OK) st = hr_progress_phase("KL and top-1", "windows", compare_windows(n_tokens, n_ctx, max_windows));
    for (win = 0; st == HR_OK && next + 1 < n_tokens && (max_windows <= 0 || win < max_windows); win++) {
        int n = 0;
        if (win > 0) w[n++] = tokens[0];
        while (n < n_ctx && next < n_tokens) w[n++] = tokens[next++];
        if (win > 0 && n < 2) break;
        /* a later window's BOS would re-predict a token already scored */
        st = compare_window(base, cand, w, n, win > 0, V, &a, lb, lc, pb, pc);
        if (next < n_tokens) next--; /* the last token of a window is the first target of the next */
        if (st == HR_OK) st = hr_progress_update(win + 1);
    }
    hr_progress_leave(&run);
    free(lb);
    free(lc);
    free(pb);
    free(pc);
    free(w);
    if (st != HR_OK) return st;
    double n = a.n ? (double)a.n : 1.0;
    *out = (hr_compare_result){a.n, a.kl / n, a.kl_max, (double)a.agree / n, a.nll_b / n, a.nll_c / n, win};
    return HR_OK;
}

hr_status hr_eval_greedy(hr_context *ctx, const int32_t *prompt, int n, int gen, int32_t *out) {
    int V = hr_context_model(ctx)->cfg.vocab_size;
    float *logits = malloc(sizeof(float) * (size_t)V);
    if (!logits) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_status st = hr_context_truncate(ctx, 0);
    if (st == HR_OK) st = hr_forward(ctx, prompt, n, logits, false);
    for (int i = 0; st == HR_OK && i < gen; i++) {
        out[i] = hr_argmax(logits, V);
        if (i + 1 < gen) st = hr_forward(ctx, &out[i], 1, logits, false);
    }
    free(logits);
    return st;
}

hr_status hr_compare_fdtm(hr_context *base, hr_context *cand, const int32_t *tokens, size_t n_tokens, int n_prompts,
                          int prompt_len, int gen_len, uint64_t seed, double *fdtm) {
    hr_status st = check_pair(base, cand, prompt_len + gen_len);
    if (st != HR_OK) return st;
    if (n_prompts < 1 || prompt_len < 2 || gen_len < 1)
        return hr_err(HR_ERR_INVALID_ARG, "FDTM needs prompts of at least 2 tokens and a continuation");
    if (n_tokens < (size_t)prompt_len + 1) return hr_err(HR_ERR_RANGE, "the text is shorter than one FDTM prompt");
    int32_t *p = malloc(sizeof(int32_t) * (size_t)prompt_len);
    int32_t *gb = malloc(sizeof(int32_t) * (size_t)gen_len), *gc = malloc(sizeof(int32_t) * (size_t)gen_len);
    if (!p || !gb || !gc) st = hr_err(HR_ERR_NOMEM, "out of memory");
    hr_rng rng = hr_rng_new(seed);
    double sum = 0;
    hr_progress_run run;
    hr_progress_enter(&run, NULL, NULL, 1);
    if (st == HR_OK) st = hr_progress_phase("FDTM", "prompts", n_prompts);
    for (int i = 0; st == HR_OK && i < n_prompts; i++) {
        size_t span = n_tokens - 1 - (size_t)(prompt_len - 1);
        size_t off = 1 + (size_t)hr_rng_below(&rng, span);
        p[0] = tokens[0];
        memcpy(p + 1, tokens + off, sizeof(int32_t) * (size_t)(prompt_len - 1));
        st = hr_eval_greedy(base, p, prompt_len, gen_len, gb);
        if (st == HR_OK) st = hr_eval_greedy(cand, p, prompt_len, gen_len, gc);
        int d = 0;
        while (d < gen_len && gb[d] == gc[d]) d++;
        sum += d;
        if (st == HR_OK) st = hr_progress_update(i + 1);
    }
    hr_progress_leave(&run);
    free(p);
    free(gb);
    free(gc);
    if (st == HR_OK) *fdtm = sum / n_prompts;
    return st;
}

hr_status hr_measure_speed(hr_context *ctx, const int32_t *tokens, int n_prefill, int n_decode, int reps,
                           double *prefill_tps, double *decode_tps) {
    if (n_prefill < 1 || n_decode < 0 || n_prefill + n_decode > hr_context_n_ctx(ctx))
        return hr_err(HR_ERR_RANGE, "%d + %d tokens do not fit the context of %d", n_prefill, n_decode,
                      hr_context_n_ctx(ctx));
    int V = hr_context_model(ctx)->cfg.vocab_size;
    float *logits = malloc(sizeof(float) * (size_t)V);
    if (!logits) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_status st = HR_OK;
    double best = INFINITY, dec = 0;
    for (int r = 0; st == HR_OK && r < (reps > 0 ? reps : 1); r++) {
        st = hr_context_truncate(ctx, 0);
        double t0 = hr_time_now();
        if (st == HR_OK) st = hr_forward(ctx, tokens, n_prefill, logits, false);
        double t = hr_time_now() - t0;
        if (t < best) best = t;
    }
    double t0 = hr_time_now();
    for (int i = 0; st == HR_OK && i < n_decode; i++) st = hr_forward(ctx, tokens + n_prefill + i, 1, logits, false);
    dec = hr_time_now() - t0;
    hr_context_truncate(ctx, 0);
    free(logits);
    if (st != HR_OK) return st;
    *prefill_tps = best > 0 ? n_prefill / best : 0;
    *decode_tps = dec > 0 ? n_decode / dec : 0;
    return HR_OK;
}

int64_t hr_model_kv_bytes_per_token(const hr_model *m) {
    int64_t b = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) b += 2LL * m->cfg.n_head_kv[l] * m->cfg.head_dim * (int64_t)sizeof(float);
    return b;
}
