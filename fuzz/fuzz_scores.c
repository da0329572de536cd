/* libFuzzer target: the score table's readers (heads.json, layers.json) on
 * input that is not NUL-terminated, for a stories260K-shaped model; what
 * they accept must answer every query without a crash. */
#include "fuzz_common.h"
#include "headroom/scores.h"
#include "model/config.h"

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hr_config c;
    memset(&c, 0, sizeof c);
    c.n_layers = 5;
    c.head_dim = 8;
    c.seq_len = 512;
    for (int l = 0; l < 5; l++) c.n_head[l] = 8, c.n_head_kv[l] = 4, c.n_ff[l] = 172;
    hr_scores *s = NULL;
    HR_FUZZ_ASSERT(hr_scores_new(&c, &s) == HR_OK);
    bool heads = hr_scores_parse_heads(s, (const char *)data, size, "fuzz") == HR_OK;
    bool layers = hr_scores_parse_layers(s, (const char *)data, size, "fuzz") == HR_OK;
    HR_FUZZ_ASSERT(!(heads && layers)); /* one document cannot be both kinds */
    float order[5 * 8], lm[5];
    for (int i = 0; i < hr_scores_n_methods(s); i++) {
        const char *id = hr_scores_method_id(s, i);
        HR_FUZZ_ASSERT(id && *id);
        if (hr_scores_keep_order(s, id, i & 1, order) == HR_OK)
            for (int k = 0; k < 5 * 8; k++) HR_FUZZ_ASSERT(!isnan(order[k]));
        hr_kv_policy rest = {HR_KV_STREAMING, 4, 64, 0};
        hr_kv_plan *p = NULL;
        if (hr_scores_kv_plan(s, &c, id, 0.25f, rest, &p) == HR_OK) HR_FUZZ_ASSERT(hr_kv_plan_n_reduced(p) == 15);
        hr_kv_plan_free(p);
    }
    for (int i = 0; i < hr_scores_n_layer_metrics(s); i++)
        hr_scores_layer_metric(s, hr_scores_layer_metric_id(s, i), lm);
    hr_scores_free(s);
    return 0;
}
