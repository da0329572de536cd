/* The quantization study's result (study/quantize/), shared by its run and
 * its JSON. */
#ifndef HR_QUANTIZE_INTERNAL_H
#define HR_QUANTIZE_INTERNAL_H

#include "headroom/quantize.h"
#include "headroom/save.h"
#include "model/model_internal.h"

/* A component: its public record and the f32 matrices it covers (one, or
 * Q, K, V of a fused attn_qkv), borrowed from the base model. */
typedef struct {
    hr_quant_component pub;
    const float *part[3];
    size_t part_n[3]; /* values of each part */
    int n_parts;
    int cols; /* values a row (the same in every part) */
} hr_qcomp;

struct hr_quantize_result {
    const hr_model *base;      /* borrowed */
    hr_quantize_params params; /* text not kept */
    int n_ctx;                 /* scoring window */
    int ctx_len;               /* contexts' length: the window or an FDTM prompt + continuation */
    hr_dtype kept;             /* dtype of what is not chosen */
    hr_qcomp *comp;            /* (n) in listing order */
    int n;
    hr_quantize_summary sum;
};

#endif
