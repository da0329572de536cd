/* peak_fma: the machine's peak multiply-add rates, the ceiling for a
 * compute-bound prefill. Each of T threads runs 12 independent chains of
 * 512-bit FMAs (f32 x f32, what headroom's exact products issue) and of
 * VDPBF16PS (bf16 x bf16 pairs into f32, what llama.cpp's bf16 and
 * headroom's --bf16-dot products issue), and the totals are printed in
 * GFLOP/s (a multiply-add = 2 FLOP). x86-64 with AVX512F and AVX512_BF16
 * only; built by bench/bench_peak.sh with -march=native.
 * usage: peak_fma [THREADS (2)] */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { CHAINS = 12 };
static const long ITERS = 200000000;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static volatile float g_sink;

static void *run_fma(void *arg) {
    (void)arg;
    __m512 a[CHAINS], b = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-8f);
    for (int j = 0; j < CHAINS; j++) a[j] = _mm512_set1_ps(1.0f + (float)j * 1e-7f);
    for (long i = 0; i < ITERS; i++)
#pragma GCC unroll 12
        for (int j = 0; j < CHAINS; j++) a[j] = _mm512_fmadd_ps(a[j], b, c);
    float s = 0;
    for (int j = 0; j < CHAINS; j++) s += _mm512_reduce_add_ps(a[j]);
    g_sink = s;
    return NULL;
}

static void *run_bf16(void *arg) {
    (void)arg;
    __m512 a[CHAINS];
    __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3f80);
    for (int j = 0; j < CHAINS; j++) a[j] = _mm512_setzero_ps();
    for (long i = 0; i < ITERS; i++)
#pragma GCC unroll 12
        for (int j = 0; j < CHAINS; j++) a[j] = _mm512_dpbf16_ps(a[j], x, y);
    float s = 0;
    for (int j = 0; j < CHAINS; j++) s += _mm512_reduce_add_ps(a[j]);
    g_sink = s;
    return NULL;
}

/* GFLOP/s of T threads running fn, flop_per_op FLOP per instruction. */
static double rate(void *(*fn)(void *), int threads, double flop_per_op) {
    pthread_t th[64];
    double t = now();
    for (int i = 0; i < threads; i++)
        if (pthread_create(&th[i], NULL, fn, NULL) != 0) {
            fprintf(stderr, "peak_fma: cannot start thread %d\n", i);
            exit(1);
        }
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    t = now() - t;
    return (double)threads * (double)ITERS * CHAINS * flop_per_op / t / 1e9;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (threads < 1 || threads > 64) {
        fprintf(stderr, "usage: peak_fma [THREADS 1..64]\n");
        return 2;
    }
    printf("PEAK threads=%d f32_fma_gflops=%.1f\n", threads, rate(run_fma, threads, 32.0));
    printf("PEAK threads=%d bf16_dot_gflops=%.1f\n", threads, rate(run_bf16, threads, 64.0));
    return 0;
}
