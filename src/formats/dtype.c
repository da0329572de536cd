/* Number formats of stored weights: f16 / bf16 <-> f32, ggml types -> f32,
 * f32 -> GGUF Q8_0. */
#include "formats/dtype.h"

#include <math.h>
#include <string.h>

#include "headroom/gguf.h"

float hr_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) {
                mant <<= 1;
                exp--;
            }
            bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float hr_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t hr_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

uint16_t hr_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00;  /* NaN */
    if (ax >= 0x477ff000u) return sign | 0x7c00; /* rounds to >= 65520: inf */
    if (ax < 0x38800000u) {                      /* below 2^-14: subnormal or zero */
        float a;
        memcpy(&a, &ax, 4);
        /* a * 2^24 is the subnormal's integer mantissa; rint rounds to even. */
        return sign | (uint16_t)rintf(a * 16777216.0f);
    }
    uint32_t mant = ax & 0x7fffffu, exp = (ax >> 23) - 127 + 15;
    uint32_t h = (exp << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* carries into the exponent correctly */
    return sign | (uint16_t)h;
}

/* ggml's Q8_0 (blocks of QK8_0 = 32 values): d = amax / 127 with amax the
 * block's largest |x|, stored as f16; q[j] = roundf(x[j] * (1/d)) (0 when
 * d is 0), rounding half away from zero, within [-127, 127]. */
void hr_quantize_q8_0(const float *src, uint8_t *dst, size_t n) {
    for (size_t b = 0; b < n / 32; b++) {
        const float *x = src + b * 32;
        uint8_t *blk = dst + b * 34; // (2 + 32) bytes: f16 scale, 32 int8
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t h = hr_f32_to_f16(d);
        memcpy(blk, &h, 2);
        for (int j = 0; j < 32; j++) blk[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
    }
}

void hr_q8_0_round_trip(const float *src, float *dst, size_t n) {
    uint8_t blk[34]; // one block
    for (size_t b = 0; b < n / 32; b++) {
        hr_quantize_q8_0(src + b * 32, blk, 32);
        uint16_t h;
        memcpy(&h, blk, 2);
        float d = hr_f16_to_f32(h);
        for (int j = 0; j < 32; j++) dst[b * 32 + j] = d * (float)(int8_t)blk[2 + j];
    }
}

size_t hr_q8_0_first_bad_scale(const void *blocks, size_t n_blocks) {
    const uint8_t *s = blocks;
    for (size_t b = 0; b < n_blocks; b++) {
        uint16_t h;
        memcpy(&h, s + b * 34, 2);
        if ((h & 0x7c00) == 0x7c00) return b; /* exponent all ones: inf or NaN */
    }
    return n_blocks;
}

hr_status hr_dequant_to_f32(uint32_t type, const void *src, float *dst, size_t n) {
    const uint8_t *s = src;
    switch (type) {
    case HR_GGML_F32: memcpy(dst, src, n * sizeof(float)); return HR_OK;
    case HR_GGML_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = hr_f16_to_f32(h);
        }
        return HR_OK;
    case HR_GGML_BF16: /* the top half of the f32 bits: a loop the compiler vectorises */
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(dst + i, &bits, 4);
        }
        return HR_OK;
    case HR_GGML_Q8_0: /* blocks: f16 scale + 32 int8 */
    {
        if (n % 32) return hr_err(HR_ERR_FORMAT, "Q8_0 tensor of %zu values is not a multiple of 32", n);
        size_t bad = hr_q8_0_first_bad_scale(s, n / 32);
        if (bad < n / 32) return hr_err(HR_ERR_FORMAT, "Q8_0 block %zu has a non-finite scale", bad);
        for (size_t b = 0; b < n / 32; b++) {
            const uint8_t *blk = s + b * 34;
            uint16_t h;
            memcpy(&h, blk, 2);
            float d = hr_f16_to_f32(h);
            for (int i = 0; i < 32; i++) dst[b * 32 + i] = d * (float)(int8_t)blk[2 + i];
        }
        return HR_OK;
    }
    }
    return hr_err(HR_ERR_UNSUPPORTED, "tensor type %s (%u) is not supported", hr_ggml_type_name(type), type);
}

const char *hr_wtype_name(hr_wtype t) {
    static const char *const names[HR_WT_N] = {"f32", "bf16", "f16", "q8_0", "int8"};
    return t >= 0 && t < HR_WT_N ? names[t] : "?";
}

uint32_t hr_wtype_ggml(hr_wtype t) {
    if (t == HR_WT_I8) return UINT32_MAX;
    return t == HR_WT_BF16 ? HR_GGML_BF16 : t == HR_WT_F16 ? HR_GGML_F16 : t == HR_WT_Q8_0 ? HR_GGML_Q8_0 : HR_GGML_F32;
}

int hr_wtype_of_ggml(uint32_t ggml_type) {
    switch (ggml_type) {
    case HR_GGML_F32: return HR_WT_F32;
    case HR_GGML_BF16: return HR_WT_BF16;
    case HR_GGML_F16: return HR_WT_F16;
    case HR_GGML_Q8_0: return HR_WT_Q8_0;
    default: return -1;
    }
}

size_t hr_wtype_row_bytes(hr_wtype t, int d_in) {
    if (t == HR_WT_Q8_0) return d_in % 32 ? 0 : (size_t)(d_in / 32) * 34;
    if (t == HR_WT_I8) return d_in % 32 ? 0 : (size_t)d_in;
    return (size_t)d_in * (t == HR_WT_F32 ? 4 : 2);
}

bool hr_i8_scale_ok(float s) { return isfinite(s) && (s == 0.0f || fabsf(s) >= HR_I8_MIN_SCALE); }

void hr_dequant_i8(const int8_t *q, float scale, float *dst, size_t n) {
    for (size_t k = 0; k < n; k++) dst[k] = scale * (float)q[k];
}

float hr_quantize_i8_row(const float *src, int8_t *q, size_t n) {
    float amax = 0.0f;
    for (size_t k = 0; k < n; k++) amax = fmaxf(amax, fabsf(src[k]));
    float scale = amax / 127.0f;
    if (scale < HR_I8_MIN_SCALE) scale = 0.0f;
    for (size_t k = 0; k < n; k++) {
        float v = scale > 0.0f ? nearbyintf(src[k] / scale) : 0.0f; /* the default rounding: half to even */
        q[k] = (int8_t)(v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v);
    }
    return scale;
}
