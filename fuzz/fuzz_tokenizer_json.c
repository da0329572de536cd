/* libFuzzer target: tokenizer.json (and vocab.json-style) loading, then
 * encoding and decoding with whatever vocabulary, merges, normalizers,
 * pre-tokenizer regexes and special tokens the input declares. */
#include "fuzz_common.h"
#include "tokenizer/tok_internal.h"

/* A directory that does not exist: no tokenizer_config.json or merges.txt
 * is found beside the input. */
#define FUZZ_PATH "/nonexistent/headroom-fuzz/tokenizer.json"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hr_tokenizer *t = NULL;
    if (tok_load_json(FUZZ_PATH, data, size, &t) != HR_OK) return 0;
    hr_fuzz_use_tokenizer(t, data, size);
    hr_tokenizer_free(t);
    return 0;
}
