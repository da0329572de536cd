/* MHA -> GQA conversion: identity cases, exact merges of identical heads,
 * activation-informed grouping, round trip, bad arguments. */
#include "check.h"
#include "story_util.h"
#include "headroom/context.h"
#include "headroom/save.h"
#include "headroom/gqa.h"
#include "headroom/prune.h"
#include "model/model_internal.h"
#include "model_util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MODEL SHARED("models/stories260K/stories260K.bin")


/* Largest |logit|: reordering or merging heads changes the order of float
 * sums, so "exact" means equal to 1e-5 relative to the logits' scale. */
static double logit_scale(const float *l, size_t n) {
    double m = 1;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)l[i]));
    return m;
}

static double logit_diff(const char *label, const hr_model *a, const hr_model *b) {
    float *la = run_logits(a), *lb = run_logits(b);
    size_t n = (size_t)N_TOK * hr_model_config(a)->vocab_size;
    /* relative to the logit scale (see logit_scale) */
    double d = la && lb ? hr_t_maxdiff(label, la, lb, n) / logit_scale(la, n) : INFINITY;
    free(la);
    free(lb);
    return d;
}

static hr_model *load_copy(void) {
    hr_model *m = NULL, *c = NULL;
    CHECK(hr_model_load(MODEL, &m) == HR_OK, "%s", hr_last_error());
    if (m) c = hr_t_writable_copy(m);
    hr_model_free(m);
    return c;
}

/* Makes KV head b of every layer a copy of KV head a (K and V rows). */
static void copy_kv_head(hr_model *m, int a, int b) {
    const hr_config *c = hr_model_config(m);
    size_t n = (size_t)c->head_dim * c->dim;
    for (int l = 0; l < c->n_layers; l++) {
        float *wk = (float *)m->w.layers[l].wk, *wv = (float *)m->w.layers[l].wv;
        memcpy(wk + b * n, wk + a * n, n * sizeof(float));
        memcpy(wv + b * n, wv + a * n, n * sizeof(float));
    }
}

static void groups_of_one_head_are_the_identity(void) {
    hr_model *m = load_copy();
    if (!m) return;
    int kv = hr_model_config(m)->n_head_kv[0];
    int groups[HR_MAX_LAYERS * 8];
    CHECK(hr_gqa_groups(m, kv, HR_GQA_NEIGHBOUR, NULL, groups) == HR_OK, "%s", hr_last_error());
    hr_model *g = NULL;
    CHECK(hr_gqa_convert(m, kv, groups, &g) == HR_OK, "%s", hr_last_error());
    if (g) CHECK(logit_diff("groups of one", m, g) <= 1e-5, "conversion changed the model");
    hr_model_free(g);
    hr_model_free(m);
}

static void merging_identical_neighbour_heads_is_exact(void) {
    hr_model *m = load_copy();
    if (!m) return;
    copy_kv_head(m, 0, 1);
    copy_kv_head(m, 2, 3);
    int groups[HR_MAX_LAYERS * 8];
    hr_model *g = NULL;
    CHECK(hr_gqa_groups(m, 2, HR_GQA_NEIGHBOUR, NULL, groups) == HR_OK, "%s", hr_last_error());
    CHECK(hr_gqa_convert(m, 2, groups, &g) == HR_OK, "%s", hr_last_error());
    if (g) {
        CHECK(hr_model_config(g)->n_head_kv[0] == 2 && hr_model_config(g)->n_head[0] == 8, "shape");
        CHECK(logit_diff("identical neighbours merged", m, g) <= 1e-5, "merge of identical heads not exact");
    }
    hr_model_free(g);
    hr_model_free(m);
}

static void asym_grouping_finds_heads_with_the_same_activations(void) {
    hr_model *m = load_copy();
    if (!m) return;
    copy_kv_head(m, 0, 3);
    copy_kv_head(m, 1, 2);
    const hr_config *c = hr_model_config(m);
    int K = hr_config_max_kv_heads(c);
    float *sim = calloc((size_t)c->n_layers * K * K, sizeof(float));
    hr_context *ctx = NULL;
    hr_context_params p = hr_context_default_params();
    p.n_ctx = 64;
    CHECK(hr_context_new(m, &p, &ctx) == HR_OK, "%s", hr_last_error());
    CHECK(hr_gqa_kv_similarity(ctx, k_tokens, N_TOK, 16, sim) == HR_OK, "%s", hr_last_error());
    CHECK(fabsf(sim[3] - 2.0f) < 1e-4, "identical heads have similarity %g, expected 2", sim[3]);
    int groups[HR_MAX_LAYERS * 8], ng[HR_MAX_LAYERS * 8];
    CHECK(hr_gqa_groups(m, 2, HR_GQA_ASYM, sim, groups) == HR_OK, "%s", hr_last_error());
    for (int l = 0; l < c->n_layers; l++)
        CHECK(groups[l * K] == groups[l * K + 3] && groups[l * K + 1] == groups[l * K + 2] &&
                  groups[l * K] != groups[l * K + 1],
              "layer %d grouped %d %d %d %d", l, groups[l * K], groups[l * K + 1], groups[l * K + 2],
              groups[l * K + 3]);
    hr_model *a = NULL, *n = NULL;
    CHECK(hr_gqa_convert(m, 2, groups, &a) == HR_OK, "%s", hr_last_error());
    hr_gqa_groups(m, 2, HR_GQA_NEIGHBOUR, NULL, ng);
    CHECK(hr_gqa_convert(m, 2, ng, &n) == HR_OK, "%s", hr_last_error());
    if (a && n) {
        CHECK(logit_diff("asym groups merged", m, a) <= 1e-5, "asym merge of identical heads not exact");
        CHECK(logit_diff("neighbour groups merged", m, n) > 1e-3, "neighbour merge should change the model");
    }
    hr_model_free(a);
    hr_model_free(n);
    hr_context_free(ctx);
    free(sim);
    hr_model_free(m);
}

static void a_converted_model_round_trips_through_gguf(void) {
    hr_model *m = load_copy(), *g = NULL, *back = NULL;
    if (!m) return;
    int groups[HR_MAX_LAYERS * 8];
    hr_gqa_groups(m, 1, HR_GQA_NEIGHBOUR, NULL, groups);
    CHECK(hr_gqa_convert(m, 1, groups, &g) == HR_OK, "%s", hr_last_error());
    char path[256];
    snprintf(path, sizeof path, "/tmp/hr_test_gqa_%d.gguf", (int)getpid());
    if (g) {
        CHECK(hr_model_config(g)->n_head_kv[2] == 1, "kv heads %d", hr_model_config(g)->n_head_kv[2]);
        CHECK(hr_model_save_gguf(g, NULL, path, HR_DTYPE_F32) == HR_OK, "%s", hr_last_error());
        CHECK(hr_model_load(path, &back) == HR_OK, "%s", hr_last_error());
    }
    if (back) CHECK(logit_diff("gqa saved and loaded", g, back) <= 1e-5, "round trip changed the model");
    unlink(path);
    hr_model_free(back);
    hr_model_free(g);
    hr_model_free(m);
}

static void kv_counts_that_do_not_divide_are_rejected(void) {
    hr_model *m = load_copy();
    if (!m) return;
    int groups[HR_MAX_LAYERS * 8];
    hr_model *g = NULL;
    CHECK(hr_gqa_groups(m, 3, HR_GQA_NEIGHBOUR, NULL, groups) == HR_ERR_INVALID_ARG, "3 groups of 4 accepted");
    CHECK(hr_gqa_convert(m, 3, groups, &g) == HR_ERR_INVALID_ARG && !g, "convert accepted 3");
    CHECK(strstr(hr_last_error(), "cannot be merged") != NULL, "message: %s", hr_last_error());
    hr_gqa_grouping gr;
    CHECK(hr_gqa_grouping_from_name("nearest", &gr) == HR_ERR_INVALID_ARG, "unknown grouping accepted");
    /* a group assignment with unequal group sizes */
    hr_gqa_groups(m, 2, HR_GQA_NEIGHBOUR, NULL, groups);
    groups[1] = 1;
    CHECK(hr_gqa_convert(m, 2, groups, &g) == HR_ERR_INVALID_ARG && !g, "uneven groups accepted");
    hr_model_free(m);
}

/* The converted model is built in memory: it holds its matrices once, as
 * the panels its forward reads in place (hr_model_own_panels), so its
 * first context adds no packed copy (it used to double the bytes). */
static void a_converted_model_holds_its_matrices_once(void) {
    hr_model *m = NULL, *g = NULL;
    CHECK(hr_model_load(MODEL, &m) == HR_OK, "%s", hr_last_error());
    int groups[HR_MAX_LAYERS * 8];
    CHECK(m && hr_gqa_groups(m, 2, HR_GQA_NEIGHBOUR, NULL, groups) == HR_OK, "%s", hr_last_error());
    CHECK(m && hr_gqa_convert(m, 2, groups, &g) == HR_OK, "%s", hr_last_error());
    if (g) {
        int64_t before = hr_model_weight_bytes(g);
        hr_context *ctx = NULL;
        hr_context_params p = hr_context_default_params();
        p.n_ctx = 16;
        CHECK(hr_context_new(g, &p, &ctx) == HR_OK, "%s", hr_last_error());
        int64_t after = hr_model_weight_bytes(g);
        const hr_mat_src *k = hr_model_src(g, 0, HR_SLOT_K);
        printf("    weight bytes %lld before the first context, %lld after; merged K %s\n", (long long)before,
               (long long)after, k && k->panels ? "as panels" : "as rows");
        CHECK(after == before && k && k->panels && !g->w.layers[0].wk, "the context added %lld bytes",
              (long long)(after - before));
        hr_context_free(ctx);
    }
    hr_model_free(g);
    hr_model_free(m);
}

int main(void) {
    HR_T_REQUIRE_SHARED("models/stories260K/stories260K.bin");
    RUN(groups_of_one_head_are_the_identity);
    RUN(merging_identical_neighbour_heads_is_exact);
    RUN(asym_grouping_finds_heads_with_the_same_activations);
    RUN(a_converted_model_round_trips_through_gguf);
    RUN(kv_counts_that_do_not_divide_are_rejected);
    RUN(a_converted_model_holds_its_matrices_once);
    TEST_MAIN_END();
}
