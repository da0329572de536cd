/* headroom generate: prompt prefill, then token-by-token sampling with the
 * text streamed to stdout and the speeds to stderr. */
#include "commands.h"
#include "common.h"
#include "heads_mask.h"
#include "kv.h"

#include "headroom/context.h"
#include "headroom/sample.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt k_opts[] = {
    {"prompt", 'p', "TEXT", "text to continue (required, non-empty UTF-8)"},
    {"tokens", 'n', "N", "maximum number of tokens to generate (default 128)"},
    {"temp", 0, "T", "sampling temperature; 0 = greedy arg-max (default 1.0)"},
    {"top-p", 0, "P", "nucleus sampling mass in (0, 1] (default 0.9)"},
    {"seed", 's', "S", "random seed (default 42)"},
    {"threads", 't', "K", "worker threads; 0 = all cores (default 0)"},
    {"tokenizer", 0, "PATH", "tokenizer file (default: tok512.bin / tokenizer.bin beside the model, or the GGUF)"},
    CLI_BF16_DOT_OPTION,
    CLI_INT8_DOT_OPTION,
    CLI_KV_OPTIONS,
    CLI_HEAD_MASK_OPTIONS,
    CLI_FORCE_OPTION,
};

static const cli_spec k_spec = {
    .name = "generate",
    .usage = "[MODEL] --prompt TEXT [options]",
    .summary = "Prints the prompt and streams the generated continuation. Generation stops at the\n"
               "end-of-sequence token (or BOS, which llama2.c models emit between stories), after N\n"
               "tokens, or at the model's context limit. Prefill and decode speeds go to stderr.",
    .opts = k_opts,
    .n_opts = sizeof k_opts / sizeof k_opts[0],
    .example = "  headroom generate --prompt \"Once upon a time\" -n 64 --temp 0\n"
               "  headroom generate ../shared/models/stories260K/stories260K.gguf -p \"Lily\" --temp 0.8 --seed 7",
    .max_positional = 1,
};

typedef struct {
    const char *prompt;
    long n_tokens, threads;
    double temp, top_p;
    uint64_t seed;
    const char *tokenizer;
} gen_opts;

static int read_opts(const cli_args *a, gen_opts *o) {
    o->prompt = cli_value(&k_spec, a, "prompt");
    o->n_tokens = 128;
    o->threads = 0;
    o->temp = 1.0;
    o->top_p = 0.9;
    o->seed = 42;
    o->tokenizer = cli_value(&k_spec, a, "tokenizer");
    if (cli_get_int(&k_spec, a, "tokens", 0, INT_MAX / 2, &o->n_tokens) ||
        cli_get_int(&k_spec, a, "threads", 0, 4096, &o->threads) ||
        cli_get_float(&k_spec, a, "temp", 0.0, 1e6, &o->temp) ||
        cli_get_float(&k_spec, a, "top-p", 0.0, 1.0, &o->top_p) || cli_get_u64(&k_spec, a, "seed", &o->seed))
        return CLI_FAIL;
    if (o->top_p <= 0.0) return cli_error("--top-p must be greater than 0");
    if (!o->prompt) return cli_error("--prompt TEXT is required (see 'headroom generate --help')");
    size_t len = strlen(o->prompt);
    if (len == 0) return cli_error("text is empty: --prompt needs at least one character");
    long bad = cli_utf8_invalid_at(o->prompt, len);
    if (bad >= 0) return cli_error("--prompt is not valid UTF-8 (byte offset %ld)", bad);
    return CLI_OK;
}

typedef struct {
    hr_model *model;
    hr_tokenizer *tok;
    hr_context *ctx;
    hr_sampler *sampler;
    int32_t *ids; /* (n_prompt) prompt tokens, BOS first */
    size_t n_prompt;
    float *logits; /* (vocab) logits of the last position */
} gen_state;

static void gen_free(gen_state *g) {
    free(g->ids);
    free(g->logits);
    hr_sampler_free(g->sampler);
    hr_context_free(g->ctx);
    hr_tokenizer_free(g->tok);
    hr_model_free(g->model);
}

static int gen_setup(const cli_args *a, const gen_opts *o, gen_state *g) {
    char path[PATH_MAX + 64];
    if (cli_resolve_model(a, path, sizeof path) || cli_load_model(path, &g->model) ||
        cli_load_tokenizer(path, g->model, o->tokenizer, &g->tok))
        return CLI_FAIL;
    const hr_config *cfg = hr_model_config(g->model);
    hr_encode_params ep = hr_encode_default_params();
    ep.add_bos = true;
    if (hr_tokenizer_encode(g->tok, o->prompt, strlen(o->prompt), &ep, &g->ids, &g->n_prompt) != HR_OK)
        return cli_lib_error("cannot tokenize the prompt");
    if (g->n_prompt == 0) return cli_error("the prompt tokenized to nothing");
    if (g->n_prompt >= (size_t)hr_config_seq_len(cfg))
        return cli_error("the prompt is %zu tokens; the model's context holds %d, leaving no room to generate",
                         g->n_prompt, hr_config_seq_len(cfg));
    hr_sampler_params sp = {.temperature = (float)o->temp, .top_p = (float)o->top_p, .seed = o->seed};
    if (hr_sampler_new(&sp, hr_config_vocab_size(cfg), &g->sampler) != HR_OK)
        return cli_lib_error("cannot create sampler");
    hr_context_params cp = hr_context_default_params();
    long want = (long)g->n_prompt + o->n_tokens;
    cp.n_ctx = want < hr_config_seq_len(cfg) ? (int)want : hr_config_seq_len(cfg);
    cp.n_threads = (int)o->threads;
    cp.bf16_dot = cli_value(&k_spec, a, "bf16-dot") != NULL;
    cp.int8_dot = cli_value(&k_spec, a, "int8-dot") != NULL;
    hr_kv_plan *plan = NULL;
    if (cli_kv_plan(&k_spec, a, path, g->model, &plan)) return CLI_FAIL;
    if (plan) cp.n_ctx = hr_config_seq_len(cfg); /* a plan's windows are sized for the model's context */
    cp.kv_plan = plan;
    hr_status st = hr_context_new(g->model, &cp, &g->ctx);
    hr_kv_plan_free(plan);
    if (st != HR_OK) return cli_lib_error("cannot create context");
    if (cli_apply_head_mask(&k_spec, a, g->model, g->tok, NULL, g->ctx)) return CLI_FAIL;
    if (plan) fprintf(stderr, "kv cache:   %zu bytes allocated\n", hr_context_kv_bytes(g->ctx));
    g->logits = malloc((size_t)hr_config_vocab_size(cfg) * sizeof *g->logits);
    if (!g->logits) return cli_error("out of memory for the logits");
    return CLI_OK;
}

static int print_token(const gen_state *g, int32_t prev, int32_t id) {
    char buf[512];
    size_t n = 0;
    if (hr_tokenizer_decode_one(g->tok, prev, id, buf, sizeof buf, &n) != HR_OK)
        return cli_lib_error("cannot decode a generated token");
    fwrite(buf, 1, n, stdout);
    fflush(stdout);
    return CLI_OK;
}

static double rate(double n, double s) { return s > 0 ? n / s : 0.0; }

static int gen_run(gen_state *g, const gen_opts *o) {
    int n_ctx = hr_context_n_ctx(g->ctx);
    int32_t eos = hr_tokenizer_eos(g->tok), bos = hr_tokenizer_bos(g->tok);
    fputs(o->prompt, stdout);
    fflush(stdout);
    double t0 = cli_now();
    if (hr_forward(g->ctx, g->ids, (int)g->n_prompt, g->logits, false) != HR_OK) return cli_lib_error("prefill failed");
    double t1 = cli_now();
    int32_t prev = g->ids[g->n_prompt - 1];
    long n_gen = 0;
    const char *why = "token limit";
    while (n_gen < o->n_tokens) {
        int32_t id = hr_sampler_sample(g->sampler, g->logits);
        if ((eos >= 0 && id == eos) || (bos >= 0 && id == bos)) {
            why = id == eos ? "end of sequence" : "BOS (end of story)";
            break;
        }
        if (print_token(g, prev, id) != CLI_OK) return CLI_FAIL;
        n_gen++;
        prev = id;
        if (n_gen == o->n_tokens) break;
        if (hr_context_n_past(g->ctx) >= n_ctx) {
            why = "context limit";
            break;
        }
        if (hr_forward(g->ctx, &id, 1, g->logits, false) != HR_OK) return cli_lib_error("decode step failed");
    }
    double t2 = cli_now();
    printf("\n");
    fflush(stdout);
    fprintf(stderr, "prefill: %zu tokens in %.3f s (%.1f tokens/s)\n", g->n_prompt, t1 - t0,
            rate((double)g->n_prompt, t1 - t0));
    fprintf(stderr, "decode:  %ld tokens in %.3f s (%.1f tokens/s), stopped at %s\n", n_gen, t2 - t1,
            rate((double)n_gen, t2 - t1), why);
    return CLI_OK;
}

int cmd_generate(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&k_spec, argc, argv, &a) != CLI_OK) return CLI_FAIL;
    if (a.help) {
        cli_print_help(&k_spec);
        return CLI_OK;
    }
    gen_opts o;
    if (read_opts(&a, &o) != CLI_OK) return CLI_FAIL;
    gen_state g;
    memset(&g, 0, sizeof g);
    int rc = gen_setup(&a, &o, &g);
    if (rc == CLI_OK) rc = gen_run(&g, &o);
    gen_free(&g);
    return rc;
}
