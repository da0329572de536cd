/* headroom — perplexity evaluation.
 *
 * The negative log-likelihood of a token is -log softmax(logits)[token],
 * computed from the logits of the position before it; perplexity is
 * exp(mean NLL) over the scored tokens. Two protocols decide which tokens
 * are scored and with what context:
 *
 * HR_PPL_SLIDING (Hugging Face "perplexity of fixed-length models"):
 *   The caller's token array is the whole text, normally starting with BOS.
 *   Windows of at most n_ctx tokens start at 0, stride, 2*stride, ... (the
 *   last one ends at the text's end); the cache is cleared before each. The
 *   first window scores all of its positions (tokens 1 .. end-1), every later
 *   window only the tokens that no earlier window scored, each with all the
 *   window's earlier tokens as context. So every token after the first is
 *   scored exactly once: n_scored = n_tokens - 1. Requires 1 <= stride <
 *   n_ctx, except that stride == n_ctx is accepted when the text fits in a
 *   single window (a token at a window's start would have no context).
 *   Default stride: n_ctx / 2.
 *
 * HR_PPL_LLAMACPP (llama.cpp's llama-perplexity, default mode):
 *   The caller's array is tokenize(text) with BOS added, as llama.cpp's
 *   common_tokenize(..., add_special = true) gives. n_chunk = n_tokens /
 *   n_ctx (integer division; leftover tokens are ignored) and at least
 *   2 * n_ctx tokens are required. For chunk c the tokens
 *   [c*n_ctx, (c+1)*n_ctx) are evaluated from an empty cache at positions
 *   0 .. n_ctx-1, with the chunk's first token replaced by `bos` (when
 *   bos >= 0; llama.cpp does so whenever the vocabulary adds BOS). Only the
 *   logits of positions first = n_ctx/2 .. n_ctx-2 are scored, each
 *   predicting the token after it: n_ctx - 1 - first tokens per chunk.
 *   log-softmax is computed like llama.cpp: float logits, expf of
 *   (logit - max), summed in double. (llama.cpp's -f option also drops one
 *   trailing '\n' from the file before tokenizing; `headroom ppl` does too.)
 *
 * Uncertainty (both protocols, as llama.cpp reports "PPL = x +/- e"): with
 * m = mean NLL and v = mean(NLL^2) - m^2 over the N scored tokens,
 * stderr(NLL) = sqrt(v / (N - 1)) and by the delta method
 * ppl_stderr = ppl * stderr(NLL). It is 0 when N < 2 or v <= 0.
 *
 * Windows/chunks are fed to hr_forward in pieces of at most 512 tokens so the
 * logits buffer stays (512, vocab) floats whatever n_ctx is.
 */
#ifndef HEADROOM_EVAL_H
#define HEADROOM_EVAL_H

#include "headroom/common.h"
#include "headroom/context.h"
#include "headroom/model.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    HR_PPL_SLIDING = 0,
    HR_PPL_LLAMACPP = 1
} hr_ppl_protocol;

typedef struct {
    int n_ctx;                /* window / chunk length; 0 = the context's n_ctx (default 0) */
    int stride;               /* sliding only; 0 = n_ctx / 2 (default 0) */
    hr_ppl_protocol protocol; /* default HR_PPL_SLIDING */
    int32_t bos;              /* llama.cpp only: id written over each chunk's first
                                 token; < 0 = keep it (default -1) */
    hr_progress_fn progress;  /* called after each window/chunk; NULL = none */
    void *progress_user_data;
} hr_ppl_params;

HR_API hr_ppl_params hr_ppl_default_params(void);

typedef struct {
    int64_t n_scored;     /* tokens whose NLL was summed */
    int64_t n_evaluated;  /* tokens run through the model (windows overlap) */
    int n_windows;        /* windows (sliding) or chunks (llama.cpp) */
    double mean_nll;      /* nats per scored token */
    double ppl;           /* exp(mean_nll) */
    double ppl_stderr;    /* ppl * stderr(NLL), see above */
    double seconds;       /* wall time of the evaluation */
    double tokens_per_s;  /* n_evaluated / seconds */
} hr_ppl_result;

/* Perplexity of tokens[0..n_tokens) with ctx, a context of model m (m gives
 * the vocabulary size and context limit). The cache is cleared and left
 * holding the last window. n_ctx beyond the model's seq_len or beyond
 * hr_context_n_ctx(ctx) is HR_ERR_RANGE; too few tokens or a bad stride is HR_ERR_INVALID_ARG; a
 * progress callback returning non-zero gives HR_ERR_ABORTED. *out is
 * written only on success. */
HR_API hr_status hr_perplexity(hr_context *ctx, const hr_model *m, const int32_t *tokens, size_t n_tokens,
                        const hr_ppl_params *p, hr_ppl_result *out);

HR_API const char *hr_ppl_protocol_name(hr_ppl_protocol proto); /* "sliding", "llama.cpp" */

#ifdef __cplusplus
}
#endif
#endif
