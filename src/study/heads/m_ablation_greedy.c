/* ablation_greedy: backward elimination by exact ablation.
 *
 * Single-head ablation scores every head against the full model, so it
 * misses how heads stand in for each other: after a few removals the
 * "unimportant" heads that remain may be the only ones left doing a job.
 * Greedy elimination re-scores after each round: sweep the remaining heads
 * (with the removed ones gated off), remove the ~5 % whose removal costs the
 * least loss, repeat. A head's score is when it went: the removal order,
 * scaled to [0, 1] (0 = removed first); the heads still there when a tenth
 * remain are ordered by their last sweep. Pruning "lowest first" by this
 * score removes exactly the greedy sets, at any budget.
 *
 * Cost: about 10 ablation sweeps (sum over rounds of the remaining heads,
 * greedy_schedule). */
#include "study/heads/heads_internal.h"

#include <stdlib.h>

enum { ROUNDS = 20 };

typedef struct {
    double loss;
    size_t idx;
} cand;

static int by_loss(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->loss != y->loss) return x->loss < y->loss ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* The rounds of n_total heads: each sweeps the heads still alive and then
 * removes `step` of them (all the rest once no more than `stop` remain).
 * Returns the number of rounds and the sum of the heads swept. */
static int greedy_schedule(int n_total, int *step, int *stop, int64_t *swept) {
    *step = n_total / ROUNDS > 0 ? n_total / ROUNDS : 1;
    *stop = n_total / 10 > 1 ? n_total / 10 : 1;
    int rounds = 0;
    *swept = 0;
    for (int alive = n_total; alive > 0; alive -= alive > *stop ? *step : alive) *swept += alive, rounds++;
    return rounds;
}

/* Every round is a sweep (m_ablation.c) over the heads still alive; where
 * they sit is not known before, so each is counted at the model's mean
 * depth (an approximation; the logit rows are exact). */
static void greedy_cost(const hr_lab *lab, lab_cost *out) {
    int n_total = lab_n_heads(lab), step, stop;
    int64_t swept = 0;
    int rounds = n_total ? greedy_schedule(n_total, &step, &stop, &swept) : 0;
    double NW = (double)lab->n_windows * lab->W, depth = n_total ? lab_heads_depth(lab) / n_total : 0;
    out->work = (hr_heads_work){NW * (rounds + (double)swept * depth) + (lab->p.mean_ablation ? NW * rounds : 0), 0,
                                NW * (rounds + (double)swept), 0};
    out->items = swept * lab->n_windows;
    out->exact = false;
}

static hr_status greedy_compute(hr_lab *lab, int method, double *scores) {
    (void)method;
    size_t lh = (size_t)lab->L * lab->H;
    int n_total = lab_n_heads(lab);
    if (n_total == 0) return HR_OK;
    int step, stop;
    /* Progress units: one per head ablated per window, over every round. */
    int64_t total;
    greedy_schedule(n_total, &step, &stop, &total);
    total *= lab->n_windows;
    float *alive = malloc(lh * sizeof(float));
    double *loss = malloc(lh * sizeof(double)), *kl = malloc(lh * sizeof(double));
    cand *c = malloc((size_t)n_total * sizeof(cand));
    hr_status st = alive && loss && kl && c ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory for greedy ablation");
    for (size_t i = 0; alive && i < lh; i++) alive[i] = 1.0f;
    int64_t done = 0;
    int n_alive = n_total, order = 0;
    while (st == HR_OK && n_alive > 0) {
        for (size_t i = 0; i < lh; i++) loss[i] = kl[i] = 0;
        st = lab_ablation_sweep(lab, alive, loss, kl, &done, total);
        if (st != HR_OK) break;
        int n = 0;
        for (int l = 0; l < lab->L; l++)
            for (int h = 0; h < lab->c->n_head[l]; h++) {
                size_t i = lab_idx(lab, l, h);
                if (alive[i] != 0) c[n++] = (cand){loss[i], i};
            }
        qsort(c, (size_t)n, sizeof *c, by_loss);
        int take = n_alive > stop ? step : n_alive; /* the last round orders all the rest */
        for (int k = 0; k < take; k++) {
            scores[c[k].idx] = n_total > 1 ? (double)order / (n_total - 1) : 0.0;
            order++;
            alive[c[k].idx] = 0.0f;
        }
        n_alive -= take;
    }
    free(alive), free(loss), free(kl), free(c);
    return st;
}

const hr_head_method hr_method_ablation_greedy = {
    {"ablation_greedy", "ablation: greedy elimination",
     "backward elimination with exact ablation re-scored after each round, as in the iterative pruning of "
     "Michel et al. 2019 (Sec. 4) with exact loss instead of the gradient proxy",
     "rounds: ablate every remaining head (removed heads gated off), remove the ~5 % (n_heads/20) with the "
     "smallest loss increase; score = removal order / (n_heads - 1); the last tenth ordered by their final sweep",
     "choosing which heads to prune when many go: it sees heads that stand in for each other, which "
     "single-head ablation does not; about 10 sweeps of cost",
     "more important", true},
    LAB_INPUT_NONE,
    NULL,
    greedy_compute,
    {"greedy elimination", "head ablations", greedy_cost}};
