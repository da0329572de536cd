/* headroom train: a small model trained from random initialisation
 * (hr_model_random + hr_train_*). */
#include "commands.h"
#include "common.h"
#include "train_common.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt k_opts[] = {
    {"config", 0, "SPEC", "dim=D,layers=L,heads=H,kv-heads=K,hidden=F,vocab-from=TOKENIZER[,seq=S] (required)"},
    {"text", 'f', "FILE", "training text; its last 10% is held out for evaluation (required)"},
    CLI_TRAIN_LOOP_OPTIONS,
    {"seed", 's', "S", "seed of the initial weights and the window draws (default 0)"},
    {"out", 'o', "OUT.gguf", "trained model, tokenizer embedded (required)"},
    {"hf", 0, "DIR", "also write a Hugging Face folder"},
    CLI_DTYPE_OPTION,
    CLI_THREADS_OPTION,
    CLI_FORCE_OPTION,
};

static const cli_spec k_spec = {
    .name = "train",
    .usage = "--config dim=..,layers=..,heads=..,kv-heads=..,hidden=..,vocab-from=TOK --text FILE --steps N --out OUT",
    .summary = "Trains a llama-style model (RMSNorm, SwiGLU, RoPE, tied classifier) from random\n"
               "initialisation, deterministic from --seed, with the loop of 'headroom finetune' (every\n"
               "weight trains). The vocabulary comes from the tokenizer named by vocab-from.",
    .opts = k_opts,
    .n_opts = sizeof k_opts / sizeof k_opts[0],
    .example =
        "  headroom train --config dim=64,layers=5,heads=8,kv-heads=4,hidden=172,\\\n"
        "      vocab-from=../shared/models/stories260K/tok512.bin -f ../shared/data/text/tinystories_val.txt \\\n"
        "      --steps 2000 --lr 3e-3 --warmup 100 --batch 8 -o tiny.gguf",
    .max_positional = 0,
};

/* Reads "key=value,..." into the random-model params and the tokenizer path. */
static int parse_config(const char *s, hr_random_model_params *rp, char *tok, size_t cap) {
    memset(rp, 0, sizeof *rp);
    tok[0] = 0;
    rp->seq_len = 256;
    char buf[2048];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) return cli_error("--config: '%s' is not key=value", kv);
        *eq = 0;
        const char *v = eq + 1;
        if (!strcmp(kv, "vocab-from")) {
            snprintf(tok, cap, "%s", v);
            continue;
        }
        char *end;
        long x = strtol(v, &end, 10);
        if (end == v || *end || x < 1 || x > 1 << 20)
            return cli_error("--config: %s=%s is not a positive integer", kv, v);
        int *f = !strcmp(kv, "dim")        ? &rp->dim
                 : !strcmp(kv, "layers")   ? &rp->n_layers
                 : !strcmp(kv, "heads")    ? &rp->n_heads
                 : !strcmp(kv, "kv-heads") ? &rp->n_kv_heads
                 : !strcmp(kv, "hidden")   ? &rp->hidden
                 : !strcmp(kv, "seq")      ? &rp->seq_len
                                           : NULL;
        if (!f)
            return cli_error("--config: unknown key '%s' (dim, layers, heads, kv-heads, hidden, seq, vocab-from)", kv);
        *f = (int)x;
    }
    if (!rp->dim || !rp->n_layers || !rp->n_heads || !rp->hidden || !tok[0])
        return cli_error("--config needs dim, layers, heads, hidden and vocab-from");
    return CLI_OK;
}

int cmd_train(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&k_spec, argc, argv, &a) != CLI_OK) return CLI_FAIL;
    if (a.help) {
        cli_print_help(&k_spec);
        return CLI_OK;
    }
    hr_train_params p = hr_train_default_params();
    p.full = true;
    hr_random_model_params rp;
    char tok_path[PATH_MAX];
    const char *cfg = cli_value(&k_spec, &a, "config"), *text = cli_value(&k_spec, &a, "text");
    const char *out = cli_value(&k_spec, &a, "out"), *hf = cli_value(&k_spec, &a, "hf");
    if (cli_train_read(&k_spec, &a, &p)) return CLI_FAIL;
    if (!cfg || !text) return cli_error("--config and --text are required (see 'headroom train --help')");
    if (parse_config(cfg, &rp, tok_path, sizeof tok_path)) return CLI_FAIL;
    rp.seed = p.seed;
    hr_dtype dtype; /* a random initialisation is f32: that is what HR_DTYPE_KEEP writes */
    if (cli_get_dtype(&k_spec, &a, &dtype)) return CLI_FAIL;
    const char *inputs[] = {text, tok_path, p.resume, NULL};
    if (cli_train_check_outputs(out, hf, &p, cli_value(&k_spec, &a, "force") != NULL, NULL, inputs)) return CLI_FAIL;
    hr_tokenizer *tok = NULL;
    if (hr_tokenizer_load(tok_path, &tok) != HR_OK) return cli_lib_error("cannot load the vocab-from tokenizer");
    rp.vocab = hr_tokenizer_vocab_size(tok);
    hr_model *m = NULL, *trained = NULL;
    int rc = hr_model_random(&rp, &m) == HR_OK ? CLI_OK : cli_lib_error("bad --config");
    if (rc == CLI_OK) {
        printf("model: dim %d, %d layers, %d heads (%d KV), hidden %d, vocab %d, context %d: %lld parameters\n", rp.dim,
               rp.n_layers, rp.n_heads, rp.n_kv_heads ? rp.n_kv_heads : rp.n_heads, rp.hidden, rp.vocab, rp.seq_len,
               (long long)hr_model_n_params(m));
        rc = cli_train_run(m, tok, text, out, &p, &trained);
    }
    if (rc == CLI_OK) rc = cli_train_write(trained, tok, out, hf, dtype);
    hr_model_free(trained);
    hr_model_free(m);
    hr_tokenizer_free(tok);
    return rc;
}
