/* SHA-256 (FIPS 180-4, section 6.2), written from the standard: names the
 * files a study compared (eval prints a prefix of each digest). Where the
 * CPU has the x86 SHA extensions the blocks go through them (~4x faster:
 * an 8B model's 16 GB took minutes to hash); the plain C rounds elsewhere. */
#include "core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const uint32_t k_round[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

/* One 64-byte block into the state h (8 words). */
static void compress(uint32_t *h, const uint8_t *block) {
    uint32_t w[64]; // message schedule
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)block[4 * t] << 24 | (uint32_t)block[4 * t + 1] << 16 | (uint32_t)block[4 * t + 2] << 8 |
               block[4 * t + 3];
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k_round[t] + w[t];
        uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

static void compress_blocks_generic(uint32_t *h, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) compress(h, p + 64 * i);
}

/* The same with the x86 SHA extensions (SHA256RNDS2 / MSG1 / MSG2, Intel's
 * SDM): the state is kept as the instructions want it, ABEF and CDGH (A in
 * the highest lane), four rounds per round-constant group; the message
 * schedule w[t] = s1(w[t-2]) + w[t-7] + s0(w[t-15]) + w[t-16] in groups of
 * four words: MSG1 adds s0, ALIGNR brings w[t-7], MSG2 adds s1. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define HR_SHA_NI 1
__attribute__((target("sha,sse4.1,ssse3"))) static void compress_blocks_shani(uint32_t *h, const uint8_t *p, size_t n) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);  /* big-endian words */
    __m128i abcd = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)h), 0xB1);       /* lanes b a d c */
    __m128i efgh = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(h + 4)), 0x1B); /* lanes h g f e */
    __m128i abef = _mm_alignr_epi8(abcd, efgh, 8);                                     /* lanes f e b a */
    __m128i cdgh = _mm_blend_epi16(efgh, abcd, 0xF0);                                  /* lanes h g d c */
    for (size_t blk = 0; blk < n; blk++, p += 64) {
        __m128i w[16]; // message schedule, four words a group (w[t] in lane t % 4)
        for (int i = 0; i < 4; i++) w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), bswap);
        for (int i = 4; i < 16; i++)
            w[i] = _mm_sha256msg2_epu32(
                _mm_add_epi32(_mm_sha256msg1_epu32(w[i - 4], w[i - 3]), _mm_alignr_epi8(w[i - 1], w[i - 2], 4)),
                w[i - 1]);
        __m128i abef0 = abef, cdgh0 = cdgh;
        for (int i = 0; i < 16; i++) {
            __m128i m = _mm_add_epi32(w[i], _mm_loadu_si128((const __m128i *)(k_round + 4 * i)));
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, m); /* rounds 4i, 4i+1: cdgh now holds ABEF */
            abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(m, 0x0E)); /* 4i+2, 4i+3 */
        }
        abef = _mm_add_epi32(abef, abef0), cdgh = _mm_add_epi32(cdgh, cdgh0);
    }
    __m128i t = _mm_shuffle_epi32(abef, 0x1B); /* lanes a b e f */
    __m128i u = _mm_shuffle_epi32(cdgh, 0xB1); /* lanes g h c d */
    _mm_storeu_si128((__m128i *)h, _mm_blend_epi16(t, u, 0xF0));
    _mm_storeu_si128((__m128i *)(h + 4), _mm_alignr_epi8(u, t, 8));
}

static bool cpu_has_sha_ni(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 19) & 1) || !((c >> 9) & 1)) return false; /* SSE4.1, SSSE3 */
    if (__get_cpuid_max(0, NULL) < 7) return false;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 29) & 1; /* SHA */
}
#endif

static void (*volatile g_blocks)(uint32_t *, const uint8_t *, size_t);

static void compress_blocks(uint32_t *h, const uint8_t *p, size_t n) {
    void (*f)(uint32_t *, const uint8_t *, size_t) = g_blocks;
    if (!f) {
#ifdef HR_SHA_NI
        f = cpu_has_sha_ni() ? compress_blocks_shani : compress_blocks_generic;
#else
        f = compress_blocks_generic;
#endif
        g_blocks = f; /* the same value from every thread */
    }
    f(h, p, n);
}

bool hr_sha256_use_generic(bool generic) {
#ifdef HR_SHA_NI
    g_blocks = generic || !cpu_has_sha_ni() ? compress_blocks_generic : compress_blocks_shani;
    return g_blocks == compress_blocks_shani;
#else
    (void)generic;
    g_blocks = compress_blocks_generic;
    return false;
#endif
}

void hr_sha256_init(hr_sha256_ctx *s) {
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof h0);
    s->n_bytes = 0;
    s->fill = 0;
}

void hr_sha256_update(hr_sha256_ctx *s, const void *data, size_t len) {
    const uint8_t *p = data;
    s->n_bytes += len;
    if (s->fill) {
        size_t take = 64 - s->fill < len ? 64 - s->fill : len;
        memcpy(s->buf + s->fill, p, take);
        s->fill += take, p += take, len -= take;
        if (s->fill < 64) return;
        compress_blocks(s->h, s->buf, 1);
        s->fill = 0;
    }
    size_t n = len / 64;
    if (n) compress_blocks(s->h, p, n);
    p += 64 * n, len -= 64 * n;
    memcpy(s->buf, p, len);
    s->fill = len;
}

void hr_sha256_final(hr_sha256_ctx *s, uint8_t digest[32]) {
    uint64_t bits = s->n_bytes * 8;
    uint8_t pad[72] = {0x80}; // 0x80, zeros, then the 64-bit length
    size_t n_pad = (s->fill < 56 ? 56 - s->fill : 120 - s->fill);
    for (int i = 0; i < 8; i++) pad[n_pad + i] = (uint8_t)(bits >> (56 - 8 * i));
    uint64_t keep = s->n_bytes;
    hr_sha256_update(s, pad, n_pad + 8);
    s->n_bytes = keep;
    for (int i = 0; i < 8; i++)
        for (int k = 0; k < 4; k++) digest[4 * i + k] = (uint8_t)(s->h[i] >> (24 - 8 * k));
}

static void to_hex(const uint8_t digest[32], char hex[65]) {
    static const char d[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) hex[2 * i] = d[digest[i] >> 4], hex[2 * i + 1] = d[digest[i] & 15];
    hex[64] = 0;
}

void hr_sha256_hex(const void *data, size_t len, char hex[65]) {
    hr_sha256_ctx s;
    uint8_t dg[32];
    hr_sha256_init(&s);
    hr_sha256_update(&s, data, len);
    hr_sha256_final(&s, dg);
    to_hex(dg, hex);
}

static hr_status hash_file_into(hr_sha256_ctx *s, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return hr_err(HR_ERR_IO, "cannot read '%s' to hash it", path);
    enum { CHUNK = 1 << 16 };
    uint8_t *buf = malloc(CHUNK);
    if (!buf) {
        fclose(f);
        return hr_err(HR_ERR_NOMEM, "out of memory");
    }
    size_t n;
    while ((n = fread(buf, 1, CHUNK, f)) > 0) hr_sha256_update(s, buf, n);
    bool bad = ferror(f);
    free(buf);
    fclose(f);
    return bad ? hr_err(HR_ERR_IO, "cannot read '%s' to hash it", path) : HR_OK;
}

/* A folder: its regular files in name order, each as name, NUL, content. */
static hr_status hash_folder_into(hr_sha256_ctx *s, const char *path) {
    char **names = NULL;
    size_t n = 0;
    hr_status st = hr_folder_names(path, NULL, &names, &n);
    if (st != HR_OK) return hr_err(HR_ERR_IO, "cannot read folder '%s' to hash it", path);
    for (size_t i = 0; st == HR_OK && i < n; i++) {
        size_t len = strlen(path) + strlen(names[i]) + 2;
        char *full = malloc(len);
        if (!full) st = hr_err(HR_ERR_NOMEM, "out of memory");
        else {
            snprintf(full, len, "%s/%s", path, names[i]);
            hr_sha256_update(s, names[i], strlen(names[i]) + 1);
            st = hash_file_into(s, full);
        }
        free(full);
    }
    hr_folder_names_free(names, n);
    return st;
}

hr_status hr_sha256_path(const char *path, char hex[65]) {
    struct stat st;
    if (!path || stat(path, &st) != 0) return hr_err(HR_ERR_IO, "cannot hash '%s': no such file", path ? path : "");
    hr_sha256_ctx s;
    uint8_t dg[32];
    hr_sha256_init(&s);
    hr_status r = S_ISDIR(st.st_mode) ? hash_folder_into(&s, path) : hash_file_into(&s, path);
    if (r != HR_OK) return r;
    hr_sha256_final(&s, dg);
    to_hex(dg, hex);
    return HR_OK;
}
