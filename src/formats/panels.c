/* The panel layout of weight matrices (see panels.h): packing, one weight,
 * one row back. */
#include "formats/panels.h"

#include <stdbool.h>
#include <string.h>

/* One panel's 32-block: Q8_0 16 f16 scales, (8, 16, 4) u8 = q + 128; per-channel
 * int8 the same k-quads after a panel header of 16 f32 row scales. */
enum { Q8_BLOCK_BYTES = 32 + 32 * 16, I8_HDR = 64, I8_BLOCK_BYTES = 32 * 16 };

/* Byte offset in a Q8_0 block of the weight of row j of its panel at k (k
 * within the block): 4-k quads of 16 rows, row j's 4 k at dword j. */
static size_t q8_offset(int j, int kk) { return 32 + (size_t)(kk / 4) * 64 + (size_t)j * 4 + (size_t)(kk % 4); }
/* The same in a per-channel int8 panel, from the panel's start. */
static size_t i8_offset(int j, int k) { return I8_HDR + (size_t)(k / 32) * I8_BLOCK_BYTES + q8_offset(j, k % 32) - 32; }
/* Byte offset of weight (row j of its panel, k) in a bf16 panel: k-pairs
 * of 64 bytes, row j's pair at dword j with k (even) in the high half. */
static size_t bf16_offset(int j, int k) { return ((size_t)(k / 2) * 32 + 2 * (size_t)j + (size_t)(1 - (k & 1))) * 2; }

size_t hr_packed_bytes(hr_wtype t, int d_out, int d_in) {
    size_t panels = (size_t)((d_out + 15) / 16);
    if (t == HR_WT_Q8_0) return d_in % 32 ? 0 : panels * (size_t)(d_in / 32) * Q8_BLOCK_BYTES;
    if (t == HR_WT_I8) return d_in % 32 ? 0 : panels * (I8_HDR + (size_t)(d_in / 32) * I8_BLOCK_BYTES);
    if (t == HR_WT_BF16) return panels * 16 * (size_t)(d_in + (d_in & 1)) * 2; /* whole k-pairs */
    return panels * 16 * (size_t)d_in * (t == HR_WT_F32 ? 4 : 2);
}

static uint32_t load32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* One whole panel (16 rows, src[j] row j's bytes) written k-major: each
 * destination line is filled in one pass over the 16 rows (the generic
 * loop below writes one weight at a time, ~15x slower on a big model). */
static void pack_whole_panel(hr_wtype t, unsigned char *dst, const unsigned char *const src[16], const float sc[16],
                             int d_in) {
    if (t == HR_WT_BF16) { /* dword j of pair m: k = 2m high, 2m + 1 low: the row's two bf16 swapped */
        int pairs = d_in / 2;
        for (int m = 0; m < pairs; m++)
            for (int j = 0; j < 16; j++) {
                uint32_t v = load32(src[j] + 4 * (size_t)m);
                v = v << 16 | v >> 16;
                memcpy(dst + ((size_t)m * 16 + (size_t)j) * 4, &v, 4);
            }
        if (d_in & 1)
            for (int j = 0; j < 16; j++) {
                uint16_t h;
                memcpy(&h, src[j] + 2 * (size_t)(d_in - 1), 2);
                uint32_t v = (uint32_t)h << 16;
                memcpy(dst + ((size_t)pairs * 16 + (size_t)j) * 4, &v, 4);
            }
    } else if (t == HR_WT_F32) {
        for (int k = 0; k < d_in; k++)
            for (int j = 0; j < 16; j++) memcpy(dst + ((size_t)k * 16 + (size_t)j) * 4, src[j] + 4 * (size_t)k, 4);
    } else if (t == HR_WT_F16) {
        for (int k = 0; k < d_in; k++)
            for (int j = 0; j < 16; j++) memcpy(dst + ((size_t)k * 16 + (size_t)j) * 2, src[j] + 2 * (size_t)k, 2);
    } else { /* Q8_0 blocks (scales, then k-quads), int8 (a scale header, then the quads) */
        bool q8 = t == HR_WT_Q8_0;
        if (!q8)
            for (int j = 0; j < 16; j++) memcpy(dst + 4 * (size_t)j, &sc[j], 4);
        for (int b = 0; b < d_in / 32; b++) {
            unsigned char *blk = q8 ? dst + (size_t)b * Q8_BLOCK_BYTES : dst + I8_HDR + (size_t)b * I8_BLOCK_BYTES;
            unsigned char *quads = q8 ? blk + 32 : blk;
            for (int j = 0; j < 16; j++) {
                const unsigned char *sb = q8 ? src[j] + (size_t)b * 34 : src[j] + (size_t)b * 32;
                if (q8) blk[2 * j] = sb[0], blk[2 * j + 1] = sb[1], sb += 2;
                for (int m = 0; m < 8; m++) {
                    uint32_t v = load32(sb + 4 * m) ^ 0x80808080u;
                    memcpy(quads + (size_t)m * 64 + 4 * (size_t)j, &v, 4);
                }
            }
        }
    }
}

void hr_pack_panels_t(hr_wtype t, void *wp, const void *w, const float *row_scale, size_t row_bytes, int perm_heads,
                      int head_dim, int d_out, int d_in, int p0, int p1) {
    size_t ps = hr_packed_bytes(t, 16, d_in);
    for (int p = p0; p < p1; p++) {
        unsigned char *dst = (unsigned char *)wp + (size_t)p * ps;
        if (p * 16 + 16 <= d_out) {
            const unsigned char *rows[16];
            float sc[16] = {0};
            for (int j = 0; j < 16; j++) {
                int r = p * 16 + j, sr = r;
                if (perm_heads) sr = r / head_dim * head_dim + hr_qk_rotate_half_src(r % head_dim, head_dim);
                rows[j] = (const unsigned char *)w + (size_t)sr * row_bytes;
                if (t == HR_WT_I8) sc[j] = row_scale[sr];
            }
            pack_whole_panel(t, dst, rows, sc, d_in);
            continue;
        }
        for (int j = 0; j < 16; j++) {
            int r = p * 16 + j, sr = r;
            if (r < d_out && perm_heads) sr = r / head_dim * head_dim + hr_qk_rotate_half_src(r % head_dim, head_dim);
            const unsigned char *src = r < d_out ? (const unsigned char *)w + (size_t)sr * row_bytes : NULL;
            if (t == HR_WT_I8) {
                float sc = src ? row_scale[sr] : 0.0f;
                memcpy(dst + 4 * (size_t)j, &sc, 4);
                for (int k = 0; k < d_in; k++) dst[i8_offset(j, k)] = (unsigned char)((src ? src[k] : 0) ^ 0x80);
            } else if (t == HR_WT_Q8_0) {
                for (int b = 0; b < d_in / 32; b++) {
                    unsigned char *blk = dst + (size_t)b * Q8_BLOCK_BYTES;
                    const unsigned char *sb = src ? src + (size_t)b * 34 : NULL;
                    blk[2 * j] = sb ? sb[0] : 0, blk[2 * j + 1] = sb ? sb[1] : 0;
                    for (int kk = 0; kk < 32; kk++)
                        blk[q8_offset(j, kk)] = (unsigned char)((sb ? sb[2 + kk] : 0) ^ 0x80);
                }
            } else if (t == HR_WT_BF16) {
                for (int k = 0; k < d_in + (d_in & 1); k++) { /* the odd k past d_in: zero */
                    unsigned char *d = dst + bf16_offset(j, k);
                    if (src && k < d_in) memcpy(d, src + (size_t)k * 2, 2);
                    else memset(d, 0, 2);
                }
            } else {
                size_t es = t == HR_WT_F32 ? 4 : 2; /* element size */
                for (int k = 0; k < d_in; k++) {
                    unsigned char *d = dst + ((size_t)k * 16 + j) * es;
                    if (src) memcpy(d, src + (size_t)k * es, es);
                    else memset(d, 0, es);
                }
            }
        }
    }
}

/* The panel holding row r of (., d_in) panels in dtype t. */
static const unsigned char *panel_of(hr_panels wp, int d_in, int r) {
    return (const unsigned char *)wp.p + (size_t)(r / 16) * hr_packed_bytes(wp.t, 16, d_in);
}

float hr_panels_get(hr_panels wp, int d_in, int r, int k) {
    const unsigned char *pan = panel_of(wp, d_in, r);
    int j = r % 16;
    uint16_t h;
    switch (wp.t) {
    case HR_WT_BF16: memcpy(&h, pan + bf16_offset(j, k), 2); return hr_bf16_to_f32(h);
    case HR_WT_F16: memcpy(&h, pan + ((size_t)k * 16 + j) * 2, 2); return hr_f16_to_f32(h);
    case HR_WT_Q8_0:
    case HR_WT_I8: { /* the dequantizers' product: scale * (float)q */
        float sc;
        int q = hr_panels_get_int8(wp, d_in, r, k, &sc);
        return sc * (float)q;
    }
    default: {
        float f;
        memcpy(&f, pan + ((size_t)k * 16 + j) * 4, 4);
        return f;
    }
    }
}

int hr_panels_get_int8(hr_panels wp, int d_in, int r, int k, float *scale) {
    const unsigned char *pan = panel_of(wp, d_in, r);
    if (wp.t == HR_WT_I8) {
        memcpy(scale, pan + 4 * (size_t)(r % 16), 4);
        return (int8_t)(pan[i8_offset(r % 16, k)] ^ 0x80);
    }
    const unsigned char *blk = pan + (size_t)(k / 32) * Q8_BLOCK_BYTES;
    uint16_t h;
    memcpy(&h, blk + 2 * (r % 16), 2);
    *scale = hr_f16_to_f32(h);
    return (int8_t)(blk[q8_offset(r % 16, k % 32)] ^ 0x80);
}

void hr_panels_row_raw(hr_panels wp, int d_in, int r, void *raw, float *scale) {
    const unsigned char *pan = panel_of(wp, d_in, r);
    unsigned char *o = raw;
    int j = r % 16;
    switch (wp.t) {
    case HR_WT_BF16:
        for (int k = 0; k < d_in; k++) memcpy(o + (size_t)k * 2, pan + bf16_offset(j, k), 2);
        return;
    case HR_WT_Q8_0:
        for (int b = 0; b < d_in / 32; b++) {
            const unsigned char *blk = pan + (size_t)b * Q8_BLOCK_BYTES;
            unsigned char *ob = o + (size_t)b * 34;
            ob[0] = blk[2 * j], ob[1] = blk[2 * j + 1];
            for (int kk = 0; kk < 32; kk++) ob[2 + kk] = (unsigned char)(blk[q8_offset(j, kk)] ^ 0x80);
        }
        return;
    case HR_WT_I8:
        if (scale) memcpy(scale, pan + 4 * (size_t)j, 4);
        for (int k = 0; k < d_in; k++) o[k] = (unsigned char)(pan[i8_offset(j, k)] ^ 0x80);
        return;
    default: {
        size_t es = wp.t == HR_WT_F32 ? 4 : 2;
        for (int k = 0; k < d_in; k++) memcpy(o + (size_t)k * es, pan + ((size_t)k * 16 + j) * es, es);
        return;
    }
    }
}

void hr_panels_row_f32(hr_panels wp, int d_in, int r, float *out) {
    const unsigned char *pan = panel_of(wp, d_in, r);
    int j = r % 16;
    uint16_t h;
    switch (wp.t) {
    case HR_WT_F32:
        for (int k = 0; k < d_in; k++) memcpy(out + k, pan + ((size_t)k * 16 + j) * 4, 4);
        return;
    case HR_WT_BF16:
        for (int k = 0; k < d_in; k++) memcpy(&h, pan + bf16_offset(j, k), 2), out[k] = hr_bf16_to_f32(h);
        return;
    case HR_WT_F16:
        for (int k = 0; k < d_in; k++) memcpy(&h, pan + ((size_t)k * 16 + j) * 2, 2), out[k] = hr_f16_to_f32(h);
        return;
    case HR_WT_Q8_0: /* the dequantizer's product: (float)scale * (float)q */
        for (int b = 0; b < d_in / 32; b++) {
            const unsigned char *blk = pan + (size_t)b * Q8_BLOCK_BYTES;
            memcpy(&h, blk + 2 * j, 2);
            float d = hr_f16_to_f32(h);
            for (int kk = 0; kk < 32; kk++) out[b * 32 + kk] = d * (float)(int8_t)(blk[q8_offset(j, kk)] ^ 0x80);
        }
        return;
    default: { /* int8: scale * (float)q */
        float sc;
        memcpy(&sc, pan + 4 * (size_t)j, 4);
        for (int k = 0; k < d_in; k++) out[k] = sc * (float)(int8_t)(pan[i8_offset(j, k)] ^ 0x80);
        return;
    }
    }
}
