/* Number formats of stored weights (formats layer): f16 / bf16 <-> f32
 * and ggml tensor types -> f32; f32 -> Q8_0. Q8_0 blocks whose
 * scale is not finite are HR_ERR_FORMAT. */
#ifndef HR_FORMATS_DTYPE_H
#define HR_FORMATS_DTYPE_H

#include "core/internal.h"

#include <stddef.h>
#include <stdint.h>

float hr_f16_to_f32(uint16_t h);
float hr_bf16_to_f32(uint16_t h);
/* Round-to-nearest-even conversions used by the writers. */
uint16_t hr_f32_to_f16(float f);
uint16_t hr_f32_to_bf16(float f);
/* GGUF Q8_0 (ggml's block_q8_0; see dtype.c): n values (a multiple of 32)
 * into n / 32 blocks of 34 bytes (f16 scale, 32 int8) at dst. Inputs must
 * be finite. */
void hr_quantize_q8_0(const float *src, uint8_t *dst, size_t n);
/* dst = dequantize(quantize_q8_0(src)): what a Q8_0 file holds, as f32
 * (n a multiple of 32; dst may equal src). */
void hr_q8_0_round_trip(const float *src, float *dst, size_t n);
/* The first of n_blocks Q8_0 blocks (34 bytes each) whose f16 scale is
 * not finite, or n_blocks when every scale is finite. */
size_t hr_q8_0_first_bad_scale(const void *blocks, size_t n_blocks);
/* The number formats the compute kernels read in place (engine/kernels.h's
 * typed panels): weights keep their file's format. */
/* HR_WT_I8: per-channel int8, a row of int8 q with one f32 scale per row
 * kept beside the rows (weight = scale * (float)q rounded to f32; Hugging
 * Face compressed-tensors "int-quantized" channel weights, see
 * io/hf_load.c). GGUF has no such type. */
typedef enum { HR_WT_F32 = 0, HR_WT_BF16 = 1, HR_WT_F16 = 2, HR_WT_Q8_0 = 3, HR_WT_I8 = 4, HR_WT_N = 5 } hr_wtype;
/* "f32", "bf16", "f16", "q8_0", "int8". */
const char *hr_wtype_name(hr_wtype t);
/* The ggml type (HR_GGML_*) of t (HR_WT_I8: UINT32_MAX, none); and t of a
 * ggml type (-1: none). */
uint32_t hr_wtype_ggml(hr_wtype t);
int hr_wtype_of_ggml(uint32_t ggml_type);
/* Bytes of one stored row of d_in weights in the file encoding (Q8_0: GGUF
 * blocks of 34 bytes; int8: d_in, the scale apart); 0 when Q8_0 or int8
 * and d_in is not a multiple of 32. */
size_t hr_wtype_row_bytes(hr_wtype t, int d_in);
/* The smallest nonzero |scale| a per-channel int8 row may have (2^-100),
 * and whether s is such a scale (finite, zero or at least that). */
#define HR_I8_MIN_SCALE 0x1p-100f
bool hr_i8_scale_ok(float s);
/* Per-channel int8: scale * (float)q[k] for k < n, into dst. */
void hr_dequant_i8(const int8_t *q, float scale, float *dst, size_t n);
/* Quantizes a row of n finite floats per channel, symmetric: scale =
 * max |x| / 127 in f32, q = round-half-to-even(x / scale) (within
 * [-127, 127]); a row whose scale would be below HR_I8_MIN_SCALE (all
 * zero, or |x| < 2^-93) gets scale 0 and q = 0. Returns the scale. */
float hr_quantize_i8_row(const float *src, int8_t *q, size_t n);
/* Converts n values of a ggml type (HR_GGML_*, gguf.h) to f32 (dst holds n floats). */
hr_status hr_dequant_to_f32(uint32_t type, const void *src, float *dst, size_t n);

#endif
