/* headroom info: everything the loader knows about a model. */
#include "commands.h"
#include "common.h"
#include "headroom/context.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

static const cli_opt k_opts[] = {
    {"tokenizer", 0, "PATH", "tokenizer to describe (default: found beside the model, or the GGUF itself)"},
    {"no-tensors", 0, NULL, "omit the tensor list"},
};

static const cli_spec k_spec = {
    .name = "info",
    .usage = "[MODEL] [options]",
    .summary = "Prints a model's format, architecture, every hyper-parameter, the query heads, KV heads\n"
               "and FFN size of each layer, every tensor's shape, the parameter count and the dtype\n"
               "the weights were stored in.",
    .opts = k_opts,
    .n_opts = sizeof k_opts / sizeof k_opts[0],
    .example = "  headroom info ../shared/models/stories260K/stories260K.gguf",
    .max_positional = 1,
};

/* The number format each kind of matrix is kept in for compute, and the
 * weight bytes the model holds (before a context packs the matrices). */
static void print_weight_dtypes(const hr_model *m) {
    static const char *const kinds[] = {"token_embd", "attn_q", "attn_k",   "attn_v", "attn_output",
                                        "ffn_gate",   "ffn_up", "ffn_down", "output"};
    char line[512] = "";
    size_t at = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        const char *dt = NULL;
        for (int i = 0; i < hr_model_n_tensors(m) && !dt; i++) {
            hr_tensor_info ti;
            if (hr_model_tensor_info(m, i, &ti) != HR_OK) continue;
            const char *base = strrchr(ti.name, '.'), *start = ti.name;
            if (strncmp(ti.name, "blk.", 4) == 0) start = strchr(ti.name + 4, '.') + 1;
            if (base && (size_t)(base - start) == strlen(kinds[k]) && strncmp(start, kinds[k], strlen(kinds[k])) == 0)
                dt = hr_model_tensor_dtype(m, i);
        }
        if (dt && at < sizeof line)
            at += (size_t)snprintf(line + at, sizeof line - at, "%s%s %s", at ? ", " : "", kinds[k], dt);
    }
    printf("compute dtypes:    %s\n", line);
    printf("weight bytes:      %.1f MB (held now; the first context packs each matrix once)\n",
           hr_model_weight_bytes(m) / 1e6);
}

static void print_config(const hr_model *m) {
    const hr_config *c = hr_model_config(m);
    printf("format:            %s\n", hr_format_name(hr_model_format(m)));
    printf("architecture:      %s\n", hr_arch_name(hr_config_arch(c)));
    printf("source dtype:      %s\n", hr_model_source_dtype(m));
    printf("parameters:        %lld\n", (long long)hr_model_n_params(m));
    print_weight_dtypes(m);
    printf("dim:               %d\n", hr_config_dim(c));
    printf("n_layers:          %d\n", hr_config_n_layers(c));
    printf("head_dim:          %d\n", hr_config_head_dim(c));
    printf("max heads:         %d\n", hr_config_max_heads(c));
    printf("max kv heads:      %d\n", hr_config_max_kv_heads(c));
    printf("max ffn size:      %d\n", hr_config_max_ff(c));
    printf("vocab_size:        %d\n", hr_config_vocab_size(c));
    printf("seq_len:           %d\n", hr_config_seq_len(c));
    printf("rope_theta:        %g\n", (double)hr_config_rope_theta(c));
    printf("norm_eps:          %g\n", (double)hr_config_norm_eps(c));
    printf("tied classifier:   %s\n", hr_config_tied_classifier(c) ? "yes" : "no");
    printf("norm / mlp / pos:  %s / %s / %s\n", hr_config_norm(c) == HR_NORM_LAYER ? "LayerNorm" : "RMSNorm",
           hr_config_mlp(c) == HR_MLP_GELU ? "GELU" : "SwiGLU",
           hr_config_pos(c) == HR_POS_LEARNED ? "learned" : "RoPE");
    printf("biases:            qkv %s, attn out %s, mlp %s\n", hr_config_qkv_bias(c) ? "yes" : "no",
           hr_config_out_bias(c) ? "yes" : "no", hr_config_mlp_bias(c) ? "yes" : "no");
    if (hr_config_rope_scaling(c).llama3)
        printf("rope scaling:      llama3 (factor %g, low %g, high %g, original ctx %d)\n",
               (double)hr_config_rope_scaling(c).factor, (double)hr_config_rope_scaling(c).low_freq_factor,
               (double)hr_config_rope_scaling(c).high_freq_factor, hr_config_rope_scaling(c).original_ctx);
}

static void print_layers(const hr_config *c) {
    printf("\nlayers:\n  %5s %8s %8s %8s\n", "layer", "heads", "kv_heads", "ffn");
    for (int l = 0; l < hr_config_n_layers(c); l++)
        printf("  %5d %8d %8d %8d\n", l, hr_config_n_head(c, l), hr_config_n_head_kv(c, l), hr_config_n_ff(c, l));
}

static int print_tensors(const hr_model *m) {
    int n = hr_model_n_tensors(m);
    printf("\ntensors (%d):\n", n);
    for (int i = 0; i < n; i++) {
        hr_tensor_info ti;
        if (hr_model_tensor_info(m, i, &ti) != HR_OK) return cli_lib_error("cannot describe a tensor");
        if (ti.n_dims == 1) printf("  %-32s (%lld)\n", ti.name, (long long)ti.cols);
        else printf("  %-32s (%lld, %lld)\n", ti.name, (long long)ti.rows, (long long)ti.cols);
    }
    return CLI_OK;
}

/* The tokenizer is optional for info: a missing one is reported, not fatal. */
static void print_tokenizer(const char *model_path, const hr_model *m, const char *explicit_path) {
    char path[PATH_MAX + 256];
    hr_tokenizer *t = NULL;
    if (hr_tokenizer_find_for_model(model_path, explicit_path, path, sizeof path) != HR_OK ||
        hr_tokenizer_load(path, &t) != HR_OK) {
        printf("\ntokenizer:         none (%s)\n", hr_last_error());
        return;
    }
    printf("\ntokenizer:         %s\n", path);
    printf("tokenizer vocab:   %d%s\n", hr_tokenizer_vocab_size(t),
           hr_tokenizer_vocab_size(t) > hr_config_vocab_size(hr_model_config(m)) ? " (larger than the model's!)" : "");
    printf("bos / eos:         %d / %d\n", (int)hr_tokenizer_bos(t), (int)hr_tokenizer_eos(t));
    hr_tokenizer_free(t);
}

int cmd_info(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&k_spec, argc, argv, &a) != CLI_OK) return CLI_FAIL;
    if (a.help) {
        cli_print_help(&k_spec);
        return CLI_OK;
    }
    char path[PATH_MAX + 64];
    if (cli_resolve_model(&a, path, sizeof path) != CLI_OK) return CLI_FAIL;
    hr_model *m = NULL;
    if (cli_load_model(path, &m) != CLI_OK) return CLI_FAIL;
    printf("model:             %s\n", path);
    print_config(m);
    printf("kernels:           %s (CPU path; HEADROOM_CPU forces one)\n", hr_cpu_path());
    print_layers(hr_model_config(m));
    int rc = cli_value(&k_spec, &a, "no-tensors") ? CLI_OK : print_tensors(m);
    if (rc == CLI_OK) print_tokenizer(path, m, cli_value(&k_spec, &a, "tokenizer"));
    hr_model_free(m);
    return rc;
}
