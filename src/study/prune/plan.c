/* The pruning planner: scores + budget -> spec (see prune.h). */
#include "headroom/prune.h"
#include "study/prune/surgery_internal.h"
#include "model/config.h"

#include <math.h>
#include <stdio.h>
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
    int n[HR_MAX_LAYERS];           /* units per layer (0 = layer not taking part) */
    const float *sc[HR_MAX_LAYERS]; /* (n[l]) scores */
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
                      "(drop sublayers or blocks explicitly instead)",
                      (long long)n_remove, what, (long long)total_cap);
    size_t n_units = 0;
    unit *u = collect_units(s, j->L, j->n, j->sc, heads, &n_units);
    if (!u) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_status st = quotas(j->L, u, n_units, j->size, j->cap, layer_imp, n_remove, budget, j->q);
    free(u);
    return st;
}

hr_prune_plan_params hr_prune_plan_default_params(void) {
    hr_prune_plan_params p = {HR_BUDGET_GLOBAL, false, false};
    return p;
}

/* A score as it enters sums: unknown scores count as most important but
 * not so much that they swamp the others' precision. */
static double unit_score(float x) { return fmin(score_of(x), 1e6); }

/* One way a layer can lose units: r of them, keeping `keep` (the sum of
 * the kept units' scores); in a GQA-even layer by keeping k groups of c
 * query heads (k = 0: the r lowest-scored units go). */
typedef struct {
    int64_t r;
    double keep;
    int k, c;
} option;

/* Kept heads of each KV group of layer l, best first: order (n_kv, g),
 * cnt (n_kv) how many each group keeps. */
static void group_orders(const hr_config *c, const hr_prune_spec *s, int l, const float *sc, int *order, int *cnt) {
    int nkv = c->n_head_kv[l], g = c->n_head[l] / nkv;
    for (int k = 0; k < nkv; k++) {
        int *o = order + k * g, n = 0;
        for (int i = 0; i < g; i++)
            if (s->keep_head[l][k * g + i]) o[n++] = k * g + i;
        for (int i = 1; i < n; i++)
            for (int j = i; j > 0 && score_of(sc[o[j]]) > score_of(sc[o[j - 1]]); j--) {
                int t = o[j];
                o[j] = o[j - 1];
                o[j - 1] = t;
            }
        cnt[k] = n;
    }
}

/* Score of the top c kept heads of every group that keeps at least c:
 * tops (n_ok) best first, gid their groups. Returns n_ok. */
static int group_tops(int nkv, int g, const int *order, const int *cnt, const float *sc, int cc, double *tops,
                      int *gid) {
    int n_ok = 0;
    for (int k = 0; k < nkv; k++) {
        if (cnt[k] < cc) continue;
        double sum = 0;
        for (int i = 0; i < cc; i++) sum += unit_score(sc[order[k * g + i]]);
        tops[n_ok] = sum, gid[n_ok++] = k;
    }
    for (int i = 1; i < n_ok; i++) /* stable: equal sums keep group order */
        for (int j = i; j > 0 && tops[j] > tops[j - 1]; j--) {
            double t = tops[j];
            tops[j] = tops[j - 1], tops[j - 1] = t;
            int u = gid[j];
            gid[j] = gid[j - 1], gid[j - 1] = u;
        }
    return n_ok;
}

/* Every even shape (k groups of c heads) layer l can reach from what it
 * keeps now, with the best-scored groups and heads. out holds n_head
 * options at most; returns their number. */
static int even_options(const hr_config *c, const hr_prune_spec *s, int l, const float *sc, option *out) {
    int nkv = c->n_head_kv[l], g = c->n_head[l] / nkv, n = 0, size = count_kept(s->keep_head[l], c->n_head[l]);
    int order[HR_MAX_HEADS], cnt[HR_MAX_HEADS], gid[HR_MAX_HEADS];
    double tops[HR_MAX_HEADS];
    group_orders(c, s, l, sc, order, cnt);
    for (int cc = 1; cc <= g; cc++) {
        int n_ok = group_tops(nkv, g, order, cnt, sc, cc, tops, gid);
        double keep = 0;
        for (int k = 1; k <= n_ok; k++) {
            keep += tops[k - 1];
            out[n++] = (option){size - (int64_t)k * cc, keep, k, cc};
        }
    }
    return n;
}

/* Keeps the k groups with the best top-c sums and their top c heads. */
static void apply_shape(const hr_config *c, hr_prune_spec *s, int l, const float *sc, int k_keep, int cc) {
    int nkv = c->n_head_kv[l], g = c->n_head[l] / nkv;
    int order[HR_MAX_HEADS], cnt[HR_MAX_HEADS], gid[HR_MAX_HEADS];
    double tops[HR_MAX_HEADS];
    group_orders(c, s, l, sc, order, cnt);
    int n_ok = group_tops(nkv, g, order, cnt, sc, cc, tops, gid);
    for (int k = 0; k < nkv; k++) {
        bool chosen = false;
        for (int i = 0; i < k_keep && i < n_ok; i++) chosen |= gid[i] == k;
        for (int i = 0; i < cnt[k]; i++)
            if (!chosen || i >= cc) s->keep_head[l][order[k * g + i]] = 0;
    }
}

static int desc_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x > y ? -1 : x < y;
}

/* Options of a layer whose units may go one by one: r = 0 .. size-1, the
 * lowest-scored first. out holds n options. */
static int free_options(const uint8_t *keep, int n, const float *sc, option *out) {
    double *v = malloc(sizeof(double) * ((size_t)n + 1)); // (kept) scores, best first
    if (!v) return -1;
    int size = 0;
    for (int i = 0; i < n; i++)
        if (keep[i]) v[size++] = unit_score(sc[i]);
    qsort(v, (size_t)size, sizeof(double), desc_double);
    double total = 0;
    for (int i = 0; i < size; i++) total += v[i];
    for (int r = 0; r < size; r++) {
        out[r] = (option){r, total, 0, 0};
        total -= v[size - 1 - r];
    }
    free(v);
    return size;
}

/* "a, b or c" of up to 16 sorted distinct values (times mult). */
static void value_list(const int64_t *v, int n, int64_t mult, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < n && len + 24 < cap; i++) {
        if (i == 16) {
            snprintf(buf + len, cap - len, ", ...");
            return;
        }
        const char *sep = i == 0 ? "" : i == n - 1 ? " or " : ", ";
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", sep, (long long)(v[i] * mult));
    }
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorted distinct removal counts of an option list into r; returns how many. */
static int distinct_r(const option *o, int n, int64_t *r) {
    for (int i = 0; i < n; i++) r[i] = o[i].r;
    qsort(r, (size_t)n, sizeof *r, cmp_i64);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!m || r[i] != r[m - 1]) r[m++] = r[i];
    return m;
}

/* The reachable total nearest n: ties go to the larger; 0 only for n = 0. */
static int64_t nearest_total(const uint8_t *reach, int64_t max, int64_t n) {
    if (n == 0) return 0;
    for (int64_t d = 0; d <= max + n; d++) {
        if (n + d <= max && reach[n + d]) return n + d;
        if (n - d >= 1 && n - d <= max && reach[n - d]) return n - d;
    }
    return -1;
}

/* Everything the exact search needs about the layers taking part. */
typedef struct {
    const hr_config *c;
    hr_prune_spec *s;
    bool heads;
    int P;                      /* layers taking part */
    int layer[HR_MAX_LAYERS];   /* their indices */
    option *opt[HR_MAX_LAYERS]; /* (n_opt[i]) per layer taking part */
    int n_opt[HR_MAX_LAYERS];
    bool even[HR_MAX_LAYERS]; /* options are GQA-even shapes */
    const float *sc[HR_MAX_LAYERS];
    const int64_t *q; /* per model layer: the budget's quota */
    bool deviation;   /* minimise sum |r - q| before maximising the score kept */
} search;

static void search_free(search *x) {
    for (int i = 0; i < x->P; i++) free(x->opt[i]);
}

/* Reachable totals 0..max: reach (max + 1). */
static bool reachable(const search *x, int64_t max, uint8_t *reach) {
    uint8_t *next = calloc((size_t)max + 1, 1);
    if (!next) return false;
    memset(reach, 0, (size_t)max + 1);
    reach[0] = 1;
    for (int i = 0; i < x->P; i++) {
        memset(next, 0, (size_t)max + 1);
        for (int64_t t = 0; t <= max; t++)
            if (reach[t])
                for (int o = 0; o < x->n_opt[i]; o++)
                    if (t + x->opt[i][o].r <= max) next[t + x->opt[i][o].r] = 1;
        memcpy(reach, next, (size_t)max + 1);
    }
    free(next);
    return true;
}

/* Dynamic programme over the layers: one option per layer, removals
 * summing to T, lexicographically best (deviation from the quotas when
 * asked, then the most score kept). choice[i] receives layer i's option. */
static hr_status best_combination(const search *x, int64_t T, int *choice) {
    size_t W = (size_t)T + 1;
    if ((size_t)x->P * W > ((size_t)1 << 26))
        return hr_err(HR_ERR_RANGE, "the model is too large to plan even GQA groups exactly (%d layers, %lld units)",
                      x->P, (long long)T);
    double *dev = malloc(sizeof(double) * W), *keep = malloc(sizeof(double) * W);   // (T+1) best so far
    double *ndev = malloc(sizeof(double) * W), *nkeep = malloc(sizeof(double) * W); // (T+1) next layer
    int *pick = malloc(sizeof(int) * W * (size_t)(x->P ? x->P : 1));                // (P, T+1) option chosen
    hr_status st = dev && keep && ndev && nkeep && pick ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory");
    for (size_t t = 0; st == HR_OK && t < W; t++) dev[t] = t ? INFINITY : 0, keep[t] = 0;
    for (int i = 0; st == HR_OK && i < x->P; i++) {
        int *pk = pick + (size_t)i * W;
        int64_t q = x->q[x->layer[i]];
        for (size_t t = 0; t < W; t++) ndev[t] = INFINITY, nkeep[t] = -INFINITY, pk[t] = -1;
        for (size_t t = 0; t < W; t++) {
            if (dev[t] == INFINITY) continue;
            for (int o = 0; o < x->n_opt[i]; o++) {
                const option *op = &x->opt[i][o];
                size_t u = t + (size_t)op->r;
                if (u >= W) continue;
                double d = dev[t] + (x->deviation ? (double)llabs(op->r - q) : 0.0), k = keep[t] + op->keep;
                if (d < ndev[u] || (d == ndev[u] && k > nkeep[u])) ndev[u] = d, nkeep[u] = k, pk[u] = o;
            }
        }
        memcpy(dev, ndev, sizeof(double) * W);
        memcpy(keep, nkeep, sizeof(double) * W);
    }
    if (st == HR_OK && dev[T] == INFINITY)
        st = hr_err(HR_ERR_RANGE, "no combination of layer shapes removes %lld", (long long)T);
    for (int i = x->P - 1, t = (int)T; st == HR_OK && i >= 0; i--) {
        choice[i] = pick[(size_t)i * W + (size_t)t];
        t -= (int)x->opt[i][choice[i]].r;
    }
    free(dev), free(keep), free(ndev), free(nkeep), free(pick);
    return st;
}

static void apply_option(search *x, int i, const option *o) {
    int l = x->layer[i];
    if (x->even[i]) apply_shape(x->c, x->s, l, x->sc[i], o->k, o->c);
    else if (x->heads) select_lowest(x->s->keep_head[l], x->c->n_head[l], x->sc[i], o->r);
    else select_lowest(x->s->keep_ff[l], x->c->n_ff[l], x->sc[i], o->r);
}

/* Why the total differs from the request: what constrains it. */
static void explain(const search *x, bool uniform, const int64_t *totals, int n_totals, int64_t got, char *buf,
                    size_t cap) {
    char list[256];
    const char *units = x->heads ? "heads" : "neurons";
    int first_even = -1;
    for (int i = 0; i < x->P && first_even < 0; i++)
        if (x->even[i]) first_even = i;
    if (uniform) {
        value_list(totals, n_totals, 1, list, sizeof list);
        snprintf(buf, cap,
                 "every one of the %d layers loses the same number%s, so the total can be %s; %lld is the nearest",
                 x->P, first_even >= 0 ? " and keeps its GQA groups even" : "", list, (long long)got);
        return;
    }
    int l = x->layer[first_even];
    int64_t r[HR_MAX_HEADS];
    int m = distinct_r(x->opt[first_even], x->n_opt[first_even], r);
    value_list(r, m, 1, list, sizeof list);
    snprintf(buf, cap,
             "GQA groups stay even (%d query heads per KV head), so a layer of %d %s can lose only %s of "
             "them; %lld is the nearest total that can go",
             x->c->n_head[l] / x->c->n_head_kv[l], x->c->n_head[l], units, list, (long long)got);
}

/* Uniform: one count (and, in GQA-even layers, one shape) for every layer. */
static hr_status plan_uniform(search *x, int64_t n, bool strict, hr_prune_plan_result *out) {
    /* option o must be the same shape in every layer */
    for (int i = 1; i < x->P; i++) {
        bool same = x->n_opt[i] == x->n_opt[0] && x->even[i] == x->even[0];
        for (int o = 0; same && o < x->n_opt[0]; o++)
            same = x->opt[i][o].r == x->opt[0][o].r && x->opt[i][o].k == x->opt[0][o].k &&
                   x->opt[i][o].c == x->opt[0][o].c;
        if (!same)
            return hr_err(HR_ERR_INVALID_ARG,
                          "uniform pruning needs the layers taking part to have the same shape "
                          "(layer %d differs from layer %d)",
                          x->layer[i], x->layer[0]);
    }
    int n_o = x->n_opt[0], best = -1;
    int64_t *totals = malloc(sizeof(int64_t) * ((size_t)n_o + 1)); // (n_t) distinct totals, ascending
    if (!totals) return hr_err(HR_ERR_NOMEM, "out of memory");
    int n_t = distinct_r(x->opt[0], n_o, totals);
    for (int t = 0; t < n_t; t++) totals[t] *= x->P;
    int64_t max = n_t ? totals[n_t - 1] : 0;
    uint8_t *reach = calloc((size_t)max + 1, 1);
    if (!reach) {
        free(totals);
        return hr_err(HR_ERR_NOMEM, "out of memory");
    }
    for (int t = 0; t < n_t; t++) reach[totals[t]] = 1;
    int64_t got = nearest_total(reach, max, n);
    free(reach);
    double best_keep = -INFINITY;
    for (int o = 0; got >= 0 && o < n_o; o++) {
        double keep = 0;
        for (int i = 0; i < x->P; i++) keep += x->opt[i][o].keep;
        if (x->opt[0][o].r * x->P == got && keep > best_keep) best = o, best_keep = keep;
    }
    if (got != n && got >= 0) explain(x, true, totals, n_t, got, out->reason, sizeof out->reason);
    if (got != n && (got < 0 || strict)) {
        char list[256];
        value_list(totals, n_t, 1, list, sizeof list);
        free(totals);
        return hr_err(HR_ERR_RANGE,
                      "cannot remove exactly %lld %s: every one of the %d layers loses the same number, "
                      "so the total can be %s",
                      (long long)n, x->heads ? "heads" : "neurons", x->P, list);
    }
    free(totals);
    for (int i = 0; i < x->P; i++) apply_option(x, i, &x->opt[i][best]);
    out->removed = got;
    return HR_OK;
}

/* Per layer, every option; the exact total when one is reachable. */
static hr_status plan_exact(search *x, int64_t n, int64_t total_cap, bool strict, hr_prune_plan_result *out) {
    uint8_t *reach = malloc((size_t)total_cap + 1);
    if (!reach || !reachable(x, total_cap, reach)) {
        free(reach);
        return hr_err(HR_ERR_NOMEM, "out of memory");
    }
    int64_t got = nearest_total(reach, total_cap, n);
    free(reach);
    if (got < 0)
        return hr_err(HR_ERR_RANGE, "no even group shapes remove %lld %s", (long long)n,
                      x->heads ? "heads" : "neurons");
    if (got != n) {
        explain(x, false, NULL, 0, got, out->reason, sizeof out->reason);
        if (strict)
            return hr_err(HR_ERR_RANGE, "cannot remove exactly %lld %s: %s", (long long)n,
                          x->heads ? "heads" : "neurons", out->reason);
    }
    int *choice = malloc(sizeof(int) * (size_t)(x->P ? x->P : 1));
    if (!choice) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_status st = best_combination(x, got, choice);
    for (int i = 0; st == HR_OK && i < x->P; i++) apply_option(x, i, &x->opt[i][choice[i]]);
    free(choice);
    if (st == HR_OK) out->removed = got;
    return st;
}

/* The common end of both planners: quotas are in j->q (plan_common);
 * layers whose units go freely and need no exact search take their quota's
 * lowest-scored units (the quotas sum to the request), the others go
 * through the exact search. */
static hr_status plan_units(hr_prune_spec *s, const hr_config *c, plan_job *j, bool heads, int64_t n_remove,
                            const hr_prune_plan_params *p, int64_t total_cap, hr_prune_plan_result *out) {
    search *x = calloc(1, sizeof *x);
    if (!x) return hr_err(HR_ERR_NOMEM, "out of memory");
    *x = (search){.c = c, .s = s, .heads = heads, .q = j->q, .deviation = p->budget != HR_BUDGET_GLOBAL};
    bool any_even = false;
    hr_status st = HR_OK;
    for (int l = 0; l < j->L && st == HR_OK; l++) {
        if (!j->n[l]) continue;
        int i = x->P++;
        x->layer[i] = l;
        x->sc[i] = j->sc[l];
        x->even[i] = heads && c->n_head_kv[l] < c->n_head[l] && !s->uneven_duplicate;
        any_even |= x->even[i];
        x->opt[i] = malloc(sizeof(option) * ((size_t)j->n[l] + 1));
        if (!x->opt[i]) st = hr_err(HR_ERR_NOMEM, "out of memory");
        else if (x->even[i]) x->n_opt[i] = even_options(c, s, l, j->sc[l], x->opt[i]);
        else x->n_opt[i] = free_options(heads ? s->keep_head[l] : s->keep_ff[l], j->n[l], j->sc[l], x->opt[i]);
        if (st == HR_OK && x->n_opt[i] < 0) st = hr_err(HR_ERR_NOMEM, "out of memory");
    }
    out->requested = n_remove;
    out->removed = 0;
    out->reason[0] = 0;
    if (st == HR_OK && n_remove > 0) {
        if (p->uniform) st = plan_uniform(x, n_remove, p->strict, out);
        else if (any_even) st = plan_exact(x, n_remove, total_cap, p->strict, out);
        else {
            for (int i = 0; i < x->P; i++)
                select_lowest(heads ? s->keep_head[x->layer[i]] : s->keep_ff[x->layer[i]], j->n[x->layer[i]],
                              j->sc[x->layer[i]], j->q[x->layer[i]]);
            out->removed = n_remove;
        }
    }
    search_free(x);
    free(x);
    return st;
}

static hr_status plan_part(const hr_model *m, hr_prune_spec *s, bool heads, const float *const *scores,
                           const float *layer_imp, int64_t n_remove, const hr_prune_plan_params *p,
                           hr_prune_plan_result *out) {
    const hr_config *c = &m->cfg;
    hr_prune_plan_params dp = hr_prune_plan_default_params();
    hr_prune_plan_result dr;
    if (!p) p = &dp;
    if (!out) out = &dr;
    if (!s || s->n_layers != c->n_layers) return hr_err(HR_ERR_INVALID_ARG, "pruning spec does not match the model");
    plan_job *j = calloc(1, sizeof *j);
    if (!j) return hr_err(HR_ERR_NOMEM, "out of memory");
    j->L = c->n_layers;
    for (int l = 0; l < c->n_layers; l++) {
        bool part = heads ? !s->drop_block[l] && !s->drop_attn[l] && c->n_head[l] > 0
                          : !s->drop_block[l] && !s->drop_mlp[l] && c->n_ff[l] > 0;
        j->n[l] = part ? (heads ? c->n_head[l] : c->n_ff[l]) : 0;
        j->sc[l] = scores[l];
    }
    hr_status st = plan_common(s, j, heads, layer_imp, n_remove, p->budget);
    int64_t total_cap = 0;
    for (int l = 0; l < j->L; l++) total_cap += j->cap[l];
    if (st == HR_OK) st = plan_units(s, c, j, heads, n_remove, p, total_cap, out);
    free(j);
    return st;
}

hr_status hr_prune_plan_heads(const hr_model *m, const float *scores, const float *layer_imp, int64_t n_remove,
                              const hr_prune_plan_params *p, hr_prune_spec *s, hr_prune_plan_result *out) {
    const hr_config *c = &m->cfg;
    const float *rows[HR_MAX_LAYERS];
    int mh = hr_config_max_heads(c);
    for (int l = 0; l < c->n_layers; l++) rows[l] = scores + (size_t)l * mh;
    return plan_part(m, s, true, rows, layer_imp, n_remove, p, out);
}

hr_status hr_prune_plan_ff(const hr_model *m, const float *const *scores, const float *layer_imp, int64_t n_remove,
                           const hr_prune_plan_params *p, hr_prune_spec *s, hr_prune_plan_result *out) {
    return plan_part(m, s, false, scores, layer_imp, n_remove, p, out);
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
