/* headroom finetune: LoRA or full fine-tuning (optionally of chosen heads /
 * MLPs only) on a text, LoRA merged on save (hr_train_*). */
#include "commands.h"
#include "common.h"
#include "train_common.h"

#include <limits.h>
#include <stdio.h>

static const cli_opt k_opts[] = {
    {"text", 'f', "FILE", "training text; its last 10% is held out for evaluation (required)"},
    CLI_LORA_OPTIONS,
    {"full", 0, NULL, "train every weight instead of LoRA adapters"},
    {"only", 0, "SPEC", "with --full: heads:L.H,... (their Q/K/V rows, Wo columns) and/or mlp:L,... ('|' or ';')"},
    CLI_TRAIN_LOOP_OPTIONS,
    {"seed", 's', "S", "seed of the window draws and the LoRA initialisation (default 0)"},
    {"out", 'o', "OUT.gguf", "fine-tuned model, LoRA merged (required)"},
    {"hf", 0, "DIR", "also write a Hugging Face folder"},
    CLI_DTYPE_OPTION,
    CLI_TOKENIZER_OPTION,
    CLI_THREADS_OPTION,
    CLI_FORCE_OPTION,
};

static const cli_spec k_spec = {
    .name = "finetune",
    .usage = "[MODEL] --text FILE (--lora-rank R | --full [--only SPEC]) --steps N --out OUT.gguf [options]",
    .summary = "Fine-tunes a model on a text with exact gradients and AdamW (warm-up + cosine learning\n"
               "rate, gradient clipping, accumulation), reporting the held-out loss of the text's last\n"
               "10%. LoRA adapters are merged into the weights on save; --only trains just the chosen\n"
               "heads' rows / columns and MLPs and leaves every other weight bit-identical. Ctrl-C\n"
               "writes a checkpoint (--checkpoint, default OUT.gguf.ckpt) that --resume continues exactly.",
    .opts = k_opts,
    .n_opts = sizeof k_opts / sizeof k_opts[0],
    .example = "  headroom finetune -f ../shared/data/text/tinystories_val.txt --lora-rank 8 --steps 200 -o ft.gguf\n"
               "  headroom finetune -f story.txt --full --only heads:1.2,3.0 --steps 50 --lr 1e-4 -o ft.gguf",
    .max_positional = 1,
};

int cmd_finetune(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&k_spec, argc, argv, &a) != CLI_OK) return CLI_FAIL;
    if (a.help) {
        cli_print_help(&k_spec);
        return CLI_OK;
    }
    hr_train_params p = hr_train_default_params();
    if (cli_train_read(&k_spec, &a, &p)) return CLI_FAIL;
    const char *text = cli_value(&k_spec, &a, "text"), *out = cli_value(&k_spec, &a, "out");
    const char *hf = cli_value(&k_spec, &a, "hf"), *tk = cli_value(&k_spec, &a, "tokenizer");
    if (!text) return cli_error("--text FILE is required (see 'headroom finetune --help')");
    if (!p.full && p.lora_rank == 0) return cli_error("choose --lora-rank R or --full");
    if (p.full && p.lora_rank > 0) return cli_error("--lora-rank and --full exclude each other");
    hr_dtype dtype;
    if (cli_get_dtype(&k_spec, &a, &dtype)) return CLI_FAIL;
    char path[PATH_MAX + 64];
    const char *inputs[] = {text, tk, p.resume, NULL};
    if (cli_resolve_model(&a, path, sizeof path) ||
        cli_train_check_outputs(out, hf, &p, cli_value(&k_spec, &a, "force") != NULL, path, inputs))
        return CLI_FAIL;
    hr_model *m = NULL, *ft = NULL;
    hr_tokenizer *tok = NULL;
    int rc = cli_load_model(path, &m);
    if (rc == CLI_OK) rc = cli_load_tokenizer(path, m, tk, &tok);
    if (rc == CLI_OK) rc = cli_train_run(m, tok, text, out, &p, &ft);
    if (rc == CLI_OK) rc = cli_train_write(ft, tok, out, hf, dtype);
    hr_model_free(ft);
    hr_tokenizer_free(tok);
    hr_model_free(m);
    return rc;
}
