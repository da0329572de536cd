/* headroom prune: remove heads, MLP neurons, sublayers and blocks by
 * scores (hr_prune_run), write the smaller model (GGUF, optionally HF) and
 * prune.json. */
#include "commands.h"
#include "common.h"
#include "train_common.h"

#include "headroom/prune.h"
#include "headroom/save.h"
#include "headroom/scores.h"
#include "headroom/study.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt k_opts[] = {
    {"scores", 0, "heads.json", "head scores from 'headroom heads' (needed for --heads unless --by random)"},
    {"by", 0, "METHOD",
     "score method id in heads.json, or 'random'; ranked by its \"higher\" field (keep first);\n"
     "'taylor' also scores --mlp neurons by first-order Taylor on --text;\n"
     "'loraprune': LoRAPrune, iterative pruning by LoRA-guided importance while fine-tuning\n"
     "LoRA on --text for --recover STEPS"},
    {"iterations", 0, "K", "LoRAPrune iterations: each removes a share, the last reaches the amount (default 4)"},
    {"heads", 0, "P%|N", "query heads to remove: a percentage of all heads (rounded) or a count"},
    {"mlp", 0, "P%|N",
     "MLP neurons to remove (AMP importance on --text, or Taylor with --by taylor): a percentage or a count"},
    {"drop-attn", 0, "K", "remove the K least important attention sublayers"},
    {"drop-mlp", 0, "K", "remove the K least important MLP sublayers"},
    {"drop-blocks", 0, "K", "remove the K least important blocks"},
    {"drop-sublayers", 0, "K",
     "remove K attention / MLP sublayers from one pool (joint layer drop by the layer "
     "metrics; with --iterative, FinerCut)"},
    {"iterative", 0, NULL,
     "FinerCut: drop the sublayer whose removal changes the output least (JS divergence on "
     "--text), re-scoring after each removal"},
    {"by-output", 0, NULL,
     "rank the --drop-sublayers pool once by FinerCut's output change instead of the layer "
     "metrics"},
    {"budget", 0, "MODE", "global | per-layer | cfsp (default global)"},
    {"layers", 0, "layers.json", "layer scores from 'headroom heads' (default: computed on --text)"},
    {"layer-metric", 0, "ID", "layers.json metric for all drops (default attn_kl / mlp_kl / block_influence)"},
    {"text", 'f', "FILE", "calibration text (MLP importance, layer scores when no --layers)"},
    {"tokens", 'n', "N", "calibration tokens (default " CLI_STR(HR_CALIB_SURGERY_TOKENS) ")"},
    {"uneven", 0, "MODE", "even (default: GQA groups stay even) | duplicate (duplicate K/V rows)"},
    {"uniform", 0, NULL, "same loss in every layer (per-layer budget, same shapes: HF-writable)"},
    {"invert", 0, NULL, "remove the highest-ranked heads first (for trait scores like sink)"},
    {"strict", 0, NULL, "fail when the amount cannot be removed exactly (default: the nearest, with a warning)"},
    {"seed", 's', "S", "seed of --by random and of --recover's LoRA initialisation and windows (default 0)"},
    {"out", 'o', "OUT.gguf", "output GGUF (required); prune.json goes to OUT.prune.json"},
    {"report", 0, "FILE", "where to write prune.json (default OUT.prune.json)"},
    {"hf", 0, "DIR", "also write a Hugging Face folder (uniform results only)"},
    {"recover", 0, "STEPS",
     "after the surgery, LoRA fine-tune STEPS steps on --recover-text and merge (with --by\n"
     "loraprune: the whole step budget, spread over the iterations)"},
    {"recover-budget", 0, "MODE",
     "uniform | cfsp: LoRA rank per layer by block importance (CFSP; default cfsp with\n"
     "--budget cfsp, else uniform)"},
    {"recover-text", 0, "FILE", "recovery text (default --text; its last 10% held out)"},
    {"lora-rank", 0, "R", "LoRA rank of --recover (default 8)"},
    {"lr", 0, "LR", "learning rate of --recover (default 1e-3; warm-up 10%, cosine, clip 1)"},
    {"eval-every", 0, "N",
     "held-out loss of --recover / LoRAPrune every N steps, shown in the progress (default: at the end)"},
    CLI_DTYPE_OPTION,
    CLI_TOKENIZER_OPTION,
    CLI_THREADS_OPTION,
    CLI_FORCE_OPTION,
};

static const cli_spec k_spec = {
    .name = "prune",
    .usage = "[MODEL] --out OUT.gguf [--scores heads.json --by METHOD --heads P%|N] [--mlp P%]\n"
             "       [--drop-sublayers K [--iterative | --by-output] -f TEXT] [options]",
    .summary = "Physically removes attention heads (rows of Wq/Wk/Wv, columns of Wo), MLP neurons (rows of\n"
               "gate/up, columns of down), attention / MLP sublayers and whole blocks, and writes the\n"
               "smaller model as GGUF (per-layer shapes: architecture \"deci\" when not uniform) plus\n"
               "prune.json recording what went and why. In GQA layers a KV head goes with its last query\n"
               "head and every KV group keeps the same number of query heads (or, with --uneven\n"
               "duplicate, K/V rows are duplicated); the planner combines per-layer group shapes to\n"
               "remove exactly the amount asked, or the nearest possible with a warning saying why\n"
               "(--strict: an error). No layer loses all its heads or neurons unless its sublayer is\n"
               "dropped. Nothing is written when any input is bad.",
    .opts = k_opts,
    .n_opts = sizeof k_opts / sizeof k_opts[0],
    .example =
        "  headroom heads -f ../shared/data/text/tinystories_val.txt -o lab\n"
        "  headroom prune --scores lab/heads.json --by ablation --heads 25% --out p25.gguf\n"
        "  headroom prune --mlp 30% --drop-blocks 1 -f ../shared/data/text/tinystories_val.txt -o small.gguf\n"
        "  headroom prune --drop-sublayers 3 --iterative -f ../shared/data/text/tinystories_val.txt -o fc3.gguf\n"
        "  headroom prune --mlp 25% --by taylor -f ../shared/data/text/tinystories_val.txt -o taylor.gguf\n"
        "  headroom prune --by loraprune --heads 50% --mlp 25% --iterations 4 --recover 400 \\\n"
        "      -f ../shared/data/text/tinystories_val.txt -o lp.gguf",
    .max_positional = 1,
};

typedef struct {
    const char *scores, *layers, *text, *out, *hf, *tokenizer, *recover_text;
    hr_train_params recover; /* steps 0 = no recovery */
    bool loraprune, cfsp_recover;
    int iterations;
    char report[PATH_MAX + 32];
    hr_dtype dtype;
    bool force;
    hr_prune_params p;
} prune_opts;

/* --by loraprune: what it needs, and the options it does not take. */
static int read_loraprune(const cli_args *a, prune_opts *o, long steps) {
    static const char *no[] = {"scores",         "layers",       "drop-attn", "drop-mlp", "drop-blocks",
                               "drop-sublayers", "iterative",    "by-output", "uniform",  "invert",
                               "strict",         "layer-metric", "tokens"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (cli_value(&k_spec, a, no[i]))
            return cli_error("--by loraprune scores heads and neurons itself while fine-tuning; it does not take --%s",
                             no[i]);
    if (!o->p.heads && !o->p.mlp) return cli_error("--by loraprune needs --heads P%% and/or --mlp P%%");
    if (!o->text && !o->recover_text) return cli_error("--by loraprune fine-tunes on text: give --text FILE");
    if (!steps) return cli_error("--by loraprune needs its LoRA step budget: --recover STEPS");
    if (o->p.budget == HR_BUDGET_PER_LAYER)
        return cli_error("--by loraprune ranks units over the whole model; --budget per-layer does not apply");
    return CLI_OK;
}

static int read_opts(const cli_args *a, prune_opts *o) {
    memset(o, 0, sizeof *o);
    hr_prune_params *p = &o->p;
    *p = hr_prune_default_params();
    o->scores = cli_value(&k_spec, a, "scores");
    o->layers = cli_value(&k_spec, a, "layers");
    o->text = cli_value(&k_spec, a, "text");
    o->out = cli_value(&k_spec, a, "out");
    o->hf = cli_value(&k_spec, a, "hf");
    o->tokenizer = cli_value(&k_spec, a, "tokenizer");
    o->force = cli_value(&k_spec, a, "force") != NULL;
    p->method = cli_value(&k_spec, a, "by");
    p->heads = cli_value(&k_spec, a, "heads");
    p->mlp = cli_value(&k_spec, a, "mlp");
    p->mlp_method = p->method && strcmp(p->method, "taylor") == 0 ? "taylor" : "amp";
    p->layer_metric = cli_value(&k_spec, a, "layer-metric");
    p->uniform = cli_value(&k_spec, a, "uniform") != NULL;
    p->invert = cli_value(&k_spec, a, "invert") != NULL;
    p->strict = cli_value(&k_spec, a, "strict") != NULL;
    long drops[4] = {0, 0, 0, 0}, tokens = HR_CALIB_SURGERY_TOKENS, threads = 0;
    if (cli_get_int(&k_spec, a, "drop-attn", 0, INT_MAX, &drops[0]) ||
        cli_get_int(&k_spec, a, "drop-mlp", 0, INT_MAX, &drops[1]) ||
        cli_get_int(&k_spec, a, "drop-blocks", 0, INT_MAX, &drops[2]) ||
        cli_get_int(&k_spec, a, "drop-sublayers", 0, INT_MAX, &drops[3]) ||
        cli_get_int(&k_spec, a, "tokens", 16, INT_MAX, &tokens) ||
        cli_get_int(&k_spec, a, "threads", 0, 4096, &threads) || cli_get_u64(&k_spec, a, "seed", &p->seed))
        return CLI_FAIL;
    p->drop_attn = (int)drops[0], p->drop_mlp = (int)drops[1], p->drop_blocks = (int)drops[2];
    p->drop_sublayers = (int)drops[3];
    p->iterative = cli_value(&k_spec, a, "iterative") != NULL;
    p->sublayers_by_output = cli_value(&k_spec, a, "by-output") != NULL;
    p->max_tokens = tokens;
    p->n_threads = (int)threads;
    const char *b = cli_value(&k_spec, a, "budget"), *u = cli_value(&k_spec, a, "uneven");
    if (hr_prune_budget_from_name(b ? b : p->uniform ? "per-layer" : "global", &p->budget) != HR_OK)
        return cli_lib_error("bad --budget");
    if (u && strcmp(u, "duplicate") != 0 && strcmp(u, "even") != 0)
        return cli_error("unknown --uneven '%s' (expected even or duplicate)", u);
    p->uneven_duplicate = u && strcmp(u, "duplicate") == 0;
    if (cli_get_dtype(&k_spec, a, &o->dtype)) return CLI_FAIL;
    if (!o->out) return cli_error("--out OUT.gguf is required (see 'headroom prune --help')");
    long rsteps = 0;
    o->recover = hr_train_default_params();
    o->recover.lora_rank = 8;
    if (cli_get_int(&k_spec, a, "recover", 1, INT_MAX, &rsteps) || cli_train_read(&k_spec, a, &o->recover))
        return CLI_FAIL;
    o->recover.steps = (int)rsteps, o->recover.warmup = (int)(rsteps / 10);
    o->recover_text = cli_value(&k_spec, a, "recover-text");
    if (!o->recover_text) o->recover_text = o->text;
    o->loraprune = p->method && strcmp(p->method, "loraprune") == 0;
    if (o->loraprune && read_loraprune(a, o, rsteps)) return CLI_FAIL;
    if (rsteps && !o->recover_text) return cli_error("--recover needs --recover-text FILE (or --text)");
    if (!rsteps && cli_value(&k_spec, a, "recover-text")) return cli_error("--recover-text needs --recover STEPS");
    long iters = 4;
    if (cli_get_int(&k_spec, a, "iterations", 1, INT_MAX, &iters)) return CLI_FAIL;
    o->iterations = (int)iters;
    const char *rb = cli_value(&k_spec, a, "recover-budget");
    if (rb && strcmp(rb, "uniform") != 0 && strcmp(rb, "cfsp") != 0)
        return cli_error("unknown --recover-budget '%s' (expected uniform or cfsp)", rb);
    o->cfsp_recover = rb ? strcmp(rb, "cfsp") == 0 : p->budget == HR_BUDGET_CFSP;
    if (rb && !rsteps) return cli_error("--recover-budget needs --recover STEPS");
    if (!o->loraprune && cli_value(&k_spec, a, "iterations"))
        return cli_error("--iterations is LoRAPrune's: it needs --by loraprune");
    if (p->mlp && !o->text && !o->loraprune)
        return cli_error("--mlp needs calibration text: --text FILE (%s)",
                         strcmp(p->mlp_method, "taylor") == 0 ? "--by taylor takes the gradients of the loss on it"
                                                              : "AMP importance is measured on it");
    const char *rep = cli_value(&k_spec, a, "report");
    if (rep) snprintf(o->report, sizeof o->report, "%s", rep);
    else snprintf(o->report, sizeof o->report, "%s.prune.json", o->out);
    return CLI_OK;
}

/* Every output is checked before any work: never an input, never a foreign
 * file without --force, always writable. */
static int check_outputs(const prune_opts *o, const char *model_path) {
    const char *inputs[] = {o->scores, o->layers, o->text, o->tokenizer, o->recover_text, NULL};
    if (cli_check_output(o->out, HR_OUT_GGUF, NULL, o->force, model_path, o->tokenizer, inputs) ||
        cli_check_output(o->report, HR_OUT_JSON, "headroom.prune", o->force, model_path, o->tokenizer, inputs) ||
        (o->hf && cli_check_output(o->hf, HR_OUT_HF_FOLDER, NULL, o->force, model_path, o->tokenizer, inputs)))
        return CLI_FAIL;
    if (strcmp(o->report, o->out) == 0 || (o->hf && strcmp(o->hf, o->out) == 0))
        return cli_error("--out, --report and --hf must name different paths");
    return CLI_OK;
}

typedef struct {
    char model_path[PATH_MAX + 64];
    hr_model *m;
    hr_tokenizer *tok;
    hr_scores *scores;
    char *text;
    hr_prune_result *res;
    hr_model *recovered; /* the pruned model after --recover, or NULL */
} prune_state;

static int load_inputs(const cli_args *a, prune_opts *o, prune_state *st) {
    if (cli_resolve_model(a, st->model_path, sizeof st->model_path) || check_outputs(o, st->model_path) ||
        cli_load_model(st->model_path, &st->m))
        return CLI_FAIL;
    if (o->scores || o->layers) {
        if (hr_scores_new(hr_model_config(st->m), &st->scores) != HR_OK ||
            (o->scores && hr_scores_read_heads(st->scores, o->scores) != HR_OK) ||
            (o->layers && hr_scores_read_layers(st->scores, o->layers) != HR_OK))
            return cli_lib_error("cannot read the scores");
    }
    o->p.scores = st->scores;
    if (!o->text && !o->recover.steps) {
        cli_load_tokenizer_optional(st->model_path, st->m, o->tokenizer, &st->tok);
        return CLI_OK;
    }
    if (cli_load_tokenizer(st->model_path, st->m, o->tokenizer, &st->tok) ||
        (o->text && !o->loraprune && cli_read_text(o->text, &st->text, &o->p.text_len)))
        return CLI_FAIL;
    o->p.text = st->text;
    return CLI_OK;
}

/* A planned amount that differs from the request: what and why. */
static void warn_amount(const char *what, const char *asked, const hr_prune_plan_result *r, bool uniform) {
    if (r->removed == r->requested) return;
    fprintf(stderr, "headroom: warning: %s %s asks for %lld; removed %lld: %s (--strict makes this an error%s)\n", what,
            asked, (long long)r->requested, (long long)r->removed, r->reason,
            strcmp(what, "--heads") == 0 && !uniform ? "; --uneven duplicate removes any count" : "");
}

static int write_outputs(const prune_opts *o, prune_state *st) {
    const hr_model *p = st->recovered ? st->recovered : hr_prune_result_model(st->res);
    if (o->hf && !hr_config_uniform(hr_model_config(p)))
        return cli_error("the pruned model differs across layers; a Hugging Face folder needs a uniform result "
                         "(use --uniform, or write only the GGUF)");
    hr_prune_report_meta meta = {st->model_path, o->out, o->hf, o->text};
    char *json = NULL;
    if (hr_prune_report_json(st->res, &meta, &json) != HR_OK) return cli_lib_error("cannot build prune.json");
    int rc = CLI_OK;
    if (hr_model_save_gguf(p, st->tok, o->out, cli_gguf_dtype(o->dtype)) != HR_OK)
        rc = cli_lib_error("cannot write the GGUF");
    if (rc == CLI_OK && o->hf && hr_model_save_hf(p, st->tok, o->hf, o->dtype) != HR_OK) {
        remove(o->out);
        rc = cli_lib_error("cannot write the Hugging Face folder");
    }
    if (rc == CLI_OK) rc = cli_write_file(o->report, json);
    hr_free(json);
    if (rc != CLI_OK) return rc;
    const hr_prune_plan_result *h = hr_prune_result_heads(st->res), *n = hr_prune_result_neurons(st->res);
    warn_amount("--heads", o->p.heads, h, o->p.uniform);
    warn_amount("--mlp", o->p.mlp, n, o->p.uniform);
    int64_t before = hr_model_n_params(st->m), after = hr_model_n_params(p);
    printf("pruned %s -> %s (%s)\n", st->model_path, o->out, hr_dtype_name(hr_dtype_for_model(p, o->dtype, true)));
    printf("heads removed: %lld (asked %lld), neurons removed: %lld (asked %lld), layers: %d -> %d\n",
           (long long)h->removed, (long long)h->requested, (long long)n->removed, (long long)n->requested,
           hr_config_n_layers(hr_model_config(st->m)), hr_config_n_layers(hr_model_config(p)));
    const int *sub = NULL;
    const double *sc = NULL;
    int n_sub = hr_prune_result_sublayers(st->res, &sub, &sc);
    for (int i = 0; i < n_sub; i++)
        printf("sublayer drop %d: layer %d %s (score %.6g)\n", i + 1, sub[i] / 2, sub[i] % 2 ? "mlp" : "attention",
               sc[i]);
    printf("parameters: %lld -> %lld (%.1f%%)\n", (long long)before, (long long)after, 100.0 * after / before);
    printf("report: %s\n", o->report);
    return CLI_OK;
}

/* CFSP's recovery budget for --recover: LoRA ranks per layer of the pruned
 * model from its block influence on the recovery text (library). */
static int cfsp_ranks(const prune_state *st, const prune_opts *o, hr_train_params *tp, int *ranks) {
    const hr_model *m = hr_prune_result_model(st->res);
    char *text = NULL;
    size_t len = 0, n = 0;
    int32_t *ids = NULL;
    hr_context *ctx = NULL;
    hr_context_params cp = hr_context_default_params();
    cp.n_threads = tp->n_threads;
    if (cli_read_text(o->recover_text, &text, &len)) return CLI_FAIL;
    hr_status s = hr_calib_tokens(st->tok, text, len, HR_CALIB_SURGERY_TOKENS, &ids, &n);
    if (s == HR_OK) s = hr_context_new(m, &cp, &ctx);
    if (s == HR_OK) s = hr_prune_cfsp_recovery(ctx, ids, n, 0, tp->lora_rank, 0, ranks, NULL);
    hr_context_free(ctx);
    hr_free(ids);
    free(text);
    if (s != HR_OK) return cli_lib_error("cannot compute the CFSP recovery budget");
    int mx = 1, L = hr_config_n_layers(hr_model_config(m));
    printf("cfsp recovery ranks per layer:");
    for (int l = 0; l < L; l++) printf(" %d", ranks[l]), mx = ranks[l] > mx ? ranks[l] : mx;
    printf("\n");
    tp->lora_layer_ranks = ranks, tp->lora_rank = mx;
    return CLI_OK;
}

/* --by loraprune: the whole run in the library. */
static int run_loraprune(prune_opts *o, prune_state *st) {
    char *text = NULL;
    size_t len = 0;
    if (cli_read_text(o->recover_text, &text, &len)) return CLI_FAIL;
    hr_loraprune_params lp = hr_loraprune_default_params();
    lp.heads = o->p.heads, lp.mlp = o->p.mlp, lp.iterations = o->iterations;
    lp.train = o->recover;
    lp.cfsp_ranks = o->cfsp_recover;
    lp.uneven_duplicate = o->p.uneven_duplicate;
    lp.text = text, lp.text_len = len;
    int rc = CLI_OK;
    cli_train_stop_on_sigint(&lp.train, true);
    hr_status s = hr_loraprune_run(st->m, st->tok, &lp, &st->res);
    cli_train_stop_on_sigint(&lp.train, false);
    if (s != HR_OK) rc = cli_lib_error("LoRAPrune failed");
    free(text);
    double before = 0, after = 0;
    if (rc == CLI_OK && hr_prune_result_heldout(st->res, &before, &after) == HR_OK)
        printf("held-out loss %.4f -> %.4f (perplexity %.3f -> %.3f)\n", before, after, exp(before), exp(after));
    int K = rc == CLI_OK ? hr_prune_result_iterations(st->res, NULL, NULL, NULL) : 0;
    int *v = calloc(3 * (size_t)K + 1, sizeof(int)); // (3, K) steps, heads, neurons
    if (v) hr_prune_result_iterations(st->res, v, v + K, v + 2 * K);
    for (int k = 0; v && k < K; k++)
        printf("loraprune iteration %d after step %d: %d heads, %d neurons removed\n", k + 1, v[k], v[K + k],
               v[2 * K + k]);
    free(v);
    return rc;
}

int cmd_prune(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&k_spec, argc, argv, &a) != CLI_OK) return CLI_FAIL;
    if (a.help) {
        cli_print_help(&k_spec);
        return CLI_OK;
    }
    prune_opts o;
    prune_state st;
    memset(&st, 0, sizeof st);
    int rc = read_opts(&a, &o);
    if (rc == CLI_OK) rc = load_inputs(&a, &o, &st);
    if (rc == CLI_OK && o.loraprune) rc = run_loraprune(&o, &st);
    else if (rc == CLI_OK && hr_prune_run(st.m, st.tok, &o.p, &st.res) != HR_OK) rc = cli_lib_error("pruning failed");
    int *ranks = NULL; // (n_layers) CFSP recovery ranks
    if (rc == CLI_OK && o.recover.steps && !o.loraprune && o.cfsp_recover) {
        ranks = calloc((size_t)hr_config_n_layers(hr_model_config(hr_prune_result_model(st.res))) + 1, sizeof(int));
        rc = ranks ? cfsp_ranks(&st, &o, &o.recover, ranks) : cli_error("out of memory");
    }
    if (rc == CLI_OK && o.recover.steps && !o.loraprune)
        rc = cli_train_run(hr_prune_result_model(st.res), st.tok, o.recover_text, o.out, &o.recover, &st.recovered);
    if (rc == CLI_OK) rc = write_outputs(&o, &st);
    free(ranks);
    hr_model_free(st.recovered);
    hr_prune_result_free(st.res);
    hr_scores_free(st.scores);
    free(st.text);
    hr_tokenizer_free(st.tok);
    hr_model_free(st.m);
    return rc;
}
