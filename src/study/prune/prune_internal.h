/* The result of a pruning run (opaque hr_prune_result of headroom/prune.h),
 * shared by the run (run.c) and its report (report.c). */
#ifndef HR_PRUNE_INTERNAL_H
#define HR_PRUNE_INTERNAL_H

#include "headroom/prune.h"
#include "study/prune/surgery_internal.h"

/* What one LoRAPrune iteration removed. */
typedef struct {
    int step;               /* optimiser step after which it removed */
    double loss;            /* training loss of that step */
    int n_heads, n_neurons; /* how many it removed */
    int *heads, *neurons;   /* (n_heads, 2) / (n_neurons, 2): layer, head / layer, neuron */
} hr_loraprune_iter;

struct hr_prune_result {
    const hr_model *base;                     /* borrowed: the model pruned */
    hr_model *pruned;                         /* owned */
    hr_prune_spec *spec;                      /* owned: what went */
    hr_prune_params params;                   /* as given, without the borrowed pointers */
    char *method, *heads_amount, *mlp_amount; /* owned copies; NULL = not asked */
    char heads_source[512], layers_source[512];
    hr_score_kind score_kind;          /* of the head method (random: importance) */
    float *head_raw;                   /* (n_layers, max_heads) head scores as stored; NULL without heads */
    float *head_order;                 /* (n_layers, max_heads) keep order the planner used */
    float *ff_scores[HR_MAX_LAYERS];   /* per layer (n_ff[l]) neuron importance; NULL without MLP */
    bool mlp_taylor;                   /* neurons by first-order Taylor (else AMP) */
    int taylor_windows, taylor_window; /* the Taylor gradient's windows: how many, tokens each */
    float lay[3][HR_MAX_LAYERS];       /* attention, MLP, block importance per base layer */
    char lay_name[3][64];              /* their metric; "" = none */
    hr_prune_plan_result heads, neurons;
    int n_sub;               /* drop_sublayers steps taken */
    int *sub_order;          /* (n_sub) sublayer j = 2 * layer + part chosen at each step */
    double *sub_step_scores; /* (n_sub, 2 n_layers) every candidate's score at each step; NaN = gone */
    double *sub_score;       /* (n_sub) the chosen one's */
    char sub_criterion[256]; /* what the scores are */
    /* LoRAPrune (loraprune.c) */
    bool lp;                       /* the result of hr_loraprune_run */
    hr_loraprune_params lp_params; /* as given, without the borrowed pointers */
    hr_loraprune_iter *lp_iters;   /* (lp_params.iterations) */
    int lp_n_iters;                /* iterations done */
    double lp_heldout;             /* held-out loss of the training text's held-out part at the end */
    double lp_heldout_before;      /* the same before training (the base model) */
    int lp_ranks[HR_MAX_LAYERS];   /* CFSP recovery ranks (lp_params.cfsp_ranks) */
    int lp_rank_max;               /* the adapters' allocated rank with CFSP ranks */
};

/* "What Matters in Transformers"' joint layer drop: the k sublayers with
 * the lowest layer metrics (attn (n_layers), mlp (n_layers), one pool;
 * higher = more important) are dropped in s; order (k) and scores
 * (k × 2 n_layers, may be NULL) as in hr_prune_plan_sublayers. */
hr_status hr_prune_joint_drop(const hr_model *m, const float *attn, const float *mlp, int k, hr_prune_spec *s,
                              int *order, double *scores);

#endif
