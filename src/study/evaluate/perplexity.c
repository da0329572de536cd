#include "headroom/evaluate.h"
#include "headroom/study.h"

#include "core/internal.h"
#include "core/progress.h"
#include "model/config.h"
#include "engine/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Tokens per hr_forward call: bounds the logits buffer independently of
 * n_ctx while keeping prefill batched. */
enum { PPL_PIECE = 512 };

hr_ppl_params hr_ppl_default_params(void) {
    hr_ppl_params p;
    memset(&p, 0, sizeof p);
    p.protocol = HR_PPL_SLIDING;
    p.bos = -1;
    return p;
}

const char *hr_ppl_protocol_name(hr_ppl_protocol proto) {
    switch (proto) {
    case HR_PPL_SLIDING: return "sliding";
    case HR_PPL_LLAMACPP: return "llama.cpp";
    }
    return "unknown";
}

typedef struct {
    hr_context *ctx;
    int n_vocab;
    float *logits;   /* (PPL_PIECE, n_vocab) */
    int32_t *input;  /* (n_ctx) window tokens as fed to the model */
    double sum_nll;  /* over scored tokens */
    double sum_nll2; /* of squared NLLs, for the standard error */
    int64_t n_scored;
    int64_t n_evaluated;
} ppl_acc;

/* Evaluates input[0..n) from an empty cache; the logits of each position i
 * in [score_from, score_to) are scored against targets[i]. */
static hr_status run_window(ppl_acc *a, int n, const int32_t *targets, int score_from, int score_to) {
    hr_status st = hr_context_truncate(a->ctx, 0);
    if (st != HR_OK) return st;
    for (int p0 = 0; p0 < n; p0 += PPL_PIECE) {
        int pn = n - p0 < PPL_PIECE ? n - p0 : PPL_PIECE;
        int lo = score_from > p0 ? score_from : p0;
        int hi = score_to < p0 + pn ? score_to : p0 + pn;
        bool scored = lo < hi;
        st = hr_forward(a->ctx, a->input + p0, pn, scored ? a->logits : NULL, scored);
        if (st != HR_OK) return st;
        a->n_evaluated += pn;
        for (int i = lo; i < hi; i++) {
            /* llama.cpp's arithmetic, so both protocols compare one to one with llama-perplexity */
            const float *row = a->logits + (size_t)(i - p0) * (size_t)a->n_vocab;
            double v = hr_token_nll_llamacpp(row, a->n_vocab, targets[i]);
            a->sum_nll += v;
            a->sum_nll2 += v * v;
            a->n_scored++;
        }
    }
    return HR_OK;
}

static hr_status report_progress(const hr_ppl_params *p, int64_t done, int64_t total) {
    if (p->progress && p->progress(done, total, p->progress_user_data))
        return hr_err(HR_ERR_ABORTED, "perplexity: stopped by the progress callback after %lld of %lld windows",
                      (long long)done, (long long)total);
    return hr_progress_update(done);
}

/* Windows start at k*stride and end at min(start + n_ctx, n); window k
 * scores the targets from the previous window's end. */
static int64_t sliding_n_windows(size_t n, size_t n_ctx, size_t stride) {
    int64_t k = 0;
    for (size_t begin = 0;; begin += stride) {
        k++;
        if (begin + n_ctx >= n) return k;
    }
}

static hr_status ppl_sliding(ppl_acc *a, const int32_t *tokens, size_t n, int n_ctx, int stride, const hr_ppl_params *p,
                             int *n_windows) {
    int64_t total = sliding_n_windows(n, (size_t)n_ctx, (size_t)stride);
    size_t prev_end = 1; /* token 0 has no context: never a target */
    int64_t k = 0;
    hr_status pst = hr_progress_phase("perplexity", "windows", total);
    if (pst != HR_OK) return pst;
    for (size_t begin = 0;; begin += (size_t)stride) {
        size_t end = begin + (size_t)n_ctx < n ? begin + (size_t)n_ctx : n;
        int len = (int)(end - begin);
        memcpy(a->input, tokens + begin, (size_t)len * sizeof *a->input);
        /* position i predicts token begin+i+1; targets from prev_end on */
        hr_status st = run_window(a, len, tokens + begin + 1, (int)(prev_end - 1 - begin), len - 1);
        if (st != HR_OK) {
            hr_err_prefix("perplexity: window %lld (tokens %zu..%zu)", (long long)k, begin, end);
            return st;
        }
        prev_end = end;
        k++;
        if ((st = report_progress(p, k, total)) != HR_OK) return st;
        if (end == n) break;
    }
    *n_windows = (int)k;
    return HR_OK;
}

static hr_status ppl_llamacpp(ppl_acc *a, const int32_t *tokens, size_t n, int n_ctx, const hr_ppl_params *p,
                              int *n_windows) {
    size_t n_chunk = n / (size_t)n_ctx;
    int first = n_ctx / 2;
    hr_status pst = hr_progress_phase("perplexity", "chunks", (int64_t)n_chunk);
    if (pst != HR_OK) return pst;
    for (size_t c = 0; c < n_chunk; c++) {
        const int32_t *chunk = tokens + c * (size_t)n_ctx;
        memcpy(a->input, chunk, (size_t)n_ctx * sizeof *a->input);
        if (p->bos >= 0) a->input[0] = p->bos;
        /* positions first .. n_ctx-2 predict the chunk's next token */
        hr_status st = run_window(a, n_ctx, chunk + 1, first, n_ctx - 1);
        if (st != HR_OK) {
            hr_err_prefix("perplexity: chunk %zu of %zu", c + 1, n_chunk);
            return st;
        }
        if ((st = report_progress(p, (int64_t)c + 1, (int64_t)n_chunk)) != HR_OK) return st;
    }
    *n_windows = (int)n_chunk;
    return HR_OK;
}

static hr_status check_tokens(const int32_t *tokens, size_t n, int n_vocab, int32_t bos) {
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return hr_err(HR_ERR_INVALID_ARG, "perplexity: token %d at index %zu is outside the vocabulary of %d",
                          (int)tokens[i], i, n_vocab);
    if (bos >= n_vocab)
        return hr_err(HR_ERR_INVALID_ARG, "perplexity: BOS id %d is outside the vocabulary of %d", (int)bos, n_vocab);
    return HR_OK;
}

/* Resolves n_ctx and stride and rejects what the protocol cannot score. */
static hr_status check_params(hr_context *ctx, const hr_model *m, size_t n, const hr_ppl_params *p, int *n_ctx,
                              int *stride) {
    const hr_config *cfg = hr_model_config(m);
    int cache = hr_context_n_ctx(ctx);
    int nc = p->n_ctx ? p->n_ctx : cache;
    if (nc > cfg->seq_len)
        return hr_err(HR_ERR_RANGE, "perplexity: n_ctx %d exceeds the model's context length %d", nc, cfg->seq_len);
    if (nc > cache)
        return hr_err(HR_ERR_RANGE, "perplexity: n_ctx %d exceeds the context's cache of %d tokens", nc, cache);
    if (p->protocol == HR_PPL_SLIDING) {
        if (nc < 2) return hr_err(HR_ERR_RANGE, "perplexity: n_ctx %d must be at least 2", nc);
        int s = p->stride ? p->stride : nc / 2;
        if (s < 1 || s > nc) return hr_err(HR_ERR_RANGE, "perplexity: stride %d must be between 1 and n_ctx %d", s, nc);
        if (n < 2) return hr_err(HR_ERR_INVALID_ARG, "perplexity: need at least 2 tokens, got %zu", n);
        if (s == nc && n > (size_t)nc)
            return hr_err(HR_ERR_INVALID_ARG,
                          "perplexity: stride %d equals n_ctx, which leaves each later window's first token "
                          "without context; use a stride below n_ctx",
                          s);
        *stride = s;
    } else if (p->protocol == HR_PPL_LLAMACPP) {
        if (nc < 3)
            return hr_err(HR_ERR_RANGE, "perplexity: n_ctx %d must be at least 3 for the llama.cpp protocol", nc);
        if (n < 2 * (size_t)nc)
            return hr_err(HR_ERR_INVALID_ARG,
                          "perplexity: the llama.cpp protocol needs at least 2*n_ctx = %zu tokens; the text has %zu",
                          2 * (size_t)nc, n);
        *stride = nc;
    } else {
        return hr_err(HR_ERR_INVALID_ARG, "perplexity: unknown protocol %d", (int)p->protocol);
    }
    *n_ctx = nc;
    return HR_OK;
}

static void finish(const ppl_acc *a, int n_windows, double seconds, hr_ppl_result *out) {
    double n = (double)a->n_scored;
    double mean = a->sum_nll / n;
    double var = a->sum_nll2 / n - mean * mean;
    double se = a->n_scored > 1 && var > 0 ? sqrt(var / (n - 1)) : 0.0;
    memset(out, 0, sizeof *out);
    out->n_scored = a->n_scored;
    out->n_evaluated = a->n_evaluated;
    out->n_windows = n_windows;
    out->mean_nll = mean;
    out->ppl = exp(mean);
    out->ppl_stderr = out->ppl * se;
    out->seconds = seconds;
    out->tokens_per_s = seconds > 0 ? (double)a->n_evaluated / seconds : 0.0;
}

hr_status hr_perplexity(hr_context *ctx, const int32_t *tokens, size_t n_tokens, const hr_ppl_params *p,
                        hr_ppl_result *out) {
    if (!ctx || !out || (!tokens && n_tokens))
        return hr_err(HR_ERR_INVALID_ARG, "perplexity: NULL context, tokens or result");
    const hr_model *m = hr_context_model(ctx);
    hr_ppl_params d = p ? *p : hr_ppl_default_params();
    int n_ctx = 0, stride = 0;
    hr_status st = check_params(ctx, m, n_tokens, &d, &n_ctx, &stride);
    if (st != HR_OK) return st;
    ppl_acc a = {.ctx = ctx, .n_vocab = hr_model_config(m)->vocab_size};
    if ((st = check_tokens(tokens, n_tokens, a.n_vocab, d.protocol == HR_PPL_LLAMACPP ? d.bos : -1)) != HR_OK)
        return st;
    if (d.heads && (st = hr_head_mask_apply(d.heads, ctx, d.calib_tokens ? d.calib_tokens : tokens,
                                            d.calib_tokens ? d.n_calib_tokens : n_tokens)) != HR_OK)
        return st;
    size_t nbytes;
    if (!hr_mul_size((size_t)PPL_PIECE * sizeof(float), (size_t)a.n_vocab, &nbytes))
        return hr_err(HR_ERR_NOMEM, "perplexity: logits buffer size overflows");
    a.logits = malloc(nbytes);
    a.input = malloc((size_t)n_ctx * sizeof *a.input);
    if (!a.logits || !a.input) {
        free(a.logits);
        free(a.input);
        return hr_err(HR_ERR_NOMEM, "perplexity: out of memory for a (%d, %d) logits buffer", PPL_PIECE, a.n_vocab);
    }
    double t0 = hr_time_now();
    int n_windows = 0;
    hr_progress_run run;
    hr_progress_enter(&run, d.progress_phase, d.progress_user_data, 1);
    if (d.protocol == HR_PPL_SLIDING) st = ppl_sliding(&a, tokens, n_tokens, n_ctx, stride, &d, &n_windows);
    else st = ppl_llamacpp(&a, tokens, n_tokens, n_ctx, &d, &n_windows);
    hr_progress_leave(&run);
    double seconds = hr_time_now() - t0;
    free(a.logits);
    free(a.input);
    if (st != HR_OK) return st;
    finish(&a, n_windows, seconds, out);
    return HR_OK;
}
