/* hr_bench_bf16dot: one bf16 weight matrix (random, packed as the forward
 * pass packs it) times n tokens on one thread, in the three arithmetics of
 * a bf16 panel: the exact f32-activation chain, the bf16 dot on VDPBF16PS
 * (where the CPU has AVX512-BF16) and the bf16 dot's emulated pair step.
 * Best of `repeats` calls each (the kernel alone, so the best is close to
 * the uncontended speed even on a shared machine), printed as RESULT lines.
 *
 *   hr_bench_bf16dot [--n 512] [--d-in 576] [--d-out 1536] [--repeats 30]
 */
#include "core/internal.h"
#include "engine/kernels.h"
#include "engine/kernels_isa.h"
#include "engine/pool.h"
#include "formats/dtype.h"
#include "headroom/context.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    int n = 512, d_in = 576, d_out = 1536, repeats = 30;
    for (int i = 1; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (strcmp(argv[i], "--n") == 0) n = v;
        else if (strcmp(argv[i], "--d-in") == 0) d_in = v;
        else if (strcmp(argv[i], "--d-out") == 0) d_out = v;
        else if (strcmp(argv[i], "--repeats") == 0) repeats = v;
        else n = -1;
    }
    if (argc % 2 == 0 || n < 1 || d_in < 1 || d_out < 1 || repeats < 1 || n > 1 << 16 || d_in > 1 << 16 ||
        d_out > 1 << 18) {
        fprintf(stderr, "usage: hr_bench_bf16dot [--n 512] [--d-in 576] [--d-out 1536] [--repeats 30]\n");
        return 2;
    }
    hr_pool *pool = NULL;
    float *x = malloc(sizeof(float) * (size_t)n * d_in);                    // (n, d_in)
    float *y = malloc(sizeof(float) * (size_t)n * d_out);                   // (n, d_out)
    uint16_t *w = malloc(sizeof(uint16_t) * (size_t)d_out * d_in);          // (d_out, d_in) bf16 rows
    uint32_t *xq = malloc(sizeof(uint32_t) * (size_t)n * ((d_in + 1) / 2)); // (n, (d_in + 1) / 2) pairs
    size_t pb = (hr_packed_bytes(HR_WT_BF16, d_out, d_in) + 63) & ~(size_t)63;
    void *wp = aligned_alloc(64, pb);
    if (hr_pool_new(1, &pool) != HR_OK || !x || !y || !w || !xq || !wp) {
        fprintf(stderr, "hr_bench_bf16dot: out of memory\n");
        return 1;
    }
    uint32_t s = 1;
    for (size_t i = 0; i < (size_t)n * d_in; i++) s = s * 1664525u + 1013904223u, x[i] = (float)(s >> 8) / 16777216.0f;
    for (size_t i = 0; i < (size_t)d_out * d_in; i++)
        s = s * 1664525u + 1013904223u, w[i] = hr_f32_to_bf16((float)(s >> 8) / 16777216.0f - 0.5f);
    hr_pack_panels_t(HR_WT_BF16, wp, w, NULL, sizeof(uint16_t) * (size_t)d_in, 0, 0, d_out, d_in, 0, (d_out + 15) / 16);
    hr_matmul_out o = {y, NULL, {wp, HR_WT_BF16}, d_out};
    printf("# %s path, 1 thread, n %d, d_in %d, d_out %d, best of %d\n", hr_cpu_path(), n, d_in, d_out, repeats);
    static const char *const names[3] = {"exact", "bf16dot-vdpbf16ps", "bf16dot-emulated"};
    for (int mode = 0; mode < 3; mode++) {
        if (mode == 1 && (hr_cpu_force_bf16_hw(1) != HR_OK || !hr_cpu_bf16_hw())) continue;
        if (mode == 2) hr_cpu_force_bf16_hw(0);
        double best = 1e30;
        for (int r = 0; r < repeats; r++) {
            double t0 = hr_time_now();
            hr_matmul_multi(pool, x, n, d_in, &o, 1, false, mode ? xq : NULL, NULL);
            double t = hr_time_now() - t0;
            best = t < best ? t : best;
        }
        printf("RESULT arith=%s n=%d d_in=%d d_out=%d best_ms=%.4f gflops=%.1f\n", names[mode], n, d_in, d_out,
               best * 1e3, 2.0 * n * d_in * d_out / best / 1e9);
    }
    free(x), free(y), free(w), free(xq), free(wp);
    hr_pool_free(pool);
    return 0;
}
