/* quantize.json: each component's scores and choice (hr_quantize_result_json). */
#include "headroom/quantize.h"
#include "study/quantize/quantize_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>

/* A score, or null when it was not computed. */
static void add_score(cJSON *j, const char *key, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(j, key, v);
    else cJSON_AddNullToObject(j, key);
}

static cJSON *component(const hr_quant_component *c) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", c->name);
    cJSON_AddNumberToObject(j, "layer", c->layer);
    cJSON_AddNumberToObject(j, "params", (double)c->params);
    cJSON_AddBoolToObject(j, "eligible", c->eligible);
    cJSON_AddBoolToObject(j, "chosen", c->chosen);
    if (c->rank >= 0) cJSON_AddNumberToObject(j, "rank", c->rank);
    else cJSON_AddNullToObject(j, "rank");
    add_score(j, "fdtm", c->fdtm);
    add_score(j, "ppl", c->ppl);
    add_score(j, "dppl", c->dppl);
    add_score(j, "kl", c->kl);
    return j;
}

hr_status hr_quantize_result_json(const hr_quantize_result *r, const char *model_path, const char *text_path,
                                  const char *output_path, char **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!r) return hr_err(HR_ERR_INVALID_ARG, "no quantization result given");
    const hr_quantize_params *p = &r->params;
    const hr_quantize_summary *s = &r->sum;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", "headroom.quantize");
    cJSON_AddNumberToObject(j, "format_version", 1);
    cJSON_AddStringToObject(j, "model", model_path ? model_path : "");
    cJSON_AddStringToObject(j, "text", text_path ? text_path : "");
    cJSON_AddStringToObject(j, "output", output_path ? output_path : "");
    cJSON_AddStringToObject(j, "by", hr_quant_by_name(p->by));
    cJSON_AddNumberToObject(j, "int8_percent", p->int8_percent);
    cJSON_AddStringToObject(j, "int8_format",
                            r->params.format == HR_QUANT_INT8
                                ? "per-channel int8 (compressed-tensors: f32 scale max|row|/127 a row, int8 "
                                  "round-half-even(x/scale)), Hugging Face folder"
                                : "GGUF Q8_0 (blocks of 32: f16 scale max|x|/127, int8 round(x/scale))");
    cJSON_AddStringToObject(j, "scoring",
                            "only this matrix Q8_0 quantize-dequantized, f32 forward; "
                            "fdtm: mean first divergent token of greedy continuations (higher = later); "
                            "dppl: perplexity change on the text's windows (lower = less sensitive)");
    cJSON_AddBoolToObject(j, "scored", s->scored);
    cJSON_AddNumberToObject(j, "seed", (double)p->seed);
    if (s->scored) {
        cJSON_AddNumberToObject(j, "window", r->n_ctx);
        cJSON_AddNumberToObject(j, "ppl_tokens", s->n_tokens);
        cJSON_AddNumberToObject(j, "fdtm_prompts", p->fdtm_prompts);
        cJSON_AddNumberToObject(j, "fdtm_prompt_len", p->fdtm_prompt_len);
        cJSON_AddNumberToObject(j, "fdtm_gen", p->fdtm_gen);
    }
    add_score(j, "base_ppl", s->base_ppl);
    cJSON_AddStringToObject(j, "kept_dtype", s->kept_dtype);
    cJSON_AddNumberToObject(j, "params_total", (double)s->params_total);
    cJSON_AddNumberToObject(j, "params_eligible", (double)s->params_eligible);
    cJSON_AddNumberToObject(j, "params_int8", (double)s->params_int8);
    cJSON_AddNumberToObject(j, "int8_share_of_eligible",
                            s->params_eligible ? (double)s->params_int8 / (double)s->params_eligible : 0);
    cJSON_AddNumberToObject(j, "int8_share_of_all",
                            s->params_total ? (double)s->params_int8 / (double)s->params_total : 0);
    cJSON_AddNumberToObject(j, "n_chosen", s->n_chosen);
    cJSON *arr = cJSON_AddArrayToObject(j, "components");
    for (int i = 0; i < r->n; i++) cJSON_AddItemToArray(arr, component(&r->comp[i].pub));
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return hr_err(HR_ERR_NOMEM, "out of memory");
    *out = text;
    return HR_OK;
}
