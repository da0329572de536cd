/* core: the random-number generator, the string builder, guarded JSON,
 * SHA-256 (FIPS 180-2 example vectors and coreutils' sha256sum). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "core/internal.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/rng.h"
#include "core/strbuf.h"

/* ---- random numbers ---- */

static void splitmix64_gives_the_published_outputs(void) {
    /* Vigna's splitmix64.c from state 1234567: the first five outputs, as
     * quoted in the literature and in other libraries' test suites. */
    const uint64_t want[5] = {6457827717110365317ull, 3203168211198807973ull, 9817491932198370423ull,
                              4593380528125082431ull, 16408922859458223821ull};
    uint64_t s = 1234567;
    for (int i = 0; i < 5; i++) {
        uint64_t got = hr_splitmix64(&s);
        CHECK(got == want[i], "output %d: %llu, want %llu", i, (unsigned long long)got, (unsigned long long)want[i]);
    }
}

static void a_stream_is_xorshift64star_seeded_through_splitmix64(void) {
    /* From an independent Python implementation of the two definitions:
     *   state = splitmix64(seed); x ^= x>>12; x ^= x<<25 (mod 2^64); x ^= x>>27;
     *   output = x * 0x2545F4914F6CDD1D mod 2^64 */
    const uint64_t want0[3] = {0x7bbcb40d550682d0ull, 0xde7fe413d00cc9fdull, 0xb3c638353c668c91ull};
    const uint64_t want42[3] = {0x31b0ece7c4f697a2ull, 0x9008a3b1cb686f03ull, 0x7c7173abd97be16full};
    hr_rng a = hr_rng_new(0), b = hr_rng_new(42);
    for (int i = 0; i < 3; i++) {
        CHECK(hr_rng_u64(&a) == want0[i], "seed 0 output %d", i);
        CHECK(hr_rng_u64(&b) == want42[i], "seed 42 output %d", i);
    }
    hr_rng s1 = hr_rng_stream(7, 1), s2 = hr_rng_stream(7, 2), s1b = hr_rng_stream(7, 1);
    uint64_t x1 = hr_rng_u64(&s1), x2 = hr_rng_u64(&s2);
    CHECK(x1 != x2, "streams 1 and 2 of one seed start alike");
    CHECK(hr_rng_u64(&s1b) == x1, "a stream is not reproducible");
}

/* Pearson's chi-square statistic of counts against equal expectations. */
static double chi_square(const long *count, int k, long n) {
    double e = (double)n / k, x = 0;
    for (int i = 0; i < k; i++) x += (count[i] - e) * (count[i] - e) / e;
    return x;
}

static void below_is_uniform_and_in_range(void) {
    hr_rng r = hr_rng_new(3);
    long count[7] = {0};
    const long n = 70000;
    bool in_range = true;
    for (long i = 0; i < n; i++) {
        uint64_t v = hr_rng_below(&r, 7);
        if (v >= 7) in_range = false;
        else count[v]++;
    }
    double x = chi_square(count, 7, n);
    printf("    below(7): chi-square %.2f over 6 degrees of freedom (p = 0.001 critical value 22.46)\n", x);
    CHECK(in_range, "a draw outside [0, 7)");
    CHECK(x < 22.46, "below(7) is not uniform");
    /* n just above 2^63: half of all 64-bit values are rejected; results stay below n. */
    uint64_t big = (1ull << 63) + 1;
    long high = 0;
    for (int i = 0; i < 2000; i++) {
        uint64_t v = hr_rng_below(&r, big);
        CHECK(v < big, "draw %llu >= n", (unsigned long long)v);
        high += v >= (1ull << 62);
    }
    /* Uniform on [0, 2^63]: P(v >= 2^62) = 1/2; 2000 draws, 5 sigma = 112. */
    CHECK(labs(high - 1000) < 112, "%ld of 2000 draws in the upper half", high);
    CHECK(hr_rng_below(&r, 0) == 0 && hr_rng_below(&r, 1) == 0, "below(0) / below(1) must be 0");
}

static void uniform_reals_lie_in_the_unit_interval_with_mean_one_half(void) {
    hr_rng r = hr_rng_new(11);
    const int n = 100000;
    double sd = 0, sf = 0, lo = 1, hi = 0;
    for (int i = 0; i < n; i++) {
        double d = hr_rng_double(&r);
        float f = hr_rng_float(&r);
        if (d < lo) lo = d;
        if (d > hi) hi = d;
        CHECK(d >= 0 && d < 1 && f >= 0 && f < 1, "draw %d outside [0, 1): %g %g", i, d, (double)f);
        sd += d, sf += f;
    }
    /* The mean of n uniforms has standard deviation 1/sqrt(12 n) = 9.1e-4: 5 sigma. */
    printf("    mean double %.5f, mean float %.5f, range [%.2g, %.6f]\n", sd / n, sf / n, lo, hi);
    CHECK(fabs(sd / n - 0.5) < 4.6e-3 && fabs(sf / n - 0.5) < 4.6e-3, "means are not 1/2");
    /* The largest values the bit counts allow stay below 1. */
    CHECK((double)((1ull << 53) - 1) * (1.0 / 9007199254740992.0) < 1.0, "53-bit top");
    CHECK((float)((1u << 24) - 1) * (1.0f / 16777216.0f) < 1.0f, "24-bit top");
}

static void shuffles_are_permutations_and_every_order_is_equally_likely(void) {
    hr_rng r = hr_rng_new(5);
    long count[6] = {0};
    const long n = 60000;
    for (long i = 0; i < n; i++) {
        int v[3] = {0, 1, 2};
        hr_rng_shuffle(&r, v, 3, sizeof v[0]);
        int code = v[0] * 9 + v[1] * 3 + v[2]; /* one of the 6 permutations of 0,1,2 */
        static const int perms[6] = {0 * 9 + 1 * 3 + 2, 0 * 9 + 2 * 3 + 1, 1 * 9 + 0 * 3 + 2,
                                     1 * 9 + 2 * 3 + 0, 2 * 9 + 0 * 3 + 1, 2 * 9 + 1 * 3 + 0};
        int k = 0;
        while (k < 6 && perms[k] != code) k++;
        CHECK(k < 6, "shuffle produced %d %d %d, not a permutation", v[0], v[1], v[2]);
        if (k < 6) count[k]++;
    }
    double x = chi_square(count, 6, n);
    printf("    orders of 3: chi-square %.2f over 5 degrees of freedom (p = 0.001 critical value 20.52)\n", x);
    CHECK(x < 20.52, "shuffle is not uniform");
    /* Larger elements move as wholes. */
    struct {
        double a;
        int b;
    } e[50];
    for (int i = 0; i < 50; i++) e[i].a = i, e[i].b = -i;
    hr_rng_shuffle(&r, e, 50, sizeof e[0]);
    bool seen[50] = {false}, whole = true, moved = false;
    for (int i = 0; i < 50; i++) {
        int k = (int)e[i].a;
        whole = whole && k >= 0 && k < 50 && e[i].b == -k && !seen[k];
        if (k >= 0 && k < 50) seen[k] = true;
        moved = moved || k != i;
    }
    CHECK(whole && moved, "a shuffle of 50 records lost or split a record, or moved nothing");
}

/* ---- string builder ---- */

static void the_string_builder_appends_text_and_bytes_and_grows(void) {
    hr_strbuf b = {0};
    hr_strbuf_puts(&b, "abc");
    hr_strbuf_printf(&b, "-%d-%s-", 42, "x");
    const char bin[3] = {'\0', 'y', '\0'};
    hr_strbuf_append(&b, bin, 3);
    CHECK(!b.failed && b.len == 12 && memcmp(b.p, "abc-42-x-\0y\0", 12) == 0 && b.p[12] == 0, "content");
    /* Growth past the first allocation keeps every byte: 10000 numbered lines. */
    hr_strbuf c = {0};
    size_t want = 0;
    for (int i = 0; i < 10000; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "line %d\n", i);
        want += (size_t)n;
        hr_strbuf_printf(&c, "line %d\n", i);
    }
    CHECK(!c.failed && c.len == want && strlen(c.p) == want, "length %zu, want %zu", c.len, want);
    CHECK(c.p && strncmp(c.p + c.len - 10, "line 9999\n", 10) == 0, "tail");
    hr_strbuf_free(&b);
    hr_strbuf_free(&c);
    CHECK(b.p == NULL && b.len == 0, "free leaves an empty buffer");
    hr_strbuf_free(&b); /* twice is fine */
    /* An impossible size fails once and later appends are ignored. */
    hr_strbuf d = {0};
    hr_strbuf_puts(&d, "x");
    hr_strbuf_append(&d, "y", SIZE_MAX);
    hr_strbuf_puts(&d, "z");
    CHECK(d.failed && d.len == 1, "overflowing size not refused");
    hr_strbuf_free(&d);
}

/* ---- JSON ---- */

static void json_within_the_depth_limit_parses(void) {
    char text[2 * HR_JSON_MAX_DEPTH + 8];
    int n = 0;
    for (int i = 0; i < HR_JSON_MAX_DEPTH; i++) text[n++] = '[';
    for (int i = 0; i < HR_JSON_MAX_DEPTH; i++) text[n++] = ']';
    text[n++] = '\n';
    cJSON *root = NULL;
    CHECK(hr_json_parse(text, (size_t)n, &root) == HR_OK && cJSON_IsArray(root), "%s", hr_last_error());
    cJSON_Delete(root);
    const char *s = "{\"a\": \"[[[[[\", \"b\": [1, {\"c\": \"\\\"]\"}]}  ";
    CHECK(hr_json_parse(s, strlen(s), &root) == HR_OK, "brackets inside strings counted: %s", hr_last_error());
    CHECK(hr_json_depth(s, strlen(s), 100) == 3, "depth %d, want 3", hr_json_depth(s, strlen(s), 100));
    cJSON_Delete(root);
}

static void json_too_deep_malformed_or_with_trailing_bytes_is_refused(void) {
    enum { N = 100000 };
    char *deep = malloc(N);
    memset(deep, '[', N);
    cJSON *root = (cJSON *)1;
    hr_status st = hr_json_parse(deep, N, &root);
    CHECK(st == HR_ERR_FORMAT && root == NULL, "100000 levels accepted");
    char want[80];
    snprintf(want, sizeof want, "deeper than %d levels (at byte %d)", HR_JSON_MAX_DEPTH, HR_JSON_MAX_DEPTH);
    CHECK(strstr(hr_last_error(), want) != NULL, "message: %s", hr_last_error());
    free(deep);
    const char *bad[] = {"{\"a\": }", "[1, 2", "{} x", "", "nul"};
    for (int i = 0; i < 5; i++) {
        root = (cJSON *)1;
        st = hr_json_parse(bad[i], strlen(bad[i]), &root);
        CHECK(st == HR_ERR_FORMAT && root == NULL && strlen(hr_last_error()) > 0, "accepted '%s'", bad[i]);
    }
    CHECK(strstr(hr_last_error(), "not valid JSON") != NULL, "message: %s", hr_last_error());
    hr_json_parse("{} x", 4, &root);
    CHECK(strstr(hr_last_error(), "not valid JSON (trailing bytes") && strstr(hr_last_error(), "byte 3"), "message: %s",
          hr_last_error());
    /* Only the given length is read: a valid prefix of a longer buffer parses. */
    CHECK(hr_json_parse("[1] garbage", 3, &root) == HR_OK, "length ignored");
    cJSON_Delete(root);
}

/* ---- SHA-256 ---- */

#define MODEL SHARED("models/stories260K/stories260K.bin")

static void fips_vectors(void) {
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

static void file_vs_sha256sum(void) {
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

/* Both implementations: the plain C rounds and, where the CPU has them, the
 * x86 SHA extensions (without them the second pass is the C rounds again). */
static void sha256_matches_the_fips_example_vectors_on_every_path(void) {
    for (int generic = 1; generic >= 0; generic--) {
        bool ni = hr_sha256_use_generic(generic);
        printf("    %s\n", ni ? "SHA extensions" : "plain C rounds");
        fips_vectors();
    }
}

static void sha256_of_a_file_matches_sha256sum_on_every_path(void) {
    for (int generic = 1; generic >= 0; generic--) {
        hr_sha256_use_generic(generic);
        file_vs_sha256sum();
    }
}

/* Every length from 0 to 300 and pieces of every size: the two paths agree
 * (the block loop, the buffered tail and the padding boundaries 55/56/64). */
static void sha256_paths_agree_on_every_length_and_split(void) {
    uint8_t data[300];
    for (int i = 0; i < 300; i++) data[i] = (uint8_t)(i * 131 + 7);
    int bad = 0;
    for (int len = 0; len <= 300; len++)
        for (int piece = 1; piece <= 130; piece += 43) {
            uint8_t d[2][32];
            for (int generic = 0; generic < 2; generic++) {
                hr_sha256_use_generic(generic);
                hr_sha256_ctx s;
                hr_sha256_init(&s);
                for (int off = 0; off < len; off += piece)
                    hr_sha256_update(&s, data + off, (size_t)(len - off < piece ? len - off : piece));
                hr_sha256_final(&s, d[generic]);
            }
            bad += memcmp(d[0], d[1], 32) != 0;
        }
    hr_sha256_use_generic(false);
    CHECK(bad == 0, "%d of 1204 digests differ between the paths", bad);
}

int main(void) {
    HR_T_REQUIRE_SHARED("models/stories260K/stories260K.bin");
    RUN(splitmix64_gives_the_published_outputs);
    RUN(a_stream_is_xorshift64star_seeded_through_splitmix64);
    RUN(below_is_uniform_and_in_range);
    RUN(uniform_reals_lie_in_the_unit_interval_with_mean_one_half);
    RUN(shuffles_are_permutations_and_every_order_is_equally_likely);
    RUN(the_string_builder_appends_text_and_bytes_and_grows);
    RUN(json_within_the_depth_limit_parses);
    RUN(json_too_deep_malformed_or_with_trailing_bytes_is_refused);
    RUN(sha256_matches_the_fips_example_vectors_on_every_path);
    RUN(sha256_paths_agree_on_every_length_and_split);
    RUN(sha256_of_a_file_matches_sha256sum_on_every_path);
    TEST_MAIN_END();
}
