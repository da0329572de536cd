/* Successor heads' mod-10 structure (hr_probe_mod10, hr_successor_mod10;
 * see heads.h): a ridge-regression linear probe of number embeddings onto
 * value mod 10, scored by leave-one-out accuracy. */
#include "study/heads/heads_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* In-place Cholesky factor L (lower) of the SPD matrix a (n, n); false when
 * it is not positive definite. */
static bool cholesky(double *a, int n) {
    for (int j = 0; j < n; j++) {
        double d = a[(size_t)j * n + j];
        for (int k = 0; k < j; k++) d -= a[(size_t)j * n + k] * a[(size_t)j * n + k];
        if (!(d > 0)) return false;
        a[(size_t)j * n + j] = sqrt(d);
        for (int i = j + 1; i < n; i++) {
            double s = a[(size_t)i * n + j];
            for (int k = 0; k < j; k++) s -= a[(size_t)i * n + k] * a[(size_t)j * n + k];
            a[(size_t)i * n + j] = s / a[(size_t)j * n + j];
        }
    }
    return true;
}

/* Solves L L^T x = b in place (b: n). */
static void chol_solve(const double *l, int n, double *b) {
    for (int i = 0; i < n; i++) {
        double s = b[i];
        for (int k = 0; k < i; k++) s -= l[(size_t)i * n + k] * b[k];
        b[i] = s / l[(size_t)i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) {
        double s = b[i];
        for (int k = i + 1; k < n; k++) s -= l[(size_t)k * n + i] * b[k];
        b[i] = s / l[(size_t)i * n + i];
    }
}

static int argmax10(const double *v) {
    int b = 0;
    for (int c = 1; c < 10; c++)
        if (v[c] > v[b]) b = c;
    return b;
}

hr_status hr_probe_mod10(const float *x, const int *values, int n, int dim, double ridge, hr_mod10_probe *out) {
    if (!x || !values || !out) return hr_err(HR_ERR_INVALID_ARG, "no embeddings, values or output given");
    if (n < 2 || dim < 1 || !(ridge > 0))
        return hr_err(HR_ERR_RANGE, "probe: %d numbers, dim %d, ridge %g", n, dim, ridge);
    memset(out, 0, sizeof *out);
    int count[10] = {0};
    for (int i = 0; i < n; i++) {
        if (values[i] < 0) return hr_err(HR_ERR_RANGE, "probe: value %d is negative", values[i]);
        count[values[i] % 10]++;
    }
    double *k = malloc(sizeof(double) * (size_t)n * n);  // (n, n) Gram matrix of [x, 1], then its factor
    double *kk = malloc(sizeof(double) * (size_t)n * n); // (n, n) the Gram matrix kept
    double *a = malloc(sizeof(double) * (size_t)n * 10); // (10, n) dual coefficients per class
    double *hd = malloc(sizeof(double) * (size_t)n);     // (n) diagonal of the hat matrix K (K + lambda I)^-1
    double *e = malloc(sizeof(double) * (size_t)n);      // (n) scratch
    if (!k || !kk || !a || !hd || !e) {
        free(k), free(kk), free(a), free(hd), free(e);
        return hr_err(HR_ERR_NOMEM, "out of memory");
    }
    double tr = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) {
            double s = 1.0; /* the bias feature */
            for (int d = 0; d < dim; d++) s += (double)x[(size_t)i * dim + d] * x[(size_t)j * dim + d];
            kk[(size_t)i * n + j] = kk[(size_t)j * n + i] = s;
            if (i == j) tr += s;
        }
    double lambda = ridge * tr / n;
    memcpy(k, kk, sizeof(double) * (size_t)n * n);
    for (int i = 0; i < n; i++) k[(size_t)i * n + i] += lambda;
    hr_status st = cholesky(k, n) ? HR_OK : hr_err(HR_ERR_RANGE, "probe: the regularised Gram matrix is singular");
    for (int c = 0; st == HR_OK && c < 10; c++) {
        double *ac = a + (size_t)c * n;
        for (int i = 0; i < n; i++) ac[i] = values[i] % 10 == c;
        chol_solve(k, n, ac);
    }
    /* H = K (K + lambda I)^-1 = I - lambda (K + lambda I)^-1: H_ii from the inverse's diagonal */
    for (int i = 0; st == HR_OK && i < n; i++) {
        memset(e, 0, sizeof(double) * (size_t)n);
        e[i] = 1;
        chol_solve(k, n, e);
        hd[i] = 1.0 - lambda * e[i];
    }
    int train = 0, loo = 0;
    for (int i = 0; st == HR_OK && i < n; i++) {
        double fit[10], held[10];
        for (int c = 0; c < 10; c++) {
            double s = 0, y = values[i] % 10 == c;
            for (int j = 0; j < n; j++) s += kk[(size_t)i * n + j] * a[(size_t)c * n + j];
            fit[c] = s;
            held[c] = (s - hd[i] * y) / (1.0 - hd[i]); /* the prediction of the probe fitted without i */
        }
        train += argmax10(fit) == values[i] % 10;
        loo += argmax10(held) == values[i] % 10;
    }
    if (st == HR_OK) {
        int big = 0, classes = 0;
        for (int c = 0; c < 10; c++) big = count[c] > big ? count[c] : big, classes += count[c] >= 2;
        out->n = n;
        out->n_classes = classes;
        out->train_accuracy = (double)train / n;
        out->loo_accuracy = (double)loo / n;
        out->chance = (double)big / n;
    }
    free(k), free(kk), free(a), free(hd), free(e);
    return st;
}

/* The number's id as a single token: " 12" / "12" as the successor method
 * looks them up, else the bare piece without a space prefix (SentencePiece
 * digits inside longer numbers), or -1. */
static int32_t number_token(const hr_tokenizer *tok, const char *word) {
    int32_t id = successor_single_token(tok, word);
    if (id >= 0) return id;
    hr_encode_params ep = hr_encode_default_params();
    ep.add_bos = false, ep.add_space_prefix = false;
    int32_t *ids = NULL;
    size_t n = 0;
    if (hr_tokenizer_encode(tok, word, strlen(word), &ep, &ids, &n) != HR_OK) return -1;
    id = n == 1 ? ids[0] : -1;
    free(ids);
    return id;
}

hr_status hr_successor_mod10(hr_context *ctx, const hr_tokenizer *tok, int max_n, double ridge, int *values,
                             hr_mod10_probe *out) {
    if (!ctx || !tok || !out) return hr_err(HR_ERR_INVALID_ARG, "no context, tokenizer or output given");
    if (max_n < 1) return hr_err(HR_ERR_RANGE, "numbers 0..%d: nothing to probe", max_n);
    memset(out, 0, sizeof *out);
    const hr_model *m = hr_context_model(ctx);
    int n_ctx = hr_context_n_ctx(ctx), dim = m->cfg.dim, n = 0;
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)(max_n + 1)); // (max_n + 1) single-token numbers
    int *vals = malloc(sizeof(int) * (size_t)(max_n + 1));         // (max_n + 1) their values
    if (!toks || !vals) {
        free(toks), free(vals);
        return hr_err(HR_ERR_NOMEM, "out of memory");
    }
    for (int v = 0; v <= max_n && n < n_ctx; v++) {
        char word[16];
        snprintf(word, sizeof word, "%d", v);
        int32_t id = number_token(tok, word);
        if (id >= 0 && id < m->cfg.vocab_size) toks[n] = id, vals[n++] = v;
    }
    hr_status st = HR_OK;
    if (n < 2) st = hr_err(HR_ERR_RANGE, "the vocabulary has %d of the numbers 0..%d as single tokens", n, max_n);
    float *eff = st == HR_OK ? malloc(sizeof(float) * (size_t)n * dim) : NULL; // (n, dim) effective embeddings
    if (st == HR_OK && !eff) st = hr_err(HR_ERR_NOMEM, "out of memory");
    if (st == HR_OK) st = successor_effective_embeddings(ctx, toks, n, eff);
    if (st == HR_OK) st = hr_probe_mod10(eff, vals, n, dim, ridge, out);
    if (st == HR_OK && values) memcpy(values, vals, sizeof(int) * (size_t)n);
    hr_context_truncate(ctx, 0);
    free(eff), free(toks), free(vals);
    return st;
}
