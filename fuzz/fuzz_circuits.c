/* libFuzzer target: the circuit study's readers for a stories260K-shaped
 * model — a prompt-pairs JSONL file (ids; no tokenizer), a gates file and
 * head lists, path-patching and knockout specifications — on input that is
 * not NUL-terminated. What they accept must hold the documented shape. */
#include "fuzz_common.h"
#include "headroom/circuits.h"
#include "headroom/study.h"
#include "model/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hr_config c;
    memset(&c, 0, sizeof c);
    c.n_layers = 5;
    c.head_dim = 8;
    c.seq_len = 512;
    for (int l = 0; l < 5; l++) c.n_head[l] = 8, c.n_head_kv[l] = 4, c.n_ff[l] = 172;
    hr_pairs *ps = NULL;
    if (hr_pairs_parse((const char *)data, size, NULL, NULL, &ps) == HR_OK) {
        HR_FUZZ_ASSERT(hr_pairs_count(ps) >= 1);
        for (int i = 0; i < hr_pairs_count(ps); i++) {
            hr_pair p;
            HR_FUZZ_ASSERT(hr_pairs_get(ps, i, &p) == HR_OK);
            HR_FUZZ_ASSERT(p.n_tokens >= 1 && p.answer != p.wrong && p.answer_tokens == 1 && p.line >= 1);
        }
        char *jsonl = NULL;
        HR_FUZZ_ASSERT(hr_pairs_to_jsonl(ps, &jsonl) == HR_OK);
        hr_pairs *back = NULL; /* what it writes reads back as the same pairs */
        HR_FUZZ_ASSERT(hr_pairs_parse(jsonl, strlen(jsonl), NULL, NULL, &back) == HR_OK);
        HR_FUZZ_ASSERT(hr_pairs_count(back) == hr_pairs_count(ps));
        hr_pairs_free(back);
        hr_free(jsonl);
    } else {
        HR_FUZZ_ASSERT(ps == NULL);
    }
    hr_pairs_free(ps);
    /* the same bytes as text for the other readers (they take C strings) */
    char *s = malloc(size + 1);
    HR_FUZZ_ASSERT(s);
    memcpy(s, data, size);
    s[size] = 0;
    hr_head_mask_params mp = hr_head_mask_default_params();
    mp.gates_text = s;
    hr_head_mask *mk = NULL;
    if (hr_head_mask_new(&c, &mp, &mk) == HR_OK) {
        const float *g = hr_head_mask_gates(mk);
        for (int i = 0; i < 5 * 8; i++) HR_FUZZ_ASSERT(g[i] == g[i]); /* finite: no NaN */
    }
    hr_head_mask_free(mk);
    mp = hr_head_mask_default_params();
    mp.mask_heads = s;
    if (hr_head_mask_new(&c, &mp, &mk) == HR_OK) HR_FUZZ_ASSERT(hr_head_mask_n_heads(mk) <= 40);
    hr_head_mask_free(mk);
    hr_patch_check_path(&c, s);
    hr_patch_check_knockout(&c, s);
    unsigned what;
    hr_patch_parse_what(s, &what);
    free(s);
    return 0;
}
