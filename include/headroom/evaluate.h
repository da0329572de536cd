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
 *    held in memory);
 *  - hr_perplexity: perplexity of a text by two protocols (below).
 */
#ifndef HEADROOM_EVALUATE_H
#define HEADROOM_EVALUATE_H

#include "headroom/common.h"
#include "headroom/context.h"
#include "headroom/kvcache.h"
#include "headroom/model.h"
#include "headroom/study.h"
#include "headroom/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t n_tokens;          /* scored positions */
    double kl;                 /* mean KL(base || cand), nats */
    double kl_max;             /* largest per-token KL */
    double top1;               /* fraction of positions with the same argmax */
    double nll_base, nll_cand; /* mean NLL of the next token */
    int n_windows;             /* windows compared */
} hr_compare_result;

/* tokens: the text with BOS first. Windows of n_ctx tokens (the first is
 * tokens[0..n_ctx), later ones start with BOS = tokens[0] followed by the
 * next n_ctx-1 text tokens), at most max_windows (0 = all). Both contexts
 * must have n_ctx <= their n_ctx and the same vocabulary size. */
HR_API hr_status hr_compare_logits(hr_context *base, hr_context *cand, const int32_t *tokens, size_t n_tokens,
                                   int n_ctx, int max_windows, hr_compare_result *out);

/* Mean first divergent token over n_prompts prompts of prompt_len tokens
 * (BOS + text tokens from random offsets, seeded) continued greedily for
 * gen_len tokens. */
HR_API hr_status hr_compare_fdtm(hr_context *base, hr_context *cand, const int32_t *tokens, size_t n_tokens,
                                 int n_prompts, int prompt_len, int gen_len, uint64_t seed, double *fdtm);

typedef struct {
    int length; /* prompt length in tokens */
    int trials;
    double exact; /* fraction of trials with the whole needle rest right */
    double token; /* fraction of needle tokens right */
} hr_passkey_result;

/* Passkey trials of total prompt length `length` (<= the context's n_ctx).
 * tokens: text tokens (BOS first is skipped if equal to bos). */
HR_API hr_status hr_passkey(hr_context *ctx, const int32_t *tokens, size_t n_tokens, int32_t bos, int length,
                            int trials, int needle_len, uint64_t seed, hr_passkey_result *out);

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
/* Weight bytes: hr_model_weight_bytes (model.h). */

/* ---- the natural retrieval task ----
 *
 * Multiple-choice items from a text that a small model can solve only by
 * looking back: a name (a capitalised word of 3+ letters that the text
 * also uses in mid-sentence, not a sentence-opening word) recurs at least
 * min_gap characters after an earlier occurrence; the item's context is
 * the text from the start of the paragraph holding the earlier occurrence
 * up to the recurrence (at most max_ctx tokens with BOS), the choices are
 * " <name>" and 3 other names of the text absent from the context (gold
 * position drawn at random). Items are a seeded choice of max_items among
 * all recurrences. Score them with hr_mc_eval (chance: 0.25). */
typedef struct {
    int max_items; /* default 200 */
    int min_gap;   /* characters between the occurrences (default 80) */
    int max_ctx;   /* tokens of a context incl. BOS (default 192) */
    uint64_t seed;
} hr_recall_params;

HR_API hr_recall_params hr_recall_default_params(void);
/* No item found is HR_ERR_RANGE. *out owned: hr_mc_task_free(). */
HR_API hr_status hr_recall_task_build(const hr_tokenizer *tok, const char *text, size_t len, const hr_recall_params *p,
                                      hr_mc_task **out);

/* ---- A corpus of documents ----
 *
 * A folder of .txt files (one document each, in byte order of their names;
 * other files and names starting with '.' are ignored) or a .jsonl file
 * (one object per non-blank line with a string "text"). A folder without a
 * .txt file, a JSONL file without a line, a line that is not an object
 * with a string "text" (its line number named), another kind of path:
 * errors, before anything is returned. */
typedef struct hr_corpus hr_corpus;

/* *out owned by caller: hr_corpus_free(). */
HR_API hr_status hr_corpus_read(const char *path, hr_corpus **out);
HR_API void hr_corpus_free(hr_corpus *c); /* NULL ok */
HR_API int hr_corpus_n_docs(const hr_corpus *c);
/* Document i (NUL-terminated; *len its bytes, may be NULL); NULL out of range. Borrowed. */
HR_API const char *hr_corpus_doc(const hr_corpus *c, int i, size_t *len);
/* "name.txt" or "line N". Borrowed. */
HR_API const char *hr_corpus_doc_name(const hr_corpus *c, int i);
/* SHA-256 (hex) of the documents' SHA-256 hex strings, each followed by a newline. Borrowed. */
HR_API const char *hr_corpus_sha256(const hr_corpus *c);

/* ---- AttentionInfluence (Hua et al. 2025) ----
 *
 * Per document of a text: the mean NLL of its tokens (BOS first, tokens 1..n-1
 * scored, truncated to max_tokens) with the model as it is and with heads
 * masked (typically the retrieval / induction heads the head lab finds);
 * influence = (loss_masked - loss_base) / loss_base: how much the document
 * needs those heads (the paper selects pretraining data by it).
 * Documents are those of a corpus (hr_corpus_read), or of a text separated
 * by blank lines or by lines that are exactly `split`; empty documents are
 * skipped and not numbered. Results go to a
 * callback, one document at a time, so a caller can write them as it goes
 * and resume: documents before first_doc are skipped (their index still
 * counts). The JSONL a caller writes (hr_influence_header_json, then one
 * hr_influence_doc_json line per document) is checked before resuming by
 * hr_influence_resume. */
typedef struct {
    int index;                     /* document number (0-based, text order) */
    char sha256[65];               /* of the document's bytes */
    int n_tokens;                  /* tokens run, BOS included */
    double loss_base, loss_masked; /* mean NLL, nats per scored token */
    double influence;              /* (loss_masked - loss_base) / loss_base */
} hr_influence_doc;

typedef int (*hr_influence_fn)(const hr_influence_doc *doc, void *user_data); /* non-zero aborts */

typedef struct {
    const char *text; /* the documents (borrowed) */
    size_t text_len;
    const char *split;           /* separator line; NULL = blank lines (default) */
    const hr_head_mask *heads;   /* the heads masked (required; borrowed) */
    const int32_t *calib_tokens; /* BOS-first text for mean-ablated heads' means; NULL = the whole text */
    size_t n_calib_tokens;
    int max_tokens; /* per document incl. BOS; 0 = the model's context (default 0) */
    int first_doc;  /* resume: start at this document (default 0) */
    int max_docs;   /* stop after this many documents scored; 0 = all */
    int n_threads;
    hr_influence_fn on_doc; /* required */
    void *user_data;
    hr_progress_fn progress; /* (documents done, documents in the text) */
    void *progress_user_data;
    const hr_corpus *corpus; /* the documents instead of text / split (borrowed); mean-ablated heads
                                    then need calib_tokens. NULL = text (default) */
} hr_influence_params;

HR_API hr_influence_params hr_influence_default_params(void);
/* Scores the documents; *n_docs (may be NULL) receives the number of
 * documents in the text. A text without a document of 2+ tokens, a missing
 * mask or callback is an error before any work. */
HR_API hr_status hr_influence_run(const hr_model *m, const hr_tokenizer *tok, const hr_influence_params *p,
                                  int *n_docs);
/* The JSONL file: a first line {"format": "headroom.influence", "format_version": 1,
 * "model": path, "text": path, "text_sha256" (with a corpus: "corpus": path,
 * "corpus_sha256", hr_corpus_sha256), "heads": mask description, "split",
 * "max_tokens"} and one line per document {"doc", "sha256", "tokens",
 * "loss_base", "loss_masked", "influence"}. *out owned: hr_free(). */
HR_API hr_status hr_influence_header_json(const char *model_path, const char *text_path, const hr_influence_params *p,
                                          char **out);
HR_API hr_status hr_influence_doc_json(const hr_influence_doc *d, char **out);
/* Checks a file written before (text, len) against the header this run
 * would write and the documents of p's text (each line's index and
 * sha256, in order): *n_done receives the documents it holds, *keep the
 * bytes to keep (whole lines; a torn last line is dropped). A header of
 * another run, a document that does not match: HR_ERR_INVALID_ARG saying
 * which. */
HR_API hr_status hr_influence_resume(const char *text, size_t len, const char *header, const hr_influence_params *p,
                                     int *n_done, size_t *keep);

/* ---- A whole evaluation run ----
 *
 * What `headroom eval` does, as one call: both models on the same tokens
 * (hr_compare_logits over windows of n_ctx tokens, hr_compare_fdtm),
 * optionally passkey retrieval at 64/128/256/512 tokens (those <= n_ctx),
 * the natural retrieval task (name recall from the text) and
 * multiple-choice tasks for both, sizes, and the measured speed of both.
 * The candidate may be the base itself with heads masked (cand_heads) or a
 * KV plan (cand_kv_plan, cand_kv_random). The result names what was compared: the paths given and the
 * SHA-256 of each file (of a folder: its files, see core), the text's token
 * count and the windows scored.
 *
 * Windows: `windows` > 0 scores that many windows; windows == 0 scores
 * max(1, max_tokens / n_ctx) windows, or the whole text when max_tokens is
 * 0. Default: HR_EVAL_TOKENS tokens (headroom/study.h). */
typedef struct {
    const char *text; /* evaluation text (borrowed), tokenized with BOS */
    size_t text_len;
    int n_ctx;                      /* window length; 0 = hr_calib_window(the smaller seq_len) */
    int windows;                    /* windows to score; 0 = from max_tokens (default 0) */
    int64_t max_tokens;             /* token budget when windows == 0; 0 = the whole text (default HR_EVAL_TOKENS) */
    int fdtm_prompts;               /* default 8 */
    int fdtm_prompt_len;            /* tokens per FDTM prompt incl. BOS (default 16) */
    int fdtm_gen;                   /* FDTM continuation (default 32) */
    bool passkey;                   /* passkey retrieval (default false) */
    int passkey_trials;             /* prompts per length (default 20) */
    const hr_mc_task *tasks;        /* multiple-choice tasks; NULL = none (borrowed) */
    bool speed;                     /* measure prefill / decode speed (default true) */
    uint64_t seed;                  /* prompts and passkeys (default 0) */
    int n_threads;                  /* 0 = all cores */
    bool bf16_dot;                  /* both models' contexts multiply bf16 weights by the bf16 dot
                                  (hr_context_params.bf16_dot; default false) */
    bool int8_dot;                  /* both models' contexts multiply Q8_0 / int8 weights by the int8 dot
                                  (hr_context_params.int8_dot; default false) */
    const hr_kv_plan *cand_kv_plan; /* the candidate's KV-cache plan; NULL = full cache (borrowed) */
    double cand_kv_random;          /* >= 0: the candidate gets hr_kv_plan_random(fraction, streaming sink 4
                                  window 64, seed): the random baseline of a --kv-from plan keeping that
                                  fraction of KV heads full (default -1: none; not with cand_kv_plan) */
    const hr_head_mask *cand_heads; /* heads masked in the candidate (study.h), NULL = none (borrowed);
                                  mean-ablated heads take their means from calib_tokens, else the text */
    const int32_t *calib_tokens;    /* BOS-first tokens for those means; NULL = the evaluation text */
    size_t n_calib_tokens;
    bool recall;      /* the natural retrieval task (hr_recall_task_build on the text) for both */
    int recall_items; /* its items (default 200) */
    const char *base_path, *cand_path, *text_path, *tasks_path; /* named and hashed in the result; may be NULL */
    hr_progress_phase_fn progress_phase; /* phases: hashing, KL / top-1 windows, FDTM prompts, passkey trials per
                                            length and model, tasks per model, speed (common.h); NULL = the
                                            thread's callback */
    void *progress_user_data;
} hr_eval_params;

HR_API hr_eval_params hr_eval_default_params(void);

typedef struct {
    const char *path; /* as given ("" when none); owned by the result */
    char sha256[65];  /* lower-case hex digest of the file ("" when no path) */
} hr_eval_source;

enum { HR_EVAL_PASSKEY_LENGTHS = 4 };

typedef struct {
    hr_eval_source base, cand, text, tasks;
    int n_ctx;                 /* window length */
    int64_t text_tokens;       /* tokens of the text (with BOS) */
    int64_t max_tokens;        /* the token budget applied (0 = none) */
    int windows_asked;         /* windows asked for (0 = from the budget, or the whole text) */
    hr_compare_result cmp;     /* KL, top-1, NLL of both; cmp.n_tokens scored in cmp.n_windows windows */
    double ppl_base, ppl_cand; /* exp(mean NLL) */
    double fdtm;
    int fdtm_prompts, fdtm_gen;
    int n_passkey;                    /* lengths run (those <= n_ctx) */
    const int *passkey_length;        /* (n_passkey) prompt lengths; borrowed from the result */
    const hr_passkey_result *passkey; /* (n_passkey, 2): [2 k] base, [2 k + 1] candidate; borrowed */
    bool has_tasks;
    hr_mc_result tasks_result[2];
    bool has_recall;
    hr_mc_result recall_result[2]; /* the natural retrieval task: acc (chance 0.25), acc_norm */
    int64_t params[2], weight_bytes[2], kv_bytes_per_token[2], kv_bytes_allocated[2];
    bool has_speed;
    double prefill_tps[2], decode_tps[2];
    const char *warning; /* "" or what the numbers call for (perplexity > 10x the base's); borrowed */
    double kv_random;    /* the candidate's random KV plan fraction, -1 when none */
} hr_eval_summary;

typedef struct hr_eval_result hr_eval_result;

/* Evaluates cand against base (tok tokenizes the text and the tasks). The
 * models must share the vocabulary; n_ctx must fit both and hold an FDTM
 * prompt plus its continuation; the text must give enough tokens for the
 * speed measurement (n_ctx/2 + n_ctx/4) when asked. Every such error comes
 * before any work. *out owned by caller: hr_eval_result_free(). */
HR_API hr_status hr_eval_run(const hr_model *base, const hr_model *cand, const hr_tokenizer *tok,
                             const hr_eval_params *p, hr_eval_result **out);
HR_API void hr_eval_result_free(hr_eval_result *r);                            /* NULL ok */
HR_API const hr_eval_summary *hr_eval_result_summary(const hr_eval_result *r); /* borrowed */
/* eval.json ("format": "headroom.eval", "format_version": 1). *out owned
 * by caller: hr_free(). */
HR_API hr_status hr_eval_result_json(const hr_eval_result *r, char **out);

/* ---- Perplexity ----
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
typedef enum { HR_PPL_SLIDING = 0, HR_PPL_LLAMACPP = 1 } hr_ppl_protocol;

typedef struct {
    int n_ctx;                           /* window / chunk length; 0 = the context's n_ctx (default 0) */
    int stride;                          /* sliding only; 0 = n_ctx / 2 (default 0) */
    hr_ppl_protocol protocol;            /* default HR_PPL_SLIDING */
    int32_t bos;                         /* llama.cpp only: id written over each chunk's first
                                 token; < 0 = keep it (default -1) */
    hr_progress_fn progress;             /* called after each window/chunk; NULL = none */
    void *progress_user_data;            /* of both callbacks */
    hr_progress_phase_fn progress_phase; /* phase "perplexity", items = windows / chunks (common.h);
                                            NULL = the thread's callback */
    const hr_head_mask *heads;           /* heads masked for the run (study.h; set on ctx with hr_head_mask_apply and
                                  left there), NULL = the context as it is (borrowed) */
    const int32_t *calib_tokens;         /* BOS-first text for mean-ablated heads' means; NULL = the tokens scored */
    size_t n_calib_tokens;
} hr_ppl_params;

HR_API hr_ppl_params hr_ppl_default_params(void);

typedef struct {
    int64_t n_scored;    /* tokens whose NLL was summed */
    int64_t n_evaluated; /* tokens run through the model (windows overlap) */
    int n_windows;       /* windows (sliding) or chunks (llama.cpp) */
    double mean_nll;     /* nats per scored token */
    double ppl;          /* exp(mean_nll) */
    double ppl_stderr;   /* ppl * stderr(NLL), see above */
    double seconds;      /* wall time of the evaluation */
    double tokens_per_s; /* n_evaluated / seconds */
} hr_ppl_result;

/* Perplexity of tokens[0..n_tokens) with ctx (its model gives the
 * vocabulary size and context limit). The cache is cleared and left
 * holding the last window. n_ctx beyond the model's seq_len or beyond
 * hr_context_n_ctx(ctx) is HR_ERR_RANGE; too few tokens or a bad stride is HR_ERR_INVALID_ARG; a
 * progress callback returning non-zero gives HR_ERR_ABORTED. *out is
 * written only on success. */
HR_API hr_status hr_perplexity(hr_context *ctx, const int32_t *tokens, size_t n_tokens, const hr_ppl_params *p,
                               hr_ppl_result *out);

HR_API const char *hr_ppl_protocol_name(hr_ppl_protocol proto); /* "sliding", "llama.cpp" */

#ifdef __cplusplus
}
#endif
#endif
