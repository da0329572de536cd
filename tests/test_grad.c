/* Gradients: the training loss equals the inference forward's, gradients
 * equal central finite differences of the loss, analytic identities hold,
 * results do not depend on threads or recomputation, bad input fails. */
#include "check.h"
#include "headroom/context.h"
#include "headroom/grad.h"
#include "headroom/heads.h"
#include "headroom/model.h"
#include "headroom/prune.h"
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
    snprintf(cmd, sizeof cmd,
             "'%s/hr_make_random' --dim 64 --hidden 96 --layers 2 --heads 8 --kv-heads 2 --vocab 97 "
             "--seq 64 --seed 3 --untied '%s'",
             tools ? tools : HR_BINARY_DIR, g_rand_path);
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
    printf("    %s: training loss %.9f, inference NLL %.9f, relative difference %.3g; %zu of %zu logits differ\n",
           label, loss, want, rel, bad, (size_t)(n - 1) * vocab);
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

/* Every selected tensor of m (weights, gates away from 1, LoRA adapters
 * with B != 0): its largest gradient entry and a pseudo-random one against
 * central differences of the loss on tokens. */
static void check_finite_differences(const char *label, const hr_model *m, const int32_t *tok, int n) {
    hr_params_params pp = hr_params_default_params();
    pp.copy_weights = true;
    pp.lora_rank = 2;
    pp.lora_alpha = 4;
    pp.lora_targets = HR_LORA_ALL;
    hr_params *P = NULL;
    CHECK(hr_params_new(m, &pp, &P) == HR_OK, "%s", hr_last_error());
    if (!P) return;
    for (int i = 0; i < hr_params_n_tensors(P); i++) {
        hr_param_info in;
        hr_params_info(P, i, &in);
        float *d = hr_params_data_mut(P, i);
        uint32_t s = 77 + (uint32_t)i;
        for (int64_t k = 0; d && (in.kind == HR_PARAM_LORA_B || in.kind >= HR_PARAM_HEAD_GATE) && k < in.rows * in.cols;
             k++) {
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
    printf("    %s:\n", label);
    for (int i = 0; i < hr_params_n_tensors(P); i++) {
        hr_param_info in;
        hr_params_info(P, i, &in);
        const float *gr = hr_grad_tensor(g, i);
        if (!gr) continue;
        size_t cnt = (size_t)(in.rows * in.cols), best = 0;
        for (size_t k = 1; k < cnt; k++)
            if (fabsf(gr[k]) > fabsf(gr[best])) best = k;
        size_t picks[2] = {best, (size_t)(i * 7919 + 13) % cnt};
        for (int s = 0; s < 2; s++) {
            size_t k = picks[s];
            double num = fd_grad(g, P, i, k, tok, n, FD_STEP);
            double err = fabs(num - gr[k]), tol = FD_REL * fabs(num) + FD_ABS;
            if (err > tol)
                printf("    %-28s [%6zu] analytic % .6e  numeric % .6e  |diff| %.2g\n", in.name, k, gr[k], num, err);
            if (err / tol > worst) worst = err / tol;
            CHECK(err <= tol, "%s %s[%zu]: analytic %g vs numeric %g", label, in.name, k, gr[k], num);
            checked++;
        }
    }
    printf("    %d entries of every tensor kind checked, worst |diff| / tolerance %.3g\n", checked, worst);
    hr_grad_free(g);
    hr_params_free(P);
}

static void gradients_match_central_finite_differences(void) {
    int32_t tok[40];
    int n = story_tokens(tok, 24);
    if (stories()) check_finite_differences("stories260K (tied, GQA 8/4), 24 tokens", stories(), tok, n);
    random_tokens(tok, 20, 97, 9);
    if (random_gqa()) check_finite_differences("random GQA 8/2, untied classifier, 20 tokens", random_gqa(), tok, 20);
}

/* ---- determinism and equivalences ---- */

typedef struct {
    int n;        /* tensors */
    float **g;    /* (n) copies, NULL where not selected */
    size_t *len;  /* (n) */
    float *input; /* input-embedding gradient or NULL */
    size_t input_len;
} grad_copy;

static grad_copy snapshot(const hr_grad *g, const hr_params *P) {
    grad_copy c = {hr_params_n_tensors(P), NULL, NULL, NULL, 0};
    c.g = calloc((size_t)c.n, sizeof *c.g);
    c.len = calloc((size_t)c.n, sizeof *c.len);
    for (int i = 0; i < c.n; i++) {
        hr_param_info in;
        hr_params_info(P, i, &in);
        const float *src = hr_grad_tensor(g, i);
        if (!src) continue;
        c.len[i] = (size_t)(in.rows * in.cols);
        c.g[i] = malloc(sizeof(float) * c.len[i]);
        memcpy(c.g[i], src, sizeof(float) * c.len[i]);
    }
    int rows = 0;
    const float *in = hr_grad_input(g, &rows);
    if (in) {
        c.input_len = (size_t)rows * hr_config_dim(hr_model_config(hr_params_model(P)));
        c.input = malloc(sizeof(float) * c.input_len);
        memcpy(c.input, in, sizeof(float) * c.input_len);
    }
    return c;
}

static void snapshot_free(grad_copy *c) {
    for (int i = 0; i < c->n; i++) free(c->g[i]);
    free(c->g), free(c->len), free(c->input);
}

/* Entries whose bits differ between two snapshots (every tensor + input). */
static size_t bits_differ(const grad_copy *a, const grad_copy *b) {
    size_t bad = 0;
    for (int i = 0; i < a->n; i++) {
        if (!a->g[i] || !b->g[i]) {
            bad += (a->g[i] != NULL) != (b->g[i] != NULL);
            continue;
        }
        for (size_t k = 0; k < a->len[i]; k++) bad += memcmp(&a->g[i][k], &b->g[i][k], sizeof(float)) != 0;
    }
    for (size_t k = 0; k < a->input_len && b->input; k++) bad += memcmp(&a->input[k], &b->input[k], sizeof(float)) != 0;
    return bad + (a->input_len != b->input_len);
}

/* Gradients over two windows (scale 1/2) with everything selected. */
static grad_copy run_all(hr_params *P, const int32_t *tok, int n, int threads, bool recompute) {
    hr_grad *g = new_grad(P, HR_GRAD_WEIGHTS | HR_GRAD_GATES | HR_GRAD_LORA, threads, recompute, true);
    grad_copy c = {0, NULL, NULL, NULL, 0};
    if (!g) return c;
    for (int w = 0; w < 2; w++)
        CHECK(hr_grad_accumulate(g, tok + w * n, n, 0.5f, NULL) == HR_OK, "%s", hr_grad_last_error(g));
    c = snapshot(g, P);
    hr_grad_free(g);
    return c;
}

static hr_params *params_with_lora(const hr_model *m) {
    hr_params_params pp = hr_params_default_params();
    pp.lora_rank = 3;
    pp.lora_targets = HR_LORA_Q | HR_LORA_V | HR_LORA_DOWN;
    hr_params *P = NULL;
    CHECK(hr_params_new(m, &pp, &P) == HR_OK, "%s", hr_last_error());
    for (int i = 0; P && i < hr_params_n_tensors(P); i++) {
        hr_param_info in;
        hr_params_info(P, i, &in);
        float *d = in.kind == HR_PARAM_LORA_B ? hr_params_data_mut(P, i) : NULL;
        for (int64_t k = 0; d && k < in.rows * in.cols; k++) d[k] = 0.01f * (float)((k * 37) % 11 - 5);
    }
    return P;
}

static void gradients_are_bit_identical_for_1_2_and_3_threads_and_with_recomputation(void) {
    const hr_model *m = stories();
    if (!m) return;
    int32_t tok[2 * 48];
    CHECK(story_tokens(tok, 96) == 96, "story tokens");
    hr_params *P = params_with_lora(m);
    if (!P) return;
    grad_copy ref = run_all(P, tok, 48, 1, false);
    const struct {
        int threads;
        bool recompute;
        const char *what;
    } runs[] = {{2, false, "2 threads"},
                {3, false, "3 threads"},
                {3, false, "3 threads again"},
                {2, true, "2 threads, recomputing activations"},
                {1, true, "1 thread, recomputing activations"}};
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        grad_copy c = run_all(P, tok, 48, runs[r].threads, runs[r].recompute);
        size_t bad = bits_differ(&ref, &c);
        printf("    %s: %zu entries differ from 1 thread\n", runs[r].what, bad);
        CHECK(bad == 0, "%s: %zu gradient entries differ", runs[r].what, bad);
        snapshot_free(&c);
    }
    snapshot_free(&ref);
    hr_params_free(P);
}

static void selecting_fewer_tensors_leaves_their_gradients_unchanged(void) {
    const hr_model *m = stories();
    if (!m) return;
    int32_t tok[2 * 48];
    story_tokens(tok, 96);
    hr_params *P = params_with_lora(m);
    if (!P) return;
    grad_copy all = run_all(P, tok, 48, 2, false);
    const uint64_t subsets[] = {HR_GRAD_KIND(HR_PARAM_HEAD_GATE), HR_GRAD_KIND(HR_PARAM_WQ) | HR_GRAD_KIND(HR_PARAM_WO),
                                HR_GRAD_KIND(HR_PARAM_W_DOWN) | HR_GRAD_KIND(HR_PARAM_NEURON_GATE),
                                HR_GRAD_KIND(HR_PARAM_OUT_NORM), HR_GRAD_LORA};
    for (size_t s = 0; s < sizeof subsets / sizeof subsets[0]; s++) {
        hr_grad *g = new_grad(P, subsets[s], 2, false, false);
        for (int w = 0; g && w < 2; w++) hr_grad_accumulate(g, tok + w * 48, 48, 0.5f, NULL);
        grad_copy c = snapshot(g, P);
        size_t bad = 0, n = 0;
        for (int i = 0; i < c.n; i++)
            for (size_t k = 0; c.g[i] && k < c.len[i]; k++, n++)
                bad += memcmp(&c.g[i][k], &all.g[i][k], sizeof(float)) != 0;
        printf("    kinds 0x%llx: %zu of %zu entries differ from the all-tensor run\n", (unsigned long long)subsets[s],
               bad, n);
        CHECK(n > 0 && bad == 0, "subset %zu: %zu of %zu differ", s, bad, n);
        snapshot_free(&c);
        hr_grad_free(g);
    }
    /* one tensor chosen through select[] */
    int one = hr_params_find(P, HR_PARAM_WV, 2, 0), nt = hr_params_n_tensors(P);
    bool *sel = calloc((size_t)nt, sizeof(bool));
    sel[one] = true;
    hr_grad_params gp = hr_grad_default_params();
    gp.select = sel;
    hr_grad *g = NULL;
    CHECK(hr_grad_new(P, &gp, &g) == HR_OK, "%s", hr_last_error());
    for (int w = 0; g && w < 2; w++) hr_grad_accumulate(g, tok + w * 48, 48, 0.5f, NULL);
    size_t bad = 0, selected = 0;
    for (int i = 0; g && i < nt; i++) selected += hr_grad_tensor(g, i) != NULL;
    for (size_t k = 0; g && k < all.len[one]; k++)
        bad += memcmp(&hr_grad_tensor(g, one)[k], &all.g[one][k], sizeof(float)) != 0;
    CHECK(selected == 1 && bad == 0, "select[]: %zu tensors selected, %zu entries differ", selected, bad);
    hr_grad_free(g);
    free(sel);
    snapshot_free(&all);
    hr_params_free(P);
}

static void accumulating_two_windows_equals_the_mean_of_their_gradients(void) {
    const hr_model *m = random_gqa();
    if (!m) return;
    int32_t tok[2 * 30];
    random_tokens(tok, 60, 97, 21);
    hr_params *P = NULL;
    hr_params_new(m, NULL, &P);
    hr_grad *g = new_grad(P, HR_GRAD_WEIGHTS | HR_GRAD_GATES, 2, false, false);
    if (!g) return;
    double l0, l1, lm;
    hr_grad_accumulate(g, tok, 30, 1.0f, &l0);
    grad_copy a = snapshot(g, P);
    hr_grad_zero(g);
    hr_grad_accumulate(g, tok + 30, 30, 1.0f, &l1);
    grad_copy b = snapshot(g, P);
    hr_grad_zero(g);
    hr_grad_accumulate(g, tok, 30, 0.5f, &lm);
    hr_grad_accumulate(g, tok + 30, 30, 0.5f, &lm);
    grad_copy s = snapshot(g, P);
    double worst = 0; /* per tensor: max |diff| / max |mean| */
    for (int i = 0; i < s.n; i++) {
        double d = 0, sc = 0;
        for (size_t k = 0; s.g[i] && k < s.len[i]; k++) {
            double want = 0.5 * ((double)a.g[i][k] + b.g[i][k]);
            d = fmax(d, fabs(s.g[i][k] - want));
            sc = fmax(sc, fabs(want));
        }
        if (sc > 0) worst = fmax(worst, d / sc);
    }
    printf("    accumulated vs mean of single windows: worst relative difference %.3g (losses %.6f, %.6f)\n", worst, l0,
           l1);
    CHECK(worst < 1e-5, "accumulation: %g", worst);
    snapshot_free(&a), snapshot_free(&b), snapshot_free(&s);
    hr_grad_free(g);
    hr_params_free(P);
}

/* The gate multiplies what the output projection reads, so dL/dgate_h =
 * sum over head h's W_o columns of w * dL/dw (likewise a neuron's gate and
 * its W_down column), and with an untied classifier the embedding
 * gradient is the input gradient summed over each token's positions. */
static void gate_gradients_equal_the_taylor_terms_of_their_output_weights(void) {
    const hr_model *m = random_gqa();
    if (!m) return;
    const hr_config *c = hr_model_config(m);
    int32_t tok[40];
    random_tokens(tok, 40, 97, 33);
    tok[7] = tok[3] = tok[30]; /* a repeated token */
    hr_params *P = NULL;
    hr_params_new(m, NULL, &P);
    hr_grad *g = new_grad(P, HR_GRAD_WEIGHTS | HR_GRAD_GATES, 2, false, true);
    if (!g) return;
    CHECK(hr_grad_accumulate(g, tok, 40, 1.0f, NULL) == HR_OK, "%s", hr_grad_last_error(g));
    int hd = hr_config_head_dim(c), dim = hr_config_dim(c);
    double worst = 0, scale = 0;
    for (int l = 0; l < hr_config_n_layers(c); l++) {
        int nh = hr_config_n_head(c, l), ff = hr_config_n_ff(c, l), qd = nh * hd;
        int io = hr_params_find(P, HR_PARAM_WO, l, 0), id = hr_params_find(P, HR_PARAM_W_DOWN, l, 0);
        const float *wo = hr_params_data(P, io), *gwo = hr_grad_tensor(g, io);
        const float *wd = hr_params_data(P, id), *gwd = hr_grad_tensor(g, id);
        const float *gg = hr_grad_tensor(g, hr_params_find(P, HR_PARAM_HEAD_GATE, l, 0));
        const float *gn = hr_grad_tensor(g, hr_params_find(P, HR_PARAM_NEURON_GATE, l, 0));
        for (int h = 0; h < nh; h++) {
            double s = 0;
            for (int i = 0; i < dim; i++)
                for (int d = 0; d < hd; d++) s += (double)wo[i * qd + h * hd + d] * gwo[i * qd + h * hd + d];
            worst = fmax(worst, fabs(s - gg[h]));
            scale = fmax(scale, fabs(s));
        }
        for (int j = 0; j < ff; j++) {
            double s = 0;
            for (int i = 0; i < dim; i++) s += (double)wd[i * ff + j] * gwd[i * ff + j];
            worst = fmax(worst, fabs(s - gn[j]));
            scale = fmax(scale, fabs(s));
        }
    }
    printf("    gates vs output-weight Taylor terms: max |diff| %.3g (largest %.3g)\n", worst, scale);
    CHECK(worst <= 1e-5 * scale, "gate identity: %g of %g", worst, scale);
    int rows = 0;
    const float *din = hr_grad_input(g, &rows);
    const float *gemb = hr_grad_tensor(g, hr_params_find(P, HR_PARAM_TOK_EMBD, -1, 0));
    size_t bad = 0;
    CHECK(din && rows == 40, "input gradient of %d rows", rows);
    for (int v = 0; din && v < hr_config_vocab_size(c); v++)
        for (int i = 0; i < dim; i++) {
            float s = 0;
            for (int t = 0; t < 40; t++)
                if (tok[t] == v) s += din[t * dim + i];
            bad += memcmp(&s, &gemb[(size_t)v * dim + i], sizeof s) != 0;
        }
    CHECK(bad == 0, "%zu embedding gradient entries differ from the summed input gradient", bad);
    hr_grad_free(g);
    hr_params_free(P);
}

/* A pruned model has layers of different widths, one without attention and
 * one without MLP: the training forward and backward follow the per-layer
 * shapes (checked against the inference forward and finite differences). */
static void pruned_models_with_uneven_layers_have_exact_gradients(void) {
    const hr_model *m = stories();
    if (!m) return;
    hr_prune_spec *spec = NULL;
    hr_model *pm = NULL;
    CHECK(hr_prune_spec_new(m, &spec) == HR_OK, "%s", hr_last_error());
    hr_prune_spec_set_head(spec, 1, 0, false); /* KV group 0 of layer 1 */
    hr_prune_spec_set_head(spec, 1, 1, false);
    for (int j = 0; j < 60; j += 3) hr_prune_spec_set_neuron(spec, 0, j, false);
    hr_prune_spec_set_dropped(spec, 2, HR_PRUNE_ATTN, true);
    hr_prune_spec_set_dropped(spec, 3, HR_PRUNE_MLP, true);
    CHECK(hr_prune_apply(m, spec, &pm) == HR_OK, "%s", hr_last_error());
    if (pm) {
        const hr_config *c = hr_model_config(pm);
        printf("    heads per layer %d %d %d %d %d, FFN %d %d %d %d %d\n", hr_config_n_head(c, 0),
               hr_config_n_head(c, 1), hr_config_n_head(c, 2), hr_config_n_head(c, 3), hr_config_n_head(c, 4),
               hr_config_n_ff(c, 0), hr_config_n_ff(c, 1), hr_config_n_ff(c, 2), hr_config_n_ff(c, 3),
               hr_config_n_ff(c, 4));
        int32_t tok[40];
        int n = story_tokens(tok, 32);
        check_loss_against_inference("pruned stories260K, 32 tokens", pm, tok, n);
        check_finite_differences("pruned stories260K, 24 tokens", pm, tok, 24);
    }
    hr_model_free(pm);
    hr_prune_spec_free(spec);
}

/* ---- bad input, ownership ---- */

static void bad_windows_and_arguments_fail_with_a_message(void) {
    const hr_model *m = random_gqa();
    if (!m) return;
    hr_params *P = NULL;
    CHECK(hr_params_new(NULL, NULL, &P) == HR_ERR_INVALID_ARG && P == NULL, "no model");
    hr_params_params pp = hr_params_default_params();
    pp.lora_rank = -1;
    CHECK(hr_params_new(m, &pp, &P) == HR_ERR_RANGE, "negative rank");
    pp.lora_rank = 2, pp.lora_targets = 1u << 9;
    CHECK(hr_params_new(m, &pp, &P) == HR_ERR_INVALID_ARG && strstr(hr_last_error(), "LoRA"), "%s", hr_last_error());
    CHECK(hr_params_new(m, NULL, &P) == HR_OK, "%s", hr_last_error());
    int iq = hr_params_find(P, HR_PARAM_WQ, 0, 0), ig = hr_params_find(P, HR_PARAM_HEAD_GATE, 1, 0);
    CHECK(iq >= 0 && hr_params_data(P, iq) != NULL, "Wq found");
    CHECK(hr_params_data_mut(P, iq) == NULL, "a borrowed weight is not writable");
    CHECK(hr_params_data_mut(P, ig) != NULL && hr_params_data(P, ig)[0] == 1.0f, "gates are owned and start at 1");
    CHECK(hr_params_find(P, HR_PARAM_LORA_A, 0, HR_LORA_Q) == -1, "no adapters without a rank");
    CHECK(hr_params_find(P, HR_PARAM_OUTPUT, -1, 0) >= 0, "untied classifier listed");
    hr_grad_params gp = hr_grad_default_params();
    hr_grad *g = NULL;
    gp.max_tokens = 65;
    CHECK(hr_grad_new(P, &gp, &g) == HR_ERR_RANGE && g == NULL, "max_tokens beyond seq_len");
    gp.max_tokens = 16;
    gp.kinds = HR_GRAD_KIND(HR_PARAM_HEAD_GATE);
    CHECK(hr_grad_new(P, &gp, &g) == HR_OK, "%s", hr_last_error());
    int32_t tok[20] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17};
    double loss;
    CHECK(hr_grad_accumulate(g, tok, 1, 1.0f, &loss) == HR_ERR_RANGE && strstr(hr_grad_last_error(g), "at least 2"),
          "%s", hr_grad_last_error(g));
    CHECK(hr_grad_accumulate(g, tok, 17, 1.0f, &loss) == HR_ERR_RANGE && strstr(hr_grad_last_error(g), "max_tokens"),
          "%s", hr_grad_last_error(g));
    tok[3] = 97;
    CHECK(hr_grad_loss(g, tok, 8, &loss, NULL) == HR_ERR_INVALID_ARG &&
              strstr(hr_grad_last_error(g), "outside the vocabulary"),
          "%s", hr_grad_last_error(g));
    tok[3] = -1;
    CHECK(hr_grad_accumulate(g, tok, 8, 1.0f, &loss) == HR_ERR_INVALID_ARG, "negative id");
    tok[3] = 4;
    CHECK(hr_grad_accumulate(g, NULL, 8, 1.0f, &loss) == HR_ERR_INVALID_ARG, "no tokens");
    CHECK(hr_grad_accumulate(g, tok, 8, NAN, &loss) == HR_ERR_INVALID_ARG, "NaN scale");
    double out[8];
    CHECK(hr_grad_taylor_heads(g, 0, out) == HR_ERR_INVALID_ARG && strstr(hr_last_error(), "attn_q"),
          "Taylor without Wq: %s", hr_last_error());
    CHECK(hr_grad_taylor_neurons(g, 5, out) == HR_ERR_RANGE, "layer out of range");
    CHECK(hr_grad_tensor(g, iq) == NULL && hr_grad_tensor(g, ig) != NULL, "only gates selected");
    CHECK(hr_grad_input(g, NULL) == NULL, "no input gradient unless asked");
    CHECK(hr_grad_accumulate(g, tok, 8, 1.0f, &loss) == HR_OK && isfinite(loss), "valid window after errors");
    double l2, l16; /* the shortest window, then a longer one than any before (buffers grow) */
    CHECK(hr_grad_accumulate(g, tok, 2, 1.0f, &l2) == HR_OK && isfinite(l2), "2-token window: %s",
          hr_grad_last_error(g));
    CHECK(hr_grad_accumulate(g, tok, 16, 1.0f, &l16) == HR_OK && isfinite(l16), "16 tokens: %s", hr_grad_last_error(g));
    hr_grad_free(g);
    hr_params_free(P);
    hr_grad_free(NULL);
    hr_params_free(NULL);
}

/* ---- a planted head ----
 * Residual (dim 128): [0] = 1, [1+v] = one-hot of token v (v < 8); tied
 * classifier, so the model predicts the tokens present in the residual.
 * Head 0.0 is an exact previous-token head (RoPE phase trick on the bias:
 * score(t, s) peaks at s = t-1) writing 3 x the previous token's one-hot
 * into the token slots; head 0.1 writes a constant 0.3 into an unused slot;
 * layer 1's heads and every MLP are zero. On text that alternates two
 * tokens, the next token is the previous one, so head 0.0 carries the
 * model: it must have the largest `grad` (and `taylor`, `ablation`)
 * score, and layer 1's silent heads a gradient of exactly 0. */
enum { PL_D = 128, PL_HD = 64, PL_V = 8, PL_SEQ = 64, PL_HID = 8 };

static int write_planted(const char *path) {
    size_t D = PL_D, sq = D * D, L = 2;
    float *emb = calloc(PL_V * D, 4), *ones = malloc(L * D * 4), *wq = calloc(L * sq, 4), *wk = calloc(L * sq, 4);
    float *wv = calloc(L * sq, 4), *wo = calloc(L * sq, 4), *ff = calloc(L * PL_HID * D, 4);
    float *fr = calloc(PL_SEQ * PL_HD / 2, 4), *fi = calloc(PL_SEQ * PL_HD / 2, 4);
    for (size_t i = 0; i < L * D; i++) ones[i] = 1;
    for (size_t v = 0; v < PL_V; v++) emb[v * D] = 1, emb[v * D + 1 + v] = 1;
    for (int i = 0; i < 6; i++) { /* head 0.0: query = bias rotated back one position */
        double th = pow(10000.0, -2.0 * i / PL_HD);
        wq[(2 * i) * D] = 2 * (float)cos(th);
        wq[(2 * i + 1) * D] = -2 * (float)sin(th);
        wk[(2 * i) * D] = 2;
    }
    for (int j = 0; j < PL_V; j++) {
        wv[j * D + 1 + j] = 1.0f / 8; /* the normed one-hot is 8 */
        wo[(1 + j) * D + j] = 3;
    }
    wv[PL_HD * D] = 1.0f / 8; /* head 0.1: uniform attention over the bias, written to slot 100 */
    wo[100 * D + PL_HD] = 0.3f;
    int32_t hdr[7] = {PL_D, PL_HID, 2, 2, 2, PL_V, PL_SEQ};
    FILE *f = fopen(path, "wb");
    int ok = f != NULL;
    if (ok) {
        size_t nf = PL_SEQ * PL_HD / 2;
        ok &=
            fwrite(hdr, 4, 7, f) == 7 && fwrite(emb, 4, PL_V * D, f) == PL_V * D && fwrite(ones, 4, L * D, f) == L * D;
        ok &= fwrite(wq, 4, L * sq, f) == L * sq && fwrite(wk, 4, L * sq, f) == L * sq;
        ok &= fwrite(wv, 4, L * sq, f) == L * sq && fwrite(wo, 4, L * sq, f) == L * sq;
        ok &= fwrite(ones, 4, L * D, f) == L * D;
        for (int k = 0; k < 3; k++) ok &= fwrite(ff, 4, L * PL_HID * D, f) == L * PL_HID * D; /* w1 w2 w3 */
        ok &= fwrite(ones, 4, D, f) == D && fwrite(fr, 4, nf, f) == nf && fwrite(fi, 4, nf, f) == nf;
        ok &= fclose(f) == 0;
    }
    free(emb), free(ones), free(wq), free(wk), free(wv), free(wo), free(ff), free(fr), free(fi);
    return ok;
}

static void the_planted_previous_token_head_has_the_largest_gradient_score(void) {
    char path[256];
    snprintf(path, sizeof path, "%s/test_grad_planted_%d.bin", HR_BINARY_DIR, (int)getpid());
    hr_model *m = NULL;
    CHECK(write_planted(path) && hr_model_load(path, &m) == HR_OK, "planted model: %s", hr_last_error());
    hr_context *ctx = NULL;
    if (m) CHECK(hr_context_new(m, NULL, &ctx) == HR_OK, "%s", hr_last_error());
    int32_t text[4 * 31];
    for (int w = 0; w < 4; w++) /* each window alternates its own two tokens */
        for (int t = 0; t < 31; t++) text[w * 31 + t] = t % 2 ? 1 + w : 5 + (w % 3);
    hr_heads_params hp = hr_heads_default_params();
    hp.tokens = text, hp.n_tokens = 4 * 31, hp.bos = 0, hp.window = 32, hp.max_tokens = 4 * 32;
    bool sel[64] = {false};
    hr_heads_result *r = NULL;
    CHECK(hr_heads_parse_methods("grad,taylor,ablation", sel) == HR_OK, "%s", hr_last_error());
    if (ctx) CHECK(hr_heads_run(ctx, &hp, sel, &r) == HR_OK, "%s", hr_last_error());
    const char *ids[] = {"grad", "taylor", "ablation"};
    for (int i = 0; r && i < 3; i++) {
        int k = hr_heads_method_index(ids[i]);
        printf("    %-9s 0.0 %.4g  0.1 %.4g  1.0 %.4g  1.1 %.4g\n", ids[i], hr_heads_score(r, k, 0, 0),
               hr_heads_score(r, k, 0, 1), hr_heads_score(r, k, 1, 0), hr_heads_score(r, k, 1, 1));
        CHECK(hr_heads_rank(r, k, 0, 0) == 1, "%s ranks head 0.0 %d", ids[i], hr_heads_rank(r, k, 0, 0));
    }
    int gk = hr_heads_method_index("grad");
    if (r) CHECK(hr_heads_score(r, gk, 1, 0) == 0 && hr_heads_score(r, gk, 1, 1) == 0, "silent heads have gradient 0");
    hr_heads_result_free(r);
    hr_context_free(ctx);
    hr_model_free(m);
    unlink(path);
}

int main(void) {
    RUN(training_loss_equals_the_inference_nll_and_logits_are_bit_identical);
    RUN(gradients_match_central_finite_differences);
    RUN(gradients_are_bit_identical_for_1_2_and_3_threads_and_with_recomputation);
    RUN(selecting_fewer_tensors_leaves_their_gradients_unchanged);
    RUN(accumulating_two_windows_equals_the_mean_of_their_gradients);
    RUN(gate_gradients_equal_the_taylor_terms_of_their_output_weights);
    RUN(pruned_models_with_uneven_layers_have_exact_gradients);
    RUN(bad_windows_and_arguments_fail_with_a_message);
    RUN(the_planted_previous_token_head_has_the_largest_gradient_score);
    hr_model_free(stories());
    hr_model_free(random_gqa());
    if (g_rand_path[0]) unlink(g_rand_path);
    TEST_MAIN_END();
}
