/* A program outside the tree, built by tests/test_install.sh against an
 * installed libheadroom (pkg-config, shared and static): loads a model,
 * runs hr_forward on a few tokens and compares every logit with the file
 * the in-tree static build wrote (tests/tools/hr_logits, same tokens).
 *
 * usage: consumer MODEL REFERENCE_LOGITS      exit 0 when all checks pass */
#include <headroom/headroom.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int32_t tokens[] = {1, 403, 407, 261, 1, 17, 300, 511};
enum { N = sizeof tokens / sizeof tokens[0] };

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: consumer MODEL REFERENCE_LOGITS\n");
        return 2;
    }
    int fails = 0;
    if (strcmp(hr_version(), HR_VERSION) != 0) {
        fprintf(stderr, "FAIL: library version %s, headers %s\n", hr_version(), HR_VERSION);
        fails++;
    }
    hr_model *m = NULL;
    hr_context *ctx = NULL;
    hr_context_params p = hr_context_default_params();
    p.n_threads = 2;
    if (hr_model_load(argv[1], &m) != HR_OK || hr_context_new(m, &p, &ctx) != HR_OK) {
        fprintf(stderr, "FAIL: %s\n", hr_last_error());
        hr_model_free(m);
        return 1;
    }
    int vocab = hr_config_vocab_size(hr_model_config(m));
    size_t n = (size_t)N * (size_t)vocab;
    float *logits = malloc(n * sizeof(float)); // (N, vocab)
    float *ref = malloc(n * sizeof(float));    // (N, vocab)
    FILE *fp = fopen(argv[2], "rb");
    size_t got = fp && ref ? fread(ref, sizeof(float), n, fp) : 0;
    if (fp) fclose(fp);
    if (!logits || got != n || hr_forward(ctx, tokens, N, logits, true) != HR_OK) {
        fprintf(stderr, "FAIL: forward or reference (%zu of %zu floats read): %s\n", got, n, hr_last_error());
        fails++;
    } else {
        /* Same objects, same tokens: the logits must agree bit for bit
         * (tolerance 0; the engine's results do not depend on threads). */
        size_t non_finite = 0;
        double max_diff = 0;
        for (size_t i = 0; i < n; i++) {
            if (!isfinite(logits[i])) non_finite++;
            double d = fabs((double)logits[i] - (double)ref[i]);
            if (isnan(d)) max_diff = INFINITY;
            else if (d > max_diff) max_diff = d;
        }
        printf(
            "version %s; %d tokens x %d logits; max |diff| vs the in-tree build %.3g (tolerance 0); %zu not finite\n",
            hr_version(), N, vocab, max_diff, non_finite);
        if (non_finite || max_diff != 0) fails++;
    }
    free(logits);
    free(ref);
    hr_context_free(ctx);
    hr_model_free(m);
    return fails ? 1 : 0;
}
