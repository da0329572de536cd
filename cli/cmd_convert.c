/* headroom convert: any readable model -> GGUF file or Hugging Face folder. */
#include "commands.h"
#include "common.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "headroom/save.h"

static const cli_opt k_opts[] = {
    {"to", 0, "gguf|hf", "output format (required)"},
    {"dtype", 0, "f32|f16|bf16|q8_0|int8",
     "weight dtype of the output (default: the source's when the format holds it (f32/f16/bf16, q8_0 in a\n"
     "GGUF, int8 in an HF folder), else f32; q8_0: GGUF only, ggml's Q8_0 for every weight matrix whose rows hold a "
     "multiple of 32 values\n"
     "(others f16); int8: HF only, compressed-tensors per-channel int8 projections (one f32 scale a row), the rest "
     "f32"},
    {"tokenizer", 0, "PATH", "tokenizer to embed in a GGUF (default: found beside the model, or the GGUF itself)"},
    {"no-tokenizer", 0, NULL, "write no tokenizer metadata"},
    {"force", 0, NULL, "replace an existing output that is not an earlier headroom output of the same kind"},
};

static const cli_spec k_spec = {
    .name = "convert",
    .usage = "IN OUT --to gguf|hf [options]",
    .summary = "Converts a model (llama2.c .bin, GGUF or Hugging Face folder) into a GGUF file or a\n"
               "Hugging Face folder (config.json + model.safetensors). Output appears atomically.\n"
               "Models with per-layer sizes (pruned) can only be written as GGUF (architecture \"deci\"\n"
               "for the llama family).",
    .opts = k_opts,
    .n_opts = sizeof k_opts / sizeof k_opts[0],
    .example = "  headroom convert ../shared/models/stories260K/stories260K.bin /tmp/s.gguf --to gguf\n"
               "  headroom convert /tmp/s.gguf /tmp/s-hf --to hf --dtype bf16\n"
               "  headroom convert ../shared/models/stories260K/stories260K.bin /tmp/s-q8.gguf --to gguf --dtype q8_0\n"
               "  headroom convert ../shared/models/stories260K/stories260K.bin /tmp/s-int8 --to hf --dtype int8",
    .max_positional = 2,
};

/* The tokenizer is optional: a missing one is a warning, not a failure. */
static hr_tokenizer *find_tokenizer(const char *in, const hr_model *m, const char *explicit_path) {
    char path[PATH_MAX + 256];
    hr_tokenizer *t = NULL;
    if (hr_tokenizer_find_for_model(in, explicit_path, path, sizeof path) != HR_OK ||
        hr_tokenizer_load(path, &t) != HR_OK) {
        fprintf(stderr, "headroom: warning: no tokenizer written (%s)\n", hr_last_error());
        return NULL;
    }
    if (hr_tokenizer_vocab_size(t) > hr_config_vocab_size(hr_model_config(m))) {
        fprintf(stderr, "headroom: warning: tokenizer '%s' is larger than the model's vocabulary; not written\n", path);
        hr_tokenizer_free(t);
        return NULL;
    }
    return t;
}

int cmd_convert(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&k_spec, argc, argv, &a) != CLI_OK) return CLI_FAIL;
    if (a.help) {
        cli_print_help(&k_spec);
        return CLI_OK;
    }
    if (a.n_positional != 2) return cli_error("convert needs IN and OUT (see headroom convert --help)");
    const char *in = a.positional[0], *out = a.positional[1];
    const char *to = cli_value(&k_spec, &a, "to");
    if (!to || (strcmp(to, "gguf") != 0 && strcmp(to, "hf") != 0)) return cli_error("--to must be gguf or hf");
    const char *dt = cli_value(&k_spec, &a, "dtype");
    hr_dtype dtype = HR_DTYPE_KEEP; /* the source's (hr_dtype_for_model) */
    if (dt && hr_dtype_from_name(dt, &dtype) != HR_OK) return cli_lib_error("bad --dtype");
    bool gguf = strcmp(to, "gguf") == 0;
    if (!gguf && dtype == HR_DTYPE_Q8_0)
        return cli_error("--dtype q8_0 is for --to gguf (HF folders hold f32, f16, bf16 or int8)");
    if (gguf && dtype == HR_DTYPE_INT8)
        return cli_error("--dtype int8 (per-channel) is for --to hf; GGUF's 8-bit type is q8_0");
    if (cli_check_output(out, gguf ? HR_OUT_GGUF : HR_OUT_HF_FOLDER, NULL, cli_value(&k_spec, &a, "force") != NULL, in,
                         cli_value(&k_spec, &a, "tokenizer"), NULL))
        return CLI_FAIL;
    hr_model *m = NULL;
    if (cli_load_model(in, &m) != CLI_OK) return CLI_FAIL;
    dtype = hr_dtype_for_model(m, dtype, gguf);
    hr_tokenizer *t =
        cli_value(&k_spec, &a, "no-tokenizer") ? NULL : find_tokenizer(in, m, cli_value(&k_spec, &a, "tokenizer"));
    hr_status st = gguf ? hr_model_save_gguf(m, t, out, dtype) : hr_model_save_hf(m, t, out, dtype);
    int rc = st == HR_OK ? CLI_OK : cli_lib_error("conversion failed");
    if (rc == CLI_OK)
        printf("wrote %s (%s, %s, %lld parameters)\n", out, to, hr_dtype_name(dtype), (long long)hr_model_n_params(m));
    hr_tokenizer_free(t);
    hr_model_free(m);
    return rc;
}
