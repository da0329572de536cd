/* headroom — token sampling from logits.
 *
 * temperature == 0 is greedy decoding: the arg-max logit, the lowest id on
 * ties, no randomness. Otherwise the logits are divided by the temperature,
 * turned into probabilities with a softmax, restricted to the nucleus (the
 * smallest set of most-probable tokens whose mass reaches top_p; ties in
 * probability ordered by id) and one token is drawn from the renormalised
 * nucleus. The random stream is xorshift64* seeded through splitmix64, so a
 * seed gives the same token sequence on every machine for the same logits.
 * NaN logits are treated as -infinity.
 */
#ifndef HEADROOM_SAMPLE_H
#define HEADROOM_SAMPLE_H

#include "headroom/common.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    float temperature; /* >= 0; 0 = greedy (default 1.0) */
    float top_p;       /* nucleus mass in (0, 1]; 1 = whole vocabulary (default 0.9) */
    uint64_t seed;     /* any value, 0 included (default 42) */
} hr_sampler_params;

HR_API hr_sampler_params hr_sampler_default_params(void);

typedef struct hr_sampler hr_sampler;

/* Sampler for logits of n_vocab floats. Out-of-range parameters are
 * HR_ERR_INVALID_ARG. *out owned by caller: hr_sampler_free(). */
HR_API hr_status hr_sampler_new(const hr_sampler_params *p, int n_vocab, hr_sampler **out);
HR_API void hr_sampler_free(hr_sampler *s); /* NULL ok */

/* Restarts the random stream as if the sampler had been created with seed. */
HR_API void hr_sampler_reseed(hr_sampler *s, uint64_t seed);

/* Picks a token id in [0, n_vocab) from logits (n_vocab floats, not
 * modified). Advances the random stream unless greedy. */
HR_API int32_t hr_sampler_sample(hr_sampler *s, const float *logits);

/* Index of the largest of n values, lowest index on ties; NaN never wins
 * unless all values are NaN (then 0). */
HR_API int32_t hr_argmax(const float *x, int n);

#ifdef __cplusplus
}
#endif
#endif
