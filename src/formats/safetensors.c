/* safetensors reader: validates the JSON header completely before any
 * tensor is handed out (layout in include/headroom/safetensors.h). */
#include "headroom/safetensors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/internal.h"
#include "core/json.h"
#include "core/limits.h"
#include "headroom/gguf.h"
#include "formats/dtype.h"

/* The format's own reference implementation caps the header at 100 MB. */
/* Valid headers nest 3 deep (object > entry > shape); anything deeper is
 * rejected before cJSON recurses into it. */
/* Largest integer a JSON number (a double) holds exactly. */
#define MAX_JSON_INT 9007199254740992.0

struct hr_safetensors {
    hr_mapped_file file; /* owned mapping (empty for open_memory) */
    const uint8_t *base;
    size_t size;
    size_t data_start;     /* 8 + header_len */
    hr_st_tensor *tensors; /* (n) sorted by name */
    size_t n;
    char **meta_keys, **meta_vals; /* (n_meta) */
    size_t n_meta;
};

static const struct {
    const char *name;
    size_t size;
} k_dtypes[HR_ST_DTYPE_COUNT] = {
    [HR_ST_F64] = {"F64", 8},   [HR_ST_F32] = {"F32", 4},         [HR_ST_F16] = {"F16", 2},
    [HR_ST_BF16] = {"BF16", 2}, [HR_ST_I64] = {"I64", 8},         [HR_ST_I32] = {"I32", 4},
    [HR_ST_I16] = {"I16", 2},   [HR_ST_I8] = {"I8", 1},           [HR_ST_U8] = {"U8", 1},
    [HR_ST_BOOL] = {"BOOL", 1}, [HR_ST_F8_E4M3] = {"F8_E4M3", 1}, [HR_ST_F8_E5M2] = {"F8_E5M2", 1},
};

const char *hr_st_dtype_name(hr_st_dtype d) { return (unsigned)d < HR_ST_DTYPE_COUNT ? k_dtypes[d].name : "unknown"; }
size_t hr_st_dtype_size(hr_st_dtype d) { return (unsigned)d < HR_ST_DTYPE_COUNT ? k_dtypes[d].size : 0; }
int hr_st_dtype_from_name(const char *name) {
    for (int i = 0; i < HR_ST_DTYPE_COUNT; i++)
        if (strcmp(k_dtypes[i].name, name) == 0) return i;
    return -1;
}

void hr_st_close(hr_safetensors *st) {
    if (!st) return;
    for (size_t i = 0; i < st->n; i++) free((char *)st->tensors[i].name);
    free(st->tensors);
    for (size_t i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_vals[i]);
    }
    free(st->meta_keys);
    free(st->meta_vals);
    hr_unmap_file(&st->file);
    free(st);
}

/* A JSON number that is a non-negative integer exactly representable. */
static bool json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return false;
    double v = j->valuedouble;
    if (!(v >= 0 && v <= MAX_JSON_INT) || floor(v) != v) return false;
    *out = (uint64_t)v;
    return true;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static hr_status parse_metadata(hr_safetensors *st, const cJSON *meta) {
    if (!cJSON_IsObject(meta)) return hr_err(HR_ERR_FORMAT, "safetensors __metadata__ is not an object");
    size_t n = (size_t)cJSON_GetArraySize(meta);
    st->meta_keys = calloc(n ? n : 1, sizeof(char *));
    st->meta_vals = calloc(n ? n : 1, sizeof(char *));
    if (!st->meta_keys || !st->meta_vals) return hr_err(HR_ERR_NOMEM, "out of memory");
    const cJSON *kv;
    cJSON_ArrayForEach(kv, meta) {
        if (!cJSON_IsString(kv))
            return hr_err(HR_ERR_FORMAT, "safetensors __metadata__ value '%s' is not a string", kv->string);
        st->meta_keys[st->n_meta] = dup_str(kv->string);
        st->meta_vals[st->n_meta] = dup_str(kv->valuestring);
        st->n_meta++;
        if (!st->meta_keys[st->n_meta - 1] || !st->meta_vals[st->n_meta - 1])
            return hr_err(HR_ERR_NOMEM, "out of memory");
    }
    return HR_OK;
}

static hr_status parse_shape(const char *name, const cJSON *shape, hr_st_tensor *t) {
    if (!cJSON_IsArray(shape)) return hr_err(HR_ERR_FORMAT, "tensor '%s': shape is not an array", name);
    int nd = cJSON_GetArraySize(shape);
    if (nd > HR_ST_MAX_DIMS)
        return hr_err(HR_ERR_FORMAT, "tensor '%s' has %d dimensions (at most %d)", name, nd, HR_ST_MAX_DIMS);
    t->n_dims = nd;
    size_t count = 1;
    int i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape) {
        uint64_t v;
        if (!json_uint(d, &v) || v > INT64_MAX)
            return hr_err(HR_ERR_FORMAT, "tensor '%s': shape[%d] is not a non-negative integer", name, i);
        if (!hr_mul_size(count, (size_t)v, &count))
            return hr_err(HR_ERR_FORMAT, "tensor '%s': element count of its shape overflows", name);
        t->shape[i++] = (int64_t)v;
    }
    t->n_elements = count;
    if (!hr_mul_size(count, k_dtypes[t->dtype].size, &t->nbytes))
        return hr_err(HR_ERR_FORMAT, "tensor '%s': byte size of its shape overflows", name);
    return HR_OK;
}

static hr_status parse_entry(hr_safetensors *st, const cJSON *e, hr_st_tensor *t) {
    const char *name = e->string;
    if (!name || !*name) return hr_err(HR_ERR_FORMAT, "safetensors header has a tensor with an empty name");
    if (!cJSON_IsObject(e)) return hr_err(HR_ERR_FORMAT, "tensor '%s': entry is not an object", name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dtype)) return hr_err(HR_ERR_FORMAT, "tensor '%s': missing or non-string dtype", name);
    int dt = hr_st_dtype_from_name(dtype->valuestring);
    if (dt < 0) return hr_err(HR_ERR_FORMAT, "tensor '%s': unknown dtype '%s'", name, dtype->valuestring);
    t->dtype = (hr_st_dtype)dt;
    hr_status s = parse_shape(name, shape, t);
    if (s != HR_OK) return s;
    uint64_t b, end;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !json_uint(cJSON_GetArrayItem(offs, 0), &b) ||
        !json_uint(cJSON_GetArrayItem(offs, 1), &end))
        return hr_err(HR_ERR_FORMAT, "tensor '%s': data_offsets is not a pair of non-negative integers", name);
    size_t data_size = st->size - st->data_start;
    if (b > end || end > data_size)
        return hr_err(HR_ERR_FORMAT, "tensor '%s': data_offsets [%llu, %llu] outside the %zu-byte data section", name,
                      (unsigned long long)b, (unsigned long long)end, data_size);
    if (end - b != t->nbytes)
        return hr_err(HR_ERR_FORMAT, "tensor '%s': %llu bytes of data but dtype %s and its shape need %zu", name,
                      (unsigned long long)(end - b), k_dtypes[t->dtype].name, t->nbytes);
    t->offset = st->data_start + (size_t)b;
    t->data = st->base + t->offset;
    t->name = dup_str(name);
    return t->name ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory");
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const hr_st_tensor *)a)->name, ((const hr_st_tensor *)b)->name);
}
static int cmp_offset(const void *a, const void *b) {
    const hr_st_tensor *x = *(const hr_st_tensor *const *)a, *y = *(const hr_st_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Names unique; non-empty byte ranges disjoint. */
static hr_status check_layout(hr_safetensors *st) {
    qsort(st->tensors, st->n, sizeof *st->tensors, cmp_name);
    for (size_t i = 1; i < st->n; i++)
        if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0)
            return hr_err(HR_ERR_FORMAT, "safetensors header names tensor '%s' twice", st->tensors[i].name);
    const hr_st_tensor **by_off = malloc((st->n ? st->n : 1) * sizeof *by_off); // (n)
    if (!by_off) return hr_err(HR_ERR_NOMEM, "out of memory");
    size_t m = 0;
    for (size_t i = 0; i < st->n; i++)
        if (st->tensors[i].nbytes) by_off[m++] = &st->tensors[i];
    qsort(by_off, m, sizeof *by_off, cmp_offset);
    hr_status s = HR_OK;
    for (size_t i = 1; i < m && s == HR_OK; i++)
        if (by_off[i]->offset < by_off[i - 1]->offset + by_off[i - 1]->nbytes)
            s = hr_err(HR_ERR_FORMAT, "tensors '%s' and '%s' overlap in the data section", by_off[i - 1]->name,
                       by_off[i]->name);
    free(by_off);
    return s;
}

static hr_status parse_header(hr_safetensors *st, const char *json, size_t len) {
    /* The format nests three deep (header, tensor entry, shape): stricter
     * than the general JSON bound. */
    if (hr_json_depth(json, len, HR_SAFETENSORS_MAX_DEPTH) > HR_SAFETENSORS_MAX_DEPTH)
        return hr_err(HR_ERR_FORMAT, "safetensors header nests deeper than %d levels", HR_SAFETENSORS_MAX_DEPTH);
    cJSON *root;
    hr_status s = hr_json_parse(json, len, &root);
    if (s != HR_OK) {
        hr_err_prefix("safetensors header");
        return s;
    }
    if (!cJSON_IsObject(root)) s = hr_err(HR_ERR_FORMAT, "safetensors header is not a JSON object");
    size_t n = s == HR_OK ? (size_t)cJSON_GetArraySize(root) : 0;
    if (s == HR_OK && !(st->tensors = calloc(n ? n : 1, sizeof *st->tensors)))
        s = hr_err(HR_ERR_NOMEM, "out of memory");
    const cJSON *e;
    if (s == HR_OK) cJSON_ArrayForEach(e, root) {
            if (e->string && strcmp(e->string, "__metadata__") == 0) {
                if (st->meta_keys) s = hr_err(HR_ERR_FORMAT, "safetensors header has __metadata__ twice");
                else s = parse_metadata(st, e);
            } else {
                s = parse_entry(st, e, &st->tensors[st->n]);
                if (s == HR_OK) st->n++;
            }
            if (s != HR_OK) break;
        }
    cJSON_Delete(root);
    return s == HR_OK ? check_layout(st) : s;
}

static hr_status open_buffer(hr_safetensors *st) {
    if (st->size < 8)
        return hr_err(HR_ERR_FORMAT, "safetensors file of %zu bytes is too short for its header length", st->size);
    uint64_t hlen;
    memcpy(&hlen, st->base, 8);
    if (hlen < 2 || hlen > HR_MAX_SAFETENSORS_HEADER_BYTES || hlen > st->size - 8)
        return hr_err(HR_ERR_FORMAT, "safetensors header length %llu is invalid for a %zu-byte file",
                      (unsigned long long)hlen, st->size);
    st->data_start = 8 + (size_t)hlen;
    return parse_header(st, (const char *)st->base + 8, (size_t)hlen);
}

hr_status hr_st_open_memory(const void *data, size_t size, hr_safetensors **out) {
    *out = NULL;
    if (!data && size) return hr_err(HR_ERR_INVALID_ARG, "no buffer given");
    hr_safetensors *st = calloc(1, sizeof *st);
    if (!st) return hr_err(HR_ERR_NOMEM, "out of memory");
    st->base = data;
    st->size = size;
    hr_status s = open_buffer(st);
    if (s != HR_OK) {
        hr_st_close(st);
        return s;
    }
    *out = st;
    return HR_OK;
}

hr_status hr_st_open(const char *path, hr_safetensors **out) {
    *out = NULL;
    hr_safetensors *st = calloc(1, sizeof *st);
    if (!st) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_status s = hr_map_file(path, &st->file);
    if (s == HR_OK) {
        st->base = st->file.data;
        st->size = st->file.size;
        s = open_buffer(st);
        if (s != HR_OK) hr_err_prefix("'%s'", path);
    }
    if (s != HR_OK) {
        hr_st_close(st);
        return s;
    }
    *out = st;
    return HR_OK;
}

size_t hr_st_n_tensors(const hr_safetensors *st) { return st->n; }

const hr_st_tensor *hr_st_tensor_at(const hr_safetensors *st, size_t i) { return i < st->n ? &st->tensors[i] : NULL; }

const hr_st_tensor *hr_st_find(const hr_safetensors *st, const char *name) {
    hr_st_tensor key = {.name = name};
    return st->n ? bsearch(&key, st->tensors, st->n, sizeof key, cmp_name) : NULL;
}

const char *hr_st_metadata(const hr_safetensors *st, const char *key) {
    for (size_t i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_vals[i];
    return NULL;
}

hr_status hr_st_to_f32(const hr_st_tensor *t, float *dst) {
    const uint8_t *s = t->data;
    size_t n = t->n_elements;
    switch (t->dtype) {
    case HR_ST_F32: return hr_dequant_to_f32(HR_GGML_F32, s, dst, n);
    case HR_ST_F16: return hr_dequant_to_f32(HR_GGML_F16, s, dst, n);
    case HR_ST_BF16: return hr_dequant_to_f32(HR_GGML_BF16, s, dst, n);
    case HR_ST_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, s + 8 * i, 8);
            dst[i] = (float)d;
        }
        return HR_OK;
    default:
        return hr_err(HR_ERR_UNSUPPORTED, "tensor '%s' has dtype %s, which is not a float type headroom reads", t->name,
                      hr_st_dtype_name(t->dtype));
    }
}

void hr_st_release(const hr_safetensors *st, const hr_st_tensor *t) {
    /* Only whole pages inside the tensor: neighbours may still be in use. */
    if (st->file.is_mmap) hr_release_pages(t->data, t->nbytes);
}
