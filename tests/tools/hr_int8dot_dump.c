/* hr_int8dot_dump: a random Q8_0 (or per-channel int8) matrix times random
 * activations by the int8 dot (kernels.h), for
 * tests/reference/check_int8dot_reference.py.
 *
 *   hr_int8dot_dump --n N --d-in K --d-out M --seed S --out FILE [--channel 1]
 *
 * FILE (little-endian): int32 n, d_in, d_out, kind (0 Q8_0, 1 per-channel
 * int8); x (n, d_in) f32; the matrix as GGUF Q8_0 rows (d_out, d_in / 32
 * blocks of 34 bytes), or as int8 rows (d_out, d_in) then their f32 scales
 * (d_out) (rows of very different sizes); y (n, d_out) f32
 * from hr_matmul_multi with int8 activation blocks (the CPU's path;
 * HEADROOM_CPU / HEADROOM_INT8_HW choose it). Activations span magnitudes
 * 1e-3 .. 1e2 per block, and token 0's second block is zero. */
#include "core/internal.h"
#include "engine/kernels.h"
#include "engine/kernels_isa.h"
#include "engine/pool.h"
#include "formats/dtype.h"
#include "headroom/context.h"
#include "typed_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    int n = 0, d_in = 0, d_out = 0;
    unsigned seed = 1;
    int channel = 0;
    const char *out = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--n") == 0) n = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--d-in") == 0) d_in = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--d-out") == 0) d_out = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seed") == 0) seed = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--out") == 0) out = argv[i + 1];
        else if (strcmp(argv[i], "--channel") == 0) channel = atoi(argv[i + 1]) != 0;
    }
    if (argc % 2 == 0 || !out || n < 1 || d_in < 64 || d_in % 32 || d_out < 1 || n > 4096 || d_in > 1 << 14 ||
        d_out > 1 << 14) {
        fprintf(stderr,
                "usage: hr_int8dot_dump --n N --d-in K (a multiple of 32, >= 64) --d-out M --seed S --out FILE\n");
        return 2;
    }
    float *x = malloc(sizeof(float) * (size_t)n * d_in);     /* (n, d_in) */
    float *w = malloc(sizeof(float) * (size_t)d_out * d_in); /* (d_out, d_in) */
    float *deq = malloc(sizeof(float) * (size_t)d_out * d_in);
    float *y = malloc(sizeof(float) * (size_t)n * d_out); /* (n, d_out) */
    hr_q8_act *xa = malloc(hr_q8_act_bytes(n, d_in));
    hr_pool *pool = NULL;
    if (!x || !w || !deq || !y || !xa || hr_pool_new(2, &pool) != HR_OK) {
        fprintf(stderr, "hr_int8dot_dump: out of memory\n");
        return 1;
    }
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < (size_t)n * d_in; i++) {
        s = s * 1664525u + 1013904223u;
        float scale = powf(10.0f, (float)((i / 32) % 6) - 3.0f); /* 1e-3 .. 1e2 by block */
        x[i] = ((float)(s >> 8) / 16777216.0f * 2.0f - 1.0f) * scale;
    }
    memset(x + 32, 0, 32 * sizeof(float));
    for (size_t i = 0; i < (size_t)d_out * d_in; i++) {
        s = s * 1664525u + 1013904223u;
        w[i] = ((float)(s >> 8) / 16777216.0f * 2.0f - 1.0f) * (1.0f + (float)(i % 97));
        if (channel) w[i] *= ldexpf(1.0f, (int)((i / (size_t)d_in) % 41) - 20); /* rows 2^-20 .. 2^20 */
    }
    hr_wtype t = channel ? HR_WT_I8 : HR_WT_Q8_0;
    unsigned char *enc = NULL;
    size_t rb = hr_t_encode(t, w, d_out, d_in, &enc, deq);
    size_t eb = rb * (size_t)d_out + (channel ? sizeof(float) * (size_t)d_out : 0); /* rows (+ scales) */
    hr_panels wp = {hr_t_pack_typed(t, enc, rb, 0, 0, d_out, d_in), t};
    hr_matmul_out o = {y, NULL, wp, d_out};
    hr_matmul_multi(pool, x, n, d_in, &o, 1, false, NULL, xa);
    FILE *f = fopen(out, "wb");
    int32_t hdr[4] = {n, d_in, d_out, channel};
    int ok = f && fwrite(hdr, sizeof hdr, 1, f) == 1 && fwrite(x, sizeof(float) * (size_t)n * d_in, 1, f) == 1 &&
             fwrite(enc, eb, 1, f) == 1 && fwrite(y, sizeof(float) * (size_t)n * d_out, 1, f) == 1;
    if (f && fclose(f) != 0) ok = 0;
    printf("%s path%s: %d x %d x %d -> %s\n", hr_cpu_path(), hr_cpu_int8_hw() ? " with VPDPBUSD" : ", emulated", n,
           d_in, d_out, out);
    free(x), free(w), free(deq), free(y), free(xa), free(enc), free((void *)wp.p);
    hr_pool_free(pool);
    return ok ? 0 : 1;
}
