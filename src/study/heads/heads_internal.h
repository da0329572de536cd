/* Head lab internals: the method registry and the shared "lab" state that
 * method files use to build inputs and run instrumented forwards. Adding a
 * method = one file defining a hr_head_method + one row in registry.c. */
#ifndef HR_HEADS_INTERNAL_H
#define HR_HEADS_INTERNAL_H

#include "headroom/grad.h"
#include "headroom/heads.h"
#include "core/internal.h"
#include "core/rng.h"
#include "model/model_internal.h"

#include <math.h>

/* Which generated input an attention-statistic method reads. */
typedef enum {
    LAB_INPUT_NONE = 0,  /* method runs its own compute() */
    LAB_INPUT_CALIB = 1, /* calibration windows */
    LAB_INPUT_REPEAT = 2 /* [BOS, r1..rk, r1..rk] */
} lab_input;

/* One head's attention on one input sequence. */
typedef struct {
    const float *P; /* (n, stride) probabilities, row = query position */
    int n, stride;
    int rep_k; /* LAB_INPUT_REPEAT: half length k; else 0 */
} lab_attn;

typedef struct hr_lab hr_lab;

/* What a method's run costs, counted from the model's shape and the
 * resolved parameters before anything runs (hr_heads_estimate_cost). */
typedef struct {
    hr_heads_work work; /* see heads.h: how tokens and logit rows are counted */
    int64_t items;      /* progress items of the phase (what lab_progress counts) */
    bool exact;         /* the run does exactly this work */
    bool bound;         /* else: at most this (true) or about this (false) */
} lab_cost;

/* The work a method does: its progress phase and its cost formula.
 * Methods whose rows share `cost` share one run of the work (ablation and
 * ablation_kl one sweep, the attention statistics of an input one pass):
 * the lab starts the phase once and the estimate counts it once. */
typedef struct {
    const char *phase; /* progress phase, e.g. "ablation sweep" */
    const char *unit;  /* what one progress item is, e.g. "head ablations" */
    void (*cost)(const hr_lab *lab, lab_cost *out);
} lab_work;

typedef struct {
    hr_head_method_info info;
    lab_input input;
    /* Attention statistic: adds to *sum and *weight for one (head, sequence);
     * the score is sum / weight over all sequences. */
    void (*attn)(const lab_attn *a, double *sum, double *weight);
    /* Custom computation: fills scores (n_layers, max_heads), NaN = none.
     * May set a note with lab_note() and return HR_OK to mean "skipped". */
    hr_status (*compute)(hr_lab *lab, int method, double *scores);
    lab_work work;
} hr_head_method;

/* The shared passes of the attention statistics (rows with LAB_INPUT_CALIB
 * or LAB_INPUT_REPEAT use these as their work). */
void lab_cost_calib_pass(const hr_lab *lab, lab_cost *out);
void lab_cost_repeat_pass(const hr_lab *lab, lab_cost *out);
#define LAB_WORK_CALIB                                                                                                 \
    { "attention statistics", "windows", lab_cost_calib_pass }
#define LAB_WORK_REPEAT                                                                                                \
    { "repeated sequences", "sequences", lab_cost_repeat_pass }

/* Sum over heads of the share of layers a forward from the head's layer
 * runs: sum_l n_head[l] * (L - l) / L. */
double lab_heads_depth(const hr_lab *lab);
/* Heads of the model. */
int lab_n_heads(const hr_lab *lab);
/* Half length k of the repeated sequences [BOS, r1..rk, r1..rk]. */
int lab_rep_len(const hr_lab *lab);

extern const hr_head_method *const hr_head_methods[];
extern const int hr_head_methods_count;

struct hr_lab {
    hr_context *ctx;
    const hr_model *model;
    const hr_config *c;
    hr_heads_params p;
    int L, H; /* layers, max heads */
    int W;    /* window length incl. BOS */
    int n_windows;
    int32_t *windows;     /* (n_windows, W) calibration windows */
    double *scores;       /* (n_methods, L, H) */
    bool *has;            /* (n_methods) */
    char (*notes)[160];   /* (n_methods) */
    const bool *selected; /* (n_methods) */
    /* Caches shared between paired methods (ablation/ablation_kl, fdtm). */
    double *abl_loss, *abl_kl; /* (L, H) or NULL */
    double *row_scratch;       /* (2, W) per-row NLL and KL of lab_nll_kl */
    double *fdtm_heads;        /* (L, H) or NULL */
    double *layer_scores;      /* (n_layer_metrics, L) */
    int prog_slot, prog_slots;
};

/* Reports progress: done of total items of the current method's phase
 * (total = its lab_cost items; the lab starts the phase). Returns
 * HR_ERR_ABORTED when a callback asks to stop. */
hr_status lab_progress(hr_lab *lab, int64_t done, int64_t total);
void lab_note(hr_lab *lab, int method, const char *fmt, ...) HR_PRINTF(3, 4);

/* Random inputs: each method draws from its own stream of the seed,
 * hr_rng_stream(seed, salt) (core/rng.h), so methods do not perturb each
 * other. */

/* Index of the first set (layer, head) score slot. */
static inline size_t lab_idx(const hr_lab *lab, int l, int h) { return (size_t)l * lab->H + h; }

/* Turns logits rows 0..n-2 (n, vocab) into probabilities in place and
 * stores each row's sum p·log p in negent (n-1), the base side of KL. */
void lab_base_probs(hr_lab *lab, float *x, double *negent, int n, int vocab);
/* Mean NLL (nats) of predicting tokens[1..n) from logits rows 0..n-2 and,
 * when base_p != NULL, mean KL(base || this) over the same rows.
 * logits (n, vocab); base_p (n, vocab) from lab_base_probs; n <= lab->W. */
void lab_nll_kl(hr_lab *lab, const float *logits, const float *base_p, const double *base_negent, const int32_t *tokens,
                int n, int vocab, double *nll, double *kl);

/* Greedy continuation: feeds prompt (n tokens) from an empty cache and
 * generates up to gen tokens into out; stops early after the first token
 * that differs from ref (when ref != NULL) and returns via *n_out the
 * generated count. logits scratch: (vocab). */
hr_status lab_greedy(hr_context *ctx, const int32_t *prompt, int n, int gen, const int32_t *ref, int32_t *out,
                     int *n_out, float *logits);

/* Sublayer removal through a hook: ATTN_OUT / MLP_OUT of `layer` zeroed. */
typedef struct {
    int attn_layer, mlp_layer; /* -1 = none */
} lab_removal;
/* Installs the removal hook on ctx (r must outlive its use); NULL removes. */
void lab_set_removal(hr_context *ctx, lab_removal *r);

/* Exact single-head ablation over the calibration windows with the heads
 * whose `alive` gate is 0 already removed (alive NULL = none): adds each
 * remaining head's mean loss increase and KL (against that base) to loss
 * and kl (L, H). Progress advances *prog_done by one per head and window. */
hr_status lab_ablation_sweep(hr_lab *lab, const float *alive, double *loss, double *kl, int64_t *prog_done,
                             int64_t prog_total);

/* Checks the parameters as hr_heads_run does. */
hr_status lab_validate(hr_context *ctx, const hr_heads_params *p);
/* Resolves the calibration (window, windows) and allocates the lab for the
 * selection (NULL = all). warn: log the calibration used when it differs
 * from what was asked (the run does; the estimate before it does not).
 * lab_release frees what it allocated, also after a failure. */
hr_status lab_init(hr_lab *lab, hr_context *ctx, const hr_heads_params *p, const bool *selected, bool warn);
void lab_release(hr_lab *lab);
/* Whether method m shares its work (its cost formula) with an earlier
 * method of the selection sel (NULL = every method). */
bool lab_shares_earlier(const bool *sel, int m);
/* The layer metrics' work (always run). */
void lab_cost_layer_metrics(const hr_lab *lab, lab_cost *out);
/* A gradient engine over the lab's model (borrowed weights, gates at 1, no
 * adapters) for the selected kinds (HR_GRAD_KIND bits), on the context's
 * pool, for windows of lab->W tokens. Free both with hr_grad_free,
 * hr_params_free (NULL on failure). */
hr_status lab_grad_new(hr_lab *lab, uint64_t kinds, hr_params **params, hr_grad **grad);

/* Runs the attention-statistic methods of `input` over their sequences. */
hr_status lab_run_attn_methods(hr_lab *lab, lab_input input);
/* Fills the layer metrics (needs only the base runs). */
hr_status lab_layer_metrics(hr_lab *lab);

/* Method definitions (one per file). */
extern const hr_head_method hr_method_ablation, hr_method_ablation_kl, hr_method_amp, hr_method_entropy,
    hr_method_confidence, hr_method_sink, hr_method_streaming, hr_method_distance, hr_method_influence,
    hr_method_pattern, hr_method_retrieval, hr_method_induction, hr_method_prev_token, hr_method_duplicate,
    hr_method_successor, hr_method_fdtm, hr_method_ablation_greedy, hr_method_grad, hr_method_taylor;

/* Layer metric indices (registry order). */
enum { LM_BLOCK_INFLUENCE = 0, LM_ATTN_SIM, LM_MLP_SIM, LM_ATTN_KL, LM_MLP_KL, LM_FDTM_ATTN, LM_FDTM_MLP, LM_COUNT };

/* Rows an estimate holds at most: one per method plus the layer metrics
 * (registry.c checks the registry fits). */
enum { HR_HEADS_MAX_COSTS = 32 };

/* Successor heads (m_successor.c; mod10.c): the id of word as a single
 * token (trying " word" then "word"), or -1; effective token embeddings
 * e = embedding + MLP0(embedding) as in the paper, (n, dim) into eff, by
 * re-entering ctx's model at layer 0's MLP (n <= the context's n_ctx; the
 * context's cache is used and its hook removed). */
int32_t successor_single_token(const hr_tokenizer *tok, const char *word);
hr_status successor_effective_embeddings(hr_context *ctx, const int32_t *toks, int n, float *eff);

#endif
