/* headroom quantize: score every weight matrix by what quantizing only it
 * to 8 bits costs (FDTM, perplexity change), write the model with the
 * chosen P % of parameters as GGUF Q8_0 or, with --format int8, as a
 * per-channel int8 Hugging Face folder (hr_quantize_run) and
 * quantize.json. */
#include "commands.h"
#include "common.h"

#include "headroom/quantize.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt k_opts[] = {
    {"by", 0, "fdtm|ppl|random",
     "ranking: latest first divergent token, smallest perplexity change, or random "
     "(default fdtm)"},
    {"int8", 0, "P%", "share of the eligible parameters to quantize, in (0, 100) (required)"},
    {"format", 0, "q8_0|int8",
     "q8_0: GGUF Q8_0 blocks, every matrix whose rows hold a multiple of 32 values eligible (default);\n"
     "int8: per-channel int8 (one scale a row), the attention and MLP projections eligible, written as a\n"
     "Hugging Face folder (compressed-tensors layout)"},
    {"text", 'f', "FILE", "scoring text (required for fdtm and ppl)"},
    {"tokens", 'n', "N", "text tokens for the perplexity change (default 4096)"},
    {"ctx", 'c', "N", "scoring window (default min(seq_len, 256))"},
    {"fdtm-prompts", 0, "N", "FDTM prompts of 16 tokens, continued greedily for 32 (default 32)"},
    {"seed", 's', "S", "seed of the FDTM prompts and of --by random (default 0)"},
    {"out", 'o', "OUT",
     "output GGUF, or HF folder with --format int8 (required); quantize.json goes to\n"
     "OUT.quantize.json"},
    {"report", 0, "FILE", "where to write quantize.json (default OUT.quantize.json)"},
    {"dtype", 0, "f32|f16|bf16", "the matrices not quantized (default: the input's; f32 for a q8_0 input)"},
    CLI_TOKENIZER_OPTION,
    CLI_THREADS_OPTION,
    CLI_FORCE_OPTION,
};

static const cli_spec k_spec = {
    .name = "quantize",
    .usage = "[MODEL] --by fdtm|ppl|random --int8 P% [--format q8_0|int8] [-f FILE] --out OUT [options]",
    .summary = "Chooses which weight matrices go to 8 bits (GGUF Q8_0, or with --format int8 per-channel int8 in a\n"
               "Hugging Face folder) and writes the model with them quantized, the rest in the input's precision.\n"
               "Each eligible matrix (Q8_0: rows of a multiple of 32 values; int8: the attention and MLP\n"
               "projections) is scored by quantizing only it (quantize-dequantize, f32 forward): the FDTM (mean first\n"
               "divergent token of greedy continuations vs the model as it is; Divergent Token Metrics,\n"
               "Deiseroth et al. 2023) and the perplexity change on the text. Matrices are taken in\n"
               "ranking order while the total stays within P % of the eligible parameters.",
    .opts = k_opts,
    .n_opts = sizeof k_opts / sizeof k_opts[0],
    .example =
        "  headroom quantize --by fdtm --int8 80% -f ../shared/data/text/tinystories_val.txt -o s-q80.gguf\n"
        "  headroom quantize --by random --int8 50% --seed 3 -o s-r50.gguf\n"
        "  headroom quantize --by fdtm --int8 80% --format int8 -f ../shared/data/text/tinystories_val.txt -o s-i80",
    .max_positional = 1,
};

/* "80%" or "80": a share in (0, 100). */
static int parse_percent(const char *s, double *out) {
    char *end = NULL;
    double v = s ? strtod(s, &end) : 0;
    if (!s || end == s || (*end && strcmp(end, "%") != 0))
        return cli_error("--int8 takes a percentage like 80%% (got '%s')", s ? s : "");
    if (!(v > 0 && v < 100)) return cli_error("--int8 must lie in (0, 100) %% (got %s)", s);
    *out = v;
    return CLI_OK;
}

typedef struct {
    const char *text, *out, *tokenizer;
    char report[PATH_MAX + 32];
    bool force;
    hr_quantize_params p;
} quant_opts;

static int read_opts(const cli_args *a, quant_opts *o) {
    memset(o, 0, sizeof *o);
    hr_quantize_params *p = &o->p;
    *p = hr_quantize_default_params();
    o->text = cli_value(&k_spec, a, "text");
    o->out = cli_value(&k_spec, a, "out");
    o->tokenizer = cli_value(&k_spec, a, "tokenizer");
    o->force = cli_value(&k_spec, a, "force") != NULL;
    const char *by = cli_value(&k_spec, a, "by");
    if (hr_quant_by_from_name(by ? by : "fdtm", &p->by) != HR_OK) return cli_lib_error("bad --by");
    const char *amount = cli_value(&k_spec, a, "int8");
    if (!amount) return cli_error("--int8 P%% is required (see 'headroom quantize --help')");
    if (parse_percent(amount, &p->int8_percent)) return CLI_FAIL;
    const char *fmt = cli_value(&k_spec, a, "format");
    if (fmt && hr_quant_format_from_name(fmt, &p->format) != HR_OK) return cli_lib_error("bad --format");
    if (p->by != HR_QUANT_BY_RANDOM && !o->text)
        return cli_error("--by %s needs --text FILE to score the matrices on", hr_quant_by_name(p->by));
    long tokens = p->max_tokens, ctx = 0, prompts = p->fdtm_prompts, threads = 0;
    if (cli_get_int(&k_spec, a, "tokens", 16, INT_MAX, &tokens) || cli_get_int(&k_spec, a, "ctx", 0, INT_MAX, &ctx) ||
        cli_get_int(&k_spec, a, "fdtm-prompts", 1, 100000, &prompts) ||
        cli_get_int(&k_spec, a, "threads", 0, 4096, &threads) || cli_get_u64(&k_spec, a, "seed", &p->seed))
        return CLI_FAIL;
    p->max_tokens = tokens, p->n_ctx = (int)ctx, p->fdtm_prompts = (int)prompts, p->n_threads = (int)threads;
    if (cli_get_dtype(&k_spec, a, &p->dtype)) return CLI_FAIL;
    if (p->dtype == HR_DTYPE_Q8_0) return cli_error("--dtype q8_0: the matrices not chosen are f32, f16 or bf16");
    if (!o->out) return cli_error("--out OUT is required (see 'headroom quantize --help')");
    const char *rep = cli_value(&k_spec, a, "report");
    if (rep) snprintf(o->report, sizeof o->report, "%s", rep);
    else snprintf(o->report, sizeof o->report, "%s.quantize.json", o->out);
    if (strcmp(o->report, o->out) == 0) return cli_error("--out and --report must name different paths");
    return CLI_OK;
}

static void print_result(const hr_quantize_result *r, const quant_opts *o, const char *model_path) {
    const hr_quantize_summary *s = hr_quantize_result_summary(r);
    printf("quantized %s -> %s (by %s)\n", model_path, o->out, hr_quant_by_name(o->p.by));
    if (s->scored) printf("base perplexity: %.4f (%d tokens)\n", s->base_ppl, s->n_tokens);
    printf("%-28s %10s %6s %9s %10s %s\n", "matrix", "params", "rank", "fdtm", "dppl", "int8");
    for (int i = 0; i < s->n_components; i++) {
        const hr_quant_component *c = hr_quantize_component(r, i);
        if (!c->eligible) {
            printf("%-28s %10lld %6s %9s %10s %s\n", c->name, (long long)c->params, "-", "-", "-",
                   o->p.format == HR_QUANT_INT8 ? "not a projection" : "not Q8_0-able");
            continue;
        }
        printf("%-28s %10lld %6d %9.2f %+10.4f %s\n", c->name, (long long)c->params, c->rank, c->fdtm, c->dppl,
               c->chosen ? "yes" : "");
    }
    printf("%s: %d of %d eligible matrices, %lld of %lld eligible parameters (%.1f%%; %.1f%% of all %lld); "
           "the rest %s\n",
           o->p.format == HR_QUANT_INT8 ? "int8 (per channel)" : "int8 (Q8_0)", s->n_chosen, s->n_eligible,
           (long long)s->params_int8, (long long)s->params_eligible,
           100.0 * (double)s->params_int8 / (double)s->params_eligible,
           100.0 * (double)s->params_int8 / (double)s->params_total, (long long)s->params_total, s->kept_dtype);
    printf("report: %s\n", o->report);
}

int cmd_quantize(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&k_spec, argc, argv, &a) != CLI_OK) return CLI_FAIL;
    if (a.help) {
        cli_print_help(&k_spec);
        return CLI_OK;
    }
    quant_opts o;
    char model_path[PATH_MAX + 64];
    hr_model *m = NULL;
    hr_tokenizer *tok = NULL;
    char *text = NULL;
    hr_quantize_result *res = NULL;
    char *json = NULL;
    int rc = read_opts(&a, &o);
    const char *inputs[] = {o.text, NULL};
    if (rc == CLI_OK) rc = cli_resolve_model(&a, model_path, sizeof model_path);
    if (rc == CLI_OK)
        rc = cli_check_output(o.out, o.p.format == HR_QUANT_INT8 ? HR_OUT_HF_FOLDER : HR_OUT_GGUF, NULL, o.force,
                              model_path, o.tokenizer, inputs) ||
             cli_check_output(o.report, HR_OUT_JSON, "headroom.quantize", o.force, model_path, o.tokenizer, inputs);
    if (rc == CLI_OK) rc = cli_load_model(model_path, &m);
    if (rc == CLI_OK && o.text) {
        rc = cli_load_tokenizer(model_path, m, o.tokenizer, &tok);
        if (rc == CLI_OK) rc = cli_read_text(o.text, &text, &o.p.text_len);
        o.p.text = text;
    } else if (rc == CLI_OK) {
        cli_load_tokenizer_optional(model_path, m, o.tokenizer, &tok);
    }
    if (rc == CLI_OK && hr_quantize_run(m, tok, &o.p, &res) != HR_OK) rc = cli_lib_error("quantization failed");
    if (rc == CLI_OK && hr_quantize_result_json(res, model_path, o.text, o.out, &json) != HR_OK)
        rc = cli_lib_error("cannot build quantize.json");
    if (rc == CLI_OK && o.p.format == HR_QUANT_INT8 && hr_quantize_save_hf(res, tok, o.out) != HR_OK)
        rc = cli_lib_error("cannot write the Hugging Face folder");
    else if (rc == CLI_OK && o.p.format == HR_QUANT_Q8_0 && hr_quantize_save_gguf(res, tok, o.out) != HR_OK)
        rc = cli_lib_error("cannot write the GGUF");
    if (rc == CLI_OK) rc = cli_write_file(o.report, json);
    if (rc == CLI_OK) print_result(res, &o, model_path);
    hr_free(json);
    hr_quantize_result_free(res);
    free(text);
    hr_tokenizer_free(tok);
    hr_model_free(m);
    return rc;
}
