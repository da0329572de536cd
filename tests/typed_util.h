/* Test helper: a row-major f32 matrix in a file number format (bf16, f16:
 * the writers' round-to-nearest-even; Q8_0: ggml's quantizer, GGUF blocks;
 * per-channel int8: rows of int8 then the rows' f32 scales) and the
 * loader's dequantized f32 of it (hr_dequant_to_f32; int8: scale * q in
 * f32, computed here) — the independent reference the typed kernels must
 * match bit for bit. */
#ifndef HR_TEST_TYPED_UTIL_H
#define HR_TEST_TYPED_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/kernels.h"
#include "formats/dtype.h"
#include "headroom/gguf.h"

static inline uint32_t hr_t_ggml_type(hr_wtype t) {
    return t == HR_WT_BF16 ? HR_GGML_BF16 : t == HR_WT_F16 ? HR_GGML_F16 : t == HR_WT_Q8_0 ? HR_GGML_Q8_0 : HR_GGML_F32;
}

/* Encodes w (rows, cols) into *enc (rows * hr_wtype_row_bytes bytes; int8:
 * then rows f32 scales) and fills deq (rows, cols) with the dequantized
 * values; returns the row bytes. */
static inline size_t hr_t_encode(hr_wtype t, const float *w, int rows, int cols, unsigned char **enc, float *deq) {
    size_t rb = hr_wtype_row_bytes(t, cols), n = (size_t)rows * cols;
    unsigned char *e = malloc(rb * (size_t)rows + sizeof(float) * (size_t)rows + 1);
    if (t == HR_WT_I8) {
        float *sc = (float *)(void *)(e + rb * (size_t)rows);
        for (int r = 0; r < rows; r++) {
            int8_t *q = (int8_t *)e + (size_t)r * rb;
            sc[r] = hr_quantize_i8_row(w + (size_t)r * cols, q, (size_t)cols);
            for (int k = 0; k < cols; k++) deq[(size_t)r * cols + k] = sc[r] * (float)q[k];
        }
        *enc = e;
        return rb;
    }
    for (size_t i = 0; t != HR_WT_Q8_0 && i < n; i++) {
        uint16_t h = t == HR_WT_BF16 ? hr_f32_to_bf16(w[i]) : t == HR_WT_F16 ? hr_f32_to_f16(w[i]) : 0;
        if (t == HR_WT_F32) memcpy(e + 4 * i, w + i, 4);
        else memcpy(e + 2 * i, &h, 2);
    }
    if (t == HR_WT_Q8_0) hr_quantize_q8_0(w, e, n);
    hr_dequant_to_f32(hr_t_ggml_type(t), e, deq, n);
    *enc = e;
    return rb;
}

/* Typed panels of an encoded matrix (free with free()). */
static inline void *hr_t_pack_typed(hr_wtype t, const unsigned char *enc, size_t rb, int perm_heads, int head_dim,
                                    int rows, int cols) {
    size_t nb = hr_packed_bytes(t, rows, cols);
    void *wp = aligned_alloc(64, (nb + 63) & ~(size_t)63);
    const float *sc = t == HR_WT_I8 ? (const float *)(const void *)(enc + rb * (size_t)rows) : NULL;
    hr_pack_panels_t(t, wp, enc, sc, rb, perm_heads, head_dim, rows, cols, 0, (rows + 15) / 16);
    return wp;
}

#endif
