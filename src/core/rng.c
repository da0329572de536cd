/* Seeded random numbers (core/rng.h): splitmix64 seeding, xorshift64*. */
#include "core/rng.h"

#include <string.h>

uint64_t hr_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

hr_rng hr_rng_new(uint64_t seed) {
    uint64_t z = hr_splitmix64(&seed);
    hr_rng r = {z ? z : 0x2545F4914F6CDD1Dull}; /* splitmix64 outputs 0 for exactly one seed */
    return r;
}

hr_rng hr_rng_stream(uint64_t seed, uint64_t stream) {
    /* A second splitmix64 output decorrelates neighbouring stream ids. */
    uint64_t s = stream;
    return hr_rng_new(seed ^ hr_splitmix64(&s));
}

uint64_t hr_rng_u64(hr_rng *r) {
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

double hr_rng_double(hr_rng *r) { return (double)(hr_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

float hr_rng_float(hr_rng *r) { return (float)(hr_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

uint64_t hr_rng_below(hr_rng *r, uint64_t n) {
    if (n <= 1) return 0;
    uint64_t reject_below = (0 - n) % n; /* 2^64 mod n: values below it would favour small results */
    for (;;) {
        uint64_t x = hr_rng_u64(r);
        if (x >= reject_below) return x % n;
    }
}

void hr_rng_shuffle(hr_rng *r, void *base, size_t n, size_t size) {
    unsigned char *b = base;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)hr_rng_below(r, i), k = i - 1;
        if (j == k) continue;
        unsigned char *x = b + k * size, *y = b + j * size;
        for (size_t q = 0; q < size; q++) {
            unsigned char t = x[q];
            x[q] = y[q];
            y[q] = t;
        }
    }
}
