/* Knowledge conflicts (PH3, Jin et al. 2024): conflict pairs built from a
 * text with the model's own memory, and the memory / context head scores
 * of a path-patching run written as a heads.json-style score file. See
 * circuits.h. */
#include "headroom/circuits.h"
#include "headroom/context.h"
#include "core/rng.h"
#include "engine/kernels.h"
#include "study/circuits/circuits_internal.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CONFLICT_ALTERNATIVES = 8, CONFLICT_MIN_PREFIX = 3, CONFLICT_MIN_LETTERS = 3 };

/* Text of token id after a word (its leading space kept), or "" . */
static void token_text(const hr_tokenizer *tok, int32_t id, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = 0;
    if (hr_tokenizer_decode_one(tok, id, id, buf, cap - 1, &n) != HR_OK) n = 0;
    buf[n] = 0;
}

/* A token that starts a word: a space, then a letter. */
static bool word_start(const hr_tokenizer *tok, int32_t id) {
    char b[64];
    token_text(tok, id, b, sizeof b);
    return b[0] == ' ' && isalpha((unsigned char)b[1]);
}

/* A word token of CONFLICT_MIN_LETTERS+ letters after its space (" ball",
 * not " a" or " up"): what an answer must be. */
static bool word_token(const hr_tokenizer *tok, int32_t id) {
    char b[64];
    token_text(tok, id, b, sizeof b);
    if (b[0] != ' ') return false;
    int n = 0;
    for (const char *p = b + 1; *p; p++, n++)
        if (!isalpha((unsigned char)*p)) return false;
    return n >= CONFLICT_MIN_LETTERS;
}

/* Next-token probabilities of one prompt into probs (vocab). */
static hr_status next_probs(hr_context *ctx, const int32_t *ids, int n, float *probs, int V) {
    hr_context_truncate(ctx, 0);
    hr_status st = hr_forward(ctx, ids, n, probs, false);
    if (st != HR_OK) return st;
    double lse = hr_logsumexp(probs, V);
    for (int v = 0; v < V; v++) probs[v] = (float)exp((double)probs[v] - lse);
    return HR_OK;
}

static int32_t argmax(const float *p, int V) {
    int32_t b = 0;
    for (int v = 1; v < V; v++)
        if (p[v] > p[b]) b = v;
    return b;
}

/* Sentences: maximal runs of bytes ending at '.', '!', '?' or a newline,
 * leading blanks skipped; (start, end) byte offsets, end exclusive. */
static hr_status split_sentences(const char *text, size_t len, size_t **out, size_t *n) {
    size_t cap = 1024, k = 0, start = 0;
    size_t *v = malloc(sizeof(size_t) * 2 * cap); // (cap, 2)
    if (!v) return hr_err(HR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i <= len; i++) {
        bool end = i == len || text[i] == '.' || text[i] == '!' || text[i] == '?' || text[i] == '\n';
        if (!end) continue;
        while (start < i && isspace((unsigned char)text[start])) start++;
        if (i > start + 8) {
            if (k == cap) {
                size_t *nv = realloc(v, sizeof(size_t) * 4 * cap);
                if (!nv) {
                    free(v);
                    return hr_err(HR_ERR_NOMEM, "out of memory");
                }
                v = nv, cap *= 2;
            }
            v[2 * k] = start, v[2 * k + 1] = i, k++;
        }
        start = i + 1;
    }
    *out = v, *n = k;
    return HR_OK;
}

typedef struct {
    hr_context *ctx;
    const hr_tokenizer *tok;
    int V, max_ctx;
    float min_prob;
    float *probs; /* (vocab) */
    float *all;   /* (max_ctx, vocab) logits of a sentence */
    hr_rng *rng;
} conflict_builder;

/* Encodes s with BOS. */
static hr_status encode_bos(const hr_tokenizer *tok, const char *s, size_t n, int32_t **ids, size_t *n_ids) {
    hr_encode_params ep = hr_encode_default_params();
    ep.add_bos = hr_tokenizer_bos(tok) >= 0;
    return hr_tokenizer_encode(tok, s, n, &ep, ids, n_ids);
}

/* The pair of prefix (the memory prompt, its text), if the conflict is
 * real: memory answer M = the model's top-1 with p >= min_prob, a word
 * start; context answer X = one of the next CONFLICT_ALTERNATIVES tokens by
 * probability that starts a word (seeded choice); clean and corrupt of the
 * same length. *added = whether a pair was appended. */
static hr_status try_prefix(conflict_builder *b, hr_pairs *ps, const char *prefix, bool *added) {
    *added = false;
    int32_t *mem = NULL, *clean = NULL, *corrupt = NULL;
    size_t nm = 0, nc = 0, nr = 0;
    size_t plen = strlen(prefix);
    hr_status st = encode_bos(b->tok, prefix, plen, &mem, &nm);
    if (st != HR_OK || nm < 2 || 2 * nm + 4 > (size_t)b->max_ctx) {
        free(mem);
        return st;
    }
    st = next_probs(b->ctx, mem, (int)nm, b->probs, b->V);
    free(mem);
    if (st != HR_OK) return st;
    int32_t M = argmax(b->probs, b->V);
    if (b->probs[M] < b->min_prob || !word_token(b->tok, M)) return HR_OK;
    int32_t alt[CONFLICT_ALTERNATIVES];
    int n_alt = 0;
    float last = b->probs[M];
    for (int r = 0; r < CONFLICT_ALTERNATIVES; r++) { /* the next tokens by probability, best first */
        int32_t best = -1;
        for (int v = 0; v < b->V; v++)
            if (v != M && b->probs[v] <= last && (best < 0 || b->probs[v] > b->probs[best])) {
                bool seen = false;
                for (int j = 0; j < n_alt; j++) seen |= alt[j] == v;
                if (!seen) best = v;
            }
        if (best < 0) break;
        last = b->probs[best];
        if (word_token(b->tok, best)) alt[n_alt++] = best;
    }
    if (!n_alt) return HR_OK;
    int32_t X = alt[hr_rng_below(b->rng, (uint64_t)n_alt)];
    char xt[64], mt[64];
    token_text(b->tok, X, xt, sizeof xt);
    token_text(b->tok, M, mt, sizeof mt);
    size_t cap = 2 * plen + 160;
    char *ct = malloc(cap), *rt = malloc(cap);
    if (!ct || !rt) st = hr_err(HR_ERR_NOMEM, "out of memory");
    if (st == HR_OK) {
        snprintf(ct, cap, "%s%s. %s", prefix, xt, prefix);
        snprintf(rt, cap, "%s%s. %s", prefix, mt, prefix);
        st = encode_bos(b->tok, ct, strlen(ct), &clean, &nc);
    }
    if (st == HR_OK) st = encode_bos(b->tok, rt, strlen(rt), &corrupt, &nr);
    free(ct), free(rt);
    if (st == HR_OK && nc == nr && nc <= (size_t)b->max_ctx) {
        st = hr_pairs_add(ps, clean, corrupt, (int)nc, X, M);
        *added = st == HR_OK;
    }
    free(clean), free(corrupt);
    return st;
}

/* At most one pair per sentence: the first word boundary (after
 * CONFLICT_MIN_PREFIX tokens) where the model's next word passes the
 * filters of try_prefix. */
static hr_status sentence_pair(conflict_builder *b, hr_pairs *ps, const char *s, size_t n) {
    int32_t *ids = NULL;
    size_t nt = 0;
    hr_status st = encode_bos(b->tok, s, n, &ids, &nt);
    if (st != HR_OK || nt < CONFLICT_MIN_PREFIX + 2 || 2 * nt + 4 > (size_t)b->max_ctx) {
        free(ids);
        return st;
    }
    hr_context_truncate(b->ctx, 0);
    st = hr_forward(b->ctx, ids, (int)nt, b->all, true);
    bool added = false;
    for (size_t i = CONFLICT_MIN_PREFIX; st == HR_OK && !added && i + 1 < nt; i++) {
        const float *z = b->all + (i - 1) * (size_t)b->V; /* after ids[0..i) */
        int32_t top = argmax(z, b->V);
        double p = exp((double)z[top] - hr_logsumexp(z, b->V));
        if (p < b->min_prob || !word_token(b->tok, top) || !word_start(b->tok, ids[i])) continue;
        char *prefix = NULL;
        size_t pl = 0;
        st = hr_tokenizer_decode(b->tok, ids + 1, i - 1, true, &prefix, &pl);
        if (st == HR_OK) st = try_prefix(b, ps, prefix, &added);
        free(prefix);
    }
    free(ids);
    return st;
}

hr_status hr_pairs_conflict(const hr_model *m, const hr_tokenizer *tok, const char *text, size_t len, int max_pairs,
                            float min_prob, uint64_t seed, hr_pairs **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!m || !tok || !text || max_pairs < 1 || !(min_prob > 0 && min_prob <= 1))
        return hr_err(HR_ERR_INVALID_ARG,
                      "conflict pairs need a model, a tokenizer, a text, max_pairs >= 1 and 0 < min_prob <= 1");
    const hr_config *c = hr_model_config(m);
    int V = c->vocab_size, max_ctx = c->seq_len;
    if (hr_tokenizer_vocab_size(tok) > V)
        return hr_err(HR_ERR_INVALID_ARG, "the tokenizer has %d tokens, the model %d", hr_tokenizer_vocab_size(tok), V);
    if (max_ctx > 256) max_ctx = 256;
    size_t *sent = NULL, n_sent = 0;
    hr_pairs *ps = NULL;
    hr_rng rng = hr_rng_stream(seed, 0xC0F1C7);
    conflict_builder b = {NULL, tok, V, max_ctx, min_prob, NULL, NULL, &rng};
    hr_context_params cp = hr_context_default_params();
    cp.n_ctx = max_ctx;
    hr_status st = split_sentences(text, len, &sent, &n_sent);
    if (st == HR_OK) st = hr_pairs_new(&ps);
    if (st == HR_OK) st = hr_context_new(m, &cp, &b.ctx);
    if (st == HR_OK) {
        b.probs = malloc(sizeof(float) * (size_t)V);
        b.all = malloc(sizeof(float) * (size_t)V * (size_t)max_ctx);
        if (!b.probs || !b.all) st = hr_err(HR_ERR_NOMEM, "out of memory");
    }
    if (st == HR_OK) hr_rng_shuffle(&rng, sent, n_sent, 2 * sizeof(size_t));
    for (size_t i = 0; st == HR_OK && i < n_sent && ps->n < max_pairs; i++)
        st = sentence_pair(&b, ps, text + sent[2 * i], sent[2 * i + 1] - sent[2 * i]);
    free(sent), free(b.probs), free(b.all);
    hr_context_free(b.ctx);
    if (st == HR_OK && ps->n == 0)
        st = hr_err(HR_ERR_RANGE,
                    "the text gives no conflict pair: no word the model predicts with p >= %g has an alternative of "
                    "the same token count",
                    (double)min_prob);
    if (st != HR_OK) {
        hr_pairs_free(ps);
        return st;
    }
    *out = ps;
    return HR_OK;
}

/* ---- the PH3 score file ---- */

hr_status hr_patch_ph3_json(const hr_patch_result *r, const hr_model *m, const hr_patch_meta *meta, char **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    const hr_patch_summary *s = hr_patch_result_summary(r);
    if (!s || !m) return hr_err(HR_ERR_INVALID_ARG, "no patching result or model given");
    if (!s->path_heads || strstr(s->path, "logits") == NULL || s->metric != HR_METRIC_LOGIT_DIFF ||
        s->direction != HR_PATCH_DENOISE)
        return hr_err(HR_ERR_INVALID_ARG,
                      "memory / context heads need path patching of every head into the logits (\"* -> logits\") "
                      "with the logit-diff metric, denoising");
    const hr_config *c = hr_model_config(m);
    if (c->n_layers != s->n_layers) return hr_err(HR_ERR_INVALID_ARG, "the result comes from a model of another shape");
    int L = s->n_layers;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", "headroom.heads");
    cJSON_AddNumberToObject(j, "format_version", 1);
    cJSON *mo = cJSON_AddObjectToObject(j, "model");
    cJSON_AddStringToObject(mo, "path", meta && meta->model_path ? meta->model_path : "");
    cJSON_AddNumberToObject(mo, "n_layers", L);
    cJSON *nh = cJSON_AddArrayToObject(mo, "n_heads"), *nk = cJSON_AddArrayToObject(mo, "n_kv_heads");
    for (int l = 0; l < L; l++) {
        cJSON_AddItemToArray(nh, cJSON_CreateNumber(c->n_head[l]));
        cJSON_AddItemToArray(nk, cJSON_CreateNumber(c->n_head_kv[l]));
    }
    cJSON_AddNumberToObject(mo, "head_dim", c->head_dim);
    cJSON *pa = cJSON_AddObjectToObject(j, "pairs");
    cJSON_AddStringToObject(pa, "path", meta && meta->pairs_path ? meta->pairs_path : "");
    cJSON_AddNumberToObject(pa, "count", s->n_pairs);
    cJSON_AddStringToObject(pa, "answer", "the context answer");
    cJSON_AddStringToObject(pa, "wrong", "the memory answer");
    cJSON_AddNumberToObject(pa, "clean", s->clean);
    cJSON_AddNumberToObject(pa, "corrupt", s->corrupt);
    cJSON_AddNumberToObject(pa, "clean_top_answer", s->clean_top_answer);
    cJSON_AddNumberToObject(pa, "clean_top_wrong", s->clean_top_wrong);
    static const char *ids[2] = {"ph3-context", "ph3-memory"}, *names[2] = {"PH3 context heads", "PH3 memory heads"};
    static const char *formula[2] = {
        "path patching of the head into the logits (denoising, others frozen): mean over the pairs of the "
        "patched minus the corrupt run's logit(context answer) - logit(memory answer)",
        "minus ph3-context: the head's path into the logits favours the memory answer"};
    static const char *higher[2] = {"prune first (more context)", "prune first (more memory)"};
    cJSON *ms = cJSON_AddArrayToObject(j, "methods");
    for (int k = 0; k < 2; k++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "id", ids[k]);
        cJSON_AddStringToObject(e, "name", names[k]);
        cJSON_AddStringToObject(e, "paper", "Jin et al. 2024, Cutting Off the Head Ends the Conflict (PH3)");
        cJSON_AddStringToObject(e, "formula", formula[k]);
        cJSON_AddStringToObject(e, "higher", higher[k]);
        cJSON_AddItemToArray(ms, e);
    }
    cJSON *hs = cJSON_AddArrayToObject(j, "heads");
    for (int l = 0; l < L; l++)
        for (int h = 0; h < c->n_head[l]; h++) {
            /* in logit-difference units: mean patched - mean corrupt */
            double v = s->path_heads[(size_t)l * s->max_heads + h] * (s->clean - s->corrupt);
            cJSON *e = cJSON_CreateObject(), *sc;
            cJSON_AddNumberToObject(e, "layer", l);
            cJSON_AddNumberToObject(e, "head", h);
            sc = cJSON_AddObjectToObject(e, "scores");
            cJSON_AddItemToObject(sc, ids[0], isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull());
            cJSON_AddItemToObject(sc, ids[1], isfinite(v) ? cJSON_CreateNumber(-v) : cJSON_CreateNull());
            cJSON_AddItemToArray(hs, e);
        }
    char *txt = cJSON_Print(j);
    cJSON_Delete(j);
    if (!txt) return hr_err(HR_ERR_NOMEM, "out of memory");
    *out = txt;
    return HR_OK;
}
