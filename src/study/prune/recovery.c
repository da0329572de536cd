/* CFSP's recovery budget (see headroom/prune.h): LoRA ranks per layer in
 * proportion to block importance, the integer allocation nearest the
 * proportional quotas. */
#include "headroom/prune.h"
#include "headroom/study.h"
#include "core/internal.h"
#include "model/config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Change of |r - q| when r moves by d (+1 or -1). */
static double step_cost(int r, double q, int d) { return fabs(r + d - q) - fabs(r - q); }

hr_status hr_prune_recovery_ranks(const float *imp, int n_layers, int64_t total, int max_rank, int *ranks) {
    if (!imp || !ranks || n_layers < 1) return hr_err(HR_ERR_INVALID_ARG, "no importances or ranks given");
    if (max_rank < 1 || total < n_layers || total > (int64_t)n_layers * max_rank)
        return hr_err(HR_ERR_RANGE, "a recovery budget of %lld ranks cannot give %d layers 1..%d each",
                      (long long)total, n_layers, max_rank);
    double sum = 0;
    for (int l = 0; l < n_layers; l++) {
        if (!(imp[l] >= 0) || !isfinite(imp[l]))
            return hr_err(HR_ERR_RANGE, "layer %d's importance %g is not a finite number >= 0", l, imp[l]);
        sum += imp[l];
    }
    double *q = malloc(sizeof(double) * (size_t)n_layers); // (n_layers) quotas
    if (!q) return hr_err(HR_ERR_NOMEM, "out of memory");
    int64_t have = 0;
    for (int l = 0; l < n_layers; l++) {
        q[l] = sum > 0 ? (double)total * imp[l] / sum : (double)total / n_layers;
        int r = (int)floor(q[l]);
        ranks[l] = r < 1 ? 1 : r > max_rank ? max_rank : r;
        have += ranks[l];
    }
    /* |r - q| is convex in r, so moving one unit at a time where it costs
     * least reaches the minimum of the sum (ties: the lowest layer) */
    while (have != total) {
        int d = have < total ? 1 : -1, best = -1;
        double bc = INFINITY;
        for (int l = 0; l < n_layers; l++) {
            if ((d > 0 && ranks[l] >= max_rank) || (d < 0 && ranks[l] <= 1)) continue;
            double cst = step_cost(ranks[l], q[l], d);
            if (cst < bc - 1e-12) bc = cst, best = l;
        }
        ranks[best] += d, have += d;
    }
    free(q);
    return HR_OK;
}

hr_status hr_prune_cfsp_recovery(hr_context *ctx, const int32_t *tokens, size_t n_tokens, int window, int rank,
                                 int max_rank, int *ranks, float *imp) {
    if (!ctx || !tokens || !ranks) return hr_err(HR_ERR_INVALID_ARG, "no context, tokens or ranks given");
    const hr_config *c = hr_model_config(hr_context_model(ctx));
    if (rank < 1) return hr_err(HR_ERR_RANGE, "recovery LoRA rank must be >= 1 (got %d)", rank);
    int cap = max_rank > 0 ? max_rank : 2 * rank;
    for (int l = 0; l < c->n_layers; l++) {
        int dims[4] = {c->dim, c->n_head[l] * c->head_dim, c->n_head_kv[l] * c->head_dim, c->n_ff[l]};
        for (int i = 0; i < 4; i++)
            if (dims[i] > 0 && dims[i] < cap) cap = dims[i];
    }
    if (cap < rank)
        return hr_err(HR_ERR_RANGE, "LoRA rank %d is larger than the model's matrices allow (%d)", rank, cap);
    float *b = malloc(sizeof(float) * (size_t)c->n_layers); // (n_layers) block influence
    if (!b) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_status st = hr_prune_layer_importance(ctx, tokens, n_tokens, window, b, NULL, NULL);
    if (st == HR_OK) st = hr_prune_recovery_ranks(b, c->n_layers, (int64_t)rank * c->n_layers, cap, ranks);
    if (st == HR_OK && imp) memcpy(imp, b, sizeof(float) * (size_t)c->n_layers);
    free(b);
    return st;
}
