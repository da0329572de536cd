/* headroom — choosing which weight matrices go to 8 bits (Divergent Token
 * Metrics, Deiseroth et al. 2023: "80 % of parameters to int8 without
 * outlier handling", chosen by the first divergent token).
 *
 * Components are the model's weight matrices as a GGUF holds them (the
 * token embedding, which a tied classifier shares; the output matrix when
 * untied; per layer W_q, W_k, W_v, W_o, W_gate, W_up, W_down, or the fused
 * attn_qkv of GPT-2). A component is eligible when Q8_0 can hold it (rows
 * of a multiple of 32 values; not the learned position embedding).
 *
 * Sensitivity of an eligible component (when a text is given): the model
 * with only that matrix replaced by its Q8_0 quantize-dequantize
 * (hr_dtype's Q8_0, in f32: the forward pass runs in f32 on the
 * dequantized weights, which is what an int8-weight / f32-activation
 * kernel computes up to summation order) is compared with the model as it
 * is:
 *  - fdtm: hr_compare_fdtm's mean first divergent token of greedy
 *    continuations (higher = diverges later = less sensitive);
 *  - ppl: the perplexity change exp(NLL_cand) - exp(NLL_base) over the same
 *    windows of the text (hr_compare_logits; lower = less sensitive), with
 *    the mean KL(base || cand) beside it.
 *
 * Choice (`by`): eligible components ranked by fdtm (highest first; ties:
 * smaller perplexity change, then listing order), by ppl (smallest change
 * first; ties: listing order) or in a random order (seeded shuffle); in
 * that order a component is taken when the parameters taken so far plus
 * its own stay within P % of the eligible parameters (P = int8_percent):
 * the result quantizes at most P %, usually slightly less; both shares
 * (of the eligible and of all parameters) are reported.
 *
 * Format (`format`): HR_QUANT_Q8_0 (default) as above; HR_QUANT_INT8:
 * per-channel int8 (one f32 scale a row: scale = max |row| / 127, q =
 * round half to even (x / scale), hr_quantize_i8_row), the quantization
 * the DTM paper's int8 stands for (per-row absmax, no outlier handling).
 * Eligible then: the attention and MLP projections (W_q, W_k, W_v, W_o,
 * W_gate, W_up, W_down, rows a multiple of 4 values; not the embedding,
 * the output matrix or GPT-2's Conv1D), scored by their per-row int8 quantize-dequantize; the
 * result is written as a Hugging Face folder (hr_quantize_save_hf) in
 * compressed-tensors' per-channel int8 layout (save.h's HR_DTYPE_INT8)
 * for the chosen matrices, every other tensor in `dtype`.
 *
 * The written model (hr_quantize_save_gguf) holds the chosen matrices as
 * Q8_0 and every other matrix in `dtype` (default HR_DTYPE_KEEP: as the
 * input holds it, hr_dtype_for_model — f32, f16 or bf16; a q8_0 input's
 * other matrices f32, which holds their values exactly; other sources f32),
 * norms and biases f32.
 */
#ifndef HEADROOM_QUANTIZE_H
#define HEADROOM_QUANTIZE_H

#include "headroom/common.h"
#include "headroom/model.h"
#include "headroom/save.h"
#include "headroom/tokenizer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { HR_QUANT_BY_FDTM = 0, HR_QUANT_BY_PPL = 1, HR_QUANT_BY_RANDOM = 2 } hr_quant_by;
typedef enum { HR_QUANT_Q8_0 = 0, HR_QUANT_INT8 = 1 } hr_quant_format;

/* "q8_0" | "int8". */
HR_API hr_status hr_quant_format_from_name(const char *name, hr_quant_format *out);
HR_API const char *hr_quant_format_name(hr_quant_format f);

/* "fdtm" | "ppl" | "random". */
HR_API hr_status hr_quant_by_from_name(const char *name, hr_quant_by *out);
HR_API const char *hr_quant_by_name(hr_quant_by b);

typedef struct {
    hr_quant_by by;      /* ranking (default HR_QUANT_BY_FDTM) */
    double int8_percent; /* share of the eligible parameters to quantize, in (0, 100) (default 80) */
    const char *text;    /* scoring text (borrowed), tokenized with BOS; required for fdtm and ppl;
                                with random it adds the scores to the report */
    size_t text_len;
    int64_t max_tokens;                  /* text tokens for the perplexity change (default 4096; 0 = all) */
    int n_ctx;                           /* window; 0 = hr_calib_window(seq_len) */
    int fdtm_prompts;                    /* FDTM prompts (default 32) */
    int fdtm_prompt_len;                 /* tokens per prompt incl. BOS (default 16) */
    int fdtm_gen;                        /* greedy continuation (default 32) */
    uint64_t seed;                       /* FDTM prompts and the random order (default 0) */
    int n_threads;                       /* 0 = all cores */
    hr_progress_phase_fn progress_phase; /* phases: "scoring components" (components), NULL = the thread's */
    void *progress_user_data;
    hr_dtype dtype; /* the other matrices: f32, f16, bf16 or HR_DTYPE_KEEP (default; q8_0 is HR_ERR_INVALID_ARG) */
    hr_quant_format format; /* what a chosen matrix becomes (default HR_QUANT_Q8_0) */
} hr_quantize_params;

HR_API hr_quantize_params hr_quantize_default_params(void);

typedef struct {
    const char *name; /* GGUF tensor name, e.g. "blk.0.attn_q.weight" (owned by the result) */
    int layer;        /* -1 for the embedding and the output matrix */
    int64_t params;   /* values of the matrix */
    bool eligible;    /* the format can hold it (above) */
    bool chosen;      /* written in the format */
    int rank;         /* position in the ranking (0 = first), -1 when not eligible */
    double fdtm;      /* NAN when not scored */
    double ppl;       /* perplexity with only this matrix quantized; NAN when not scored */
    double dppl;      /* ppl - the model's perplexity */
    double kl;        /* mean KL(base || cand), nats */
} hr_quant_component;

typedef struct {
    int n_components, n_eligible, n_chosen;
    int64_t params_total;    /* hr_model_n_params */
    int64_t params_eligible; /* parameters of eligible components */
    int64_t params_int8;     /* parameters of chosen components */
    double base_ppl;         /* perplexity of the model as it is (NAN when not scored) */
    bool scored;             /* a text was given */
    int n_tokens;            /* text tokens the perplexity change used */
    char kept_dtype[8];      /* "f32" | "f16" | "bf16": what the other tensors are written as */
} hr_quantize_summary;

typedef struct hr_quantize_result hr_quantize_result;

/* Scores and chooses (above). A percentage outside (0, 100), fdtm or ppl
 * without a text, a text too short for one window or FDTM prompt, or a
 * model with no eligible matrix are errors before any work. m must outlive
 * the result (hr_quantize_save_gguf writes it). *out owned by caller:
 * hr_quantize_result_free(). */
HR_API hr_status hr_quantize_run(const hr_model *m, const hr_tokenizer *tok, const hr_quantize_params *p,
                                 hr_quantize_result **out);
HR_API void hr_quantize_result_free(hr_quantize_result *r);                                /* NULL ok */
HR_API const hr_quantize_summary *hr_quantize_result_summary(const hr_quantize_result *r); /* borrowed */
/* Component i (0 <= i < n_components) in the model's listing order; NULL
 * outside. Borrowed. */
HR_API const hr_quant_component *hr_quantize_component(const hr_quantize_result *r, int i);

/* Writes the model with the chosen matrices as Q8_0 (above) and tok's
 * vocabulary when non-NULL, atomically. An HR_QUANT_INT8 result is
 * HR_ERR_INVALID_ARG (GGUF has no per-channel int8). */
HR_API hr_status hr_quantize_save_gguf(const hr_quantize_result *r, const hr_tokenizer *tok, const char *path);
/* Writes an HR_QUANT_INT8 result as a Hugging Face folder (the chosen
 * matrices per-channel int8, the rest in the kept dtype; uniform models
 * only), with tok's tokenizer files when non-NULL, atomically. A Q8_0
 * result is HR_ERR_INVALID_ARG. */
HR_API hr_status hr_quantize_save_hf(const hr_quantize_result *r, const hr_tokenizer *tok, const char *dir);

/* quantize.json: {"format": "headroom.quantize", "format_version": 1,
 * "model", "text", "output" (paths as given, "" when none), "by",
 * "int8_percent", "int8_format" (a description of the format), the scoring settings, "base_ppl", the parameter counts
 * and shares, "kept_dtype", and "components": [{"name", "layer", "params",
 * "eligible", "chosen", "rank", "fdtm", "ppl", "dppl", "kl"}] (scores null
 * when not scored)}. *out owned by caller: hr_free(). */
HR_API hr_status hr_quantize_result_json(const hr_quantize_result *r, const char *model_path, const char *text_path,
                                         const char *output_path, char **out);

#ifdef __cplusplus
}
#endif
#endif
