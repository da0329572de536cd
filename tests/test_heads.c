/* Head lab: planted heads are found, ablation scores are exact, hostile
 * inputs fail cleanly, results are deterministic, cost estimates count the
 * forward work the runs do, progress names each phase and can stop a run.
 *
 * The forward work is counted through a link seam: this test is linked
 * with -Wl,--wrap=hr_forward,--wrap=hr_forward_from (CMakeLists.txt), so
 * every call the library makes passes through the counters below. */
#include "check.h"
#include "headroom/context.h"
#include "headroom/heads.h"
#include "headroom/model.h"
#include "headroom/tokenizer.h"
#include "model/config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- a 2-layer model with analytically planted heads ----
 * Residual layout (dim 128): [0] = 1 (bias), [1+v] = one-hot token v,
 * [17+v] = one-hot of the previous token (written by head 0.0).
 *  head 0.0: previous-token head. q/k read the bias only; RoPE's relative
 *            phase makes score(t, s) = 32 * sum_i cos((t-s-1) theta_i) over
 *            the 6 fastest pairs, peaked at s = t-1. V/O copy the token
 *            one-hot into the previous-token slot.
 *  head 0.1: sink head: key = one-hot of BOS in the slowest pair (no
 *            rotation within 64 positions), query = bias.
 *  head 1.0: induction head: query = current token, key = previous-token
 *            slot, in the 16 slowest pairs (component 0 of each pair, so
 *            different tokens never mix under rotation).
 *  head 1.1 and all MLPs are zero (uniform attention, no output). */
enum { P_DIM = 128, P_HID = 8, P_LAYERS = 2, P_HEADS = 2, P_VOCAB = 16, P_SEQ = 64, P_HD = 64, P_BOS = 1 };

/* ---- counting the forward work (the link seam) ----
 * Counted by what each call asks for, as heads.h defines the work: a call
 * from layer l, sublayer s runs (L - l - s/2) / L of the layers for each of
 * its n tokens; one-token calls count as decode; logits rows are n (all
 * logits), 1 (the last) or 0 (no logits). */
hr_status __real_hr_forward(hr_context *ctx, const int32_t *tokens, int n, float *logits, bool all_logits);
hr_status __wrap_hr_forward(hr_context *ctx, const int32_t *tokens, int n, float *logits, bool all_logits);
hr_status __real_hr_forward_from(hr_context *ctx, int layer, int sublayer, const float *x, int n, float *logits,
                                 bool all_logits);
hr_status __wrap_hr_forward_from(hr_context *ctx, int layer, int sublayer, const float *x, int n, float *logits,
                                 bool all_logits);

static hr_heads_work g_count;

static void count_call(hr_context *ctx, double layers_from, int n, const float *logits, bool all_logits) {
    int L = hr_model_config(hr_context_model(ctx))->n_layers;
    double share = (L - layers_from) / L, rows = logits ? (all_logits ? n : 1) : 0;
    if (n == 1) g_count.decode_tokens += share, g_count.decode_logit_rows += rows;
    else g_count.tokens += n * share, g_count.logit_rows += rows;
}

hr_status __wrap_hr_forward(hr_context *ctx, const int32_t *tokens, int n, float *logits, bool all_logits) {
    if (ctx && n > 0) count_call(ctx, 0, n, logits, all_logits);
    return __real_hr_forward(ctx, tokens, n, logits, all_logits);
}

hr_status __wrap_hr_forward_from(hr_context *ctx, int layer, int sublayer, const float *x, int n, float *logits,
                                 bool all_logits) {
    if (ctx && n > 0) count_call(ctx, layer + 0.5 * sublayer, n, logits, all_logits);
    return __real_hr_forward_from(ctx, layer, sublayer, x, n, logits, all_logits);
}

static float *pw(float *base, size_t layer, size_t rows, size_t cols) { return base + layer * rows * cols; }

static int write_planted(const char *path) {
    size_t D = P_DIM, L = P_LAYERS, V = P_VOCAB;
    size_t n_emb = V * D, n_sq = L * D * D, n_vec = L * D, n_ff = L * P_HID * D;
    float *emb = calloc(n_emb, 4), *rms = calloc(n_vec, 4), *wq = calloc(n_sq, 4), *wk = calloc(n_sq, 4);
    float *wv = calloc(n_sq, 4), *wo = calloc(n_sq, 4), *ff = calloc(n_ff, 4), *fin = calloc(D, 4);
    float *fr = calloc((size_t)P_SEQ * P_HD / 2, 4), *fi = calloc((size_t)P_SEQ * P_HD / 2, 4);
    for (size_t v = 0; v < V; v++) emb[v * D] = 1, emb[v * D + 1 + v] = 1;
    for (size_t i = 0; i < n_vec; i++) rms[i] = 1;
    for (size_t i = 0; i < D; i++) fin[i] = 1;
    float a = 2.0f;
    for (int i = 0; i < 6; i++) { /* head 0.0: previous token */
        double th = pow(10000.0, -(double)i / 32.0);
        pw(wq, 0, D, D)[(2 * i) * D + 0] = a * (float)cos(th);
        pw(wq, 0, D, D)[(2 * i + 1) * D + 0] = -a * (float)sin(th);
        pw(wk, 0, D, D)[(2 * i) * D + 0] = a;
    }
    for (int j = 0; j < 16; j++) {
        pw(wv, 0, D, D)[j * D + 1 + j] = 1.0f / 8; /* normed one-hot is 8 */
        pw(wo, 0, D, D)[(17 + j) * D + j] = 1;
    }
    pw(wq, 0, D, D)[(64 + 62) * D + 0] = 2; /* head 0.1: BOS sink */
    pw(wk, 0, D, D)[(64 + 62) * D + 1 + P_BOS] = 2;
    for (int j = 0; j < 16; j++) { /* head 1.0: induction */
        pw(wq, 1, D, D)[(2 * (16 + j)) * D + 1 + j] = 2.5f;
        pw(wk, 1, D, D)[(2 * (16 + j)) * D + 17 + j] = 2.5f;
    }
    for (int p = 0; p < P_SEQ; p++)
        for (int i = 0; i < P_HD / 2; i++) {
            double ang = p * pow(10000.0, -2.0 * i / P_HD);
            fr[p * P_HD / 2 + i] = (float)cos(ang);
            fi[p * P_HD / 2 + i] = (float)sin(ang);
        }
    FILE *f = fopen(path, "wb");
    int ok = f != NULL;
    int32_t hdr[7] = {P_DIM, P_HID, P_LAYERS, P_HEADS, P_HEADS, P_VOCAB, P_SEQ};
    if (ok) {
        ok &= fwrite(hdr, 4, 7, f) == 7;
        ok &= fwrite(emb, 4, n_emb, f) == n_emb && fwrite(rms, 4, n_vec, f) == n_vec;
        ok &= fwrite(wq, 4, n_sq, f) == n_sq && fwrite(wk, 4, n_sq, f) == n_sq;
        ok &= fwrite(wv, 4, n_sq, f) == n_sq && fwrite(wo, 4, n_sq, f) == n_sq;
        ok &= fwrite(rms, 4, n_vec, f) == n_vec;
        for (int k = 0; k < 3; k++) ok &= fwrite(ff, 4, n_ff, f) == n_ff; /* w1, w2, w3 (same size) */
        ok &= fwrite(fin, 4, D, f) == D;
        size_t nf = (size_t)P_SEQ * P_HD / 2;
        ok &= fwrite(fr, 4, nf, f) == nf && fwrite(fi, 4, nf, f) == nf;
        ok &= fclose(f) == 0;
    }
    free(emb), free(rms), free(wq), free(wk), free(wv), free(wo), free(ff), free(fin), free(fr), free(fi);
    return ok;
}

static char g_planted[256];
static hr_model *g_pm;

static hr_model *planted(void) {
    if (g_pm) return g_pm;
    snprintf(g_planted, sizeof g_planted, "%s/test_heads_planted_%d.bin", HR_BINARY_DIR, (int)getpid());
    if (!write_planted(g_planted) || hr_model_load(g_planted, &g_pm) != HR_OK) {
        fprintf(stderr, "cannot build planted model: %s\n", hr_last_error());
        return NULL;
    }
    return g_pm;
}

static void random_text(int32_t *t, int n, uint32_t seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        t[i] = 2 + (int32_t)((seed >> 16) % (P_VOCAB - 2));
    }
}

static hr_heads_params planted_params(const int32_t *text, int n) {
    hr_heads_params p = hr_heads_default_params();
    p.tokens = text;
    p.n_tokens = (size_t)n;
    p.bos = P_BOS;
    p.window = 32;
    p.max_tokens = 64;
    p.rep_len = 12;
    p.n_needles = 2;
    p.needle_len = 6;
    p.fdtm_prompts = 2;
    p.fdtm_prompt_len = 8;
    p.fdtm_gen = 8;
    return p;
}

/* (layer, head) with rank 1 for method id. */
static void top_head(const hr_heads_result *r, const char *id, int *layer, int *head) {
    int m = hr_heads_method_index(id);
    *layer = *head = -1;
    for (int l = 0; l < hr_heads_result_n_layers(r); l++)
        for (int h = 0; h < hr_heads_result_n_heads(r, l); h++)
            if (hr_heads_rank(r, m, l, h) == 1) *layer = l, *head = h;
}

static hr_heads_result *g_pr; /* planted result, all methods */

static void planted_heads_rank_first_by_their_methods(void) {
    hr_model *m = planted();
    CHECK(m != NULL, "planted model");
    if (!m) return;
    hr_context *ctx = NULL;
    hr_context_params cp = hr_context_default_params();
    cp.n_threads = 2;
    CHECK(hr_context_new(m, &cp, &ctx) == HR_OK, "%s", hr_last_error());
    int32_t text[200];
    random_text(text, 200, 7);
    hr_heads_params p = planted_params(text, 200);
    hr_status st = hr_heads_run(ctx, &p, NULL, &g_pr);
    CHECK(st == HR_OK, "%s", hr_last_error());
    if (st == HR_OK) {
        int l, h;
        top_head(g_pr, "prev_token", &l, &h);
        CHECK(l == 0 && h == 0, "prev_token top head %d.%d", l, h);
        double s = hr_heads_score(g_pr, hr_heads_method_index("prev_token"), 0, 0);
        CHECK(s > 0.95, "planted previous-token head score %.4f", s);
        top_head(g_pr, "sink", &l, &h);
        CHECK(l == 0 && h == 1, "sink top head %d.%d", l, h);
        top_head(g_pr, "induction", &l, &h);
        CHECK(l == 1 && h == 0, "induction top head %d.%d", l, h);
        s = hr_heads_score(g_pr, hr_heads_method_index("induction"), 1, 0);
        CHECK(s > 0.9, "planted induction head score %.4f", s);
        char cls[128];
        hr_heads_classes(g_pr, 0, 0, cls, sizeof cls);
        CHECK(strstr(cls, "prev_token") != NULL, "classes of 0.0: %s", cls);
        hr_heads_classes(g_pr, 1, 0, cls, sizeof cls);
        CHECK(strstr(cls, "induction") != NULL, "classes of 1.0: %s", cls);
    }
    hr_context_free(ctx);
}

static void heads_without_output_have_zero_ablation_effect(void) {
    if (!g_pr) return;
    int abl = hr_heads_method_index("ablation"), kl = hr_heads_method_index("ablation_kl");
    /* The sink head and the two uniform heads write nothing (W_o = 0). */
    int quiet[3][2] = {{0, 1}, {1, 0}, {1, 1}};
    for (int i = 0; i < 3; i++) {
        double a = hr_heads_score(g_pr, abl, quiet[i][0], quiet[i][1]);
        double k = hr_heads_score(g_pr, kl, quiet[i][0], quiet[i][1]);
        CHECK(a == 0.0, "ablation of silent head %d.%d = %g", quiet[i][0], quiet[i][1], a);
        CHECK(fabs(k) < 1e-6, "KL of silent head %d.%d = %g", quiet[i][0], quiet[i][1], k);
    }
    double a = hr_heads_score(g_pr, abl, 0, 0);
    CHECK(isfinite(a) && a != 0.0, "the previous-token head changes the loss (%g)", a);
}

static void successor_is_skipped_with_a_note_without_tokenizer(void) {
    if (!g_pr) return;
    int m = hr_heads_method_index("successor");
    CHECK(!hr_heads_result_has(g_pr, m), "successor should be skipped");
    CHECK(strstr(hr_heads_result_note(g_pr, m), "tokenizer") != NULL, "note: %s", hr_heads_result_note(g_pr, m));
    CHECK(isnan(hr_heads_score(g_pr, m, 0, 0)), "skipped method has no scores");
}

static void attention_map_of_the_previous_token_head_is_a_subdiagonal(void) {
    hr_model *m = planted();
    if (!m) return;
    hr_context *ctx = NULL;
    CHECK(hr_context_new(m, NULL, &ctx) == HR_OK, "%s", hr_last_error());
    int32_t toks[20];
    random_text(toks, 20, 3);
    toks[0] = P_BOS;
    float *map = malloc(sizeof(float) * 400);
    CHECK(hr_heads_attention_map(ctx, toks, 20, 0, 0, map) == HR_OK, "%s", hr_last_error());
    for (int t = 1; t < 20; t++) CHECK(map[t * 20 + t - 1] > 0.99f, "row %d: %g", t, map[t * 20 + t - 1]);
    CHECK(hr_heads_attention_map(ctx, toks, 20, 2, 0, map) == HR_ERR_RANGE, "missing layer");
    free(map);
    hr_context_free(ctx);
}

static void equal_inputs_and_seeds_give_identical_json(void) {
    hr_model *m = planted();
    if (!m || !g_pr) return;
    hr_context *ctx = NULL;
    hr_context_params cp = hr_context_default_params();
    cp.n_threads = 1; /* a different thread count must not change anything */
    CHECK(hr_context_new(m, &cp, &ctx) == HR_OK, "%s", hr_last_error());
    int32_t text[200];
    random_text(text, 200, 7);
    hr_heads_params p = planted_params(text, 200);
    hr_heads_result *r2 = NULL;
    CHECK(hr_heads_run(ctx, &p, NULL, &r2) == HR_OK, "%s", hr_last_error());
    hr_heads_meta meta = {"planted.bin", NULL, "text", 0};
    char *j1 = NULL, *j2 = NULL, *l1 = NULL, *l2 = NULL, *c1 = NULL;
    CHECK(hr_heads_to_json(g_pr, m, &meta, &j1, &l1, &c1) == HR_OK, "%s", hr_last_error());
    if (r2) CHECK(hr_heads_to_json(r2, m, &meta, &j2, &l2, NULL) == HR_OK, "%s", hr_last_error());
    CHECK(j1 && j2 && strcmp(j1, j2) == 0, "heads.json differs between runs");
    CHECK(l1 && l2 && strcmp(l1, l2) == 0, "layers.json differs between runs");
    CHECK(j1 && strstr(j1, "\"layer\": 1, \"head\": 1") != NULL, "last head record present");
    CHECK(j1 && strstr(j1, "NaN") == NULL && strstr(j1, "nan") == NULL, "no NaN literals in JSON");
    CHECK(c1 && strncmp(c1, "layer,head,ablation", 19) == 0, "csv header: %.40s", c1 ? c1 : "");
    free(j1), free(j2), free(l1), free(l2), free(c1);
    hr_heads_result_free(r2);
    hr_context_free(ctx);
}

/* ---- stories260K: ablation equals a whole-model run with the gate at 0 ---- */

static double window_nll(hr_context *ctx, const int32_t *win, int n, float *logits, int vocab) {
    hr_context_truncate(ctx, 0);
    if (hr_forward(ctx, win, n, logits, true) != HR_OK) return NAN;
    double s = 0;
    for (int t = 0; t + 1 < n; t++) {
        const float *r = logits + (size_t)t * vocab;
        double m = r[0], z = 0;
        for (int v = 1; v < vocab; v++) m = r[v] > m ? r[v] : m;
        for (int v = 0; v < vocab; v++) z += exp(r[v] - m);
        s += m + log(z) - r[win[t + 1]];
    }
    return s / (n - 1);
}

/* stories260K, a short story text, two 24-token windows. */
typedef struct {
    hr_model *m;
    hr_tokenizer *tok;
    hr_context *ctx;
    int32_t *ids;
    size_t n_ids;
    hr_heads_params p;
    int32_t win[2][24];
} lab_fixture;

enum { FIX_W = 24 };

static bool fixture_open(lab_fixture *f) {
    memset(f, 0, sizeof *f);
    if (hr_model_load(SHARED("models/stories260K/stories260K.bin"), &f->m) != HR_OK ||
        hr_tokenizer_load(SHARED("models/stories260K/tok512.bin"), &f->tok) != HR_OK) {
        CHECK(0, "stories260K: %s", hr_last_error());
        return false;
    }
    const char *text = "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
                       "park with her friends. One day, she saw a big red ball under a tree. Lily ran to the ball "
                       "and kicked it very hard. The ball flew over the fence and her friend Tom laughed.";
    hr_encode_params ep = hr_encode_default_params();
    ep.add_bos = false;
    CHECK(hr_tokenizer_encode(f->tok, text, strlen(text), &ep, &f->ids, &f->n_ids) == HR_OK, "%s", hr_last_error());
    CHECK(f->n_ids >= 46, "text gives %zu tokens", f->n_ids);
    CHECK(hr_context_new(f->m, NULL, &f->ctx) == HR_OK, "%s", hr_last_error());
    if (!f->ctx || f->n_ids < 46) return false;
    f->p = hr_heads_default_params();
    f->p.tokens = f->ids;
    f->p.n_tokens = f->n_ids;
    f->p.bos = hr_tokenizer_bos(f->tok);
    f->p.window = FIX_W;
    f->p.max_tokens = 2 * FIX_W;
    for (int w = 0; w < 2; w++) {
        f->win[w][0] = f->p.bos;
        memcpy(&f->win[w][1], f->ids + w * (FIX_W - 1), sizeof(int32_t) * (FIX_W - 1));
    }
    return true;
}

static void fixture_close(lab_fixture *f) {
    free(f->ids);
    hr_context_free(f->ctx);
    hr_tokenizer_free(f->tok);
    hr_model_free(f->m);
}

static hr_heads_result *fixture_run(lab_fixture *f, const char *methods) {
    bool sel[64] = {false};
    hr_heads_result *r = NULL;
    CHECK(hr_heads_parse_methods(methods, sel) == HR_OK, "%s", hr_last_error());
    CHECK(hr_heads_run(f->ctx, &f->p, sel, &r) == HR_OK, "%s", hr_last_error());
    return r;
}

/* Mean NLL over the fixture's windows with the given gates (NULL = all 1). */
static double fixture_nll(lab_fixture *f, const float *gates, float *logits) {
    int vocab = hr_model_config(f->m)->vocab_size;
    hr_context_set_head_gates(f->ctx, gates);
    double nll = 0;
    for (int w = 0; w < 2; w++) nll += window_nll(f->ctx, f->win[w], FIX_W, logits, vocab) / 2;
    hr_context_set_head_gates(f->ctx, NULL);
    return nll;
}

static void ablation_scores_equal_full_runs_with_the_gate_at_zero(void) {
    lab_fixture f;
    if (!fixture_open(&f)) {
        fixture_close(&f);
        return;
    }
    hr_heads_result *r = fixture_run(&f, "ablation");
    const hr_config *c = hr_model_config(f.m);
    int H = hr_config_max_heads(c), abl = hr_heads_method_index("ablation");
    float *logits = malloc(sizeof(float) * FIX_W * c->vocab_size), *gates = malloc(sizeof(float) * c->n_layers * H);
    double base = fixture_nll(&f, NULL, logits), worst = 0;
    for (int l = 0; r && l < c->n_layers; l++)
        for (int h = 0; h < c->n_head[l]; h++) {
            for (int i = 0; i < c->n_layers * H; i++) gates[i] = 1;
            gates[l * H + h] = 0;
            double nll = fixture_nll(&f, gates, logits);
            double d = fabs((nll - base) - hr_heads_score(r, abl, l, h));
            if (getenv("HR_DEBUG")) printf("%d.%d %.9f %.9f\n", l, h, nll - base, hr_heads_score(r, abl, l, h));
            worst = d > worst || isnan(d) ? d : worst;
        }
    printf("    ablation vs gated full run: max |diff| %.3g over %d heads\n", worst, c->n_layers * H);
    CHECK(worst <= 1e-6, "ablation differs from a gated full run by %g", worst);
    CHECK(r && hr_heads_score(r, abl, 0, 0) != 0.0, "ablation scores are not trivially zero");
    free(logits);
    free(gates);
    hr_heads_result_free(r);
    fixture_close(&f);
}

/* Greedy elimination: scores are the removal order; the first round removes
 * the single-ablation minimum, and the third head removed is the cheapest
 * removal on top of the first two, checked by whole-model gated runs. */
static void greedy_elimination_removes_the_cheapest_head_given_those_already_gone(void) {
    lab_fixture f;
    if (!fixture_open(&f)) {
        fixture_close(&f);
        return;
    }
    hr_heads_result *r = fixture_run(&f, "ablation,ablation_greedy");
    const hr_config *c = hr_model_config(f.m);
    int H = hr_config_max_heads(c), n = 0, abl = hr_heads_method_index("ablation");
    int gr = hr_heads_method_index("ablation_greedy");
    for (int l = 0; l < c->n_layers; l++) n += c->n_head[l];
    /* order[k] = flat index of the k-th head removed */
    int *order = malloc(sizeof(int) * n), seen = 0;
    for (int k = 0; k < n; k++) order[k] = -1;
    for (int l = 0; r && l < c->n_layers; l++)
        for (int h = 0; h < c->n_head[l]; h++) {
            double s = hr_heads_score(r, gr, l, h) * (n - 1);
            int k = (int)lround(s);
            if (fabs(s - k) < 1e-6 && k >= 0 && k < n && order[k] < 0) order[k] = l * H + h, seen++;
        }
    CHECK(seen == n, "greedy scores are not a permutation of the removal order (%d of %d)", seen, n);
    double best_single = INFINITY;
    for (int l = 0; r && l < c->n_layers; l++)
        for (int h = 0; h < c->n_head[l]; h++) best_single = fmin(best_single, hr_heads_score(r, abl, l, h));
    if (seen == n) {
        CHECK(hr_heads_score(r, abl, order[0] / H, order[0] % H) == best_single, "first removal is not the minimum");
        /* step = n/20 = 2 heads per round: order[0..1] went in round 1 */
        float *logits = malloc(sizeof(float) * FIX_W * c->vocab_size), *g = malloc(sizeof(float) * c->n_layers * H);
        for (int i = 0; i < c->n_layers * H; i++) g[i] = 1;
        g[order[0]] = g[order[1]] = 0;
        double best = INFINITY;
        int arg = -1;
        for (int l = 0; l < c->n_layers; l++)
            for (int h = 0; h < c->n_head[l]; h++) {
                int i = l * H + h;
                if (g[i] == 0) continue;
                g[i] = 0;
                double nll = fixture_nll(&f, g, logits);
                g[i] = 1;
                if (nll < best) best = nll, arg = i;
            }
        printf("    third removal: head %d.%d by the lab, %d.%d by gated full runs\n", order[2] / H, order[2] % H,
               arg / H, arg % H);
        CHECK(arg == order[2], "greedy's third removal is not the cheapest on top of the first two");
        free(logits), free(g);
    }
    free(order);
    hr_heads_result_free(r);
    fixture_close(&f);
}

/* ---- cost and progress ---- */

typedef struct {
    int n_phases, n_steps, last_step;
    char phase[16][48];
    int64_t done[16], total[16];
    bool ordered;       /* steps 1, 2, 3, ... and done never decreasing within a phase */
    int64_t stop_after; /* abort at this many updates (-1 = never) */
    int64_t updates;
} phase_log;

static int log_phase(const hr_progress_info *p, void *ud) {
    phase_log *lg = ud;
    lg->updates++;
    if (p->step != lg->last_step) {
        if (p->step != lg->last_step + 1 || p->done != 0 || lg->n_phases >= 16) lg->ordered = false;
        if (lg->n_phases < 16) snprintf(lg->phase[lg->n_phases++], sizeof lg->phase[0], "%s", p->phase);
        lg->last_step = p->step;
    } else if (lg->n_phases && p->done < lg->done[lg->n_phases - 1]) {
        lg->ordered = false;
    }
    if (lg->n_phases) lg->done[lg->n_phases - 1] = p->done, lg->total[lg->n_phases - 1] = p->total;
    lg->n_steps = p->n_steps;
    return lg->stop_after >= 0 && lg->updates >= lg->stop_after;
}

static double rel_diff(double a, double b) { return fabs(a - b) / fmax(fmax(fabs(a), fabs(b)), 1e-12); }

static double work_diff(const hr_heads_work *a, const hr_heads_work *b) {
    return fmax(fmax(rel_diff(a->tokens, b->tokens), rel_diff(a->decode_tokens, b->decode_tokens)),
                fmax(rel_diff(a->logit_rows, b->logit_rows), rel_diff(a->decode_logit_rows, b->decode_logit_rows)));
}

/* For every group of methods that share their work (and the layer
 * metrics, which every run does), a run of just that group does the work
 * the estimate counted before it: exactly where the estimate says exact;
 * at most that for FDTM (continuations stop at the first divergent token)
 * and successor; about that for greedy elimination (logit rows exactly,
 * tokens within 25 %, since where the surviving heads sit is not known
 * before). Every phase of the run names the estimate's row and ends with
 * done = total. */
static void cost_estimates_count_the_forward_work_the_runs_do(void) {
    lab_fixture f;
    if (!fixture_open(&f)) {
        fixture_close(&f);
        return;
    }
    int n = hr_heads_n_methods();
    bool *none = calloc((size_t)n, sizeof(bool)), *sel = calloc((size_t)n, sizeof(bool));
    hr_heads_estimate *all = NULL;
    for (int i = 0; i < n; i++) sel[i] = true;
    CHECK(hr_heads_estimate_cost(f.ctx, &f.p, sel, false, &all) == HR_OK, "%s", hr_last_error());
    int n_rows = hr_heads_estimate_n_rows(all);
    const hr_heads_cost *layers = hr_heads_estimate_row(all, n_rows - 1);
    CHECK(strcmp(layers->label, "layer metrics") == 0 && layers->exact, "last row: %s", layers->label);
    CHECK(hr_heads_estimate_window(all) == FIX_W && hr_heads_estimate_n_windows(all) == 2, "calibration %d x %d",
          hr_heads_estimate_n_windows(all), hr_heads_estimate_window(all));
    CHECK(hr_heads_estimate_row(all, n_rows) == NULL && hr_heads_estimate_row(all, -1) == NULL,
          "rows outside the estimate are NULL");
    for (int g = 0; g < n_rows - 1; g++) {
        const hr_heads_cost *row = hr_heads_estimate_row(all, g);
        /* select the row's methods */
        char ids[256];
        snprintf(ids, sizeof ids, "%s", row->label);
        for (char *c = ids; *c; c++)
            if (*c == ' ') memmove(c, c + 1, strlen(c));
        CHECK(hr_heads_parse_methods(ids, sel) == HR_OK, "%s: %s", ids, hr_last_error());
        phase_log lg = {.ordered = true, .stop_after = -1};
        f.p.progress_phase = log_phase;
        f.p.progress_ud = &lg;
        memset(&g_count, 0, sizeof g_count);
        hr_heads_result *r = NULL;
        CHECK(hr_heads_run(f.ctx, &f.p, sel, &r) == HR_OK, "%s: %s", ids, hr_last_error());
        hr_heads_work own = g_count;
        own.tokens -= layers->work.tokens;
        own.logit_rows -= layers->work.logit_rows;
        double d = work_diff(&own, &row->work);
        printf("    %-20s counted %8.1f + %6.1f tokens, %6.0f + %4.0f rows; estimated %8.1f + %6.1f, %6.0f + %4.0f "
               "(%s; max rel diff %.2g)\n",
               row->phase, own.tokens, own.decode_tokens, own.logit_rows, own.decode_logit_rows, row->work.tokens,
               row->work.decode_tokens, row->work.logit_rows, row->work.decode_logit_rows,
               row->exact ? "exact" : "bound", d);
        if (row->exact) {
            CHECK(d < 1e-9, "%s: counted work differs from the estimate by %.3g", row->phase, d);
        } else if (strcmp(row->phase, "greedy elimination") == 0) {
            CHECK(rel_diff(own.logit_rows, row->work.logit_rows) < 1e-9, "greedy rows");
            CHECK(rel_diff(own.tokens, row->work.tokens) < 0.25, "greedy tokens %.1f vs %.1f", own.tokens,
                  row->work.tokens);
        } else if (strstr(row->phase, "gradients")) {
            /* the gradient methods run the training forward + backward
             * (engine/grad), never hr_forward: about 3 forwards per window */
            CHECK(own.tokens == 0 && own.logit_rows == 0, "%s called hr_forward", row->phase);
            double t = (double)f.p.max_tokens;
            CHECK(rel_diff(row->work.tokens, 3 * t) < 1e-9, "%s: estimate %.1f tokens, want 3 x %.0f", row->phase,
                  row->work.tokens, t);
        } else {
            CHECK(row->bound, "%s is neither exact nor a bound", row->phase);
            CHECK(own.tokens <= row->work.tokens + 1e-9 && own.decode_tokens <= row->work.decode_tokens + 1e-9 &&
                      own.logit_rows <= row->work.logit_rows + 1e-9 &&
                      own.decode_logit_rows <= row->work.decode_logit_rows + 1e-9,
                  "%s: counted work exceeds its bound", row->phase);
        }
        /* phases: the row's, then the layer metrics, numbered 1..2 of 2, each run to its end */
        CHECK(lg.ordered && lg.n_phases == 2 && lg.n_steps == 2, "%s: %d phases of %d, ordered %d", row->phase,
              lg.n_phases, lg.n_steps, lg.ordered);
        CHECK(lg.n_phases == 2 && strcmp(lg.phase[0], row->phase) == 0 && strcmp(lg.phase[1], "layer metrics") == 0,
              "%s: phases '%s', '%s'", row->phase, lg.phase[0], lg.phase[1]);
        bool skipped = false;
        for (int i = 0; i < n; i++) skipped |= sel[i] && hr_heads_result_note(r, i)[0];
        for (int k = 0; k < lg.n_phases && k < 2; k++)
            CHECK(lg.done[k] == lg.total[k] || (k == 0 && skipped), "%s: phase '%s' ended at %lld of %lld", row->phase,
                  lg.phase[k], (long long)lg.done[k], (long long)lg.total[k]);
        hr_heads_result_free(r);
    }
    f.p.progress_phase = NULL;
    f.p.progress_ud = NULL;
    free(none), free(sel);
    hr_heads_estimate_free(all);
    fixture_close(&f);
}

/* A progress callback that returns 1 stops the run: HR_ERR_ABORTED, a
 * message naming the phase, no result; the context is left usable. */
static void a_progress_callback_can_stop_a_run(void) {
    lab_fixture f;
    if (!fixture_open(&f)) {
        fixture_close(&f);
        return;
    }
    phase_log lg = {.ordered = true, .stop_after = 5};
    f.p.progress_phase = log_phase;
    f.p.progress_ud = &lg;
    bool *sel = calloc((size_t)hr_heads_n_methods(), sizeof(bool));
    CHECK(hr_heads_parse_methods("ablation", sel) == HR_OK, "ablation");
    hr_heads_result *r = (hr_heads_result *)sel; /* must be reset to NULL */
    hr_status st = hr_heads_run(f.ctx, &f.p, sel, &r);
    CHECK(st == HR_ERR_ABORTED && r == NULL, "status %d, result %p", st, (void *)r);
    CHECK(strstr(hr_last_error(), "ablation sweep") && strstr(hr_last_error(), "stopped"), "message: %s",
          hr_last_error());
    CHECK(lg.updates == 5, "%lld updates after the stop", (long long)lg.updates);
    /* the thread's callback serves a run without its own */
    f.p.progress_phase = NULL;
    lg = (phase_log){.ordered = true, .stop_after = 1};
    hr_set_progress_callback(log_phase, &lg);
    st = hr_heads_run(f.ctx, &f.p, sel, &r);
    hr_set_progress_callback(NULL, NULL);
    CHECK(st == HR_ERR_ABORTED && r == NULL && lg.updates == 1, "thread callback: status %d", st);
    st = hr_heads_run(f.ctx, &f.p, sel, &r);
    CHECK(st == HR_OK && r, "a run after the stops: %s", hr_last_error());
    hr_heads_result_free(r);
    free(sel);
    fixture_close(&f);
}

/* ---- hostile / edge inputs ---- */

static void text_shorter_than_one_window_is_a_range_error(void) {
    hr_model *m = planted();
    if (!m) return;
    hr_context *ctx = NULL;
    CHECK(hr_context_new(m, NULL, &ctx) == HR_OK, "%s", hr_last_error());
    int32_t text[20];
    random_text(text, 20, 1);
    hr_heads_params p = planted_params(text, 20);
    hr_heads_result *r = (hr_heads_result *)&p; /* must be reset to NULL */
    CHECK(hr_heads_run(ctx, &p, NULL, &r) == HR_ERR_RANGE, "short text");
    CHECK(r == NULL, "no result on failure");
    CHECK(strstr(hr_last_error(), "window") != NULL, "message: %s", hr_last_error());
    hr_context_free(ctx);
}

static void tokens_outside_the_vocabulary_are_rejected(void) {
    hr_model *m = planted();
    if (!m) return;
    hr_context *ctx = NULL;
    CHECK(hr_context_new(m, NULL, &ctx) == HR_OK, "%s", hr_last_error());
    int32_t text[100];
    random_text(text, 100, 1);
    text[50] = P_VOCAB;
    hr_heads_params p = planted_params(text, 100);
    hr_heads_result *r = NULL;
    CHECK(hr_heads_run(ctx, &p, NULL, &r) == HR_ERR_INVALID_ARG, "bad token");
    text[50] = 3;
    p.bos = -1;
    CHECK(hr_heads_run(ctx, &p, NULL, &r) == HR_ERR_INVALID_ARG, "bad BOS");
    p.bos = P_BOS;
    p.window = P_SEQ + 1;
    CHECK(hr_heads_run(ctx, &p, NULL, &r) == HR_ERR_RANGE, "window beyond context");
    p.window = 32;
    p.rep_len = 40; /* 81 tokens > 64 */
    bool sel[64] = {false};
    sel[hr_heads_method_index("induction")] = true;
    CHECK(hr_heads_run(ctx, &p, sel, &r) == HR_ERR_RANGE, "repeat too long: %s", hr_last_error());
    CHECK(r == NULL, "no result");
    hr_context_free(ctx);
}

static void method_lists_are_parsed_strictly(void) {
    int n = hr_heads_n_methods();
    bool *sel = calloc((size_t)n, sizeof(bool));
    CHECK(hr_heads_parse_methods("all", sel) == HR_OK, "all");
    int count = 0;
    for (int i = 0; i < n; i++) count += sel[i];
    CHECK(count == n, "all selects %d of %d", count, n);
    CHECK(hr_heads_parse_methods("sink,induction", sel) == HR_OK, "two ids");
    CHECK(sel[hr_heads_method_index("sink")] && sel[hr_heads_method_index("induction")] &&
              !sel[hr_heads_method_index("ablation")],
          "selection");
    CHECK(hr_heads_parse_methods("sink,bogus", sel) == HR_ERR_INVALID_ARG, "unknown id");
    CHECK(strstr(hr_last_error(), "bogus") != NULL, "message names the id: %s", hr_last_error());
    CHECK(hr_heads_parse_methods("", sel) == HR_ERR_INVALID_ARG, "empty");
    CHECK(hr_heads_parse_methods("sink,", sel) == HR_ERR_INVALID_ARG, "trailing comma");
    CHECK(hr_heads_parse_methods(",sink", sel) == HR_ERR_INVALID_ARG, "leading comma");
    for (int i = 0; i < n; i++) {
        const hr_head_method_info *mi = hr_heads_method_info(i);
        CHECK(mi->paper[0] && mi->formula[0] && mi->good_for[0] && mi->higher[0], "%s documented", mi->id);
        CHECK(hr_heads_method_index(mi->id) == i, "%s index", mi->id);
    }
    CHECK(hr_heads_method_info(n) == NULL && hr_heads_method_info(-1) == NULL, "out of range");
    free(sel);
}

/* ---- successor heads' mod-10 probe ---- */

static float unit_noise(unsigned *s) {
    return (float)((*s = *s * 1103515245u + 12345u) >> 16 & 0x7fff) / 32768.0f - 0.5f;
}

/* Leave-one-out accuracy by brute force: the primal ridge probe
 * w = (X^T X + lambda I)^-1 X^T Y on [x, 1] refitted without each number
 * (Gaussian elimination), lambda as the library defines it (ridge × mean
 * squared norm of [x, 1] over all n). */
static double brute_loo(const float *x, const int *v, int n, int dim, double ridge) {
    int D = dim + 1;
    double tr = 0;
    for (int i = 0; i < n; i++) {
        tr += 1;
        for (int d = 0; d < dim; d++) tr += (double)x[i * dim + d] * x[i * dim + d];
    }
    double lambda = ridge * tr / n, *a = malloc(sizeof(double) * D * (D + 10));
    int right = 0;
    for (int out = 0; out < n; out++) {
        for (int r = 0; r < D; r++)
            for (int c = 0; c < D + 10; c++) a[r * (D + 10) + c] = r == c ? lambda : 0;
        for (int i = 0; i < n; i++) {
            if (i == out) continue;
            for (int r = 0; r < D; r++) {
                double xr = r < dim ? x[i * dim + r] : 1.0;
                for (int c = 0; c < D; c++) a[r * (D + 10) + c] += xr * (c < dim ? x[i * dim + c] : 1.0);
                a[r * (D + 10) + D + v[i] % 10] += xr;
            }
        }
        for (int p = 0; p < D; p++) /* Gauss-Jordan; the matrix is SPD, no pivoting needed */
            for (int r = 0; r < D; r++) {
                if (r == p) continue;
                double f = a[r * (D + 10) + p] / a[p * (D + 10) + p];
                for (int c = 0; c < D + 10; c++) a[r * (D + 10) + c] -= f * a[p * (D + 10) + c];
            }
        int best = 0;
        double bv = -1e300;
        for (int k = 0; k < 10; k++) {
            double y = 0;
            for (int r = 0; r < D; r++)
                y += (r < dim ? x[out * dim + r] : 1.0) * a[r * (D + 10) + D + k] / a[r * (D + 10) + r];
            if (y > bv) bv = y, best = k;
        }
        right += best == v[out] % 10;
    }
    free(a);
    return (double)right / n;
}

static void a_mod10_probe_is_perfect_on_an_embedding_built_with_mod10_features(void) {
    enum { N = 100, DIM = 16 };
    float x[N * DIM];
    int v[N];
    unsigned s = 5;
    for (int i = 0; i < N; i++) { /* a one-hot of i mod 10 (scaled 3) beside 6 dimensions of noise */
        v[i] = i;
        for (int d = 0; d < DIM; d++) x[i * DIM + d] = d < 10 ? 3.0f * (i % 10 == d) : unit_noise(&s);
    }
    hr_mod10_probe pr;
    CHECK(hr_probe_mod10(x, v, N, DIM, 1e-2, &pr) == HR_OK, "%s", hr_last_error());
    printf("    planted mod-10 features: fitted %.3f, leave-one-out %.3f, chance %.3f\n", pr.train_accuracy,
           pr.loo_accuracy, pr.chance);
    CHECK(pr.n == N && pr.n_classes == 10 && pr.train_accuracy == 1.0 && pr.loo_accuracy == 1.0 && pr.chance == 0.1,
          "planted: n %d classes %d fitted %.3f loo %.3f chance %.3f", pr.n, pr.n_classes, pr.train_accuracy,
          pr.loo_accuracy, pr.chance);
    /* noise only: leave-one-out near chance, and equal to the brute force */
    for (int i = 0; i < N * DIM; i++) x[i] = unit_noise(&s);
    CHECK(hr_probe_mod10(x, v, N, DIM, 1e-2, &pr) == HR_OK, "%s", hr_last_error());
    double brute = brute_loo(x, v, N, DIM, 1e-2);
    printf("    noise: fitted %.3f, leave-one-out %.3f (brute force %.3f), chance %.3f\n", pr.train_accuracy,
           pr.loo_accuracy, brute, pr.chance);
    CHECK(pr.loo_accuracy < 0.3, "noise predicts mod 10 left out: %.3f", pr.loo_accuracy);
    CHECK(pr.loo_accuracy == brute, "closed-form leave-one-out %.3f, brute force %.3f", pr.loo_accuracy, brute);
    /* the planted features with a strong penalty: still equal to the brute force */
    for (int i = 0; i < N; i++)
        for (int d = 0; d < 10; d++) x[i * DIM + d] += 0.5f * (i % 10 == d);
    CHECK(hr_probe_mod10(x, v, N, DIM, 0.5, &pr) == HR_OK && pr.loo_accuracy == brute_loo(x, v, N, DIM, 0.5),
          "weak features: %.3f", pr.loo_accuracy);
    int bad[2] = {1, -1};
    CHECK(hr_probe_mod10(x, bad, 2, DIM, 1e-2, &pr) == HR_ERR_RANGE, "a negative value is refused");
    CHECK(hr_probe_mod10(x, v, N, DIM, 0, &pr) == HR_ERR_RANGE, "ridge 0 is refused");
}

static void stories260k_has_only_the_digits_as_single_number_tokens(void) {
    hr_model *m = NULL;
    hr_tokenizer *tok = NULL;
    hr_context *ctx = NULL;
    CHECK(hr_model_load(SHARED("models/stories260K/stories260K.bin"), &m) == HR_OK &&
              hr_tokenizer_load(SHARED("models/stories260K/tok512.bin"), &tok) == HR_OK &&
              hr_context_new(m, NULL, &ctx) == HR_OK,
          "%s", hr_last_error());
    int values[101];
    hr_mod10_probe pr;
    if (ctx && tok) {
        CHECK(hr_successor_mod10(ctx, tok, 100, 1e-2, values, &pr) == HR_OK, "%s", hr_last_error());
        CHECK(pr.n == 10 && values[0] == 0 && values[9] == 9 && pr.n_classes == 0 && pr.chance == 0.1,
              "numbers %d, classes %d", pr.n, pr.n_classes);
        /* one number per class: left out, a class is never predicted */
        CHECK(pr.loo_accuracy == 0.0, "leave-one-out %.3f", pr.loo_accuracy);
    }
    hr_context_free(ctx);
    hr_tokenizer_free(tok);
    hr_model_free(m);
}

int main(void) {
    HR_T_REQUIRE_SHARED("models/stories260K/stories260K.bin", "models/stories260K/tok512.bin");
    RUN(planted_heads_rank_first_by_their_methods);
    RUN(heads_without_output_have_zero_ablation_effect);
    RUN(successor_is_skipped_with_a_note_without_tokenizer);
    RUN(attention_map_of_the_previous_token_head_is_a_subdiagonal);
    RUN(equal_inputs_and_seeds_give_identical_json);
    RUN(ablation_scores_equal_full_runs_with_the_gate_at_zero);
    RUN(greedy_elimination_removes_the_cheapest_head_given_those_already_gone);
    RUN(text_shorter_than_one_window_is_a_range_error);
    RUN(tokens_outside_the_vocabulary_are_rejected);
    RUN(method_lists_are_parsed_strictly);
    RUN(cost_estimates_count_the_forward_work_the_runs_do);
    RUN(a_progress_callback_can_stop_a_run);
    RUN(a_mod10_probe_is_perfect_on_an_embedding_built_with_mod10_features);
    RUN(stories260k_has_only_the_digits_as_single_number_tokens);
    hr_heads_result_free(g_pr);
    hr_model_free(g_pm);
    if (g_planted[0]) remove(g_planted);
    TEST_MAIN_END();
}
