/* Number formats of stored weights (formats layer): f16 / bf16 <-> f32
 * and ggml tensor types -> f32. */
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
/* Converts n values of a ggml type (HR_GGML_*, gguf.h) to f32 (dst holds n floats). */
hr_status hr_dequant_to_f32(uint32_t type, const void *src, float *dst, size_t n);

#endif
