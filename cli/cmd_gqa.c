/* headroom gqa: multi-head -> grouped-query attention by merging K/V. */
#include "commands.h"
#include "common.h"

#include "headroom/context.h"
#include "headroom/save.h"
#include "headroom/gqa.h"
#include "headroom/study.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt k_opts[] = {
    {"kv-heads", 0, "N", "KV heads per layer after conversion (required; divides the current count)"},
    {"grouping", 0, "MODE", "neighbour (consecutive heads) | asym (similar key/value activations) (default neighbour)"},
    {"text", 'f', "FILE", "calibration text (required for asym)"},
    {"tokens", 'n', "N", "calibration tokens (default " CLI_STR(HR_CALIB_SURGERY_TOKENS) ")"},
    {"out", 'o', "OUT.gguf", "output GGUF (required)"},
    {"hf", 0, "DIR", "also write a Hugging Face folder"},
    CLI_DTYPE_OPTION,
    CLI_TOKENIZER_OPTION,
    CLI_THREADS_OPTION,
    CLI_FORCE_OPTION,
};

static const cli_spec k_spec = {
    .name = "gqa",
    .usage = "[MODEL] --kv-heads N [--grouping neighbour|asym --text FILE] --out OUT.gguf",
    .summary = "Converts multi-head (or grouped) attention to N KV heads per layer: the K and V projections\n"
               "of the heads in a group are replaced by their mean, and query heads are reordered so each\n"
               "group's queries are contiguous. neighbour groups consecutive heads (GQA paper); asym groups\n"
               "heads whose keys and values are most similar on the calibration text (AsymGQA, with\n"
               "equal group sizes). Prints the groups chosen.",
    .opts = k_opts,
    .n_opts = sizeof k_opts / sizeof k_opts[0],
    .example = "  headroom gqa --kv-heads 2 --grouping asym -f ../shared/data/text/tinystories_val.txt -o kv2.gguf",
    .max_positional = 1,
};

static void print_groups(const hr_model *m, int n_kv, const int *groups) {
    const hr_config *c = hr_model_config(m);
    int K = hr_config_max_kv_heads(c);
    for (int l = 0; l < hr_config_n_layers(c); l++) {
        if (!hr_config_n_head_kv(c, l)) continue;
        printf("layer %d:", l);
        for (int j = 0; j < n_kv; j++) {
            printf(" {");
            int first = 1;
            for (int k = 0; k < hr_config_n_head_kv(c, l); k++)
                if (groups[l * K + k] == j) printf(first ? "%d" : ",%d", k), first = 0;
            printf("}");
        }
        printf("\n");
    }
}

static int convert(const cli_args *a, long kv, hr_gqa_grouping grouping, const char *text, long tokens, long threads,
                   hr_dtype dtype) {
    char path[PATH_MAX + 64];
    hr_model *m = NULL, *g = NULL;
    hr_tokenizer *tok = NULL;
    hr_context *ctx = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    float *sim = NULL;
    int *groups = NULL;
    int rc = CLI_FAIL;
    if (cli_resolve_model(a, path, sizeof path)) goto out;
    const char *out_path = cli_value(&k_spec, a, "out"), *hf = cli_value(&k_spec, a, "hf");
    const char *tok_path = cli_value(&k_spec, a, "tokenizer");
    bool force = cli_value(&k_spec, a, "force") != NULL;
    const char *inputs[] = {text, tok_path, NULL};
    if (cli_check_output(out_path, HR_OUT_GGUF, NULL, force, path, tok_path, inputs) ||
        (hf && cli_check_output(hf, HR_OUT_HF_FOLDER, NULL, force, path, tok_path, inputs)))
        goto out;
    if (cli_load_model(path, &m)) goto out;
    const hr_config *c = hr_model_config(m);
    int K = hr_config_max_kv_heads(c);
    groups = calloc((size_t)hr_config_n_layers(c) * K + 1, sizeof(int));
    if (!groups) goto out;
    if (grouping != HR_GQA_ASYM) cli_load_tokenizer_optional(path, m, tok_path, &tok);
    else {
        char *txt = NULL;
        size_t len = 0;
        hr_context_params cp = hr_context_default_params();
        cp.n_ctx = hr_calib_window(hr_config_seq_len(c), 0);
        cp.n_threads = (int)threads;
        sim = calloc((size_t)hr_config_n_layers(c) * K * K + 1, sizeof(float));
        if (!sim || cli_load_tokenizer(path, m, tok_path, &tok) || cli_read_text(text, &txt, &len)) goto out;
        hr_status st = hr_calib_tokens(tok, txt, len, tokens, &ids, &n_ids);
        free(txt);
        if (st != HR_OK || hr_context_new(m, &cp, &ctx) != HR_OK ||
            hr_gqa_kv_similarity(ctx, ids, n_ids, 0, sim) != HR_OK) {
            cli_lib_error("KV similarity failed");
            goto out;
        }
    }
    if (hr_gqa_groups(m, (int)kv, grouping, sim, groups) != HR_OK || hr_gqa_convert(m, (int)kv, groups, &g) != HR_OK) {
        cli_lib_error("conversion failed");
        goto out;
    }
    if (hf && !hr_config_uniform(hr_model_config(g))) {
        cli_error("the converted model differs across layers; write only the GGUF");
        goto out;
    }
    if (hr_model_save_gguf(g, tok, out_path, cli_gguf_dtype(dtype)) != HR_OK) {
        cli_lib_error("cannot write the GGUF");
        goto out;
    }
    if (hf && hr_model_save_hf(g, tok, hf, dtype) != HR_OK) {
        remove(out_path);
        cli_lib_error("cannot write the Hugging Face folder");
        goto out;
    }
    printf("converted %s -> %s (%s): %d KV heads per layer, %s grouping\n", path, out_path,
           hr_dtype_name(hr_dtype_for_model(g, dtype, true)), (int)kv, hr_gqa_grouping_name(grouping));
    print_groups(m, (int)kv, groups);
    printf("parameters: %lld -> %lld\n", (long long)hr_model_n_params(m), (long long)hr_model_n_params(g));
    rc = CLI_OK;
out:
    free(groups);
    free(sim);
    free(ids);
    hr_context_free(ctx);
    hr_tokenizer_free(tok);
    hr_model_free(g);
    hr_model_free(m);
    return rc;
}

int cmd_gqa(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&k_spec, argc, argv, &a) != CLI_OK) return CLI_FAIL;
    if (a.help) {
        cli_print_help(&k_spec);
        return CLI_OK;
    }
    long kv = 0, tokens = HR_CALIB_SURGERY_TOKENS, threads = 0;
    if (cli_get_int(&k_spec, &a, "kv-heads", 1, 1024, &kv) ||
        cli_get_int(&k_spec, &a, "tokens", 16, INT_MAX, &tokens) ||
        cli_get_int(&k_spec, &a, "threads", 0, 4096, &threads))
        return CLI_FAIL;
    if (!kv) return cli_error("--kv-heads N is required (see 'headroom gqa --help')");
    if (!cli_value(&k_spec, &a, "out")) return cli_error("--out OUT.gguf is required");
    const char *gname = cli_value(&k_spec, &a, "grouping"), *text = cli_value(&k_spec, &a, "text");
    hr_gqa_grouping grouping;
    if (hr_gqa_grouping_from_name(gname ? gname : "neighbour", &grouping) != HR_OK)
        return cli_lib_error("bad --grouping");
    if (grouping == HR_GQA_ASYM && !text) return cli_error("--grouping asym needs --text FILE");
    hr_dtype dtype;
    if (cli_get_dtype(&k_spec, &a, &dtype)) return CLI_FAIL;
    return convert(&a, kv, grouping, text, tokens, threads, dtype);
}
