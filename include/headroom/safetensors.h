/* headroom — safetensors reader.
 *
 * File layout (little-endian):
 *   u64 header_len | header_len bytes of UTF-8 JSON | data section
 *   JSON: { "<tensor name>": { "dtype": "F32", "shape": [d0, d1, ...],
 *                              "data_offsets": [begin, end] }, ...,
 *           "__metadata__": { "<key>": "<string>", ... } (optional) }
 *   Offsets are relative to the data section; shape is row-major (d0
 *   outermost), so an HF linear weight (out, in) has rows of length `in`.
 *
 * hr_st_open() validates everything up front: header length against the
 * file, JSON nesting depth (bounded before parsing), every entry's dtype,
 * shape (overflow-checked element count), byte count == elements × dtype
 * size, offsets inside the data section and not overlapping, duplicate
 * names, metadata values being strings. Tensor data pointers point into the
 * read-only mapping and live until hr_st_close().
 */
#ifndef HEADROOM_SAFETENSORS_H
#define HEADROOM_SAFETENSORS_H

#include "headroom/common.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    HR_ST_F64 = 0,
    HR_ST_F32,
    HR_ST_F16,
    HR_ST_BF16,
    HR_ST_I64,
    HR_ST_I32,
    HR_ST_I16,
    HR_ST_I8,
    HR_ST_U8,
    HR_ST_BOOL,
    HR_ST_F8_E4M3,
    HR_ST_F8_E5M2,
    HR_ST_DTYPE_COUNT
} hr_st_dtype;

#define HR_ST_MAX_DIMS 8

typedef struct {
    const char *name; /* NUL-terminated, owned by the handle */
    hr_st_dtype dtype;
    int n_dims; /* 0 (scalar) .. HR_ST_MAX_DIMS */
    int64_t shape[HR_ST_MAX_DIMS];
    uint64_t n_elements; /* product of shape (1 for a scalar) */
    size_t nbytes;       /* == n_elements × dtype size */
    size_t offset;       /* from the start of the file */
    const void *data;    /* into the mapping (may be unaligned) */
} hr_st_tensor;

typedef struct hr_safetensors hr_safetensors;

/* Opens, maps and validates path. *out owned by caller: hr_st_close(). */
HR_API hr_status hr_st_open(const char *path, hr_safetensors **out);
/* Same on a caller-owned buffer that must outlive the handle (tests). */
HR_API hr_status hr_st_open_memory(const void *data, size_t size, hr_safetensors **out);
HR_API void hr_st_close(hr_safetensors *st); /* NULL ok */

HR_API size_t hr_st_n_tensors(const hr_safetensors *st);
HR_API const hr_st_tensor *hr_st_tensor_at(const hr_safetensors *st, size_t i);    /* NULL if out of range */
HR_API const hr_st_tensor *hr_st_find(const hr_safetensors *st, const char *name); /* NULL if absent */
/* "__metadata__" value of key (borrowed, NUL-terminated) or NULL. */
HR_API const char *hr_st_metadata(const hr_safetensors *st, const char *key);

/* "F32", "BF16", ...; hr_st_dtype_from_name returns -1 for unknown names. */
HR_API const char *hr_st_dtype_name(hr_st_dtype d);
HR_API int hr_st_dtype_from_name(const char *name);
HR_API size_t hr_st_dtype_size(hr_st_dtype d);

/* Converts a F32/F16/BF16/F64 tensor to n_elements floats in dst;
 * HR_ERR_UNSUPPORTED for other dtypes. */
HR_API hr_status hr_st_to_f32(const hr_st_tensor *t, float *dst);
/* Tells the kernel the tensor's mapped pages are no longer needed (after a
 * converted copy was made), so a bf16 checkpoint does not stay resident
 * beside its f32 copy. Advisory; the data stays readable. */
HR_API void hr_st_release(const hr_safetensors *st, const hr_st_tensor *t);

#ifdef __cplusplus
}
#endif
#endif
