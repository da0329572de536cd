/* Head lab: planted heads are found, ablation scores are exact, hostile
 * inputs fail cleanly, results are deterministic. */
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
    hr_heads_result_free(g_pr);
    hr_model_free(g_pm);
    if (g_planted[0]) remove(g_planted);
    TEST_MAIN_END();
}
