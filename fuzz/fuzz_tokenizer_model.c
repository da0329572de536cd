/* libFuzzer target: the SentencePiece .model loader (protobuf wire format,
 * ModelProto fields, the checks on specs and ids), then encoding and
 * decoding with the vocabulary it accepted. */
#include "fuzz_common.h"
#include "tokenizer/tok_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hr_tokenizer *t = NULL;
    if (tok_load_spm_model(data, size, &t) != HR_OK) return 0;
    hr_fuzz_use_tokenizer(t, data, size);
    hr_tokenizer_free(t);
    return 0;
}
