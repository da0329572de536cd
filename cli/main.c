/* headroom — command-line front end: dispatches to one subcommand. */
#include "commands.h"
#include "common.h"
#include "headroom/context.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    const char *summary;
    int (*fn)(int argc, char **argv);
} command;

static const command k_commands[] = {
    {"info", "describe a model: format, hyper-parameters, per-layer sizes, tensors", cmd_info},
    {"generate", "generate text from a prompt (greedy or top-p sampling)", cmd_generate},
    {"ppl", "perplexity of a text file (sliding window or llama.cpp protocol)", cmd_ppl},
    {"convert", "convert a model to GGUF (f32/f16/bf16/q8_0) or a Hugging Face folder (f32/f16/bf16/int8)",
     cmd_convert},
    {"tokenize", "text to token ids and back (any supported tokenizer)", cmd_tokenize},
    {"heads", "head lab: score every attention head and layer, write JSON, heatmaps, report.html", cmd_heads},
    {"prune", "remove heads, MLP neurons, sublayers or blocks by scores; write the smaller model", cmd_prune},
    {"quantize", "choose weight matrices for 8 bits (FDTM, perplexity or random); write a Q8_0 GGUF", cmd_quantize},
    {"gqa", "convert multi-head to grouped-query attention (neighbour or activation-informed groups)", cmd_gqa},
    {"eval", "compare a candidate model with its base: ppl, KL, top-1, FDTM, passkey, tasks, speed", cmd_eval},
    {"patch", "circuits: activation / path patching, knockout, direct logit attribution, logit lens", cmd_patch},
    {"influence", "AttentionInfluence: each document's loss with and without masked heads (resumable JSONL)",
     cmd_influence},
    {"finetune", "fine-tune on a text: LoRA (merged on save), every weight, or chosen heads / MLPs", cmd_finetune},
    {"train", "train a small llama-style model from random initialisation on a text", cmd_train},
    {"successor", "successor heads' mod-10 structure: a linear probe of number embeddings", cmd_successor},
};
enum { N_COMMANDS = sizeof k_commands / sizeof k_commands[0] };

/* "info, generate, ..., eval" */
static void command_list(char *buf, size_t cap) {
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; i < N_COMMANDS && at < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%s", i ? ", " : "", k_commands[i].name);
}

static void print_usage(void) {
    printf("usage: headroom COMMAND [MODEL] [options]\n"
           "       headroom --version | --help\n\n"
           "headroom %s runs transformer language models on the CPU, scores their attention heads and\n"
           "layers, prunes them into smaller models and measures what that costs.\n\ncommands:\n",
           hr_version());
    for (int i = 0; i < N_COMMANDS; i++) printf("  %-10s %s\n", k_commands[i].name, k_commands[i].summary);
    printf("\nmodels (format detected from content):\n"
           "  llama2.c .bin     float32 (v0) and int8 (runq v2) checkpoints, tokenizer .bin beside them\n"
           "  GGUF              v2/v3; F32, F16, BF16, Q8_0 read; F32, F16, BF16 written\n"
           "  Hugging Face      folders with config.json + model.safetensors (or sharded); F32, F16, BF16\n"
           "architectures:\n  ");
    for (int a = 0; a < hr_arch_count(); a++) printf("%s%s", a ? ", " : "", hr_arch_name((hr_arch)a));
    printf(" (Llama 2/3, Mistral, SmolLM, TinyLlama are llama)\n"
           "\nMODEL defaults to $HEADROOM_MODEL, else ../shared/models/stories260K/stories260K.bin\n"
           "next to the repository. 'headroom COMMAND --help' describes a command's options; -q\n"
           "(--quiet) silences the progress lines long commands print on stderr.\n"
           "Set HEADROOM_VERBOSE=1 to see the library's info messages; HEADROOM_CPU=avx512|avx2|scalar\n"
           "forces a kernel path (default: the widest this CPU runs; every path gives the same bits).\n\n"
           "example:\n  headroom generate --prompt \"Once upon a time\" -n 64 --temp 0\n");
}

/* A HEADROOM_CPU the CPU cannot run (or no such path) stops every command
 * with the library's message before any work. */
static int cli_cpu_check(void) {
    if (hr_cpu_check() != HR_OK) return cli_error("%s", hr_last_error());
    return CLI_OK;
}

int main(int argc, char **argv) {
    cli_install_log();
    char names[256];
    command_list(names, sizeof names);
    if (argc < 2) {
        print_usage();
        return cli_error("no command given (expected one of: %s)", names);
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        print_usage();
        return CLI_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
        printf("headroom %s\nkernels: %s\n", hr_version(), hr_cpu_path());
        return cli_cpu_check();
    }
    if (cli_cpu_check() != CLI_OK) return CLI_FAIL;
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(name, k_commands[i].name) == 0) return k_commands[i].fn(argc - 1, argv + 1);
    if (name[0] == '-') return cli_error("unknown option '%s' (see 'headroom --help')", name);
    return cli_error("unknown command '%s' (expected one of: %s)", name, names);
}
