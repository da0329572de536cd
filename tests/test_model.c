/* Model loading: the three stories260K files agree; hostile files fail cleanly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "headroom/context.h"
#include "headroom/model.h"

static const int32_t prompts[][12] = {
    {1, 403, 407, 261, 378, 429, 288, 1, 2, 3, 4, 5},
    {1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 511},
    {1, 300, 300, 300, 300, 300, 300, 300, 300, 300, 300, 300},
};

static float *run_logits(hr_model *m, const int32_t *toks, int n) {
    hr_context *ctx = NULL;
    float *logits = malloc(sizeof(float) * (size_t)n * (size_t)hr_model_config(m)->vocab_size);
    if (hr_context_new(m, NULL, &ctx) != HR_OK || hr_forward(ctx, toks, n, logits, true) != HR_OK) {
        fprintf(stderr, "forward failed: %s\n", hr_last_error());
        free(logits);
        logits = NULL;
    }
    hr_context_free(ctx);
    return logits;
}

static void llama2c_bin_and_llama_cpp_gguf_give_the_same_logits(void) {
    hr_model *a = NULL, *b = NULL;
    CHECK(hr_model_load(SHARED("models/stories260K/stories260K.bin"), &a) == HR_OK, "%s", hr_last_error());
    CHECK(hr_model_load(SHARED("models/stories260K/stories260K.gguf"), &b) == HR_OK, "%s", hr_last_error());
    if (!a || !b) goto done;
    const hr_config *ca = hr_model_config(a), *cb = hr_model_config(b);
    CHECK(ca->dim == cb->dim && ca->n_layers == cb->n_layers && ca->vocab_size == cb->vocab_size, "configs differ");
    CHECK(ca->n_head[0] == cb->n_head[0] && ca->n_head_kv[0] == cb->n_head_kv[0], "head counts differ");
    CHECK(ca->n_ff[0] == cb->n_ff[0], "ffn sizes differ %d vs %d", ca->n_ff[0], cb->n_ff[0]);
    for (size_t p = 0; p < sizeof prompts / sizeof prompts[0]; p++) {
        float *la = run_logits(a, prompts[p], 12), *lb = run_logits(b, prompts[p], 12);
        CHECK(la && lb, "forward failed");
        if (la && lb) {
            double d = hr_t_maxdiff("bin vs gguf", la, lb, 12 * (size_t)ca->vocab_size);
            CHECK(d <= 1e-5, "max diff %g", d);
        }
        free(la);
        free(lb);
    }
done:
    hr_model_free(a);
    hr_model_free(b);
}

/* Mean NLL of next-token prediction over a token list. */
static double mean_nll(hr_model *m, const int32_t *toks, int n) {
    float *lg = run_logits(m, toks, n);
    if (!lg) return NAN;
    int V = hr_model_config(m)->vocab_size;
    double nll = 0;
    for (int t = 0; t + 1 < n; t++) {
        const float *row = lg + (size_t)t * V;
        double mx = row[0], s = 0;
        for (int i = 1; i < V; i++) mx = row[i] > mx ? row[i] : mx;
        for (int i = 0; i < V; i++) s += exp(row[i] - mx);
        nll += -(row[toks[t + 1]] - mx - log(s));
    }
    free(lg);
    return nll / (n - 1);
}

static void int8_model_predicts_almost_like_the_float_model(void) {
    hr_model *f = NULL, *q = NULL;
    CHECK(hr_model_load(SHARED("models/stories260K/stories260K.bin"), &f) == HR_OK, "%s", hr_last_error());
    CHECK(hr_model_load(SHARED("models/stories260K/stories260K_q8.bin"), &q) == HR_OK, "%s", hr_last_error());
    if (f && q) {
        CHECK(hr_model_format(q) == HR_FORMAT_LLAMA2C_Q8, "format %d", hr_model_format(q));
        /* Greedy self-generated text from the float model is a fair probe. */
        int32_t toks[64] = {1};
        hr_context *ctx = NULL;
        hr_context_new(f, NULL, &ctx);
        float logits[512];
        for (int t = 0; t < 63; t++) {
            hr_forward(ctx, &toks[t], 1, logits, false);
            int best = 0;
            for (int i = 1; i < 512; i++) best = logits[i] > logits[best] ? i : best;
            toks[t + 1] = best;
        }
        hr_context_free(ctx);
        double a = mean_nll(f, toks, 64), b = mean_nll(q, toks, 64);
        printf("    nll float %.4f, int8 %.4f\n", a, b);
        CHECK(fabs(a - b) < 0.05, "int8 nll %.4f vs float %.4f", b, a);
    }
    hr_model_free(f);
    hr_model_free(q);
}

int main(void) {
    RUN(llama2c_bin_and_llama_cpp_gguf_give_the_same_logits);
    RUN(int8_model_predicts_almost_like_the_float_model);
    TEST_MAIN_END();
}
