/* libFuzzer target: model files through hr_model_load — llama2.c v0 float32
 * and int8 v2 checkpoints (the seeds), and whatever else the content
 * detection dispatches to when mutations reach another format's magic. */
#include "fuzz_common.h"
#include "headroom/model.h"
#include "model/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hr_model *m = NULL;
    if (hr_model_load(hr_fuzz_as_file(data, size), &m) != HR_OK) return 0;
    const hr_config *c = hr_model_config(m);
    HR_FUZZ_ASSERT(c->n_layers >= 1 && c->dim >= 1 && c->vocab_size >= 1);
    int n = hr_model_n_tensors(m);
    HR_FUZZ_ASSERT(n > 0);
    hr_tensor_info info;
    for (int i = 0; i < n; i++) HR_FUZZ_ASSERT(hr_model_tensor_info(m, i, &info) == HR_OK);
    HR_FUZZ_ASSERT(hr_model_n_params(m) > 0);
    hr_model_free(m);
    return 0;
}
