/* fdtm: First Divergent Token Metric of removing each head / sublayer. */
#include "study/heads/heads_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int n, plen, gen;
    int32_t *prompts; /* (n, plen) */
    int32_t *ref;     /* (n, gen) base greedy continuations */
    int32_t *out;     /* (gen) scratch */
    float *logits;    /* (vocab) */
} fdtm_set;

static void fdtm_free(fdtm_set *s) {
    free(s->prompts);
    free(s->ref);
    free(s->out);
    free(s->logits);
}

/* Prompts, tokens per prompt, continuation length. */
static void fdtm_shape(const hr_lab *lab, int *n, int *plen, int *gen) {
    *n = lab->p.fdtm_prompts ? lab->p.fdtm_prompts : 4;
    *plen = lab->p.fdtm_prompt_len ? lab->p.fdtm_prompt_len : 16;
    *gen = lab->p.fdtm_gen ? lab->p.fdtm_gen : 16;
}

static hr_status fdtm_prepare(hr_lab *lab, fdtm_set *s) {
    int n_ctx = hr_context_n_ctx(lab->ctx);
    fdtm_shape(lab, &s->n, &s->plen, &s->gen);
    if (s->plen < 2 || (size_t)s->plen - 1 > lab->p.n_tokens || s->plen + s->gen > n_ctx)
        return hr_err(HR_ERR_RANGE, "FDTM prompts of %d + %d tokens do not fit the text or context", s->plen, s->gen);
    s->prompts = malloc(sizeof(int32_t) * (size_t)s->n * s->plen);
    s->ref = malloc(sizeof(int32_t) * (size_t)s->n * s->gen);
    s->out = malloc(sizeof(int32_t) * (size_t)s->gen);
    s->logits = malloc(sizeof(float) * (size_t)lab->c->vocab_size);
    if (!s->prompts || !s->ref || !s->out || !s->logits) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_rng rng = hr_rng_stream(lab->p.seed, 0xFD7);
    int span = (int)(lab->p.n_tokens - (size_t)(s->plen - 1)) + 1;
    hr_status st = HR_OK;
    for (int i = 0; st == HR_OK && i < s->n; i++) {
        int32_t *pr = s->prompts + (size_t)i * s->plen;
        pr[0] = lab->p.bos;
        memcpy(pr + 1, lab->p.tokens + hr_rng_below(&rng, (uint64_t)span), sizeof(int32_t) * (size_t)(s->plen - 1));
        int got;
        st = lab_greedy(lab->ctx, pr, s->plen, s->gen, NULL, s->ref + (size_t)i * s->gen, &got, s->logits);
    }
    return st;
}

/* Mean first divergent position of the current intervention (gates or
 * removal hook already installed). */
static hr_status fdtm_measure(hr_lab *lab, fdtm_set *s, double *out) {
    double acc = 0;
    for (int i = 0; i < s->n; i++) {
        const int32_t *ref = s->ref + (size_t)i * s->gen;
        int got;
        hr_status st =
            lab_greedy(lab->ctx, s->prompts + (size_t)i * s->plen, s->plen, s->gen, ref, s->out, &got, s->logits);
        if (st != HR_OK) return st;
        acc += got > 0 && s->out[got - 1] != ref[got - 1] ? got - 1 : s->gen;
    }
    *out = acc / s->n;
    return HR_OK;
}

static hr_status fdtm_heads(hr_lab *lab, fdtm_set *s, double *scores, int64_t total, int64_t *done) {
    size_t lh = (size_t)lab->L * lab->H;
    float *gates = malloc(sizeof(float) * (lh ? lh : 1));
    if (!gates) return hr_err(HR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < lh; i++) gates[i] = 1;
    hr_status st = HR_OK;
    for (int l = 0; st == HR_OK && l < lab->L; l++)
        for (int h = 0; st == HR_OK && h < lab->c->n_head[l]; h++) {
            size_t i = lab_idx(lab, l, h);
            gates[i] = 0;
            st = hr_context_set_head_gates(lab->ctx, gates);
            gates[i] = 1;
            if (st == HR_OK) st = fdtm_measure(lab, s, &scores[i]);
            if (st == HR_OK) st = lab_progress(lab, ++*done, total);
        }
    hr_context_set_head_gates(lab->ctx, NULL);
    free(gates);
    return st;
}

static hr_status fdtm_layers(hr_lab *lab, fdtm_set *s, int64_t total, int64_t *done) {
    hr_status st = HR_OK;
    for (int l = 0; st == HR_OK && l < lab->L; l++)
        for (int which = 0; st == HR_OK && which < 2; which++) {
            lab_removal r = {which == 0 ? l : -1, which == 1 ? l : -1};
            lab_set_removal(lab->ctx, &r);
            st = fdtm_measure(lab, s, &lab->layer_scores[(size_t)(which ? LM_FDTM_MLP : LM_FDTM_ATTN) * lab->L + l]);
            lab_set_removal(lab->ctx, NULL);
            if (st == HR_OK) st = lab_progress(lab, ++*done, total);
        }
    return st;
}

static hr_status fdtm_compute(hr_lab *lab, int method, double *scores) {
    (void)method;
    fdtm_set s;
    memset(&s, 0, sizeof s);
    hr_status st = fdtm_prepare(lab, &s);
    int64_t total = 2 * (int64_t)lab->L, done = 0;
    for (int l = 0; l < lab->L; l++) total += lab->c->n_head[l];
    if (st == HR_OK) st = fdtm_heads(lab, &s, scores, total, &done);
    if (st == HR_OK) st = fdtm_layers(lab, &s, total, &done);
    fdtm_free(&s);
    return st;
}

/* The base continuations, then one set per head and per sublayer: each
 * prompt is one batched forward (its last logit row) and up to gen - 1
 * one-token steps (fewer when the continuation diverges early: an upper
 * bound). */
static void fdtm_cost(const hr_lab *lab, lab_cost *out) {
    int n, plen, gen;
    fdtm_shape(lab, &n, &plen, &gen);
    double sets = 1.0 + lab_n_heads(lab) + 2.0 * lab->L;
    out->work = (hr_heads_work){sets * n * plen, sets * n * (gen - 1), sets * n, sets * n * (gen - 1)};
    out->items = lab_n_heads(lab) + 2 * (int64_t)lab->L;
    out->exact = false;
    out->bound = true;
}

const hr_head_method hr_method_fdtm = {
    {"fdtm", "first divergent token",
     "Deiseroth et al. 2023, Divergent Token Metrics: Measuring degradation to prune away LLM components - and "
     "optimize quantization (FDTM)",
     "over prompts drawn from the text (BOS + 15 tokens): greedy 16-token continuations with the head gated "
     "to 0 vs the base model; score = mean first position where they differ (16 = never)",
     "a generation-level robustness check: low values mark heads whose removal changes what the model writes "
     "almost at once; higher = safer to prune",
     "more harmless", true},
    LAB_INPUT_NONE,
    NULL,
    fdtm_compute,
    {"fdtm", "heads and sublayers", fdtm_cost}};
