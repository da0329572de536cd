/* Gradients: the training loss equals the inference forward's, gradients
 * equal central finite differences of the loss, analytic identities hold,
 * results do not depend on threads or recomputation, bad input fails. */
#include "check.h"
#include "headroom/context.h"
#include "headroom/grad.h"
#include "headroom/model.h"
#include "headroom/tokenizer.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- fixtures ---- */

static hr_model *load(const char *path) {
    hr_model *m = NULL;
    if (hr_model_load(path, &m) != HR_OK) fprintf(stderr, "cannot load %s: %s\n", path, hr_last_error());
    return m;
}

static hr_model *stories(void) {
    static hr_model *m;
    if (!m) m = load(SHARED("models/stories260K/stories260K.bin"));
    return m;
}

/* A random llama2.c model with GQA (8 heads, 2 KV heads) and an untied
 * classifier, written by tests/tools/hr_make_random. */
static char g_rand_path[256];
static hr_model *random_gqa(void) {
    static hr_model *m;
    if (m) return m;
    const char *tools = getenv("HR_TOOLS_DIR");
    snprintf(g_rand_path, sizeof g_rand_path, "%s/test_grad_gqa_%d.bin", HR_BINARY_DIR, (int)getpid());
    char cmd[768];
    snprintf(cmd, sizeof cmd, "'%s/hr_make_random' --dim 64 --hidden 96 --layers 2 --heads 8 --kv-heads 2 --vocab 97 "
             "--seq 64 --seed 3 --untied '%s'", tools ? tools : HR_BINARY_DIR, g_rand_path);
    if (system(cmd) != 0) {
        fprintf(stderr, "hr_make_random failed\n");
        return NULL;
    }
    m = load(g_rand_path);
    return m;
}

/* n tokens of a story, BOS first (stories260K's tokenizer). */
static int story_tokens(int32_t *out, int n) {
    hr_tokenizer *tok = NULL;
    if (hr_tokenizer_load(SHARED("models/stories260K/tok512.bin"), &tok) != HR_OK) return 0;
    const char *text = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park "
                       "with her friends. One day, she saw a big red ball under a tree. Lily ran to the ball and "
                       "kicked it very hard. The ball flew over the fence and her friend Tom laughed at her.";
    int32_t *ids = NULL;
    size_t n_ids = 0;
    hr_encode_params ep = hr_encode_default_params();
    ep.add_bos = true;
    int got = 0;
    if (hr_tokenizer_encode(tok, text, strlen(text), &ep, &ids, &n_ids) == HR_OK) {
        got = (int)n_ids < n ? (int)n_ids : n;
        memcpy(out, ids, sizeof(int32_t) * (size_t)got);
    }
    hr_free(ids);
    hr_tokenizer_free(tok);
    return got;
}

static void random_tokens(int32_t *t, int n, int vocab, uint32_t seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        t[i] = (int32_t)((seed >> 8) % (uint32_t)vocab);
    }
}

/* Mean NLL of tokens[1..n) from hr_forward's logits, in double. */
static double inference_nll(const hr_model *m, const int32_t *tok, int n, float *logits) {
    hr_context *ctx = NULL;
    hr_context_params cp = hr_context_default_params();
    cp.n_threads = 2;
    if (hr_context_new(m, &cp, &ctx) != HR_OK || hr_forward(ctx, tok, n, logits, true) != HR_OK) {
        hr_context_free(ctx);
        return NAN;
    }
    hr_context_free(ctx);
    int vocab = hr_config_vocab_size(hr_model_config(m));
    double s = 0;
    for (int t = 0; t + 1 < n; t++) {
        const float *r = logits + (size_t)t * vocab;
        double mx = r[0], z = 0;
        for (int v = 1; v < vocab; v++) mx = r[v] > mx ? r[v] : mx;
        for (int v = 0; v < vocab; v++) z += exp(r[v] - mx);
        s += mx + log(z) - r[tok[t + 1]];
    }
    return s / (n - 1);
}

static hr_grad *new_grad(hr_params *P, uint64_t kinds, int threads, bool recompute, bool input) {
    hr_grad_params gp = hr_grad_default_params();
    gp.kinds = kinds;
    gp.n_threads = threads;
    gp.recompute = recompute;
    gp.input_grad = input;
    hr_grad *g = NULL;
    hr_status st = hr_grad_new(P, &gp, &g);
    CHECK(st == HR_OK, "hr_grad_new: %s", hr_last_error());
    return g;
}

/* ---- the loss ---- */

static void check_loss_against_inference(const char *label, const hr_model *m, const int32_t *tok, int n) {
    int vocab = hr_config_vocab_size(hr_model_config(m));
    float *ref = malloc(sizeof(float) * (size_t)n * vocab), *got = malloc(sizeof(float) * (size_t)n * vocab);
    double want = inference_nll(m, tok, n, ref), loss = NAN;
    hr_params *P = NULL;
    CHECK(hr_params_new(m, NULL, &P) == HR_OK, "%s", hr_last_error());
    hr_grad *g = new_grad(P, 0, 2, false, false);
    CHECK(hr_grad_loss(g, tok, n, &loss, got) == HR_OK, "%s", hr_grad_last_error(g));
    double rel = fabs(loss - want) / fabs(want);
    size_t bad = 0;
    for (size_t i = 0; i < (size_t)(n - 1) * vocab; i++) bad += memcmp(&got[i], &ref[i], sizeof(float)) != 0;
    printf("    %s: training loss %.9f, inference NLL %.9f, relative difference %.3g; %zu of %zu logits differ\n", label,
           loss, want, rel, bad, (size_t)(n - 1) * vocab);
    CHECK(rel <= 1e-5, "%s: relative loss difference %g", label, rel);
    CHECK(bad == 0, "%s: training logits are not bit-identical to hr_forward's (%zu differ)", label, bad);
    hr_grad_free(g);
    hr_params_free(P);
    free(ref), free(got);
}

static void training_loss_equals_the_inference_nll_and_logits_are_bit_identical(void) {
    int32_t tok[96];
    int n = story_tokens(tok, 64);
    CHECK(n == 64, "story gives %d tokens", n);
    if (stories() && n == 64) check_loss_against_inference("stories260K, 64 tokens", stories(), tok, n);
    random_tokens(tok, 40, 97, 5);
    if (random_gqa()) check_loss_against_inference("random GQA untied, 40 tokens", random_gqa(), tok, 40);
}

/* ---- finite differences ---- */

/* The loss is evaluated in float: its rounding noise (~1e-6 on an O(1)
 * loss) divided by the step bounds what a central difference resolves —
 * small entries scatter by up to ~5e-5 with h = 0.02 — and larger steps add
 * truncation error (Richardson extrapolation of h and h/2 leaves O(h^4);
 * at h = 0.03 the steepest key weights already show 3e-3). So an entry
 * passes when |analytic - numeric| <= 2e-3 |numeric| + 1.5e-4: large
 * entries are held to 0.2 %, and a missing or wrong term, which moves
 * them by O(1), cannot pass. */
#define FD_STEP 0.02f
#define FD_REL 2e-3
#define FD_ABS 1.5e-4

/* Central difference of the loss in entry k of tensor ti, Richardson-
 * extrapolated from steps h and h/2 (error O(h^4) instead of O(h^2)). */
static double fd_grad(hr_grad *g, hr_params *P, int ti, size_t k, const int32_t *tok, int n, float h) {
    float *p = hr_params_data_mut(P, ti);
    float v = p[k];
    double d[2];
    for (int s = 0; s < 2; s++) {
        float step = s ? h / 2 : h;
        double lp = 0, lm = 0;
        p[k] = v + step;
        hr_params_touch(P);
        hr_grad_loss(g, tok, n, &lp, NULL);
        p[k] = v - step;
        hr_params_touch(P);
        hr_grad_loss(g, tok, n, &lm, NULL);
        d[s] = (lp - lm) / ((double)(v + step) - (double)(v - step));
    }
    p[k] = v;
    hr_params_touch(P);
    return (4 * d[1] - d[0]) / 3;
}

static void gradients_match_central_finite_differences(void) {
    const hr_model *m = stories();
    if (!m) return;
    int32_t tok[40];
    int n = story_tokens(tok, 24);
    hr_params_params pp = hr_params_default_params();
    pp.copy_weights = true;
    pp.lora_rank = 2;
    pp.lora_alpha = 4;
    pp.lora_targets = HR_LORA_ALL;
    hr_params *P = NULL;
    CHECK(hr_params_new(m, &pp, &P) == HR_OK, "%s", hr_last_error());
    if (!P) return;
    /* B != 0 so every adapter matters; gates away from 1 */
    for (int i = 0; i < hr_params_n_tensors(P); i++) {
        hr_param_info in;
        hr_params_info(P, i, &in);
        float *d = hr_params_data_mut(P, i);
        uint32_t s = 77 + (uint32_t)i;
        for (int64_t k = 0; d && (in.kind == HR_PARAM_LORA_B || in.kind >= HR_PARAM_HEAD_GATE) && k < in.rows * in.cols; k++) {
            s = s * 1664525u + 1013904223u;
            float u = (float)(s >> 8) / 16777216.0f - 0.5f;
            if (in.kind == HR_PARAM_LORA_B) d[k] = 0.2f * u;
            else if (in.kind != HR_PARAM_LORA_A) d[k] = 1.0f + 0.5f * u;
        }
    }
    hr_grad *g = new_grad(P, HR_GRAD_WEIGHTS | HR_GRAD_GATES | HR_GRAD_LORA, 2, false, false);
    if (!g) return;
    CHECK(hr_grad_accumulate(g, tok, n, 1.0f, NULL) == HR_OK, "%s", hr_grad_last_error(g));
    double worst = 0;
    int checked = 0;
    for (int i = 0; i < hr_params_n_tensors(P); i++) {
        hr_param_info in;
        hr_params_info(P, i, &in);
        const float *gr = hr_grad_tensor(g, i);
        if (!gr) continue;
        size_t cnt = (size_t)(in.rows * in.cols), best = 0;
        for (size_t k = 1; k < cnt; k++) /* the largest gradient entry and two pseudo-random ones */
            if (fabsf(gr[k]) > fabsf(gr[best])) best = k;
        size_t picks[3] = {best, (size_t)(i * 7919 + 13) % cnt, (size_t)(i * 104729 + 5) % cnt};
        for (int s = 0; s < 3; s++) {
            size_t k = picks[s];
            double num = fd_grad(g, P, i, k, tok, n, FD_STEP);
            double err = fabs(num - gr[k]), tol = FD_REL * fabs(num) + FD_ABS;
            if (s == 0 || err > tol)
                printf("    %-28s [%6zu] analytic % .6e  numeric % .6e  |diff| %.2g\n", in.name, k, gr[k], num, err);
            if (err / tol > worst) worst = err / tol;
            CHECK(err <= tol, "%s[%zu]: analytic %g vs numeric %g", in.name, k, gr[k], num);
            checked++;
        }
    }
    printf("    %d entries checked, worst |diff| / tolerance %.3g\n", checked, worst);
    hr_grad_free(g);
    hr_params_free(P);
}

int main(void) {
    RUN(training_loss_equals_the_inference_nll_and_logits_are_bit_identical);
    RUN(gradients_match_central_finite_differences);
    hr_model_free(stories());
    hr_model_free(random_gqa());
    if (g_rand_path[0]) unlink(g_rand_path);
    TEST_MAIN_END();
}
