/* Model loading: the three stories260K files agree; hostile files fail cleanly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/types.h>

#include "check.h"
#include "headroom/context.h"
#include "headroom/evaluate.h"
#include "headroom/tokenizer.h"
#include "headroom/model.h"
#include "model/config.h"
#include "model/arch.h"

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

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    *len = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = malloc(*len);
    if (fread(b, 1, *len, fp) != *len) *len = 0;
    fclose(fp);
    return b;
}

/* Writes len bytes to a temp file and tries to load it: must fail cleanly. */
static void expect_load_failure(const unsigned char *data, size_t len, const char *what) {
    char path[] = "/tmp/hr_model_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return;
    if (len && write(fd, data, len) != (ssize_t)len) fprintf(stderr, "short write\n");
    close(fd);
    hr_model *m = NULL;
    hr_status st = hr_model_load(path, &m);
    CHECK(st < 0 && m == NULL, "%s: loaded (%d)", what, st);
    CHECK(strlen(hr_last_error()) > 0, "%s: no message", what);
    hr_model_free(m);
    unlink(path);
}

static void truncated_and_hostile_model_files_fail_with_a_message(void) {
    const char *files[] = {SHARED("models/stories260K/stories260K.bin"),
                           SHARED("models/stories260K/stories260K_q8.bin"),
                           SHARED("models/stories260K/stories260K.gguf")};
    for (int f = 0; f < 3; f++) {
        size_t len = 0;
        unsigned char *b = slurp(files[f], &len);
        CHECK(b && len > 1000, "cannot read %s", files[f]);
        if (!b) continue;
        size_t cuts[] = {0, 1, 3, 4, 20, 27, 28, 40, 255, 256, 300, 4096, len / 2, len - 4, len - 1};
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
            char what[96];
            snprintf(what, sizeof what, "file %d cut at %zu", f, cuts[i]);
            expect_load_failure(b, cuts[i], what);
        }
        free(b);
    }
    /* llama2.c headers with absurd or overflowing dimensions. */
    int32_t hdrs[][7] = {{1 << 30, 172, 5, 8, 4, 512, 512},
                         {64, 172, 1 << 30, 8, 4, 512, 512},
                         {64, 172, 5, 8, 4, 1 << 30, 512},
                         {64, 1 << 30, 5, 8, 4, 512, 512},
                         {64, 172, 5, 0, 4, 512, 512},
                         {64, 172, 5, 8, 3, 512, 512},
                         {64, 172, 5, 8, 4, INT32_MIN, 512},
                         {64, 172, 5, 8, 4, 512, -1},
                         {65536, 262143, 256, 1024, 1024, 4194303, 4194303}};
    for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
        unsigned char buf[64] = {0};
        memcpy(buf, hdrs[i], sizeof hdrs[i]);
        char what[64];
        snprintf(what, sizeof what, "absurd header %zu", i);
        expect_load_failure(buf, sizeof buf, what);
    }
    unsigned char junk[64];
    memset(junk, 0xAB, sizeof junk);
    expect_load_failure(junk, sizeof junk, "wrong magic");
    hr_model *m = NULL;
    CHECK(hr_model_load("/nonexistent/model.bin", &m) == HR_ERR_IO && !m, "missing file");
    hr_model_free(NULL);
}

/* The README states this tolerance: the int8 export's perplexity on
 * TinyStories is within 2% of the float model's. */
enum { INT8_PPL_TOLERANCE_PERCENT = 2 };

static double ppl_of(const char *model_path, const int32_t *toks, size_t n) {
    hr_model *m = NULL;
    hr_context *ctx = NULL;
    hr_ppl_result r = {0};
    hr_ppl_params p = hr_ppl_default_params();
    p.n_ctx = 256;
    if (hr_model_load(model_path, &m) != HR_OK || hr_context_new(m, NULL, &ctx) != HR_OK ||
        hr_perplexity(ctx, toks, n, &p, &r) != HR_OK) {
        fprintf(stderr, "ppl failed: %s\n", hr_last_error());
        r.ppl = NAN;
    }
    hr_context_free(ctx);
    hr_model_free(m);
    return r.ppl;
}

static void int8_perplexity_on_tinystories_is_within_the_stated_tolerance(void) {
    hr_tokenizer *tok = NULL;
    char *text = NULL;
    size_t len = 0, n = 0;
    int32_t *ids = NULL;
    CHECK(hr_tokenizer_load(SHARED("models/stories260K/tok512.bin"), &tok) == HR_OK, "%s", hr_last_error());
    FILE *fp = fopen(SHARED("data/text/tinystories_val.txt"), "rb");
    CHECK(fp != NULL, "cannot open tinystories_val.txt");
    if (!fp || !tok) return;
    text = malloc(60001);
    len = fread(text, 1, 60000, fp);
    fclose(fp);
    while (len > 0 && ((unsigned char)text[len - 1] & 0xC0) == 0x80) len--; /* cut on a character boundary */
    if (len > 0 && (unsigned char)text[len - 1] >= 0xC0) len--;
    hr_encode_params ep = hr_encode_default_params();
    CHECK(hr_tokenizer_encode(tok, text, len, &ep, &ids, &n) == HR_OK, "%s", hr_last_error());
    double f = ppl_of(SHARED("models/stories260K/stories260K.bin"), ids, n);
    double q = ppl_of(SHARED("models/stories260K/stories260K_q8.bin"), ids, n);
    printf("    %zu tokens: float ppl %.4f, int8 ppl %.4f (%.2f%%)\n", n, f, q, 100 * (q - f) / f);
    CHECK(isfinite(f) && isfinite(q), "ppl not finite");
    CHECK(fabs(q - f) <= f * INT8_PPL_TOLERANCE_PERCENT / 100.0, "int8 ppl %.4f vs float %.4f", q, f);
    CHECK(q != f, "int8 weights identical to float? (suspicious)");
    free(ids);
    free(text);
    hr_tokenizer_free(tok);
}

/* Every row of the architecture registry is complete and unambiguous: each
 * weight its traits (and config.json's attention_bias, where the family has
 * it) call for has exactly one Hugging Face tensor (directly or inside a
 * stacked QKV), and no GGUF name or model_type belongs to two rows. */
static void every_architecture_row_names_each_of_its_weights_once(void) {
    const char *seen_gguf[32], *seen_hf[32];
    int n_gguf = 0, n_hf = 0, rows = 0;
    for (int a = 0; hr_arch_info_of((hr_arch)a); a++, rows++) {
        const hr_arch_info *ai = hr_arch_info_of((hr_arch)a);
        CHECK(ai->arch == (hr_arch)a && strcmp(hr_arch_name((hr_arch)a), ai->name) == 0, "row %d id/name", a);
        CHECK(ai->gguf_names[0] && ai->hf_model_types[0] && ai->hf_class && ai->hf_prefix && ai->hf_layer, "%s: names",
              ai->name);
        hr_config c;
        memset(&c, 0, sizeof c);
        hr_config_set_arch(&c, (hr_arch)a);
        c.dim = 64, c.n_layers = 1, c.head_dim = 16, c.n_head[0] = 4, c.n_head_kv[0] = 2, c.n_ff[0] = 96;
        c.vocab_size = 100, c.seq_len = 32, c.tied_classifier = false;
        if (ai->hf_attention_bias) c.qkv_bias = c.out_bias = true; /* the optional biases are named too */
        int covered[HR_N_LAYER_SLOTS] = {0};
        for (const hr_hf_tensor *t = ai->hf_layer_tensors; t->name; t++) {
            if (!hr_slot_expected(&c, 0, t->slot)) continue; /* a shared table's name this family never uses */
            if (t->slot == HR_SLOT_QKV) covered[HR_SLOT_Q]++, covered[HR_SLOT_K]++, covered[HR_SLOT_V]++;
            else if (t->slot == HR_SLOT_QKV_B) covered[HR_SLOT_Q_B]++, covered[HR_SLOT_K_B]++, covered[HR_SLOT_V_B]++;
            else if (t->slot < HR_N_LAYER_SLOTS) covered[t->slot]++;
        }
        for (int s = 0; s < HR_N_LAYER_SLOTS; s++)
            CHECK(covered[s] == (hr_slot_expected(&c, 0, (hr_slot)s) ? 1 : 0), "%s: layer weight %s named %d times",
                  ai->name, hr_slot_gguf_name((hr_slot)s), covered[s]);
        int model_slots = 0, want = 0;
        for (const hr_hf_tensor *t = ai->hf_head; t->name; t++) model_slots += hr_slot_expected(&c, -1, t->slot);
        for (const hr_hf_tensor *t = ai->hf_tail; t->name; t++) model_slots += hr_slot_expected(&c, -1, t->slot);
        for (int s = HR_SLOT_TOK_EMBD; s < HR_SLOT_OUTPUT; s++) want += hr_slot_expected(&c, -1, (hr_slot)s);
        CHECK(model_slots == want, "%s: %d of %d model tensors named (lm_head aside)", ai->name, model_slots, want);
        for (int k = 0; k < 4 && ai->gguf_names[k]; k++) {
            for (int i = 0; i < n_gguf; i++)
                CHECK(strcmp(seen_gguf[i], ai->gguf_names[k]) != 0, "GGUF name '%s' twice", seen_gguf[i]);
            if (n_gguf < 32) seen_gguf[n_gguf++] = ai->gguf_names[k];
            CHECK(hr_arch_by_gguf_name(ai->gguf_names[k]) == ai, "GGUF name %s", ai->gguf_names[k]);
        }
        for (int k = 0; k < 4 && ai->hf_model_types[k]; k++) {
            for (int i = 0; i < n_hf; i++)
                CHECK(strcmp(seen_hf[i], ai->hf_model_types[k]) != 0, "model_type '%s' twice", seen_hf[i]);
            if (n_hf < 32) seen_hf[n_hf++] = ai->hf_model_types[k];
            CHECK(hr_arch_by_hf_model_type(ai->hf_model_types[k]) == ai, "model_type %s", ai->hf_model_types[k]);
        }
    }
    printf("    %d architecture rows, %d GGUF names, %d model types\n", rows, n_gguf, n_hf);
    CHECK(rows >= HR_ARCH_COUNT, "only %d rows for %d built-in architectures", rows, HR_ARCH_COUNT);
}

int main(void) {
    HR_T_REQUIRE_SHARED("models/stories260K/stories260K.bin", "models/stories260K/stories260K.gguf",
                        "models/stories260K/stories260K_q8.bin", "models/stories260K/tok512.bin",
                        "data/text/tinystories_val.txt");
    RUN(every_architecture_row_names_each_of_its_weights_once);
    RUN(llama2c_bin_and_llama_cpp_gguf_give_the_same_logits);
    RUN(int8_model_predicts_almost_like_the_float_model);
    RUN(int8_perplexity_on_tinystories_is_within_the_stated_tolerance);
    RUN(truncated_and_hostile_model_files_fail_with_a_message);
    TEST_MAIN_END();
}
