/* Head lab internals: the method registry and the shared "lab" state that
 * method files use to build inputs and run instrumented forwards. Adding a
 * method = one file defining a hr_head_method + one row in registry.c. */
#ifndef HR_HEADS_INTERNAL_H
#define HR_HEADS_INTERNAL_H

#include "headroom/heads.h"
#include "core/internal.h"
#include "core/rng.h"
#include "model/model_internal.h"

#include <math.h>

/* Which generated input an attention-statistic method reads. */
typedef enum {
    LAB_INPUT_NONE = 0,   /* method runs its own compute() */
    LAB_INPUT_CALIB = 1,  /* calibration windows */
    LAB_INPUT_REPEAT = 2  /* [BOS, r1..rk, r1..rk] */
} lab_input;

/* One head's attention on one input sequence. */
typedef struct {
    const float *P; /* (n, stride) probabilities, row = query position */
    int n, stride;
    int rep_k;      /* LAB_INPUT_REPEAT: half length k; else 0 */
} lab_attn;

typedef struct hr_lab hr_lab;

typedef struct {
    hr_head_method_info info;
    lab_input input;
    /* Attention statistic: adds to *sum and *weight for one (head, sequence);
     * the score is sum / weight over all sequences. */
    void (*attn)(const lab_attn *a, double *sum, double *weight);
    /* Custom computation: fills scores (n_layers, max_heads), NaN = none.
     * May set a note with lab_note() and return HR_OK to mean "skipped". */
    hr_status (*compute)(hr_lab *lab, int method, double *scores);
} hr_head_method;

extern const hr_head_method *const hr_head_methods[];
extern const int hr_head_methods_count;

struct hr_lab {
    hr_context *ctx;
    const hr_model *model;
    const hr_config *c;
    hr_heads_params p;
    int L, H;             /* layers, max heads */
    int W;                /* window length incl. BOS */
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

/* Reports progress done/total within the current method's slot; returns
 * HR_ERR_ABORTED when the callback asks to stop. */
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
void lab_nll_kl(hr_lab *lab, const float *logits, const float *base_p, const double *base_negent,
                const int32_t *tokens, int n, int vocab, double *nll, double *kl);

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

/* Runs the attention-statistic methods of `input` over their sequences. */
hr_status lab_run_attn_methods(hr_lab *lab, lab_input input);
/* Fills the layer metrics (needs only the base runs). */
hr_status lab_layer_metrics(hr_lab *lab);

/* Method definitions (one per file). */
extern const hr_head_method hr_method_ablation, hr_method_ablation_kl, hr_method_amp, hr_method_entropy,
    hr_method_confidence, hr_method_sink, hr_method_streaming, hr_method_distance, hr_method_influence,
    hr_method_pattern, hr_method_retrieval, hr_method_induction, hr_method_prev_token, hr_method_duplicate,
    hr_method_successor, hr_method_fdtm, hr_method_ablation_greedy;

/* Layer metric indices (registry order). */
enum {
    LM_BLOCK_INFLUENCE = 0,
    LM_ATTN_SIM,
    LM_MLP_SIM,
    LM_ATTN_KL,
    LM_MLP_KL,
    LM_FDTM_ATTN,
    LM_FDTM_MLP,
    LM_COUNT
};

#endif
