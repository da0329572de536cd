/* headroom — circuits: how the model computes an answer, not only which
 * heads matter. Activation patching, path patching, attention knockout,
 * direct logit attribution and the logit lens over prompt pairs (the
 * methods TransformerLens users run in Python), exact and on the CPU.
 *
 * Prompt pairs. A pair is a clean prompt, a corrupt prompt of the same
 * token length, an answer and a wrong answer (JSONL, one object a line):
 *   {"clean": TEXT, "corrupt": TEXT, "answer": TEXT, "wrong": TEXT}
 * or with token ids, "clean_ids": [int...], "corrupt_ids", "answer_id",
 * "wrong_id" (each field as text or as ids, mixed freely). Texts are
 * tokenized with BOS when the tokenizer has one. An answer is scored by
 * its first token: the tokens of prompt + answer after the prompt's tokens
 * (lm-evaluation-harness's continuation rule), or the answer's own tokens
 * when the prompt's tokens are not a prefix. An answer of several tokens
 * is an error with answers = HR_ANSWER_SINGLE_TOKEN (naming the line and
 * its token count); by default (HR_ANSWER_FIRST_TOKEN) its first token
 * stands for it. Clean and corrupt of different lengths, an empty prompt,
 * answer and wrong with the same (first) token, ids outside the
 * vocabulary, or text fields without a tokenizer are HR_ERR_FORMAT naming
 * the line.
 *
 * Metrics, at the last position of a prompt, from its logits z:
 *   logit-diff  z[answer] - z[wrong]
 *   prob        softmax(z)[answer]
 *   kl          -KL(softmax(z_clean) || softmax(z)) (0 on the clean run)
 * Normalised value of an intervention over the pairs:
 *   (mean m(intervened) - mean m(corrupt)) / (mean m(clean) - mean m(corrupt))
 * so 0 = the corrupt run and 1 = the clean run, whatever the direction.
 *
 * Activation patching (hr_patch_run, `what`). Denoising (default) runs the
 * corrupt prompt with one component's activation taken from the clean run;
 * noising runs the clean prompt with it taken from the corrupt run.
 * Components: every head's output (before its gate and W_o; all positions
 * at once: a layers x heads matrix), every head at every position, the
 * attention sublayer's output, the MLP's output and the residual stream
 * entering each layer, each at every position (layers x positions).
 * Positions are aligned at the end of the prompt: column n_positions-1 is
 * the last token of every pair, and a pair of n tokens fills the last n
 * columns (a column is normalised over the pairs that reach it). Runs
 * reuse each pair's clean and corrupt runs: only the layers from the
 * patched one on are recomputed (hr_forward_from), and a patch at position
 * t recomputes only positions >= t.
 *
 * Path patching (`path`, "SENDERS -> RECEIVERS"), as in Wang et al. 2022
 * (IOI, Sec. 3.1 and App. B) and Jin et al. 2024 (PH3). SENDERS: "*" (each
 * head on its own: a layers x heads matrix) or a list of heads "L.H"
 * patched together (one value). RECEIVERS, patched together: "logits", or
 * a list of "L.Hq", "L.Hk", "L.Hv" (the query, key or value input of head
 * L.H; "L.H" = all three; in GQA models a key or value receiver is the KV
 * head that L.H reads, shared by its group) and "L.mlp" (the input of
 * layer L's MLP). Definition, for base run b (corrupt when denoising) and
 * source run s (clean):
 *   1. rerun b from the first sender's layer with the senders' outputs set
 *      to their values in s and every other head's output — and every MLP
 *      output unless path_mlps_recomputed — frozen at its value in b;
 *      record what each receiver reads: its query / key / value (computed
 *      from the residual entering its layer), an MLP receiver's output
 *      (computed from its input, then frozen for later layers), or, for
 *      "logits", the logits themselves (the result);
 *   2. rerun b with the receivers' queries / keys / values / MLP outputs
 *      replaced by the recorded ones and everything else recomputed.
 * The sender's effect thus reaches the metric only through the receivers.
 * A sender at or after a head receiver's layer (after an MLP receiver's)
 * has no path: NaN in the matrix, an error in a list; "logits" cannot be
 * mixed with other receivers.
 *
 * Attention knockout (`knockout`, "HEADS : QUERIES -> KEYS"): the clean
 * prompt is run with the heads' attention from the query positions to the
 * key positions blocked (hr_context_set_attn_mask), normalised like
 * patching (1 = no effect, 0 = as bad as the corrupt prompt). HEADS: "*"
 * (each head alone: a matrix) or a list "L.H" (together); positions: "*",
 * or a list of integers and ranges "a..b", negative counting from the end
 * (-1 = the last token).
 *
 * Direct logit attribution (dla). On the clean prompt, the final residual
 * at the last position is a sum of parts: the embedding (token + learned
 * position), each head's output through its slice of W_o (with its gate /
 * mean applied), each attention layer's output bias, each MLP's output.
 * With the final norm's scale s frozen at its value on the full residual
 * (1/sqrt(mean(x^2) + eps) for RMSNorm, 1/sqrt(var(x) + eps) for
 * LayerNorm, whose centring is linear too), the norm is linear, and part v
 * contributes s * sum_i g_i (v_i - [LayerNorm: mean(v)]) (W_U[answer]_i -
 * W_U[wrong]_i) to the logit difference; the LayerNorm bias contributes
 * b . (W_U[answer] - W_U[wrong]). The parts sum to the logit difference
 * exactly (up to float rounding). Means over pairs.
 *
 * Logit lens (lens): the residual after each block at the last position,
 * through the final norm (its own scale) and the classifier: the answer's
 * logit difference, probability and rank (1 = top), averaged over pairs,
 * and the top tokens per layer of the first pairs.
 *
 * Every run uses the params' head mask (the model as studied, e.g. with
 * heads masked or mean-ablated: study.h), DLA included.
 */
#ifndef HEADROOM_CIRCUITS_H
#define HEADROOM_CIRCUITS_H

#include "headroom/common.h"
#include "headroom/evaluate.h"
#include "headroom/model.h"
#include "headroom/study.h"
#include "headroom/tokenizer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- prompt pairs ---- */

typedef struct hr_pairs hr_pairs;

typedef enum {
    HR_ANSWER_FIRST_TOKEN = 0, /* an answer of several tokens is scored by its first (default) */
    HR_ANSWER_SINGLE_TOKEN = 1 /* an answer of several tokens is an error */
} hr_answer_rule;

typedef struct {
    hr_answer_rule answers;
} hr_pairs_params;

HR_API hr_pairs_params hr_pairs_default_params(void);

/* Parses JSONL (blank lines skipped); tok may be NULL when every field
 * uses ids. No pair at all is HR_ERR_FORMAT. *out owned: hr_pairs_free(). */
HR_API hr_status hr_pairs_parse(const char *text, size_t len, const hr_tokenizer *tok, const hr_pairs_params *p,
                                hr_pairs **out);
/* An empty set, and appending a pair by ids (copied; n >= 1 tokens each). */
HR_API hr_status hr_pairs_new(hr_pairs **out);
HR_API hr_status hr_pairs_add(hr_pairs *ps, const int32_t *clean, const int32_t *corrupt, int n, int32_t answer,
                              int32_t wrong);
HR_API void hr_pairs_free(hr_pairs *ps); /* NULL ok */
HR_API int hr_pairs_count(const hr_pairs *ps);

typedef struct {
    const int32_t *clean, *corrupt; /* (n_tokens) each, borrowed */
    int n_tokens;
    int32_t answer, wrong;           /* the tokens scored */
    int answer_tokens, wrong_tokens; /* tokens the answers have (1 for ids) */
    int line;                        /* JSONL line (0 when added by ids) */
} hr_pair;

HR_API hr_status hr_pairs_get(const hr_pairs *ps, int i, hr_pair *out);
/* JSONL of the pairs by ids ("clean_ids", "corrupt_ids", "answer_id",
 * "wrong_id"), readable by hr_pairs_parse. *out owned: hr_free(). */
HR_API hr_status hr_pairs_to_jsonl(const hr_pairs *ps, char **out);

/* Name-recall pairs from a text (the natural retrieval task's items, see
 * hr_recall_task_build): clean = the text from a paragraph start up to a
 * name's recurrence, corrupt = the same with every occurrence of that name
 * replaced by another name of the text (one that gives the same token
 * count and a different first token), answer = the name, wrong = the other
 * name. At most max_pairs (seeded choice among the recall task's
 * recurrences, hr_recall_task_build in evaluate.h). No pair found is
 * HR_ERR_RANGE. */
HR_API hr_status hr_pairs_name_recall(const hr_tokenizer *tok, const char *text, size_t len, int max_ctx, int max_pairs,
                                      uint64_t seed, hr_pairs **out);

/* "Correct letter" pairs from multiple-choice items (as eval --tasks reads
 * them): the prompt lists the choices as "A. ...", "B. ..." after the
 * context and ends with "Answer:"; answer = " <gold letter>"; the corrupt
 * prompt swaps the gold choice with the next one (so the letter moves),
 * wrong = that other letter. Items whose prompts differ in length, or are
 * longer than max_ctx tokens, are skipped. No pair is HR_ERR_RANGE. */
HR_API hr_status hr_pairs_from_choices(const hr_tokenizer *tok, const hr_mc_task *task, int max_ctx, hr_pairs **out);

/* Knowledge-conflict pairs from a text (PH3, Jin et al. 2024), with the
 * model's own memory. For sentences of the text (split at . ! ? and
 * newlines, visited in a seeded order, one pair per sentence at most):
 *   memory prompt P = the sentence up to a word boundary (>= 3 tokens after
 *     BOS) where the model's top-1 next token M, run on P alone (BOS + P),
 *     starts a word (a space, then a letter) and has p(M | P) >= min_prob:
 *     M is the memory answer;
 *   context answer X = one of the 8 next most probable tokens after M that
 *     starts a word (seeded choice), so p(X | P) < p(M | P);
 *   clean   = P + X + ". " + P   (the context states X, then asks again),
 *   corrupt = P + M + ". " + P   (the context agrees with memory),
 *   answer = X (context), wrong = M (memory).
 * Pairs whose clean and corrupt prompts tokenize to different lengths, or
 * exceed min(the model's context, 256) tokens, are skipped. At most
 * max_pairs; m is run as loaded (no head mask). No pair is HR_ERR_RANGE.
 * A pairs file written by hand follows
 * the same convention (answer = context answer, wrong = memory answer). */
HR_API hr_status hr_pairs_conflict(const hr_model *m, const hr_tokenizer *tok, const char *text, size_t len,
                                   int max_pairs, float min_prob, uint64_t seed, hr_pairs **out);

/* ---- running the studies ---- */

typedef enum {
    HR_PATCH_HEADS = 1u << 0,   /* each head's output, all positions: (n_layers, max_heads) */
    HR_PATCH_ATTN = 1u << 1,    /* attention sublayer output per position: (n_layers, n_positions) */
    HR_PATCH_MLP = 1u << 2,     /* MLP output per position: (n_layers, n_positions) */
    HR_PATCH_RESID = 1u << 3,   /* residual entering each layer per position: (n_layers, n_positions) */
    HR_PATCH_HEAD_POS = 1u << 4 /* each head at each position: (n_layers, max_heads, n_positions) */
} hr_patch_what;

typedef enum { HR_METRIC_LOGIT_DIFF = 0, HR_METRIC_PROB = 1, HR_METRIC_KL = 2 } hr_patch_metric;
typedef enum { HR_PATCH_DENOISE = 0, HR_PATCH_NOISE = 1 } hr_patch_direction;

typedef struct {
    unsigned what;                /* OR of hr_patch_what (default HR_PATCH_HEADS); 0 = none */
    hr_patch_metric metric;       /* default logit-diff */
    hr_patch_direction direction; /* default denoise */
    const char *path;             /* "SENDERS -> RECEIVERS" or NULL (default) */
    bool path_mlps_recomputed;    /* path step 1 recomputes MLPs (IOI's variant) instead of freezing them */
    const char *knockout;         /* "HEADS : QUERIES -> KEYS" or NULL */
    bool dla;                     /* direct logit attribution (default true) */
    bool lens;                    /* logit lens (default true) */
    int lens_top;                 /* top tokens per layer kept (default 5) */
    int lens_pairs;               /* pairs whose top tokens are kept (default 8) */
    const hr_head_mask *heads;    /* heads masked in every run (study.h); NULL = none (borrowed) */
    const int32_t *calib_tokens;  /* text (BOS first) for the means of mean-ablated heads (borrowed) */
    size_t n_calib_tokens;
    int n_threads;           /* 0 = all cores */
    hr_progress_fn progress; /* called after every forward pass: (done, total); NULL = none */
    void *progress_user_data;
} hr_patch_params;

HR_API hr_patch_params hr_patch_default_params(void);

/* Parses "heads,layers,mlp,resid,positions" / "all" into OR-ed
 * hr_patch_what bits ("layers" = HR_PATCH_ATTN, "positions" =
 * HR_PATCH_HEAD_POS, "none" = 0). Unknown words: HR_ERR_INVALID_ARG. */
HR_API hr_status hr_patch_parse_what(const char *list, unsigned *what);
HR_API hr_status hr_patch_parse_metric(const char *name, hr_patch_metric *out); /* logit-diff, prob, kl */
HR_API const char *hr_patch_metric_name(hr_patch_metric m);
/* Checks a path or knockout specification against a model (the errors
 * hr_patch_run gives before any work). */
HR_API hr_status hr_patch_check_path(const hr_config *c, const char *spec);
HR_API hr_status hr_patch_check_knockout(const hr_config *c, const char *spec);

typedef struct hr_patch_result hr_patch_result;

/* Everything a run found. Matrices are row-major doubles, normalised as
 * above (NaN: no such head, no path, no pair reaching the column); NULL
 * when not run. */
typedef struct {
    int n_pairs, n_layers, max_heads, n_positions;
    hr_patch_metric metric;
    hr_patch_direction direction;
    const int32_t *labels;                   /* (n_positions) the clean tokens of the first longest pair */
    double clean, corrupt;                   /* mean raw metric of the clean and corrupt runs */
    const double *pair_clean, *pair_corrupt; /* (n_pairs) raw metric of each */
    const double *heads;                     /* (n_layers, max_heads) */
    const double *attn, *mlp, *resid;        /* (n_layers, n_positions) */
    const double *head_pos;                  /* (n_layers, max_heads, n_positions) */
    /* direct logit attribution (means over pairs, logit-difference units) */
    bool has_dla;
    bool has_attn_bias, has_norm_bias;
    double dla_total; /* mean logit difference of the clean runs (from the engine's logits) */
    double dla_sum;   /* mean sum of the parts below */
    double dla_embed, dla_norm_bias;
    const double *dla_heads;               /* (n_layers, max_heads) */
    const double *dla_attn_bias, *dla_mlp; /* (n_layers) */
    /* logit lens */
    bool has_lens;
    int lens_top, lens_pairs;
    const double *lens_logit_diff, *lens_prob, *lens_rank; /* (n_layers) means after each block */
    const int32_t *lens_tokens;                            /* (lens_pairs, n_layers, lens_top) */
    /* path patching and knockout */
    const char *path, *knockout; /* as given, NULL when not run */
    const double *path_heads;    /* (n_layers, max_heads) when senders were "*", else NULL */
    double path_value;           /* the sender list's value (NaN for "*") */
    const double *knockout_heads;
    double knockout_value;
    int64_t forward_passes; /* runs: each pair's two, one per intervention (a variant run side by side
                                    with others counts as one), the lens's; the progress callback's units */
    char warning[192];      /* "" or why the normalised values mean little: the clean and corrupt
                                    metrics (means) differ by less than 1% of their size (+ 1) */
    int clean_top_answer;   /* pairs whose clean run's top-1 token is the answer */
    int clean_top_wrong;    /* ... is the wrong answer (for conflict pairs: context / memory wins) */
} hr_patch_summary;

/* Runs every study the params ask for over all pairs. Every parameter,
 * pair length (<= the model's context), path and knockout is checked
 * before any work. *out owned: hr_patch_result_free(). */
HR_API hr_status hr_patch_run(const hr_model *m, const hr_pairs *pairs, const hr_patch_params *p,
                              hr_patch_result **out);
HR_API void hr_patch_result_free(hr_patch_result *r);                             /* NULL ok */
HR_API const hr_patch_summary *hr_patch_result_summary(const hr_patch_result *r); /* borrowed */

typedef struct {
    const char *model_path, *pairs_path; /* named in the JSON; may be NULL */
    const hr_tokenizer *tok;             /* token labels; may be NULL (ids only) */
} hr_patch_meta;

/* patch.json ("format": "headroom.patch", "format_version": 1): settings,
 * the clean / corrupt metrics, every matrix with its row and column
 * labels, DLA, logit lens, path and knockout. *out owned: hr_free(). */
HR_API hr_status hr_patch_result_json(const hr_patch_result *r, const hr_model *m, const hr_patch_meta *meta,
                                      char **out);

/* Memory vs context heads (PH3) from a run over conflict pairs (answer =
 * context answer, wrong = memory answer) with path = "* -> logits", the
 * logit-diff metric and denoising: each head's path effect v into the logits on
 * d = logit(context) - logit(memory), in logit units: the mean over the
 * pairs of d in the path-patched run minus d in the corrupt run (the
 * corrupt run, where the context agrees with memory, with the head's output
 * from the clean run, where the context states the other answer, every
 * other head and MLP frozen; = the normalised path value times
 * (clean - corrupt), so its sign does not hang on that gap's). v > 0: a
 * context head (it carries the context's answer to the
 * output); v < 0: a memory head (given the conflict it pushes the memory
 * answer). Written as a heads.json-style score file (scores.h) with two
 * methods, "ph3-context" = v and "ph3-memory" = -v, both with "higher":
 * "prune first (...)" (HR_SCORE_STEERING: pruning / masking the top heads of
 * one steers the model to the other source), plus the pairs' clean /
 * corrupt means and top-1 counts. Without such a path result:
 * HR_ERR_INVALID_ARG. *out owned: hr_free(). */
HR_API hr_status hr_patch_ph3_json(const hr_patch_result *r, const hr_model *m, const hr_patch_meta *meta, char **out);

/* One intervention, for programs and tests: components patched together
 * into the base run of pair `pair` (direction as in p). */
typedef enum { HR_COMP_HEAD = 0, HR_COMP_ATTN = 1, HR_COMP_MLP = 2, HR_COMP_RESID = 3 } hr_comp_kind;
typedef struct {
    hr_comp_kind kind;
    int layer;
    int head; /* HR_COMP_HEAD only */
    int pos;  /* position in the prompt; -1 = every position */
} hr_component;

/* logits (vocab, may be NULL) receives the last position's logits of the
 * patched run, *value (may be NULL) this pair's normalised metric. n = 0
 * gives the base run. */
HR_API hr_status hr_patch_components(const hr_model *m, const hr_pairs *pairs, int pair, const hr_component *comps,
                                     int n, const hr_patch_params *p, float *logits, double *value);

#ifdef __cplusplus
}
#endif
#endif
