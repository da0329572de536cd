#include "check.h"

#include "headroom/sample.h"

#include <math.h>
#include <string.h>

enum { N_DRAWS = 200000 };

static hr_sampler *make(float temperature, float top_p, uint64_t seed, int n_vocab) {
    hr_sampler_params p = hr_sampler_default_params();
    p.temperature = temperature;
    p.top_p = top_p;
    p.seed = seed;
    hr_sampler *s = NULL;
    hr_status st = hr_sampler_new(&p, n_vocab, &s);
    CHECK(st == HR_OK, "hr_sampler_new: %s", hr_last_error());
    return s;
}

/* softmax(logits / T) in double, written independently of the library. */
static void softmax_ref(const float *logits, int n, double t, double *p) {
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++) mx = fmax(mx, logits[i]);
    for (int i = 0; i < n; i++) sum += p[i] = exp((logits[i] - mx) / t);
    for (int i = 0; i < n; i++) p[i] /= sum;
}

/* Draw counts must sit within 5 binomial standard deviations of expected. */
static void check_frequencies(const long *count, const double *p, int n, const char *what) {
    for (int i = 0; i < n; i++) {
        double f = (double)count[i] / N_DRAWS, sd = sqrt(p[i] * (1 - p[i]) / N_DRAWS);
        CHECK(fabs(f - p[i]) <= 5 * sd + 1e-9, "%s: token %d drawn %.5f of the time, expected %.5f", what, i, f, p[i]);
    }
}

static void greedy_picks_the_argmax_with_the_lowest_id_on_ties(void) {
    float logits[6] = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f, NAN};
    hr_sampler *s = make(0.0f, 0.9f, 1, 6);
    for (int i = 0; i < 10; i++) CHECK(hr_sampler_sample(s, logits) == 1, "greedy should pick id 1");
    float neg[3] = {-5.0f, -2.0f, -3.0f};
    CHECK(hr_argmax(neg, 3) == 1, "argmax of all-negative values");
    float nan_first[3] = {NAN, -1.0f, -2.0f};
    CHECK(hr_argmax(nan_first, 3) == 1, "NaN must never win the argmax");
    hr_sampler_free(s);
}

static void tiny_top_p_always_picks_the_argmax(void) {
    float logits[8] = {1.0f, 1.2f, 0.3f, 1.25f, -2.0f, 1.1f, 0.0f, 1.24f};
    hr_sampler *s = make(1.0f, 1e-6f, 7, 8);
    int wrong = 0;
    for (int i = 0; i < 5000; i++) wrong += hr_sampler_sample(s, logits) != 3;
    CHECK(wrong == 0, "%d of 5000 draws missed the argmax", wrong);
    hr_sampler_free(s);
}

static void frequencies_match_the_tempered_softmax(void) {
    float logits[5] = {1.0f, 0.2f, -0.5f, 2.0f, 0.9f};
    const double t = 0.7;
    double p[5];
    softmax_ref(logits, 5, t, p);
    hr_sampler *s = make((float)t, 1.0f, 123, 5);
    long count[5] = {0};
    for (int i = 0; i < N_DRAWS; i++) {
        int32_t id = hr_sampler_sample(s, logits);
        CHECK(id >= 0 && id < 5, "id %d out of range", id);
        if (id >= 0 && id < 5) count[id]++;
    }
    check_frequencies(count, p, 5, "top_p 1");
    hr_sampler_free(s);
}

static void nucleus_frequencies_match_the_renormalised_nucleus(void) {
    float logits[6] = {2.0f, 1.5f, 0.1f, -1.0f, 1.0f, -3.0f};
    double p[6];
    softmax_ref(logits, 6, 1.0, p);
    /* ids sorted by probability: 0, 1, 4, 2, 3, 5; nucleus for 0.8 is the
     * shortest prefix reaching 0.8 */
    const int order[6] = {0, 1, 4, 2, 3, 5};
    double cum = 0, q[6] = {0};
    int n_keep = 0;
    while (cum < 0.8) cum += p[order[n_keep++]];
    for (int k = 0; k < n_keep; k++) q[order[k]] = p[order[k]] / cum;
    CHECK(n_keep == 3, "test setup: nucleus should hold 3 tokens, holds %d", n_keep);
    hr_sampler *s = make(1.0f, 0.8f, 99, 6);
    long count[6] = {0};
    for (int i = 0; i < N_DRAWS; i++) count[hr_sampler_sample(s, logits)]++;
    check_frequencies(count, q, 6, "top_p 0.8");
    hr_sampler_free(s);
}

static void same_seed_gives_the_same_sequence_and_other_seeds_differ(void) {
    float logits[16];
    for (int i = 0; i < 16; i++) logits[i] = (float)((i * 7) % 5) * 0.3f;
    hr_sampler *a = make(1.0f, 0.95f, 2024, 16), *b = make(1.0f, 0.95f, 2024, 16), *c = make(1.0f, 0.95f, 2025, 16);
    int32_t sa[200], sb[200], sc[200];
    for (int i = 0; i < 200; i++) {
        sa[i] = hr_sampler_sample(a, logits);
        sb[i] = hr_sampler_sample(b, logits);
        sc[i] = hr_sampler_sample(c, logits);
    }
    CHECK(memcmp(sa, sb, sizeof sa) == 0, "same seed gave different sequences");
    CHECK(memcmp(sa, sc, sizeof sa) != 0, "different seeds gave the same 200 draws");
    hr_sampler_reseed(c, 2024);
    int same = 1;
    for (int i = 0; i < 200; i++) same &= hr_sampler_sample(c, logits) == sa[i];
    CHECK(same, "reseeding did not restart the stream");
    hr_sampler_free(a);
    hr_sampler_free(b);
    hr_sampler_free(c);
}

static void seed_zero_still_draws_every_token(void) {
    float logits[4] = {0, 0, 0, 0};
    hr_sampler *s = make(1.0f, 1.0f, 0, 4);
    long count[4] = {0};
    for (int i = 0; i < 4000; i++) count[hr_sampler_sample(s, logits)]++;
    for (int i = 0; i < 4; i++) CHECK(count[i] > 800, "token %d drawn only %ld times of 4000", i, count[i]);
    hr_sampler_free(s);
}

static void nan_logits_are_never_sampled(void) {
    float logits[4] = {NAN, 0.0f, NAN, 0.0f};
    hr_sampler *s = make(1.0f, 1.0f, 5, 4);
    int bad = 0;
    for (int i = 0; i < 2000; i++) {
        int32_t id = hr_sampler_sample(s, logits);
        bad += id == 0 || id == 2;
    }
    CHECK(bad == 0, "NaN logits were drawn %d times", bad);
    hr_sampler_free(s);
}

static void out_of_range_parameters_are_rejected(void) {
    hr_sampler *s = NULL;
    hr_sampler_params bad[4];
    for (int i = 0; i < 4; i++) bad[i] = hr_sampler_default_params();
    bad[0].temperature = -0.5f;
    bad[1].top_p = 0.0f;
    bad[2].top_p = 1.5f;
    bad[3].temperature = NAN;
    for (int i = 0; i < 4; i++) {
        hr_status st = hr_sampler_new(&bad[i], 10, &s);
        CHECK(st == HR_ERR_INVALID_ARG && s == NULL, "case %d accepted (status %d)", i, st);
        CHECK(strstr(hr_last_error(), "sampler") != NULL, "message: %s", hr_last_error());
    }
    hr_sampler_params ok = hr_sampler_default_params();
    CHECK(hr_sampler_new(&ok, 0, &s) == HR_ERR_INVALID_ARG, "vocabulary of 0 accepted");
    hr_sampler_free(NULL);
}

/* The documented stream: four equal logits with top_p 1 have probabilities
 * exactly 1/4, so draw i is token floor(4 u_i) = the top two bits of the
 * i-th xorshift64* output from the splitmix64-seeded state. Expected ids
 * for seed 42 from an independent Python implementation of both generators
 * (splitmix64 step, then x ^= x>>12, x ^= x<<25, x ^= x>>27, x * 0x2545F4914F6CDD1D). */
static void the_random_stream_is_the_documented_xorshift64star_seeded_through_splitmix64(void) {
    static const int want[24] = {0, 2, 1, 1, 3, 2, 1, 3, 3, 2, 1, 2, 1, 1, 0, 1, 3, 3, 3, 1, 0, 3, 3, 1};
    float logits[4] = {0, 0, 0, 0};
    hr_sampler *s = make(1.0f, 1.0f, 42, 4);
    int bad = 0;
    for (int i = 0; s && i < 24; i++) bad += hr_sampler_sample(s, logits) != want[i];
    CHECK(s && bad == 0, "%d of 24 draws differ from the documented stream", bad);
    hr_sampler_free(s);
}

int main(void) {
    RUN(greedy_picks_the_argmax_with_the_lowest_id_on_ties);
    RUN(tiny_top_p_always_picks_the_argmax);
    RUN(frequencies_match_the_tempered_softmax);
    RUN(nucleus_frequencies_match_the_renormalised_nucleus);
    RUN(same_seed_gives_the_same_sequence_and_other_seeds_differ);
    RUN(seed_zero_still_draws_every_token);
    RUN(the_random_stream_is_the_documented_xorshift64star_seeded_through_splitmix64);
    RUN(nan_logits_are_never_sampled);
    RUN(out_of_range_parameters_are_rejected);
    TEST_MAIN_END();
}
