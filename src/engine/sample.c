#include "headroom/sample.h"

#include "core/internal.h"
#include "core/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float p;
    int32_t id;
} hr_cand;

struct hr_sampler {
    hr_sampler_params p;
    int n_vocab;
    hr_rng rng;    /* the documented stream (core/rng.h) */
    float *probs;  /* (n_vocab) softmax of logits / temperature */
    hr_cand *cand; /* (n_vocab) nucleus candidates, most probable first */
};

hr_sampler_params hr_sampler_default_params(void) {
    hr_sampler_params p = {.temperature = 1.0f, .top_p = 0.9f, .seed = 42};
    return p;
}

hr_status hr_sampler_new(const hr_sampler_params *p, int n_vocab, hr_sampler **out) {
    *out = NULL;
    hr_sampler_params d = p ? *p : hr_sampler_default_params();
    if (n_vocab <= 0) return hr_err(HR_ERR_INVALID_ARG, "sampler: vocabulary size %d must be positive", n_vocab);
    if (!(d.temperature >= 0.0f) || !isfinite(d.temperature))
        return hr_err(HR_ERR_INVALID_ARG, "sampler: temperature %g must be a finite number >= 0",
                      (double)d.temperature);
    if (!(d.top_p > 0.0f && d.top_p <= 1.0f))
        return hr_err(HR_ERR_INVALID_ARG, "sampler: top_p %g must be in (0, 1]", (double)d.top_p);
    hr_sampler *s = calloc(1, sizeof *s);
    if (!s) return hr_err(HR_ERR_NOMEM, "sampler: out of memory");
    s->probs = malloc((size_t)n_vocab * sizeof *s->probs);
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    if (!s->probs || !s->cand) {
        hr_sampler_free(s);
        return hr_err(HR_ERR_NOMEM, "sampler: out of memory for %d-token buffers", n_vocab);
    }
    s->p = d;
    s->n_vocab = n_vocab;
    s->rng = hr_rng_new(d.seed);
    *out = s;
    return HR_OK;
}

void hr_sampler_free(hr_sampler *s) {
    if (!s) return;
    free(s->probs);
    free(s->cand);
    free(s);
}

void hr_sampler_reseed(hr_sampler *s, uint64_t seed) {
    s->p.seed = seed;
    s->rng = hr_rng_new(seed);
}

int32_t hr_argmax(const float *x, int n) {
    int32_t best = -1;
    for (int i = 0; i < n; i++) {
        if (isnan(x[i])) continue;
        if (best < 0 || x[i] > x[best]) best = i;
    }
    return best < 0 ? 0 : best;
}

/* Fills s->probs with softmax(logits / T); returns false when no finite
 * distribution exists (all -inf/NaN, or a +inf logit), where the arg-max is
 * the only sensible answer. */
static bool softmax_temperature(hr_sampler *s, const float *logits) {
    int n = s->n_vocab;
    int32_t imax = hr_argmax(logits, n);
    float mx = logits[imax];
    if (!isfinite(mx)) return false;
    double inv_t = 1.0 / (double)s->p.temperature, sum = 0.0;
    for (int i = 0; i < n; i++) {
        float l = logits[i];
        double e = isnan(l) ? 0.0 : exp(((double)l - (double)mx) * inv_t);
        s->probs[i] = (float)e;
        sum += e;
    }
    float inv_sum = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) s->probs[i] *= inv_sum;
    return true;
}

static int by_prob_desc(const void *a, const void *b) {
    const hr_cand *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Draws id i with probability w_i / sum(w) from n (weight, id) pairs, or
 * from probs[0..n) when cand is NULL. */
static int32_t draw(hr_sampler *s, const hr_cand *cand, int n) {
    double mass = 0.0;
    for (int i = 0; i < n; i++) mass += cand ? cand[i].p : s->probs[i];
    double r = hr_rng_double(&s->rng) * mass, cdf = 0.0;
    for (int i = 0; i < n; i++) {
        cdf += cand ? cand[i].p : s->probs[i];
        if (r < cdf) return cand ? cand[i].id : i;
    }
    return cand ? cand[n - 1].id : n - 1; /* rounding left r at the very top */
}

/* Tokens below (1 - top_p) / (n - 1) cannot be in the nucleus: even all of
 * them together hold less than 1 - top_p. Dropping them before sorting keeps
 * the sort short for peaked distributions. */
static int32_t sample_nucleus(hr_sampler *s) {
    int n = s->n_vocab, n_cand = 0;
    float cutoff = n > 1 ? (1.0f - s->p.top_p) / (float)(n - 1) : 0.0f;
    for (int i = 0; i < n; i++)
        if (s->probs[i] >= cutoff) s->cand[n_cand++] = (hr_cand){s->probs[i], i};
    if (n_cand == 0)
        for (int i = 0; i < n; i++) s->cand[n_cand++] = (hr_cand){s->probs[i], i};
    qsort(s->cand, (size_t)n_cand, sizeof *s->cand, by_prob_desc);
    double cum = 0.0;
    int n_keep = n_cand;
    for (int i = 0; i < n_cand; i++) {
        cum += s->cand[i].p;
        if (cum >= (double)s->p.top_p) {
            n_keep = i + 1;
            break;
        }
    }
    return draw(s, s->cand, n_keep);
}

int32_t hr_sampler_sample(hr_sampler *s, const float *logits) {
    if (s->p.temperature == 0.0f) return hr_argmax(logits, s->n_vocab);
    if (!softmax_temperature(s, logits)) return hr_argmax(logits, s->n_vocab);
    if (s->p.top_p >= 1.0f) return draw(s, NULL, s->n_vocab);
    return sample_nucleus(s);
}
