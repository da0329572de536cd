/* Seeded random numbers: the one generator of the library (internal).
 *
 * A stream is xorshift64* (Vigna 2016, "An experimental exploration of
 * Marsaglia's xorshift generators, scrambled": x ^= x >> 12, x ^= x << 25,
 * x ^= x >> 27, output x * 0x2545F4914F6CDD1D) whose state is the first
 * splitmix64 output (Steele, Lea, Flood 2014) of the seed, so every seed,
 * 0 and small integers included, starts far from the all-zero state the
 * generator must avoid. Streams are the same on every machine: the sampler
 * (engine/sample.c) documents this stream, and the head lab, the evaluation
 * tasks and random KV plans draw their random inputs from it.
 *
 *     hr_rng r = hr_rng_new(seed);
 *     int i = (int)hr_rng_below(&r, n);
 */
#ifndef HR_CORE_RNG_H
#define HR_CORE_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s; /* xorshift64* state, never 0 */
} hr_rng;

/* One splitmix64 step: advances *state by the golden gamma and returns the
 * mixed value (also a good stream on its own: random-weight fixtures). */
uint64_t hr_splitmix64(uint64_t *state);

/* The stream of a seed. */
hr_rng hr_rng_new(uint64_t seed);
/* An independent stream per purpose (`stream`, e.g. a method's salt) of
 * one user seed, so that one use never shifts another's draws. */
hr_rng hr_rng_stream(uint64_t seed, uint64_t stream);

/* Next 64 random bits. */
uint64_t hr_rng_u64(hr_rng *r);
/* Uniform in [0, 1) from the top 53 bits. */
double hr_rng_double(hr_rng *r);
/* Uniform in [0, 1) from the top 24 bits. */
float hr_rng_float(hr_rng *r);
/* Uniform integer in [0, n) without modulo bias (rejection of the top
 * 2^64 mod n values); 0 when n <= 1. */
uint64_t hr_rng_below(hr_rng *r, uint64_t n);
/* Fisher-Yates shuffle of n elements of `size` bytes at base (from the last
 * element down, each swapped with a uniform earlier-or-equal one). */
void hr_rng_shuffle(hr_rng *r, void *base, size_t n, size_t size);

#endif
