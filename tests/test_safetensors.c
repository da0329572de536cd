/* safetensors reader: valid files read back exactly; every malformed
 * header is a clear HR_ERR_FORMAT, never a crash. Files are built in
 * memory from a JSON header and a data size. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "check.h"
#include "headroom/safetensors.h"

/* u64 length | header | data_len bytes of data (filled by the caller). */
static uint8_t *build(const char *header, size_t data_len, size_t *size) {
    size_t h = strlen(header);
    *size = 8 + h + data_len;
    uint8_t *b = calloc(1, *size);
    uint64_t hl = h;
    memcpy(b, &hl, 8);
    memcpy(b + 8, header, h);
    return b;
}

/* Opening must fail with HR_ERR_FORMAT and a message containing `want`. */
static void expect_format_error(const char *header, size_t data_len, const char *want) {
    size_t n;
    uint8_t *b = build(header, data_len, &n);
    hr_safetensors *st = NULL;
    hr_status s = hr_st_open_memory(b, n, &st);
    CHECK(s == HR_ERR_FORMAT && st == NULL, "status %d for header %.60s", s, header);
    CHECK(strstr(hr_last_error(), want) != NULL, "message '%s' lacks '%s'", hr_last_error(), want);
    hr_st_close(st);
    free(b);
}

static void valid_file_reads_tensors_metadata_and_converts_halves(void) {
    const char *hdr = "{\"__metadata__\":{\"format\":\"pt\"},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                      "\"b\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[16,22]},"
                      "\"c\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[22,26]},"
                      "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[26,30]}}  ";
    size_t n;
    uint8_t *b = build(hdr, 30, &n);
    uint8_t *d = b + 8 + strlen(hdr);
    float a[4] = {1.5f, -2.0f, 0.25f, 1e-3f};
    memcpy(d, a, 16);
    uint16_t h[3] = {0x3C00, 0xC000, 0x3555}; /* f16: 1, -2, 0.333251953125 */
    memcpy(d + 16, h, 6);
    uint16_t bf[2] = {0x3F80, 0xC040}; /* bf16: 1, -3 */
    memcpy(d + 22, bf, 4);
    float sc = 7.0f;
    memcpy(d + 26, &sc, 4);
    hr_safetensors *st = NULL;
    CHECK(hr_st_open_memory(b, n, &st) == HR_OK, "%s", hr_last_error());
    if (st) {
        CHECK(hr_st_n_tensors(st) == 4, "4 tensors, got %zu", hr_st_n_tensors(st));
        CHECK(hr_st_metadata(st, "format") && strcmp(hr_st_metadata(st, "format"), "pt") == 0, "metadata format");
        CHECK(hr_st_metadata(st, "missing") == NULL, "absent metadata is NULL");
        const hr_st_tensor *ta = hr_st_find(st, "a"), *tb = hr_st_find(st, "b"), *tc = hr_st_find(st, "c");
        const hr_st_tensor *ts = hr_st_find(st, "s");
        CHECK(ta && ta->n_dims == 2 && ta->shape[0] == 2 && ta->shape[1] == 2 && ta->dtype == HR_ST_F32, "a's shape");
        CHECK(ts && ts->n_dims == 0 && ts->n_elements == 1, "scalar");
        CHECK(hr_st_find(st, "zz") == NULL, "absent tensor is NULL");
        float out[4];
        CHECK(ta && hr_st_to_f32(ta, out) == HR_OK && memcmp(out, a, 16) == 0, "f32 read back");
        CHECK(tb && hr_st_to_f32(tb, out) == HR_OK && out[0] == 1.0f && out[1] == -2.0f &&
                  fabsf(out[2] - 0.333251953125f) == 0,
              "f16 converted: %g %g %g", out[0], out[1], out[2]);
        CHECK(tc && hr_st_to_f32(tc, out) == HR_OK && out[0] == 1.0f && out[1] == -3.0f, "bf16 converted");
    }
    hr_st_close(st);
    free(b);
}

static void integer_tensors_are_listed_but_not_converted(void) {
    size_t n;
    uint8_t *b = build("{\"i\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16, &n);
    hr_safetensors *st = NULL;
    CHECK(hr_st_open_memory(b, n, &st) == HR_OK, "%s", hr_last_error());
    float out[2];
    CHECK(st && hr_st_to_f32(hr_st_find(st, "i"), out) == HR_ERR_UNSUPPORTED, "I64 is not converted to f32");
    hr_st_close(st);
    free(b);
}

static void hostile_headers_fail_with_clear_messages(void) {
    expect_format_error("", 0, "header length");
    expect_format_error("{}{}", 0, "trailing");
    expect_format_error("not json at all", 0, "not valid JSON");
    expect_format_error("[1,2]", 0, "not a JSON object");
    expect_format_error("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", 0, "nests deeper");
    expect_format_error("{\"a\":{\"x\":{\"y\":{\"z\":1}}}}", 0, "nests deeper");
    expect_format_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "outside");
    expect_format_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 16, "outside");
    expect_format_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 16, "need 8");
    expect_format_error("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype");
    expect_format_error("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype");
    expect_format_error("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "shape");
    expect_format_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "data_offsets");
    expect_format_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape[0]");
    expect_format_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "shape[0]");
    expect_format_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,8]}}", 8,
                        "overflows");
    expect_format_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
                        "dimensions");
    expect_format_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                        12, "overlap");
    expect_format_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                        "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                        8, "twice");
    expect_format_error("{\"__metadata__\":{\"k\":1}}", 0, "not a string");
    expect_format_error("{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "empty name");
    expect_format_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,1e300]}}", 4, "data_offsets");
}

static void header_length_beyond_the_file_is_rejected(void) {
    uint8_t b[16] = {0};
    uint64_t len = 1000;
    memcpy(b, &len, 8);
    memcpy(b + 8, "{}", 2);
    hr_safetensors *st = NULL;
    CHECK(hr_st_open_memory(b, sizeof b, &st) == HR_ERR_FORMAT && strstr(hr_last_error(), "header length"), "%s",
          hr_last_error());
    len = UINT64_MAX;
    memcpy(b, &len, 8);
    CHECK(hr_st_open_memory(b, sizeof b, &st) == HR_ERR_FORMAT, "huge header length");
    CHECK(hr_st_open_memory(b, 5, &st) == HR_ERR_FORMAT && strstr(hr_last_error(), "too short"), "%s", hr_last_error());
}

/* Every truncation of a valid file fails cleanly or succeeds. */
static void every_truncation_fails_cleanly(void) {
    const char *hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
    size_t n;
    uint8_t *b = build(hdr, 16, &n);
    int ok = 0;
    for (size_t k = 0; k < n; k++) {
        uint8_t *c = malloc(k ? k : 1);
        memcpy(c, b, k);
        hr_safetensors *st = NULL;
        hr_status s = hr_st_open_memory(c, k, &st);
        ok += s == HR_ERR_FORMAT && st == NULL;
        hr_st_close(st);
        free(c);
    }
    CHECK(ok == (int)n, "%d of %zu truncations rejected", ok, n);
    free(b);
}

/* Single-byte mutations of a valid header: each either opens (and every
 * tensor then converts inside the buffer, which ASan checks) or fails
 * with a format error. */
static void mutated_headers_never_read_out_of_bounds(void) {
    const char *hdr = "{\"__metadata__\":{\"format\":\"pt\"},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[16,22]}}";
    size_t n;
    uint8_t *b = build(hdr, 22, &n);
    static const uint8_t vals[] = {'{', '}', '[', ']', '"', '9', '0', ',', ':', 0, 0xff, '\\'};
    int opened = 0, rejected = 0, other = 0;
    for (size_t i = 0; i < 8 + strlen(hdr); i++) {
        for (size_t v = 0; v < sizeof vals; v++) {
            uint8_t *c = malloc(n);
            memcpy(c, b, n);
            c[i] = vals[v];
            hr_safetensors *st = NULL;
            hr_status s = hr_st_open_memory(c, n, &st);
            if (s == HR_OK) {
                opened++;
                for (size_t k = 0; k < hr_st_n_tensors(st); k++) {
                    const hr_st_tensor *t = hr_st_tensor_at(st, k);
                    float *dst = malloc(t->n_elements * sizeof(float) + 1);
                    if (dst) hr_st_to_f32(t, dst);
                    free(dst);
                }
            } else if (s == HR_ERR_FORMAT) {
                rejected++;
            } else {
                other++;
            }
            hr_st_close(st);
            free(c);
        }
    }
    printf("    %d mutants opened, %d rejected\n", opened, rejected);
    CHECK(other == 0 && rejected > 0, "%d mutants gave an unexpected status", other);
    free(b);
}

static void opening_a_file_maps_it_and_names_it_in_errors(void) {
    char path[] = "/tmp/hr_test_st.XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    size_t n;
    uint8_t *b = build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, &n);
    CHECK(write(fd, b, n) == (ssize_t)n, "write");
    close(fd);
    hr_safetensors *st = NULL;
    CHECK(hr_st_open(path, &st) == HR_OK && hr_st_n_tensors(st) == 1, "%s", hr_last_error());
    if (st) hr_st_release(st, hr_st_find(st, "a")); /* advisory; data stays readable */
    float v;
    CHECK(st && hr_st_to_f32(hr_st_find(st, "a"), &v) == HR_OK && v == 0.0f, "read after release");
    hr_st_close(st);
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(write(fd, b, 20) == 20, "write");
    close(fd);
    CHECK(hr_st_open(path, &st) == HR_ERR_FORMAT && strstr(hr_last_error(), path), "error names the file: %s",
          hr_last_error());
    unlink(path);
    free(b);
}

int main(void) {
    RUN(valid_file_reads_tensors_metadata_and_converts_halves);
    RUN(integer_tensors_are_listed_but_not_converted);
    RUN(hostile_headers_fail_with_clear_messages);
    RUN(header_length_beyond_the_file_is_rejected);
    RUN(every_truncation_fails_cleanly);
    RUN(mutated_headers_never_read_out_of_bounds);
    RUN(opening_a_file_maps_it_and_names_it_in_errors);
    TEST_MAIN_END();
}
