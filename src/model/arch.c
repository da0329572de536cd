/* Architecture registry: one row per family. The forward pass reads these
 * traits as data, so adding a Llama-like family is one row here plus its
 * loader's tensor names. */
#include <string.h>

#include "model/model_internal.h"

typedef struct {
    hr_arch arch;
    const char *name;
    const char *aliases[4]; /* other HF model_type / GGUF names */
    hr_norm_type norm;
    hr_mlp_type mlp;
    hr_pos_type pos;
    bool qkv_bias, out_bias, mlp_bias;
} arch_info;

static const arch_info registry[] = {
    {HR_ARCH_LLAMA, "llama", {"mistral", "deci", NULL}, HR_NORM_RMS, HR_MLP_SWIGLU, HR_POS_ROPE, false, false, false},
    {HR_ARCH_QWEN2, "qwen2", {NULL}, HR_NORM_RMS, HR_MLP_SWIGLU, HR_POS_ROPE, true, false, false},
    {HR_ARCH_GPT2, "gpt2", {NULL}, HR_NORM_LAYER, HR_MLP_GELU, HR_POS_LEARNED, true, true, true},
};

static const arch_info *find(hr_arch a) {
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (registry[i].arch == a) return &registry[i];
    return NULL;
}

hr_status hr_config_set_arch(hr_config *c, hr_arch arch) {
    const arch_info *ai = find(arch);
    if (!ai) return hr_err(HR_ERR_UNSUPPORTED, "unknown architecture id %d", (int)arch);
    c->arch = arch;
    c->norm = ai->norm;
    c->mlp = ai->mlp;
    c->pos = ai->pos;
    c->qkv_bias = ai->qkv_bias;
    c->out_bias = ai->out_bias;
    c->mlp_bias = ai->mlp_bias;
    return HR_OK;
}

hr_status hr_arch_from_name(const char *name, hr_arch *out) {
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++) {
        if (strcmp(registry[i].name, name) == 0) {
            *out = registry[i].arch;
            return HR_OK;
        }
        for (int k = 0; k < 4 && registry[i].aliases[k]; k++)
            if (strcmp(registry[i].aliases[k], name) == 0) {
                *out = registry[i].arch;
                return HR_OK;
            }
    }
    return hr_err(HR_ERR_UNSUPPORTED, "architecture '%s' is not supported (llama, mistral, qwen2, gpt2)", name);
}

const char *hr_arch_name(hr_arch a) {
    const arch_info *ai = find(a);
    return ai ? ai->name : "unknown";
}
