/* headroom successor: successor heads' mod-10 structure — a linear probe of
 * the numbers' effective embeddings predicting value mod 10
 * (hr_successor_mod10). */
#include "commands.h"
#include "common.h"

#include "headroom/context.h"
#include "headroom/heads.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

static const cli_opt k_opts[] = {
    {"max", 0, "N", "probe the numbers 0..N that are single tokens (default 100)"},
    {"ridge", 0, "R", "ridge penalty, relative to the mean squared feature norm (default 0.01)"},
    CLI_TOKENIZER_OPTION,
    CLI_THREADS_OPTION,
};

static const cli_spec k_spec = {
    .name = "successor",
    .usage = "[MODEL] [--max N] [--ridge R]",
    .summary = "Successor heads' mod-10 structure (Gould et al. 2023): a linear probe (ridge regression) from\n"
               "the effective embeddings (embedding + MLP0) of the numbers 0..N the vocabulary has as single\n"
               "tokens to their value mod 10. Prints the numbers found, the accuracy on them, the\n"
               "leave-one-out accuracy and chance (the largest class's share). Leave-one-out means\n"
               "something only for classes with two or more numbers.",
    .opts = k_opts,
    .n_opts = sizeof k_opts / sizeof k_opts[0],
    .example = "  headroom successor --max 100",
    .max_positional = 1,
};

int cmd_successor(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&k_spec, argc, argv, &a) != CLI_OK) return CLI_FAIL;
    if (a.help) {
        cli_print_help(&k_spec);
        return CLI_OK;
    }
    long max_n = 100, threads = 0;
    double ridge = 0.01;
    if (cli_get_int(&k_spec, &a, "max", 1, 100000, &max_n) || cli_get_int(&k_spec, &a, "threads", 0, 4096, &threads) ||
        cli_get_float(&k_spec, &a, "ridge", 1e-12, 1e6, &ridge))
        return CLI_FAIL;
    char path[PATH_MAX + 64];
    hr_model *m = NULL;
    hr_tokenizer *tok = NULL;
    hr_context *ctx = NULL;
    int *values = malloc(sizeof(int) * (size_t)(max_n + 1)), rc = CLI_OK;
    hr_mod10_probe pr;
    if (!values) return cli_error("out of memory");
    if (cli_resolve_model(&a, path, sizeof path) || cli_load_model(path, &m) ||
        cli_load_tokenizer(path, m, cli_value(&k_spec, &a, "tokenizer"), &tok))
        rc = CLI_FAIL;
    hr_context_params cp = hr_context_default_params();
    cp.n_threads = (int)threads;
    if (rc == CLI_OK && hr_context_new(m, &cp, &ctx) != HR_OK) rc = cli_lib_error("cannot create a context");
    if (rc == CLI_OK && hr_successor_mod10(ctx, tok, (int)max_n, ridge, values, &pr) != HR_OK)
        rc = cli_lib_error("successor probe");
    if (rc == CLI_OK) {
        printf("numbers: %d of 0..%ld are single tokens:", pr.n, max_n);
        for (int i = 0; i < pr.n; i++) printf(" %d", values[i]);
        printf("\nclasses (value mod 10) with 2+ numbers: %d\n", pr.n_classes);
        printf("probe accuracy: %.3f on the numbers fitted, %.3f leave-one-out; chance %.3f\n", pr.train_accuracy,
               pr.loo_accuracy, pr.chance);
    }
    free(values);
    hr_context_free(ctx);
    hr_tokenizer_free(tok);
    hr_model_free(m);
    return rc;
}
