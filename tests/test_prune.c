/* Structured pruning: surgery is exact (equals gating / masking /
 * skipping), the planner respects budgets and GQA groups, bad specs fail. */
#include "check.h"
#include "headroom/context.h"
#include "headroom/save.h"
#include "headroom/prune.h"
#include "headroom/study.h"
#include "headroom/tokenizer.h"
#include "study/prune/surgery_internal.h"
#include "model/model_internal.h"
#include "model_util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MODEL SHARED("models/stories260K/stories260K.bin")

static const int32_t k_tokens[] = {1,   403, 407, 261, 378, 429, 360, 365, 267, 265, 281, 304, 292, 412, 439, 259,
                                   284, 266, 292, 343, 261, 378, 429, 360, 370, 300, 322, 411, 290, 268, 407, 270};
enum { N_TOK = sizeof k_tokens / sizeof k_tokens[0] };

static hr_model *load_base(void) {
    hr_model *m = NULL;
    CHECK(hr_model_load(MODEL, &m) == HR_OK, "load: %s", hr_last_error());
    return m;
}

/* All-position logits of m on the fixed tokens, optionally with gates. */
static float *run_logits(const hr_model *m, const float *gates) {
    hr_context *ctx = NULL;
    hr_context_params p = hr_context_default_params();
    p.n_ctx = 64;
    p.n_threads = 1;
    if (hr_context_new(m, &p, &ctx) != HR_OK) return NULL;
    int V = hr_model_config(m)->vocab_size;
    float *lg = malloc(sizeof(float) * N_TOK * V);
    if (gates) hr_context_set_head_gates(ctx, gates);
    if (hr_forward(ctx, k_tokens, N_TOK, lg, true) != HR_OK) {
        free(lg);
        lg = NULL;
    }
    hr_context_free(ctx);
    return lg;
}

/* A writable f32 copy of m (pruning nothing copies every weight). */
static hr_model *writable_copy(const hr_model *m) { return hr_t_writable_copy(m); }

static float *gates_all_one(const hr_model *m) {
    const hr_config *c = hr_model_config(m);
    int mh = hr_config_max_heads(c);
    float *g = malloc(sizeof(float) * (size_t)c->n_layers * mh);
    for (int i = 0; i < c->n_layers * mh; i++) g[i] = 1.0f;
    return g;
}

static void compare(const char *label, const hr_model *a, const float *ga, const hr_model *b, const float *gb) {
    float *la = run_logits(a, ga), *lb = run_logits(b, gb);
    CHECK(la && lb, "forward failed: %s", hr_last_error());
    if (la && lb) {
        size_t n = (size_t)N_TOK * hr_model_config(a)->vocab_size;
        /* The products skip a removed column exactly as they add a zeroed
         * input (src/engine/kernels.h), so the criterion (1e-5) is met
         * with nothing to spare: the logits are equal. */
        double d = hr_t_maxdiff(label, la, lb, n);
        CHECK(d <= 1e-5, "%s differs by %.3g", label, d);
        CHECK(d == 0, "%s is not bit-identical (%.3g)", label, d);
    }
    free(la);
    free(lb);
}

static void pruning_nothing_is_the_identity(void) {
    hr_model *m = load_base(), *p = writable_copy(m);
    CHECK(p != NULL, "prune: %s", hr_last_error());
    if (p) {
        CHECK(hr_model_n_params(p) == hr_model_n_params(m), "parameter count changed");
        compare("identity", m, NULL, p, NULL);
    }
    hr_model_free(p);
    hr_model_free(m);
}

static void pruning_heads_equals_gating_them_to_zero(void) {
    hr_model *m = load_base();
    const hr_config *c = hr_model_config(m);
    int mh = hr_config_max_heads(c);
    hr_prune_spec *s = NULL;
    hr_prune_spec_new(m, &s);
    float *g = gates_all_one(m);
    /* layer 0: one query head from every KV group (groups stay even);
     * layer 2: both query heads of KV group 1 (the KV head goes too) */
    for (int k = 0; k < c->n_head_kv[0]; k++) s->keep_head[0][k * 2 + 1] = 0, g[k * 2 + 1] = 0;
    s->keep_head[2][2] = s->keep_head[2][3] = 0;
    g[2 * mh + 2] = g[2 * mh + 3] = 0;
    hr_model *p = NULL;
    CHECK(hr_prune_apply(m, s, &p) == HR_OK, "apply: %s", hr_last_error());
    if (p) {
        const hr_config *pc = hr_model_config(p);
        CHECK(pc->n_head[0] == 4 && pc->n_head_kv[0] == 4, "layer 0: %d/%d heads", pc->n_head[0], pc->n_head_kv[0]);
        CHECK(pc->n_head[2] == 6 && pc->n_head_kv[2] == 3, "layer 2: %d/%d heads", pc->n_head[2], pc->n_head_kv[2]);
        CHECK(hr_model_n_params(p) < hr_model_n_params(m), "no parameters removed");
        compare("pruned vs gated", m, g, p, NULL);
    }
    hr_model_free(p);
    hr_prune_spec_free(s);
    free(g);
    hr_model_free(m);
}

/* Both query heads of a KV group: the group's K/V rows go as well. */
static void pruning_whole_kv_groups_is_bit_identical_to_gating(void) {
    hr_model *m = load_base();
    int mh = hr_config_max_heads(hr_model_config(m));
    hr_prune_spec *s = NULL;
    hr_prune_spec_new(m, &s);
    float *g = gates_all_one(m);
    for (int l = 1; l <= 3; l += 2)
        for (int h = 2; h <= 3; h++) s->keep_head[l][h] = 0, g[l * mh + h] = 0;
    hr_model *p = NULL;
    CHECK(hr_prune_apply(m, s, &p) == HR_OK, "apply: %s", hr_last_error());
    if (p) compare("pruned vs gated (whole KV groups)", m, g, p, NULL);
    hr_model_free(p);
    hr_prune_spec_free(s);
    free(g);
    hr_model_free(m);
}

static void uneven_groups_fail_unless_kv_rows_are_duplicated(void) {
    hr_model *m = load_base();
    hr_prune_spec *s = NULL;
    hr_prune_spec_new(m, &s);
    float *g = gates_all_one(m);
    s->keep_head[1][0] = 0; /* group 0 keeps 1 head, the others 2 */
    g[hr_config_max_heads(hr_model_config(m)) + 0] = 0;
    hr_model *p = NULL;
    CHECK(hr_prune_apply(m, s, &p) == HR_ERR_INVALID_ARG && !p, "uneven groups accepted");
    CHECK(strstr(hr_last_error(), "layer 1") != NULL, "message: %s", hr_last_error());
    s->uneven_duplicate = true;
    CHECK(hr_prune_apply(m, s, &p) == HR_OK, "apply: %s", hr_last_error());
    if (p) {
        const hr_config *pc = hr_model_config(p);
        CHECK(pc->n_head[1] == 7 && pc->n_head_kv[1] == 7, "layer 1: %d/%d heads", pc->n_head[1], pc->n_head_kv[1]);
        compare("duplicated K/V vs gated", m, g, p, NULL);
    }
    hr_model_free(p);
    hr_prune_spec_free(s);
    free(g);
    hr_model_free(m);
}

static void pruning_neurons_equals_masking_their_down_columns(void) {
    hr_model *m = load_base(), *ref = writable_copy(m);
    const hr_config *c = hr_model_config(m);
    hr_prune_spec *s = NULL;
    hr_prune_spec_new(m, &s);
    for (int l = 0; l < c->n_layers; l++)
        for (int j = l; j < c->n_ff[l]; j += 3) {
            s->keep_ff[l][j] = 0;
            float *wd = (float *)ref->w.layers[l].w_down;
            for (int i = 0; i < c->dim; i++) wd[(size_t)i * c->n_ff[l] + j] = 0;
        }
    hr_model *p = NULL;
    CHECK(hr_prune_apply(m, s, &p) == HR_OK, "apply: %s", hr_last_error());
    if (p) {
        CHECK(hr_model_config(p)->n_ff[0] < c->n_ff[0], "no neurons removed");
        compare("pruned vs masked", ref, NULL, p, NULL);
    }
    hr_model_free(p);
    hr_model_free(ref);
    hr_prune_spec_free(s);
    hr_model_free(m);
}

/* Reference for a skipped layer: all heads gated and all neurons masked. */
static hr_model *skip_reference(const hr_model *m, int l, float *g, bool attn, bool mlp) {
    hr_model *ref = writable_copy(m);
    const hr_config *c = hr_model_config(m);
    if (attn)
        for (int h = 0; h < c->n_head[l]; h++) g[l * hr_config_max_heads(c) + h] = 0;
    if (mlp) memset((float *)ref->w.layers[l].w_down, 0, sizeof(float) * c->dim * c->n_ff[l]);
    return ref;
}

static void dropping_a_block_equals_skipping_it(void) {
    hr_model *m = load_base();
    float *g = gates_all_one(m);
    hr_model *ref = skip_reference(m, 3, g, true, true);
    hr_prune_spec *s = NULL;
    hr_prune_spec_new(m, &s);
    s->drop_block[3] = true;
    hr_model *p = NULL;
    CHECK(hr_prune_apply(m, s, &p) == HR_OK, "apply: %s", hr_last_error());
    if (p) {
        CHECK(hr_model_config(p)->n_layers == 4, "%d layers", hr_model_config(p)->n_layers);
        compare("block dropped vs skipped", ref, g, p, NULL);
    }
    hr_model_free(p);
    hr_model_free(ref);
    hr_prune_spec_free(s);
    free(g);
    hr_model_free(m);
}

static void dropping_sublayers_equals_zeroing_them(void) {
    hr_model *m = load_base();
    float *g = gates_all_one(m);
    hr_model *ref = skip_reference(m, 1, g, true, false);
    hr_model *ref2 = skip_reference(ref, 4, g, false, true);
    hr_prune_spec *s = NULL;
    hr_prune_spec_new(m, &s);
    s->drop_attn[1] = true;
    s->drop_mlp[4] = true;
    hr_model *p = NULL;
    CHECK(hr_prune_apply(m, s, &p) == HR_OK, "apply: %s", hr_last_error());
    if (p) {
        const hr_config *pc = hr_model_config(p);
        CHECK(pc->n_head[1] == 0 && pc->n_head_kv[1] == 0 && pc->n_ff[4] == 0, "shapes not updated");
        compare("sublayers dropped vs zeroed", ref2, g, p, NULL);
    }
    hr_model_free(p);
    hr_model_free(ref);
    hr_model_free(ref2);
    hr_prune_spec_free(s);
    free(g);
    hr_model_free(m);
}

static void a_pruned_model_round_trips_through_gguf(void) {
    hr_model *m = load_base();
    hr_prune_spec *s = NULL;
    hr_prune_spec_new(m, &s);
    s->keep_head[0][0] = s->keep_head[0][1] = 0;
    s->drop_attn[2] = true;
    s->drop_block[4] = true;
    for (int j = 0; j < 50; j++) s->keep_ff[1][j] = 0;
    hr_model *p = NULL, *back = NULL;
    CHECK(hr_prune_apply(m, s, &p) == HR_OK, "apply: %s", hr_last_error());
    char path[256];
    snprintf(path, sizeof path, "/tmp/hr_test_prune_%d.gguf", (int)getpid());
    if (p) {
        CHECK(hr_model_save_gguf(p, NULL, path, HR_DTYPE_F32) == HR_OK, "save: %s", hr_last_error());
        CHECK(hr_model_load(path, &back) == HR_OK, "load: %s", hr_last_error());
    }
    if (back) {
        const hr_config *a = hr_model_config(p), *b = hr_model_config(back);
        CHECK(b->n_layers == a->n_layers, "layers %d vs %d", b->n_layers, a->n_layers);
        for (int l = 0; l < a->n_layers && l < b->n_layers; l++)
            CHECK(a->n_head[l] == b->n_head[l] && a->n_head_kv[l] == b->n_head_kv[l] && a->n_ff[l] == b->n_ff[l],
                  "layer %d shape lost", l);
        compare("saved and loaded", p, NULL, back, NULL);
    }
    unlink(path);
    hr_model_free(back);
    hr_model_free(p);
    hr_prune_spec_free(s);
    hr_model_free(m);
}

static void specs_that_empty_a_layer_or_the_model_are_rejected(void) {
    hr_model *m = load_base();
    const hr_config *c = hr_model_config(m);
    hr_prune_spec *s = NULL;
    hr_prune_spec_new(m, &s);
    hr_model *p = NULL;
    memset(s->keep_head[0], 0, (size_t)c->n_head[0]);
    CHECK(hr_prune_apply(m, s, &p) == HR_ERR_INVALID_ARG && !p, "zero-head layer accepted");
    CHECK(strstr(hr_last_error(), "no attention head") != NULL, "message: %s", hr_last_error());
    memset(s->keep_head[0], 1, (size_t)c->n_head[0]);
    memset(s->keep_ff[2], 0, (size_t)c->n_ff[2]);
    CHECK(hr_prune_apply(m, s, &p) == HR_ERR_INVALID_ARG && !p, "zero-neuron layer accepted");
    memset(s->keep_ff[2], 1, (size_t)c->n_ff[2]);
    for (int l = 0; l < c->n_layers; l++) s->drop_block[l] = true;
    CHECK(hr_prune_apply(m, s, &p) == HR_ERR_INVALID_ARG && !p, "empty model accepted");
    hr_prune_spec_free(s);
    hr_model_free(m);
}

/* Plans n head removals with a budget; returns the status, *removed the count. */
static hr_status plan_heads(const hr_model *m, const float *sc, const float *imp, int64_t n, hr_prune_budget budget,
                            hr_prune_spec *s, int *removed) {
    hr_prune_plan_params pp = hr_prune_plan_default_params();
    pp.budget = budget;
    hr_prune_plan_result r;
    hr_status st = hr_prune_plan_heads(m, sc, imp, n, &pp, s, &r);
    *removed = st == HR_OK ? (int)r.removed : -1;
    return st;
}

static void the_planner_removes_the_lowest_scored_heads_and_keeps_groups_even(void) {
    hr_model *m = load_base();
    const hr_config *c = hr_model_config(m);
    int mh = hr_config_max_heads(c), L = c->n_layers;
    float *sc = malloc(sizeof(float) * L * mh);
    for (int l = 0; l < L; l++)
        for (int h = 0; h < mh; h++) sc[l * mh + h] = (float)(l * 10 + h); /* layer 0 is least important */
    hr_prune_spec *s = NULL;
    hr_prune_spec_new(m, &s);
    int removed = 0;
    CHECK(plan_heads(m, sc, NULL, 4, HR_BUDGET_GLOBAL, s, &removed) == HR_OK, "%s", hr_last_error());
    CHECK(removed == 4, "removed %d", removed);
    hr_prune_layer_result res[HR_MAX_LAYERS];
    CHECK(hr_prune_check(m, s, res) == HR_OK, "plan not applicable: %s", hr_last_error());
    CHECK(res[0].n_head == 4 && res[1].n_head == 8, "layer 0 keeps %d, layer 1 keeps %d", res[0].n_head, res[1].n_head);
    hr_prune_spec_free(s);
    /* over budget: more than can go while every layer keeps a head */
    hr_prune_spec_new(m, &s);
    CHECK(plan_heads(m, sc, NULL, L * mh, HR_BUDGET_GLOBAL, s, &removed) == HR_ERR_RANGE, "accepted");
    hr_prune_spec_free(s);
    /* per-layer: the same count everywhere */
    hr_prune_spec_new(m, &s);
    CHECK(plan_heads(m, sc, NULL, 4 * L, HR_BUDGET_PER_LAYER, s, &removed) == HR_OK, "%s", hr_last_error());
    CHECK(hr_prune_check(m, s, res) == HR_OK, "%s", hr_last_error());
    for (int l = 0; l < L; l++) CHECK(res[l].n_head == 4, "layer %d keeps %d", l, res[l].n_head);
    hr_prune_spec_free(s);
    /* cfsp: the least important layer loses the most */
    float imp[HR_MAX_LAYERS];
    for (int l = 0; l < L; l++) imp[l] = l == 3 ? 0.01f : 1.0f;
    hr_prune_spec_new(m, &s);
    CHECK(plan_heads(m, sc, imp, 8, HR_BUDGET_CFSP, s, &removed) == HR_OK, "%s", hr_last_error());
    CHECK(hr_prune_check(m, s, res) == HR_OK, "%s", hr_last_error());
    for (int l = 0; l < L; l++)
        if (l != 3)
            CHECK(res[3].n_head < res[l].n_head, "layer 3 keeps %d, layer %d %d", res[3].n_head, l, res[l].n_head);
    hr_prune_spec_free(s);
    free(sc);
    hr_model_free(m);
}

static void layer_plans_drop_the_least_important_layers(void) {
    hr_model *m = load_base();
    float sc[5] = {0.5f, 0.1f, 0.9f, 0.05f, 0.7f};
    hr_prune_spec *s = NULL;
    hr_prune_spec_new(m, &s);
    CHECK(hr_prune_plan_layers(m, sc, 2, 2, s) == HR_OK, "%s", hr_last_error());
    CHECK(s->drop_block[1] && s->drop_block[3] && !s->drop_block[0], "wrong blocks dropped");
    CHECK(hr_prune_plan_layers(m, sc, 3, 2, s) == HR_ERR_RANGE, "emptying the model accepted");
    CHECK(hr_prune_plan_layers(m, sc, 1, 0, s) == HR_OK && s->drop_attn[0], "attention of layer 0 not dropped");
    hr_prune_spec_free(s);
    hr_model_free(m);
}

static void neuron_importance_ranks_neurons_that_matter(void) {
    hr_model *m = load_base();
    const hr_config *c = hr_model_config(m);
    hr_context *ctx = NULL;
    hr_context_params p = hr_context_default_params();
    p.n_ctx = 64;
    CHECK(hr_context_new(m, &p, &ctx) == HR_OK, "%s", hr_last_error());
    float *imp[HR_MAX_LAYERS];
    for (int l = 0; l < c->n_layers; l++) imp[l] = malloc(sizeof(float) * c->n_ff[l]);
    CHECK(hr_prune_neuron_importance(ctx, k_tokens, N_TOK, 16, imp) == HR_OK, "%s", hr_last_error());
    int positive = 0;
    for (int j = 0; j < c->n_ff[0]; j++) positive += imp[0][j] > 0 && isfinite(imp[0][j]);
    CHECK(positive == c->n_ff[0], "%d of %d importances positive", positive, c->n_ff[0]);
    /* removing the 20% least important neurons hurts less than the 20% most important */
    double kl[2];
    float *base = run_logits(m, NULL);
    for (int most = 0; most < 2; most++) {
        hr_prune_spec *s = NULL;
        hr_prune_spec_new(m, &s);
        float *neg[HR_MAX_LAYERS];
        for (int l = 0; l < c->n_layers; l++) {
            neg[l] = malloc(sizeof(float) * c->n_ff[l]);
            for (int j = 0; j < c->n_ff[l]; j++) neg[l][j] = most ? -imp[l][j] : imp[l][j];
        }
        int64_t total = 0;
        for (int l = 0; l < c->n_layers; l++) total += c->n_ff[l];
        hr_prune_plan_ff(m, (const float *const *)neg, NULL, total / 5, NULL, s, NULL);
        hr_model *pm = NULL;
        hr_prune_apply(m, s, &pm);
        float *lg = pm ? run_logits(pm, NULL) : NULL;
        kl[most] = lg && base ? hr_t_maxdiff(most ? "most important removed" : "least important removed", base, lg,
                                             (size_t)N_TOK * c->vocab_size)
                              : INFINITY;
        free(lg);
        hr_model_free(pm);
        hr_prune_spec_free(s);
        for (int l = 0; l < c->n_layers; l++) free(neg[l]);
    }
    CHECK(kl[0] < kl[1], "least-important removal changed logits %.3g, most-important %.3g", kl[0], kl[1]);
    float blk[HR_MAX_LAYERS];
    CHECK(hr_prune_layer_importance(ctx, k_tokens, N_TOK, 16, blk, NULL, NULL) == HR_OK, "%s", hr_last_error());
    for (int l = 0; l < c->n_layers; l++) CHECK(blk[l] > 0 && blk[l] < 2, "block %d influence %g", l, blk[l]);
    free(base);
    for (int l = 0; l < c->n_layers; l++) free(imp[l]);
    hr_context_free(ctx);
    hr_model_free(m);
}

/* ---- exact amounts: the planner against brute force ---- */

/* A model holding only a configuration: all the planner reads. */
static hr_model *shape_model(int L, const int *nh, const int *nkv) {
    hr_model *m = calloc(1, sizeof *m);
    m->cfg.n_layers = L;
    m->cfg.head_dim = 4;
    for (int l = 0; l < L; l++) m->cfg.n_head[l] = nh[l], m->cfg.n_head_kv[l] = nkv[l], m->cfg.n_ff[l] = 4;
    return m;
}

/* Every kept-head mask of a layer that keeps its KV groups even: best[r] =
 * the largest score kept when r heads go (-INF when no mask removes r). */
static void brute_layer(int nh, int nkv, const float *sc, double *best) {
    int g = nh / nkv;
    for (int r = 0; r <= nh; r++) best[r] = -INFINITY;
    for (unsigned mask = 1; mask < 1u << nh; mask++) {
        int c = -1, ok = 1, kept = 0;
        double keep = 0;
        for (int k = 0; k < nkv && ok; k++) {
            int in = 0;
            for (int i = 0; i < g; i++) in += (mask >> (k * g + i)) & 1;
            if (in && c < 0) c = in;
            ok = !in || in == c;
        }
        if (!ok) continue;
        for (int h = 0; h < nh; h++)
            if (mask >> h & 1) kept++, keep += sc[h];
        if (keep > best[nh - kept]) best[nh - kept] = keep;
    }
}

/* Over all per-layer removal counts: tot[t] = the best score kept when t
 * heads go in all (uniform: the same count in every layer). */
static void brute_model(int L, const int *nh, double best[][9], bool uniform, double *tot, int max_t) {
    for (int t = 0; t <= max_t; t++) tot[t] = -INFINITY;
    int r[3] = {0, 0, 0};
    for (;;) {
        int t = 0;
        double keep = 0;
        bool same = true;
        for (int l = 0; l < L; l++) t += r[l], keep += best[l][r[l]], same &= r[l] == r[0];
        if ((!uniform || same) && keep > tot[t]) tot[t] = keep;
        int l = 0;
        while (l < L && ++r[l] >= nh[l]) r[l++] = 0;
        if (l == L) break;
    }
}

static int64_t nearest_reachable(const double *tot, int max_t, int n) {
    for (int d = 0; d <= max_t; d++) {
        if (n + d <= max_t && tot[n + d] > -INFINITY) return n + d;
        if (n - d >= 1 && tot[n - d] > -INFINITY) return n - d;
    }
    return -1;
}

static void the_planner_removes_exactly_what_even_groups_allow(void) {
    struct {
        int L, nh[3], nkv[3];
    } shapes[] = {
        {3, {8, 8, 8}, {4, 4, 4}}, {2, {8, 8}, {2, 2}}, {3, {6, 6, 4}, {2, 2, 4}},
        {3, {6, 8, 4}, {3, 4, 1}}, {2, {4, 4}, {1, 1}},
    };
    int cases = 0, exact = 0, nearest = 0, refused = 0, failures_before = hr_t_failures;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        int L = shapes[k].L, mh = 0, max_t = 0;
        for (int l = 0; l < L; l++) mh = shapes[k].nh[l] > mh ? shapes[k].nh[l] : mh, max_t += shapes[k].nh[l] - 1;
        hr_model *m = shape_model(L, shapes[k].nh, shapes[k].nkv);
        bool homogeneous = L > 1;
        for (int l = 1; l < L; l++)
            homogeneous &= shapes[k].nh[l] == shapes[k].nh[0] && shapes[k].nkv[l] == shapes[k].nkv[0];
        float sc[3 * 8];
        uint32_t x = 1234567u + (uint32_t)k;
        for (int i = 0; i < L * mh; i++) x = x * 1664525u + 1013904223u, sc[i] = (float)(x >> 8) / 16777216.0f;
        double best[3][9], tot[32], tot_u[32];
        for (int l = 0; l < L; l++) brute_layer(shapes[k].nh[l], shapes[k].nkv[l], sc + l * mh, best[l]);
        brute_model(L, shapes[k].nh, best, false, tot, max_t);
        brute_model(L, shapes[k].nh, best, true, tot_u, max_t);
        for (int mode = 0; mode < 3 + homogeneous; mode++) /* global, per-layer, strict global, uniform */
            for (int n = 1; n <= max_t; n++, cases++) {
                bool uniform = mode == 3, strict = mode == 2;
                const double *t = uniform ? tot_u : tot;
                int64_t want = nearest_reachable(t, max_t, n);
                hr_prune_spec *s = NULL;
                hr_prune_spec_new(m, &s);
                hr_prune_plan_params pp = hr_prune_plan_default_params();
                pp.budget = mode == 1 || uniform ? HR_BUDGET_PER_LAYER : HR_BUDGET_GLOBAL;
                pp.uniform = uniform;
                pp.strict = strict;
                hr_prune_plan_result r;
                hr_status st = hr_prune_plan_heads(m, sc, NULL, n, &pp, s, &r);
                hr_prune_layer_result res[3];
                int kept = 0;
                double keep = 0;
                for (int l = 0; l < L; l++)
                    for (int h = 0; h < shapes[k].nh[l]; h++)
                        if (hr_prune_spec_keeps_head(s, l, h)) kept++, keep += sc[l * mh + h];
                int removed = max_t + L - kept;
                if (strict && want != n) {
                    CHECK(st == HR_ERR_RANGE && removed == 0, "shape %zu n %d strict: status %d, %d removed", k, n, st,
                          removed);
                    refused++;
                    hr_prune_spec_free(s);
                    continue;
                }
                CHECK(st == HR_OK, "shape %zu mode %d n %d: %s", k, mode, n, hr_last_error());
                CHECK(r.requested == n && r.removed == want && removed == want,
                      "shape %zu mode %d: asked %d, planned %lld, spec removes %d, brute force %lld", k, mode, n,
                      (long long)r.removed, removed, (long long)want);
                CHECK((want == n) == (r.reason[0] == 0), "shape %zu n %d: reason '%s'", k, n, r.reason);
                CHECK(hr_prune_check(m, s, res) == HR_OK, "shape %zu mode %d n %d: %s", k, mode, n, hr_last_error());
                if (mode == 0 || mode == 2)
                    CHECK(fabs(keep - t[want]) < 1e-9, "shape %zu n %d: keeps %.9f, the best even choice keeps %.9f", k,
                          n, keep, t[want]);
                for (int l = 1; uniform && l < L; l++)
                    CHECK(res[l].n_head == res[0].n_head && res[l].n_head_kv == res[0].n_head_kv,
                          "shape %zu n %d uniform: layer %d is %d/%d, layer 0 %d/%d", k, n, l, res[l].n_head,
                          res[l].n_head_kv, res[0].n_head, res[0].n_head_kv);
                exact += want == n;
                nearest += want != n;
                hr_prune_spec_free(s);
            }
        free(m);
    }
    printf(
        "    %d plans against brute force: %d exact, %d nearest with a reason, %d refused (strict), %d failed checks\n",
        cases, exact, nearest, refused, hr_t_failures - failures_before);
}

static void neuron_amounts_are_exact_unless_uniform_needs_a_multiple_of_the_layers(void) {
    hr_model *m = load_base();
    const hr_config *c = hr_model_config(m);
    float *sc[HR_MAX_LAYERS];
    for (int l = 0; l < c->n_layers; l++) {
        sc[l] = malloc(sizeof(float) * c->n_ff[l]);
        for (int j = 0; j < c->n_ff[l]; j++) sc[l][j] = (float)((j * 7919 + l * 104729) % 1000);
    }
    hr_prune_plan_params pp = hr_prune_plan_default_params();
    hr_prune_plan_result r;
    hr_prune_spec *s = NULL;
    hr_prune_spec_new(m, &s);
    CHECK(hr_prune_plan_ff(m, (const float *const *)sc, NULL, 101, &pp, s, &r) == HR_OK && r.removed == 101 &&
              !r.reason[0],
          "global 101: %lld, %s", (long long)r.removed, hr_last_error());
    hr_prune_spec_free(s);
    pp.budget = HR_BUDGET_PER_LAYER;
    pp.uniform = true;
    hr_prune_spec_new(m, &s);
    /* 5 layers: 101 is not a multiple, 100 is the nearest */
    CHECK(hr_prune_plan_ff(m, (const float *const *)sc, NULL, 101, &pp, s, &r) == HR_OK && r.removed == 100 &&
              strstr(r.reason, "every one of the 5 layers loses the same number"),
          "uniform 101: %lld, '%s' %s", (long long)r.removed, r.reason, hr_last_error());
    hr_prune_spec_free(s);
    pp.strict = true;
    hr_prune_spec_new(m, &s);
    CHECK(hr_prune_plan_ff(m, (const float *const *)sc, NULL, 101, &pp, s, &r) == HR_ERR_RANGE &&
              strstr(hr_last_error(), "cannot remove exactly 101 neurons"),
          "%s", hr_last_error());
    hr_prune_spec_free(s);
    for (int l = 0; l < c->n_layers; l++) free(sc[l]);
    hr_model_free(m);
}

static void a_pruning_run_checks_its_parameters_first_and_reports_what_it_removed(void) {
    hr_model *m = load_base();
    struct {
        const char *label, *want;
        hr_prune_params p;
    } bad[] = {
        {"nothing to prune", "nothing to prune", hr_prune_default_params()},
        {"heads without a method", "needs a score method", hr_prune_default_params()},
        {"a method without scores", "method 'ablation' needs head scores", hr_prune_default_params()},
        {"MLP without text", "MLP pruning needs calibration text", hr_prune_default_params()},
        {"drops without layer scores", "need layer metrics (layers.json from headroom heads) or calibration text",
         hr_prune_default_params()},
        {"uniform with a global budget", "uniform pruning needs the per-layer budget", hr_prune_default_params()},
        {"an amount of everything", "heads to remove: 100% would remove everything", hr_prune_default_params()},
        {"an unknown neuron method", "unknown MLP neuron method 'wanda' (expected amp or taylor)",
         hr_prune_default_params()},
        {"Taylor neurons without text", "MLP pruning needs calibration text for the neuron importance (taylor",
         hr_prune_default_params()},
    };
    bad[1].p.heads = "10";
    bad[2].p.heads = "10", bad[2].p.method = "ablation";
    bad[3].p.mlp = "10%";
    bad[4].p.drop_blocks = 1;
    bad[5].p.heads = "10", bad[5].p.method = "random", bad[5].p.uniform = true;
    bad[6].p.heads = "100%", bad[6].p.method = "random";
    bad[7].p.mlp = "10%", bad[7].p.mlp_method = "wanda";
    bad[8].p.mlp = "10%", bad[8].p.mlp_method = "taylor";
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hr_prune_result *r = NULL;
        hr_status st = hr_prune_run(m, NULL, &bad[i].p, &r);
        CHECK(st != HR_OK && !r && strstr(hr_last_error(), bad[i].want), "%s: '%s'", bad[i].label, hr_last_error());
    }
    hr_prune_params p = hr_prune_default_params();
    p.heads = "25%";
    p.method = "random";
    p.seed = 3;
    hr_prune_result *r = NULL;
    CHECK(hr_prune_run(m, NULL, &p, &r) == HR_OK, "%s", hr_last_error());
    const hr_prune_plan_result *h = hr_prune_result_heads(r);
    CHECK(h && h->requested == 10 && h->removed == 10, "25%%: asked %lld, removed %lld",
          h ? (long long)h->requested : -1, h ? (long long)h->removed : -1);
    int kept = 0;
    for (int l = 0; r && l < 5; l++) kept += hr_config_n_head(hr_model_config(hr_prune_result_model(r)), l);
    CHECK(kept == 30, "the pruned model keeps %d heads", kept);
    char *json = NULL;
    hr_prune_report_meta meta = {"base.bin", "out.gguf", NULL, NULL};
    CHECK(hr_prune_report_json(r, &meta, &json) == HR_OK && json, "%s", hr_last_error());
    CHECK(json && strstr(json, "\"format\":\t\"headroom.prune\"") && strstr(json, "\"heads_requested\":\t\"25%\"") &&
              strstr(json, "\"heads_requested_count\":\t10") && strstr(json, "\"heads_removed\":\t10") &&
              !strstr(json, "heads_reason"),
          "report: %.400s", json ? json : "");
    hr_free(json);
    hr_prune_result_free(r);
    hr_model_free(m);
}

/* stories260K's tokenizer and the whole calibration text (hr_free it). */
static void load_calibration(hr_tokenizer **tok, char **text, size_t *len) {
    CHECK(hr_tokenizer_load(SHARED("models/stories260K/tok512.bin"), tok) == HR_OK, "%s", hr_last_error());
    CHECK(hr_read_file(SHARED("data/text/tinystories_val.txt"), text, len) == HR_OK, "%s", hr_last_error());
}

/* A run that calibrates packs the model's panels (as big as the model) for
 * its context; before it builds the pruned model it lets them go unless
 * someone else holds them (engine/pack.c hr_model_packed_drop_unused): an
 * 8B bf16 model's panels and its pruned copy do not fit in 24 GB together.
 * A context the caller holds keeps them, and still runs afterwards. */
static void a_calibrating_run_gives_the_models_panels_back_unless_a_context_holds_them(void) {
    hr_model *m = load_base();
    hr_tokenizer *tok = NULL;
    char *text = NULL;
    size_t len = 0;
    load_calibration(&tok, &text, &len);
    hr_prune_params p = hr_prune_default_params();
    p.mlp = "10%", p.text = text, p.text_len = len, p.max_tokens = 256;
    hr_prune_result *r = NULL;
    CHECK(hr_prune_run(m, tok, &p, &r) == HR_OK, "%s", hr_last_error());
    printf("    nobody else holding them: panels %s after the run\n", m->packed ? "kept" : "freed");
    CHECK(!m->packed && m->packed_users == 0, "the panels were kept (%d holders)", m->packed_users);
    hr_prune_result_free(r);
    hr_context *ctx = NULL;
    hr_context_params cp = hr_context_default_params();
    cp.n_ctx = 64;
    CHECK(hr_context_new(m, &cp, &ctx) == HR_OK, "%s", hr_last_error());
    const void *before = m->packed;
    r = NULL;
    CHECK(hr_prune_run(m, tok, &p, &r) == HR_OK, "%s", hr_last_error());
    printf("    a context holding them: panels %s after the run\n", m->packed == before ? "kept" : "changed");
    CHECK(before && m->packed == before && m->packed_users == 1, "the held panels changed (%d holders)",
          m->packed_users);
    float *lg = malloc(sizeof(float) * 512); // (vocab)
    const int32_t toks[3] = {1, 403, 407};
    CHECK(hr_forward(ctx, toks, 3, lg, false) == HR_OK, "the held context: %s", hr_last_error());
    free(lg);
    hr_context_free(ctx);
    CHECK(m->packed_users == 0, "%d holders after the context went", m->packed_users);
    hr_prune_result_free(r);
    hr_tokenizer_free(tok);
    hr_free(text);
    hr_model_free(m);
}

/* ---- Sublayers as one pool (FinerCut / joint layer drop) ---- */

enum { R_DIM = 32, R_HID = 64, R_LAYERS = 3, R_HEADS = 4, R_VOCAB = 48, R_SEQ = 64, R_TOK = 100, R_WIN = 32 };

static float rnd(unsigned *s) { return (float)((*s = *s * 1103515245u + 12345u) >> 16 & 0x7fff) / 32768.0f - 0.5f; }

/* A tiny random Llama in llama2.c's format (untied classifier), weights
 * uniform in +-scale/2. */
static int write_random_model(const char *path) {
    size_t D = R_DIM, L = R_LAYERS, V = R_VOCAB, H = R_HID, hd = R_DIM / R_HEADS;
    size_t sizes[] = {V * D,     L * D,     L * D * D, L * D * D, L * D * D,      L * D * D,      L * D,
                      L * H * D, L * D * H, L * H * D, D,         R_SEQ * hd / 2, R_SEQ * hd / 2, V * D};
    int norm[] = {0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 2, 2, 0}; /* 1: norm weights (1 + noise), 2: unused RoPE table */
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int32_t hdr[7] = {R_DIM, R_HID, R_LAYERS, R_HEADS, R_HEADS, -R_VOCAB, R_SEQ};
    fwrite(hdr, 4, 7, f);
    unsigned s = 7;
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++)
        for (size_t i = 0; i < sizes[t]; i++) {
            float x = norm[t] == 1 ? 1.0f + 0.2f * rnd(&s) : norm[t] == 2 ? 0.0f : 0.6f * rnd(&s);
            fwrite(&x, 4, 1, f);
        }
    return fclose(f);
}

/* All-position logits (R_TOK, V) of m on toks, windows of R_WIN from an empty cache. */
static float *window_logits(const hr_model *m, const int32_t *toks) {
    hr_context *ctx = NULL;
    hr_context_params p = hr_context_default_params();
    p.n_ctx = R_WIN;
    p.n_threads = 1;
    float *lg = malloc(sizeof(float) * R_TOK * R_VOCAB);
    if (hr_context_new(m, &p, &ctx) != HR_OK || !lg) {
        free(lg);
        return NULL;
    }
    for (int off = 0; off < R_TOK; off += R_WIN) {
        int n = R_TOK - off < R_WIN ? R_TOK - off : R_WIN;
        hr_context_truncate(ctx, 0);
        if (hr_forward(ctx, toks + off, n, lg + (size_t)off * R_VOCAB, true) != HR_OK) {
            free(lg);
            lg = NULL;
            break;
        }
    }
    hr_context_free(ctx);
    return lg;
}

/* Mean Jensen-Shannon divergence (nats) of the rows of two logit tables,
 * from the definition in double. */
static double mean_js(const float *a, const float *b) {
    double sum = 0;
    for (int t = 0; t < R_TOK; t++) {
        double la[R_VOCAB], lb[R_VOCAB], ma = -1e300, mb = -1e300, za = 0, zb = 0, js = 0;
        for (int i = 0; i < R_VOCAB; i++) {
            la[i] = a[t * R_VOCAB + i], lb[i] = b[t * R_VOCAB + i];
            ma = la[i] > ma ? la[i] : ma, mb = lb[i] > mb ? lb[i] : mb;
        }
        for (int i = 0; i < R_VOCAB; i++) za += exp(la[i] - ma), zb += exp(lb[i] - mb);
        for (int i = 0; i < R_VOCAB; i++) {
            double p = exp(la[i] - ma) / za, q = exp(lb[i] - mb) / zb, m = 0.5 * (p + q);
            js += 0.5 * p * log(p / m) + 0.5 * q * log(q / m);
        }
        sum += js;
    }
    return sum / R_TOK;
}

/* The brute force: the model with the sublayers of drop (2 L) removed by
 * surgery, its mean JS divergence from the base logits. */
static double brute_js(const hr_model *m, const uint8_t *drop, const float *base, const int32_t *toks) {
    hr_prune_spec *s = NULL;
    hr_model *p = NULL;
    double js = NAN;
    hr_prune_spec_new(m, &s);
    for (int l = 0; l < R_LAYERS; l++) {
        if (drop[2 * l]) hr_prune_spec_set_dropped(s, l, HR_PRUNE_ATTN, true);
        if (drop[2 * l + 1]) hr_prune_spec_set_dropped(s, l, HR_PRUNE_MLP, true);
        if (drop[2 * l] && drop[2 * l + 1]) hr_prune_spec_set_dropped(s, l, HR_PRUNE_BLOCK, true);
    }
    if (hr_prune_apply(m, s, &p) == HR_OK) {
        float *lg = window_logits(p, toks);
        if (lg) js = mean_js(base, lg);
        free(lg);
    }
    hr_model_free(p);
    hr_prune_spec_free(s);
    return js;
}

static void sublayer_pools_choose_what_a_brute_force_recomputation_chooses(void) {
    char dir[64], path[128];
    if (hr_t_scratch_dir(dir, sizeof dir, "prune_sub")) return;
    snprintf(path, sizeof path, "%s/random.bin", dir);
    hr_model *m = NULL;
    CHECK(write_random_model(path) == 0 && hr_model_load(path, &m) == HR_OK, "random model: %s", hr_last_error());
    hr_t_rm_rf(dir);
    if (!m) return;
    int32_t toks[R_TOK];
    unsigned seed = 11;
    for (int i = 0; i < R_TOK; i++) toks[i] = (int32_t)((rnd(&seed) + 0.5f) * (R_VOCAB - 1));
    float *base = window_logits(m, toks);
    hr_context *ctx = NULL;
    hr_context_params cp = hr_context_default_params();
    cp.n_ctx = R_WIN;
    cp.n_threads = 2;
    CHECK(base && hr_context_new(m, &cp, &ctx) == HR_OK, "context: %s", hr_last_error());
    enum { J = 2 * R_LAYERS, K = J - 1 };
    for (int iterative = 1; ctx && base && iterative >= 0; iterative--) {
        hr_prune_spec *s = NULL;
        int order[K];
        double scores[K * J];
        hr_prune_spec_new(m, &s);
        hr_status st = hr_prune_plan_sublayers(ctx, toks, R_TOK, 0, K, iterative, s, order, scores);
        CHECK(st == HR_OK, "plan: %s", hr_last_error());
        uint8_t drop[J] = {0};
        double first[J], maxdiff = 0, min_gap = 1e30;
        for (int i = 0; st == HR_OK && i < K; i++) {
            int best = -1;
            double v[J];
            for (int j = 0; j < J; j++) {
                v[j] = NAN;
                if (drop[j]) continue;
                drop[j] = 1;
                v[j] = brute_js(m, drop, base, toks);
                drop[j] = 0;
                if (i == 0) first[j] = v[j];
                double d = fabs(v[j] - scores[i * J + j]);
                if (iterative || i == 0) maxdiff = d > maxdiff || isnan(d) ? d : maxdiff;
                if (best < 0 || v[j] < v[best]) best = j;
            }
            if (!iterative) { /* one shot: the i-th lowest of the first pass */
                best = -1;
                for (int j = 0; j < J; j++)
                    if (!drop[j] && (best < 0 || first[j] < first[best])) best = j;
            }
            for (int j = 0; j < J; j++)
                if (!drop[j] && j != best) {
                    double gap = fabs((iterative ? v[j] : first[j]) - (iterative ? v[best] : first[best]));
                    min_gap = gap < min_gap ? gap : min_gap;
                }
            CHECK(order[i] == best, "%s step %d: chose sublayer %d, the brute force %d",
                  iterative ? "iterative" : "one-shot", i + 1, order[i], best);
            drop[best] = 1;
        }
        printf("    %s: order", iterative ? "iterative" : "one-shot");
        for (int i = 0; i < K; i++) printf(" %d.%s", order[i] / 2, order[i] % 2 ? "mlp" : "attn");
        printf("; max |JS - brute force| %.3g (tolerance 1e-6), smallest gap to the choice %.3g\n", maxdiff, min_gap);
        CHECK(maxdiff <= 1e-6, "scores differ from the brute force by %.3g", maxdiff);
        /* every sublayer but the last one went: blocks without either sublayer are dropped */
        hr_prune_layer_result res[R_LAYERS];
        CHECK(hr_prune_check(m, s, res) == HR_OK, "%s", hr_last_error());
        hr_prune_spec_free(s);
        /* the whole pool is too much */
        hr_prune_spec_new(m, &s);
        CHECK(hr_prune_plan_sublayers(ctx, toks, R_TOK, 0, J, iterative, s, NULL, NULL) == HR_ERR_RANGE &&
                  strstr(hr_last_error(), "at least one must stay"),
              "k = %d: %s", J, hr_last_error());
        hr_prune_spec_free(s);
    }
    hr_context_free(ctx);
    free(base);
    hr_model_free(m);
}

/* hr_prune_run: the pool by the layer metrics (joint drop) and FinerCut's
 * order in prune.json; bad combinations fail first. */
static void a_run_drops_sublayers_from_one_pool_and_records_the_order(void) {
    hr_model *m = load_base();
    hr_tokenizer *tok = NULL;
    char *text = NULL;
    size_t len = 0;
    load_calibration(&tok, &text, &len);
    hr_prune_params p = hr_prune_default_params();
    p.drop_sublayers = 2, p.iterative = true;
    hr_prune_result *r = NULL;
    CHECK(hr_prune_run(m, tok, &p, &r) != HR_OK && !r && strstr(hr_last_error(), "needs calibration text"), "%s",
          hr_last_error());
    p.drop_sublayers = 0, p.drop_attn = 1, p.text = text, p.text_len = len;
    CHECK(hr_prune_run(m, tok, &p, &r) != HR_OK && strstr(hr_last_error(), "need a number of sublayers"), "%s",
          hr_last_error());
    p.drop_sublayers = 10, p.drop_attn = 0;
    CHECK(hr_prune_run(m, tok, &p, &r) == HR_ERR_RANGE && strstr(hr_last_error(), "at least one must stay"), "%s",
          hr_last_error());
    p.drop_sublayers = 2, p.max_tokens = 512;
    CHECK(hr_prune_run(m, tok, &p, &r) == HR_OK, "%s", hr_last_error());
    const int *sub = NULL;
    const double *sc = NULL;
    int n = hr_prune_result_sublayers(r, &sub, &sc);
    CHECK(n == 2 && sub && sc && sc[0] <= sc[1] && sc[0] > 0, "steps %d", n);
    char *json = NULL;
    if (r && hr_prune_report_json(r, NULL, &json) == HR_OK) {
        CHECK(strstr(json, "\"sublayer_drops\"") && strstr(json, "re-scored after each removal") &&
                  strstr(json, "\"candidates\""),
              "prune.json: %.300s", json);
        int dropped = 0;
        for (int l = 0; l < 5; l++)
            dropped += hr_prune_spec_dropped(hr_prune_result_spec(r), l, HR_PRUNE_ATTN) +
                       hr_prune_spec_dropped(hr_prune_result_spec(r), l, HR_PRUNE_MLP);
        CHECK(dropped == 2, "%d sublayers dropped", dropped);
    }
    hr_free(json);
    hr_prune_result_free(r);
    /* the joint drop: the two lowest of attention and MLP layer metrics together */
    p.iterative = false;
    r = NULL;
    CHECK(hr_prune_run(m, tok, &p, &r) == HR_OK, "%s", hr_last_error());
    n = hr_prune_result_sublayers(r, &sub, &sc);
    float attn[5], mlp[5];
    hr_context *ctx = NULL;
    hr_context_params cp = hr_context_default_params();
    cp.n_ctx = 256;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (n == 2 && hr_context_new(m, &cp, &ctx) == HR_OK &&
        hr_calib_tokens(tok, text, len, 512, &ids, &n_ids) == HR_OK &&
        hr_prune_layer_importance(ctx, ids, n_ids, 0, NULL, attn, mlp) == HR_OK) {
        double all[10];
        for (int l = 0; l < 5; l++) all[2 * l] = attn[l], all[2 * l + 1] = mlp[l];
        int lower0 = 0, lower1 = 0;
        for (int j = 0; j < 10; j++) lower0 += all[j] < all[sub[0]], lower1 += all[j] < all[sub[1]];
        CHECK(lower0 == 0 && lower1 == 1, "joint drop chose %d (%d lower) and %d (%d lower)", sub[0], lower0, sub[1],
              lower1);
        CHECK(fabs(sc[0] - all[sub[0]]) < 1e-6, "score %g vs metric %g", sc[0], all[sub[0]]);
    } else CHECK(0, "joint drop: %d steps, %s", n, hr_last_error());
    free(ids);
    hr_context_free(ctx);
    hr_prune_result_free(r);
    hr_free(text);
    hr_tokenizer_free(tok);
    hr_model_free(m);
}


/* ---- LoRAPrune and CFSP's recovery budget ---- */

static char *read_text(size_t max, size_t *len) {
    FILE *f = fopen(SHARED("data/text/tinystories_val.txt"), "rb");
    char *t = malloc(max + 1);
    *len = f && t ? fread(t, 1, max, f) : 0;
    if (t) t[*len] = 0;
    if (f) fclose(f);
    return t;
}

static hr_loraprune_params lp_params(const char *text, size_t len) {
    hr_loraprune_params p = hr_loraprune_default_params();
    p.heads = "50%", p.mlp = "25%", p.iterations = 3;
    p.train.steps = 24, p.train.window = 64, p.train.n_threads = 2, p.train.seed = 5;
    p.text = text, p.text_len = len;
    return p;
}

static void loraprune_reaches_the_amount_in_k_equal_shares(void) {
    hr_model *m = load_base();
    hr_tokenizer *tok = NULL;
    CHECK(hr_tokenizer_load(SHARED("models/stories260K/tok512.bin"), &tok) == HR_OK, "%s", hr_last_error());
    size_t len = 0;
    char *text = read_text(20000, &len);
    hr_loraprune_params p = lp_params(text, len);
    hr_prune_result *r = NULL;
    CHECK(hr_loraprune_run(m, tok, &p, &r) == HR_OK, "%s", hr_last_error());
    int steps[3] = {0}, heads[3] = {0}, neurons[3] = {0};
    int K = hr_prune_result_iterations(r, steps, heads, neurons);
    /* 24 steps in 4 parts: removals after steps 6, 12, 18; cumulative
     * round(n k / 3) of 20 heads (7, 13, 20) and 215 neurons (72, 143, 215) */
    int want_s[3] = {6, 12, 18}, want_h[3] = {7, 6, 7}, want_n[3] = {72, 71, 72};
    CHECK(K == 3, "%d iterations", K);
    for (int k = 0; k < 3; k++)
        CHECK(steps[k] == want_s[k] && heads[k] == want_h[k] && neurons[k] == want_n[k],
              "iteration %d: after step %d, %d heads, %d neurons (want %d, %d, %d)", k + 1, steps[k], heads[k],
              neurons[k], want_s[k], want_h[k], want_n[k]);
    const hr_prune_plan_result *h = hr_prune_result_heads(r), *n = hr_prune_result_neurons(r);
    CHECK(h && n && h->requested == 20 && h->removed == 20 && n->requested == 215 && n->removed == 215,
          "heads %lld of %lld, neurons %lld of %lld", h ? (long long)h->removed : -1, h ? (long long)h->requested : -1,
          n ? (long long)n->removed : -1, n ? (long long)n->requested : -1);
    int kept_h = 0, kept_n = 0;
    const hr_config *pc = r ? hr_model_config(hr_prune_result_model(r)) : NULL;
    for (int l = 0; pc && l < 5; l++) kept_h += hr_config_n_head(pc, l), kept_n += hr_config_n_ff(pc, l);
    CHECK(kept_h == 20 && kept_n == 860 - 215, "the pruned model keeps %d heads, %d neurons", kept_h, kept_n);
    char *json = NULL;
    CHECK(r && hr_prune_report_json(r, NULL, &json) == HR_OK && json && strstr(json, "\"loraprune\"") &&
              strstr(json, "\"after_step\":\t12") && strstr(json, "\"head_method\":\t\"loraprune\""),
          "report: %.300s", json ? json : "");
    hr_free(json);
    hr_prune_result_free(r);

    struct {
        const char *label, *want;
        hr_loraprune_params p;
        bool no_tok;
    } bad[] = {
        {"zero iterations", "iterations must be >= 1", lp_params(text, len), false},
        {"no text", "fine-tunes on text", lp_params(NULL, 0), false},
        {"no tokenizer", "fine-tunes on text", lp_params(text, len), true},
        {"full training", "trains LoRA adapters only", lp_params(text, len), false},
        {"fewer steps than parts", "cannot be split over 3 iterations", lp_params(text, len), false},
        {"nothing to prune", "nothing to prune", lp_params(text, len), false},
        {"a moving average of 1", "moving-average factor", lp_params(text, len), false},
    };
    bad[0].p.iterations = 0;
    bad[3].p.train.full = true, bad[3].p.train.lora_rank = 0;
    bad[4].p.train.steps = 3;
    bad[5].p.heads = bad[5].p.mlp = NULL;
    bad[6].p.ema = 1;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = NULL;
        hr_status st = hr_loraprune_run(m, bad[i].no_tok ? NULL : tok, &bad[i].p, &r);
        CHECK(st != HR_OK && !r && strstr(hr_last_error(), bad[i].want), "%s: '%s'", bad[i].label, hr_last_error());
    }
    free(text);
    hr_tokenizer_free(tok);
    hr_model_free(m);
}

/* Sum over layers of |r_l - q_l|, q the proportional quotas. */
static double alloc_cost(const float *imp, int L, int total, const int *r) {
    double sum = 0, c = 0;
    for (int l = 0; l < L; l++) sum += imp[l];
    for (int l = 0; l < L; l++) c += fabs(r[l] - (sum > 0 ? (double)total * imp[l] / sum : (double)total / L));
    return c;
}

/* The least cost of any allocation with ranks in 1..max summing to total. */
static double brute_alloc(const float *imp, int L, int total, int max, int *r, int l) {
    if (l == L) {
        int s = 0;
        for (int i = 0; i < L; i++) s += r[i];
        return s == total ? alloc_cost(imp, L, total, r) : INFINITY;
    }
    double best = INFINITY;
    for (int v = 1; v <= max; v++) {
        r[l] = v;
        double c = brute_alloc(imp, L, total, max, r, l + 1);
        best = c < best ? c : best;
    }
    return best;
}

static void cfsp_recovery_ranks_follow_block_importance_and_sum_to_the_budget(void) {
    unsigned seed = 7;
    for (int trial = 0; trial < 40; trial++) {
        int L = 2 + trial % 4, rank = 1 + trial % 5, max = rank + 1 + trial % 4, r[8], b[8];
        float imp[8];
        for (int l = 0; l < L; l++) imp[l] = trial % 7 == 0 ? 0.3f : rnd(&seed) + 0.5f;
        if (trial % 9 == 1) imp[0] = 0; /* a layer that changes nothing still gets rank 1 */
        CHECK(hr_prune_recovery_ranks(imp, L, (int64_t)rank * L, max, r) == HR_OK, "%s", hr_last_error());
        int sum = 0;
        bool order = true;
        for (int l = 0; l < L; l++) {
            sum += r[l];
            order &= r[l] >= 1 && r[l] <= max;
            for (int k = 0; k < L; k++) order &= !(imp[l] > imp[k] && r[l] < r[k]);
        }
        double got = alloc_cost(imp, L, rank * L, r), want = brute_alloc(imp, L, rank * L, max, b, 0);
        CHECK(sum == rank * L && order && fabs(got - want) < 1e-9,
              "trial %d (%d layers, rank %d, max %d): sum %d, ordered %d, cost %.6f, brute force %.6f", trial, L, rank,
              max, sum, order, got, want);
        if (trial % 7 == 0 && trial % 9 != 1)
            for (int l = 0; l < L; l++)
                CHECK(r[l] == rank, "equal importance: layer %d gets %d, not %d", l, r[l], rank);
    }
    float imp[3] = {1, 1, 1};
    int r[3];
    CHECK(hr_prune_recovery_ranks(imp, 3, 2, 4, r) == HR_ERR_RANGE, "a budget below one rank per layer");
    CHECK(hr_prune_recovery_ranks(imp, 3, 13, 4, r) == HR_ERR_RANGE, "a budget above the cap");
    imp[1] = NAN;
    CHECK(hr_prune_recovery_ranks(imp, 3, 6, 4, r) == HR_ERR_RANGE, "a NaN importance");

    /* on stories260K: the block influence it reports is the library's, and
     * the ranks are the brute-force allocation of it */
    hr_model *m = load_base();
    hr_context *ctx = NULL;
    hr_context_params cp = hr_context_default_params();
    cp.n_threads = 2;
    CHECK(hr_context_new(m, &cp, &ctx) == HR_OK, "%s", hr_last_error());
    int ranks[5], br[5];
    float bimp[5], ref[5];
    CHECK(hr_prune_cfsp_recovery(ctx, k_tokens, N_TOK, 0, 8, 0, ranks, bimp) == HR_OK, "%s", hr_last_error());
    CHECK(hr_prune_layer_importance(ctx, k_tokens, N_TOK, 0, ref, NULL, NULL) == HR_OK, "%s", hr_last_error());
    int sum = 0;
    for (int l = 0; l < 5; l++) {
        sum += ranks[l];
        CHECK(bimp[l] == ref[l], "layer %d: %g vs %g", l, bimp[l], ref[l]);
    }
    double got = alloc_cost(bimp, 5, 40, ranks), want = brute_alloc(bimp, 5, 40, 16, br, 0);
    CHECK(sum == 40 && fabs(got - want) < 1e-9, "stories260K ranks %d %d %d %d %d (sum %d), cost %.6f vs %.6f",
          ranks[0], ranks[1], ranks[2], ranks[3], ranks[4], sum, got, want);
    hr_context_free(ctx);
    hr_model_free(m);
}

int main(void) {
    HR_T_REQUIRE_SHARED("models/stories260K/stories260K.bin");
    RUN(pruning_nothing_is_the_identity);
    RUN(pruning_heads_equals_gating_them_to_zero);
    RUN(pruning_whole_kv_groups_is_bit_identical_to_gating);
    RUN(uneven_groups_fail_unless_kv_rows_are_duplicated);
    RUN(pruning_neurons_equals_masking_their_down_columns);
    RUN(dropping_a_block_equals_skipping_it);
    RUN(dropping_sublayers_equals_zeroing_them);
    RUN(a_pruned_model_round_trips_through_gguf);
    RUN(specs_that_empty_a_layer_or_the_model_are_rejected);
    RUN(the_planner_removes_the_lowest_scored_heads_and_keeps_groups_even);
    RUN(the_planner_removes_exactly_what_even_groups_allow);
    RUN(neuron_amounts_are_exact_unless_uniform_needs_a_multiple_of_the_layers);
    RUN(a_pruning_run_checks_its_parameters_first_and_reports_what_it_removed);
    RUN(a_calibrating_run_gives_the_models_panels_back_unless_a_context_holds_them);
    RUN(layer_plans_drop_the_least_important_layers);
    RUN(neuron_importance_ranks_neurons_that_matter);
    RUN(sublayer_pools_choose_what_a_brute_force_recomputation_chooses);
    RUN(a_run_drops_sublayers_from_one_pool_and_records_the_order);
    RUN(loraprune_reaches_the_amount_in_k_equal_shares);
    RUN(cfsp_recovery_ranks_follow_block_importance_and_sum_to_the_budget);
    TEST_MAIN_END();
}
