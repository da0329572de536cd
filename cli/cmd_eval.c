/* headroom eval: compare a candidate model against its base — quality
 * (perplexity, KL, top-1, FDTM, passkey, multiple choice), size and speed. */
#include "commands.h"
#include "common.h"
#include "kv.h"
#include "surgery.h"

#include "headroom/context.h"
#include "headroom/evaluate.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt k_opts[] = {
    {"text", 'f', "FILE", "evaluation text (required)"},
    {"ctx", 'c', "N", "window length in tokens (default min(seq_len, 256))"},
    {"windows", 'w', "N", "windows of the text to score; 0 = all (default 8)"},
    {"tasks", 0, "FILE.jsonl", "multiple-choice tasks: {\"context\", \"choices\", \"gold\"} per line"},
    {"passkey", 0, NULL, "passkey retrieval at several prompt lengths"},
    {"passkey-trials", 0, "N", "prompts per length (default 20)"},
    {"fdtm-prompts", 0, "N", "FDTM prompts (default 8)"},
    {"fdtm-gen", 0, "N", "FDTM continuation length (default 32)"},
    {"seed", 's', "S", "seed of prompts and passkeys (default 0)"},
    {"json", 0, "OUT.json", "write the results as JSON"},
    {"no-speed", 0, NULL, "skip the speed measurement"},
    {"tokenizer", 0, "PATH", "tokenizer of both models (default: beside BASE, or the GGUF)"},
    {"threads", 't', "K", "worker threads; 0 = all cores (default 0)"},
    {"force", 0, NULL, "replace an existing output that is not an earlier headroom output of the same kind"},
    CLI_KV_OPTIONS,
};

static const cli_spec k_spec = {
    .name = "eval",
    .usage = "BASE CANDIDATE --text FILE [--tasks FILE.jsonl] [--passkey] [--json OUT.json]",
    .summary = "Compares CANDIDATE (pruned, converted, quantized) with BASE on the same tokens: perplexity\n"
               "of both (non-overlapping windows starting with BOS), mean per-token KL(base || candidate),\n"
               "top-1 agreement, FDTM (mean first divergent token of greedy continuations), passkey\n"
               "retrieval (a random token sequence hidden in text, to be continued from its first two\n"
               "tokens), multiple-choice accuracy (summed and length-normalised log-likelihood), parameter\n"
               "count, weight bytes, KV bytes per token and measured prefill / decode speed. Both models\n"
               "must share the vocabulary.",
    .opts = k_opts,
    .n_opts = sizeof k_opts / sizeof k_opts[0],
    .example = "  headroom eval ../shared/models/stories260K/stories260K.bin p25.gguf \\\n"
               "      -f ../shared/data/text/tinystories_val.txt --passkey --json eval.json",
    .max_positional = 2,
};

typedef struct {
    const char *text, *tasks, *json, *tokenizer;
    long ctx, windows, trials, fdtm_prompts, fdtm_gen, threads;
    uint64_t seed;
    bool passkey, speed;
} eval_opts;

typedef struct {
    hr_model *m[2];
    hr_context *c[2];
    hr_tokenizer *tok;
    int32_t *ids;
    size_t n_ids;
    hr_mc_task *task;
} eval_state;

static int read_opts(const cli_args *a, eval_opts *o) {
    memset(o, 0, sizeof *o);
    o->text = cli_value(&k_spec, a, "text");
    o->tasks = cli_value(&k_spec, a, "tasks");
    o->json = cli_value(&k_spec, a, "json");
    o->tokenizer = cli_value(&k_spec, a, "tokenizer");
    o->passkey = cli_value(&k_spec, a, "passkey") != NULL;
    o->speed = cli_value(&k_spec, a, "no-speed") == NULL;
    o->windows = 8;
    o->trials = 20;
    o->fdtm_prompts = 8;
    o->fdtm_gen = 32;
    if (cli_get_int(&k_spec, a, "ctx", 8, INT_MAX, &o->ctx) || cli_get_int(&k_spec, a, "windows", 0, INT_MAX, &o->windows) ||
        cli_get_int(&k_spec, a, "passkey-trials", 1, 100000, &o->trials) ||
        cli_get_int(&k_spec, a, "fdtm-prompts", 1, 100000, &o->fdtm_prompts) ||
        cli_get_int(&k_spec, a, "fdtm-gen", 1, 4096, &o->fdtm_gen) ||
        cli_get_int(&k_spec, a, "threads", 0, 4096, &o->threads) || cli_get_u64(&k_spec, a, "seed", &o->seed))
        return CLI_FAIL;
    if (a->n_positional != 2) return cli_error("eval needs BASE and CANDIDATE models (see 'headroom eval --help')");
    if (!o->text) return cli_error("--text FILE is required");
    if (o->json) {
        const char *inputs[] = {a->positional[1], o->text, o->tasks, cli_value(&k_spec, a, "kv"),
                                cli_value(&k_spec, a, "kv-from"), NULL};
        if (cli_check_output(o->json, HR_OUT_JSON, "headroom.eval", cli_value(&k_spec, a, "force") != NULL,
                             a->positional[0], o->tokenizer, inputs))
            return CLI_FAIL;
    }
    return CLI_OK;
}

static int setup(const cli_args *a, eval_opts *o, eval_state *s) {
    for (int i = 0; i < 2; i++)
        if (cli_load_model(a->positional[i], &s->m[i])) return CLI_FAIL;
    const hr_config *cb = hr_model_config(s->m[0]), *cc = hr_model_config(s->m[1]);
    if (hr_config_vocab_size(cb) != hr_config_vocab_size(cc))
        return cli_error("the models do not share a vocabulary (%d and %d tokens)", hr_config_vocab_size(cb), hr_config_vocab_size(cc));
    int seq = hr_config_seq_len(cb) < hr_config_seq_len(cc) ? hr_config_seq_len(cb) : hr_config_seq_len(cc);
    if (!o->ctx) o->ctx = seq < 256 ? seq : 256;
    if (o->ctx > seq) return cli_error("--ctx %ld exceeds the models' context length %d", o->ctx, seq);
    if (o->ctx < (long)(16 + o->fdtm_gen))
        return cli_error("--ctx %ld is too short for 16-token FDTM prompts and %ld generated tokens", o->ctx,
                         o->fdtm_gen);
    if (cli_load_tokenizer(a->positional[0], s->m[0], o->tokenizer, &s->tok)) return CLI_FAIL;
    if (o->tasks) {
        char *t = NULL;
        size_t len = 0;
        if (cli_read_text(o->tasks, &t, &len)) return CLI_FAIL;
        hr_status st = hr_mc_parse(t, len, &s->task);
        free(t);
        if (st != HR_OK) return cli_error("%s: %s", o->tasks, hr_last_error());
    }
    if (surg_text_tokens(o->text, s->tok, 0, &s->ids, &s->n_ids)) return CLI_FAIL;
    hr_context_params cp = hr_context_default_params();
    cp.n_ctx = (int)o->ctx;
    cp.n_threads = (int)o->threads;
    /* --kv applies to the candidate: the base keeps its full cache. */
    hr_kv_plan *plan = NULL;
    if (cli_kv_plan(&k_spec, a, s->m[1], &plan)) return CLI_FAIL;
    for (int i = 0; i < 2; i++) {
        cp.kv_plan = i == 1 ? plan : NULL;
        if (hr_context_new(s->m[i], &cp, &s->c[i]) != HR_OK) {
            hr_kv_plan_free(plan);
            return cli_lib_error("cannot create a context");
        }
    }
    hr_kv_plan_free(plan);
    return CLI_OK;
}

static void row(const char *name, double b, double c, const char *fmt) {
    char vb[32], vc[32];
    snprintf(vb, sizeof vb, fmt, b);
    snprintf(vc, sizeof vc, fmt, c);
    printf("%-26s %14s %14s\n", name, isnan(b) ? "-" : vb, vc);
}

static int run(const eval_opts *o, eval_state *s) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", "headroom.eval");
    cJSON_AddNumberToObject(j, "format_version", 1);
    int rc = CLI_OK;
    hr_compare_result cr;
    if (hr_compare_logits(s->c[0], s->c[1], s->ids, s->n_ids, (int)o->ctx, (int)o->windows, &cr) != HR_OK) {
        cJSON_Delete(j);
        return cli_lib_error("comparison failed");
    }
    double fdtm = 0;
    if (hr_compare_fdtm(s->c[0], s->c[1], s->ids, s->n_ids, (int)o->fdtm_prompts, 16, (int)o->fdtm_gen, o->seed,
                        &fdtm) != HR_OK) {
        cJSON_Delete(j);
        return cli_lib_error("FDTM failed");
    }
    printf("%-26s %14s %14s\n", "metric", "base", "candidate");
    row("perplexity", exp(cr.nll_base), exp(cr.nll_cand), "%.4f");
    row("KL(base||cand) nats/tok", NAN, cr.kl, "%.5f");
    row("top-1 agreement", NAN, cr.top1, "%.4f");
    row("FDTM (of continuation)", (double)o->fdtm_gen, fdtm, "%.2f");
    cJSON_AddNumberToObject(j, "scored_tokens", (double)cr.n_tokens);
    cJSON_AddNumberToObject(j, "ctx", (double)o->ctx);
    cJSON_AddNumberToObject(j, "ppl_base", exp(cr.nll_base));
    cJSON_AddNumberToObject(j, "ppl_candidate", exp(cr.nll_cand));
    cJSON_AddNumberToObject(j, "kl", cr.kl);
    cJSON_AddNumberToObject(j, "kl_max", cr.kl_max);
    cJSON_AddNumberToObject(j, "top1_agreement", cr.top1);
    cJSON_AddNumberToObject(j, "fdtm", fdtm);
    cJSON_AddNumberToObject(j, "fdtm_gen", (double)o->fdtm_gen);
    if (o->passkey) {
        cJSON *pk = cJSON_AddArrayToObject(j, "passkey");
        int lengths[4] = {64, 128, 256, 512};
        for (int k = 0; k < 4 && lengths[k] <= o->ctx && rc == CLI_OK; k++) {
            hr_passkey_result r[2];
            for (int i = 0; i < 2 && rc == CLI_OK; i++)
                if (hr_passkey(s->c[i], s->ids, s->n_ids, s->ids[0], lengths[k], (int)o->trials, 16, o->seed, &r[i]) !=
                    HR_OK)
                    rc = cli_lib_error("passkey failed");
            if (rc != CLI_OK) break;
            char name[64];
            snprintf(name, sizeof name, "passkey@%d token acc", lengths[k]);
            row(name, r[0].token, r[1].token, "%.3f");
            snprintf(name, sizeof name, "passkey@%d exact", lengths[k]);
            row(name, r[0].exact, r[1].exact, "%.3f");
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "length", lengths[k]);
            cJSON_AddNumberToObject(e, "trials", (double)o->trials);
            cJSON_AddNumberToObject(e, "token_acc_base", r[0].token);
            cJSON_AddNumberToObject(e, "token_acc_candidate", r[1].token);
            cJSON_AddNumberToObject(e, "exact_base", r[0].exact);
            cJSON_AddNumberToObject(e, "exact_candidate", r[1].exact);
            cJSON_AddItemToArray(pk, e);
        }
    }
    if (rc == CLI_OK && s->task) {
        hr_mc_result r[2];
        for (int i = 0; i < 2 && rc == CLI_OK; i++)
            if (hr_mc_eval(s->c[i], s->tok, s->task, &r[i]) != HR_OK) rc = cli_lib_error("task scoring failed");
        if (rc == CLI_OK) {
            row("task acc", r[0].acc, r[1].acc, "%.4f");
            row("task acc_norm", r[0].acc_norm, r[1].acc_norm, "%.4f");
            cJSON *t = cJSON_AddObjectToObject(j, "tasks");
            cJSON_AddNumberToObject(t, "items", r[0].n_items);
            cJSON_AddNumberToObject(t, "acc_base", r[0].acc);
            cJSON_AddNumberToObject(t, "acc_candidate", r[1].acc);
            cJSON_AddNumberToObject(t, "acc_norm_base", r[0].acc_norm);
            cJSON_AddNumberToObject(t, "acc_norm_candidate", r[1].acc_norm);
        }
    }
    if (rc == CLI_OK) {
        static const char *names[2] = {"base", "candidate"};
        double pre[2] = {0, 0}, dec[2] = {0, 0};
        int np = (int)(o->ctx / 2), nd = (int)(o->ctx / 4);
        for (int i = 0; i < 2 && o->speed && rc == CLI_OK; i++)
            if ((size_t)(np + nd) > s->n_ids ||
                hr_measure_speed(s->c[i], s->ids, np, nd, 3, &pre[i], &dec[i]) != HR_OK)
                rc = cli_lib_error("speed measurement failed (text too short?)");
        row("parameters", (double)hr_model_n_params(s->m[0]), (double)hr_model_n_params(s->m[1]), "%.0f");
        row("weight bytes (f32)", (double)hr_model_weight_bytes(s->m[0]), (double)hr_model_weight_bytes(s->m[1]), "%.0f");
        row("KV bytes / token (f32)", (double)hr_model_kv_bytes_per_token(s->m[0]),
            (double)hr_model_kv_bytes_per_token(s->m[1]), "%.0f");
        row("KV bytes allocated", (double)hr_context_kv_bytes(s->c[0]), (double)hr_context_kv_bytes(s->c[1]), "%.0f");
        if (o->speed && rc == CLI_OK) {
            row("prefill tokens/s", pre[0], pre[1], "%.1f");
            row("decode tokens/s", dec[0], dec[1], "%.1f");
        }
        for (int i = 0; i < 2; i++) {
            cJSON *e = cJSON_AddObjectToObject(j, names[i]);
            cJSON_AddNumberToObject(e, "params", (double)hr_model_n_params(s->m[i]));
            cJSON_AddNumberToObject(e, "weight_bytes", (double)hr_model_weight_bytes(s->m[i]));
            cJSON_AddNumberToObject(e, "kv_bytes_per_token", (double)hr_model_kv_bytes_per_token(s->m[i]));
        cJSON_AddNumberToObject(e, "kv_bytes_allocated", (double)hr_context_kv_bytes(s->c[i]));
            if (o->speed) {
                cJSON_AddNumberToObject(e, "prefill_tokens_per_s", pre[i]);
                cJSON_AddNumberToObject(e, "decode_tokens_per_s", dec[i]);
            }
        }
    }
    if (rc == CLI_OK && o->json) {
        char *txt = cJSON_Print(j);
        rc = txt ? cli_write_file(o->json, txt) : cli_error("out of memory");
        free(txt);
    }
    cJSON_Delete(j);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&k_spec, argc, argv, &a) != CLI_OK) return CLI_FAIL;
    if (a.help) {
        cli_print_help(&k_spec);
        return CLI_OK;
    }
    eval_opts o;
    if (read_opts(&a, &o) != CLI_OK) return CLI_FAIL;
    eval_state s;
    memset(&s, 0, sizeof s);
    int rc = setup(&a, &o, &s);
    if (rc == CLI_OK) rc = run(&o, &s);
    hr_mc_task_free(s.task);
    free(s.ids);
    for (int i = 0; i < 2; i++) {
        hr_context_free(s.c[i]);
        hr_model_free(s.m[i]);
    }
    hr_tokenizer_free(s.tok);
    return rc;
}
