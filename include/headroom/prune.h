/* headroom — structured pruning: physically remove attention heads, MLP
 * neurons, attention / MLP sublayers and whole blocks, giving a smaller
 * model whose forward pass does less work.
 *
 * Surgery (hr_prune_apply) is exact: the pruned model computes what the
 * base model computes with the removed heads gated to zero, the removed
 * neurons masked (their W_down columns zero), removed sublayers skipped.
 *
 * Heads: a query head's rows of Wq (and bq) and its columns of Wo go. In
 * grouped-query attention (llama.cpp / transformers map query head i to KV
 * head i / (n_head / n_head_kv)), a KV head's rows of Wk/Wv (bk/bv) go when
 * all its query heads are gone. Every remaining KV group must keep the same
 * number of query heads: with uneven_duplicate the K/V rows of a group that
 * keeps c heads are duplicated c / g times, g = gcd of the kept counts, so
 * every group has g query heads (the function is unchanged; the KV cache
 * grows). Without it uneven groups are HR_ERR_INVALID_ARG.
 *
 * The planner (hr_prune_plan_heads / _ff) turns scores (higher = more
 * important) and a budget into a spec:
 *  - HR_BUDGET_GLOBAL: the lowest-scored units of the whole model go;
 *  - HR_BUDGET_PER_LAYER: the same fraction of every layer;
 *  - HR_BUDGET_CFSP: coarse to fine (CFSP, Wang et al. 2024): the budget is
 *    first split across layers in proportion to 1 / layer importance (less
 *    important layers lose more), then the lowest-scored units of each layer
 *    go. Quotas never exceed a layer's size minus one.
 * In GQA layers whose groups stay even the planner combines per-layer group
 * shapes so that exactly the amount asked goes where any combination allows
 * it, and reports why otherwise (hr_prune_plan_heads below).
 * Every layer keeps at least one head / neuron; a layer loses its attention
 * or MLP only through drop_attn / drop_mlp / drop_block.
 *
 * hr_prune_run does all of it as one call (what `headroom prune` does) and
 * hr_prune_report_json describes the result (prune.json). hr_loraprune_run
 * prunes iteratively while fine-tuning LoRA adapters (LoRAPrune), and
 * hr_prune_cfsp_recovery spreads a recovery LoRA budget by block importance
 * (CFSP); both are at the end of this header.
 */
#ifndef HEADROOM_PRUNE_H
#define HEADROOM_PRUNE_H

#include "headroom/common.h"
#include "headroom/context.h"
#include "headroom/grad.h"
#include "headroom/model.h"
#include "headroom/scores.h"
#include "headroom/tokenizer.h"
#include "headroom/train.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What to remove, per layer of the base model: which query heads and MLP
 * neurons to keep, which attention / MLP sublayers and blocks to drop. */
typedef struct hr_prune_spec hr_prune_spec;

/* A spec that keeps everything of m. *out owned by caller: hr_prune_spec_free(). */
HR_API hr_status hr_prune_spec_new(const hr_model *m, hr_prune_spec **out);
HR_API void hr_prune_spec_free(hr_prune_spec *s); /* NULL ok */

typedef enum { HR_PRUNE_ATTN = 0, HR_PRUNE_MLP = 1, HR_PRUNE_BLOCK = 2 } hr_prune_part;

/* Keep (true) or remove query head / MLP neuron `unit` of `layer`. An
 * index outside the model is HR_ERR_RANGE. */
HR_API hr_status hr_prune_spec_set_head(hr_prune_spec *s, int layer, int head, bool keep);
HR_API hr_status hr_prune_spec_set_neuron(hr_prune_spec *s, int layer, int neuron, bool keep);
HR_API bool hr_prune_spec_keeps_head(const hr_prune_spec *s, int layer, int head);
HR_API bool hr_prune_spec_keeps_neuron(const hr_prune_spec *s, int layer, int neuron);
/* Drop (or keep) a layer's attention sublayer, MLP sublayer or whole block. */
HR_API hr_status hr_prune_spec_set_dropped(hr_prune_spec *s, int layer, hr_prune_part part, bool drop);
/* Whether the part is gone: a dropped block drops both sublayers. */
HR_API bool hr_prune_spec_dropped(const hr_prune_spec *s, int layer, hr_prune_part part);
/* Make uneven KV groups even by duplicating K/V rows (see above); default off. */
HR_API void hr_prune_spec_set_uneven_duplicate(hr_prune_spec *s, bool on);
HR_API bool hr_prune_spec_uneven_duplicate(const hr_prune_spec *s);

/* Per-layer outcome of a spec, as applied. */
typedef struct {
    int n_head, n_head_kv, n_ff; /* after; 0 when the sublayer / block is gone */
    int n_kv_distinct;           /* distinct base KV heads kept (< n_head_kv when duplicated) */
} hr_prune_layer_result;

/* Checks s against m and describes the result per base layer (res may be
 * NULL). Layers left without heads (neurons) that are not dropped, uneven
 * groups without uneven_duplicate and a model with no block left are
 * HR_ERR_INVALID_ARG with the layer named. */
HR_API hr_status hr_prune_check(const hr_model *m, const hr_prune_spec *s, hr_prune_layer_result *res);

/* Builds the pruned model (weights copied, f32). *out owned by caller. */
HR_API hr_status hr_prune_apply(const hr_model *m, const hr_prune_spec *s, hr_model **out);

typedef enum { HR_BUDGET_GLOBAL = 0, HR_BUDGET_PER_LAYER = 1, HR_BUDGET_CFSP = 2 } hr_prune_budget;

/* "global" | "per-layer" | "cfsp". */
HR_API hr_status hr_prune_budget_from_name(const char *name, hr_prune_budget *out);
HR_API const char *hr_prune_budget_name(hr_prune_budget b);

typedef struct {
    hr_prune_budget budget; /* how the amount is split over layers (default HR_BUDGET_GLOBAL) */
    bool uniform;           /* every layer taking part loses the same number (and, in GQA-even layers,
                               keeps the same group shape); the budget's split is not used (default false) */
    bool strict;            /* an amount that cannot be met exactly is HR_ERR_RANGE instead of planning the
                               nearest one (default false) */
} hr_prune_plan_params;

HR_API hr_prune_plan_params hr_prune_plan_default_params(void);

typedef struct {
    int64_t requested, removed;
    char reason[512]; /* why removed != requested ("" when equal) */
} hr_prune_plan_result;

/* Marks n_remove query heads of the model for removal in s (on top of what
 * s already removes). scores: (n_layers × max_heads) row-major, higher =
 * more important, NaN = unknown (removed last). layer_imp: (n_layers)
 * higher = more important, required for CFSP (else ignored). p NULL =
 * defaults; out (may be NULL) receives what was asked, what was planned
 * and why they differ.
 *
 * Exact amounts. Unless s->uneven_duplicate, a GQA layer keeps its KV
 * groups even: it keeps k groups of c query heads each, so a layer of 8
 * heads in groups of 2 can lose 0, 2, 4, 5, 6 or 7 heads, not 1 or 3. The
 * planner searches the combination of per-layer shapes (dynamic
 * programming over layers) whose removals sum to n_remove exactly:
 *  - HR_BUDGET_GLOBAL: the combination keeping the largest sum of scores
 *    (the lowest-scored heads of the model, as far as even groups allow);
 *  - HR_BUDGET_PER_LAYER / CFSP: the combination nearest the budget's
 *    per-layer quotas (sum of |removed - quota|), then the largest score
 *    kept.
 * When no combination removes exactly n_remove, the nearest total that can
 * be removed is planned (ties: the larger; never 0 for n_remove > 0) and
 * out->reason says why — or, with p->strict, HR_ERR_RANGE with that reason.
 * Layers whose attention or block is dropped are skipped. n_remove above
 * what can go while every layer keeps a head is HR_ERR_RANGE. */
HR_API hr_status hr_prune_plan_heads(const hr_model *m, const float *scores, const float *layer_imp, int64_t n_remove,
                                     const hr_prune_plan_params *p, hr_prune_spec *s, hr_prune_plan_result *out);

/* The same for MLP neurons (no groups: only p->uniform can make an amount
 * inexact, to a multiple of the layers taking part). scores: per layer l a
 * pointer to n_ff[l] importances. */
HR_API hr_status hr_prune_plan_ff(const hr_model *m, const float *const *scores, const float *layer_imp,
                                  int64_t n_remove, const hr_prune_plan_params *p, hr_prune_spec *s,
                                  hr_prune_plan_result *out);

/* Marks the k layers with the lowest layer scores (higher = more
 * important) for dropping their `part` (attention sublayers, MLP
 * sublayers or whole blocks). Already dropped layers are not counted
 * twice. Dropping every block is HR_ERR_RANGE. */
HR_API hr_status hr_prune_plan_layers(const hr_model *m, const float *layer_scores, int k, hr_prune_part part,
                                      hr_prune_spec *s);

/* Attention and MLP sublayers as one pool (FinerCut, Zhang et al. 2024):
 * marks k sublayers of ctx's model for dropping in s (on top of what s
 * already drops), each chosen as the one whose removal changes the
 * model's output least. The change is the paper's criterion as headroom
 * reads it: the Jensen-Shannon divergence (nats) between the next-token
 * distributions of the base model and of the model without the sublayers
 * dropped so far plus the candidate, mean over every position of the
 * calibration tokens (fed in consecutive windows of `window` tokens from an
 * empty cache; 0 = hr_calib_window(n_ctx, 0); more than the context's
 * n_ctx is HR_ERR_RANGE). iterative: every candidate is re-scored after
 * each removal (k passes over the tokens, one run per candidate and
 * window); otherwise the k lowest of the first pass go (one-shot ranking).
 * A layer left with neither sublayer drops its block. At least one
 * sublayer must stay (k too large is HR_ERR_RANGE). Costs a window of
 * (window, vocab) floats. ctx's hook is replaced while it runs and removed
 * after; its cache is left empty; s must pass hr_prune_check.
 * order (k, may be NULL): sublayer chosen at step i as j = 2 * layer +
 * (0 attention, 1 MLP). scores (k × 2 n_layers, may be NULL): row i holds
 * every candidate's divergence at step i (one shot: the first pass's, the
 * chosen ones gone); NaN for sublayers already gone. */
HR_API hr_status hr_prune_plan_sublayers(hr_context *ctx, const int32_t *tokens, size_t n_tokens, int window, int k,
                                         bool iterative, hr_prune_spec *s, int *order, double *scores);

/* AMP-style neuron importance on calibration tokens: for neuron j of layer
 * l, mean over tokens of |act_j| times ||column j of W_down||, act =
 * silu(gate)*up (SwiGLU) or gelu(up) (GELU). tokens are fed in consecutive
 * windows of `window` tokens (0 = hr_calib_window(n_ctx, 0); more than the
 * context's n_ctx is HR_ERR_RANGE).
 * out[l] must hold n_ff[l] floats. */
HR_API hr_status hr_prune_neuron_importance(hr_context *ctx, const int32_t *tokens, size_t n_tokens, int window,
                                            float *const *out);

/* Layer importance on calibration tokens (ShortGPT block influence and the
 * sublayer change of "What Matters in Transformers"): mean over tokens of
 * 1 - cos(x_in, x_out) of the block (block[l]), of the attention sublayer
 * (attn[l]) and of the MLP sublayer (mlp[l]). Any output may be NULL. */
HR_API hr_status hr_prune_layer_importance(hr_context *ctx, const int32_t *tokens, size_t n_tokens, int window,
                                           float *block, float *attn, float *mlp);

/* ---- A whole pruning run ----
 *
 * What `headroom prune` does, as one call: drops the least important
 * sublayers / blocks, removes the requested amounts of query heads (by a
 * score table's method, or at random) and MLP neurons (by importance on
 * calibration text), and builds the pruned model.
 *
 * Neuron importance (mlp_method), both on the calibration tokens
 * (hr_calib_tokens: BOS + text, max_tokens of them):
 *  - "amp" (default): hr_prune_neuron_importance, mean |act| times the
 *    norm of the neuron's W_down column, over consecutive windows;
 *  - "taylor": first-order Taylor importance (LLM-Pruner's vector-wise
 *    score, hr_taylor_neuron_scores): |sum over the neuron's W_gate and
 *    W_up rows (+ b_up) and W_down column of w * dL/dw|, the gradient of
 *    the next-token loss averaged over the whole windows of `window`
 *    tokens the calibration tokens hold (a partial last window is left
 *    out unless it is the only one). Scores are loss changes, comparable
 *    across layers, so the global budget ranks the whole model. Costs one
 *    forward + backward per window. Every input is checked
 * before any work; the amounts are planned exactly where the constraints
 * allow (hr_prune_plan_heads) and the result says what was asked, what was
 * removed and why they differ. */
typedef struct {
    const hr_scores *scores; /* head scores and/or layer metrics; may be NULL (borrowed) */
    const char *method;      /* head score method of `scores`, or "random"; needed with heads */
    bool invert;             /* remove the highest-ranked heads first (trait scores such as sink) */
    uint64_t seed;           /* of method "random" (default 0) */
    const char *heads;       /* amount of query heads to remove, "25%" or "10" (hr_parse_amount); NULL = none */
    const char *mlp;         /* amount of MLP neurons to remove; NULL = none (needs text) */
    const char *mlp_method;  /* neuron importance: NULL or "amp" (default) | "taylor" (see above) */
    int drop_attn, drop_mlp, drop_blocks; /* sublayers / blocks to drop, least important first */
    const char *layer_metric;             /* layer metric of `scores` for every drop and cfsp; NULL = attn_kl (else
                                 attn_sim), mlp_kl (else mlp_sim), block_influence */
    hr_prune_budget budget;               /* default HR_BUDGET_GLOBAL */
    bool uniform;                         /* same loss in every layer (needs HR_BUDGET_PER_LAYER) */
    bool strict;           /* an amount that cannot be met exactly is an error (see hr_prune_plan_heads) */
    bool uneven_duplicate; /* uneven GQA groups by duplicating K/V rows instead of keeping groups even */
    const char *text;      /* calibration text: neuron importance, and layer importance when `scores`
                                 holds no layer metrics; NULL = none (borrowed) */
    size_t text_len;
    int64_t max_tokens;                  /* calibration tokens; 0 = HR_CALIB_SURGERY_TOKENS */
    int window;                          /* calibration window; 0 = hr_calib_window() */
    int n_threads;                       /* 0 = all cores */
    hr_progress_phase_fn progress_phase; /* phases "layer importance" and "neuron importance" when they run
                                            (common.h); NULL = the thread's callback */
    void *progress_user_data;
    int drop_sublayers;       /* attention and MLP sublayers dropped from one pool, after the drops above:
                                 one shot by the layer metrics (attn / mlp of layer_metric's defaults:
                                 "What Matters in Transformers"' joint layer drop), or by FinerCut's
                                 output change (hr_prune_plan_sublayers; needs text) with `iterative` or
                                 `sublayers_by_output` */
    bool iterative;           /* FinerCut: re-score the pool after each removal (implies the output change) */
    bool sublayers_by_output; /* rank the pool once by FinerCut's output change instead of layer metrics */
} hr_prune_params;

HR_API hr_prune_params hr_prune_default_params(void);

typedef struct hr_prune_result hr_prune_result;

/* Runs the pruning p asks for on m (tok: needed with text; it tokenizes the
 * calibration text). Bad or inconsistent parameters (nothing to prune,
 * heads without a method, a method the table lacks or with null scores, an
 * amount that removes nothing or everything, MLP pruning without text, an
 * unknown mlp_method, drops / cfsp without layer metrics or text, uniform
 * without the per-layer budget) fail before any work with a message saying which.
 * m must outlive the result. *out owned by caller: hr_prune_result_free(). */
HR_API hr_status hr_prune_run(const hr_model *m, const hr_tokenizer *tok, const hr_prune_params *p,
                              hr_prune_result **out);
HR_API void hr_prune_result_free(hr_prune_result *r); /* NULL ok */

HR_API const hr_model *hr_prune_result_model(const hr_prune_result *r);     /* the pruned model; borrowed */
HR_API const hr_prune_spec *hr_prune_result_spec(const hr_prune_result *r); /* what was removed; borrowed */
/* Heads / neurons asked for and removed, and why they differ. Borrowed. */
HR_API const hr_prune_plan_result *hr_prune_result_heads(const hr_prune_result *r);
HR_API const hr_prune_plan_result *hr_prune_result_neurons(const hr_prune_result *r);
/* The drop_sublayers steps in the order chosen (returns their number; 0
 * without). *sublayer (n): j = 2 * layer + (0 attention, 1 MLP); *score
 * (n): the criterion's value of the choice (JS divergence, or the layer
 * metric). Borrowed; either pointer may be NULL. */
HR_API int hr_prune_result_sublayers(const hr_prune_result *r, const int **sublayer, const double **score);

/* Paths the report names (any may be NULL). */
typedef struct {
    const char *base, *output, *output_hf, *text;
} hr_prune_report_meta;

/* prune.json ("format": "headroom.prune", "format_version": 1): base and
 * outputs, method, score kind, inversion, budget, GQA mode, layer metrics,
 * heads and neurons requested (the amount and its count) and removed, and
 * the reason when they differ, parameters before / after, and per base
 * layer the shapes before / after, removed heads with their scores, removed
 * KV heads, removed neurons, dropped sublayers / block and the layer
 * scores. *out owned by caller: hr_free(). */
HR_API hr_status hr_prune_report_json(const hr_prune_result *r, const hr_prune_report_meta *meta, char **out);

/* ---- Recovery budget (CFSP) ----
 *
 * CFSP (Wang et al. 2024, "An Efficient Structured Pruning Framework for
 * LLMs with Coarse-to-Fine Activation Information") spends its recovery
 * fine-tuning (LoRA) unevenly: its coarse, block-level importance (the
 * angular change a block makes to its input's activations) decides how much
 * trainable capacity each block gets. headroom's reading: the block
 * importance is ShortGPT's block influence, mean over tokens of
 * 1 - cos(x_in, x_out) (hr_prune_layer_importance), and the budget is the
 * LoRA rank: a total of rank × n_layers is spread over the layers in
 * proportion to their importance (more important blocks get more rank),
 * each layer between 1 and max_rank. The allocation is the integer vector
 * nearest the proportional quotas q_l = total · imp_l / Σ imp: it minimises
 * Σ |r_l - q_l| subject to Σ r_l = total and the bounds (ties: lower layers
 * first); a uniform rank is what equal importances give. */

/* ranks (n_layers) from imp (n_layers, >= 0, finite; all 0 = equal).
 * total must lie in [n_layers, n_layers × max_rank]. */
HR_API hr_status hr_prune_recovery_ranks(const float *imp, int n_layers, int64_t total, int max_rank, int *ranks);

/* CFSP's recovery ranks for ctx's model from the block influence on tokens
 * (fed in windows of `window`, 0 = hr_calib_window): ranks (n_layers) with
 * a total of rank × n_layers, each at most max_rank (0 = 2 × rank, capped
 * by the smallest adapted matrix); imp (n_layers, may be NULL) receives the
 * block importances. */
HR_API hr_status hr_prune_cfsp_recovery(hr_context *ctx, const int32_t *tokens, size_t n_tokens, int window, int rank,
                                        int max_rank, int *ranks, float *imp);

/* ---- LoRAPrune ----
 *
 * Zhang et al. 2023, "LoRAPrune: Structured Pruning Meets Low-Rank
 * Parameter-Efficient Fine-Tuning". The importance of a weight is the
 * first-order (squared Taylor) estimate of the loss change when it is
 * removed, (dL/dW_ij · W_ij)^2, but without the full gradient dL/dW: it is
 * estimated from the LoRA adapters alone. One SGD step of unit size on A
 * and B changes the adapted product by -(G_B A + B G_A - G_B G_A), so with
 * LoRA's scale s = alpha / r (headroom's reading of the paper, which writes
 * it for s = 1) every element of an adapted matrix W (d_out, d_in) scores
 *   G = s (G_B A + B G_A - G_B G_A),   W' = W + s B A,   I_ij = (G_ij W'_ij)^2
 * with A (r, d_in), B (d_out, r) and G_A, G_B their gradients. A group's
 * importance is the sum over its elements in adapted matrices:
 *  - query head h of layer l: its rows of Wq, its columns of Wo, and when
 *    it is alone in its KV group (multi-head attention) its K/V rows;
 *  - MLP neuron j: row j of W_gate and W_up, column j of W_down.
 * The paper smooths the score over steps with a moving average,
 * Ī_t = λ Ī_{t-1} + (1 - λ) I_t (the first step starts it). */

/* LoRAPrune importance from g's accumulated gradients (g must select the
 * LoRA tensors) and its parameters' current values. heads: (n_layers ×
 * max_heads), neurons: (n_layers × max_ff) row-major (unused entries 0);
 * either may be NULL. Parameters without adapters are HR_ERR_INVALID_ARG. */
HR_API hr_status hr_loraprune_importance(const hr_grad *g, double *heads, double *neurons);

/* The iterative run. LoRA adapters are trained on the text (the training
 * loop of headroom/train.h with `train`'s settings; train.steps is the
 * whole budget) and the budget is cut into iterations + 1 equal parts: after
 * part k (k = 1..K, the step floor(steps · k / (K + 1))) the units with the
 * lowest moving-average importance among those still kept go until
 * round(n · k / K) of the n requested are gone (the planner's global budget
 * with even GQA groups, hr_prune_plan_heads / _ff), so K iterations remove
 * exactly the amount asked where the groups allow. Removed units are gated
 * to zero (their head / neuron gate) and training continues with them off;
 * the last part fine-tunes the fully pruned model. At the end the adapters
 * are merged (W + s B A) and the units cut out of the merged model: the
 * result holds the smaller model, and its prune.json records the
 * iterations (step, training loss, what each removed) and the final
 * moving-average scores. With cfsp_ranks the LoRA rank per layer follows
 * CFSP's recovery budget (hr_prune_cfsp_recovery on the text's first
 * HR_CALIB_SURGERY_TOKENS tokens). The held-out part is evaluated before
 * training, every train.eval_every steps and at the end. Progress: phases
 * "layer importance" (cfsp_ranks) and "loraprune" (steps, with the last
 * training and held-out loss and tokens/s in the unit text). train.stop
 * (e.g. set from SIGINT) stops the run after the current step with
 * HR_ERR_ABORTED and no result: LoRAPrune keeps no checkpoint. */
typedef struct {
    const char *heads;     /* query heads to remove, "50%" or "20" (hr_parse_amount); NULL = none */
    const char *mlp;       /* MLP neurons to remove; NULL = none */
    int iterations;        /* K >= 1 (default 4) */
    float ema;             /* λ of the moving average, [0, 1) (default 0.9) */
    hr_train_params train; /* the LoRA run (lora_rank >= 1, default 8; steps >= iterations + 1); its
                              progress fields are ignored (the run's are below) */
    bool cfsp_ranks;       /* per-layer LoRA ranks by CFSP's recovery budget (default false) */
    bool uneven_duplicate; /* uneven GQA groups by duplicating K/V rows instead of keeping groups even */
    const char *text;      /* training text (borrowed; required) */
    size_t text_len;
    int64_t max_tokens;                  /* training tokens of the text; 0 = all */
    hr_progress_phase_fn progress_phase; /* NULL = the thread's callback */
    void *progress_user_data;
} hr_loraprune_params;

HR_API hr_loraprune_params hr_loraprune_default_params(void);

/* Runs LoRAPrune on m (tok tokenizes the text). Every parameter is checked
 * before any work (nothing to prune, iterations < 1, no text, full
 * training or no LoRA rank, fewer steps than iterations + 1, a bad amount).
 * m must outlive the result. *out owned by caller: hr_prune_result_free(). */
HR_API hr_status hr_loraprune_run(const hr_model *m, const hr_tokenizer *tok, const hr_loraprune_params *p,
                                  hr_prune_result **out);

/* LoRAPrune's iterations (returns their number; 0 for other runs): per
 * iteration i the step after which it removed (steps), how many heads and
 * neurons it removed; any array (iterations) may be NULL. */
/* LoRAPrune's held-out loss (the training text's held-out part, mean
 * next-token cross-entropy in nats) before training (the base model) and at
 * the end (the merged, pruned model). Errors for other runs. */
HR_API hr_status hr_prune_result_heldout(const hr_prune_result *r, double *before, double *after);

HR_API int hr_prune_result_iterations(const hr_prune_result *r, int *steps, int *heads, int *neurons);

#ifdef __cplusplus
}
#endif
#endif
