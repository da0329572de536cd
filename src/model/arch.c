/* Architecture registry: one row per family (model/arch.h). The forward
 * pass reads the traits as data; the GGUF and Hugging Face loaders and
 * writers read the names, layouts and flags. A Llama-like family is one
 * more row (its hr_arch id is its position). */
#include "model/arch.h"

#include <stdio.h>
#include <string.h>

#include "model/config.h"

/* transformers' Llama / Mistral / Qwen2 checkpoints */
static const hr_hf_tensor llama_head[] = {{"embed_tokens.weight", HR_SLOT_TOK_EMBD, HR_HF_AS_IS}, {NULL, 0, 0}};
static const hr_hf_tensor llama_tail[] = {{"norm.weight", HR_SLOT_OUT_NORM, HR_HF_AS_IS}, {NULL, 0, 0}};
static const hr_hf_tensor llama_layer[] = {
    {"input_layernorm.weight", HR_SLOT_ATTN_NORM, HR_HF_AS_IS},
    {"self_attn.q_proj.weight", HR_SLOT_Q, HR_HF_ROTATE_HALF},
    {"self_attn.k_proj.weight", HR_SLOT_K, HR_HF_ROTATE_HALF},
    {"self_attn.v_proj.weight", HR_SLOT_V, HR_HF_AS_IS},
    {"self_attn.o_proj.weight", HR_SLOT_O, HR_HF_AS_IS},
    {"self_attn.q_proj.bias", HR_SLOT_Q_B, HR_HF_ROTATE_HALF},
    {"self_attn.k_proj.bias", HR_SLOT_K_B, HR_HF_ROTATE_HALF},
    {"self_attn.v_proj.bias", HR_SLOT_V_B, HR_HF_AS_IS},
    {"self_attn.o_proj.bias", HR_SLOT_O_B, HR_HF_AS_IS},
    {"post_attention_layernorm.weight", HR_SLOT_FFN_NORM, HR_HF_AS_IS},
    {"mlp.gate_proj.weight", HR_SLOT_GATE, HR_HF_AS_IS},
    {"mlp.up_proj.weight", HR_SLOT_UP, HR_HF_AS_IS},
    {"mlp.down_proj.weight", HR_SLOT_DOWN, HR_HF_AS_IS},
    {NULL, 0, 0},
};

/* transformers' GPT2LMHeadModel: Conv1D weights, fused c_attn */
static const hr_hf_tensor gpt2_head[] = {
    {"wte.weight", HR_SLOT_TOK_EMBD, HR_HF_AS_IS}, {"wpe.weight", HR_SLOT_POS_EMBD, HR_HF_AS_IS}, {NULL, 0, 0}};
static const hr_hf_tensor gpt2_tail[] = {
    {"ln_f.weight", HR_SLOT_OUT_NORM, HR_HF_AS_IS}, {"ln_f.bias", HR_SLOT_OUT_NORM_B, HR_HF_AS_IS}, {NULL, 0, 0}};
static const hr_hf_tensor gpt2_layer[] = {
    {"ln_1.weight", HR_SLOT_ATTN_NORM, HR_HF_AS_IS},
    {"ln_1.bias", HR_SLOT_ATTN_NORM_B, HR_HF_AS_IS},
    {"attn.c_attn.weight", HR_SLOT_QKV, HR_HF_CONV1D},
    {"attn.c_attn.bias", HR_SLOT_QKV_B, HR_HF_AS_IS},
    {"attn.c_proj.weight", HR_SLOT_O, HR_HF_CONV1D},
    {"attn.c_proj.bias", HR_SLOT_O_B, HR_HF_AS_IS},
    {"ln_2.weight", HR_SLOT_FFN_NORM, HR_HF_AS_IS},
    {"ln_2.bias", HR_SLOT_FFN_NORM_B, HR_HF_AS_IS},
    {"mlp.c_fc.weight", HR_SLOT_UP, HR_HF_CONV1D},
    {"mlp.c_fc.bias", HR_SLOT_UP_B, HR_HF_AS_IS},
    {"mlp.c_proj.weight", HR_SLOT_DOWN, HR_HF_CONV1D},
    {"mlp.c_proj.bias", HR_SLOT_DOWN_B, HR_HF_AS_IS},
    {NULL, 0, 0},
};

static const hr_arch_info registry[] = {
    {
        .arch = HR_ARCH_LLAMA,
        .name = "llama",
        .norm = HR_NORM_RMS,
        .mlp = HR_MLP_SWIGLU,
        .pos = HR_POS_ROPE,
        .gguf_names = {"llama", "deci"},
        .gguf_per_layer_name = "deci",
        .hf_model_types = {"llama", "mistral"},
        .hf_class = "LlamaForCausalLM",
        .hf_config = HR_HF_CONFIG_LLAMA,
        .hf_attention_bias = true,
        .hf_prefix = "model.",
        .hf_layer = "layers.%d.",
        .hf_head = llama_head,
        .hf_tail = llama_tail,
        .hf_layer_tensors = llama_layer,
    },
    {
        .arch = HR_ARCH_QWEN2,
        .name = "qwen2",
        .norm = HR_NORM_RMS,
        .mlp = HR_MLP_SWIGLU,
        .pos = HR_POS_ROPE,
        .qkv_bias = true,
        .gguf_names = {"qwen2"},
        .gguf_qk_rotate_half = true,
        .hf_model_types = {"qwen2"},
        .hf_class = "Qwen2ForCausalLM",
        .hf_config = HR_HF_CONFIG_LLAMA,
        .hf_prefix = "model.",
        .hf_layer = "layers.%d.",
        .hf_head = llama_head,
        .hf_tail = llama_tail,
        .hf_layer_tensors = llama_layer,
    },
    {
        .arch = HR_ARCH_GPT2,
        .name = "gpt2",
        .norm = HR_NORM_LAYER,
        .mlp = HR_MLP_GELU,
        .pos = HR_POS_LEARNED,
        .qkv_bias = true,
        .out_bias = true,
        .mlp_bias = true,
        .gguf_names = {"gpt2"},
        .gguf_fused_qkv = true,
        .hf_model_types = {"gpt2"},
        .hf_class = "GPT2LMHeadModel",
        .hf_config = HR_HF_CONFIG_GPT2,
        .hf_prefix = "transformer.",
        .hf_layer = "h.%d.",
        .hf_head = gpt2_head,
        .hf_tail = gpt2_tail,
        .hf_layer_tensors = gpt2_layer,
    },
};
enum { N_ARCH = sizeof registry / sizeof registry[0] };

const hr_arch_info *hr_arch_info_of(hr_arch a) {
    for (int i = 0; i < N_ARCH; i++)
        if (registry[i].arch == a) return &registry[i];
    return NULL;
}

static bool listed(const char *const *names, const char *name) {
    for (int k = 0; k < 4 && names[k]; k++)
        if (strcmp(names[k], name) == 0) return true;
    return false;
}

const hr_arch_info *hr_arch_by_gguf_name(const char *name) {
    for (int i = 0; i < N_ARCH; i++)
        if (listed(registry[i].gguf_names, name)) return &registry[i];
    return NULL;
}

const hr_arch_info *hr_arch_by_hf_model_type(const char *name) {
    for (int i = 0; i < N_ARCH; i++)
        if (listed(registry[i].hf_model_types, name)) return &registry[i];
    return NULL;
}

static void list(char *buf, size_t cap, bool gguf) {
    size_t n = 0;
    if (cap) buf[0] = 0;
    for (int i = 0; i < N_ARCH; i++) {
        const char *const *names = gguf ? registry[i].gguf_names : registry[i].hf_model_types;
        for (int k = 0; k < 4 && names[k]; k++) {
            int w = snprintf(buf + n, cap > n ? cap - n : 0, "%s%s", n ? ", " : "", names[k]);
            if (w < 0 || n + (size_t)w >= cap) return;
            n += (size_t)w;
        }
    }
}

void hr_arch_list_gguf_names(char *buf, size_t cap) { list(buf, cap, true); }
void hr_arch_list_hf_model_types(char *buf, size_t cap) { list(buf, cap, false); }

hr_status hr_config_set_arch(hr_config *c, hr_arch arch) {
    const hr_arch_info *ai = hr_arch_info_of(arch);
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
    for (int i = 0; i < N_ARCH; i++)
        if (strcmp(registry[i].name, name) == 0 || listed(registry[i].hf_model_types, name) ||
            listed(registry[i].gguf_names, name)) {
            *out = registry[i].arch;
            return HR_OK;
        }
    char names[256];
    hr_arch_list_hf_model_types(names, sizeof names);
    return hr_err(HR_ERR_UNSUPPORTED, "architecture '%s' is not supported (%s)", name, names);
}

int hr_arch_count(void) { return N_ARCH; }

const char *hr_arch_name(hr_arch a) {
    const hr_arch_info *ai = hr_arch_info_of(a);
    return ai ? ai->name : "unknown";
}
