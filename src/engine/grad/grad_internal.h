/* Internals of the gradient engine shared by its files (params.c, grad.c,
 * taylor.c) and by library modules that run it on a pool they already have
 * (the head lab). */
#ifndef HR_GRAD_INTERNAL_H
#define HR_GRAD_INTERNAL_H

#include "headroom/grad.h"
#include "engine/pack.h"
#include "engine/pool.h"
#include "model/model_internal.h"

enum { HR_LORA_N_TARGETS = 7 }; /* q, k, v, o, gate, up, down: bit i of hr_lora_target */

typedef struct {
    hr_param_info info;
    const float *data; /* (rows, cols) values */
    float *owned;      /* == data when the parameters own it, else NULL */
} hr_param_tensor;

struct hr_params {
    const hr_model *model;
    const hr_config *c;
    hr_params_params p;
    int n;
    hr_param_tensor *t; /* (n) in hr_params_n_tensors order */
    hr_weights w;       /* the base weights the forward reads (borrowed or owned) */
    /* Tensor index per (kind, layer) for base weights and gates (global
     * tensors at layer 0), per (layer, target, A/B) for LoRA; -1 = absent. */
    int idx[HR_PARAM_KIND_COUNT][HR_MAX_LAYERS];
    int lora[HR_MAX_LAYERS][HR_LORA_N_TARGETS][2];
    float lora_scale;                      /* alpha / r */
    hr_packed_weights *own_packed;         /* packed copy of owned weights, or NULL */
    const hr_packed_weights *model_packed; /* the model's panels, held (borrowed weights), or NULL */
    bool dirty;                            /* owned weights changed since own_packed was built */
};

/* The model slot each LoRA target adapts (q, k, v, o, gate, up, down). */
extern const hr_slot hr_lora_slot[HR_LORA_N_TARGETS];
/* The model slot of a base-weight kind; HR_N_SLOTS for gates and adapters. */
hr_slot hr_param_slot(hr_param_kind k);

/* Index of (kind, layer) in p, -1 when absent (global kinds: any layer). */
int hr_params_index(const hr_params *p, hr_param_kind kind, int layer);
/* The panel-packed matrices of the current weights: the model's cached
 * ones when borrowed, else packed on pool (again after a change). */
hr_status hr_params_packed(hr_params *p, hr_pool *pool, const hr_packed_weights **out);

/* Frees the packed copy of owned weights (rebuilt by the next forward):
 * memory given back once training is over. */
void hr_params_release_packed(hr_params *p);

/* Frees g's window buffers (activations, scratch; sized again by the next
 * window), keeping its gradients. */
void hr_grad_release_window(hr_grad *g);

/* hr_grad_new on a pool the caller owns (borrowed; it must outlive g and
 * not run other work while g computes). */
hr_status hr_grad_new_on_pool(hr_params *p, const hr_grad_params *gp, hr_pool *pool, hr_grad **out);
/* The parameters g differentiates (borrowed). */
const hr_params *hr_grad_owner(const hr_grad *g);
/* The pool g runs on (borrowed; free while g does not compute), for the
 * optimiser's element-wise passes over its gradients. */
hr_pool *hr_grad_pool(const hr_grad *g);

#endif
