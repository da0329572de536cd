/* --mask-heads, --mean-heads, --gates, --calib (see heads_mask.h). */
#include "heads_mask.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_head_mask(const cli_spec *spec, const cli_args *a, const hr_model *m, const hr_tokenizer *tok,
                  const char *default_text, int random_heads, uint64_t seed, hr_head_mask **out, int32_t **calib,
                  size_t *n_calib) {
    *out = NULL;
    *calib = NULL;
    *n_calib = 0;
    hr_head_mask_params p = hr_head_mask_default_params();
    p.mask_heads = cli_value(spec, a, "mask-heads");
    p.mean_heads = cli_value(spec, a, "mean-heads");
    p.gates_name = cli_value(spec, a, "gates");
    p.random_heads = random_heads;
    p.seed = seed;
    const char *calib_path = cli_value(spec, a, "calib");
    if (calib_path && !p.mean_heads) return cli_error("--calib is for --mean-heads (it would do nothing)");
    if (!p.mask_heads && !p.mean_heads && !p.gates_name && !random_heads) return CLI_OK;
    char *gates = NULL;
    size_t len = 0;
    if (p.gates_name && cli_read_text(p.gates_name, &gates, &len)) return CLI_FAIL;
    p.gates_text = gates;
    hr_status st = hr_head_mask_new(hr_model_config(m), &p, out);
    free(gates);
    if (st != HR_OK) return cli_error("%s", hr_last_error());
    if (!hr_head_mask_needs_means(*out)) return CLI_OK;
    const char *path = calib_path ? calib_path : default_text;
    if (!path) return cli_error("--mean-heads needs a calibration text: --calib FILE");
    char *text = NULL;
    if (cli_read_text(path, &text, &len)) return CLI_FAIL;
    st = hr_calib_tokens(tok, text, len, 0, calib, n_calib);
    free(text);
    if (st != HR_OK) return cli_error("%s: %s", path, hr_last_error());
    return CLI_OK;
}

int cli_apply_head_mask(const cli_spec *spec, const cli_args *a, const hr_model *m, const hr_tokenizer *tok,
                        const char *default_text, hr_context *ctx) {
    hr_head_mask *mk = NULL;
    int32_t *calib = NULL;
    size_t n = 0;
    int rc = cli_head_mask(spec, a, m, tok, default_text, 0, 0, &mk, &calib, &n);
    if (rc == CLI_OK && mk) {
        char *d = NULL;
        if (hr_head_mask_apply(mk, ctx, calib, n) != HR_OK) rc = cli_lib_error("cannot mask the heads");
        else if (hr_head_mask_describe(mk, &d) == HR_OK) fprintf(stderr, "heads:      %s\n", d);
        hr_free(d);
    }
    hr_head_mask_free(mk);
    hr_free(calib);
    return rc;
}
