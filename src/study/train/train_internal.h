/* Internals of the training loop shared by its files (train.c: data,
 * optimiser, loop; checkpoint.c: saving and resuming; model.c: the trained
 * model and random initialisation). */
#ifndef HR_TRAIN_INTERNAL_H
#define HR_TRAIN_INTERNAL_H

#include "headroom/train.h"
#include "core/rng.h"
#include "engine/grad/grad_internal.h"

typedef struct {
    int index;     /* tensor index in the hr_params */
    size_t n;      /* rows * cols */
    float *m, *v;  /* (n) Adam moments */
    uint8_t *mask; /* (n) 1 = this element trains; NULL = every element */
    bool decay;    /* 2-D tensor: weight decay applies */
} hr_train_tensor;

struct hr_train {
    const hr_model *model;
    hr_train_params p;
    char *only;            /* owned copy of p.only */
    char *checkpoint;      /* owned copy of p.checkpoint */
    int *ranks;            /* (n_layers) owned copy of p.lora_layer_ranks; NULL = lora_rank everywhere */
    const int32_t *tokens; /* (n_tokens) borrowed */
    size_t n_tokens;
    int64_t n_train;      /* tokens [0, n_train) train; [n_train, n_tokens) are held out */
    int window, per_step; /* tokens per window; windows per step (batch * accum) */
    hr_params *params;
    hr_grad *grad;
    hr_train_tensor *tt; /* (n_tt) trainable tensors */
    int n_tt;
    hr_rng rng; /* data stream: window starts */
    hr_train_info info;
    char unit[128]; /* progress unit text (loss, held-out, tokens/s) */
};

/* Hash of the checkpoint header fields that must match (FNV-1a 64). */
uint64_t hr_train_fnv(uint64_t h, const void *data, size_t n);
/* Loads path into t (same shape, mode and part, else an error). */
hr_status hr_train_load(hr_train *t, const char *path);

/* The progress unit text after a step: "steps (loss L, held-out H, N tokens/s)"
 * (t->unit, which a progress phase may show). */
void hr_train_set_unit(hr_train *t);

#endif
