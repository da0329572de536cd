/* The string builder (core/strbuf.h). */
#include "core/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for `extra` more bytes plus the NUL; false (and failed) when not. */
static bool reserve(hr_strbuf *b, size_t extra) {
    if (b->failed) return false;
    size_t need;
    if (!hr_add_size(b->len, extra, &need) || !hr_add_size(need, 1, &need)) {
        b->failed = true;
        return false;
    }
    if (need <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need)
        if (!hr_mul_size(cap, 2, &cap)) {
            b->failed = true;
            return false;
        }
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void hr_strbuf_append(hr_strbuf *b, const void *data, size_t n) {
    if (!reserve(b, n)) return;
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = 0;
}

void hr_strbuf_puts(hr_strbuf *b, const char *s) { hr_strbuf_append(b, s, strlen(s)); }

void hr_strbuf_printf(hr_strbuf *b, const char *fmt, ...) {
    if (b->failed) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if (!reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void hr_strbuf_free(hr_strbuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}
