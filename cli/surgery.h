/* Helpers shared by the surgery subcommands (prune, gqa, eval). */
#ifndef HR_CLI_SURGERY_H
#define HR_CLI_SURGERY_H

#include "headroom/model.h"
#include "headroom/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

/* Reads and tokenizes a text file (BOS first); keeps at most max_tokens
 * (0 = all). *ids malloc'ed. Prints the error line on failure. */
int surg_text_tokens(const char *text_path, const hr_tokenizer *tok, size_t max_tokens, int32_t **ids, size_t *n);

/* Whether every layer has the same head / KV head / FFN sizes. */
int surg_is_uniform(const hr_model *m);

#endif
