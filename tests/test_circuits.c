/* Circuits: a planted copy head is found by patching and its direct path
 * by path patching; patching exact identities (a layer's whole residual
 * = the clean run from that layer, all heads of a layer = its attention
 * output, sweeps that reuse the cache = single patches); DLA parts sum to
 * the logit difference; pairs, masks and the recall task from text; every
 * bad input refused before work. (Values against the PyTorch reference:
 * tests/test_circuits_reference.sh.) */
#include "check.h"
#include "headroom/circuits.h"
#include "headroom/context.h"
#include "headroom/evaluate.h"
#include "headroom/model.h"
#include "headroom/scores.h"
#include "headroom/study.h"
#include "headroom/tokenizer.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MODEL SHARED("models/stories260K/stories260K.bin")
#define TOKENIZER SHARED("models/stories260K/tok512.bin")
#define TEXT SHARED("data/text/tinystories_val.txt")

/* ---- a 2-layer model with a planted copy head ----
 * Residual (dim 32): [0] = 1 (bias), [1+v] = one-hot token v, [17] = 1 for
 * a name (tokens 2..5), [18+n] = name n copied (written by head 0.0).
 *  head 0.0: the query token Q (14) attends to the name: query = Q's one-hot,
 *            key = the name flag, in the slowest RoPE pair (angle 3e-4 per
 *            position: no rotation to speak of); V/O copy the name's one-hot
 *            into [18+n]. The classifier reads [18+n] for name n.
 *  head 0.1, layer 1 and both MLPs: small pseudo-random weights (noise the
 *  copy must survive). Names sit at position 3 of the prompts. */
enum { C_DIM = 32, C_HID = 8, C_LAYERS = 2, C_HEADS = 2, C_VOCAB = 16, C_SEQ = 64, C_HD = 16, C_Q = 14 };

static float noise(unsigned *s) { return (float)((*s = *s * 1103515245u + 12345u) >> 16 & 0x7fff) / 32768.0f - 0.5f; }

static int write_model(const char *path, float memory);
static int write_copy_model(const char *path) { return write_model(path, 0); }

/* memory != 0 adds a memory path: the classifier reads the query token's
 * one-hot (the embedding) into the logit of name 2, so without the copy
 * head the model answers name 2 whatever the context states. */
static int write_model(const char *path, float memory) {
    size_t D = C_DIM, L = C_LAYERS, V = C_VOCAB, QD = C_HEADS * C_HD;
    size_t n_emb = V * D, n_q = L * QD * D, n_vec = L * D, n_ff = L * C_HID * D;
    float *emb = calloc(n_emb, 4), *rms = calloc(n_vec, 4), *wq = calloc(n_q, 4), *wk = calloc(n_q, 4);
    float *wv = calloc(n_q, 4), *wo = calloc(n_q, 4), *w1 = calloc(n_ff, 4), *w2 = calloc(n_ff, 4),
          *w3 = calloc(n_ff, 4);
    float *fin = calloc(D, 4), *cls = calloc(n_emb, 4);
    float *fr = calloc((size_t)C_SEQ * C_HD / 2, 4), *fi = calloc((size_t)C_SEQ * C_HD / 2, 4);
    unsigned s = 99;
    for (size_t v = 0; v < V; v++) {
        emb[v * D] = 1, emb[v * D + 1 + v] = 1;
        if (v >= 2 && v <= 5) emb[v * D + 17] = 1;
    }
    for (size_t i = 0; i < n_vec; i++) rms[i] = 1;
    for (size_t i = 0; i < D; i++) fin[i] = 1;
    /* head 0.0: rows 14 of q and k are the slowest pair's first component */
    wq[14 * D + 1 + C_Q] = 2;
    wk[14 * D + 17] = 2;
    for (int n = 0; n < 4; n++) {
        wv[(size_t)n * D + 1 + 2 + n] = 0.3f;  /* value j = name n's one-hot */
        wo[(18 + (size_t)n) * QD + n] = 1;     /* into [18+n] */
        cls[(2 + (size_t)n) * D + 18 + n] = 4; /* logit of name n */
    }
    for (size_t l = 0; l < L; l++)
        for (size_t i = 0; i < QD * D; i++) {
            size_t row = i / D;
            if (l == 0 && row < C_HD) continue; /* head 0.0 stays exact */
            wq[l * QD * D + i] += 0.1f * noise(&s), wk[l * QD * D + i] += 0.1f * noise(&s);
            wv[l * QD * D + i] += 0.1f * noise(&s);
        }
    for (size_t l = 0; l < L; l++)
        for (size_t r = 0; r < D; r++)
            for (size_t c = (l == 0 ? C_HD : 0); c < QD; c++) wo[l * D * QD + r * QD + c] += 0.1f * noise(&s);
    for (size_t i = 0; i < n_ff; i++) w1[i] = 0.1f * noise(&s), w2[i] = 0.1f * noise(&s), w3[i] = 0.1f * noise(&s);
    for (size_t v = 0; v < V; v++)
        if (v < 2 || v > 5)
            for (size_t i = 0; i < D; i++) cls[v * D + i] = 0.1f * noise(&s);
    cls[2 * D + 1 + C_Q] = memory;
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int32_t hdr[7] = {C_DIM, C_HID, C_LAYERS, C_HEADS, C_HEADS, -C_VOCAB, C_SEQ};
    fwrite(hdr, 4, 7, f);
    fwrite(emb, 4, n_emb, f);
    fwrite(rms, 4, n_vec, f);
    fwrite(wq, 4, n_q, f), fwrite(wk, 4, n_q, f), fwrite(wv, 4, n_q, f), fwrite(wo, 4, n_q, f);
    fwrite(rms, 4, n_vec, f);
    fwrite(w1, 4, n_ff, f), fwrite(w2, 4, n_ff, f), fwrite(w3, 4, n_ff, f);
    fwrite(fin, 4, D, f);
    fwrite(fr, 4, (size_t)C_SEQ * C_HD / 2, f), fwrite(fi, 4, (size_t)C_SEQ * C_HD / 2, f);
    fwrite(cls, 4, n_emb, f);
    int rc = fclose(f);
    free(emb), free(rms), free(wq), free(wk), free(wv), free(wo), free(w1), free(w2), free(w3), free(fin), free(cls);
    free(fr), free(fi);
    return rc;
}

static hr_model *copy_model, *stories;
static hr_tokenizer *tok;

/* Pairs of the copy model: the name at position 3 is A (clean) or B (corrupt). */
static hr_pairs *copy_pairs(void) {
    hr_pairs *ps = NULL;
    hr_pairs_new(&ps);
    int names[3][2] = {{2, 3}, {4, 5}, {3, 2}};
    for (int i = 0; i < 3; i++) {
        int32_t clean[9] = {1, 7, 8, names[i][0], 9, 10 + i, 11, 12, C_Q}, corrupt[9];
        memcpy(corrupt, clean, sizeof clean);
        corrupt[3] = names[i][1];
        hr_pairs_add(ps, clean, corrupt, 9, names[i][0], names[i][1]);
    }
    return ps;
}

static void a_planted_copy_head_is_found_by_patching_and_its_path_goes_into_the_logits(void) {
    hr_pairs *ps = copy_pairs();
    hr_patch_params p = hr_patch_default_params();
    p.path = "* -> logits";
    hr_patch_result *r = NULL;
    CHECK(hr_patch_run(copy_model, ps, &p, &r) == HR_OK, "%s", hr_last_error());
    const hr_patch_summary *s = hr_patch_result_summary(r);
    if (!s) return;
    printf("    clean %.3f, corrupt %.3f; head 0.0: patched %.5f, path to logits %.5f\n", s->clean, s->corrupt,
           s->heads[0], s->path_heads[0]);
    CHECK(s->clean > 1 && s->corrupt < -1, "the copy model does not tell the names apart (%g, %g)", s->clean,
          s->corrupt);
    CHECK(s->heads[0] >= 0.99, "patching the copy head restores only %.4f", s->heads[0]);
    CHECK(s->path_heads[0] >= 0.99, "its path to the logits carries only %.4f", s->path_heads[0]);
    for (int i = 1; i < C_LAYERS * C_HEADS; i++) {
        CHECK(fabs(s->heads[i]) < 0.05, "head %d.%d patched: %.4f", i / C_HEADS, i % C_HEADS, s->heads[i]);
        CHECK(fabs(s->path_heads[i]) < 0.05, "head %d.%d path: %.4f", i / C_HEADS, i % C_HEADS, s->path_heads[i]);
    }
    CHECK(s->has_dla && s->dla_heads[0] > 0.9 * s->dla_total, "DLA of the copy head %.4f of %.4f", s->dla_heads[0],
          s->dla_total);
    hr_patch_result_free(r);
    /* through the next layer's heads and MLP the copy head does (almost) nothing */
    p.path = "0.0 -> 1.0,1.1,1.mlp";
    p.what = 0;
    CHECK(hr_patch_run(copy_model, ps, &p, &r) == HR_OK, "%s", hr_last_error());
    s = hr_patch_result_summary(r);
    if (s) printf("    head 0.0 through layer 1's heads and MLP: %.5f\n", s->path_value);
    CHECK(s && fabs(s->path_value) < 0.05, "indirect path %.4f", s ? s->path_value : NAN);
    hr_patch_result_free(r);
    hr_pairs_free(ps);
}

/* PH3 on the copy model with a memory path (name 2 from the embedding):
 * conflict pairs state name 3, 4 or 5 at position 3 (clean) or name 2, the
 * memory answer (corrupt). The copy head 0.0 is the top context head, and
 * gating it flips every clean answer from the context's name to the memory
 * answer; the score file reads back through scores.h. */
static char scratch[64];

static void a_planted_copy_head_is_a_context_head_and_gating_it_answers_from_memory(void) {
    char path[160];
    snprintf(path, sizeof path, "%s/conflict.bin", scratch);
    hr_model *m = NULL;
    CHECK(write_model(path, 1.5f) == 0 && hr_model_load(path, &m) == HR_OK, "conflict model: %s", hr_last_error());
    if (!m) return;
    hr_pairs *ps = NULL;
    hr_pairs_new(&ps);
    for (int i = 0; i < 3; i++) {
        int32_t clean[9] = {1, 7, 8, 3 + i, 9, 10 + i, 11, 12, C_Q}, corrupt[9];
        memcpy(corrupt, clean, sizeof clean);
        corrupt[3] = 2;
        hr_pairs_add(ps, clean, corrupt, 9, 3 + i, 2);
    }
    hr_patch_params p = hr_patch_default_params();
    p.what = 0;
    p.path = "* -> logits";
    hr_patch_result *r = NULL;
    char *json = NULL, *top = NULL, *mem = NULL;
    CHECK(hr_patch_run(m, ps, &p, &r) == HR_OK, "%s", hr_last_error());
    const hr_patch_summary *s = hr_patch_result_summary(r);
    CHECK(s && s->clean_top_answer == 3, "the clean prompts answer the context %d of 3", s ? s->clean_top_answer : -1);
    CHECK(hr_patch_ph3_json(r, m, NULL, &json) == HR_OK, "%s", hr_last_error());
    hr_scores *sc = NULL;
    hr_scores_new(hr_model_config(m), &sc);
    CHECK(json && hr_scores_parse_heads(sc, json, strlen(json), "ph3.json") == HR_OK, "%s", hr_last_error());
    CHECK(hr_scores_top_heads(sc, "ph3-context", 1, &top) == HR_OK && !strcmp(top, "0.0"), "top context head %s",
          top ? top : "(none)");
    CHECK(hr_scores_top_heads(sc, "ph3-memory", 1, &mem) == HR_OK && strcmp(mem, "0.0") != 0, "top memory head %s",
          mem ? mem : "(none)");
    int i = hr_scores_method_index(sc, "ph3-context");
    double v00 = hr_scores_head(sc, i, 0, 0), expect = s ? s->path_heads[0] * (s->clean - s->corrupt) : NAN;
    printf("    clean %.3f, corrupt %.3f; ph3-context of 0.0 %.4f (path %.4f); top memory head %s\n",
           s ? s->clean : NAN, s ? s->corrupt : NAN, v00, s ? s->path_heads[0] : NAN, mem ? mem : "?");
    CHECK(hr_scores_method_kind(sc, i) == HR_SCORE_STEERING, "ph3 scores are steering scores");
    CHECK(fabs(v00 - expect) <= 1e-6 * (1 + fabs(expect)), "ph3-context %.9g != path x gap %.9g", v00, expect);
    for (int l = 0; l < C_LAYERS; l++)
        for (int h = 0; h < C_HEADS; h++)
            CHECK(fabs(hr_scores_head(sc, hr_scores_method_index(sc, "ph3-memory"), l, h) +
                       hr_scores_head(sc, i, l, h)) == 0,
                  "ph3-memory != -ph3-context at %d.%d", l, h);
    hr_patch_result_free(r), r = NULL;
    /* gating the top context head: every clean prompt answers from memory */
    hr_head_mask_params mp = hr_head_mask_default_params();
    mp.mask_heads = top;
    hr_head_mask *mask = NULL;
    CHECK(hr_head_mask_new(hr_model_config(m), &mp, &mask) == HR_OK, "%s", hr_last_error());
    p.path = NULL, p.heads = mask;
    CHECK(hr_patch_run(m, ps, &p, &r) == HR_OK, "%s", hr_last_error());
    s = hr_patch_result_summary(r);
    if (s)
        printf("    gated %s: clean answers memory %d of 3, context %d\n", top, s->clean_top_wrong,
               s->clean_top_answer);
    CHECK(s && s->clean_top_wrong == 3 && s->clean_top_answer == 0,
          "gating the context head does not flip the answers");
    /* a result without the path into the logits has no PH3 scores */
    hr_free(json), json = NULL;
    CHECK(hr_patch_ph3_json(r, m, NULL, &json) == HR_ERR_INVALID_ARG && !json, "ph3 scores without a path");
    hr_patch_result_free(r);
    hr_head_mask_free(mask);
    hr_scores_free(sc);
    hr_free(top), hr_free(mem);
    hr_pairs_free(ps);
    hr_model_free(m);
}

/* Conflict pairs built from stories260K's memory on the text: answer (the
 * context's word) and wrong (the model's top-1 on the prompt alone, p >=
 * 0.5) differ; the memory prompt's top-1 is the wrong answer (brute force:
 * a fresh forward pass on the prompt's tail after ". "); a text without a
 * usable sentence is HR_ERR_RANGE. */
static void conflict_pairs_state_another_word_than_the_models_memory(void) {
    size_t len = 0;
    char *text = NULL;
    FILE *f = fopen(TEXT, "rb");
    if (f) {
        text = malloc(200001);
        len = fread(text, 1, 200000, f);
        fclose(f);
    }
    hr_pairs *ps = NULL;
    CHECK(text && hr_pairs_conflict(stories, tok, text, len, 20, 0.5f, 7, &ps) == HR_OK, "%s", hr_last_error());
    int n = hr_pairs_count(ps), agree = 0;
    CHECK(n == 20, "%d conflict pairs of 20", n);
    hr_context *ctx = NULL;
    hr_context_new(stories, NULL, &ctx);
    float *z = malloc(sizeof(float) * 512);
    for (int i = 0; ctx && z && i < n; i++) {
        hr_pair pr;
        hr_pairs_get(ps, i, &pr);
        CHECK(pr.answer != pr.wrong, "pair %d: answer = wrong", i);
        /* the prompt's second half (after BOS) asks again: rerun it alone */
        char *dec = NULL;
        size_t dl = 0;
        hr_tokenizer_decode(tok, pr.clean, (size_t)pr.n_tokens, true, &dec, &dl);
        const char *q = dec ? strstr(dec, ". ") : NULL;
        int32_t *ids = NULL;
        size_t ni = 0;
        hr_encode_params ep = hr_encode_default_params();
        ep.add_bos = true;
        if (q && hr_tokenizer_encode(tok, q + 2, strlen(q + 2), &ep, &ids, &ni) == HR_OK) {
            hr_context_truncate(ctx, 0);
            hr_forward(ctx, ids, (int)ni, z, false);
            int32_t top = 0;
            for (int v = 1; v < 512; v++)
                if (z[v] > z[top]) top = v;
            agree += top == pr.wrong;
        }
        hr_free(ids), hr_free(dec);
    }
    printf("    %d pairs; the memory prompt's top-1 is the wrong (memory) answer in %d\n", n, agree);
    CHECK(agree >= n - 2, "memory answers agree with a fresh run in only %d of %d", agree, n);
    free(z);
    hr_context_free(ctx);
    hr_pairs_free(ps), ps = NULL;
    const char *none = "ok. no. yes.\n\n";
    CHECK(hr_pairs_conflict(stories, tok, none, strlen(none), 5, 0.5f, 0, &ps) == HR_ERR_RANGE && !ps,
          "a text without conflict pairs");
    CHECK(hr_pairs_conflict(stories, tok, text, len, 5, 0, 0, &ps) == HR_ERR_INVALID_ARG, "min_prob 0 accepted");
    free(text);
}

/* Random-token pairs on stories260K (two lengths), answer / wrong = the
 * clean / corrupt top tokens. */
static hr_pairs *random_pairs(int n_pairs) {
    hr_pairs *ps = NULL;
    hr_pairs_new(&ps);
    hr_context *ctx = NULL;
    hr_context_new(stories, NULL, &ctx);
    int V = hr_config_vocab_size(hr_model_config(stories));
    float *z = malloc(sizeof(float) * V);
    unsigned s = 5;
    for (int i = 0; i < n_pairs; i++) {
        int n = i % 2 ? 12 : 16;
        int32_t clean[16], corrupt[16];
        clean[0] = 1;
        for (int t = 1; t < n; t++) clean[t] = 3 + (int32_t)((s = s * 1103515245u + 12345u) >> 16) % (V - 3);
        memcpy(corrupt, clean, sizeof clean);
        corrupt[n / 2] = 3 + (corrupt[n / 2] + 17) % (V - 3);
        corrupt[n - 3] = 3 + (corrupt[n - 3] + 91) % (V - 3);
        hr_context_truncate(ctx, 0);
        hr_forward(ctx, clean, n, z, false);
        int32_t a = 0;
        for (int v = 1; v < V; v++) a = z[v] > z[a] ? v : a;
        hr_context_truncate(ctx, 0);
        hr_forward(ctx, corrupt, n, z, false);
        int32_t w = a ? 0 : 1;
        for (int v = 0; v < V; v++) w = v != a && z[v] > z[w] ? v : w;
        hr_pairs_add(ps, clean, corrupt, n, a, w);
    }
    free(z);
    hr_context_free(ctx);
    return ps;
}

static void patching_a_layers_whole_residual_equals_the_clean_run_from_that_layer(void) {
    hr_pairs *ps = random_pairs(1);
    int L = hr_config_n_layers(hr_model_config(stories)), V = hr_config_vocab_size(hr_model_config(stories));
    float *clean = malloc(sizeof(float) * V), *patched = malloc(sizeof(float) * V);
    hr_patch_params p = hr_patch_default_params();
    p.direction = HR_PATCH_NOISE; /* the base is the clean run: n = 0 gives its logits */
    CHECK(hr_patch_components(stories, ps, 0, NULL, 0, &p, clean, NULL) == HR_OK, "%s", hr_last_error());
    p.direction = HR_PATCH_DENOISE;
    for (int l = 0; l < L; l++) {
        hr_component c = {HR_COMP_RESID, l, 0, -1};
        double v = 0;
        CHECK(hr_patch_components(stories, ps, 0, &c, 1, &p, patched, &v) == HR_OK, "%s", hr_last_error());
        char label[64];
        snprintf(label, sizeof label, "layer %d residual patched vs clean", l);
        CHECK(hr_t_maxdiff(label, clean, patched, (size_t)V) == 0 && v == 1.0, "layer %d: value %.17g", l, v);
    }
    free(clean), free(patched);
    hr_pairs_free(ps);
}

static void patching_every_head_of_a_layer_equals_patching_its_attention_output(void) {
    hr_pairs *ps = random_pairs(2);
    const hr_config *c = hr_model_config(stories);
    int V = hr_config_vocab_size(c);
    float *a = malloc(sizeof(float) * V), *b = malloc(sizeof(float) * V), *base = malloc(sizeof(float) * V);
    hr_patch_params p = hr_patch_default_params();
    hr_patch_components(stories, ps, 1, NULL, 0, &p, base, NULL);
    for (int l = 0; l < hr_config_n_layers(c); l++) {
        hr_component heads[64], attn = {HR_COMP_ATTN, l, 0, -1};
        int nh = hr_config_n_head(c, l);
        for (int h = 0; h < nh; h++) heads[h] = (hr_component){HR_COMP_HEAD, l, h, -1};
        CHECK(hr_patch_components(stories, ps, 1, heads, nh, &p, a, NULL) == HR_OK, "%s", hr_last_error());
        CHECK(hr_patch_components(stories, ps, 1, &attn, 1, &p, b, NULL) == HR_OK, "%s", hr_last_error());
        char label[64];
        snprintf(label, sizeof label, "layer %d: every head vs attention output", l);
        CHECK(hr_t_maxdiff(label, a, b, (size_t)V) == 0, "differ");
        CHECK(hr_t_maxdiff("  ... vs the corrupt run", a, base, (size_t)V) > 1e-3, "the patch changed nothing");
    }
    free(a), free(b), free(base);
    hr_pairs_free(ps);
}

/* The sweeps rerun only layers >= l and, per position, rows >= t on the
 * cached keys/values; each cell must equal the same patch done alone
 * (hr_patch_components reruns every position), pair by pair: bit for bit
 * per position; the head sweep runs the heads of a layer side by side
 * (hr_forward_from_at, masks), whose softmax and value sums add the same
 * terms in another order, so its cells agree to float rounding. */
static void sweeps_that_reuse_the_cache_equal_single_patches(void) {
    hr_pairs *all = random_pairs(2);
    const hr_config *c = hr_model_config(stories);
    int L = hr_config_n_layers(c), H = hr_config_max_heads(c);
    double worst = 0, worst_heads = 0;
    for (int pi = 0; pi < 2; pi++) {
        hr_pair pr;
        hr_pairs_get(all, pi, &pr);
        hr_pairs *one = NULL;
        hr_pairs_new(&one);
        hr_pairs_add(one, pr.clean, pr.corrupt, pr.n_tokens, pr.answer, pr.wrong);
        hr_patch_params p = hr_patch_default_params();
        p.what = HR_PATCH_HEADS | HR_PATCH_ATTN | HR_PATCH_MLP | HR_PATCH_RESID | HR_PATCH_HEAD_POS;
        p.dla = p.lens = false;
        p.direction = pi ? HR_PATCH_NOISE : HR_PATCH_DENOISE;
        hr_patch_result *r = NULL;
        CHECK(hr_patch_run(stories, one, &p, &r) == HR_OK, "%s", hr_last_error());
        const hr_patch_summary *s = hr_patch_result_summary(r);
        int T = pr.n_tokens;
        for (int l = 0; s && l < L; l++) {
            for (int t = 0; t < T; t += 3) { /* every third position keeps the test short */
                const hr_comp_kind kinds[3] = {HR_COMP_ATTN, HR_COMP_MLP, HR_COMP_RESID};
                const double *m[3] = {s->attn, s->mlp, s->resid};
                for (int k = 0; k < 3; k++) {
                    hr_component cp = {kinds[k], l, 0, t};
                    double v;
                    hr_patch_components(stories, one, 0, &cp, 1, &p, NULL, &v);
                    double d = fabs(v - m[k][(size_t)l * s->n_positions + t]);
                    worst = d > worst ? d : worst;
                }
                hr_component cp = {HR_COMP_HEAD, l, (l + t) % H, t};
                double v;
                hr_patch_components(stories, one, 0, &cp, 1, &p, NULL, &v);
                double d = fabs(v - s->head_pos[((size_t)l * H + cp.head) * s->n_positions + t]);
                worst = d > worst ? d : worst;
            }
            for (int h = 0; h < H; h++) {
                hr_component cp = {HR_COMP_HEAD, l, h, -1};
                double v;
                hr_patch_components(stories, one, 0, &cp, 1, &p, NULL, &v);
                double d = fabs(v - s->heads[(size_t)l * H + h]);
                worst_heads = d > worst_heads ? d : worst_heads;
            }
        }
        hr_patch_result_free(r);
        hr_pairs_free(one);
    }
    printf("    sweep cells vs single patches: per position max |diff| %.3g, heads side by side %.3g\n", worst,
           worst_heads);
    CHECK(worst == 0, "a per-position sweep cell differs from its single patch by %g", worst);
    CHECK(worst_heads <= 1e-5, "a head sweep cell differs from its single patch by %g", worst_heads);
    hr_pairs_free(all);
}

static void dla_parts_sum_to_the_logit_difference_and_the_lens_ends_at_the_output(void) {
    hr_pairs *ps = random_pairs(4);
    hr_patch_params p = hr_patch_default_params();
    p.what = 0;
    hr_patch_result *r = NULL;
    CHECK(hr_patch_run(stories, ps, &p, &r) == HR_OK, "%s", hr_last_error());
    const hr_patch_summary *s = hr_patch_result_summary(r);
    if (!s) return;
    printf("    logit diff %.6f, sum of parts %.6f; lens after the last block %.6f\n", s->dla_total, s->dla_sum,
           s->lens_logit_diff[s->n_layers - 1]);
    CHECK(fabs(s->dla_total - s->dla_sum) <= 1e-4, "parts sum to %.6f, logit diff %.6f", s->dla_sum, s->dla_total);
    CHECK(fabs(s->dla_total - s->clean) <= 1e-9, "DLA total %.9f vs the clean metric %.9f", s->dla_total, s->clean);
    CHECK(fabs(s->lens_logit_diff[s->n_layers - 1] - s->clean) <= 1e-5,
          "the lens after the last block is not the output");
    CHECK(s->lens_rank[s->n_layers - 1] == 1.0, "the answer is the clean top token, rank %.2f",
          s->lens_rank[s->n_layers - 1]);
    hr_patch_result_free(r);
    hr_pairs_free(ps);
}

static int count_calls(int64_t done, int64_t total, void *ud) {
    int64_t *st = ud; /* {calls, last done, total, non-monotone} */
    st[0]++;
    st[3] += done <= st[1];
    st[1] = done, st[2] = total;
    return st[0] == st[4] ? 1 : 0;
}

static void progress_counts_every_forward_pass_and_can_abort(void) {
    hr_pairs *ps = copy_pairs();
    hr_patch_params p = hr_patch_default_params();
    p.what = HR_PATCH_HEADS | HR_PATCH_RESID;
    p.path = "* -> 1.0q";
    int64_t st[5] = {0, 0, 0, 0, -1};
    p.progress = count_calls;
    p.progress_user_data = st;
    hr_patch_result *r = NULL;
    CHECK(hr_patch_run(copy_model, ps, &p, &r) == HR_OK, "%s", hr_last_error());
    const hr_patch_summary *s = hr_patch_result_summary(r);
    CHECK(s && st[1] == st[2] && st[1] == s->forward_passes && st[3] == 0,
          "done %lld of %lld, %lld passes, %lld repeats", (long long)st[1], (long long)st[2],
          s ? (long long)s->forward_passes : -1LL, (long long)st[3]);
    hr_patch_result_free(r);
    int64_t ab[5] = {0, 0, 0, 0, 7};
    p.progress_user_data = ab;
    CHECK(hr_patch_run(copy_model, ps, &p, &r) == HR_ERR_ABORTED && r == NULL, "abort not honoured");
    hr_pairs_free(ps);
}

/* ---- bad input ---- */

static void expect_pairs_error(const char *jsonl, const char *needle) {
    hr_pairs *ps = NULL;
    hr_pairs_params pp = hr_pairs_default_params();
    pp.answers = HR_ANSWER_SINGLE_TOKEN;
    hr_status st = hr_pairs_parse(jsonl, strlen(jsonl), tok, &pp, &ps);
    CHECK(st != HR_OK && ps == NULL && strstr(hr_last_error(), needle), "'%s': status %d, message '%s'", needle, st,
          hr_last_error());
}

static void bad_pairs_are_refused_with_the_line_named(void) {
    expect_pairs_error("{\"clean\": \"Tom went home\", \"corrupt\": \"Tom went to the big house\", \"answer\": \" x\", "
                       "\"wrong\": \" y\"}\n",
                       "line 1: clean and corrupt prompts have different lengths");
    expect_pairs_error(
        "\n{\"clean_ids\": [1, 5], \"corrupt_ids\": [1, 6], \"answer_id\": 3, \"wrong_id\": 4}\n"
        "{\"clean\": \"The cat sat\", \"corrupt\": \"The dog sat\", \"answer\": \" on the mat\", \"wrong\": \" x\"}",
        "line 3: \"answer\" (\" on the mat\") is");
    expect_pairs_error("{\"clean_ids\": [1, 5], \"corrupt_ids\": [1, 6], \"answer_id\": 3, \"wrong_id\": 3}",
                       "line 1: answer and wrong answer are scored by the same token");
    expect_pairs_error("{\"clean_ids\": [1, 5], \"corrupt_ids\": [1, 6], \"answer_id\": 3}", "line 1: give \"wrong\"");
    expect_pairs_error("{\"clean_ids\": [1, \"a\"], \"corrupt_ids\": [1, 6], \"answer_id\": 3, \"wrong_id\": 4}",
                       "line 1: \"clean_ids\"[1] is not a token id");
    expect_pairs_error("{\"clean_ids\": [1, 5], ", "line 1: not valid JSON");
    expect_pairs_error("\n\n", "holds no pair");
    /* the first-token rule (default) accepts the multi-token answer and scores its first token */
    const char *multi =
        "{\"clean\": \"The cat sat\", \"corrupt\": \"The dog sat\", \"answer\": \" on the mat\", \"wrong\": \" x\"}";
    hr_pairs *ps = NULL;
    CHECK(hr_pairs_parse(multi, strlen(multi), tok, NULL, &ps) == HR_OK, "%s", hr_last_error());
    hr_pair pr;
    if (ps && hr_pairs_get(ps, 0, &pr) == HR_OK) CHECK(pr.answer_tokens > 1, "answer has %d tokens", pr.answer_tokens);
    hr_pairs_free(ps);
    /* text without a tokenizer */
    CHECK(hr_pairs_parse(multi, strlen(multi), NULL, NULL, &ps) == HR_ERR_FORMAT &&
              strstr(hr_last_error(), "no tokenizer"),
          "%s", hr_last_error());
}

static void bad_specifications_and_pairs_are_refused_before_any_work(void) {
    const hr_config *c = hr_model_config(stories);
    struct {
        const char *spec, *needle;
    } paths[] = {{"* -> 9.1q", "unknown receiver '9.1q' (the model has 5 layers)"},
                 {"* -> 2.8q", "layer 2 has 8 heads"},
                 {"* -> 2.1x", "unknown receiver '2.1x'"},
                 {"* -> head", "unknown receiver 'head'"},
                 {"3.1 -> 2.0q", "sender 3.1 has no path"},
                 {"* -> logits, 2.0q", "'logits' cannot be combined"},
                 {"2.9 -> logits", "no head 2.9"},
                 {"* logits", "has no '->'"},
                 {" -> logits", "both sides"}};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        CHECK(hr_patch_check_path(c, paths[i].spec) == HR_ERR_INVALID_ARG && strstr(hr_last_error(), paths[i].needle),
              "'%s': %s", paths[i].spec, hr_last_error());
    CHECK(hr_patch_check_knockout(c, "*: x -> 1") == HR_ERR_INVALID_ARG &&
              strstr(hr_last_error(), "expected positions"),
          "%s", hr_last_error());
    CHECK(hr_patch_check_knockout(c, "7.0: 1 -> 1") == HR_ERR_INVALID_ARG, "knockout head outside the model accepted");
    unsigned what;
    CHECK(hr_patch_parse_what("heads,bogus", &what) == HR_ERR_INVALID_ARG && strstr(hr_last_error(), "'bogus'"), "%s",
          hr_last_error());
    /* pairs the model cannot run */
    hr_pairs *ps = NULL;
    hr_pairs_new(&ps);
    int32_t big[600];
    for (int i = 0; i < 600; i++) big[i] = 1 + i % 100;
    hr_pairs_add(ps, big, big, 600, 3, 4);
    int64_t calls[5] = {0, 0, 0, 0, -1};
    hr_patch_params p = hr_patch_default_params();
    p.progress = count_calls;
    p.progress_user_data = calls;
    hr_patch_result *r = NULL;
    CHECK(hr_patch_run(stories, ps, &p, &r) == HR_ERR_RANGE && strstr(hr_last_error(), "exceed the model's context"),
          "%s", hr_last_error());
    hr_pairs_free(ps);
    hr_pairs_new(&ps);
    int32_t small[3] = {1, 2, 9999};
    hr_pairs_add(ps, small, small, 3, 3, 4);
    CHECK(hr_patch_run(stories, ps, &p, &r) == HR_ERR_INVALID_ARG && strstr(hr_last_error(), "outside the vocabulary"),
          "%s", hr_last_error());
    small[2] = 5;
    hr_pairs_free(ps);
    hr_pairs_new(&ps);
    hr_pairs_add(ps, small, small, 3, 3, 4);
    p.path = "* -> 1.9k";
    CHECK(hr_patch_run(stories, ps, &p, &r) == HR_ERR_INVALID_ARG, "bad path accepted");
    CHECK(calls[0] == 0, "%lld forward passes ran before the errors", (long long)calls[0]);
    hr_pairs_free(ps);
}

/* ---- from text ---- */

static char *read_all(const char *path, size_t *len) {
    char *t = NULL;
    if (hr_read_file(path, &t, len) != HR_OK) return NULL;
    return t;
}

static bool contains_word(const char *s, const char *w) {
    size_t n = strlen(w);
    for (const char *p = strstr(s, w); p; p = strstr(p + 1, w))
        if ((p == s || !isalpha((unsigned char)p[-1])) && !isalpha((unsigned char)p[n])) return true;
    return false;
}

static void the_recall_task_asks_for_a_name_of_the_context_among_absent_ones(void) {
    size_t len = 0;
    char *text = read_all(TEXT, &len);
    hr_recall_params rp = hr_recall_default_params();
    rp.max_items = 50;
    hr_mc_task *t = NULL;
    CHECK(text && hr_recall_task_build(tok, text, len, &rp, &t) == HR_OK, "%s", hr_last_error());
    int bad = 0, golds[4] = {0};
    for (int i = 0; t && i < t->n_items; i++) {
        const hr_mc_item *it = &t->items[i];
        bad += it->n_choices != 4 || !contains_word(it->context, it->choices[it->gold] + 1);
        for (int c = 0; c < it->n_choices; c++) bad += c != it->gold && contains_word(it->context, it->choices[c] + 1);
        golds[it->gold]++;
    }
    printf("    %d items; gold positions %d %d %d %d\n", t ? t->n_items : 0, golds[0], golds[1], golds[2], golds[3]);
    CHECK(t && t->n_items == 50 && bad == 0, "%d malformed items", bad);
    hr_mc_task_free(t);
    const char *none = "the cat sat. the dog ran away and the bird sang.";
    CHECK(hr_recall_task_build(tok, none, strlen(none), &rp, &t) == HR_ERR_RANGE && t == NULL &&
              strstr(hr_last_error(), "no recall item"),
          "%s", hr_last_error());
    CHECK(hr_recall_task_build(tok, "", 0, &rp, &t) == HR_ERR_RANGE, "an empty corpus gave items");
    hr_pairs *ps = NULL;
    CHECK(hr_pairs_name_recall(tok, "", 0, 128, 10, 0, &ps) == HR_ERR_RANGE && ps == NULL &&
              strstr(hr_last_error(), "no name-recall pair"),
          "%s", hr_last_error());
    CHECK(text && hr_pairs_name_recall(tok, text, len, 128, 20, 1, &ps) == HR_OK, "%s", hr_last_error());
    int n = hr_pairs_count(ps), diff = 0;
    for (int i = 0; i < n; i++) {
        hr_pair pr;
        hr_pairs_get(ps, i, &pr);
        int changed = 0;
        for (int k = 0; k < pr.n_tokens; k++) changed += pr.clean[k] != pr.corrupt[k];
        diff += changed == 0 || pr.answer == pr.wrong || pr.n_tokens > 128;
    }
    printf("    %d name-recall pairs\n", n);
    CHECK(n == 20 && diff == 0, "%d of %d pairs are not proper pairs", diff, n);
    hr_pairs_free(ps);
    free(text);
}

/* ---- head masks ---- */

static void head_masks_parse_lists_and_gates_files_and_refuse_mistakes(void) {
    const hr_config *c = hr_model_config(stories);
    int H = hr_config_max_heads(c);
    hr_head_mask_params mp = hr_head_mask_default_params();
    mp.mask_heads = "1.2, 3.*";
    mp.gates_text = "# gates\n0.1 0.5\ndefault 0.9\n";
    hr_head_mask *mk = NULL;
    CHECK(hr_head_mask_new(c, &mp, &mk) == HR_OK, "%s", hr_last_error());
    const float *g = hr_head_mask_gates(mk);
    CHECK(g && g[1 * H + 2] == 0 && g[3 * H + 5] == 0 && g[0 * H + 1] == 0.5f && g[4 * H + 0] == 0.9f, "gates wrong");
    CHECK(hr_head_mask_n_heads(mk) == hr_config_n_layers(c) * H, "%d heads changed", hr_head_mask_n_heads(mk));
    hr_head_mask_free(mk);
    struct {
        hr_head_mask_params p;
        const char *needle;
    } bad[] = {
        {{"5.0", NULL, NULL, NULL, 0, 0}, "no head 5.0 (the model has 5 layers)"},
        {{"2.8", NULL, NULL, NULL, 0, 0}, "layer 2 has 8 heads"},
        {{"2-1", NULL, NULL, NULL, 0, 0}, "'2-1' is not a head"},
        {{"2.1", "2.1", NULL, NULL, 0, 0}, "already set by another option"},
        {{NULL, NULL, "2.1 zero\n", "g.txt", 0, 0}, "g.txt line 1: gate 'zero' is not a finite number"},
        {{NULL, NULL, "2.1 0\n2.1 1\n", "g.txt", 0, 0}, "g.txt line 2: head 2.1 is set twice"},
        {{NULL, NULL, "default 0\ndefault 1\n", "g.txt", 0, 0}, "line 2: a second 'default' line"},
        {{NULL, NULL, "2.1\n", "g.txt", 0, 0}, "line 1: expected 'LAYER.HEAD VALUE'"},
        {{"0.*", NULL, NULL, NULL, 40, 0}, "--random-heads 40: 32 heads are free"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(hr_head_mask_new(c, &bad[i].p, &mk) != HR_OK && mk == NULL && strstr(hr_last_error(), bad[i].needle),
              "'%s': %s", bad[i].needle, hr_last_error());
    /* random heads: K distinct heads, none of the listed ones, the same for the same seed */
    mp = hr_head_mask_default_params();
    mp.mask_heads = "0.0";
    mp.random_heads = 6;
    mp.seed = 3;
    hr_head_mask *a = NULL, *b = NULL;
    hr_head_mask_new(c, &mp, &a);
    hr_head_mask_new(c, &mp, &b);
    mp.seed = 4;
    hr_head_mask *d = NULL;
    hr_head_mask_new(c, &mp, &d);
    CHECK(a && b && d && hr_head_mask_n_heads(a) == 7, "random heads: %d", a ? hr_head_mask_n_heads(a) : -1);
    CHECK(a && b && !memcmp(hr_head_mask_gates(a), hr_head_mask_gates(b), sizeof(float) * 40), "seed not reproducible");
    CHECK(a && d && memcmp(hr_head_mask_gates(a), hr_head_mask_gates(d), sizeof(float) * 40), "seeds 3 and 4 agree");
    hr_head_mask_free(a), hr_head_mask_free(b), hr_head_mask_free(d);
}

int main(void) {
    char dir[64], path[128];
    if (hr_t_scratch_dir(dir, sizeof dir, "circuits")) return 1;
    snprintf(path, sizeof path, "%s/copy.bin", dir);
    if (write_copy_model(path) || hr_model_load(path, &copy_model) != HR_OK) {
        fprintf(stderr, "cannot build the copy model: %s\n", hr_last_error());
        hr_t_rm_rf(dir);
        return 1;
    }
    RUN(a_planted_copy_head_is_found_by_patching_and_its_path_goes_into_the_logits);
    snprintf(scratch, sizeof scratch, "%s", dir);
    RUN(a_planted_copy_head_is_a_context_head_and_gating_it_answers_from_memory);
    HR_T_REQUIRE_SHARED("models/stories260K/stories260K.bin", "models/stories260K/tok512.bin",
                        "data/text/tinystories_val.txt");
    if (hr_model_load(MODEL, &stories) != HR_OK || hr_tokenizer_load(TOKENIZER, &tok) != HR_OK) {
        fprintf(stderr, "cannot load stories260K: %s\n", hr_last_error());
        return 1;
    }
    RUN(patching_a_layers_whole_residual_equals_the_clean_run_from_that_layer);
    RUN(patching_every_head_of_a_layer_equals_patching_its_attention_output);
    RUN(sweeps_that_reuse_the_cache_equal_single_patches);
    RUN(dla_parts_sum_to_the_logit_difference_and_the_lens_ends_at_the_output);
    RUN(conflict_pairs_state_another_word_than_the_models_memory);
    RUN(progress_counts_every_forward_pass_and_can_abort);
    RUN(bad_pairs_are_refused_with_the_line_named);
    RUN(bad_specifications_and_pairs_are_refused_before_any_work);
    RUN(the_recall_task_asks_for_a_name_of_the_context_among_absent_ones);
    RUN(head_masks_parse_lists_and_gates_files_and_refuse_mistakes);
    hr_model_free(copy_model);
    hr_model_free(stories);
    hr_tokenizer_free(tok);
    hr_t_rm_rf(dir);
    TEST_MAIN_END();
}
