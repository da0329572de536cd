/* Core helpers: SHA-256 against the FIPS 180-2 example vectors and
 * coreutils' sha256sum; the JSON nesting guard. */
#include "check.h"
#include "core/internal.h"
#include "core/limits.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#define MODEL SHARED("models/stories260K/stories260K.bin")

static void sha256_matches_the_fips_example_vectors(void) {
    struct {
        const char *msg, *want;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    char hex[65];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        hr_sha256_hex(v[i].msg, strlen(v[i].msg), hex);
        CHECK(strcmp(hex, v[i].want) == 0, "'%s': %s", v[i].msg, hex);
    }
    /* one million 'a', fed in uneven pieces */
    static char a[1000000];
    memset(a, 'a', sizeof a);
    hr_sha256_ctx s;
    uint8_t dg[32];
    hr_sha256_init(&s);
    for (size_t off = 0, step = 1; off < sizeof a; off += step, step = step * 7 % 1013 + 1)
        hr_sha256_update(&s, a + off, off + step <= sizeof a ? step : sizeof a - off);
    hr_sha256_final(&s, dg);
    char got[65];
    for (int i = 0; i < 32; i++) snprintf(got + 2 * i, 3, "%02x", dg[i]);
    CHECK(strcmp(got, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0, "million a: %s", got);
}

static void sha256_of_a_file_matches_sha256sum(void) {
    char hex[65] = "", cmd[600], ref[65] = "";
    CHECK(hr_sha256_path(MODEL, hex) == HR_OK, "%s", hr_last_error());
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", MODEL);
    FILE *p = popen(cmd, "r");
    if (p) {
        if (fscanf(p, "%64s", ref) != 1) ref[0] = 0;
        pclose(p);
    }
    printf("    %s\n    %s (sha256sum)\n", hex, ref);
    CHECK(ref[0] && strcmp(hex, ref) == 0, "differs from sha256sum");
    CHECK(hr_sha256_path("/nonexistent/file", hex) == HR_ERR_IO, "a missing file hashed");
}

static void json_nesting_beyond_the_limit_is_refused_before_parsing(void) {
    char doc[512];
    size_t n = 0;
    for (int i = 0; i < 100; i++) doc[n++] = '[';
    for (int i = 0; i < 100; i++) doc[n++] = ']';
    doc[n] = 0;
    CHECK(hr_json_depth(doc, n) == 100, "depth %d", hr_json_depth(doc, n));
    CHECK(hr_json_depth("{\"a\": \"[[[[\\\"[[\"}", 17) == 1, "brackets inside strings counted");
    struct cJSON *j = NULL;
    CHECK(hr_json_parse(doc, n, "x.json", &j) == HR_ERR_FORMAT && !j && strstr(hr_last_error(), "x.json nests 100 levels deep"),
          "%s", hr_last_error());
    CHECK(hr_json_parse("[[1]]", 5, "y.json", &j) == HR_OK && j, "%s", hr_last_error());
    cJSON_Delete(j);
}

int main(void) {
    RUN(sha256_matches_the_fips_example_vectors);
    RUN(sha256_of_a_file_matches_sha256sum);
    RUN(json_nesting_beyond_the_limit_is_refused_before_parsing);
    TEST_MAIN_END();
}
