/* libFuzzer target: the GGUF reader (hr_gguf_open_memory) and what is built
 * on it — every metadata getter, tensor bounds and dequantisation, the
 * embedded vocabulary (hr_tokenizer_from_gguf) and, when the file names an
 * architecture, the GGUF model loader. */
#include "fuzz_common.h"
#include "headroom/gguf.h"
#include "headroom/model.h"
#include "model/model_internal.h"
#include "formats/dtype.h"

#include <stdlib.h>

enum { MAX_ELEMS = 64, MAX_DEPTH = 8, MAX_DEQUANT = 4096 };

static void walk_array(const hr_gguf *g, const hr_gguf_value *v, int depth) {
    if (v->type != HR_GGUF_ARRAY || depth > MAX_DEPTH) return;
    int64_t i64;
    double f64;
    const char *s;
    size_t len;
    for (uint64_t i = 0; i < v->n && i < MAX_ELEMS; i++) {
        /* The first elements, then the last ones (offsets of late elements
         * of variable-size arrays are where bounds bugs hide). */
        uint64_t k = i < MAX_ELEMS / 2 ? i : v->n - 1 - (i - MAX_ELEMS / 2);
        if (v->elem_type == HR_GGUF_STRING) {
            if (hr_gguf_arr_str(g, v, k, &s, &len) == HR_OK && len) HR_FUZZ_ASSERT(s != NULL);
        } else if (v->elem_type == HR_GGUF_ARRAY) {
            hr_gguf_value sub;
            if (hr_gguf_arr_arr(g, v, k, &sub) == HR_OK) walk_array(g, &sub, depth + 1);
        } else {
            hr_gguf_arr_i64(g, v, k, &i64);
            hr_gguf_arr_f64(g, v, k, &f64);
        }
    }
}

static void walk_metadata(const hr_gguf *g) {
    uint64_t n = hr_gguf_n_kv(g);
    for (uint64_t i = 0; i < n; i++) {
        const char *key = hr_gguf_key(g, i);
        HR_FUZZ_ASSERT(key != NULL);
        HR_FUZZ_ASSERT(hr_gguf_find(g, key) >= 0);
        hr_gguf_value v = hr_gguf_get(g, i);
        walk_array(g, &v, 0);
        int64_t i64;
        double f64;
        bool b;
        const char *s;
        size_t len;
        hr_gguf_value arr;
        hr_gguf_get_i64(g, key, &i64);
        hr_gguf_get_f64(g, key, &f64);
        hr_gguf_get_bool(g, key, &b);
        hr_gguf_get_str(g, key, &s, &len);
        hr_gguf_get_arr(g, key, &arr);
    }
}

static void walk_tensors(const hr_gguf *g) {
    float *dst = malloc(MAX_DEQUANT * sizeof *dst); /* (MAX_DEQUANT) */
    if (!dst) abort();
    uint64_t n = hr_gguf_n_tensors(g);
    for (uint64_t i = 0; i < n; i++) {
        const hr_gguf_tensor *t = hr_gguf_tensor_at(g, i);
        HR_FUZZ_ASSERT(t && t->name && t->n_dims >= 1 && t->n_dims <= 4);
        HR_FUZZ_ASSERT(hr_gguf_find_tensor(g, t->name) != NULL);
        if (!t->data || !t->nbytes) continue;
        /* Touch both ends: ASan reports a tensor reaching past the buffer. */
        volatile uint8_t edge = ((const uint8_t *)t->data)[0];
        edge = ((const uint8_t *)t->data)[t->nbytes - 1];
        (void)edge;
        uint64_t elems = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) elems *= (uint64_t)t->ne[d];
        uint64_t take = elems < MAX_DEQUANT ? elems : MAX_DEQUANT;
        take -= take % 32; /* a whole number of blocks for every type */
        if (take) hr_dequant_to_f32(t->type, t->data, dst, (size_t)take);
    }
    free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hr_gguf *g = NULL;
    if (hr_gguf_open_memory(data, size, &g) != HR_OK) return 0;
    walk_metadata(g);
    walk_tensors(g);
    hr_tokenizer *t = NULL;
    if (hr_tokenizer_from_gguf(g, &t) == HR_OK) {
        hr_fuzz_use_tokenizer(t, data, size);
        hr_tokenizer_free(t);
    }
    bool has_arch = hr_gguf_find(g, "general.architecture") >= 0;
    hr_gguf_close(g);
    if (has_arch) {
        hr_model *m = NULL;
        if (hr_model_load(hr_fuzz_as_file(data, size), &m) == HR_OK) {
            int n = hr_model_n_tensors(m);
            HR_FUZZ_ASSERT(n > 0);
            hr_tensor_info info;
            for (int i = 0; i < n; i++) HR_FUZZ_ASSERT(hr_model_tensor_info(m, i, &info) == HR_OK);
            hr_model_free(m);
        }
    }
    return 0;
}
