/* headroom — comparing a candidate model (pruned, converted) against its
 * base: what the surgery cost and what it bought.
 *
 *  - hr_compare_logits: over windows of the text, per-token KL(p_base ||
 *    p_cand) of the next-token distributions, top-1 agreement (same argmax)
 *    and the mean NLL of both models on the same tokens;
 *  - hr_compare_fdtm: FDTM (Deiseroth et al. 2023, "Divergent Token
 *    Metrics"): greedy continuations of prompts drawn from the text; the
 *    first position where the candidate's token differs from the base's,
 *    averaged (= gen_len when they never differ);
 *  - hr_passkey: retrieval accuracy on synthetic prompts: BOS, filler drawn
 *    from the text with a needle of `needle_len` random text tokens hidden
 *    at a random depth, then the needle's first half again (the cue); the
 *    model must continue with the rest of the needle greedily (an
 *    induction / copy task even a tiny model can partly solve);
 *  - hr_mc_*: multiple-choice tasks from JSONL lines {"context": str,
 *    "choices": [str...], "gold": int}; each choice is scored by the summed
 *    log-likelihood of its continuation tokens given the context, as
 *    lm-evaluation-harness does (continuation = tokens of context+choice
 *    after the context's tokens); acc uses the sum, acc_norm the sum divided
 *    by the choice's length in bytes;
 *  - hr_measure_speed: prefill and decode tokens per second;
 *  - hr_model_kv_bytes_per_token / hr_model_weight_bytes: sizes (f32 as
 *    held in memory).
 */
#ifndef HEADROOM_EVALUATE_H
#define HEADROOM_EVALUATE_H

#include "headroom/common.h"
#include "headroom/context.h"
#include "headroom/model.h"
#include "headroom/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t n_tokens;     /* scored positions */
    double kl;            /* mean KL(base || cand), nats */
    double kl_max;        /* largest per-token KL */
    double top1;          /* fraction of positions with the same argmax */
    double nll_base, nll_cand; /* mean NLL of the next token */
} hr_compare_result;

/* tokens: the text with BOS first. Windows of n_ctx tokens (the first is
 * tokens[0..n_ctx), later ones start with BOS = tokens[0] followed by the
 * next n_ctx-1 text tokens), at most max_windows (0 = all). Both contexts
 * must have n_ctx <= their n_ctx and the same vocabulary size. */
HR_API hr_status hr_compare_logits(hr_context *base, hr_context *cand, const int32_t *tokens, size_t n_tokens, int n_ctx,
                            int max_windows, hr_compare_result *out);

/* Mean first divergent token over n_prompts prompts of prompt_len tokens
 * (BOS + text tokens from random offsets, seeded) continued greedily for
 * gen_len tokens. */
HR_API hr_status hr_compare_fdtm(hr_context *base, hr_context *cand, const int32_t *tokens, size_t n_tokens, int n_prompts,
                          int prompt_len, int gen_len, uint64_t seed, double *fdtm);

typedef struct {
    int length;     /* prompt length in tokens */
    int trials;
    double exact;   /* fraction of trials with the whole needle rest right */
    double token;   /* fraction of needle tokens right */
} hr_passkey_result;

/* Passkey trials of total prompt length `length` (<= the context's n_ctx).
 * tokens: text tokens (BOS first is skipped if equal to bos). */
HR_API hr_status hr_passkey(hr_context *ctx, const int32_t *tokens, size_t n_tokens, int32_t bos, int length, int trials,
                     int needle_len, uint64_t seed, hr_passkey_result *out);

typedef struct {
    char *context;
    char **choices;
    int n_choices;
    int gold;
} hr_mc_item;

typedef struct {
    hr_mc_item *items;
    int n_items;
} hr_mc_task;

/* Parses JSONL text (blank lines skipped). A malformed line is
 * HR_ERR_FORMAT naming the line number. *out owned: hr_mc_task_free(). */
HR_API hr_status hr_mc_parse(const char *text, size_t len, hr_mc_task **out);
HR_API void hr_mc_task_free(hr_mc_task *t); /* NULL ok */

typedef struct {
    int n_items;
    double acc, acc_norm;
} hr_mc_result;

/* Scores every item with ctx's model; sequences longer than the context
 * keep their last n_ctx tokens. */
HR_API hr_status hr_mc_eval(hr_context *ctx, const hr_tokenizer *tok, const hr_mc_task *task, hr_mc_result *out);

/* Prefill of n_prefill tokens (best of `reps` runs from an empty cache) and
 * n_decode single-token steps after it; tokens/second of each. tokens must
 * hold n_prefill + n_decode ids. */
HR_API hr_status hr_measure_speed(hr_context *ctx, const int32_t *tokens, int n_prefill, int n_decode, int reps,
                           double *prefill_tps, double *decode_tps);

/* K and V bytes one token occupies in an f32 cache: sum over layers of
 * 2 * n_head_kv * head_dim * 4. */
HR_API int64_t hr_model_kv_bytes_per_token(const hr_model *m);
/* Bytes of the weights as f32. */
HR_API int64_t hr_model_weight_bytes(const hr_model *m);

#ifdef __cplusplus
}
#endif
#endif
