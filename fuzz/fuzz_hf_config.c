/* libFuzzer target: the Hugging Face config.json parser
 * (hr_hf_parse_config), on input that is not NUL-terminated. */
#include "fuzz_common.h"
#include "io/hf_internal.h"
#include "model/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hr_config c;
    hr_hf_extra extra;
    if (hr_hf_parse_config((const char *)data, size, &c, &extra) != HR_OK) return 0;
    /* What the parser accepts must be a config every loader can size. */
    HR_FUZZ_ASSERT(hr_config_validate(&c) == HR_OK);
    HR_FUZZ_ASSERT(c.n_layers >= 1 && c.n_layers <= HR_MAX_LAYERS);
    HR_FUZZ_ASSERT(hr_config_max_heads(&c) >= 1 && hr_config_max_kv_heads(&c) >= 1);
    HR_FUZZ_ASSERT(c.vocab_size >= 1 && c.dim >= 1 && c.head_dim >= 1);
    HR_FUZZ_ASSERT(extra.bos_id >= -1 && extra.eos_id >= -1);
    hr_arch_name(c.arch);
    return 0;
}
