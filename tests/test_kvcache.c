/* Head-aware KV cache: plans, policies, memory, exactness, and streaming /
 * heavy-hitter outputs against a masked full-attention reference. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "headroom/context.h"
#include "headroom/kvcache.h"
#include "headroom/model.h"
#include "model/config.h"
#include "model/model_internal.h"

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
    else if (st == HR_OK) st = hr_forward(ctx, toks, N, lg, true);
    if (st != HR_OK) {
        fprintf(stderr, "run failed: %s\n", hr_last_error());
        free(lg);
        lg = NULL;
    }
    if (kv_bytes) *kv_bytes = ctx ? hr_context_kv_bytes(ctx) : 0;
    hr_context_free(ctx);
    return lg;
}

/* Every KV head of a model of config c under pol. */
static hr_kv_plan *uniform_for(const hr_config *c, hr_kv_policy pol) {
    hr_kv_plan *p = NULL;
    hr_kv_plan_new(c, &p);
    for (int l = 0; l < c->n_layers; l++)
        for (int g = 0; g < c->n_head_kv[l]; g++) hr_kv_plan_set(p, l, g, pol);
    return p;
}

static hr_kv_plan *uniform(hr_kv_policy pol) { return uniform_for(cfg, pol); }

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
    /* stores of 18 instead of 256 slots plus an 18 + 16 entry gather buffer (exact: kv_bytes test) */
    CHECK(stream_bytes * 8 < full_bytes, "streaming did not save memory");
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
        double d =
            hr_t_maxdiff("heavy later positions vs full", a + (size_t)60 * V, full + (size_t)60 * V, (size_t)60 * V);
        CHECK(d > 1e-4 && isfinite(d), "eviction changed nothing or broke the logits");
    }
    /* 24 instead of 256 slots; the gather buffer holds n_batch (256) batch rows per KV head
     * (exact: kv_bytes test), so the saving is smaller than streaming's */
    CHECK(bytes * 2 < full_bytes, "heavy cache %zu vs full %zu bytes", bytes, full_bytes);
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
    const char *good =
        "# mixed\ndefault streaming sink=4 window=32\nlayer 2 full\nhead 4 1 heavy budget=20 window=10\n";
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
    const char *bad[] = {"default fancy\n",
                         "head 9 0 full\n",
                         "head 0 7 full\n",
                         "layer 0 streaming window=abc\n",
                         "layer 0 streaming colour=3\n",
                         "nonsense\n"};
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


/* ======================================================================
 * Against an independent reference: a brute-force Llama forward written
 * here (double precision, explicit per-(layer, KV head) attention masks)
 * on a small random-weight model. Streaming masks come from the rule
 * (key < sink or key > query - window); heavy-hitter masks from a replay
 * of H2O in this file: every held key accumulates the attention the
 * group's query heads give it, and a token entering a full cache of
 * budget + window slots evicts the held key with the least accumulated
 * attention among those outside the recent window (the oldest when all
 * are recent). Batch tokens see each other and enter the cache after the
 * batch, as kvcache.h documents. */

enum { RN = 64 }; /* tokens of the random-model runs (= n_ctx) */
static hr_model *rmodel;
static const hr_config *rc;
static int32_t rtoks[RN];
#define REF_TOL 1e-4 /* float engine vs double reference (the project's reference tolerance) */

typedef struct {
    const hr_kv_plan *plan; /* NULL = all full */
    int B;                  /* batch size (the context's n_batch) */
    double *logits;         /* (RN, V) out */
    unsigned char *vis;     /* (L, H, RN, RN) out: vis[l][h][q][k] = query q saw key k */
    double min_margin;      /* smallest gap between the evicted key's attention and the next candidate's */
    int evictions;          /* heavy-hitter evictions that chose among >= 2 candidates or took the oldest */
} ref_run;

static double dot_wd(const float *w, const double *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)w[i] * x[i];
    return s;
}

static void rmsnorm_d(double *y, const double *x, const float *g, int n, double eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    double inv = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) y[i] = x[i] * inv * g[i];
}

/* llama2.c RoPE: pairs (2i, 2i+1) of each head rotated by pos * theta^(-2i/hd). */
static void rope_d(double *v, int n_heads, int hd, int pos, double theta) {
    for (int h = 0; h < n_heads; h++)
        for (int i = 0; i < hd; i += 2) {
            double a = pos * pow(theta, -(double)i / hd), x0 = v[h * hd + i], x1 = v[h * hd + i + 1];
            v[h * hd + i] = x0 * cos(a) - x1 * sin(a);
            v[h * hd + i + 1] = x0 * sin(a) + x1 * cos(a);
        }
}

static void ref_forward(ref_run *R) {
    const hr_config *c = rc;
    const hr_weights *w = &rmodel->w;
    int L = c->n_layers, D = c->dim, hd = c->head_dim, H = c->n_head[0], KV = c->n_head_kv[0], G = H / KV;
    int F = c->n_ff[0], Vv = c->vocab_size;
    size_t LN = (size_t)L * RN;
    double *x = calloc((size_t)RN * D, sizeof(double)), *xb = calloc((size_t)D, sizeof(double));
    double *q = calloc((size_t)RN * H * hd, sizeof(double)), *att = calloc((size_t)RN * H * hd, sizeof(double));
    double *K = calloc(LN * KV * hd, sizeof(double)), *Vc = calloc(LN * KV * hd, sizeof(double)); // (L, RN, KV*hd)
    double *acc = calloc(LN * KV, sizeof(double)); // (L, KV, RN) accumulated attention per position
    int *held = calloc(LN * KV, sizeof(int));      // (L, KV, RN) held positions, ascending
    int *n_held = calloc((size_t)L * KV, sizeof(int));
    double *p = calloc(RN, sizeof(double)), *bacc = calloc(RN, sizeof(double)),
           *hbuf = calloc((size_t)F, sizeof(double));
    int *S = calloc(RN, sizeof(int));
    R->min_margin = INFINITY;
    R->evictions = 0;
    for (int p0 = 0; p0 < RN; p0 += R->B) {
        int n = RN - p0 < R->B ? RN - p0 : R->B;
        for (int t = 0; t < n; t++)
            for (int i = 0; i < D; i++) x[(size_t)t * D + i] = w->tok_embd[(size_t)rtoks[p0 + t] * D + i];
        for (int l = 0; l < L; l++) {
            const hr_layer_weights *lw = &w->layers[l];
            for (int t = 0; t < n; t++) {
                int pos = p0 + t;
                rmsnorm_d(xb, x + (size_t)t * D, lw->attn_norm, D, c->norm_eps);
                double *qt = q + (size_t)t * H * hd, *kt = K + ((size_t)l * RN + pos) * KV * hd;
                double *vt = Vc + ((size_t)l * RN + pos) * KV * hd;
                for (int r = 0; r < H * hd; r++) qt[r] = dot_wd(lw->wq + (size_t)r * D, xb, D);
                for (int r = 0; r < KV * hd; r++) {
                    kt[r] = dot_wd(lw->wk + (size_t)r * D, xb, D);
                    vt[r] = dot_wd(lw->wv + (size_t)r * D, xb, D);
                }
                rope_d(qt, H, hd, pos, c->rope_theta);
                rope_d(kt, KV, hd, pos, c->rope_theta);
            }
            for (int g = 0; g < KV; g++) {
                hr_kv_policy pol = hr_kv_plan_get(R->plan, l, g);
                int cap = hr_kv_policy_capacity(&pol, RN);
                bool heavy = pol.kind == HR_KV_HEAVY && cap < RN;
                double *a = acc + ((size_t)l * KV + g) * RN;
                int *hl = held + ((size_t)l * KV + g) * RN, *nh = &n_held[l * KV + g];
                memset(bacc, 0, sizeof(double) * RN);
                for (int t = 0; t < n; t++) {
                    int pos = p0 + t, ns = 0;
                    if (heavy) {
                        for (int i = 0; i < *nh; i++) S[ns++] = hl[i];
                        for (int u = p0; u <= pos; u++) S[ns++] = u;
                    } else {
                        for (int s = 0; s <= pos; s++)
                            if (pol.kind != HR_KV_STREAMING || cap == RN || s < pol.sink || s > pos - pol.window)
                                S[ns++] = s;
                    }
                    for (int h = g * G; h < (g + 1) * G; h++) {
                        const double *qh = q + ((size_t)t * H + h) * hd;
                        double mx = -INFINITY, sum = 0;
                        for (int i = 0; i < ns; i++) {
                            const double *kk = K + ((size_t)l * RN + S[i]) * KV * hd + (size_t)g * hd;
                            double sc = 0;
                            for (int d = 0; d < hd; d++) sc += qh[d] * kk[d];
                            p[i] = sc / sqrt((double)hd);
                            if (p[i] > mx) mx = p[i];
                        }
                        for (int i = 0; i < ns; i++) sum += p[i] = exp(p[i] - mx);
                        double *o = att + ((size_t)t * H + h) * hd;
                        for (int d = 0; d < hd; d++) o[d] = 0;
                        for (int i = 0; i < ns; i++) {
                            p[i] /= sum;
                            const double *vv = Vc + ((size_t)l * RN + S[i]) * KV * hd + (size_t)g * hd;
                            for (int d = 0; d < hd; d++) o[d] += p[i] * vv[d];
                            if (S[i] >= p0) bacc[S[i] - p0] += p[i];
                            else a[S[i]] += p[i];
                            R->vis[(((size_t)l * H + h) * RN + pos) * RN + S[i]] = 1;
                        }
                    }
                }
                if (!heavy) continue;
                for (int t = 0; t < n; t++) { /* the batch enters the cache in order */
                    int pos = p0 + t;
                    if (*nh == cap) {
                        int best = -1, second = -1;
                        for (int i = 0; i < *nh && hl[i] <= pos - pol.window; i++) {
                            if (best < 0 || a[hl[i]] < a[hl[best]]) second = best, best = i;
                            else if (second < 0 || a[hl[i]] < a[hl[second]]) second = i;
                        }
                        if (second >= 0 && a[hl[second]] - a[hl[best]] < R->min_margin)
                            R->min_margin = a[hl[second]] - a[hl[best]];
                        if (best < 0) best = 0;
                        R->evictions++;
                        memmove(hl + best, hl + best + 1, sizeof(int) * (size_t)(*nh - 1 - best));
                        (*nh)--;
                    }
                    hl[(*nh)++] = pos;
                    a[pos] = bacc[t];
                }
            }
            for (int t = 0; t < n; t++) {
                double *xt = x + (size_t)t * D;
                for (int i = 0; i < D; i++)
                    xt[i] += dot_wd(lw->wo + (size_t)i * H * hd, att + (size_t)t * H * hd, H * hd);
                rmsnorm_d(xb, xt, lw->ffn_norm, D, c->norm_eps);
                for (int j = 0; j < F; j++) {
                    double gt = dot_wd(lw->w_gate + (size_t)j * D, xb, D), up = dot_wd(lw->w_up + (size_t)j * D, xb, D);
                    hbuf[j] = gt / (1 + exp(-gt)) * up;
                }
                for (int i = 0; i < D; i++) xt[i] += dot_wd(lw->w_down + (size_t)i * F, hbuf, F);
            }
        }
        for (int t = 0; t < n; t++) {
            rmsnorm_d(xb, x + (size_t)t * D, w->out_norm, D, c->norm_eps);
            for (int v = 0; v < Vv; v++)
                R->logits[(size_t)(p0 + t) * Vv + v] = dot_wd(w->output + (size_t)v * D, xb, D);
        }
    }
    free(x), free(xb), free(q), free(att), free(K), free(Vc), free(acc), free(held), free(n_held);
    free(p), free(bacc), free(hbuf), free(S);
}

/* What the engine showed each query: the support of its attention rows. */
typedef struct {
    const unsigned char *want; /* (L, H, RN, RN) */
    int H;
    long rows, mismatched;
} support_probe;

static int compare_support(const hr_hook_event *ev, void *ud) {
    support_probe *sp = ud;
    for (int t = 0; t < ev->n_tokens; t++) {
        int qp = ev->pos0 + t;
        const float *row = ev->data + (size_t)t * ev->stride;
        const unsigned char *w = sp->want + (((size_t)ev->layer * sp->H + ev->head) * RN + qp) * RN;
        bool same = true;
        for (int k = 0; k < ev->n_cols; k++) same = same && (row[k] != 0) == (w[k] != 0);
        sp->rows++;
        sp->mismatched += !same;
    }
    return 0;
}

/* The engine's logits (RN, V) under plan with n_batch B, and whether each
 * query's attention support equals the reference's visible sets. */
static float *engine_run(const hr_kv_plan *plan, int B, const unsigned char *want, support_probe *sp) {
    hr_context_params p = hr_context_default_params();
    p.kv_plan = plan;
    p.n_ctx = RN;
    p.n_batch = B;
    hr_context *ctx = NULL;
    int Vr = rc->vocab_size;
    float *lg = calloc((size_t)RN * Vr, sizeof(float));
    hr_status st = hr_context_new(rmodel, &p, &ctx);
    *sp = (support_probe){want, hr_config_max_heads(rc), 0, 0};
    if (st == HR_OK) hr_context_set_hook(ctx, compare_support, HR_HOOK_ATTN_PROBS, sp);
    if (st == HR_OK) st = hr_forward(ctx, rtoks, RN, lg, true);
    if (st != HR_OK) {
        fprintf(stderr, "engine run failed: %s\n", hr_last_error());
        free(lg);
        lg = NULL;
    }
    hr_context_free(ctx);
    return lg;
}

static double maxdiff_fd(const char *label, const float *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (isnan(d)) return INFINITY;
        if (d > m) m = d;
    }
    printf("    %s: max abs diff %.3g over %zu logits\n", label, m, n);
    return m;
}

/* One plan against the reference at batch sizes 1 (decode) and 16 (prefill). */
static void check_against_reference(const char *name, const hr_kv_plan *plan, bool expect_evictions) {
    size_t LH = (size_t)rc->n_layers * hr_config_max_heads(rc), nV = (size_t)RN * rc->vocab_size;
    ref_run full = {NULL, RN, calloc(nV, sizeof(double)), calloc(LH * RN * RN, 1), 0, 0};
    ref_forward(&full);
    int Bs[2] = {1, 16};
    for (int k = 0; k < 2; k++) {
        ref_run R = {plan, Bs[k], calloc(nV, sizeof(double)), calloc(LH * RN * RN, 1), 0, 0};
        ref_forward(&R);
        support_probe sp;
        float *lg = engine_run(plan, Bs[k], R.vis, &sp);
        char label[96];
        snprintf(label, sizeof label, "%s, batch %d: engine vs masked reference", name, Bs[k]);
        CHECK(lg != NULL, "%s: engine failed", label);
        if (lg) CHECK(maxdiff_fd(label, lg, R.logits, nV) <= REF_TOL, "%s", label);
        /* Not true for the wrong reason: the mask must matter. */
        double dm = 0;
        for (size_t i = 0; i < nV; i++) dm = fmax(dm, fabs(R.logits[i] - full.logits[i]));
        printf("    %s, batch %d: masked vs unmasked reference differ by %.3g; %ld of %ld attention rows with "
               "another support; %d evictions, smallest eviction margin %.3g\n",
               name, Bs[k], dm, sp.mismatched, sp.rows, R.evictions, R.min_margin);
        CHECK(dm > 1e-2, "%s: the mask changes nothing (%.3g), the comparison proves nothing", name, dm);
        CHECK(sp.rows == (long)RN * (long)LH && sp.mismatched == 0, "%s batch %d: %ld of %ld rows see other keys", name,
              Bs[k], sp.mismatched, sp.rows);
        if (expect_evictions) {
            CHECK(R.evictions > 0, "%s: no heavy-hitter eviction happened", name);
            /* A decision closer than float accumulation could resolve would make the replay ambiguous. */
            CHECK(R.min_margin > 1e-4, "%s: eviction margin %.3g too close to call", name, R.min_margin);
        }
        free(lg), free(R.logits), free(R.vis);
    }
    free(full.logits), free(full.vis);
}

static void streaming_logits_equal_a_masked_full_attention_reference(void) {
    hr_kv_policy st = {HR_KV_STREAMING, 2, 8, 0};
    hr_kv_plan *plan = uniform_for(rc, st);
    check_against_reference("streaming sink=2 window=8", plan, false);
    hr_kv_plan_free(plan);
}

static void heavy_hitters_keep_what_an_independent_h2o_replay_keeps(void) {
    hr_kv_policy hv = {HR_KV_HEAVY, 0, 4, 6};
    hr_kv_plan *plan = uniform_for(rc, hv);
    check_against_reference("heavy budget=6 window=4", plan, true);
    hr_kv_plan_free(plan);
}

static void a_plan_mixing_all_three_policies_per_head_matches_the_reference(void) {
    hr_kv_plan *plan = NULL;
    hr_kv_plan_new(rc, &plan);
    hr_kv_plan_set(plan, 0, 1, (hr_kv_policy){HR_KV_STREAMING, 1, 5, 0});
    hr_kv_plan_set(plan, 1, 0, (hr_kv_policy){HR_KV_HEAVY, 0, 6, 4});
    hr_kv_plan_set(plan, 1, 1, (hr_kv_policy){HR_KV_STREAMING, 3, 10, 0});
    hr_kv_plan_set(plan, 2, 0, (hr_kv_policy){HR_KV_HEAVY, 0, 3, 8});
    hr_kv_plan_set(plan, 2, 1, (hr_kv_policy){HR_KV_HEAVY, 0, 3, 8});
    check_against_reference("mixed per-head plan", plan, true);
    hr_kv_plan_free(plan);
}

/* hr_context_kv_bytes = every store (kt and vt of head_dim x ld floats,
 * ld = slots + 16 from 256 slots on; evicting stores add slot_pos and
 * order, heavy stores acc: 4 bytes per slot each) + the gather buffer when
 * a store evicts (per KV head of the widest layer: gk, gv of head_dim x G
 * floats and gs, gpos of G entries, G = 16 + the largest count one query can
 * see — sink + window for streaming, budget + window + n_batch for heavy —
 * plus n_batch floats of batch attention when a heavy store exists). */
static size_t expected_kv_bytes(const hr_config *c, const hr_kv_plan *plan, int n_ctx, int n_batch) {
    size_t stores = 0, G = 0, hd = (size_t)c->head_dim;
    bool evicts = false, heavy = false;
    for (int l = 0; l < c->n_layers; l++)
        for (int g = 0; g < c->n_head_kv[l]; g++) {
            hr_kv_policy p = hr_kv_plan_get(plan, l, g);
            size_t slots = (size_t)n_ctx, seen = 0;
            if (p.kind == HR_KV_STREAMING) slots = (size_t)(p.sink + p.window), seen = slots;
            if (p.kind == HR_KV_HEAVY) slots = (size_t)(p.budget + p.window), seen = slots + (size_t)n_batch;
            if (slots > (size_t)n_ctx) slots = (size_t)n_ctx;
            size_t ld = slots >= 256 ? slots + 16 : slots;
            stores += hd * ld * 4 * 2;
            if (slots == (size_t)n_ctx) continue; /* keeps everything: stored like a full head */
            evicts = true;
            stores += slots * 4 * 2;
            if (p.kind == HR_KV_HEAVY) stores += slots * 4, heavy = true;
            if (seen + 16 > G) G = seen + 16;
        }
    if (!evicts) return stores;
    size_t mkv = (size_t)hr_config_max_kv_heads(c);
    return stores + mkv * (hd * G * 4 * 2 + G * 4 * 2) + (heavy ? mkv * (size_t)n_batch * 4 : 0);
}

static size_t engine_kv_bytes(const hr_model *m, const hr_kv_plan *plan, int n_ctx, int n_batch) {
    hr_context_params p = hr_context_default_params();
    p.kv_plan = plan, p.n_ctx = n_ctx, p.n_batch = n_batch;
    hr_context *ctx = NULL;
    size_t b = hr_context_new(m, &p, &ctx) == HR_OK ? hr_context_kv_bytes(ctx) : 0;
    hr_context_free(ctx);
    return b;
}

static void kv_bytes_are_the_stores_plus_the_gather_buffer_by_formula(void) {
    struct {
        const hr_model *m;
        const hr_config *c;
        hr_kv_policy pol;
        int n_ctx, n_batch;
    } cases[] = {
        {model, cfg, {HR_KV_FULL, 0, 0, 0}, 256, 256},        {model, cfg, {HR_KV_FULL, 0, 0, 0}, 200, 64},
        {model, cfg, {HR_KV_STREAMING, 4, 32, 0}, 256, 256},  {model, cfg, {HR_KV_STREAMING, 2, 16, 0}, 256, 8},
        {model, cfg, {HR_KV_HEAVY, 0, 16, 8}, 256, 256},      {model, cfg, {HR_KV_HEAVY, 0, 128, 200}, 512, 32},
        {model, cfg, {HR_KV_STREAMING, 4, 300, 0}, 512, 64},  {rmodel, rc, {HR_KV_HEAVY, 0, 4, 6}, 64, 16},
        {model, cfg, {HR_KV_STREAMING, 4, 252, 0}, 256, 256}, /* covers the context: a full store */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hr_kv_plan *plan = cases[i].pol.kind == HR_KV_FULL ? NULL : uniform_for(cases[i].c, cases[i].pol);
        size_t want = expected_kv_bytes(cases[i].c, plan, cases[i].n_ctx, cases[i].n_batch);
        size_t got = engine_kv_bytes(cases[i].m, plan, cases[i].n_ctx, cases[i].n_batch);
        CHECK(got == want, "case %zu (%s, ctx %d, batch %d): %zu bytes, formula %zu", i,
              hr_kv_kind_name(cases[i].pol.kind), cases[i].n_ctx, cases[i].n_batch, got, want);
        hr_kv_plan_free(plan);
    }
    /* A mixed plan: the gather buffer is sized by its most demanding store. */
    hr_kv_plan *mixed = NULL;
    hr_kv_plan_new(cfg, &mixed);
    hr_kv_plan_set(mixed, 0, 0, (hr_kv_policy){HR_KV_STREAMING, 4, 40, 0});
    hr_kv_plan_set(mixed, 2, 3, (hr_kv_policy){HR_KV_HEAVY, 0, 8, 12});
    size_t want = expected_kv_bytes(cfg, mixed, 256, 32), got = engine_kv_bytes(model, mixed, 256, 32);
    printf("    mixed plan (1 streaming, 1 heavy, 18 full KV heads), ctx 256, batch 32: %zu bytes (formula %zu)\n", got,
           want);
    CHECK(got == want, "mixed: %zu bytes, formula %zu", got, want);
    hr_kv_plan_free(mixed);
}

static int make_random_model(char *path, size_t cap) {
    snprintf(path, cap, "/tmp/hr_kvref_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    close(fd);
    const char *tools = getenv("HR_TOOLS_DIR");
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "'%s/hr_make_random' --dim 64 --hidden 96 --layers 3 --heads 4 --kv-heads 2 --vocab 97 --seq 128 "
             "--seed 5 '%s'",
             tools ? tools : HR_BINARY_DIR, path);
    return system(cmd) == 0 ? 0 : -1;
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
    char rpath[64];
    if (make_random_model(rpath, sizeof rpath) != 0 || hr_model_load(rpath, &rmodel) != HR_OK) {
        fprintf(stderr, "cannot make or load the random model: %s\n", hr_last_error());
        unlink(rpath);
        return 1;
    }
    unlink(rpath);
    rc = hr_model_config(rmodel);
    unsigned rs = 3;
    for (int i = 0; i < RN; i++) rtoks[i] = (int32_t)((rs = rs * 1103515245u + 12345u) >> 16) % rc->vocab_size;
    RUN(streaming_logits_equal_a_masked_full_attention_reference);
    RUN(heavy_hitters_keep_what_an_independent_h2o_replay_keeps);
    RUN(a_plan_mixing_all_three_policies_per_head_matches_the_reference);
    RUN(kv_bytes_are_the_stores_plus_the_gather_buffer_by_formula);
    hr_model_free(rmodel);
    hr_model_free(model);
    TEST_MAIN_END();
}
