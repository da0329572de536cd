/* A minimal reader of the protobuf wire format (src/tokenizer only; what
 * SentencePiece .model files need).
 *
 * A message is a sequence of fields, each a varint tag (field number << 3
 * | wire type) followed by its value:
 *   wire type 0  varint: 1..10 bytes, 7 bits each, low group first, the
 *                high bit of each byte says another follows;
 *   wire type 1  fixed64: 8 bytes little-endian (double, fixed64);
 *   wire type 2  length-delimited: a varint byte count, then the bytes
 *                (string, bytes, embedded message, packed repeated);
 *   wire type 5  fixed32: 4 bytes little-endian (float, fixed32).
 * Wire types 3 and 4 (groups, deprecated since proto2) and 6, 7 (never
 * defined) are format errors here. Field numbers are 1..2^29-1. Unknown
 * fields are skipped by their wire type; a repeated field is its field
 * written again; a scalar written twice keeps the last value.
 *
 * The reader never reads past the end it was given: every varint, fixed
 * value and length is checked against the bytes that remain, and errors
 * (HR_ERR_FORMAT) name the byte offset counted from the start of the
 * outermost buffer. */
#ifndef HR_TOK_PROTOBUF_H
#define HR_TOK_PROTOBUF_H

#include "core/internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { PB_VARINT = 0, PB_FIXED64 = 1, PB_LEN = 2, PB_FIXED32 = 5 };

typedef struct {
    const uint8_t *base; /* start of the outermost buffer (for offsets in messages) */
    const uint8_t *p;    /* next byte */
    const uint8_t *end;  /* one past the last byte of this message */
} pb_reader;

typedef struct {
    uint32_t number;     /* field number */
    int wire;            /* PB_* */
    uint64_t v;          /* PB_VARINT, PB_FIXED64, PB_FIXED32 value */
    const uint8_t *data; /* PB_LEN bytes */
    size_t len;          /* PB_LEN byte count */
    size_t offset;       /* offset of the tag from reader.base */
} pb_field;

static inline pb_reader pb_reader_of(const uint8_t *data, size_t size) {
    pb_reader r = {data, data, data + size};
    return r;
}

/* Reader over an embedded message (a PB_LEN field), offsets kept. */
static inline pb_reader pb_sub(const pb_reader *outer, const pb_field *f) {
    pb_reader r = {outer->base, f->data, f->data + f->len};
    return r;
}

/* Reads the next field into *f. *more is false (and HR_OK returned) at the
 * end of the message; HR_ERR_FORMAT for truncated or malformed input. */
hr_status pb_next(pb_reader *r, pb_field *f, bool *more);

/* HR_ERR_FORMAT naming `what` unless f has the given wire type. */
hr_status pb_expect(const pb_field *f, int wire, const char *what);

/* Typed values; each checks the wire type, and pb_int32 that the varint is
 * an int32 (negative values arrive sign-extended to 64 bits), else
 * HR_ERR_FORMAT naming `what`. Enums are int32 on the wire. */
hr_status pb_int32(const pb_field *f, const char *what, int32_t *out);
hr_status pb_bool(const pb_field *f, const char *what, bool *out);
hr_status pb_float(const pb_field *f, const char *what, float *out);

#endif
