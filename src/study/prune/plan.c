/* The pruning planner: scores + budget -> spec (see prune.h). */
#include "headroom/prune.h"
#include "study/prune/surgery_internal.h"
#include "model/config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Unknown scores count as most important, so they go last. */
static double score_of(float x) { return isnan(x) ? 1e30 : (double)x; }

typedef struct {
    double score;
    int layer, index;
} unit;

static int unit_cmp(const void *a, const void *b) {
    const unit *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? -1 : 1;
    if (x->layer != y->layer) return x->layer - y->layer;
    return x->index - y->index;
}

/* Splits n over layers in proportion to weight[l], never above cap[l]
 * (largest remainders first, overflow re-spread). q must sum to n, which
 * the caller has checked against the caps. */
static void split_by_weight(int L, const double *weight, const int64_t *cap, int64_t n, int64_t *q) {
    memset(q, 0, sizeof(int64_t) * (size_t)L);
    int64_t left = n;
    for (int round = 0; left > 0 && round < 64; round++) {
        double wsum = 0;
        for (int l = 0; l < L; l++)
            if (q[l] < cap[l]) wsum += weight[l];
        if (wsum <= 0) break;
        int64_t given = 0;
        for (int l = 0; l < L; l++) {
            if (q[l] >= cap[l]) continue;
            int64_t add = (int64_t)floor((double)left * weight[l] / wsum);
            if (add > cap[l] - q[l]) add = cap[l] - q[l];
            q[l] += add;
            given += add;
        }
        left -= given;
        if (given == 0) break;
    }
    /* the remainder one at a time, to the layer with room furthest below its
     * share n * w / W: equal weights then spread it one per layer instead of
     * piling it on the first one */
    double wall = 0;
    for (int l = 0; l < L; l++) wall += weight[l];
    while (left > 0) {
        int best = -1;
        double best_gap = 0;
        for (int l = 0; l < L; l++) {
            if (q[l] >= cap[l]) continue;
            double gap = (wall > 0 ? (double)n * weight[l] / wall : 0.0) - (double)q[l];
            if (best < 0 || gap > best_gap) best = l, best_gap = gap;
        }
        if (best < 0) break;
        q[best]++;
        left--;
    }
}

/* Per-layer quotas of n removals among units (n_units) under caps. */
static hr_status quotas(int L, const unit *units, size_t n_units, const int64_t *size, const int64_t *cap,
                        const float *layer_imp, int64_t n, hr_prune_budget budget, int64_t *q) {
    double *weight = malloc(sizeof(double) * (size_t)L);
    if (!weight) return hr_err(HR_ERR_NOMEM, "out of memory");
    if (budget == HR_BUDGET_GLOBAL) {
        memset(q, 0, sizeof(int64_t) * (size_t)L);
        int64_t left = n;
        for (size_t i = 0; i < n_units && left > 0; i++) {
            int l = units[i].layer;
            if (q[l] < cap[l]) q[l]++, left--;
        }
    } else {
        for (int l = 0; l < L; l++) {
            weight[l] = (double)size[l];
            if (budget == HR_BUDGET_CFSP) {
                if (!layer_imp) {
                    free(weight);
                    return hr_err(HR_ERR_INVALID_ARG, "the cfsp budget needs layer importances");
                }
                double imp = isnan(layer_imp[l]) ? 1.0 : fabs((double)layer_imp[l]);
                weight[l] /= imp + 1e-6;
            }
        }
        split_by_weight(L, weight, cap, n, q);
    }
    free(weight);
    return HR_OK;
}

/* Best even shape (k groups of c heads) for removing about q of layer l's
 * kept heads; marks the rest removed. sc: (n_head) scores. */
static void select_even(const hr_config *c, hr_prune_spec *s, int l, const float *sc, int64_t q) {
    int nh = c->n_head[l], nkv = c->n_head_kv[l], g = nh / nkv, kept = 0;
    for (int h = 0; h < nh; h++) kept += s->keep_head[l][h] != 0;
    /* per group: kept heads sorted by descending score */
    int order[1024];
    double gsum[1024], prefix[1024];
    int best_k = 0, best_c = 0;
    double best_diff = INFINITY, best_keep = -INFINITY;
    for (int cc = 1; cc <= g; cc++) {
        int n_ok = 0;
        for (int k = 0; k < nkv; k++) {
            int n = 0;
            for (int i = 0; i < g; i++)
                if (s->keep_head[l][k * g + i]) order[n++] = k * g + i;
            for (int i = 1; i < n; i++)
                for (int j = i; j > 0 && score_of(sc[order[j]]) > score_of(sc[order[j - 1]]); j--) {
                    int t = order[j];
                    order[j] = order[j - 1];
                    order[j - 1] = t;
                }
            if (n < cc) continue;
            double sum = 0;
            for (int i = 0; i < cc; i++) sum += fmin(score_of(sc[order[i]]), 1e6);
            gsum[n_ok++] = sum;
        }
        for (int i = 1; i < n_ok; i++)
            for (int j = i; j > 0 && gsum[j] > gsum[j - 1]; j--) {
                double t = gsum[j];
                gsum[j] = gsum[j - 1];
                gsum[j - 1] = t;
            }
        prefix[0] = 0;
        for (int k = 1; k <= n_ok; k++) {
            prefix[k] = prefix[k - 1] + gsum[k - 1];
            double diff = fabs((double)(kept - k * cc) - (double)q);
            if (diff < best_diff || (diff == best_diff && prefix[k] > best_keep))
                best_diff = diff, best_keep = prefix[k], best_k = k, best_c = cc;
        }
    }
    /* apply: the best_k groups with the largest top-best_c score sums */
    double tops[1024];
    int gid[1024], n_ok = 0;
    for (int k = 0; k < nkv; k++) {
        int n = 0;
        for (int i = 0; i < g; i++)
            if (s->keep_head[l][k * g + i]) order[n++] = k * g + i;
        for (int i = 1; i < n; i++)
            for (int j = i; j > 0 && score_of(sc[order[j]]) > score_of(sc[order[j - 1]]); j--) {
                int t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
        double sum = 0;
        for (int i = 0; i < best_c && i < n; i++) sum += fmin(score_of(sc[order[i]]), 1e6);
        if (n >= best_c) tops[n_ok] = sum, gid[n_ok++] = k;
        for (int i = best_c; i < n; i++) s->keep_head[l][order[i]] = 0; /* beyond the top c */
    }
    for (int i = 1; i < n_ok; i++)
        for (int j = i; j > 0 && tops[j] > tops[j - 1]; j--) {
            double t = tops[j];
            tops[j] = tops[j - 1];
            tops[j - 1] = t;
            int u = gid[j];
            gid[j] = gid[j - 1];
            gid[j - 1] = u;
        }
    for (int k = 0; k < nkv; k++) {
        bool chosen = false;
        for (int i = 0; i < best_k && i < n_ok; i++) chosen |= gid[i] == k;
        if (!chosen)
            for (int i = 0; i < g; i++) s->keep_head[l][k * g + i] = 0;
    }
}

/* Removes the q lowest-scored kept units of a layer (keep: n flags). */
static void select_lowest(uint8_t *keep, int n, const float *sc, int64_t q) {
    for (int64_t r = 0; r < q; r++) {
        int worst = -1;
        for (int i = 0; i < n; i++)
            if (keep[i] && (worst < 0 || score_of(sc[i]) < score_of(sc[worst]))) worst = i;
        if (worst < 0) return;
        keep[worst] = 0;
    }
}

static int count_kept(const uint8_t *keep, int n) {
    int k = 0;
    for (int i = 0; i < n; i++) k += keep[i] != 0;
    return k;
}

/* Collects the kept units of the layers taking part, sorted by score. */
static unit *collect_units(const hr_prune_spec *s, int L, const int *n, const float *const *sc, bool heads,
                           size_t *n_units) {
    size_t total = 0;
    for (int l = 0; l < L; l++) total += (size_t)n[l];
    unit *u = malloc(sizeof(unit) * (total + 1));
    if (!u) return NULL;
    size_t k = 0;
    for (int l = 0; l < L; l++) {
        const uint8_t *keep = heads ? s->keep_head[l] : s->keep_ff[l];
        for (int i = 0; i < n[l]; i++)
            if (keep[i]) u[k++] = (unit){score_of(sc[l][i]), l, i};
    }
    qsort(u, k, sizeof(unit), unit_cmp);
    *n_units = k;
    return u;
}

typedef struct {
    int L;
    int n[HR_MAX_LAYERS];            /* units per layer (0 = layer not taking part) */
    const float *sc[HR_MAX_LAYERS];  /* (n[l]) scores */
    int64_t size[HR_MAX_LAYERS], cap[HR_MAX_LAYERS], q[HR_MAX_LAYERS];
} plan_job;

static hr_status plan_common(hr_prune_spec *s, plan_job *j, bool heads, const float *layer_imp, int64_t n_remove,
                             hr_prune_budget budget) {
    int64_t total_cap = 0;
    for (int l = 0; l < j->L; l++) {
        const uint8_t *keep = heads ? s->keep_head[l] : s->keep_ff[l];
        j->size[l] = j->n[l] ? count_kept(keep, j->n[l]) : 0;
        j->cap[l] = j->size[l] > 0 ? j->size[l] - 1 : 0;
        total_cap += j->cap[l];
    }
    const char *what = heads ? "heads" : "MLP neurons";
    if (n_remove < 0) return hr_err(HR_ERR_RANGE, "cannot remove a negative number of %s", what);
    if (n_remove > total_cap)
        return hr_err(HR_ERR_RANGE,
                      "removing %lld %s would empty a layer: at most %lld can go while every layer keeps one "
                      "(drop sublayers or blocks explicitly instead)", (long long)n_remove, what, (long long)total_cap);
    size_t n_units = 0;
    unit *u = collect_units(s, j->L, j->n, j->sc, heads, &n_units);
    if (!u) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_status st = quotas(j->L, u, n_units, j->size, j->cap, layer_imp, n_remove, budget, j->q);
    free(u);
    return st;
}

hr_status hr_prune_plan_heads(const hr_model *m, const float *scores, const float *layer_imp, int n_remove,
                              hr_prune_budget budget, hr_prune_spec *s, int *removed) {
    const hr_config *c = &m->cfg;
    if (!s || s->n_layers != c->n_layers) return hr_err(HR_ERR_INVALID_ARG, "pruning spec does not match the model");
    int mh = hr_config_max_heads(c);
    plan_job *j = calloc(1, sizeof *j);
    if (!j) return hr_err(HR_ERR_NOMEM, "out of memory");
    j->L = c->n_layers;
    int before = 0;
    for (int l = 0; l < c->n_layers; l++) {
        bool part = !s->drop_block[l] && !s->drop_attn[l] && c->n_head[l] > 0;
        j->n[l] = part ? c->n_head[l] : 0;
        j->sc[l] = scores + (size_t)l * mh;
        if (part) before += count_kept(s->keep_head[l], c->n_head[l]);
    }
    hr_status st = plan_common(s, j, true, layer_imp, n_remove, budget);
    int after = 0;
    for (int l = 0; st == HR_OK && l < c->n_layers; l++) {
        if (!j->n[l]) continue;
        bool grouped = c->n_head_kv[l] < c->n_head[l];
        if (grouped && !s->uneven_duplicate) select_even(c, s, l, j->sc[l], j->q[l]);
        else select_lowest(s->keep_head[l], c->n_head[l], j->sc[l], j->q[l]);
        after += count_kept(s->keep_head[l], c->n_head[l]);
    }
    free(j);
    if (st == HR_OK && removed) *removed = before - after;
    return st;
}

hr_status hr_prune_plan_ff(const hr_model *m, const float *const *scores, const float *layer_imp, int64_t n_remove,
                           hr_prune_budget budget, hr_prune_spec *s, int64_t *removed) {
    const hr_config *c = &m->cfg;
    if (!s || s->n_layers != c->n_layers) return hr_err(HR_ERR_INVALID_ARG, "pruning spec does not match the model");
    plan_job *j = calloc(1, sizeof *j);
    if (!j) return hr_err(HR_ERR_NOMEM, "out of memory");
    j->L = c->n_layers;
    for (int l = 0; l < c->n_layers; l++) {
        bool part = !s->drop_block[l] && !s->drop_mlp[l] && c->n_ff[l] > 0;
        j->n[l] = part ? c->n_ff[l] : 0;
        j->sc[l] = scores[l];
    }
    hr_status st = plan_common(s, j, false, layer_imp, n_remove, budget);
    int64_t total = 0;
    for (int l = 0; st == HR_OK && l < c->n_layers; l++) {
        if (!j->n[l]) continue;
        select_lowest(s->keep_ff[l], c->n_ff[l], j->sc[l], j->q[l]);
        total += j->q[l];
    }
    free(j);
    if (st == HR_OK && removed) *removed = total;
    return st;
}

hr_status hr_prune_plan_layers(const hr_model *m, const float *layer_scores, int k, hr_prune_part part,
                               hr_prune_spec *s) {
    int what = (int)part;
    const hr_config *c = &m->cfg;
    if (!s || s->n_layers != c->n_layers) return hr_err(HR_ERR_INVALID_ARG, "pruning spec does not match the model");
    if (what < 0 || what > 2) return hr_err(HR_ERR_INVALID_ARG, "unknown layer pruning kind %d", what);
    static const char *names[] = {"attention sublayers", "MLP sublayers", "blocks"};
    int avail = 0;
    for (int l = 0; l < c->n_layers; l++) {
        bool gone = s->drop_block[l] || (what == 0 && (s->drop_attn[l] || c->n_head[l] == 0)) ||
                    (what == 1 && (s->drop_mlp[l] || c->n_ff[l] == 0));
        avail += !gone;
    }
    if (k < 0 || k > avail || (what == 2 && k >= avail))
        return hr_err(HR_ERR_RANGE, "cannot drop %d %s: %d remain%s", k, names[what], avail,
                      what == 2 ? " and at least one block must stay" : "");
    for (int r = 0; r < k; r++) {
        int worst = -1;
        for (int l = 0; l < c->n_layers; l++) {
            bool gone = s->drop_block[l] || (what == 0 && (s->drop_attn[l] || c->n_head[l] == 0)) ||
                        (what == 1 && (s->drop_mlp[l] || c->n_ff[l] == 0));
            if (!gone && (worst < 0 || score_of(layer_scores[l]) < score_of(layer_scores[worst]))) worst = l;
        }
        if (what == 0) s->drop_attn[worst] = true;
        else if (what == 1) s->drop_mlp[worst] = true;
        else s->drop_block[worst] = true;
    }
    return HR_OK;
}
