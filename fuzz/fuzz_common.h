/* Helpers shared by the libFuzzer targets in fuzz/ (header-only: every
 * fuzz/<name>.c becomes its own executable). */
#ifndef HR_FUZZ_COMMON_H
#define HR_FUZZ_COMMON_H

#include "headroom/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A broken invariant is a finding: abort so libFuzzer saves the input. */
#define HR_FUZZ_ASSERT(cond)                                                                                           \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);                               \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

/* Loaders that only take a path get the input through one memfd per
 * process (no disk I/O, nothing left behind); the path stays valid until
 * the next call. */
static inline const char *hr_fuzz_as_file(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("hr-fuzz", 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0) abort();
    for (size_t done = 0; done < size;) {
        ssize_t k = pwrite(fd, data + done, size - done, (off_t)done);
        if (k <= 0) abort();
        done += (size_t)k;
    }
    return path;
}

static inline void hr_fuzz_encode_decode(const hr_tokenizer *t, const char *text, size_t len, bool special) {
    hr_encode_params p = hr_encode_default_params();
    p.parse_special = special;
    p.add_eos = special;
    int32_t *ids = NULL;
    size_t n = 0;
    if (hr_tokenizer_encode(t, text, len, &p, &ids, &n) != HR_OK) return;
    int32_t vocab = hr_tokenizer_vocab_size(t);
    for (size_t i = 0; i < n; i++) HR_FUZZ_ASSERT(ids[i] >= 0 && ids[i] < vocab);
    char *out = NULL;
    size_t out_len = 0;
    if (hr_tokenizer_decode(t, ids, n, true, &out, &out_len) == HR_OK) free(out);
    char buf[256];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) hr_tokenizer_decode_one(t, i ? ids[i - 1] : -1, ids[i], buf, sizeof buf, &k);
    free(ids);
}

/* Runs a tokenizer built from hostile input over fixed texts, the input's
 * own tail as text, and ids taken from the input (in and out of range). */
static inline void hr_fuzz_use_tokenizer(const hr_tokenizer *t, const uint8_t *data, size_t size) {
    static const char *const texts[] = {
        "Hello world",
        "  two  spaces\n\ttab\r\n",
        "caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80 12345 don't",
        "<s>a</s><|endoftext|><unk>",
        "",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        hr_fuzz_encode_decode(t, texts[i], strlen(texts[i]), false);
        hr_fuzz_encode_decode(t, texts[i], strlen(texts[i]), true);
    }
    size_t tail = size < 48 ? size : 48;
    hr_fuzz_encode_decode(t, (const char *)data + size - tail, tail, true);

    int32_t vocab = hr_tokenizer_vocab_size(t);
    HR_FUZZ_ASSERT(vocab > 0);
    HR_FUZZ_ASSERT(hr_tokenizer_kind(t) != NULL);
    int32_t bos = hr_tokenizer_bos(t), eos = hr_tokenizer_eos(t);
    HR_FUZZ_ASSERT(bos >= -1 && bos < vocab && eos >= -1 && eos < vocab);
    int32_t ids[8] = {-1, 0, vocab - 1, vocab, INT32_MAX, bos, eos, 0};
    if (size >= 4) memcpy(&ids[7], data, 4);
    size_t len = 0;
    for (int i = 0; i < 8; i++) {
        const char *piece = hr_tokenizer_piece(t, ids[i], &len);
        if (ids[i] >= 0 && ids[i] < vocab) HR_FUZZ_ASSERT(piece != NULL);
        char buf[64];
        if (hr_tokenizer_decode_one(t, bos, ids[i], buf, sizeof buf, &len) == HR_OK) HR_FUZZ_ASSERT(len <= sizeof buf);
    }
    char *out = NULL;
    if (hr_tokenizer_decode(t, ids, 8, false, &out, &len) == HR_OK) free(out);
}

#endif
