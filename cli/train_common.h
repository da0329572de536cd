/* What finetune, train and prune --recover share: the training option rows,
 * reading them into hr_train_params, running the loop (SIGINT writes a
 * checkpoint and stops) and writing the trained model. */
#ifndef HR_CLI_TRAIN_COMMON_H
#define HR_CLI_TRAIN_COMMON_H

#include "common.h"

#include "headroom/save.h"
#include "headroom/train.h"

/* Option rows of the loop itself (steps, lr, schedule, data, checkpoints). */
#define CLI_TRAIN_LOOP_OPTIONS                                                                                         \
    {"steps", 0, "N", "optimiser steps (default 100)"}, {"lr", 0, "LR", "peak learning rate (default 1e-3)"},          \
        {"batch", 0, "B", "windows per micro-batch (default 1)"},                                                      \
        {"accum", 0, "K", "micro-batches accumulated per step (default 1)"},                                           \
        {"warmup", 0, "W", "linear warm-up steps before the cosine decay (default 0)"},                                \
        {"window", 0, "T", "tokens per training window (default min(context, 256))"},                                  \
        {"weight-decay", 0, "D", "AdamW decoupled weight decay on matrices (default 0)"},                              \
        {"clip", 0, "C", "clip the gradient's global norm at C; 0 = off (default 1)"},                                 \
        {"eval-every", 0, "N", "held-out loss every N steps (default: at the end)"},                                   \
        {"checkpoint", 0, "FILE", "checkpoint written every --checkpoint-every steps, at the end and on Ctrl-C"},      \
        {"checkpoint-every", 0, "N", "steps between checkpoints (default: only at the end / on Ctrl-C)"},              \
        {"recompute", 0, NULL, "keep only each layer's input, recompute the rest in the backward (less memory)"}, {    \
        "resume", 0, "FILE", "continue exactly from a checkpoint of the same model, mode and text"                     \
    }

/* Rows choosing what trains (finetune; prune --recover uses the LoRA ones). */
#define CLI_LORA_OPTIONS                                                                                               \
    {"lora-rank", 0, "R", "train LoRA adapters of rank R, merged into the weights on save"},                           \
        {"lora-alpha", 0, "A", "LoRA scale alpha / R (default alpha = R)"}, {                                          \
        "lora-targets", 0, "LIST", "LoRA matrices: q,k,v,o,gate,up,down (default all)"                                 \
    }

/* Reads the rows above (those the spec has) into p (start from
 * hr_train_default_params()); options absent keep p's values. */
int cli_train_read(const cli_spec *spec, const cli_args *a, hr_train_params *p);

/* Tokenizes text_path, trains m and returns the trained model in *out
 * (owned). The checkpoint defaults to OUT.ckpt, kept only when the run
 * stops early. Prints the held-out loss / perplexity before and after. */
int cli_train_run(const hr_model *m, const hr_tokenizer *tok, const char *text_path, const char *out_path,
                  hr_train_params *p, hr_model **out);

/* on: SIGINT (Ctrl-C) sets p->stop from now on (the run stops after its
 * current step); off: the previous handler again. */
void cli_train_stop_on_sigint(hr_train_params *p, bool on);

/* Writes the trained model as GGUF at out (and an HF folder at hf, may be
 * NULL; the GGUF is removed when that fails) and prints what was written. */
int cli_train_write(const hr_model *m, const hr_tokenizer *tok, const char *out, const char *hf, hr_dtype dtype);

/* Checks OUT (GGUF) and --hf / checkpoint outputs before any work. */
int cli_train_check_outputs(const char *out, const char *hf, const hr_train_params *p, bool force,
                            const char *model_path, const char *const *inputs);

#endif
