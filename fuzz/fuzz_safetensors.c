/* libFuzzer target: the safetensors reader (hr_st_open_memory), tensor
 * lookups, bounds of every tensor and dtype conversion to f32. */
#include "fuzz_common.h"
#include "headroom/safetensors.h"

#include <stdlib.h>

enum { MAX_CONVERT = 1 << 16 };

static void use_tensor(const hr_safetensors *st, const hr_st_tensor *t) {
    HR_FUZZ_ASSERT(t->name != NULL);
    HR_FUZZ_ASSERT(hr_st_find(st, t->name) == t); /* names are unique */
    HR_FUZZ_ASSERT(t->n_dims >= 0 && t->n_dims <= HR_ST_MAX_DIMS);
    HR_FUZZ_ASSERT(t->nbytes == t->n_elements * hr_st_dtype_size(t->dtype));
    hr_st_dtype_name(t->dtype);
    if (t->nbytes) {
        /* Touch both ends: ASan reports a tensor reaching past the buffer. */
        volatile uint8_t edge = ((const uint8_t *)t->data)[0];
        edge = ((const uint8_t *)t->data)[t->nbytes - 1];
        (void)edge;
    }
    if (t->n_elements > MAX_CONVERT) return;
    float *dst = malloc((t->n_elements ? t->n_elements : 1) * sizeof *dst); /* (n_elements) */
    if (!dst) abort();
    hr_st_to_f32(t, dst);
    free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hr_safetensors *st = NULL;
    if (hr_st_open_memory(data, size, &st) != HR_OK) return 0;
    size_t n = hr_st_n_tensors(st);
    for (size_t i = 0; i < n; i++) {
        const hr_st_tensor *t = hr_st_tensor_at(st, i);
        HR_FUZZ_ASSERT(t != NULL);
        use_tensor(st, t);
    }
    HR_FUZZ_ASSERT(hr_st_tensor_at(st, n) == NULL);
    hr_st_metadata(st, "format");
    hr_st_find(st, "");
    hr_st_close(st);
    return 0;
}
