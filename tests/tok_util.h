/* Helpers shared by the tokenizer tests (include after check.h). */
#ifndef HR_TEST_TOK_UTIL_H
#define HR_TEST_TOK_UTIL_H

#include "headroom/tokenizer.h"
#include "core/internal.h"

#include <string.h>

static inline hr_tokenizer *load(const char *path) {
    hr_tokenizer *t = NULL;
    hr_status st = hr_tokenizer_load(path, &t);
    CHECK(st == HR_OK, "loading %s: %s", path, hr_last_error());
    return t;
}

static inline char *read_all(const char *path, size_t *len) {
    char *buf = NULL;
    hr_status st = hr_read_file(path, &buf, len);
    CHECK(st == HR_OK, "reading %s: %s", path, hr_last_error());
    return buf;
}

/* Splits a .inp like llama.cpp's test-tokenizer-0: texts are separated by
 * "\n__ggml_vocab_test__\n", the newline before the marker is not part of
 * the text, and nothing follows the last separator. The .out has one line
 * of ids per text. */
static inline int split_vectors(char *raw, size_t len, char **texts, size_t *lens, int cap) {
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t sl = sizeof sep - 1, pos = 0;
    int n = 0;
    while (pos < len && n < cap) {
        char *next = memmem(raw + pos, len - pos, sep, sl);
        size_t end = next ? (size_t)(next - raw) : len;
        texts[n] = raw + pos;
        lens[n++] = end - pos;
        if (!next) break;
        pos = end + sl;
    }
    return n;
}

#endif
