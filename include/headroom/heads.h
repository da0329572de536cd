/* headroom — the head lab: score every attention head (and every layer /
 * sublayer) by a table of methods from the interpretability and pruning
 * literature, classify heads, and serialise the results as heads.json /
 * heads.csv / layers.json (contract in report.h).
 *
 * Each method is one row of a registry (id, name, paper, formula, what it is
 * good for, its progress phase and its cost formula); hr_heads_n_methods() /
 * hr_heads_method_info() list them in a fixed order, which is also the
 * column order of every output. The default set leaves out the methods that
 * re-run the model once per head or more (opt_in: ablation, ablation_kl,
 * ablation_greedy, fdtm), so that it stays affordable on models of 100M+
 * parameters; hr_heads_estimate_cost says what each would cost before
 * anything runs.
 *
 * Inputs are derived from one calibration token stream (the tokenized text,
 * without BOS): windows of `window` tokens, each [BOS, next window-1 text
 * tokens]; repeated random sequences, needle-in-a-haystack prompts and FDTM
 * prompts are all drawn from it (or from the vocabulary) with the seeded
 * generator, so equal inputs and seeds give identical scores. Natural
 * needles (natural_needles) are spans of the windows themselves that recur:
 * what a small model can copy where random tokens never are.
 */
#ifndef HEADROOM_HEADS_H
#define HEADROOM_HEADS_H

#include "headroom/common.h"
#include "headroom/context.h"
#include "headroom/tokenizer.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *id;       /* "ablation", "sink", ... */
    const char *name;     /* human title */
    const char *paper;    /* citation */
    const char *formula;  /* what exactly is computed */
    const char *good_for; /* when to use it */
    const char *higher;   /* "more important" | "more <trait>" */
    bool opt_in;          /* not in the default set ("default"): re-runs the model per head or more; run it by
                             naming it or with "all" */
} hr_head_method_info;

HR_API int hr_heads_n_methods(void);
HR_API const hr_head_method_info *hr_heads_method_info(int i); /* NULL when out of range */
/* Index of a method id, or -1. */
HR_API int hr_heads_method_index(const char *id);
/* Parses "all", "default" (every method but the opt_in ones) or a
 * comma-separated list of ids (which may include "default") into selected
 * (hr_heads_n_methods() bools). Unknown ids are HR_ERR_INVALID_ARG naming
 * the id. */
HR_API hr_status hr_heads_parse_methods(const char *list, bool *selected);

/* Layer / sublayer metrics (layers.json). */
typedef struct {
    const char *id, *name, *paper, *formula;
} hr_layer_metric_info;
HR_API int hr_heads_n_layer_metrics(void);
HR_API const hr_layer_metric_info *hr_heads_layer_metric_info(int i);

typedef struct {
    const int32_t *tokens; /* calibration text tokens without BOS (borrowed) */
    size_t n_tokens;
    int32_t bos;    /* BOS id starting every window and prompt (>= 0) */
    int window;     /* tokens per calibration window incl. BOS; 0 = hr_calib_window(n_ctx, 0) */
    int max_tokens; /* calibration tokens used, whole windows (fewer than one window is
                              HR_ERR_RANGE; a remainder or a shorter text is logged as a warning);
                              0 = HR_CALIB_HEADS_TOKENS (headroom/study.h) */
    uint64_t seed;
    bool mean_ablation;                  /* ablation: replace a head by its mean output instead of 0 */
    const hr_tokenizer *tok;             /* optional: the successor method needs it */
    int rep_len;                         /* repeated sequences: k random tokens per half; 0 = min(48, (n_ctx-1)/2) */
    int rep_seqs;                        /* number of repeated sequences; 0 = 4 */
    int n_needles;                       /* retrieval prompts; 0 = 4 (natural: 16) */
    int needle_len;                      /* needle tokens; 0 = 8 (natural: 4) */
    bool natural_needles;                /* retrieval on natural needles: spans of needle_len calibration tokens that
                              recur (once before, >= 16 tokens earlier) in a window; the prompt is the
                              window up to 2 tokens into the recurrence (default false: random tokens) */
    int fdtm_prompts;                    /* FDTM prompts; 0 = 4 */
    int fdtm_prompt_len;                 /* tokens per FDTM prompt incl. BOS; 0 = 16 */
    int fdtm_gen;                        /* greedy continuation length; 0 = 16 */
    hr_progress_fn progress;             /* optional; units are arbitrary, monotone */
    void *progress_ud;                   /* of both callbacks */
    hr_progress_phase_fn progress_phase; /* optional: one phase per group of methods that share their work, then
                                            "layer metrics" (common.h); NULL = the thread's callback */
    bool no_layer_metrics;               /* skip the layer / sublayer metrics (layers.json): on big models they
                                            cost ~2 forward passes per sublayer (default false) */
} hr_heads_params;

HR_API hr_heads_params hr_heads_default_params(void);

typedef struct hr_heads_result hr_heads_result;

/* ---- cost, before running ----
 *
 * The work of a method is counted in what the forward pass does: tokens
 * run through the layers and rows run through the final norm and the
 * classifier, batched (calls of several tokens) or one token at a time
 * (greedy continuations). A call that starts at layer l, sublayer s (0 =
 * the block, 1 = its MLP; hr_forward_from) runs (L - l - s/2) / L of the
 * layers, and counts that share of each of its tokens. So the exact
 * single-head ablation sweep of a window of W tokens costs
 * W * (1 + sum_l n_head[l] * (L - l) / L) tokens and W * (1 + n_heads)
 * logit rows; greedy elimination repeats it for ever fewer heads (about 10
 * sweeps); FDTM runs, for every head and sublayer, 4 prompts of 16 tokens
 * and up to 15 one-token steps. Each method's registry row holds its
 * formula; test_heads counts the calls a run makes and checks them. */
typedef struct {
    double tokens;            /* batched tokens, by the share of layers run */
    double decode_tokens;     /* tokens run one at a time, counted alike */
    double logit_rows;        /* batched rows through the classifier */
    double decode_logit_rows; /* one-token rows through the classifier */
} hr_heads_work;

typedef struct {
    const char *label; /* the methods that share this work ("ablation, ablation_kl"), or "layer metrics";
                          borrowed from the estimate */
    const char *phase; /* the progress phase that runs it (borrowed) */
    bool selected;     /* part of the run asked for (the layer metrics are unless no_layer_metrics) */
    bool exact;        /* the run does exactly this work */
    bool bound;        /* not exact, but at most this work (fdtm stops at the first divergent token);
                          neither: about this (ablation_greedy: where the surviving heads sit) */
    hr_heads_work work;
    double passes;  /* forward-pass equivalents: the work's multiply-adds over those of one forward of
                           a calibration window with every position's logits */
    double seconds; /* at the measured speed (0 when not measured) */
} hr_heads_cost;

/* An estimate (opaque): rows, one per group of methods sharing their work,
 * selected or not, in registry order, then the layer metrics; their total;
 * the calibration the run would use. */
typedef struct hr_heads_estimate hr_heads_estimate;

HR_API hr_status hr_heads_estimate_cost(hr_context *ctx, const hr_heads_params *p, const bool *selected, bool measure,
                                        hr_heads_estimate **out); /* *out owned by caller */
HR_API void hr_heads_estimate_free(hr_heads_estimate *e);         /* NULL ok */
HR_API int hr_heads_estimate_n_rows(const hr_heads_estimate *e);
/* Row i (0 <= i < n_rows; NULL otherwise), borrowed from e. */
HR_API const hr_heads_cost *hr_heads_estimate_row(const hr_heads_estimate *e, int i);
/* The sum of the selected rows, borrowed from e. */
HR_API const hr_heads_cost *hr_heads_estimate_total(const hr_heads_estimate *e);
/* The calibration the run would use: window length, windows. */
HR_API int hr_heads_estimate_window(const hr_heads_estimate *e);
HR_API int hr_heads_estimate_n_windows(const hr_heads_estimate *e);
/* Measured: one window forward with every position's logits, seconds (0 when not measured). */
HR_API double hr_heads_estimate_window_seconds(const hr_heads_estimate *e);

/* Runs the selected methods (hr_heads_n_methods() bools; NULL = all) and all
 * layer metrics on ctx's model. The context's hook, gates and means are
 * used and restored to none / all-1 / none on return. A calibration stream
 * shorter than one window is HR_ERR_RANGE. *out owned by caller. */
HR_API hr_status hr_heads_run(hr_context *ctx, const hr_heads_params *p, const bool *selected, hr_heads_result **out);
HR_API void hr_heads_result_free(hr_heads_result *r); /* NULL ok */

HR_API int hr_heads_result_n_layers(const hr_heads_result *r);
HR_API int hr_heads_result_n_heads(const hr_heads_result *r, int layer);
/* Whether method i was run (selected and not skipped). */
HR_API bool hr_heads_result_has(const hr_heads_result *r, int method);
/* Why a selected method has no scores ("" if none). Borrowed. */
HR_API const char *hr_heads_result_note(const hr_heads_result *r, int method);
/* Score of (layer, head) by method; NaN when absent. */
HR_API double hr_heads_score(const hr_heads_result *r, int method, int layer, int head);
/* 1 = highest score among the model's heads; 0 when absent. */
HR_API int hr_heads_rank(const hr_heads_result *r, int method, int layer, int head);
/* Whether the run computed the layer metrics (not with no_layer_metrics). */
HR_API bool hr_heads_result_has_layer_metrics(const hr_heads_result *r);
/* Layer metric m of a layer; NaN when absent. */
HR_API double hr_heads_layer_score(const hr_heads_result *r, int metric, int layer);
/* Calibration tokens scored (windows × window). */
HR_API int hr_heads_result_n_calib_tokens(const hr_heads_result *r);
HR_API int hr_heads_result_window(const hr_heads_result *r);

/* Head classes: a head belongs to a class when the class's score passes its
 * threshold (README, "Classes (thresholds)"); one row each, in output order. */
typedef struct {
    const char *id;     /* "sink", "prev_token", ... */
    const char *method; /* the score it reads */
    double threshold;
    bool below;       /* a member scores <= threshold (else >= threshold) */
    const char *rule; /* the rule in words, e.g. "sink >= 0.5" */
} hr_head_class_info;
HR_API int hr_heads_n_classes(void);
HR_API const hr_head_class_info *hr_heads_class_info(int i); /* NULL when out of range */

/* Writes the classes of a head as a comma-separated list into buf ("" for
 * none). */
HR_API void hr_heads_classes(const hr_heads_result *r, int layer, int head, char *buf, size_t cap);

typedef struct {
    const char *model_path, *arch;
    const char *text_path;
    uint64_t seed;
} hr_heads_meta;

/* Serialises results (numbers as the shortest decimal that reads back as
 * the same double, NaN as null; heads.csv keeps %.9g). Each output is
 * malloc'ed (caller frees); any pointer may be NULL to skip that output.
 * *layers_json is NULL when the run has no layer metrics. */
HR_API hr_status hr_heads_to_json(const hr_heads_result *r, const hr_model *m, const hr_heads_meta *meta,
                                  char **heads_json, char **layers_json, char **csv);

/* Attention pattern of one head on tokens (n <= n_ctx; the context is
 * cleared first): out receives (n, n) probabilities, row = query. */
HR_API hr_status hr_heads_attention_map(hr_context *ctx, const int32_t *tokens, int n, int layer, int head, float *out);

/* ---- Successor heads' mod-10 structure (Gould et al. 2023) ----
 *
 * The paper finds "mod-10 features" in the embeddings of numbers. A linear
 * probe: ridge regression (dual form, a bias feature, penalty lambda =
 * ridge * mean squared norm of the features) from each number's embedding
 * to the one-hot of its value mod 10, the class = the highest output.
 * Reported: accuracy on the numbers it was fitted on, leave-one-out
 * accuracy (each number predicted by the probe fitted on the others; exact,
 * from the hat matrix) and chance (the share of the largest class). A
 * class with one member can never be predicted left out: leave-one-out
 * needs at least two numbers per class to mean anything (n_classes). */
typedef struct {
    int n;                 /* numbers probed */
    int n_classes;         /* classes (value mod 10) with at least two numbers */
    double train_accuracy; /* fitted numbers classified right */
    double loo_accuracy;   /* leave-one-out */
    double chance;         /* share of the largest class */
} hr_mod10_probe;

/* x (n, dim) embeddings, values (n) >= 0; ridge > 0 (e.g. 1e-2). */
HR_API hr_status hr_probe_mod10(const float *x, const int *values, int n, int dim, double ridge, hr_mod10_probe *out);

/* The probe on the effective embeddings (embedding + MLP0(embedding), as
 * the head lab's successor method uses) of the numbers 0..max_n that the
 * tokenizer has as single tokens (" 12" or "12", else the bare piece
 * without a space prefix, as digits inside longer numbers; at most the context's
 * n_ctx of them). values (max_n + 1, may be NULL) receives the numbers
 * used, in order. Fewer than 2 single-token numbers is HR_ERR_RANGE. */
HR_API hr_status hr_successor_mod10(hr_context *ctx, const hr_tokenizer *tok, int max_n, double ridge, int *values,
                                    hr_mod10_probe *out);

#ifdef __cplusplus
}
#endif
#endif
