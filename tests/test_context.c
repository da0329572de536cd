/* Forward pass: prefill vs decode, batching, cache truncation, hooks, gates, errors. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "headroom/context.h"
#include "headroom/model.h"
#include "model/config.h"

#if HR_HAVE_BLAS
#include <cblas.h>
#endif

static hr_model *model;
static int V;
static int32_t toks[40];

static float *logits_with(hr_context_params p, int n) {
    hr_context *ctx = NULL;
    float *lg = calloc((size_t)n * V, sizeof(float));
    if (hr_context_new(model, &p, &ctx) != HR_OK || hr_forward(ctx, toks, n, lg, true) != HR_OK) {
        free(lg);
        lg = NULL;
    }
    hr_context_free(ctx);
    return lg;
}

static void prefill_and_token_by_token_decode_agree(void) {
    int n = 40;
    float *pre = logits_with(hr_context_default_params(), n);
    float *dec = calloc((size_t)n * V, sizeof(float));
    hr_context *ctx = NULL;
    CHECK(hr_context_new(model, NULL, &ctx) == HR_OK, "%s", hr_last_error());
    for (int t = 0; t < n; t++) CHECK(hr_forward(ctx, &toks[t], 1, dec + (size_t)t * V, false) == HR_OK, "decode");
    CHECK(hr_context_n_past(ctx) == n, "n_past %d", hr_context_n_past(ctx));
    CHECK(pre != NULL, "prefill failed");
    if (pre) CHECK(hr_t_maxdiff("prefill vs decode", pre, dec, (size_t)n * V) <= 1e-5, "differ");
    hr_context_free(ctx);
    free(pre), free(dec);
}

static void small_batches_and_thread_counts_give_the_same_logits(void) {
    hr_context_params p = hr_context_default_params();
    float *ref = logits_with(p, 40);
    int batches[] = {1, 7, 16};
    for (int i = 0; i < 3; i++) {
        p.n_batch = batches[i];
        p.n_threads = 1 + i;
        float *lg = logits_with(p, 40);
        CHECK(lg && ref, "forward failed");
        if (lg && ref) CHECK(hr_t_maxdiff("batched", ref, lg, (size_t)40 * V) <= 1e-5, "batch %d", batches[i]);
        free(lg);
    }
    free(ref);
}

#if HR_HAVE_BLAS
static void openblas_prefill_agrees_with_the_exact_gemm_to_rounding(void) {
    hr_context_params p = hr_context_default_params();
    float *exact = logits_with(p, 40);
    p.blas_prefill = true;
    float *blas = logits_with(p, 40);
    CHECK(exact && blas, "forward failed");
    if (exact && blas) {
        double d = hr_t_maxdiff("OpenBLAS prefill vs exact", exact, blas, (size_t)40 * V);
        CHECK(d <= 1e-4, "differ by %g", d);
    }
    free(exact), free(blas);
}

/* openblas_set_num_threads is process-wide: only a context that asks for
 * the blas path may set it (to 1, as its products run in pool tasks). */
static void only_a_blas_prefill_context_sets_openblas_threads(void) {
    openblas_set_num_threads(2);
    hr_context_params p = hr_context_default_params();
    hr_context *ctx = NULL;
    CHECK(hr_context_new(model, &p, &ctx) == HR_OK, "%s", hr_last_error());
    CHECK(openblas_get_num_threads() == 2, "a plain context changed OpenBLAS's threads to %d",
          openblas_get_num_threads());
    hr_context_free(ctx);
    p.blas_prefill = true;
    CHECK(hr_context_new(model, &p, &ctx) == HR_OK, "%s", hr_last_error());
    CHECK(openblas_get_num_threads() == 1, "blas context left %d OpenBLAS threads", openblas_get_num_threads());
    hr_context_free(ctx);
}
#else
static void blas_prefill_without_openblas_is_unsupported(void) {
    hr_context_params p = hr_context_default_params();
    p.blas_prefill = true;
    hr_context *ctx = NULL;
    CHECK(hr_context_new(model, &p, &ctx) == HR_ERR_UNSUPPORTED && ctx == NULL, "blas_prefill accepted");
    CHECK(strstr(hr_last_error(), "built without OpenBLAS") != NULL, "message: %s", hr_last_error());
}
#endif

static void truncating_the_cache_and_rerunning_reproduces_the_logits(void) {
    hr_context *ctx = NULL;
    hr_context_new(model, NULL, &ctx);
    float *a = calloc((size_t)V, 4), *b = calloc((size_t)V, 4);
    hr_forward(ctx, toks, 30, a, false);
    CHECK(hr_context_truncate(ctx, 20) == HR_OK, "truncate");
    CHECK(hr_forward(ctx, toks + 20, 10, b, false) == HR_OK, "rerun");
    CHECK(hr_t_maxdiff("after truncate", a, b, (size_t)V) <= 1e-5, "differ");
    CHECK(hr_context_truncate(ctx, 31) != HR_OK, "truncate beyond n_past accepted");
    hr_context_free(ctx);
    free(a), free(b);
}

typedef struct {
    int probs_events, bad_rows, head_events;
    double worst_sum;
} probe;

static int probe_hook(const hr_hook_event *ev, void *ud) {
    probe *p = ud;
    if (ev->point == HR_HOOK_ATTN_PROBS) {
        p->probs_events++;
        for (int t = 0; t < ev->n_tokens; t++) {
            const float *row = ev->data + (size_t)t * ev->stride;
            double s = 0;
            for (int j = 0; j < ev->n_cols; j++) s += row[j];
            for (int j = ev->pos0 + t + 1; j < ev->n_cols; j++) p->bad_rows += row[j] != 0;
            if (fabs(s - 1) > p->worst_sum) p->worst_sum = fabs(s - 1);
        }
    } else if (ev->point == HR_HOOK_HEAD_OUT) {
        p->head_events++;
    }
    return 0;
}

static void attention_probability_hook_sees_causal_rows_that_sum_to_one(void) {
    const hr_config *c = hr_model_config(model);
    hr_context *ctx = NULL;
    hr_context_new(model, NULL, &ctx);
    probe p = {0};
    hr_context_set_hook(ctx, probe_hook, HR_HOOK_ATTN_PROBS | HR_HOOK_HEAD_OUT, &p);
    hr_forward(ctx, toks, 12, NULL, false);
    hr_forward(ctx, toks + 12, 1, NULL, false);
    CHECK(p.probs_events == 2 * c->n_layers * c->n_head[0], "%d events", p.probs_events);
    CHECK(p.head_events == p.probs_events, "%d head events", p.head_events);
    CHECK(p.bad_rows == 0, "%d non-zero entries after the causal limit", p.bad_rows);
    CHECK(p.worst_sum < 1e-5, "row sum off by %g", p.worst_sum);
    hr_context_free(ctx);
}

static int zero_head(const hr_hook_event *ev, void *ud) {
    const int *target = ud; /* {layer, head} */
    if (ev->layer == target[0] && ev->head == target[1])
        for (int t = 0; t < ev->n_tokens; t++) memset(ev->data + (size_t)t * ev->stride, 0, sizeof(float) * ev->n_cols);
    return 0;
}

static void a_zero_gate_equals_zeroing_the_head_output_in_a_hook(void) {
    const hr_config *c = hr_model_config(model);
    int mh = hr_config_max_heads(c);
    float *gates = malloc(sizeof(float) * c->n_layers * mh);
    for (int i = 0; i < c->n_layers * mh; i++) gates[i] = 1;
    int target[2] = {2, 5};
    gates[target[0] * mh + target[1]] = 0;
    float *base = logits_with(hr_context_default_params(), 20);
    float *a = calloc((size_t)20 * V, 4), *b = calloc((size_t)20 * V, 4);
    hr_context *ctx = NULL;
    hr_context_new(model, NULL, &ctx);
    CHECK(hr_context_set_head_gates(ctx, gates) == HR_OK, "set gates");
    hr_forward(ctx, toks, 20, a, true);
    hr_context_free(ctx);
    hr_context_new(model, NULL, &ctx);
    hr_context_set_hook(ctx, zero_head, HR_HOOK_HEAD_OUT, target);
    hr_forward(ctx, toks, 20, b, true);
    hr_context_free(ctx);
    CHECK(hr_t_maxdiff("gate 0 vs hook zeroing", a, b, (size_t)20 * V) <= 1e-6, "differ");
    CHECK(hr_t_maxdiff("gate 0 vs base", a, base, (size_t)20 * V) > 1e-4, "removing a head changed nothing");
    gates[0] = NAN;
    hr_context_new(model, NULL, &ctx);
    CHECK(hr_context_set_head_gates(ctx, gates) == HR_ERR_INVALID_ARG, "NaN gate accepted");
    hr_context_free(ctx);
    free(gates), free(base), free(a), free(b);
}

typedef struct {
    int layer;
    float *saved; /* (n, dim) */
} resid_grab;

static int grab_resid(const hr_hook_event *ev, void *ud) {
    resid_grab *g = ud;
    if (ev->point == HR_HOOK_RESID_PRE && ev->layer == g->layer)
        for (int t = 0; t < ev->n_tokens; t++)
            memcpy(g->saved + (size_t)(ev->pos0 + t) * ev->n_cols, ev->data + (size_t)t * ev->stride,
                   sizeof(float) * ev->n_cols);
    return 0;
}

static void rerunning_from_a_layer_with_a_gated_head_equals_a_full_gated_forward(void) {
    const hr_config *c = hr_model_config(model);
    int n = 30, mh = hr_config_max_heads(c), dim = c->dim;
    float *gates = malloc(sizeof(float) * c->n_layers * mh);
    float *full = calloc((size_t)n * V, 4), *partial = calloc((size_t)n * V, 4);
    for (int layer = 0; layer < c->n_layers; layer++) {
        for (int i = 0; i < c->n_layers * mh; i++) gates[i] = 1;
        gates[layer * mh + 3] = 0;
        hr_context *ctx = NULL;
        hr_context_params p = hr_context_default_params();
        p.n_batch = 8; /* the re-run must also work across internal batches */
        hr_context_new(model, &p, &ctx);
        resid_grab g = {layer, calloc((size_t)n * dim, 4)};
        hr_context_set_hook(ctx, grab_resid, HR_HOOK_RESID_PRE, &g);
        hr_forward(ctx, toks, n, NULL, false);
        hr_context_set_hook(ctx, NULL, 0, NULL);
        hr_context_set_head_gates(ctx, gates);
        CHECK(hr_forward_from(ctx, layer, 0, g.saved, n, partial, true) == HR_OK, "%s", hr_last_error());
        hr_context_free(ctx);
        hr_context_new(model, NULL, &ctx);
        hr_context_set_head_gates(ctx, gates);
        hr_forward(ctx, toks, n, full, true);
        hr_context_free(ctx);
        CHECK(hr_t_maxdiff("forward_from vs full", full, partial, (size_t)n * V) <= 1e-6, "layer %d", layer);
        free(g.saved);
    }
    free(gates), free(full), free(partial);
}

static void mean_ablation_moves_a_gated_head_to_its_mean(void) {
    const hr_config *c = hr_model_config(model);
    int mh = hr_config_max_heads(c), hd = c->head_dim;
    size_t nm = (size_t)c->n_layers * mh * hd;
    float *means = calloc(nm, sizeof(float));
    float *gates = malloc(sizeof(float) * c->n_layers * mh);
    for (int i = 0; i < c->n_layers * mh; i++) gates[i] = 1;
    float *a = calloc((size_t)V, 4), *b = calloc((size_t)V, 4), *d = calloc((size_t)V, 4);
    hr_context *ctx = NULL;
    hr_context_new(model, NULL, &ctx);
    /* zero means + gate 0 == zero-ablation */
    gates[1 * mh + 2] = 0;
    hr_context_set_head_gates(ctx, gates);
    hr_forward(ctx, toks, 10, a, false);
    hr_context_truncate(ctx, 0);
    CHECK(hr_context_set_head_means(ctx, means) == HR_OK, "set means");
    hr_forward(ctx, toks, 10, b, false);
    CHECK(hr_t_maxdiff("zero means vs zero ablation", a, b, (size_t)V) == 0, "differ");
    for (size_t i = 0; i < nm; i++) means[i] = 0.5f;
    hr_context_set_head_means(ctx, means);
    hr_context_truncate(ctx, 0);
    hr_forward(ctx, toks, 10, d, false);
    CHECK(hr_t_maxdiff("non-zero means vs zero ablation", a, d, (size_t)V) > 1e-4, "means ignored");
    hr_context_free(ctx);
    free(means), free(gates), free(a), free(b), free(d);
}


/* ---- query / key / value hooks and attention knockout ---- */

typedef struct {
    uint32_t zero_point;  /* HR_HOOK_Q, _K or _V to zero at (layer, zero_head); 0 = none */
    int layer, zero_head; /* zero_head: query head for Q, KV head for K / V */
    int events;           /* zeroing events seen */
    int probs_head, n;    /* head of `layer` whose probabilities are kept, tokens */
    float *probs;         /* (n, n) its probabilities, or NULL */
} qkv_probe;

static int qkv_hook(const hr_hook_event *ev, void *ud) {
    qkv_probe *z = ud;
    if (ev->layer != z->layer) return 0;
    if (ev->point == (hr_hook_point)z->zero_point && ev->head == z->zero_head) {
        z->events++;
        for (int t = 0; t < ev->n_tokens; t++) memset(ev->data + (size_t)t * ev->stride, 0, sizeof(float) * ev->n_cols);
    } else if (ev->point == HR_HOOK_ATTN_PROBS && ev->head == z->probs_head && z->probs) {
        for (int t = 0; t < ev->n_tokens; t++)
            memcpy(z->probs + (size_t)(ev->pos0 + t) * z->n, ev->data + (size_t)t * ev->stride, sizeof(float) * z->n);
    }
    return 0;
}

static void zeroing_a_kv_heads_values_equals_gating_its_query_heads_to_zero(void) {
    const hr_config *c = hr_model_config(model);
    int n = 20, mh = hr_config_max_heads(c), layer = 1, g = 1, group = c->n_head[layer] / c->n_head_kv[layer];
    float *gates = malloc(sizeof(float) * c->n_layers * mh);
    for (int i = 0; i < c->n_layers * mh; i++) gates[i] = 1;
    for (int h = g * group; h < (g + 1) * group; h++) gates[layer * mh + h] = 0;
    float *a = calloc((size_t)n * V, 4), *b = calloc((size_t)n * V, 4);
    hr_context *ctx = NULL;
    hr_context_new(model, NULL, &ctx);
    hr_context_set_head_gates(ctx, gates);
    hr_forward(ctx, toks, n, a, true);
    hr_context_free(ctx);
    hr_context_new(model, NULL, &ctx);
    qkv_probe z = {HR_HOOK_V, layer, g, 0, -1, n, NULL};
    hr_context_set_hook(ctx, qkv_hook, HR_HOOK_V, &z);
    hr_forward(ctx, toks, n, b, true);
    hr_context_free(ctx);
    CHECK(z.events == 1, "%d V events for KV head %d.%d", z.events, layer, g);
    CHECK(hr_t_maxdiff("V zeroed vs its query heads gated", a, b, (size_t)n * V) == 0, "differ");
    free(gates), free(a), free(b);
}

/* A zero query (or key) gives every visible key the same score: the head's
 * attention row t is 1 / (t + 1) on keys 0..t. */
static void a_zero_query_or_key_gives_uniform_attention_over_the_visible_keys(void) {
    const hr_config *c = hr_model_config(model);
    int n = 16, layer = 2, head = 3, group = c->n_head[layer] / c->n_head_kv[layer];
    uint32_t points[2] = {HR_HOOK_Q, HR_HOOK_K};
    for (int i = 0; i < 2; i++) {
        hr_context *ctx = NULL;
        hr_context_new(model, NULL, &ctx);
        qkv_probe z = {
            points[i], layer, points[i] == HR_HOOK_Q ? head : head / group, 0, head, n, calloc((size_t)n * n, 4)};
        hr_context_set_hook(ctx, qkv_hook, points[i] | HR_HOOK_ATTN_PROBS, &z);
        hr_forward(ctx, toks, n, NULL, false);
        double worst = 0;
        for (int t = 0; t < n; t++)
            for (int k = 0; k < n; k++) {
                double want = k <= t ? 1.0 / (t + 1) : 0.0, d = fabs(z.probs[t * n + k] - want);
                worst = d > worst ? d : worst;
            }
        printf("    zero %s: max |p - 1/(t+1)| %.3g\n", i ? "key" : "query", worst);
        CHECK(z.events == 1 && worst <= 1e-6, "%s: %d events, worst %g", i ? "K" : "Q", z.events, worst);
        free(z.probs);
        hr_context_free(ctx);
    }
}

/* Knockout on a layer-0 head: the scores are unchanged, so the masked row
 * must equal the unmasked row restricted to the open keys and renormalised
 * (brute force); an empty mask changes nothing, bit for bit; a head whose
 * every key is blocked equals the head gated to 0, bit for bit. */
static void attention_knockout_renormalises_over_the_open_keys(void) {
    const hr_config *c = hr_model_config(model);
    int n = 24, head = 5, mh = hr_config_max_heads(c);
    hr_context_params p = hr_context_default_params();
    p.n_ctx = 32;
    hr_context *ctx = NULL;
    hr_context_new(model, &p, &ctx);
    int nc = hr_context_n_ctx(ctx);
    uint8_t *mask = calloc((size_t)nc * nc, 1);
    float *base = calloc((size_t)n * V, 4), *lg = calloc((size_t)n * V, 4);
    qkv_probe z = {0, 0, -1, 0, head, n, calloc((size_t)n * n, 4)};
    float *ref = calloc((size_t)n * n, 4);
    hr_context_set_hook(ctx, qkv_hook, HR_HOOK_ATTN_PROBS, &z);
    hr_forward(ctx, toks, n, base, true);
    memcpy(ref, z.probs, sizeof(float) * n * n);
    CHECK(hr_context_set_attn_mask(ctx, 0, head, mask) == HR_OK, "%s", hr_last_error());
    hr_context_truncate(ctx, 0);
    hr_forward(ctx, toks, n, lg, true);
    CHECK(hr_t_maxdiff("empty mask vs none", base, lg, (size_t)n * V) == 0, "an empty mask changed the logits");
    unsigned s = 11;
    for (int q = 0; q < n; q++)
        for (int k = 0; k < q; k++) mask[q * nc + k] = ((s = s * 1103515245u + 12345u) >> 16) % 3 == 0;
    hr_context_set_attn_mask(ctx, 0, head, mask);
    hr_context_truncate(ctx, 0);
    hr_forward(ctx, toks, n, lg, true);
    double worst = 0;
    for (int q = 0; q < n; q++) {
        double open = 0;
        for (int k = 0; k <= q; k++) open += mask[q * nc + k] ? 0 : ref[q * n + k];
        for (int k = 0; k <= q; k++) {
            double want = mask[q * nc + k] ? 0 : ref[q * n + k] / open, d = fabs(z.probs[q * n + k] - want);
            worst = d > worst ? d : worst;
        }
    }
    printf("    knockout: max |p - renormalised p| %.3g\n", worst);
    CHECK(worst <= 1e-6, "masked probabilities off by %g", worst);
    CHECK(hr_t_maxdiff("knockout vs none", base, lg, (size_t)n * V) > 1e-4, "the knockout changed nothing");
    /* every key blocked == gate 0 */
    memset(mask, 1, (size_t)nc * nc);
    hr_context_set_attn_mask(ctx, 3, 2, mask);
    hr_context_set_attn_mask(ctx, 0, head, NULL);
    hr_context_truncate(ctx, 0);
    hr_forward(ctx, toks, n, lg, true);
    hr_context_clear_attn_masks(ctx);
    float *gates = malloc(sizeof(float) * c->n_layers * mh), *gated = calloc((size_t)n * V, 4);
    for (int i = 0; i < c->n_layers * mh; i++) gates[i] = 1;
    gates[3 * mh + 2] = 0;
    hr_context_set_head_gates(ctx, gates);
    hr_context_truncate(ctx, 0);
    hr_forward(ctx, toks, n, gated, true);
    CHECK(hr_t_maxdiff("all keys blocked vs gate 0", gated, lg, (size_t)n * V) == 0, "differ");
    CHECK(hr_context_set_attn_mask(ctx, c->n_layers, 0, mask) == HR_ERR_RANGE, "a head outside the model accepted");
    hr_context_free(ctx);
    free(mask), free(base), free(lg), free(z.probs), free(ref), free(gates), free(gated);
}

/* Two copies of a suffix side by side (cache slots 10..19 and 20..29, both at
 * RoPE positions 10..19, each masked from the other by a mask shared by
 * every head) give each copy the logits of the suffix run alone; explicit
 * positions equal to the slots give hr_forward_from's logits bit for bit. */
static void explicit_positions_run_variants_side_by_side(void) {
    const hr_config *c = hr_model_config(model);
    int dim = c->dim, n_ctx = 32;
    hr_context_params p = hr_context_default_params();
    p.n_ctx = n_ctx;
    hr_context *ctx = NULL;
    hr_context_new(model, &p, &ctx);
    resid_grab g = {1, calloc((size_t)30 * dim, 4)};
    float *ref = calloc((size_t)20 * V, 4), *got = calloc((size_t)30 * V, 4), *same = calloc((size_t)20 * V, 4);
    hr_context_set_hook(ctx, grab_resid, HR_HOOK_RESID_PRE, &g);
    hr_forward(ctx, toks, 20, ref, true); /* layer 1's residual of tokens 0..19 */
    hr_context_set_hook(ctx, NULL, 0, NULL);
    int32_t pos[20];
    for (int i = 0; i < 20; i++) pos[i] = i;
    CHECK(hr_forward_from_at(ctx, 1, 0, g.saved, 20, pos, same, true) == HR_OK, "%s", hr_last_error());
    CHECK(hr_t_maxdiff("explicit positions = slots vs forward", ref, same, (size_t)20 * V) == 0, "differ");
    /* fill slots 20..29, then run two copies of rows 10..19 in slots 10..29 */
    hr_forward(ctx, toks + 20, 10, NULL, false);
    float *x = calloc((size_t)20 * dim, 4);
    memcpy(x, g.saved + (size_t)10 * dim, sizeof(float) * 10 * dim);
    memcpy(x + (size_t)10 * dim, g.saved + (size_t)10 * dim, sizeof(float) * 10 * dim);
    for (int i = 0; i < 20; i++) pos[i] = 10 + i % 10;
    uint8_t *mask = calloc((size_t)n_ctx * n_ctx, 1);
    for (int q = 20; q < 30; q++)
        for (int k = 10; k < 20; k++) mask[q * n_ctx + k] = 1; /* the second copy does not see the first */
    CHECK(hr_context_set_attn_mask(ctx, -1, -1, mask) == HR_OK, "%s", hr_last_error());
    CHECK(hr_forward_from_at(ctx, 1, 0, x, 20, pos, got, true) == HR_OK, "%s", hr_last_error());
    hr_context_clear_attn_masks(ctx);
    CHECK(hr_t_maxdiff("first copy vs alone", ref + (size_t)10 * V, got, (size_t)10 * V) <= 1e-5, "differ");
    CHECK(hr_t_maxdiff("second copy vs alone", ref + (size_t)10 * V, got + (size_t)10 * V, (size_t)10 * V) <= 1e-5,
          "differ");
    pos[3] = n_ctx;
    CHECK(hr_forward_from_at(ctx, 1, 0, x, 20, pos, NULL, false) == HR_ERR_RANGE, "a position outside the context");
    hr_context_free(ctx);
    free(g.saved), free(ref), free(got), free(same), free(x), free(mask);
}

static void bad_arguments_give_clear_errors(void) {
    hr_context_params p = hr_context_default_params();
    hr_context *ctx = NULL;
    p.n_ctx = hr_model_config(model)->seq_len + 1;
    CHECK(hr_context_new(model, &p, &ctx) == HR_ERR_RANGE && ctx == NULL, "ctx beyond seq_len accepted");
    CHECK(strstr(hr_last_error(), "context") != NULL, "message: %s", hr_last_error());
    p.n_ctx = 16;
    CHECK(hr_context_new(model, &p, &ctx) == HR_OK, "small ctx");
    CHECK(hr_forward(ctx, toks, 17, NULL, false) == HR_ERR_RANGE, "overflowing the context accepted");
    int32_t bad = V;
    CHECK(hr_forward(ctx, &bad, 1, NULL, false) == HR_ERR_INVALID_ARG, "token outside vocab accepted");
    CHECK(strlen(hr_context_last_error(ctx)) > 0, "no context error message");
    CHECK(hr_forward(ctx, toks, 16, NULL, false) == HR_OK, "filling the context exactly failed");
    hr_context_free(ctx);
    hr_context_free(NULL);
}

int main(void) {
    HR_T_REQUIRE_SHARED("models/stories260K/stories260K.bin");
    if (hr_model_load(SHARED("models/stories260K/stories260K.bin"), &model) != HR_OK) {
        fprintf(stderr, "cannot load model: %s\n", hr_last_error());
        return 1;
    }
    V = hr_model_config(model)->vocab_size;
    unsigned s = 7;
    toks[0] = 1;
    for (int i = 1; i < 40; i++) toks[i] = (int32_t)((s = s * 1103515245u + 12345u) >> 16) % V;
    RUN(prefill_and_token_by_token_decode_agree);
    RUN(small_batches_and_thread_counts_give_the_same_logits);
#if HR_HAVE_BLAS
    RUN(openblas_prefill_agrees_with_the_exact_gemm_to_rounding);
    RUN(only_a_blas_prefill_context_sets_openblas_threads);
#else
    RUN(blas_prefill_without_openblas_is_unsupported);
#endif
    RUN(truncating_the_cache_and_rerunning_reproduces_the_logits);
    RUN(attention_probability_hook_sees_causal_rows_that_sum_to_one);
    RUN(a_zero_gate_equals_zeroing_the_head_output_in_a_hook);
    RUN(rerunning_from_a_layer_with_a_gated_head_equals_a_full_gated_forward);
    RUN(mean_ablation_moves_a_gated_head_to_its_mean);
    RUN(zeroing_a_kv_heads_values_equals_gating_its_query_heads_to_zero);
    RUN(a_zero_query_or_key_gives_uniform_attention_over_the_visible_keys);
    RUN(attention_knockout_renormalises_over_the_open_keys);
    RUN(explicit_positions_run_variants_side_by_side);
    RUN(bad_arguments_give_clear_errors);
    hr_model_free(model);
    TEST_MAIN_END();
}
