/* Protobuf wire-format reader: varints, fixed32/64 and length-delimited
 * fields, every byte checked against the end of its message (see
 * protobuf.h for the format). */
#include "tokenizer/protobuf.h"

#include <string.h>

static size_t offset_of(const pb_reader *r, const uint8_t *p) { return (size_t)(p - r->base); }

/* A varint of at most 10 bytes whose 10th byte carries only bit 63. */
static hr_status read_varint(pb_reader *r, uint64_t *out, const char *what) {
    const uint8_t *start = r->p;
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (r->p == r->end)
            return hr_err(HR_ERR_FORMAT, "truncated varint (%s) at byte %zu: its message ends after %d byte%s", what,
                          offset_of(r, start), i, i == 1 ? "" : "s");
        uint8_t b = *r->p++;
        if (i == 9 && b > 1)
            return hr_err(HR_ERR_FORMAT, "varint (%s) at byte %zu does not fit in 64 bits", what, offset_of(r, start));
        v |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return HR_OK;
        }
    }
    return hr_err(HR_ERR_FORMAT, "varint (%s) at byte %zu is longer than 10 bytes", what, offset_of(r, start));
}

static uint64_t read_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

hr_status pb_next(pb_reader *r, pb_field *f, bool *more) {
    *more = false;
    if (r->p == r->end) return HR_OK;
    memset(f, 0, sizeof *f);
    f->offset = offset_of(r, r->p);
    uint64_t tag;
    hr_status st = read_varint(r, &tag, "field tag");
    if (st) return st;
    uint64_t number = tag >> 3;
    if (number == 0 || number > (1u << 29) - 1)
        return hr_err(HR_ERR_FORMAT, "field number %llu at byte %zu is outside 1..2^29-1", (unsigned long long)number,
                      f->offset);
    f->number = (uint32_t)number;
    f->wire = (int)(tag & 7);
    size_t left;
    switch (f->wire) {
    case PB_VARINT: st = read_varint(r, &f->v, "field value"); break;
    case PB_FIXED64:
    case PB_FIXED32: {
        int n = f->wire == PB_FIXED64 ? 8 : 4;
        if ((size_t)(r->end - r->p) < (size_t)n)
            return hr_err(HR_ERR_FORMAT, "field %u at byte %zu needs %d bytes but only %zu remain", f->number,
                          f->offset, n, (size_t)(r->end - r->p));
        f->v = read_le(r->p, n);
        r->p += n;
        break;
    }
    case PB_LEN: {
        uint64_t len;
        if ((st = read_varint(r, &len, "length"))) return st;
        left = (size_t)(r->end - r->p);
        if (len > left)
            return hr_err(HR_ERR_FORMAT, "field %u at byte %zu declares %llu bytes but only %zu remain", f->number,
                          f->offset, (unsigned long long)len, left);
        f->data = r->p;
        f->len = (size_t)len;
        r->p += len;
        break;
    }
    case 3:
    case 4:
        return hr_err(HR_ERR_FORMAT, "field %u at byte %zu is a group (wire type %d), which is not supported",
                      f->number, f->offset, f->wire);
    default:
        return hr_err(HR_ERR_FORMAT, "field %u at byte %zu has wire type %d, which does not exist", f->number,
                      f->offset, f->wire);
    }
    if (st) return st;
    *more = true;
    return HR_OK;
}

hr_status pb_expect(const pb_field *f, int wire, const char *what) {
    static const char *const names[] = {"varint", "fixed64", "length-delimited", "group start", "group end", "fixed32"};
    if (f->wire == wire) return HR_OK;
    return hr_err(HR_ERR_FORMAT, "%s (field %u at byte %zu) is %s, expected %s", what, f->number, f->offset,
                  names[f->wire], names[wire]);
}

hr_status pb_int32(const pb_field *f, const char *what, int32_t *out) {
    hr_status st = pb_expect(f, PB_VARINT, what);
    if (st) return st;
    int64_t v = (int64_t)f->v;
    if (v < INT32_MIN || v > INT32_MAX)
        return hr_err(HR_ERR_FORMAT, "%s (field %u at byte %zu) is %lld, outside int32", what, f->number, f->offset,
                      (long long)v);
    *out = (int32_t)v;
    return HR_OK;
}

hr_status pb_bool(const pb_field *f, const char *what, bool *out) {
    hr_status st = pb_expect(f, PB_VARINT, what);
    if (!st) *out = f->v != 0;
    return st;
}

hr_status pb_float(const pb_field *f, const char *what, float *out) {
    hr_status st = pb_expect(f, PB_FIXED32, what);
    if (st) return st;
    uint32_t bits = (uint32_t)f->v;
    memcpy(out, &bits, sizeof bits);
    return HR_OK;
}
