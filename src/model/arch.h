/* The architecture registry (internal view): one row per model family
 * holding everything that differs between families — forward-pass traits
 * and how the family's files name and lay out its weights — so loaders,
 * writers and the forward pass read the row instead of switching on the
 * architecture. A Llama-like family (a new model_type, GGUF name or class)
 * is one row in arch.c; its hr_arch id is its row. */
#ifndef HR_MODEL_ARCH_H
#define HR_MODEL_ARCH_H

#include <stdbool.h>
#include <stddef.h>

#include "model/model_internal.h"

/* Which config.json field names a family uses (io/hf_config.c reads and
 * io/hf_write.c writes each dialect). */
typedef enum {
    HR_HF_CONFIG_LLAMA = 0, /* hidden_size, num_attention_heads, rms_norm_eps, rope_theta, ... (LlamaConfig) */
    HR_HF_CONFIG_GPT2 = 1   /* n_embd, n_head, n_positions, layer_norm_epsilon, ... (GPT2Config) */
} hr_hf_config_dialect;

/* How a Hugging Face tensor stores a slot. */
typedef enum {
    HR_HF_AS_IS = 0,
    HR_HF_CONV1D = 1,     /* stored (in, out): transposed on load and save */
    HR_HF_ROTATE_HALF = 2 /* Q/K rows (and biases) in the rotate-half RoPE layout: permuted per head */
} hr_hf_layout;

typedef struct {
    const char *name; /* after the prefix (and the layer part for layer tensors) */
    hr_slot slot;
    hr_hf_layout layout;
} hr_hf_tensor;

typedef struct {
    hr_arch arch;
    const char *name; /* hr_arch_name; the model_type written */
    /* forward-pass traits (copied into hr_config by hr_config_set_arch) */
    hr_norm_type norm;
    hr_mlp_type mlp;
    hr_pos_type pos;
    bool qkv_bias, out_bias, mlp_bias;
    /* GGUF */
    const char *gguf_names[4];       /* general.architecture values read; [0] is written */
    const char *gguf_per_layer_name; /* written instead when layer sizes differ (llama.cpp's "deci");
                                        NULL: gguf_names[0] (llama.cpp may not load it) */
    bool gguf_fused_qkv;             /* Q/K/V written as one attn_qkv tensor (separate ones are read too) */
    bool gguf_qk_rotate_half; /* Q/K rows stored rotate-half (llama.cpp's NEOX RoPE): permuted on load and save */
    /* Hugging Face */
    const char *hf_model_types[4]; /* config.json model_type values read */
    const char *hf_class;          /* "architectures" written */
    hr_hf_config_dialect hf_config;
    bool hf_attention_bias;               /* config.json attention_bias switches on Q/K/V/O biases (written back) */
    const char *hf_prefix;                /* tensor-name prefix written; optional when read ("model.") */
    const char *hf_layer;                 /* the layer part of a layer tensor's name ("layers.%d.") */
    const hr_hf_tensor *hf_head;          /* model tensors before the layers, then after them, and each */
    const hr_hf_tensor *hf_tail;          /* layer's, in written order; NULL-name terminated. The classifier */
    const hr_hf_tensor *hf_layer_tensors; /* is "lm_head.weight", unprefixed, for every family. */
} hr_arch_info;

/* The row of an architecture id; NULL for an id no row has. */
const hr_arch_info *hr_arch_info_of(hr_arch a);
/* The row that reads GGUF general.architecture / config.json model_type
 * `name`; NULL when none does. */
const hr_arch_info *hr_arch_by_gguf_name(const char *name);
const hr_arch_info *hr_arch_by_hf_model_type(const char *name);
/* "llama, deci, qwen2, gpt2": every row's GGUF names / model types, for messages. */
void hr_arch_list_gguf_names(char *buf, size_t cap);
void hr_arch_list_hf_model_types(char *buf, size_t cap);

/* HF name of the classifier of every family. */
#define HR_HF_LM_HEAD "lm_head.weight"

#endif
