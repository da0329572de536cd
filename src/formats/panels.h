/* The panel layout of weight matrices (formats layer): how the compute
 * kernels (engine/kernels.h) read a matrix W (d_out, d_in), in each number
 * format (hr_wtype, formats/dtype.h). Packing a matrix into panels, one
 * weight of panels, and one row of panels back in its file encoding live
 * here, below the model, so a model that holds a matrix only as panels (a
 * model built in memory, model/model.c) can give its rows back.
 *
 * Layout: ceil(d_out/16) panels of (d_in, 16), each matrix's first panel
 * 64-byte aligned (a panel's size need not be a multiple of 64); rows past
 * d_out are zero.
 * - HR_WT_F32: wp[(p*d_in + k)*16 + j] = W[16p + j][k] (4 bytes a weight);
 * - HR_WT_F16: one uint16 per weight at element (p*d_in + k)*16 + j (2
 *   bytes a weight);
 * - HR_WT_BF16: k in pairs (2m, 2m + 1), the layout VDPBF16PS reads: panel
 *   p is ceil(d_in/2) blocks of 16 dwords, dword j of block m = row 16p +
 *   j's pair, k = 2m in the high half and 2m + 1 in the low half (uint16
 *   element (p*d_in' + 2m)*16 + 2j + 1 and + 2j, d_in' = d_in rounded up to
 *   even; an odd d_in's last low halves zero). 2 bytes a weight; the exact
 *   kernels and the bf16 dot read the same copy;
 * - HR_WT_Q8_0: GGUF Q8_0 (a row's 32 consecutive k share one f16 scale,
 *   d_in a multiple of 32); panel p is d_in/32 blocks of 544 bytes, block b
 *   = 16 f16 scales (row 16p + j's scale for k in [32b, 32b + 32)) then 8
 *   k-quads of 64 bytes, the layout VPDPBUSD reads: byte 4j + i of quad m
 *   (dword j) is row 16p + j's weight at k = 32b + 4m + i, stored as the
 *   unsigned byte q + 128 (q ^ 0x80; rows past d_out hold q = 0, scale 0).
 *   17 bytes per 16 weights, the file's 34 per 32; the exact kernels and
 *   the int8 dot read the same copy.
 * - HR_WT_I8: per-channel int8 (one f32 scale per row, d_in a multiple of
 *   32): panel p is a header of 64 bytes, the 16 rows' scales as f32 (0
 *   past d_out), then d_in/32 blocks of the Q8_0 k-quads above without
 *   their scales (512 bytes). Weight = (float)q * scale rounded once to
 *   f32. Scales must be finite and zero or at least 2^-100 in magnitude
 *   (HR_I8_MIN_SCALE; the loaders refuse others), which keeps the kernels'
 *   scaled products normal. 1 byte a weight plus 4 a row.
 * Every layout is a lossless re-arrangement of the file's rows:
 * hr_panels_row_raw gives a row's file bytes back exactly. */
#ifndef HR_FORMATS_PANELS_H
#define HR_FORMATS_PANELS_H

#include <stddef.h>
#include <stdint.h>

#include "formats/dtype.h"

/* One packed matrix: panels in dtype t. */
typedef struct {
    const void *p;
    hr_wtype t;
} hr_panels;
static inline hr_panels hr_panels_f32(const float *p) {
    hr_panels r = {p, HR_WT_F32};
    return r;
}

/* Row of the rotate-half layout (HF Llama / Qwen2 Q and K) stored at
 * interleaved row r of a head of head_dim rows. */
static inline int hr_qk_rotate_half_src(int r, int head_dim) { return (r % 2) * (head_dim / 2) + r / 2; }

/* Bytes of the packed panels of a (d_out, d_in) matrix in dtype t; 0 when
 * Q8_0 or int8 and d_in is not a multiple of 32. */
size_t hr_packed_bytes(hr_wtype t, int d_out, int d_in);
/* Packs panels [p0, p1) of a matrix stored row-major in dtype t's file
 * encoding (row r's bytes at w + src_row(r) * row_bytes, src_row(r) = r
 * when perm_heads is 0, else rotate-half rows of perm_heads heads of
 * head_dim read as interleaved pairs) into wp (hr_packed_bytes). HR_WT_I8:
 * rows of d_in int8, row_scale[src_row(r)] their scales (NULL otherwise). */
void hr_pack_panels_t(hr_wtype t, void *wp, const void *w, const float *row_scale, size_t row_bytes, int perm_heads,
                      int head_dim, int d_out, int d_in, int p0, int p1);
/* Weight (r, k) of typed panels as the kernels see it (the dequantized f32). */
float hr_panels_get(hr_panels wp, int d_in, int r, int k);
/* Q8_0 and int8 panels: row r's int8 weight q at k, and *scale its scale
 * as f32 (Q8_0: the f16 scale of k's 32-block; int8: the row's). */
int hr_panels_get_int8(hr_panels wp, int d_in, int r, int k, float *scale);
/* Row r (< d_out) of panels in its file encoding: hr_wtype_row_bytes(t,
 * d_in) bytes (f32: 4 * d_in) into raw, the bytes hr_pack_panels_t packed;
 * HR_WT_I8: *scale its scale (scale may be NULL for the other types). */
void hr_panels_row_raw(hr_panels wp, int d_in, int r, void *raw, float *scale);
/* Row r of panels as f32 (d_in floats): the values the file's dequantizer
 * gives for that row (hr_dequant_to_f32, hr_dequant_i8), bit for bit. */
void hr_panels_row_f32(hr_panels wp, int d_in, int r, float *out);

#endif
