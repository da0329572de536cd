/* The model configuration's layout (model layer; public code reads it
 * through the hr_config_* accessors of headroom/model.h). */
#ifndef HR_MODEL_CONFIG_H
#define HR_MODEL_CONFIG_H

#include "headroom/model.h"
#include "core/limits.h"

#include <stdbool.h>

/* Hyper-parameters (public as the opaque hr_config with accessors).
 * Per-layer arrays allow pruned (non-uniform) models. */
struct hr_config {
    hr_arch arch;
    int dim; /* residual width */
    int n_layers;
    int head_dim;
    int n_head[HR_MAX_LAYERS];    /* query heads per layer (0 = no attention) */
    int n_head_kv[HR_MAX_LAYERS]; /* KV heads per layer */
    int n_ff[HR_MAX_LAYERS];      /* MLP hidden size per layer (0 = no MLP) */
    int vocab_size;
    int seq_len; /* maximum context */
    float rope_theta;
    float norm_eps;
    bool tied_classifier; /* output weights shared with embedding */
    /* Architecture traits, filled from the registry by hr_config_set_arch(). */
    hr_norm_type norm;
    hr_mlp_type mlp;
    hr_pos_type pos;
    bool qkv_bias; /* biases on Q, K, V projections */
    bool out_bias; /* bias on the attention output projection */
    bool mlp_bias; /* biases on MLP projections */
    hr_rope_scaling rope_scaling;
};

/* Sets arch and its traits (norm, MLP, positions, biases) from its row of
 * the registry (model/arch.h) in c. */
hr_status hr_config_set_arch(hr_config *c, hr_arch arch);

#endif
