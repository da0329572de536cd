/* headroom — GGUF reader (spec v3; v2 accepted).
 *
 * File layout (little-endian):
 *   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv × { gguf_string key | u32 value_type | value }
 *   n_tensors × { gguf_string name | u32 n_dims (1..4) | u64 ne[n_dims]
 *                 | u32 ggml_type | u64 offset (relative to data section) }
 *   padding to `general.alignment` (u32 key, default 32; power of two)
 *   data section: tensors at their offsets (each offset a multiple of the
 *                 alignment)
 *   gguf_string = u64 length | bytes (no NUL)
 *   value = scalar of its type | string | array: u32 elem_type | u64 n | n × value
 *           (arrays may nest: an array of arrays)
 * ne[0] is the fastest-varying (innermost) dimension: a weight of a linear
 * layer mapping n_in -> n_out is stored with ne = {n_in, n_out}, rows of
 * length n_in, i.e. row-major (n_out, n_in).
 *
 * hr_gguf_open() validates everything up front — magic, version, counts,
 * string lengths, nesting depth, value types, dims and their products,
 * tensor byte sizes, offsets and alignment against the file size — so that
 * later getters never read outside the mapping. The file is memory-mapped;
 * tensor data pointers point into the mapping and live until hr_gguf_close().
 */
#ifndef HEADROOM_GGUF_H
#define HEADROOM_GGUF_H

#include "headroom/common.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    HR_GGUF_UINT8 = 0,
    HR_GGUF_INT8 = 1,
    HR_GGUF_UINT16 = 2,
    HR_GGUF_INT16 = 3,
    HR_GGUF_UINT32 = 4,
    HR_GGUF_INT32 = 5,
    HR_GGUF_FLOAT32 = 6,
    HR_GGUF_BOOL = 7,
    HR_GGUF_STRING = 8,
    HR_GGUF_ARRAY = 9,
    HR_GGUF_UINT64 = 10,
    HR_GGUF_INT64 = 11,
    HR_GGUF_FLOAT64 = 12,
    HR_GGUF_TYPE_COUNT
} hr_gguf_type;

/* ggml tensor types headroom reads (values are ggml's ids). */
typedef enum {
    HR_GGML_F32 = 0,
    HR_GGML_F16 = 1,
    HR_GGML_Q8_0 = 8, /* blocks of 32: f16 scale + 32 int8 */
    HR_GGML_BF16 = 30
} hr_ggml_type;

typedef struct hr_gguf hr_gguf;

typedef struct {
    const char *name; /* NUL-terminated copy, owned by the hr_gguf */
    uint32_t n_dims;  /* 1..4 */
    int64_t ne[4];    /* ne[0] innermost; unused dims are 1 */
    uint32_t type;    /* ggml type id (hr_ggml_type) */
    uint64_t offset;  /* relative to the data section */
    size_t nbytes;    /* validated: offset + nbytes <= data size */
    const void *data; /* into the mapping; NULL if the type is unknown */
} hr_gguf_tensor;

/* A view of one metadata value. Arrays expose their elements through
 * hr_gguf_arr_*; `raw` points into the mapping (may be unaligned). */
typedef struct {
    hr_gguf_type type;
    hr_gguf_type elem_type; /* for arrays */
    uint64_t n;             /* for arrays: element count; strings: length */
    const void *raw;        /* scalar bytes, string bytes, or first element */
    uint32_t node;          /* internal index (for nested arrays) */
} hr_gguf_value;

/* Opens and validates path. *out owned by caller: hr_gguf_close(). */
HR_API hr_status hr_gguf_open(const char *path, hr_gguf **out);
/* Same, on a caller-owned buffer that must outlive the handle (fuzzing). */
HR_API hr_status hr_gguf_open_memory(const void *data, size_t size, hr_gguf **out);
HR_API void hr_gguf_close(hr_gguf *g); /* NULL ok */

HR_API uint32_t hr_gguf_version(const hr_gguf *g);
HR_API uint32_t hr_gguf_alignment(const hr_gguf *g);

/* Metadata: number of keys, i-th key name (borrowed, NUL-terminated). */
HR_API uint64_t hr_gguf_n_kv(const hr_gguf *g);
HR_API const char *hr_gguf_key(const hr_gguf *g, uint64_t i);
/* Index of key or -1. */
HR_API int64_t hr_gguf_find(const hr_gguf *g, const char *key);
/* Value of the i-th key. */
HR_API hr_gguf_value hr_gguf_get(const hr_gguf *g, uint64_t i);

/* Typed getters by key. Integers convert between integer types when the
 * value fits; floats accept f32/f64. HR_ERR_NOT_FOUND if absent,
 * HR_ERR_FORMAT on a type mismatch (message names the key). */
HR_API hr_status hr_gguf_get_i64(const hr_gguf *g, const char *key, int64_t *out);
HR_API hr_status hr_gguf_get_f64(const hr_gguf *g, const char *key, double *out);
HR_API hr_status hr_gguf_get_bool(const hr_gguf *g, const char *key, bool *out);
/* String value: pointer into the mapping (NOT NUL-terminated) + length. */
HR_API hr_status hr_gguf_get_str(const hr_gguf *g, const char *key, const char **s, size_t *len);
HR_API hr_status hr_gguf_get_arr(const hr_gguf *g, const char *key, hr_gguf_value *out);

/* Array element access (v must be an array value). Integer/float getters
 * convert like the scalar ones. Index must be < v->n. */
HR_API hr_status hr_gguf_arr_i64(const hr_gguf *g, const hr_gguf_value *v, uint64_t i, int64_t *out);
HR_API hr_status hr_gguf_arr_f64(const hr_gguf *g, const hr_gguf_value *v, uint64_t i, double *out);
HR_API hr_status hr_gguf_arr_str(const hr_gguf *g, const hr_gguf_value *v, uint64_t i, const char **s, size_t *len);
/* Nested arrays: element i of an array of arrays. */
HR_API hr_status hr_gguf_arr_arr(const hr_gguf *g, const hr_gguf_value *v, uint64_t i, hr_gguf_value *out);

/* Tensors. */
HR_API uint64_t hr_gguf_n_tensors(const hr_gguf *g);
HR_API const hr_gguf_tensor *hr_gguf_tensor_at(const hr_gguf *g, uint64_t i);
/* NULL if absent. */
HR_API const hr_gguf_tensor *hr_gguf_find_tensor(const hr_gguf *g, const char *name);

/* Bytes of a tensor with n elements of the given ggml type; 0 if the type
 * is unknown or n is not a multiple of its block size. */
HR_API size_t hr_ggml_type_nbytes(uint32_t type, uint64_t n);
HR_API const char *hr_ggml_type_name(uint32_t type);

/* Name of a metadata value type ("uint32", "string", ...; "unknown"). */
HR_API const char *hr_gguf_type_name(uint32_t type);
/* Byte offset of the data section in the file (header end, aligned). */
HR_API size_t hr_gguf_data_offset(const hr_gguf *g);

/* Does the buffer start with the GGUF magic? (format detection) */
HR_API bool hr_gguf_is_gguf(const void *data, size_t size);

#ifdef __cplusplus
}
#endif
#endif
