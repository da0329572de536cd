/* Test helper: stories260K's fixed 32 tokens and the all-position logits
 * of a model on them (one thread, 64-token context). */
#ifndef HR_TEST_STORY_UTIL_H
#define HR_TEST_STORY_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "headroom/context.h"
#include "headroom/save.h"
#include "model/config.h"

static const int32_t k_tokens[] = {1,   403, 407, 261, 378, 429, 360, 365, 267, 265, 281, 304, 292, 412, 439, 259,
                                   284, 266, 292, 343, 261, 378, 429, 360, 370, 300, 322, 411, 290, 268, 407, 270};
enum { N_TOK = sizeof k_tokens / sizeof k_tokens[0] };

/* (N_TOK, vocab) logits of m on k_tokens, or NULL; caller frees. */
static inline float *run_logits(const hr_model *m) {
    hr_context *ctx = NULL;
    hr_context_params p = hr_context_default_params();
    p.n_ctx = 64;
    p.n_threads = 1;
    if (hr_context_new(m, &p, &ctx) != HR_OK) return NULL;
    float *lg = malloc(sizeof(float) * N_TOK * (size_t)hr_model_config(m)->vocab_size); // (N_TOK, vocab)
    if (hr_forward(ctx, k_tokens, N_TOK, lg, true) != HR_OK) {
        free(lg);
        lg = NULL;
    }
    hr_context_free(ctx);
    return lg;
}

/* The model at path written as a GGUF in dtype d and loaded back (its
 * matrices typed: bf16, f16, Q8_0), or NULL with hr_last_error() set; the
 * file (tag names it) is removed. */
static inline hr_model *typed_copy(const char *path, hr_dtype d, const char *tag) {
    hr_model *f = NULL, *m = NULL;
    char tmp[256];
    snprintf(tmp, sizeof tmp, "/tmp/hr_test_%s_%d_%s.gguf", tag, (int)getpid(), hr_dtype_name(d));
    if (hr_model_load(path, &f) == HR_OK && hr_model_save_gguf(f, NULL, tmp, d) == HR_OK) hr_model_load(tmp, &m);
    hr_model_free(f);
    unlink(tmp);
    return m;
}

#endif
