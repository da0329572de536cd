/* Choosing matrices for 8 bits (hr_quantize_run): a planted sensitive
 * matrix is found by both scores, the choice follows the stated rule
 * (checked by brute force from the reported scores), each score is what the
 * written single-matrix Q8_0 file gives, and bad input is refused before
 * any work. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "headroom/context.h"
#include "headroom/evaluate.h"
#include "headroom/gguf.h"
#include "headroom/model.h"
#include "headroom/quantize.h"
#include "headroom/save.h"
#include "headroom/tokenizer.h"
#include "io/io_internal.h"
#include "model/model_internal.h"

#define STORIES SHARED("models/stories260K/stories260K.bin")
#define TOK512 SHARED("models/stories260K/tok512.bin")
#define TEXT SHARED("data/text/tinystories_val.txt")
#define PLANTED "blk.2.ffn_gate.weight"

static char g_dir[256];
static char *g_text;
static size_t g_len;

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

/* stories260K with layer 2's ffn_norm[0] = 0, so the MLP's input 0 is
 * always 0 and W_gate's column 0 never counts; that column then gets 1000
 * in every row. The model is the same with any value there, but Q8_0 of
 * W_gate gives each row's first block the scale 1000/127 and rounds its
 * other 31 weights (|w| ~ 0.1) to 0: quantizing that one matrix hurts. */
static hr_model *planted_model(void) {
    hr_model *m = NULL;
    if (hr_model_load(STORIES, &m) != HR_OK) return NULL;
    const hr_config *c = hr_model_config(m);
    int dim = c->dim, ff = c->n_ff[2];
    float *norm = hr_model_alloc_owned(m, (size_t)dim);      // (dim)
    float *gate = hr_model_alloc_owned(m, (size_t)ff * dim); // (n_ff, dim)
    if (!norm || !gate) {
        hr_model_free(m);
        return NULL;
    }
    memcpy(norm, m->w.layers[2].ffn_norm, sizeof(float) * (size_t)dim);
    memcpy(gate, m->w.layers[2].w_gate, sizeof(float) * (size_t)ff * dim);
    norm[0] = 0.0f;
    for (int i = 0; i < ff; i++) gate[(size_t)i * dim] = 1000.0f;
    m->w.layers[2].ffn_norm = norm;
    m->w.layers[2].w_gate = gate;
    return m;
}

static hr_quantize_params params(hr_quant_by by, double percent) {
    hr_quantize_params p = hr_quantize_default_params();
    p.by = by;
    p.int8_percent = percent;
    p.text = g_text;
    p.text_len = g_len;
    p.max_tokens = 1024;
    p.fdtm_prompts = 8;
    p.n_threads = 1;
    return p;
}

static const hr_quant_component *find(const hr_quantize_result *r, const char *name) {
    const hr_quantize_summary *s = hr_quantize_result_summary(r);
    for (int i = 0; s && i < s->n_components; i++)
        if (strcmp(hr_quantize_component(r, i)->name, name) == 0) return hr_quantize_component(r, i);
    return NULL;
}

/* The rule of quantize.h, recomputed from the reported scores: rank the
 * eligible matrices (O(n^2) selection, no sort), take each while the total
 * stays within P % of the eligible parameters. Returns the mismatches. */
static int brute_force_mismatches(const hr_quantize_result *r, hr_quant_by by, double percent) {
    const hr_quantize_summary *s = hr_quantize_result_summary(r);
    int n = s->n_components, bad = 0;
    bool *used = calloc((size_t)n, 1);
    int64_t eligible = 0, taken = 0;
    for (int i = 0; i < n; i++)
        eligible += hr_quantize_component(r, i)->eligible ? hr_quantize_component(r, i)->params : 0;
    bad += eligible != s->params_eligible;
    for (int rank = 0; used && rank < s->n_eligible; rank++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            const hr_quant_component *c = hr_quantize_component(r, i),
                                     *b = best >= 0 ? hr_quantize_component(r, best) : NULL;
            if (!c->eligible || used[i]) continue;
            bool better = !b || (by == HR_QUANT_BY_FDTM && c->fdtm > b->fdtm) ||
                          ((by != HR_QUANT_BY_FDTM || c->fdtm == b->fdtm) && c->dppl < b->dppl);
            if (better) best = i;
        }
        used[best] = true;
        const hr_quant_component *c = hr_quantize_component(r, best);
        bool take = (double)(taken + c->params) <= percent / 100.0 * (double)eligible;
        if (take) taken += c->params;
        if (c->rank != rank || c->chosen != take) {
            fprintf(stderr, "    %s: rank %d chosen %d, brute force rank %d chosen %d\n", c->name, c->rank, c->chosen,
                    rank, take);
            bad++;
        }
    }
    bad += taken != s->params_int8;
    free(used);
    return bad;
}

static void both_scores_find_the_planted_matrix_and_the_choice_follows_the_rule(void) {
    hr_model *m = planted_model();
    hr_tokenizer *tok = NULL;
    CHECK(m && hr_tokenizer_load(TOK512, &tok) == HR_OK, "%s", hr_last_error());
    const hr_quant_by bys[2] = {HR_QUANT_BY_FDTM, HR_QUANT_BY_PPL};
    for (int k = 0; k < 2 && m && tok; k++) {
        hr_quantize_params p = params(bys[k], 80);
        hr_quantize_result *r = NULL;
        CHECK(hr_quantize_run(m, tok, &p, &r) == HR_OK, "%s", hr_last_error());
        if (!r) continue;
        const hr_quantize_summary *s = hr_quantize_result_summary(r);
        const hr_quant_component *pl = find(r, PLANTED), *down = find(r, "blk.2.ffn_down.weight");
        double worst_other_fdtm = 1e9, worst_other_dppl = -1e9;
        for (int i = 0; i < s->n_components; i++) {
            const hr_quant_component *c = hr_quantize_component(r, i);
            if (!c->eligible || c == pl) continue;
            if (c->fdtm < worst_other_fdtm) worst_other_fdtm = c->fdtm;
            if (c->dppl > worst_other_dppl) worst_other_dppl = c->dppl;
        }
        printf(
            "    by %s: planted fdtm %.2f dppl %+.4f; others fdtm >= %.2f, dppl <= %+.4f; int8 %.1f %% of eligible\n",
            hr_quant_by_name(bys[k]), pl ? pl->fdtm : NAN, pl ? pl->dppl : NAN, worst_other_fdtm, worst_other_dppl,
            100.0 * (double)s->params_int8 / (double)s->params_eligible);
        CHECK(pl && pl->eligible && pl->fdtm < worst_other_fdtm && pl->dppl > worst_other_dppl,
              "the planted matrix is the most sensitive by both scores");
        CHECK(pl && pl->rank == s->n_eligible - 1 && !pl->chosen, "the planted matrix is ranked last and kept");
        CHECK(down && !down->eligible && !down->chosen && isnan(down->fdtm), "ffn_down (rows of 172) is not eligible");
        CHECK(s->params_int8 <= 0.8 * (double)s->params_eligible && s->params_int8 > 0.7 * (double)s->params_eligible,
              "int8 share %lld of %lld", (long long)s->params_int8, (long long)s->params_eligible);
        CHECK(brute_force_mismatches(r, bys[k], 80) == 0, "the choice differs from the rule");
        hr_quantize_result_free(r);
    }
    hr_tokenizer_free(tok);
    hr_model_free(m);
}

/* A matrix's perplexity score is that of the model written with only it as
 * Q8_0 and read back (GGUF writer, loader's dequantization, same windows):
 * the in-memory quantize-dequantize view computes what the file holds. */
static void a_score_equals_the_written_single_matrix_model(void) {
    hr_model *m = NULL, *q = NULL;
    hr_tokenizer *tok = NULL;
    CHECK(hr_model_load(STORIES, &m) == HR_OK && hr_tokenizer_load(TOK512, &tok) == HR_OK, "%s", hr_last_error());
    hr_quantize_params p = params(HR_QUANT_BY_PPL, 50);
    hr_quantize_result *r = NULL;
    CHECK(m && tok && hr_quantize_run(m, tok, &p, &r) == HR_OK, "%s", hr_last_error());
    const char *name = "token_embd.weight"; /* tied: the classifier reads it too */
    const hr_quant_component *c = r ? find(r, name) : NULL;
    const char *path = tmp_path("one.gguf");
    CHECK(c && hr_gguf_save_mixed(m, NULL, path, HR_DTYPE_F32, &name, 1) == HR_OK && hr_model_load(path, &q) == HR_OK,
          "%s", hr_last_error());
    int32_t *ids = NULL;
    size_t n = 0;
    hr_context *a = NULL, *b = NULL;
    hr_context_params cp = hr_context_default_params();
    cp.n_ctx = 256;
    cp.n_threads = 1;
    hr_compare_result cr = {0};
    if (q && c && hr_calib_tokens(tok, g_text, g_len, 1024, &ids, &n) == HR_OK && hr_context_new(m, &cp, &a) == HR_OK &&
        hr_context_new(q, &cp, &b) == HR_OK && hr_compare_logits(a, b, ids, n, 256, 0, &cr) == HR_OK) {
        double ppl = exp(cr.nll_cand), d = fabs(ppl - c->ppl);
        printf("    %s: score ppl %.6f, written file %.6f (|diff| %.2g), base %.6f\n", name, c->ppl, ppl, d,
               exp(cr.nll_base));
        CHECK(d <= 1e-9 * ppl && c->ppl != exp(cr.nll_base), "score %g vs file %g", c->ppl, ppl);
    } else {
        CHECK(false, "%s", hr_last_error());
    }
    hr_context_free(a), hr_context_free(b);
    hr_free(ids);
    remove(path);
    hr_quantize_result_free(r);
    hr_model_free(q), hr_model_free(m);
    hr_tokenizer_free(tok);
}

/* The written model: the chosen matrices Q8_0, everything else f32 as the
 * input holds it; random choices depend on the seed only. */
static void the_output_holds_exactly_the_chosen_matrices_as_q8_0(void) {
    hr_model *m = NULL;
    CHECK(hr_model_load(STORIES, &m) == HR_OK, "%s", hr_last_error());
    hr_quantize_params p = hr_quantize_default_params();
    p.by = HR_QUANT_BY_RANDOM;
    p.int8_percent = 50;
    hr_quantize_result *r1 = NULL, *r2 = NULL, *r3 = NULL;
    CHECK(m && hr_quantize_run(m, NULL, &p, &r1) == HR_OK && hr_quantize_run(m, NULL, &p, &r2) == HR_OK, "%s",
          hr_last_error());
    p.seed = 5;
    CHECK(m && hr_quantize_run(m, NULL, &p, &r3) == HR_OK, "%s", hr_last_error());
    if (!r1 || !r2 || !r3) goto done;
    const hr_quantize_summary *s = hr_quantize_result_summary(r1);
    int same12 = 0, same13 = 0;
    for (int i = 0; i < s->n_components; i++) {
        same12 += hr_quantize_component(r1, i)->chosen == hr_quantize_component(r2, i)->chosen;
        same13 += hr_quantize_component(r1, i)->chosen == hr_quantize_component(r3, i)->chosen;
    }
    CHECK(same12 == s->n_components && same13 < s->n_components, "seed 0 twice: %d of %d alike; seed 5: %d", same12,
          s->n_components, same13);
    CHECK(!s->scored && isnan(hr_quantize_component(r1, 0)->fdtm), "no text: no scores");
    const char *path = tmp_path("random50.gguf");
    CHECK(hr_quantize_save_gguf(r1, NULL, path) == HR_OK, "%s", hr_last_error());
    hr_gguf *g = NULL;
    int bad = 0, n_q8 = 0;
    if (hr_gguf_open(path, &g) == HR_OK) {
        for (uint64_t i = 0; i < hr_gguf_n_tensors(g); i++) {
            const hr_gguf_tensor *t = hr_gguf_tensor_at(g, i);
            const hr_quant_component *c = find(r1, t->name);
            bool want_q8 = c && c->chosen;
            n_q8 += t->type == HR_GGML_Q8_0;
            if ((t->type == HR_GGML_Q8_0) != want_q8 || (!want_q8 && t->type != HR_GGML_F32)) bad++;
        }
    }
    hr_gguf_close(g);
    CHECK(bad == 0 && n_q8 == s->n_chosen && n_q8 > 0, "%d tensors of the wrong type, %d Q8_0 of %d chosen", bad, n_q8,
          s->n_chosen);
    char *json = NULL;
    CHECK(hr_quantize_result_json(r1, STORIES, NULL, path, &json) == HR_OK && strstr(json, "\"format_version\":\t1") &&
              strstr(json, "\"fdtm\":\tnull"),
          "%s", json ? json : hr_last_error());
    hr_free(json);
    remove(path);
done:
    hr_quantize_result_free(r1), hr_quantize_result_free(r2), hr_quantize_result_free(r3);
    hr_model_free(m);
}

static void bad_input_is_refused_before_any_work(void) {
    hr_model *m = NULL;
    hr_tokenizer *tok = NULL;
    CHECK(hr_model_load(STORIES, &m) == HR_OK && hr_tokenizer_load(TOK512, &tok) == HR_OK, "%s", hr_last_error());
    const double bad[] = {0, 100, -5, 150, NAN};
    for (int i = 0; i < 5 && m; i++) {
        hr_quantize_params p = params(HR_QUANT_BY_FDTM, bad[i]);
        hr_quantize_result *r = NULL;
        CHECK(hr_quantize_run(m, tok, &p, &r) == HR_ERR_RANGE && !r && strstr(hr_last_error(), "(0, 100)"), "%g %%: %s",
              bad[i], hr_last_error());
    }
    hr_quantize_params p = params(HR_QUANT_BY_FDTM, 80);
    p.text = NULL;
    hr_quantize_result *r = NULL;
    CHECK(m && hr_quantize_run(m, tok, &p, &r) == HR_ERR_INVALID_ARG && strstr(hr_last_error(), "needs a text"), "%s",
          hr_last_error());
    p = params(HR_QUANT_BY_PPL, 80);
    p.n_ctx = 100000;
    CHECK(m && hr_quantize_run(m, tok, &p, &r) == HR_ERR_RANGE, "%s", hr_last_error());
    p = params(HR_QUANT_BY_RANDOM, 0.5); /* below the smallest matrix (2048 of 204288) */
    p.text = NULL;
    CHECK(m && hr_quantize_run(m, tok, &p, &r) == HR_ERR_RANGE && strstr(hr_last_error(), "no whole matrix"), "%s",
          hr_last_error());
    hr_quant_by by;
    CHECK(hr_quant_by_from_name("size", &by) == HR_ERR_INVALID_ARG && hr_quant_by_from_name("ppl", &by) == HR_OK &&
              by == HR_QUANT_BY_PPL,
          "ranking names");
    hr_quantize_result_free(NULL);
    hr_tokenizer_free(tok);
    hr_model_free(m);
}

int main(void) {
    HR_T_REQUIRE_SHARED("models/stories260K/stories260K.bin", "models/stories260K/tok512.bin",
                        "data/text/tinystories_val.txt");
    if (hr_t_scratch_dir(g_dir, sizeof g_dir, "test_quantize")) return 1;
    FILE *f = fopen(TEXT, "rb");
    g_text = malloc(40001);
    g_len = f && g_text ? fread(g_text, 1, 40000, f) : 0;
    if (f) fclose(f);
    RUN(both_scores_find_the_planted_matrix_and_the_choice_follows_the_rule);
    RUN(a_score_equals_the_written_single_matrix_model);
    RUN(the_output_holds_exactly_the_chosen_matrices_as_q8_0);
    RUN(bad_input_is_refused_before_any_work);
    free(g_text);
    hr_t_rm_rf(g_dir);
    TEST_MAIN_END();
}
