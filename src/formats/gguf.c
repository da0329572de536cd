/* GGUF reader: one validating pass over the header in hr_gguf_open builds
 * index tables (array nodes, string offsets, name hashes) so that every
 * getter afterwards is O(1) and never touches bytes that were not checked. */
#include "headroom/gguf.h"
#include "core/internal.h"
#include "core/limits.h"

#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF reader assumes a little-endian host"
#endif

#define GGUF_MAGIC_BYTES "GGUF"
#define GGUF_HEADER_BYTES 24u /* magic, version, n_tensors, n_kv */
#define GGUF_DEFAULT_ALIGNMENT 32u
#define GGUF_MAX_DIMS 4
/* Smallest encodings, used to reject counts before allocating for them. */
#define GGUF_MIN_KV_BYTES 13u     /* empty key (8) + type (4) + 1-byte value */
#define GGUF_MIN_TENSOR_BYTES 32u /* empty name (8) + n_dims + 1 dim + type + offset */
#define GGUF_MIN_STRING_BYTES 8u
#define GGUF_MIN_ARRAY_BYTES 12u /* elem type (4) + count (8) */
#define KEY_SHOWN 80             /* key characters quoted in messages */

/* One array value. Strings are located through g->strs, nested arrays are
 * child nodes stored contiguously so element i is node first + i. */
typedef struct {
    uint64_t n;         /* element count */
    const uint8_t *raw; /* first element in the mapping */
    uint64_t first;     /* string arrays: index into strs; arrays of arrays: first child */
    hr_gguf_type elem;
} gguf_node;

typedef struct {
    char *key; /* NUL-terminated copy */
    hr_gguf_type type;
    uint64_t n;         /* string length */
    const uint8_t *raw; /* scalar or string bytes */
    uint32_t node;      /* arrays: index into nodes */
} gguf_kv;

/* Open-addressing hash of names; slots hold index + 1 (0 = empty). */
typedef struct {
    uint32_t *slots; /* (mask + 1) */
    size_t mask;
} name_index;

struct hr_gguf {
    hr_mapped_file map; /* empty when opened on a caller buffer */
    const uint8_t *base;
    size_t size;
    uint32_t version;
    uint32_t alignment;
    size_t data_off;  /* start of the data section */
    size_t data_size; /* bytes from data_off to the end of the file */
    uint64_t n_kv;
    gguf_kv *kv; /* (n_kv) */
    uint64_t n_tensors;
    hr_gguf_tensor *tensors; /* (n_tensors) */
    gguf_node *nodes;        /* (n_nodes) */
    size_t n_nodes, cap_nodes;
    const uint8_t **strs; /* (n_strs) each points at a string's u64 length prefix */
    size_t n_strs, cap_strs;
    name_index kv_index, tensor_index;
};

typedef struct {
    const uint8_t *p;
    size_t size;
    size_t pos;
} reader;

/* ------------------------------------------------------------------ */
/* Type tables                                                         */

static size_t scalar_size(hr_gguf_type t) {
    switch (t) {
    case HR_GGUF_UINT8:
    case HR_GGUF_INT8:
    case HR_GGUF_BOOL: return 1;
    case HR_GGUF_UINT16:
    case HR_GGUF_INT16: return 2;
    case HR_GGUF_UINT32:
    case HR_GGUF_INT32:
    case HR_GGUF_FLOAT32: return 4;
    case HR_GGUF_UINT64:
    case HR_GGUF_INT64:
    case HR_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

const char *hr_gguf_type_name(uint32_t t) {
    static const char *names[HR_GGUF_TYPE_COUNT] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                                    "int32",  "float32", "bool",   "string", "array",
                                                    "uint64", "int64",   "float64"};
    return t < HR_GGUF_TYPE_COUNT ? names[t] : "unknown";
}

const char *hr_ggml_type_name(uint32_t type) {
    static const char *names[] = {
        [0] = "f32",     [1] = "f16",    [2] = "q4_0",     [3] = "q4_1",    [6] = "q5_0",     [7] = "q5_1",
        [8] = "q8_0",    [9] = "q8_1",   [10] = "q2_K",    [11] = "q3_K",   [12] = "q4_K",    [13] = "q5_K",
        [14] = "q6_K",   [15] = "q8_K",  [16] = "iq2_xxs", [17] = "iq2_xs", [18] = "iq3_xxs", [19] = "iq1_s",
        [20] = "iq4_nl", [21] = "iq3_s", [22] = "iq2_s",   [23] = "iq4_xs", [24] = "i8",      [25] = "i16",
        [26] = "i32",    [27] = "i64",   [28] = "f64",     [29] = "iq1_m",  [30] = "bf16",    [34] = "tq1_0",
        [35] = "tq2_0",  [39] = "mxfp4"};
    if (type >= sizeof names / sizeof names[0] || !names[type]) return "unknown";
    return names[type];
}

/* Block size (elements) and bytes per block of the types headroom reads. */
static bool ggml_block(uint32_t type, uint64_t *blk, size_t *bytes) {
    switch (type) {
    case HR_GGML_F32:
        *blk = 1;
        *bytes = 4;
        return true;
    case HR_GGML_F16:
    case HR_GGML_BF16:
        *blk = 1;
        *bytes = 2;
        return true;
    case HR_GGML_Q8_0:
        *blk = 32;
        *bytes = 34;
        return true;
    default: return false;
    }
}

size_t hr_ggml_type_nbytes(uint32_t type, uint64_t n) {
    uint64_t blk = 0;
    size_t bytes, out;
    if (!ggml_block(type, &blk, &bytes) || n % blk != 0) return 0;
    if ((uint64_t)(size_t)(n / blk) != n / blk) return 0;
    if (!hr_mul_size((size_t)(n / blk), bytes, &out)) return 0;
    return out;
}

bool hr_gguf_is_gguf(const void *data, size_t size) {
    return data && size >= 4 && memcmp(data, GGUF_MAGIC_BYTES, 4) == 0;
}

/* ------------------------------------------------------------------ */
/* Bounds-checked reading                                              */

static size_t rd_left(const reader *r) { return r->size - r->pos; }

static hr_status rd_need(const reader *r, uint64_t n, const char *what) {
    if (n > rd_left(r))
        return hr_err(HR_ERR_FORMAT, "GGUF truncated at byte %zu: %s needs %llu bytes but only %zu remain", r->pos,
                      what, (unsigned long long)n, rd_left(r));
    return HR_OK;
}

static hr_status rd_u32(reader *r, uint32_t *out, const char *what) {
    hr_status st = rd_need(r, 4, what);
    if (st < 0) return st;
    memcpy(out, r->p + r->pos, 4);
    r->pos += 4;
    return HR_OK;
}

static hr_status rd_u64(reader *r, uint64_t *out, const char *what) {
    hr_status st = rd_need(r, 8, what);
    if (st < 0) return st;
    memcpy(out, r->p + r->pos, 8);
    r->pos += 8;
    return HR_OK;
}

/* A gguf_string: *bytes points at its first byte, *len is validated. */
static hr_status rd_string(reader *r, const uint8_t **bytes, uint64_t *len, const char *what) {
    hr_status st = rd_u64(r, len, what);
    if (st < 0) return st;
    if (*len > rd_left(r))
        return hr_err(HR_ERR_FORMAT, "GGUF %s at byte %zu has length %llu but only %zu bytes remain", what, r->pos - 8,
                      (unsigned long long)*len, rd_left(r));
    *bytes = r->p + r->pos;
    r->pos += (size_t)*len;
    return HR_OK;
}

/* Names become C strings, so an embedded NUL would make lookups ambiguous. */
static hr_status rd_name(reader *r, char **out, const char *what) {
    const uint8_t *b = NULL;
    uint64_t len = 0;
    hr_status st = rd_string(r, &b, &len, what);
    if (st < 0) return st;
    if (memchr(b, 0, (size_t)len))
        return hr_err(HR_ERR_FORMAT, "GGUF %s at byte %zu contains a NUL byte", what, (size_t)(b - r->p));
    char *s = malloc((size_t)len + 1);
    if (!s) return hr_err(HR_ERR_NOMEM, "out of memory copying a GGUF %s", what);
    memcpy(s, b, (size_t)len);
    s[len] = '\0';
    *out = s;
    return HR_OK;
}

/* ------------------------------------------------------------------ */
/* Growable tables and the name index                                  */

static hr_status grow(void **p, size_t *cap, size_t need, size_t elsize) {
    if (need <= *cap) return HR_OK;
    size_t nc = *cap ? *cap : 16, bytes;
    while (nc < need) {
        if (!hr_mul_size(nc, 2, &nc)) return hr_err(HR_ERR_NOMEM, "GGUF index too large");
    }
    if (!hr_mul_size(nc, elsize, &bytes)) return hr_err(HR_ERR_NOMEM, "GGUF index too large");
    void *np = realloc(*p, bytes);
    if (!np) return hr_err(HR_ERR_NOMEM, "out of memory indexing GGUF metadata");
    *p = np;
    *cap = nc;
    return HR_OK;
}

/* Reserves count consecutive node slots; *first receives the first one. */
static hr_status reserve_nodes(hr_gguf *g, uint64_t count, uint64_t *first) {
    size_t need;
    if (count > SIZE_MAX || !hr_add_size(g->n_nodes, (size_t)count, &need) || need > UINT32_MAX)
        return hr_err(HR_ERR_FORMAT, "GGUF has too many arrays");
    hr_status st = grow((void **)&g->nodes, &g->cap_nodes, need, sizeof *g->nodes);
    if (st < 0) return st;
    memset(g->nodes + g->n_nodes, 0, (size_t)count * sizeof *g->nodes);
    *first = g->n_nodes;
    g->n_nodes = need;
    return HR_OK;
}

static uint64_t hash_name(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static hr_status index_init(name_index *ix, uint64_t count) {
    size_t cap = 16;
    while (cap < count * 2) cap *= 2; /* count is bounded by the file size */
    ix->slots = calloc(cap, sizeof *ix->slots);
    if (!ix->slots) return hr_err(HR_ERR_NOMEM, "out of memory indexing GGUF names");
    ix->mask = cap - 1;
    return HR_OK;
}

typedef const char *(*name_fn)(const hr_gguf *g, size_t i);
static const char *kv_name(const hr_gguf *g, size_t i) { return g->kv[i].key; }
static const char *tensor_name(const hr_gguf *g, size_t i) { return g->tensors[i].name; }

/* Slot holding name, or the empty slot where it would go. */
static uint32_t *index_slot(const hr_gguf *g, const name_index *ix, name_fn get, const char *name) {
    size_t n = strlen(name);
    size_t at = (size_t)hash_name(name, n) & ix->mask;
    for (;;) {
        uint32_t *s = &ix->slots[at];
        if (*s == 0 || strcmp(get(g, *s - 1), name) == 0) return s;
        at = (at + 1) & ix->mask;
    }
}

static int64_t index_find(const hr_gguf *g, const name_index *ix, name_fn get, const char *name) {
    if (!ix->slots || !name) return -1;
    uint32_t *s = index_slot(g, ix, get, name);
    return *s ? (int64_t)*s - 1 : -1;
}

/* ------------------------------------------------------------------ */
/* Metadata parsing                                                    */

static hr_status bad_type(const char *key, uint32_t t, const char *where) {
    return hr_err(HR_ERR_FORMAT, "GGUF key '%.*s': unknown %s type %u", KEY_SHOWN, key, where, t);
}

static hr_status parse_array(hr_gguf *g, reader *r, const char *key, int depth, uint64_t slot);

static hr_status parse_string_elems(hr_gguf *g, reader *r, const char *key, uint64_t n, uint64_t slot) {
    if (n > rd_left(r) / GGUF_MIN_STRING_BYTES)
        return hr_err(HR_ERR_FORMAT, "GGUF key '%.*s': array of %llu strings cannot fit in the %zu bytes left",
                      KEY_SHOWN, key, (unsigned long long)n, rd_left(r));
    size_t need = g->n_strs + (size_t)n;
    hr_status st = grow((void **)&g->strs, &g->cap_strs, need, sizeof *g->strs);
    if (st < 0) return st;
    g->nodes[slot].first = g->n_strs;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *b = NULL;
        uint64_t len = 0;
        g->strs[g->n_strs + i] = r->p + r->pos;
        st = rd_string(r, &b, &len, "string array element");
        if (st < 0) {
            hr_err_prefix("key '%.*s' element %llu", KEY_SHOWN, key, (unsigned long long)i);
            return st;
        }
    }
    g->n_strs = need;
    return HR_OK;
}

static hr_status parse_array_elems(hr_gguf *g, reader *r, const char *key, int depth, uint64_t n, uint64_t slot) {
    if (n > rd_left(r) / GGUF_MIN_ARRAY_BYTES)
        return hr_err(HR_ERR_FORMAT, "GGUF key '%.*s': array of %llu arrays cannot fit in the %zu bytes left",
                      KEY_SHOWN, key, (unsigned long long)n, rd_left(r));
    uint64_t first = 0;
    hr_status st = reserve_nodes(g, n, &first);
    if (st < 0) return st;
    g->nodes[slot].first = first;
    for (uint64_t i = 0; i < n; i++) {
        st = parse_array(g, r, key, depth + 1, first + i);
        if (st < 0) return st;
    }
    return HR_OK;
}

/* Parses "elem_type | n | elements" into node slot (already reserved). */
static hr_status parse_array(hr_gguf *g, reader *r, const char *key, int depth, uint64_t slot) {
    if (depth > HR_GGUF_MAX_ARRAY_DEPTH)
        return hr_err(HR_ERR_FORMAT, "GGUF key '%.*s': arrays nested deeper than %d levels", KEY_SHOWN, key,
                      HR_GGUF_MAX_ARRAY_DEPTH);
    uint32_t et = 0;
    uint64_t n = 0;
    hr_status st = rd_u32(r, &et, "array element type");
    if (st >= 0) st = rd_u64(r, &n, "array length");
    if (st < 0) {
        hr_err_prefix("key '%.*s'", KEY_SHOWN, key);
        return st;
    }
    if (et >= HR_GGUF_TYPE_COUNT) return bad_type(key, et, "array element");
    g->nodes[slot].elem = (hr_gguf_type)et;
    g->nodes[slot].n = n;
    g->nodes[slot].raw = r->p + r->pos;
    if (et == HR_GGUF_STRING) return parse_string_elems(g, r, key, n, slot);
    if (et == HR_GGUF_ARRAY) return parse_array_elems(g, r, key, depth, n, slot);
    size_t es = scalar_size((hr_gguf_type)et);
    if (n > rd_left(r) / es)
        return hr_err(HR_ERR_FORMAT, "GGUF key '%.*s': array of %llu %s values needs more than the %zu bytes left",
                      KEY_SHOWN, key, (unsigned long long)n, hr_gguf_type_name(et), rd_left(r));
    r->pos += (size_t)n * es;
    return HR_OK;
}

static hr_status parse_value(hr_gguf *g, reader *r, gguf_kv *kv) {
    uint32_t t = 0;
    hr_status st = rd_u32(r, &t, "value type");
    if (st < 0) return st;
    if (t >= HR_GGUF_TYPE_COUNT) return bad_type(kv->key, t, "value");
    kv->type = (hr_gguf_type)t;
    if (t == HR_GGUF_STRING) return rd_string(r, &kv->raw, &kv->n, "string value");
    if (t == HR_GGUF_ARRAY) {
        uint64_t slot = 0;
        st = reserve_nodes(g, 1, &slot);
        if (st < 0) return st;
        kv->node = (uint32_t)slot;
        st = parse_array(g, r, kv->key, 1, slot);
        if (st < 0) return st;
        kv->n = g->nodes[slot].n;
        kv->raw = g->nodes[slot].raw;
        return HR_OK;
    }
    size_t sz = scalar_size(kv->type);
    st = rd_need(r, sz, hr_gguf_type_name(t));
    if (st < 0) return st;
    kv->raw = r->p + r->pos;
    r->pos += sz;
    return HR_OK;
}

static hr_status parse_kvs(hr_gguf *g, reader *r) {
    hr_status st = index_init(&g->kv_index, g->n_kv);
    if (st < 0) return st;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        gguf_kv *kv = &g->kv[i];
        st = rd_name(r, &kv->key, "key");
        if (st < 0) {
            hr_err_prefix("metadata entry %llu", (unsigned long long)i);
            return st;
        }
        uint32_t *slot = index_slot(g, &g->kv_index, kv_name, kv->key);
        if (*slot) return hr_err(HR_ERR_FORMAT, "GGUF key '%.*s' appears twice", KEY_SHOWN, kv->key);
        *slot = (uint32_t)i + 1;
        st = parse_value(g, r, kv);
        if (st < 0) return st;
    }
    return HR_OK;
}

/* ------------------------------------------------------------------ */
/* Scalar conversion                                                   */

/* Integer value of a scalar at p; false if t is not an integer type. */
static bool int_value(hr_gguf_type t, const uint8_t *p, bool *fits, int64_t *out) {
    *fits = true;
    switch (t) {
    case HR_GGUF_UINT8: {
        uint8_t v;
        memcpy(&v, p, 1);
        *out = v;
        return true;
    }
    case HR_GGUF_INT8: {
        int8_t v;
        memcpy(&v, p, 1);
        *out = v;
        return true;
    }
    case HR_GGUF_UINT16: {
        uint16_t v;
        memcpy(&v, p, 2);
        *out = v;
        return true;
    }
    case HR_GGUF_INT16: {
        int16_t v;
        memcpy(&v, p, 2);
        *out = v;
        return true;
    }
    case HR_GGUF_UINT32: {
        uint32_t v;
        memcpy(&v, p, 4);
        *out = v;
        return true;
    }
    case HR_GGUF_INT32: {
        int32_t v;
        memcpy(&v, p, 4);
        *out = v;
        return true;
    }
    case HR_GGUF_INT64: {
        int64_t v;
        memcpy(&v, p, 8);
        *out = v;
        return true;
    }
    case HR_GGUF_UINT64: {
        uint64_t v;
        memcpy(&v, p, 8);
        *fits = v <= (uint64_t)INT64_MAX;
        *out = *fits ? (int64_t)v : 0;
        return true;
    }
    default: return false;
    }
}

static bool float_value(hr_gguf_type t, const uint8_t *p, double *out) {
    if (t == HR_GGUF_FLOAT32) {
        float v;
        memcpy(&v, p, 4);
        *out = v;
        return true;
    }
    if (t == HR_GGUF_FLOAT64) {
        memcpy(out, p, 8);
        return true;
    }
    return false;
}

static hr_status alignment_from_kv(hr_gguf *g) {
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t i = hr_gguf_find(g, "general.alignment");
    if (i < 0) return HR_OK;
    const gguf_kv *kv = &g->kv[i];
    bool fits = false;
    int64_t a = 0;
    if (!int_value(kv->type, kv->raw, &fits, &a))
        return hr_err(HR_ERR_FORMAT, "GGUF general.alignment is a %s, not an integer", hr_gguf_type_name(kv->type));
    if (!fits || a <= 0 || a > HR_GGUF_MAX_ALIGNMENT || (a & (a - 1)) != 0)
        return hr_err(HR_ERR_FORMAT, "GGUF general.alignment must be a non-zero power of two, got %lld",
                      fits ? (long long)a : -1LL);
    g->alignment = (uint32_t)a;
    return HR_OK;
}

/* ------------------------------------------------------------------ */
/* Tensor infos                                                        */

static hr_status parse_dims(reader *r, hr_gguf_tensor *t) {
    hr_status st = rd_u32(r, &t->n_dims, "tensor n_dims");
    if (st < 0) return st;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return hr_err(HR_ERR_FORMAT, "%u dimensions (allowed 1..%d)", t->n_dims, GGUF_MAX_DIMS);
    int64_t count = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t ne = 0;
        st = rd_u64(r, &ne, "tensor dimension");
        if (st < 0) return st;
        if (ne < 1 || ne > (uint64_t)INT64_MAX)
            return hr_err(HR_ERR_FORMAT, "invalid ne[%u] = %llu (must be 1..2^63-1)", d, (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
        if (__builtin_mul_overflow(count, t->ne[d], &count))
            return hr_err(HR_ERR_FORMAT, "element count overflows int64");
    }
    return HR_OK;
}

static hr_status parse_tensor_info(hr_gguf *g, reader *r, uint64_t i) {
    hr_gguf_tensor *t = &g->tensors[i];
    char *name = NULL;
    hr_status st = rd_name(r, &name, "tensor name");
    if (st < 0) return st;
    t->name = name;
    uint32_t *slot = index_slot(g, &g->tensor_index, tensor_name, name);
    if (*slot) return hr_err(HR_ERR_FORMAT, "GGUF tensor name '%.*s' appears twice", KEY_SHOWN, name);
    *slot = (uint32_t)i + 1;
    st = parse_dims(r, t);
    if (st >= 0) st = rd_u32(r, &t->type, "tensor type");
    if (st >= 0) st = rd_u64(r, &t->offset, "tensor offset");
    if (st < 0) hr_err_prefix("GGUF tensor '%.*s'", KEY_SHOWN, t->name);
    return st;
}

/* Byte size and data pointer, checked against the data section. */
static hr_status place_tensor(hr_gguf *g, hr_gguf_tensor *t) {
    if (t->offset % g->alignment != 0)
        return hr_err(HR_ERR_FORMAT, "GGUF tensor '%.*s' offset %llu is not a multiple of the alignment %u", KEY_SHOWN,
                      t->name, (unsigned long long)t->offset, g->alignment);
    if (t->offset > g->data_size)
        return hr_err(HR_ERR_FORMAT,
                      "GGUF tensor '%.*s' offset %llu is past the end of the file (data section is %zu bytes)",
                      KEY_SHOWN, t->name, (unsigned long long)t->offset, g->data_size);
    uint64_t blk = 0;
    size_t bsz = 0;
    if (!ggml_block(t->type, &blk, &bsz)) return HR_OK; /* kept, but without data */
    if ((uint64_t)t->ne[0] % blk != 0)
        return hr_err(HR_ERR_FORMAT, "GGUF tensor '%.*s': ne[0] = %lld is not a multiple of the %s block size %llu",
                      KEY_SHOWN, t->name, (long long)t->ne[0], hr_ggml_type_name(t->type), (unsigned long long)blk);
    uint64_t count = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) count *= (uint64_t)t->ne[d]; /* checked in parse_dims */
    size_t nbytes = hr_ggml_type_nbytes(t->type, count);
    if (nbytes == 0)
        return hr_err(HR_ERR_FORMAT, "GGUF tensor '%.*s': byte size of %llu %s elements overflows", KEY_SHOWN, t->name,
                      (unsigned long long)count, hr_ggml_type_name(t->type));
    if (nbytes > g->data_size - (size_t)t->offset)
        return hr_err(HR_ERR_FORMAT,
                      "GGUF tensor '%.*s' (%zu bytes at offset %llu) extends past the end of the file (data section is "
                      "%zu bytes)",
                      KEY_SHOWN, t->name, nbytes, (unsigned long long)t->offset, g->data_size);
    t->nbytes = nbytes;
    t->data = g->base + g->data_off + t->offset;
    return HR_OK;
}

static hr_status parse_tensors(hr_gguf *g, reader *r) {
    hr_status st = index_init(&g->tensor_index, g->n_tensors);
    if (st < 0) return st;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        st = parse_tensor_info(g, r, i);
        if (st < 0) return st;
    }
    /* The data section starts at the header end rounded up to the alignment;
     * a file without tensors may stop right after its header. */
    size_t a = g->alignment, off;
    if (!hr_add_size(r->pos, a - 1, &off)) return hr_err(HR_ERR_FORMAT, "GGUF data section offset overflows");
    g->data_off = off / a * a;
    g->data_size = g->data_off < g->size ? g->size - g->data_off : 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        st = place_tensor(g, &g->tensors[i]);
        if (st < 0) return st;
    }
    return HR_OK;
}

/* ------------------------------------------------------------------ */
/* Open / close                                                        */

static hr_status parse_header(hr_gguf *g, reader *r) {
    if (r->size == 0) return hr_err(HR_ERR_FORMAT, "GGUF file is empty");
    if (r->size < 4 || !hr_gguf_is_gguf(r->p, r->size))
        return hr_err(HR_ERR_FORMAT, "not a GGUF file: the first bytes are not the magic 'GGUF'");
    if (r->size < GGUF_HEADER_BYTES)
        return hr_err(HR_ERR_FORMAT, "GGUF header truncated: file has %zu bytes, the header needs %u", r->size,
                      GGUF_HEADER_BYTES);
    r->pos = 4;
    (void)rd_u32(r, &g->version, "version");
    uint32_t swapped = __builtin_bswap32(g->version);
    if (swapped == 2 || swapped == 3) return hr_err(HR_ERR_UNSUPPORTED, "big-endian GGUF files are not supported");
    if (g->version != 2 && g->version != 3)
        return hr_err(HR_ERR_UNSUPPORTED, "GGUF version %u is not supported (only versions 2 and 3)", g->version);
    (void)rd_u64(r, &g->n_tensors, "tensor count");
    (void)rd_u64(r, &g->n_kv, "metadata count");
    size_t left = rd_left(r);
    if (g->n_kv > left / GGUF_MIN_KV_BYTES)
        return hr_err(HR_ERR_FORMAT, "GGUF claims %llu metadata entries, more than the %zu bytes left can hold",
                      (unsigned long long)g->n_kv, left);
    if (g->n_tensors > left / GGUF_MIN_TENSOR_BYTES)
        return hr_err(HR_ERR_FORMAT, "GGUF claims %llu tensors, more than the %zu bytes left can hold",
                      (unsigned long long)g->n_tensors, left);
    if (g->n_kv * GGUF_MIN_KV_BYTES + g->n_tensors * GGUF_MIN_TENSOR_BYTES > left)
        return hr_err(HR_ERR_FORMAT,
                      "GGUF claims %llu metadata entries and %llu tensors, more than the %zu bytes left can hold",
                      (unsigned long long)g->n_kv, (unsigned long long)g->n_tensors, left);
    if (g->n_kv >= UINT32_MAX || g->n_tensors >= UINT32_MAX)
        return hr_err(HR_ERR_UNSUPPORTED, "GGUF has too many entries");
    g->kv = calloc(g->n_kv ? (size_t)g->n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(g->n_tensors ? (size_t)g->n_tensors : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) return hr_err(HR_ERR_NOMEM, "out of memory reading GGUF header");
    return HR_OK;
}

static hr_status parse_all(hr_gguf *g) {
    reader r = {g->base, g->size, 0};
    hr_status st = parse_header(g, &r);
    if (st >= 0) st = parse_kvs(g, &r);
    if (st >= 0) st = alignment_from_kv(g);
    if (st >= 0) st = parse_tensors(g, &r);
    return st;
}

void hr_gguf_close(hr_gguf *g) {
    if (!g) return;
    if (g->kv)
        for (uint64_t i = 0; i < g->n_kv; i++) free(g->kv[i].key);
    if (g->tensors)
        for (uint64_t i = 0; i < g->n_tensors; i++) free((char *)g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    free(g->nodes);
    free(g->strs);
    free(g->kv_index.slots);
    free(g->tensor_index.slots);
    hr_unmap_file(&g->map);
    free(g);
}

static hr_status open_on(hr_gguf *g, hr_gguf **out) {
    hr_status st = parse_all(g);
    if (st < 0) {
        hr_gguf_close(g);
        return st;
    }
    *out = g;
    return HR_OK;
}

hr_status hr_gguf_open_memory(const void *data, size_t size, hr_gguf **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "hr_gguf_open_memory: out is NULL");
    *out = NULL;
    if (!data && size) return hr_err(HR_ERR_INVALID_ARG, "hr_gguf_open_memory: data is NULL");
    hr_gguf *g = calloc(1, sizeof *g);
    if (!g) return hr_err(HR_ERR_NOMEM, "out of memory opening GGUF");
    g->base = data;
    g->size = data ? size : 0;
    return open_on(g, out);
}

hr_status hr_gguf_open(const char *path, hr_gguf **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "hr_gguf_open: out is NULL");
    *out = NULL;
    hr_gguf *g = calloc(1, sizeof *g);
    if (!g) return hr_err(HR_ERR_NOMEM, "out of memory opening GGUF");
    hr_status st = hr_map_file(path, &g->map);
    if (st < 0) {
        free(g);
        return st;
    }
    g->base = g->map.data;
    g->size = g->map.size;
    st = open_on(g, out);
    if (st < 0) hr_err_prefix("%s", path);
    return st;
}

/* ------------------------------------------------------------------ */
/* Accessors                                                           */

uint32_t hr_gguf_version(const hr_gguf *g) { return g ? g->version : 0; }
uint32_t hr_gguf_alignment(const hr_gguf *g) { return g ? g->alignment : 0; }
size_t hr_gguf_data_offset(const hr_gguf *g) { return g ? g->data_off : 0; }
uint64_t hr_gguf_n_kv(const hr_gguf *g) { return g ? g->n_kv : 0; }
uint64_t hr_gguf_n_tensors(const hr_gguf *g) { return g ? g->n_tensors : 0; }

const char *hr_gguf_key(const hr_gguf *g, uint64_t i) { return g && i < g->n_kv ? g->kv[i].key : NULL; }

int64_t hr_gguf_find(const hr_gguf *g, const char *key) { return g ? index_find(g, &g->kv_index, kv_name, key) : -1; }

static hr_gguf_value node_value(const hr_gguf *g, uint64_t node) {
    const gguf_node *nd = &g->nodes[node];
    hr_gguf_value v = {HR_GGUF_ARRAY, nd->elem, nd->n, nd->raw, (uint32_t)node};
    return v;
}

hr_gguf_value hr_gguf_get(const hr_gguf *g, uint64_t i) {
    hr_gguf_value v = {HR_GGUF_TYPE_COUNT, HR_GGUF_TYPE_COUNT, 0, NULL, 0};
    if (!g || i >= g->n_kv) return v;
    const gguf_kv *kv = &g->kv[i];
    if (kv->type == HR_GGUF_ARRAY) return node_value(g, kv->node);
    v.type = kv->type;
    v.n = kv->n;
    v.raw = kv->raw;
    return v;
}

static hr_status lookup(const hr_gguf *g, const char *key, const gguf_kv **kv) {
    *kv = NULL;
    if (!g || !key) return hr_err(HR_ERR_INVALID_ARG, "GGUF lookup without a handle or key");
    int64_t i = hr_gguf_find(g, key);
    if (i < 0) return hr_err(HR_ERR_NOT_FOUND, "GGUF key '%.*s' not found", KEY_SHOWN, key);
    *kv = &g->kv[i];
    return HR_OK;
}

static hr_status mismatch(const char *key, hr_gguf_type t, const char *want) {
    return hr_err(HR_ERR_FORMAT, "GGUF key '%.*s' is a %s, not %s", KEY_SHOWN, key, hr_gguf_type_name(t), want);
}

hr_status hr_gguf_get_i64(const hr_gguf *g, const char *key, int64_t *out) {
    const gguf_kv *kv;
    hr_status st = lookup(g, key, &kv);
    if (st < 0) return st;
    bool fits = false;
    if (!int_value(kv->type, kv->raw, &fits, out)) return mismatch(key, kv->type, "an integer");
    if (!fits) return hr_err(HR_ERR_RANGE, "GGUF key '%.*s' does not fit in int64", KEY_SHOWN, key);
    return HR_OK;
}

hr_status hr_gguf_get_f64(const hr_gguf *g, const char *key, double *out) {
    const gguf_kv *kv;
    hr_status st = lookup(g, key, &kv);
    if (st < 0) return st;
    if (!float_value(kv->type, kv->raw, out)) return mismatch(key, kv->type, "a float");
    return HR_OK;
}

hr_status hr_gguf_get_bool(const hr_gguf *g, const char *key, bool *out) {
    const gguf_kv *kv;
    hr_status st = lookup(g, key, &kv);
    if (st < 0) return st;
    if (kv->type != HR_GGUF_BOOL) return mismatch(key, kv->type, "a bool");
    *out = kv->raw[0] != 0;
    return HR_OK;
}

hr_status hr_gguf_get_str(const hr_gguf *g, const char *key, const char **s, size_t *len) {
    const gguf_kv *kv;
    hr_status st = lookup(g, key, &kv);
    if (st < 0) return st;
    if (kv->type != HR_GGUF_STRING) return mismatch(key, kv->type, "a string");
    *s = (const char *)kv->raw;
    *len = (size_t)kv->n;
    return HR_OK;
}

hr_status hr_gguf_get_arr(const hr_gguf *g, const char *key, hr_gguf_value *out) {
    const gguf_kv *kv;
    hr_status st = lookup(g, key, &kv);
    if (st < 0) return st;
    if (kv->type != HR_GGUF_ARRAY) return mismatch(key, kv->type, "an array");
    *out = node_value(g, kv->node);
    return HR_OK;
}

/* The validated node behind v, with i in range; the caller's copy of the
 * view is only trusted for its node index. */
static hr_status arr_node(const hr_gguf *g, const hr_gguf_value *v, uint64_t i, const gguf_node **nd) {
    if (!g || !v || v->type != HR_GGUF_ARRAY || v->node >= g->n_nodes)
        return hr_err(HR_ERR_INVALID_ARG, "GGUF array access on a value that is not an array");
    *nd = &g->nodes[v->node];
    if (i >= (*nd)->n)
        return hr_err(HR_ERR_RANGE, "GGUF array index %llu out of range (length %llu)", (unsigned long long)i,
                      (unsigned long long)(*nd)->n);
    return HR_OK;
}

static hr_status elem_mismatch(hr_gguf_type t, const char *want) {
    return hr_err(HR_ERR_FORMAT, "GGUF array holds %s values, not %s", hr_gguf_type_name(t), want);
}

hr_status hr_gguf_arr_i64(const hr_gguf *g, const hr_gguf_value *v, uint64_t i, int64_t *out) {
    const gguf_node *nd = NULL;
    hr_status st = arr_node(g, v, i, &nd);
    if (st < 0) return st;
    bool fits = false;
    size_t es = scalar_size(nd->elem);
    if (!es || !int_value(nd->elem, nd->raw + (size_t)i * es, &fits, out)) return elem_mismatch(nd->elem, "integers");
    if (!fits) return hr_err(HR_ERR_RANGE, "GGUF array element %llu does not fit in int64", (unsigned long long)i);
    return HR_OK;
}

hr_status hr_gguf_arr_f64(const hr_gguf *g, const hr_gguf_value *v, uint64_t i, double *out) {
    const gguf_node *nd = NULL;
    hr_status st = arr_node(g, v, i, &nd);
    if (st < 0) return st;
    size_t es = scalar_size(nd->elem);
    if (!es || !float_value(nd->elem, nd->raw + (size_t)i * es, out)) return elem_mismatch(nd->elem, "floats");
    return HR_OK;
}

hr_status hr_gguf_arr_str(const hr_gguf *g, const hr_gguf_value *v, uint64_t i, const char **s, size_t *len) {
    const gguf_node *nd = NULL;
    hr_status st = arr_node(g, v, i, &nd);
    if (st < 0) return st;
    if (nd->elem != HR_GGUF_STRING) return elem_mismatch(nd->elem, "strings");
    const uint8_t *p = g->strs[nd->first + i];
    uint64_t n = 0;
    memcpy(&n, p, 8);
    *s = (const char *)p + 8;
    *len = (size_t)n;
    return HR_OK;
}

hr_status hr_gguf_arr_arr(const hr_gguf *g, const hr_gguf_value *v, uint64_t i, hr_gguf_value *out) {
    const gguf_node *nd = NULL;
    hr_status st = arr_node(g, v, i, &nd);
    if (st < 0) return st;
    if (nd->elem != HR_GGUF_ARRAY) return elem_mismatch(nd->elem, "arrays");
    *out = node_value(g, nd->first + i);
    return HR_OK;
}

const hr_gguf_tensor *hr_gguf_tensor_at(const hr_gguf *g, uint64_t i) {
    return g && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const hr_gguf_tensor *hr_gguf_find_tensor(const hr_gguf *g, const char *name) {
    if (!g) return NULL;
    int64_t i = index_find(g, &g->tensor_index, tensor_name, name);
    return i < 0 ? NULL : &g->tensors[i];
}
