/* Helpers shared by the surgery subcommands (see surgery.h). */
#include "surgery.h"
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int surg_text_tokens(const char *text_path, const hr_tokenizer *tok, size_t max_tokens, int32_t **ids, size_t *n) {
    char *text = NULL;
    size_t len = 0;
    *ids = NULL;
    *n = 0;
    if (cli_read_text(text_path, &text, &len) != CLI_OK) return CLI_FAIL;
    hr_encode_params ep = hr_encode_default_params();
    ep.add_bos = true;
    hr_status st = hr_tokenizer_encode(tok, text, len, &ep, ids, n);
    free(text);
    if (st != HR_OK) return cli_lib_error("cannot tokenize the text");
    if (max_tokens && *n > max_tokens) *n = max_tokens;
    if (*n < 8) return cli_error("'%s' gives only %zu tokens; more text is needed", text_path, *n);
    return CLI_OK;
}

int surg_is_uniform(const hr_model *m) {
    const hr_config *c = hr_model_config(m);
    for (int l = 1; l < hr_config_n_layers(c); l++)
        if (hr_config_n_head(c, l) != hr_config_n_head(c, 0) || hr_config_n_head_kv(c, l) != hr_config_n_head_kv(c, 0) || hr_config_n_ff(c, l) != hr_config_n_ff(c, 0)) return 0;
    return hr_config_n_head(c, 0) > 0 && hr_config_n_ff(c, 0) > 0;
}
