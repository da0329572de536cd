/* A growing byte string: the one string builder of the library (internal).
 *
 * Text (JSON documents, HTML, CSV) and binary data (GGUF metadata) alike are
 * appended to a buffer that is always NUL-terminated after len bytes. The
 * first failed allocation sets `failed` and every later append does
 * nothing, so a builder checks once, at the end:
 *
 *     hr_strbuf b = {0};
 *     hr_strbuf_printf(&b, "{\"n\": %d}", n);
 *     if (b.failed) ... out of memory ...
 *     use b.p, b.len; hr_strbuf_free(&b);
 */
#ifndef HR_CORE_STRBUF_H
#define HR_CORE_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

#include "core/internal.h"

typedef struct {
    char *p;     /* (cap) the bytes, NUL after len; NULL before the first append */
    size_t len;  /* bytes appended */
    size_t cap;  /* bytes allocated */
    bool failed; /* an allocation failed or a size overflowed */
} hr_strbuf;

/* Appends n bytes (any bytes, NUL included). */
void hr_strbuf_append(hr_strbuf *b, const void *data, size_t n);
/* Appends a NUL-terminated string. */
void hr_strbuf_puts(hr_strbuf *b, const char *s);
/* Appends printf-formatted text. */
void hr_strbuf_printf(hr_strbuf *b, const char *fmt, ...) HR_PRINTF(2, 3);
/* Releases the bytes; the buffer is empty (and usable) again. */
void hr_strbuf_free(hr_strbuf *b);

#endif
