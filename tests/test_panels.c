/* The panel layout (formats/panels.c) gives every row back: a matrix
 * encoded in its file format (tests/typed_util.h: the writers' rounding,
 * ggml's Q8_0 quantizer, per-channel int8), packed into panels, read back
 * row by row, equals the encoded rows byte for byte (hr_panels_row_raw;
 * int8: and the row's scale) and the file's dequantized f32 bit for bit
 * (hr_panels_row_f32). This is what lets a model built in memory keep its
 * matrices only as panels (hr_model_own_panels). Shapes: 37 rows (two
 * whole panels and a partial one), d_in 64 for every dtype and 70 / 71
 * for the 2- and 4-byte ones (an odd d_in leaves a half k-pair in bf16);
 * with and without rotate-half Q/K rows (perm_heads). Tolerance: none. */
#include "check.h"
#include "typed_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ROWS = 37, HEAD_DIM = 8 };

static void one_case(hr_wtype t, int cols, int perm_heads) {
    int rows = perm_heads ? perm_heads * HEAD_DIM : ROWS; /* whole heads when permuted */
    float *w = malloc(sizeof(float) * rows * cols), *deq = malloc(sizeof(float) * rows * cols); // (rows, cols)
    for (int i = 0; i < rows * cols; i++) w[i] = sinf(0.37f * (float)i) * (1.0f + (float)(i % 7)) * 0.3f;
    unsigned char *enc = NULL;
    size_t rb = hr_t_encode(t, w, rows, cols, &enc, deq);
    void *wp = hr_t_pack_typed(t, enc, rb, perm_heads, HEAD_DIM, rows, cols);
    hr_panels p = {wp, t};
    unsigned char *raw = malloc(rb);
    float *f = malloc(sizeof(float) * cols); // (cols)
    const float *sc = t == HR_WT_I8 ? (const float *)(const void *)(enc + rb * (size_t)rows) : NULL;
    int bad_raw = 0, bad_f32 = 0, bad_scale = 0;
    for (int r = 0; r < rows; r++) {
        int sr = perm_heads ? r / HEAD_DIM * HEAD_DIM + hr_qk_rotate_half_src(r % HEAD_DIM, HEAD_DIM) : r;
        float s = -1.0f;
        hr_panels_row_raw(p, cols, r, raw, &s);
        bad_raw += memcmp(raw, enc + (size_t)sr * rb, rb) != 0;
        if (sc) bad_scale += memcmp(&s, &sc[sr], 4) != 0;
        hr_panels_row_f32(p, cols, r, f);
        bad_f32 += memcmp(f, deq + (size_t)sr * cols, sizeof(float) * (size_t)cols) != 0;
    }
    printf("    %s, %d x %d%s: %d rows differ in bytes, %d in f32, %d scales\n", hr_wtype_name(t), rows, cols,
           perm_heads ? ", rotate-half" : "", bad_raw, bad_f32, bad_scale);
    CHECK(bad_raw == 0 && bad_f32 == 0 && bad_scale == 0, "%s d_in %d perm %d", hr_wtype_name(t), cols, perm_heads);
    free(w), free(deq), free(enc), free(wp), free(raw), free(f);
}

static void every_row_comes_back_from_panels_exactly_in_its_file_encoding(void) {
    static const hr_wtype types[] = {HR_WT_F32, HR_WT_BF16, HR_WT_F16, HR_WT_Q8_0, HR_WT_I8};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        one_case(types[i], 64, 0);
        one_case(types[i], 64, 4);
        if (types[i] != HR_WT_Q8_0 && types[i] != HR_WT_I8) one_case(types[i], 70, 0), one_case(types[i], 71, 0);
    }
}

int main(void) {
    RUN(every_row_comes_back_from_panels_exactly_in_its_file_encoding);
    TEST_MAIN_END();
}
