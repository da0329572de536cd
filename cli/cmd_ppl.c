/* headroom ppl: perplexity of a text file. */
#include "commands.h"
#include "common.h"
#include "heads_mask.h"
#include "kv.h"

#include "headroom/context.h"
#include "headroom/evaluate.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt k_opts[] = {
    {"text", 'f', "FILE", "UTF-8 text to score (required)"},
    {"ctx", 'c', "N", "window / chunk length in tokens (default: the model's seq_len)"},
    {"stride", 0, "S", "sliding protocol: window advance (default: ctx/2)"},
    {"protocol", 0, "NAME", "sliding | llama.cpp (default sliding)"},
    {"threads", 't', "K", "worker threads; 0 = all cores (default 0)"},
    {"tokenizer", 0, "PATH", "tokenizer file (default: tok512.bin / tokenizer.bin beside the model, or the GGUF)"},
    {"blas", 0, NULL,
     "OpenBLAS sgemm for batched products: measured slower than the default kernels on a\n"
     "                             135M model (docs/RESULTS.md); logits differ from decode by rounding"},
    CLI_BF16_DOT_OPTION,
    CLI_INT8_DOT_OPTION,
    CLI_KV_OPTIONS,
    CLI_HEAD_MASK_OPTIONS,
    CLI_FORCE_OPTION,
};

static const cli_spec k_spec = {
    .name = "ppl",
    .usage = "[MODEL] --text FILE [options]",
    .summary = "Prints the number of scored tokens, the mean negative log-likelihood (nats/token),\n"
               "the perplexity with its standard error, and the speed.\n"
               "  sliding:   windows of ctx tokens advanced by stride; every token after the first\n"
               "             (BOS) is scored once, with as much context as its window gives.\n"
               "  llama.cpp: llama-perplexity's protocol: ctx-token chunks each starting with BOS,\n"
               "             scoring their second half; needs at least 2*ctx tokens.",
    .opts = k_opts,
    .n_opts = sizeof k_opts / sizeof k_opts[0],
    .example = "  headroom ppl --text ../shared/data/text/tinystories_val.txt --ctx 256\n"
               "  headroom ppl model.gguf -f wiki.test.raw --ctx 512 --protocol llama.cpp",
    .max_positional = 1,
};

typedef struct {
    const char *text_path, *tokenizer;
    long n_ctx, stride, threads;
    hr_ppl_protocol protocol;
} ppl_opts;

static int read_opts(const cli_args *a, ppl_opts *o) {
    o->text_path = cli_value(&k_spec, a, "text");
    o->tokenizer = cli_value(&k_spec, a, "tokenizer");
    o->n_ctx = 0;
    o->stride = 0;
    o->threads = 0;
    if (cli_get_int(&k_spec, a, "ctx", 2, INT_MAX, &o->n_ctx) ||
        cli_get_int(&k_spec, a, "stride", 1, INT_MAX, &o->stride) ||
        cli_get_int(&k_spec, a, "threads", 0, 4096, &o->threads))
        return CLI_FAIL;
    const char *proto = cli_value(&k_spec, a, "protocol");
    if (!proto || strcmp(proto, "sliding") == 0) o->protocol = HR_PPL_SLIDING;
    else if (strcmp(proto, "llama.cpp") == 0 || strcmp(proto, "llamacpp") == 0) o->protocol = HR_PPL_LLAMACPP;
    else return cli_error("unknown --protocol '%s' (expected sliding or llama.cpp)", proto);
    if (o->stride && o->protocol != HR_PPL_SLIDING) return cli_error("--stride applies only to --protocol sliding");
    if (!o->text_path) return cli_error("--text FILE is required (see 'headroom ppl --help')");
    return CLI_OK;
}

typedef struct {
    hr_model *model;
    hr_tokenizer *tok;
    hr_context *ctx;
    char *text;
    int32_t *ids; /* (n_ids) tokens of the text, BOS first */
    size_t n_ids;
    bool has_plan;      /* a --kv / --kv-from plan is in use */
    int n_reduced;      /* KV heads not kept full by it */
    hr_head_mask *mask; /* --mask-heads, --mean-heads, --gates; NULL = none */
    int32_t *calib;     /* --calib tokens, BOS first; NULL = the text */
    size_t n_calib;
} ppl_state;

static void ppl_free(ppl_state *s) {
    hr_head_mask_free(s->mask);
    hr_free(s->calib);
    free(s->ids);
    free(s->text);
    hr_context_free(s->ctx);
    hr_tokenizer_free(s->tok);
    hr_model_free(s->model);
}

static int ppl_setup(const cli_args *a, ppl_opts *o, ppl_state *s) {
    char path[PATH_MAX + 64];
    size_t len = 0;
    if (cli_read_text(o->text_path, &s->text, &len) || cli_resolve_model(a, path, sizeof path) ||
        cli_load_model(path, &s->model))
        return CLI_FAIL;
    /* llama.cpp's -f reader drops one trailing newline before tokenizing */
    if (o->protocol == HR_PPL_LLAMACPP && len > 0 && s->text[len - 1] == '\n') s->text[--len] = 0;
    int seq_len = hr_config_seq_len(hr_model_config(s->model));
    if (o->n_ctx == 0) o->n_ctx = seq_len;
    if (o->n_ctx > seq_len) return cli_error("--ctx %ld exceeds the model's context length %d", o->n_ctx, seq_len);
    if (cli_load_tokenizer(path, s->model, o->tokenizer, &s->tok)) return CLI_FAIL;
    hr_encode_params ep = hr_encode_default_params();
    ep.add_bos = true;
    if (hr_tokenizer_encode(s->tok, s->text, len, &ep, &s->ids, &s->n_ids) != HR_OK)
        return cli_lib_error("cannot tokenize the text");
    hr_context_params cp = hr_context_default_params();
    cp.n_ctx = (int)o->n_ctx;
    cp.n_threads = (int)o->threads;
    cp.blas_prefill = cli_value(&k_spec, a, "blas") != NULL;
    cp.bf16_dot = cli_value(&k_spec, a, "bf16-dot") != NULL;
    cp.int8_dot = cli_value(&k_spec, a, "int8-dot") != NULL;
    hr_kv_plan *plan = NULL;
    if (cli_kv_plan(&k_spec, a, path, s->model, &plan)) return CLI_FAIL;
    cp.kv_plan = plan;
    hr_status st = hr_context_new(s->model, &cp, &s->ctx);
    s->has_plan = plan != NULL;
    if (plan) s->n_reduced = hr_kv_plan_n_reduced(plan);
    hr_kv_plan_free(plan);
    if (st != HR_OK) return cli_lib_error("cannot create context");
    if (cli_head_mask(&k_spec, a, s->model, s->tok, o->text_path, 0, 0, &s->mask, &s->calib, &s->n_calib))
        return CLI_FAIL;
    if (s->mask) {
        char *d = NULL;
        if (hr_head_mask_describe(s->mask, &d) == HR_OK) fprintf(stderr, "heads:       %s\n", d);
        hr_free(d);
    }
    if (!cli_value(&k_spec, a, "calib")) hr_free(s->calib), s->calib = NULL, s->n_calib = 0; /* the text itself */
    return CLI_OK;
}

static int ppl_run(const ppl_opts *o, ppl_state *s) {
    hr_ppl_params pp = hr_ppl_default_params();
    pp.n_ctx = (int)o->n_ctx;
    pp.stride = (int)o->stride;
    pp.protocol = o->protocol;
    pp.bos = hr_tokenizer_bos(s->tok);
    pp.heads = s->mask;
    pp.calib_tokens = s->calib;
    pp.n_calib_tokens = s->n_calib;
    hr_ppl_result r;
    if (hr_perplexity(s->ctx, s->ids, s->n_ids, &pp, &r) != HR_OK) return cli_lib_error("perplexity failed");
    printf("text:        %s (%zu tokens with BOS)\n", o->text_path, s->n_ids);
    if (o->protocol == HR_PPL_SLIDING)
        printf("protocol:    sliding, ctx %ld, stride %ld, %d windows\n", o->n_ctx,
               o->stride ? o->stride : o->n_ctx / 2, r.n_windows);
    else printf("protocol:    llama.cpp, ctx %ld, %d chunks\n", o->n_ctx, r.n_windows);
    printf("scored:      %lld tokens\n", (long long)r.n_scored);
    printf("mean NLL:    %.6f\n", r.mean_nll);
    printf("perplexity:  %.4f +/- %.5f\n", r.ppl, r.ppl_stderr);
    printf("speed:       %.1f tokens/s (%lld tokens evaluated in %.2f s)\n", r.tokens_per_s, (long long)r.n_evaluated,
           r.seconds);
    printf("kv cache:    %zu bytes allocated", hr_context_kv_bytes(s->ctx));
    if (s->has_plan) printf(" (%d KV heads reduced by the plan)", s->n_reduced);
    printf("\n");
    return CLI_OK;
}

int cmd_ppl(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&k_spec, argc, argv, &a) != CLI_OK) return CLI_FAIL;
    if (a.help) {
        cli_print_help(&k_spec);
        return CLI_OK;
    }
    ppl_opts o;
    if (read_opts(&a, &o) != CLI_OK) return CLI_FAIL;
    ppl_state s;
    memset(&s, 0, sizeof s);
    int rc = ppl_setup(&a, &o, &s);
    if (rc == CLI_OK) rc = ppl_run(&o, &s);
    ppl_free(&s);
    return rc;
}
