/* retrieval: Retrieval-Head copy-paste score on needle-in-a-haystack prompts. */
#include "study/heads/heads_internal.h"
#include "headroom/sample.h"

#include <stdlib.h>
#include <string.h>

enum { PREFIX = 2 }; /* needle tokens repeated at the end of the prompt */

typedef struct {
    hr_lab *lab;
    int *argmax; /* (L, H) key position each head attends most from the newest query */
} ret_pass;

static int ret_hook(const hr_hook_event *ev, void *ud) {
    ret_pass *rp = ud;
    const float *p = ev->data + (size_t)(ev->n_tokens - 1) * ev->stride;
    rp->argmax[lab_idx(rp->lab, ev->layer, ev->head)] = hr_argmax(p, ev->n_cols);
    return 0;
}

/* Builds [BOS, hay[0:ins], needle, hay[ins:], needle[0:PREFIX]] into pr
 * (len tokens) and returns the position of the needle's first token. */
static int build_prompt(hr_lab *lab, hr_rng *rng, int len, int k, int32_t *pr, int32_t *needle) {
    int hay = len - 1 - k - PREFIX;
    int span = (int)(lab->p.n_tokens - (size_t)hay) + 1;
    const int32_t *src = lab->p.tokens + hr_rng_below(rng, (uint64_t)span);
    for (int j = 0; j < k; j++) { /* distinct tokens, so the copy target is unique */
        bool dup;
        int tries = 0;
        do {
            needle[j] = lab->p.tokens[hr_rng_below(rng, (uint64_t)lab->p.n_tokens)];
            dup = needle[j] == lab->p.bos;
            for (int i = 0; i < j; i++) dup |= needle[i] == needle[j];
        } while (dup && ++tries < 64);
    }
    int ins = hay / 4 + (int)hr_rng_below(rng, (uint64_t)(hay / 2 + 1));
    int n = 0;
    pr[n++] = lab->p.bos;
    memcpy(pr + n, src, sizeof(int32_t) * (size_t)ins);
    n += ins;
    memcpy(pr + n, needle, sizeof(int32_t) * (size_t)k);
    n += k;
    memcpy(pr + n, src + ins, sizeof(int32_t) * (size_t)(hay - ins));
    n += hay - ins;
    memcpy(pr + n, needle, sizeof(int32_t) * PREFIX);
    return 1 + ins;
}

static int32_t argmax_tok(const float *x, int n) {
    int32_t b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* Generates the rest of the needle and credits heads whose strongest
 * attention sits on the needle token the model copies at that step. */
static hr_status run_needle(hr_lab *lab, ret_pass *rp, const int32_t *pr, int len, int at, const int32_t *needle, int k,
                            float *logits, double *hits) {
    hr_status st = hr_context_truncate(lab->ctx, 0);
    if (st == HR_OK) st = hr_forward(lab->ctx, pr, len, logits, false);
    for (int j = PREFIX; st == HR_OK && j < k; j++) {
        int32_t tok = argmax_tok(logits, lab->c->vocab_size);
        if (tok == needle[j])
            for (int l = 0; l < lab->L; l++)
                for (int h = 0; h < lab->c->n_head[l]; h++)
                    if (rp->argmax[lab_idx(lab, l, h)] == at + j) hits[lab_idx(lab, l, h)] += 1;
        if (j + 1 < k) st = hr_forward(lab->ctx, &tok, 1, logits, false);
    }
    return st;
}

/* ---- natural needles: spans of the calibration windows that recur ---- */

enum { NATURAL_GAP = 16 }; /* tokens between the earlier copy's start and the recurrence */

typedef struct {
    int w, t, s; /* window, recurrence start, the earlier (unique) copy's start */
} recurrence;

/* Every (w, t, s): win[t..t+k) == win[s..s+k) for exactly one s in
 * [1, t - NATURAL_GAP], no BOS in the span, t + k <= W. */
static hr_status natural_recurrences(hr_lab *lab, int k, recurrence **out, int *n_out) {
    int cap = 64, n = 0, W = lab->W;
    recurrence *r = malloc(sizeof *r * (size_t)cap);
    if (!r) return hr_err(HR_ERR_NOMEM, "out of memory");
    for (int w = 0; w < lab->n_windows; w++) {
        const int32_t *win = lab->windows + (size_t)w * W;
        for (int t = 1 + NATURAL_GAP; t + k <= W; t++) {
            int found = -1, count = 0;
            for (int s = 1; s <= t - NATURAL_GAP && count < 2; s++) {
                int j = 0;
                while (j < k && win[s + j] == win[t + j] && win[t + j] != lab->p.bos) j++;
                if (j == k) found = s, count++;
            }
            if (count != 1) continue;
            if (n == cap) {
                recurrence *nr = realloc(r, sizeof *r * (size_t)(cap *= 2));
                if (!nr) {
                    free(r);
                    return hr_err(HR_ERR_NOMEM, "out of memory");
                }
                r = nr;
            }
            r[n++] = (recurrence){w, t, found};
        }
    }
    *out = r;
    *n_out = n;
    return HR_OK;
}

/* Prompts: the window up to PREFIX tokens into the recurrence; the needle is
 * the earlier copy, whose tokens the model must continue with. */
static hr_status natural_needles(hr_lab *lab, int method, int k, int n, ret_pass *rp, double *hits, float *logits,
                                 int *used) {
    recurrence *rec = NULL;
    int n_rec = 0;
    *used = 0;
    hr_status st = natural_recurrences(lab, k, &rec, &n_rec);
    if (st != HR_OK) return st;
    if (n_rec == 0) {
        lab_note(lab, method, "no span of %d calibration tokens recurs %d+ tokens after its only earlier occurrence", k,
                 NATURAL_GAP);
        free(rec);
        return HR_OK;
    }
    hr_rng rng = hr_rng_stream(lab->p.seed, 0x4A7E);
    hr_rng_shuffle(&rng, rec, (size_t)n_rec, sizeof *rec);
    int m = n < n_rec ? n : n_rec;
    for (int i = 0; st == HR_OK && i < m; i++) {
        const int32_t *win = lab->windows + (size_t)rec[i].w * lab->W;
        st = run_needle(lab, rp, win, rec[i].t + PREFIX, rec[i].s, win + rec[i].s, k, logits, hits);
        if (st == HR_OK) st = lab_progress(lab, i + 1, m);
    }
    *used = m;
    free(rec);
    return st;
}

/* Needle tokens, prompts, prompt length (natural needles: the longest a
 * prompt can be); false when needles do not fit. */
static bool needle_shape(const hr_lab *lab, int *k, int *n, int *len) {
    bool natural = lab->p.natural_needles;
    *k = lab->p.needle_len ? lab->p.needle_len : natural ? 4 : 8;
    *n = lab->p.n_needles ? lab->p.n_needles : natural ? 64 : 4;
    int n_ctx = hr_context_n_ctx(lab->ctx);
    *len = lab->W < n_ctx - *k ? lab->W : n_ctx - *k;
    return *k > PREFIX &&
           (natural || (*len - 1 - *k - PREFIX >= 8 && (size_t)(*len - 1 - *k - PREFIX) <= lab->p.n_tokens));
}

/* Per needle prompt: one batched forward (its last logit row), then
 * k - PREFIX - 1 one-token steps. Natural needles: at most n prompts of at
 * most a window each (how many recur is known only after the scan), so the
 * row is an upper bound. */
static void retrieval_cost(const hr_lab *lab, lab_cost *out) {
    int k, n, len;
    bool fits = needle_shape(lab, &k, &n, &len);
    double steps = fits ? (double)n * (k - PREFIX - 1) : 0;
    out->work = (hr_heads_work){fits ? (double)n * len : 0, steps, fits ? n : 0, steps};
    out->items = n;
    out->exact = !lab->p.natural_needles;
}

static hr_status retrieval_compute(hr_lab *lab, int method, double *scores) {
    bool natural = lab->p.natural_needles;
    int k, n, len;
    if (!needle_shape(lab, &k, &n, &len)) {
        lab_note(lab, method, "needles of %d tokens do not fit a %d-token prompt", k, len);
        return HR_OK;
    }
    size_t lh = (size_t)lab->L * lab->H;
    ret_pass rp = {lab, calloc(lh ? lh : 1, sizeof(int))};
    double *hits = calloc(lh ? lh : 1, sizeof(double));
    int32_t *pr = malloc(sizeof(int32_t) * (size_t)len), *needle = malloc(sizeof(int32_t) * (size_t)k);
    float *logits = malloc(sizeof(float) * (size_t)lab->c->vocab_size);
    hr_status st = rp.argmax && hits && pr && needle && logits ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory");
    hr_rng rng = hr_rng_stream(lab->p.seed, 0x4EED1E);
    hr_context_set_hook(lab->ctx, ret_hook, HR_HOOK_ATTN_PROBS, &rp);
    int used = n;
    if (st == HR_OK && natural) st = natural_needles(lab, method, k, n, &rp, hits, logits, &used);
    for (int i = 0; st == HR_OK && !natural && i < n; i++) {
        int at = build_prompt(lab, &rng, len, k, pr, needle);
        st = run_needle(lab, &rp, pr, len, at, needle, k, logits, hits);
        if (st == HR_OK) st = lab_progress(lab, i + 1, n);
    }
    hr_context_set_hook(lab->ctx, NULL, 0, NULL);
    for (int l = 0; st == HR_OK && used && l < lab->L; l++)
        for (int h = 0; h < lab->c->n_head[l]; h++)
            scores[lab_idx(lab, l, h)] = hits[lab_idx(lab, l, h)] / ((double)used * (k - PREFIX));
    free(rp.argmax);
    free(hits);
    free(pr);
    free(needle);
    free(logits);
    return st;
}

const hr_head_method hr_method_retrieval = {
    {"retrieval", "retrieval (copy-paste) score",
     "Wu et al. 2024, Retrieval Head Mechanistically Explains Long-Context Factuality (arXiv 2404.15574)",
     "needle = 8 distinct random text tokens inserted into a text haystack (natural needles: a span of 4 "
     "calibration tokens recurring >= 16 tokens after its only earlier occurrence in a window, prompt = the "
     "window up to the recurrence's 2nd token); the prompt ends with the needle's first 2 tokens and the model "
     "continues greedily; per step, a head scores when the generated token is the next needle token and the "
     "head's argmax attention is on that needle token (the earlier copy); score = hits / (prompts x steps)",
     "finding the sparse heads that copy facts from long context (removing them breaks needle-in-a-haystack "
     "recall); they need the full KV cache",
     "more retrieval", false},
    LAB_INPUT_NONE,
    NULL,
    retrieval_compute,
    {"retrieval", "needle prompts", retrieval_cost}};
