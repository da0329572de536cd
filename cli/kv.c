#include "kv.h"

#include "headroom/scores.h"

#include <stdio.h>
#include <string.h>

/* Options that mean something only with --kv-from. */
static const char *const k_from_only[] = {"kv-method", "retrieval-fraction", "kv-sink", "kv-window"};

static void print_plan(const hr_kv_plan *p, const hr_config *c) {
    for (int l = 0; l < hr_config_n_layers(c); l++) {
        fprintf(stderr, "kv plan: layer %d:", l);
        for (int g = 0; g < hr_config_n_head_kv(c, l); g++) {
            hr_kv_policy q = hr_kv_plan_get(p, l, g);
            if (q.kind == HR_KV_STREAMING) fprintf(stderr, " streaming(sink=%d,window=%d)", q.sink, q.window);
            else if (q.kind == HR_KV_HEAVY) fprintf(stderr, " heavy(budget=%d,window=%d)", q.budget, q.window);
            else fprintf(stderr, " %s", hr_kv_kind_name(q.kind));
        }
        fprintf(stderr, "\n");
    }
}

static int plan_from_scores(const cli_spec *spec, const cli_args *a, const char *from, const hr_config *c,
                            hr_kv_plan **out) {
    double fraction = 0.25;
    long sink = 4, window = 64;
    if (cli_get_float(spec, a, "retrieval-fraction", 0, 1, &fraction) ||
        cli_get_int(spec, a, "kv-sink", 0, hr_config_seq_len(c), &sink) ||
        cli_get_int(spec, a, "kv-window", 1, hr_config_seq_len(c), &window))
        return CLI_FAIL;
    hr_scores *s = NULL;
    hr_kv_policy rest = {HR_KV_STREAMING, (int)sink, (int)window, 0};
    int rc = CLI_OK;
    if (hr_scores_new(c, &s) != HR_OK || hr_scores_read_heads(s, from) != HR_OK ||
        hr_scores_kv_plan(s, c, cli_value(spec, a, "kv-method"), (float)fraction, rest, out) != HR_OK)
        rc = cli_lib_error("cannot build the KV plan");
    hr_scores_free(s);
    return rc;
}

int cli_kv_plan(const cli_spec *spec, const cli_args *a, const char *model_path, const hr_model *m, hr_kv_plan **out) {
    *out = NULL;
    const hr_config *c = hr_model_config(m);
    const char *plan_path = cli_value(spec, a, "kv"), *from = cli_value(spec, a, "kv-from");
    const char *save = cli_value(spec, a, "kv-save");
    if (plan_path && from) return cli_error("give either --kv PLAN or --kv-from HEADS.json, not both");
    for (size_t i = 0; !from && i < sizeof k_from_only / sizeof k_from_only[0]; i++)
        if (cli_value(spec, a, k_from_only[i]))
            return cli_error("--%s has no effect without --kv-from HEADS.json", k_from_only[i]);
    if (save && !plan_path && !from) return cli_error("--kv-save needs a plan (--kv PLAN or --kv-from HEADS.json)");
    const char *inputs[] = {plan_path, from, NULL};
    if (save && cli_check_output(save, HR_OUT_TEXT, "# headroom KV plan", cli_value(spec, a, "force") != NULL,
                                 model_path, NULL, inputs))
        return CLI_FAIL;
    if (plan_path && hr_kv_plan_load(plan_path, c, out) != HR_OK) return cli_lib_error("cannot read the KV plan");
    if (from && plan_from_scores(spec, a, from, c, out)) return CLI_FAIL;
    if (*out && save && hr_kv_plan_save(*out, save) != HR_OK) {
        hr_kv_plan_free(*out);
        *out = NULL;
        return cli_lib_error("cannot write the KV plan");
    }
    if (*out && cli_value(spec, a, "verbose")) print_plan(*out, c);
    return CLI_OK;
}
