/* Head-aware KV cache: plans, policies, memory, exactness. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "headroom/context.h"
#include "headroom/kvcache.h"
#include "headroom/model.h"
#include "model/config.h"

static hr_model *model;
static const hr_config *cfg;
static int V;
enum { N = 120 };
static int32_t toks[N];

/* Logits (N, V) with a plan, by prefill (batch) or token-by-token decode. */
static float *run(const hr_kv_plan *plan, bool decode, size_t *kv_bytes) {
    hr_context_params p = hr_context_default_params();
    p.kv_plan = plan;
    p.n_ctx = 256;
    hr_context *ctx = NULL;
    float *lg = calloc((size_t)N * V, sizeof(float));
    hr_status st = hr_context_new(model, &p, &ctx);
    if (st == HR_OK && decode)
        for (int t = 0; t < N && st == HR_OK; t++) st = hr_forward(ctx, &toks[t], 1, lg + (size_t)t * V, false);
    else if (st == HR_OK)
        st = hr_forward(ctx, toks, N, lg, true);
    if (st != HR_OK) {
        fprintf(stderr, "run failed: %s\n", hr_last_error());
        free(lg);
        lg = NULL;
    }
    if (kv_bytes) *kv_bytes = ctx ? hr_context_kv_bytes(ctx) : 0;
    hr_context_free(ctx);
    return lg;
}

static hr_kv_plan *uniform(hr_kv_policy pol) {
    hr_kv_plan *p = NULL;
    hr_kv_plan_new(cfg, &p);
    for (int l = 0; l < cfg->n_layers; l++)
        for (int g = 0; g < cfg->n_head_kv[l]; g++) hr_kv_plan_set(p, l, g, pol);
    return p;
}

static void an_all_full_plan_is_bit_identical_to_the_plain_cache(void) {
    hr_kv_policy full = {HR_KV_FULL, 0, 0, 0};
    hr_kv_plan *plan = uniform(full);
    size_t b0, b1;
    float *a = run(NULL, false, &b0), *b = run(plan, false, &b1), *c = run(plan, true, NULL);
    CHECK(a && b && c, "runs failed");
    if (a && b && c) {
        CHECK(hr_t_maxdiff("all-full vs plain", a, b, (size_t)N * V) == 0, "not identical");
        CHECK(hr_t_maxdiff("all-full decode vs plain", a, c, (size_t)N * V) == 0, "not identical");
    }
    CHECK(b0 == b1, "kv bytes %zu vs %zu", b0, b1);
    free(a), free(b), free(c);
    hr_kv_plan_free(plan);
}

static void streaming_and_heavy_covering_the_context_are_identical_to_full(void) {
    hr_kv_policy pols[2] = {{HR_KV_STREAMING, 4, 256, 0}, {HR_KV_HEAVY, 0, 128, 128}};
    float *a = run(NULL, false, NULL);
    for (int k = 0; k < 2; k++) {
        hr_kv_plan *plan = uniform(pols[k]);
        float *b = run(plan, false, NULL), *c = run(plan, true, NULL);
        CHECK(a && b && c, "runs failed");
        if (a && b && c) {
            CHECK(hr_t_maxdiff("covering prefill vs full", a, b, (size_t)N * V) == 0, "policy %d", k);
            CHECK(hr_t_maxdiff("covering decode vs full", a, c, (size_t)N * V) == 0, "policy %d", k);
        }
        free(b), free(c);
        hr_kv_plan_free(plan);
    }
    free(a);
}

static void streaming_prefill_and_decode_agree_and_memory_shrinks(void) {
    hr_kv_policy st = {HR_KV_STREAMING, 2, 16, 0};
    hr_kv_plan *plan = uniform(st);
    size_t full_bytes, stream_bytes;
    float *full = run(NULL, false, &full_bytes);
    float *a = run(plan, false, &stream_bytes), *b = run(plan, true, NULL);
    CHECK(a && b, "runs failed");
    if (a && b) {
        CHECK(hr_t_maxdiff("streaming prefill vs decode", a, b, (size_t)N * V) <= 1e-6, "differ");
        /* Positions inside sink + window see the same keys as full attention. */
        CHECK(hr_t_maxdiff("first 18 positions vs full", a, full, (size_t)18 * V) <= 1e-6, "differ early");
        CHECK(hr_t_maxdiff("later positions vs full", a + (size_t)60 * V, full + (size_t)60 * V, (size_t)60 * V) > 1e-3,
              "eviction changed nothing");
    }
    printf("    KV bytes: full %zu, streaming(2+16 of 256) %zu\n", full_bytes, stream_bytes);
    CHECK(stream_bytes * 10 < full_bytes, "streaming did not save memory");
    free(full), free(a), free(b);
    hr_kv_plan_free(plan);
}

typedef struct {
    int bad, rows;
    int sink, window;
} vis_probe;

static int check_visibility(const hr_hook_event *ev, void *ud) {
    vis_probe *v = ud;
    for (int t = 0; t < ev->n_tokens; t++) {
        int q = ev->pos0 + t;
        const float *row = ev->data + (size_t)t * ev->stride;
        double sum = 0;
        for (int k = 0; k < ev->n_cols; k++) {
            sum += row[k];
            bool visible = k <= q && (k < v->sink || k > q - v->window);
            if (!visible && row[k] != 0) v->bad++;
        }
        if (fabs(sum - 1) > 1e-5) v->bad++;
        v->rows++;
    }
    return 0;
}

static void streaming_heads_attend_only_to_sinks_and_the_window(void) {
    hr_kv_policy st = {HR_KV_STREAMING, 3, 10, 0};
    hr_kv_plan *plan = uniform(st);
    hr_context_params p = hr_context_default_params();
    p.kv_plan = plan;
    p.n_ctx = 256;
    p.n_batch = 32;
    hr_context *ctx = NULL;
    CHECK(hr_context_new(model, &p, &ctx) == HR_OK, "%s", hr_last_error());
    vis_probe v = {0, 0, 3, 10};
    hr_context_set_hook(ctx, check_visibility, HR_HOOK_ATTN_PROBS, &v);
    CHECK(hr_forward(ctx, toks, 80, NULL, false) == HR_OK, "%s", hr_last_error());
    CHECK(hr_forward(ctx, toks + 80, 1, NULL, false) == HR_OK, "%s", hr_last_error());
    CHECK(v.rows == 81 * cfg->n_layers * cfg->n_head[0], "%d rows", v.rows);
    CHECK(v.bad == 0, "%d rows/entries break the sink+window rule", v.bad);
    hr_context_free(ctx);
    hr_kv_plan_free(plan);
}

static void heavy_hitter_cache_stays_within_its_budget(void) {
    hr_kv_policy hv = {HR_KV_HEAVY, 0, 8, 16};
    hr_kv_plan *plan = uniform(hv);
    size_t bytes, full_bytes;
    float *full = run(NULL, true, &full_bytes), *a = run(plan, true, &bytes);
    CHECK(a != NULL, "heavy run failed");
    if (a) {
        CHECK(hr_t_maxdiff("heavy first 24 positions vs full", a, full, (size_t)24 * V) <= 1e-6, "differ early");
        double d = hr_t_maxdiff("heavy later positions vs full", a + (size_t)60 * V, full + (size_t)60 * V, (size_t)60 * V);
        CHECK(d > 1e-4 && isfinite(d), "eviction changed nothing or broke the logits");
    }
    CHECK(bytes * 8 < full_bytes, "heavy cache %zu vs full %zu bytes", bytes, full_bytes);
    free(full), free(a);
    hr_kv_plan_free(plan);
}

static char *write_temp(const char *text) {
    static char path[64];
    snprintf(path, sizeof path, "/tmp/hr_plan_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    if (write(fd, text, strlen(text)) < 0) path[0] = 0;
    close(fd);
    return path;
}

static void plan_files_round_trip_and_bad_plans_are_rejected(void) {
    hr_kv_plan *p = NULL;
    const char *good = "# mixed\ndefault streaming sink=4 window=32\nlayer 2 full\nhead 4 1 heavy budget=20 window=10\n";
    char *path = write_temp(good);
    CHECK(hr_kv_plan_load(path, cfg, &p) == HR_OK, "%s", hr_last_error());
    if (p) {
        CHECK(hr_kv_plan_get(p, 0, 0).kind == HR_KV_STREAMING && hr_kv_plan_get(p, 0, 0).window == 32, "default");
        CHECK(hr_kv_plan_get(p, 2, 3).kind == HR_KV_FULL, "layer override");
        CHECK(hr_kv_plan_get(p, 4, 1).kind == HR_KV_HEAVY && hr_kv_plan_get(p, 4, 1).budget == 20, "head override");
        CHECK(hr_kv_plan_save(p, path) == HR_OK, "save");
        hr_kv_plan *q = NULL;
        CHECK(hr_kv_plan_load(path, cfg, &q) == HR_OK, "reload %s", hr_last_error());
        for (int l = 0; q && l < cfg->n_layers; l++)
            for (int g = 0; g < cfg->n_head_kv[l]; g++)
                CHECK(memcmp(&(hr_kv_policy){hr_kv_plan_get(p, l, g).kind, hr_kv_plan_get(p, l, g).sink,
                                              hr_kv_plan_get(p, l, g).window, hr_kv_plan_get(p, l, g).budget},
                             &(hr_kv_policy){hr_kv_plan_get(q, l, g).kind, hr_kv_plan_get(q, l, g).sink,
                                              hr_kv_plan_get(q, l, g).window, hr_kv_plan_get(q, l, g).budget},
                             sizeof(hr_kv_policy)) == 0,
                      "layer %d head %d differs after save/load", l, g);
        hr_kv_plan_free(q);
        hr_kv_plan_free(p);
    }
    if (path) unlink(path);
    const char *bad[] = {"default fancy\n", "head 9 0 full\n", "head 0 7 full\n", "layer 0 streaming window=abc\n",
                         "layer 0 streaming colour=3\n", "nonsense\n"};
    for (int i = 0; i < 6; i++) {
        p = NULL;
        path = write_temp(bad[i]);
        hr_status st = hr_kv_plan_load(path, cfg, &p);
        CHECK(st != HR_OK && p == NULL && strlen(hr_last_error()) > 0, "accepted: %s", bad[i]);
        if (path) unlink(path);
    }
    /* A window larger than the context is refused when the context is made. */
    hr_kv_policy huge = {HR_KV_STREAMING, 4, 100000, 0};
    hr_kv_plan *plan = uniform(huge);
    hr_context_params cp = hr_context_default_params();
    cp.kv_plan = plan;
    hr_context *ctx = NULL;
    CHECK(hr_context_new(model, &cp, &ctx) == HR_ERR_RANGE && !ctx, "window beyond context accepted");
    CHECK(strstr(hr_last_error(), "larger than the context") != NULL, "message: %s", hr_last_error());
    hr_kv_plan_free(plan);
    /* A plan for another shape is refused. */
    hr_config other = *cfg;
    other.n_layers = cfg->n_layers - 1;
    hr_kv_plan_new(&other, &plan);
    cp.kv_plan = plan;
    CHECK(hr_context_new(model, &cp, &ctx) == HR_ERR_INVALID_ARG && !ctx, "plan for another shape accepted");
    hr_kv_plan_free(plan);
}

static void mixed_plans_keep_the_top_scored_heads_full(void) {
    int mh = hr_config_max_heads(cfg), total = 0;
    float *scores = calloc((size_t)cfg->n_layers * mh, sizeof(float));
    scores[1 * mh + 5] = 9; /* layer 1, query head 5 -> KV head 2 */
    scores[3 * mh + 0] = 8; /* layer 3, query head 0 -> KV head 0 */
    for (int l = 0; l < cfg->n_layers; l++) total += cfg->n_head_kv[l];
    hr_kv_policy rest = {HR_KV_STREAMING, 4, 32, 0};
    hr_kv_plan *p = NULL;
    CHECK(hr_kv_plan_from_scores(cfg, scores, 2.0f / total, rest, &p) == HR_OK, "%s", hr_last_error());
    if (p) {
        CHECK(hr_kv_plan_get(p, 1, 2).kind == HR_KV_FULL && hr_kv_plan_get(p, 3, 0).kind == HR_KV_FULL, "top heads");
        CHECK(hr_kv_plan_n_reduced(p) == total - 2, "%d reduced", hr_kv_plan_n_reduced(p));
    }
    hr_kv_plan *r = NULL;
    CHECK(hr_kv_plan_random(cfg, 2.0f / total, rest, 7, &r) == HR_OK, "random");
    if (r) CHECK(hr_kv_plan_n_reduced(r) == total - 2, "random plan keeps %d full", total - hr_kv_plan_n_reduced(r));
    hr_kv_plan_free(p);
    CHECK(hr_kv_plan_from_scores(cfg, scores, 1.5f, rest, &p) == HR_ERR_RANGE && !p, "fraction > 1 accepted");
    hr_kv_plan_free(r);
    free(scores);
}

int main(void) {
    HR_T_REQUIRE_SHARED("models/stories260K/stories260K.bin");
    if (hr_model_load(SHARED("models/stories260K/stories260K.bin"), &model) != HR_OK) {
        fprintf(stderr, "cannot load model: %s\n", hr_last_error());
        return 1;
    }
    cfg = hr_model_config(model);
    V = cfg->vocab_size;
    unsigned s = 11;
    toks[0] = 1;
    for (int i = 1; i < N; i++) toks[i] = (int32_t)((s = s * 1103515245u + 12345u) >> 16) % V;
    RUN(an_all_full_plan_is_bit_identical_to_the_plain_cache);
    RUN(streaming_and_heavy_covering_the_context_are_identical_to_full);
    RUN(streaming_prefill_and_decode_agree_and_memory_shrinks);
    RUN(streaming_heads_attend_only_to_sinks_and_the_window);
    RUN(heavy_hitter_cache_stays_within_its_budget);
    RUN(plan_files_round_trip_and_bad_plans_are_rejected);
    RUN(mixed_plans_keep_the_top_scored_heads_full);
    hr_model_free(model);
    TEST_MAIN_END();
}
