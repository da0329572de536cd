/* headroom eval: compare a candidate model against its base (hr_eval_run)
 * — quality (perplexity, KL, top-1, FDTM, passkey, multiple choice), size
 * and speed — and say exactly what was compared. */
#include "commands.h"
#include "common.h"
#include "heads_mask.h"
#include "kv.h"

#include "headroom/evaluate.h"
#include "headroom/study.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt k_opts[] = {
    {"text", 'f', "FILE", "evaluation text (required)"},
    {"ctx", 'c', "N", "window length in tokens (default min(seq_len, " CLI_STR(HR_CALIB_WINDOW) "))"},
    {"windows", 'w', "N",
     "windows of --ctx tokens to score; 0 = the whole text (default: the first " CLI_STR(HR_EVAL_TOKENS) " tokens)"},
    {"tasks", 0, "FILE.jsonl", "multiple-choice tasks: {\"context\", \"choices\", \"gold\"} per line"},
    {"passkey", 0, NULL,
     "passkey retrieval at 64/128/256/512 tokens (<= --ctx): 16 random text tokens hidden at\n"
     "                             a random depth of the text; the prompt ends with their first 8, and the\n"
     "                             model must continue greedily with the other 8 (exact / per-token accuracy)"},
    {"recall", 0, NULL, "natural retrieval: recall of an earlier-introduced name, 4-way multiple choice"},
    {"recall-items", 0, "N", "items of the recall task (default 200)"},
    {"passkey-trials", 0, "N", "prompts per length (default 20)"},
    {"fdtm-prompts", 0, "N", "FDTM prompts (default 8)"},
    {"fdtm-gen", 0, "N", "FDTM continuation length (default 32)"},
    {"seed", 's', "S", "seed of prompts and passkeys (default 0)"},
    {"json", 0, "OUT.json", "write the results as JSON"},
    {"no-speed", 0, NULL, "skip the speed measurement"},
    CLI_TOKENIZER_OPTION,
    CLI_THREADS_OPTION,
    CLI_BF16_DOT_OPTION,
    CLI_INT8_DOT_OPTION,
    CLI_FORCE_OPTION,
    CLI_KV_OPTIONS,
    CLI_HEAD_MASK_OPTIONS,
    {"random-heads", 0, "K", "gate K heads drawn at random (--seed) to 0 in the candidate: the random baseline"},
    {"kv-random", 0, "F",
     "candidate KV plan: random KV heads (fraction F) full, the rest streaming (sink 4, window 64)"},
};

static const cli_spec k_spec = {
    .name = "eval",
    .usage = "BASE [CANDIDATE] --text FILE [--windows N] [--tasks FILE.jsonl] [--passkey] [--recall] [--json OUT.json]",
    .summary =
        "Compares CANDIDATE (pruned, converted, quantized) with BASE on the same tokens: perplexity\n"
        "of both (non-overlapping windows starting with BOS; by default the first " CLI_STR(
            HR_EVAL_TOKENS) " tokens of\n"
                            "the text), mean per-token KL(base || candidate), top-1 agreement, FDTM (mean first "
                            "divergent\n"
                            "token of greedy continuations), passkey retrieval, multiple-choice accuracy, parameter\n"
                            "count, weight bytes, KV bytes per token and measured prefill / decode speed. The table "
                            "and\n"
                            "the JSON name both models and the text (path, SHA-256) and the windows scored; a "
                            "candidate\n"
                            "whose perplexity is over 10x the base's is flagged. Both models must share the "
                            "vocabulary.\n"
                            "Heads masked without writing a model (--mask-heads, --mean-heads, --gates, "
                            "--random-heads) and\n"
                            "--kv / --kv-random apply to the candidate; without CANDIDATE the candidate is BASE "
                            "itself.",
    .opts = k_opts,
    .n_opts = sizeof k_opts / sizeof k_opts[0],
    .example =
        "  headroom eval ../shared/models/stories260K/stories260K.bin p25.gguf \\\n"
        "      -f ../shared/data/text/tinystories_val.txt --passkey --json eval.json\n"
        "  headroom eval ../shared/models/stories260K/stories260K.bin -f ../shared/data/text/tinystories_val.txt \\\n"
        "      --recall --mask-heads 4.0,4.1,4.2,4.3",
    .max_positional = 2,
};

typedef struct {
    const char *json, *tokenizer;
    long random_heads;
    hr_eval_params p;
} eval_opts;

static int read_opts(const cli_args *a, eval_opts *o) {
    memset(o, 0, sizeof *o);
    hr_eval_params *p = &o->p;
    *p = hr_eval_default_params();
    o->json = cli_value(&k_spec, a, "json");
    o->tokenizer = cli_value(&k_spec, a, "tokenizer");
    p->text_path = cli_value(&k_spec, a, "text");
    p->tasks_path = cli_value(&k_spec, a, "tasks");
    p->passkey = cli_value(&k_spec, a, "passkey") != NULL;
    p->recall = cli_value(&k_spec, a, "recall") != NULL;
    p->speed = cli_value(&k_spec, a, "no-speed") == NULL;
    p->bf16_dot = cli_value(&k_spec, a, "bf16-dot") != NULL;
    p->int8_dot = cli_value(&k_spec, a, "int8-dot") != NULL;
    long ctx = 0, windows = -1, trials = p->passkey_trials, prompts = p->fdtm_prompts, gen = p->fdtm_gen, threads = 0;
    long recall = p->recall_items;
    if (cli_get_int(&k_spec, a, "ctx", 8, INT_MAX, &ctx) || cli_get_int(&k_spec, a, "windows", 0, INT_MAX, &windows) ||
        cli_get_int(&k_spec, a, "passkey-trials", 1, 100000, &trials) ||
        cli_get_int(&k_spec, a, "fdtm-prompts", 1, 100000, &prompts) ||
        cli_get_int(&k_spec, a, "fdtm-gen", 1, 4096, &gen) || cli_get_int(&k_spec, a, "threads", 0, 4096, &threads) ||
        cli_get_u64(&k_spec, a, "seed", &p->seed) || cli_get_int(&k_spec, a, "recall-items", 1, 100000, &recall) ||
        cli_get_int(&k_spec, a, "random-heads", 1, 100000, &o->random_heads) ||
        cli_get_float(&k_spec, a, "kv-random", 0, 1, &p->cand_kv_random))
        return CLI_FAIL;
    p->recall_items = (int)recall;
    if (cli_value(&k_spec, a, "kv-random") && cli_value(&k_spec, a, "kv"))
        return cli_error("--kv-random and --kv both give the candidate a plan: choose one");
    p->n_ctx = (int)ctx, p->passkey_trials = (int)trials, p->fdtm_prompts = (int)prompts, p->fdtm_gen = (int)gen;
    p->n_threads = (int)threads;
    if (windows >= 0) p->windows = (int)windows, p->max_tokens = 0; /* --windows 0: the whole text */
    bool masked = cli_value(&k_spec, a, "mask-heads") || cli_value(&k_spec, a, "mean-heads") ||
                  cli_value(&k_spec, a, "gates") || o->random_heads || cli_value(&k_spec, a, "kv-random") ||
                  cli_value(&k_spec, a, "kv") || cli_value(&k_spec, a, "kv-from");
    if (a->n_positional != 2 && !(a->n_positional == 1 && masked))
        return cli_error("eval needs BASE and CANDIDATE models, or BASE and a change to evaluate (--mask-heads, "
                         "--kv, ...; see 'headroom eval --help')");
    p->base_path = a->positional[0];
    p->cand_path = a->positional[a->n_positional - 1];
    if (!p->text_path) return cli_error("--text FILE is required");
    if (o->json) {
        const char *inputs[] = {p->cand_path,
                                p->text_path,
                                p->tasks_path,
                                cli_value(&k_spec, a, "kv"),
                                cli_value(&k_spec, a, "kv-from"),
                                cli_value(&k_spec, a, "gates"),
                                cli_value(&k_spec, a, "calib"),
                                NULL};
        if (cli_check_output(o->json, HR_OUT_JSON, "headroom.eval", cli_value(&k_spec, a, "force") != NULL,
                             p->base_path, o->tokenizer, inputs))
            return CLI_FAIL;
    }
    return CLI_OK;
}

typedef struct {
    hr_model *m[2];
    hr_head_mask *mask;
    int32_t *calib;
    size_t n_calib;
    hr_tokenizer *tok;
    char *text;
    hr_mc_task *tasks;
    hr_kv_plan *plan;
    hr_eval_result *res;
} eval_state;

static int setup(const cli_args *a, eval_opts *o, eval_state *s) {
    for (int i = 0; i < a->n_positional; i++)
        if (cli_load_model(a->positional[i], &s->m[i])) return CLI_FAIL;
    if (cli_load_tokenizer(o->p.base_path, s->m[0], o->tokenizer, &s->tok) ||
        cli_read_text(o->p.text_path, &s->text, &o->p.text_len))
        return CLI_FAIL;
    o->p.text = s->text;
    if (o->p.tasks_path) {
        char *t = NULL;
        size_t len = 0;
        if (cli_read_text(o->p.tasks_path, &t, &len)) return CLI_FAIL;
        hr_status st = hr_mc_parse(t, len, &s->tasks);
        free(t);
        if (st != HR_OK) return cli_error("%s: %s", o->p.tasks_path, hr_last_error());
        o->p.tasks = s->tasks;
    }
    /* --kv applies to the candidate: the base keeps its full cache. */
    const hr_model *cand = s->m[1] ? s->m[1] : s->m[0];
    if (cli_kv_plan(&k_spec, a, o->p.cand_path, cand, &s->plan)) return CLI_FAIL;
    o->p.cand_kv_plan = s->plan;
    /* --calib only when given: the library takes the means from the text otherwise */
    if (cli_head_mask(&k_spec, a, cand, s->tok, o->p.text_path, (int)o->random_heads, o->p.seed, &s->mask, &s->calib,
                      &s->n_calib))
        return CLI_FAIL;
    o->p.cand_heads = s->mask;
    if (cli_value(&k_spec, a, "calib")) o->p.calib_tokens = s->calib, o->p.n_calib_tokens = s->n_calib;
    return CLI_OK;
}

static void row(const char *name, double b, double c, const char *fmt) {
    char vb[32], vc[32];
    snprintf(vb, sizeof vb, fmt, b);
    snprintf(vc, sizeof vc, fmt, c);
    printf("%-26s %14s %14s\n", name, isnan(b) ? "-" : vb, vc);
}

static void source(const char *what, const hr_eval_source *src) {
    printf("%-10s %s (sha256 %.12s)\n", what, src->path, src->sha256);
}

static void print_table(const hr_eval_summary *s) {
    source("base", &s->base);
    source("candidate", &s->cand);
    source("text", &s->text);
    printf("scored     %lld of %lld text tokens in %d windows of %d", (long long)s->cmp.n_tokens,
           (long long)s->text_tokens, s->cmp.n_windows, s->n_ctx);
    if (s->max_tokens) printf(" (budget %lld tokens; --windows N to change, 0 = all)\n", (long long)s->max_tokens);
    else if (s->windows_asked) printf(" (--windows %d)\n", s->windows_asked);
    else printf(" (the whole text)\n");
    printf("\n%-26s %14s %14s\n", "metric", "base", "candidate");
    row("perplexity", s->ppl_base, s->ppl_cand, "%.4f");
    row("KL(base||cand) nats/tok", NAN, s->cmp.kl, "%.5f");
    row("top-1 agreement", NAN, s->cmp.top1, "%.4f");
    row("FDTM (of continuation)", (double)s->fdtm_gen, s->fdtm, "%.2f");
    for (int k = 0; k < s->n_passkey; k++) {
        char name[64];
        snprintf(name, sizeof name, "passkey@%d token acc", s->passkey_length[k]);
        row(name, s->passkey[2 * k].token, s->passkey[2 * k + 1].token, "%.3f");
        snprintf(name, sizeof name, "passkey@%d exact", s->passkey_length[k]);
        row(name, s->passkey[2 * k].exact, s->passkey[2 * k + 1].exact, "%.3f");
    }
    if (s->has_recall) {
        row("recall acc (chance 0.25)", s->recall_result[0].acc, s->recall_result[1].acc, "%.4f");
        row("recall acc_norm", s->recall_result[0].acc_norm, s->recall_result[1].acc_norm, "%.4f");
    }
    if (s->has_tasks) {
        row("task acc", s->tasks_result[0].acc, s->tasks_result[1].acc, "%.4f");
        row("task acc_norm", s->tasks_result[0].acc_norm, s->tasks_result[1].acc_norm, "%.4f");
    }
    row("parameters", (double)s->params[0], (double)s->params[1], "%.0f");
    row("weight bytes (f32)", (double)s->weight_bytes[0], (double)s->weight_bytes[1], "%.0f");
    row("KV bytes / token (f32)", (double)s->kv_bytes_per_token[0], (double)s->kv_bytes_per_token[1], "%.0f");
    row("KV bytes allocated", (double)s->kv_bytes_allocated[0], (double)s->kv_bytes_allocated[1], "%.0f");
    if (s->has_speed) {
        row("prefill tokens/s", s->prefill_tps[0], s->prefill_tps[1], "%.1f");
        row("decode tokens/s", s->decode_tps[0], s->decode_tps[1], "%.1f");
    }
    if (s->warning[0]) fprintf(stderr, "headroom: warning: %s\n", s->warning);
}

int cmd_eval(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&k_spec, argc, argv, &a) != CLI_OK) return CLI_FAIL;
    if (a.help) {
        cli_print_help(&k_spec);
        return CLI_OK;
    }
    eval_opts o;
    eval_state s;
    memset(&s, 0, sizeof s);
    int rc = read_opts(&a, &o);
    if (rc == CLI_OK) rc = setup(&a, &o, &s);
    if (rc == CLI_OK && hr_eval_run(s.m[0], s.m[1] ? s.m[1] : s.m[0], s.tok, &o.p, &s.res) != HR_OK)
        rc = cli_lib_error("evaluation failed");
    if (rc == CLI_OK && s.mask) {
        char *d = NULL;
        if (hr_head_mask_describe(s.mask, &d) == HR_OK) printf("candidate heads: %s\n", d);
        hr_free(d);
    }
    if (rc == CLI_OK) print_table(hr_eval_result_summary(s.res));
    char *json = NULL;
    if (rc == CLI_OK && o.json) {
        rc = hr_eval_result_json(s.res, &json) == HR_OK ? cli_write_file(o.json, json)
                                                        : cli_lib_error("cannot build the JSON");
        hr_free(json);
    }
    hr_eval_result_free(s.res);
    hr_kv_plan_free(s.plan);
    hr_mc_task_free(s.tasks);
    hr_head_mask_free(s.mask);
    hr_free(s.calib);
    free(s.text);
    for (int i = 0; i < 2; i++) hr_model_free(s.m[i]);
    hr_tokenizer_free(s.tok);
    return rc;
}
