/* Helpers shared by the tokenizer tests (include after check.h). */
#ifndef HR_TEST_TOK_UTIL_H
#define HR_TEST_TOK_UTIL_H

#include "headroom/tokenizer.h"
#include "internal.h"

/* Timing limits loosen under sanitizers and without optimisation. */
#if defined(__SANITIZE_ADDRESS__)
#define T_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_SANITIZED 1
#endif
#endif
#ifndef T_SANITIZED
#define T_SANITIZED 0
#endif
#ifdef __OPTIMIZE__
#define T_OPTIMIZED 1
#else
#define T_OPTIMIZED 0
#endif

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

#endif
