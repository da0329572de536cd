/* hr_make_random: writes a random-weight llama2.c v0 float32 model.
 *
 * Used for test fixtures of unusual shapes (GQA, untied classifier) and for
 * benchmarking at a realistic size (--preset smollm-135m) without
 * downloading weights. The RNG is a fixed splitmix64 stream, so a given
 * (shape, seed) always gives the same bytes.
 *
 * Weights are N(0, 1/sqrt(fan_in)) rather than a fixed tiny std: queries and
 * keys then have unit scale, so attention patterns are far from uniform and
 * a RoPE or masking bug changes the logits visibly. Embedding/classifier rows
 * use std 2/sqrt(dim) (logits of a few units); RMSNorm weights are
 * 1 + N(0, 0.1) so a swapped norm vector is detectable too.
 */
#include "core/internal.h"
#include "core/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int dim, hidden, layers, heads, kv_heads, vocab, seq;
    uint64_t seed;
    int untied;
} shape;

typedef struct {
    uint64_t state;
    int has_spare;
    double spare;
} rng;

static uint64_t rng_next(rng *r) { return hr_splitmix64(&r->state); }

/* Uniform in (0, 1]: never 0, so log() below is finite. */
static double rng_uniform(rng *r) { return ((double)(rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0); }

/* Box-Muller; the second value of each pair is kept for the next call. */
static double rng_normal(rng *r) {
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1 = rng_uniform(r), u2 = rng_uniform(r);
    double rad = sqrt(-2.0 * log(u1));
    r->spare = rad * sin(2.0 * M_PI * u2);
    r->has_spare = 1;
    return rad * cos(2.0 * M_PI * u2);
}

#define CHUNK 65536

/* Streams count values mean + std * N(0,1) into the output file. */
static hr_status write_normal(hr_atomic_file *af, rng *r, size_t count, double mean, double std) {
    static float buf[CHUNK]; // (CHUNK) staging buffer
    while (count) {
        size_t n = count < CHUNK ? count : CHUNK;
        for (size_t i = 0; i < n; i++) buf[i] = (float)(mean + std * rng_normal(r));
        hr_status st = hr_atomic_write(af, buf, n * sizeof(float));
        if (st < 0) return st;
        count -= n;
    }
    return HR_OK;
}

/* llama2.c stores cos/sin of pos * theta^(-2i/hd) for every position. */
static hr_status write_freq_cis(hr_atomic_file *af, const shape *s, int imag) {
    int hd = s->dim / s->heads;
    float *row = malloc((size_t)(hd / 2) * sizeof(float)); // (hd/2)
    if (!row) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_status st = HR_OK;
    for (int pos = 0; pos < s->seq && st == HR_OK; pos++) {
        for (int i = 0; i < hd / 2; i++) {
            double freq = pow(10000.0, -2.0 * i / hd);
            double a = pos * freq;
            row[i] = (float)(imag ? sin(a) : cos(a));
        }
        st = hr_atomic_write(af, row, (size_t)(hd / 2) * sizeof(float));
    }
    free(row);
    return st;
}

static hr_status write_model(const shape *s, const char *path) {
    size_t L = (size_t)s->layers, d = (size_t)s->dim, hid = (size_t)s->hidden;
    size_t hd = d / (size_t)s->heads;
    size_t qd = hd * (size_t)s->heads, kvd = hd * (size_t)s->kv_heads;
    rng r = {s->seed * 0x2545F4914F6CDD1Dull + 1, 0, 0};
    int32_t hdr[7] = {s->dim, s->hidden, s->layers, s->heads, s->kv_heads, s->untied ? -s->vocab : s->vocab, s->seq};
    double emb_std = 2.0 / sqrt((double)d);
    hr_atomic_file af;
    hr_status st = hr_atomic_open(path, &af);
    if (st < 0) return st;
    if (st == HR_OK) st = hr_atomic_write(&af, hdr, sizeof hdr);
    if (st == HR_OK) st = write_normal(&af, &r, (size_t)s->vocab * d, 0, emb_std);      // tok_emb
    if (st == HR_OK) st = write_normal(&af, &r, L * d, 1, 0.1);                         // rms_att
    if (st == HR_OK) st = write_normal(&af, &r, L * qd * d, 0, 1 / sqrt((double)d));    // wq
    if (st == HR_OK) st = write_normal(&af, &r, L * kvd * d, 0, 1 / sqrt((double)d));   // wk
    if (st == HR_OK) st = write_normal(&af, &r, L * kvd * d, 0, 1 / sqrt((double)d));   // wv
    if (st == HR_OK) st = write_normal(&af, &r, L * d * qd, 0, 1 / sqrt((double)qd));   // wo
    if (st == HR_OK) st = write_normal(&af, &r, L * d, 1, 0.1);                         // rms_ffn
    if (st == HR_OK) st = write_normal(&af, &r, L * hid * d, 0, 1 / sqrt((double)d));   // w1
    if (st == HR_OK) st = write_normal(&af, &r, L * d * hid, 0, 1 / sqrt((double)hid)); // w2
    if (st == HR_OK) st = write_normal(&af, &r, L * hid * d, 0, 1 / sqrt((double)d));   // w3
    if (st == HR_OK) st = write_normal(&af, &r, d, 1, 0.1);                             // rms_final
    if (st == HR_OK) st = write_freq_cis(&af, s, 0);
    if (st == HR_OK) st = write_freq_cis(&af, s, 1);
    if (st == HR_OK && s->untied) st = write_normal(&af, &r, (size_t)s->vocab * d, 0, emb_std);
    if (st < 0) {
        hr_atomic_abort(&af);
        return st;
    }
    return hr_atomic_commit(&af);
}

static void usage(void) {
    fprintf(stderr, "usage: hr_make_random [--preset tiny|smollm-135m] [--dim N] [--hidden N]\n"
                    "         [--layers N] [--heads N] [--kv-heads N] [--vocab N] [--seq N]\n"
                    "         [--seed N] [--untied] OUT.bin\n");
}

static int parse_int(const char *s, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v <= 0 || v > (1L << 30)) return -1;
    *out = (int)v;
    return 0;
}

static int apply_preset(const char *name, shape *s) {
    if (strcmp(name, "tiny") == 0) {
        *s = (shape){64, 160, 2, 8, 2, 256, 128, s->seed, s->untied};
    } else if (strcmp(name, "smollm-135m") == 0) {
        *s = (shape){576, 1536, 30, 9, 3, 49152, 2048, s->seed, s->untied};
    } else {
        return -1;
    }
    return 0;
}

static int check_shape(const shape *s) {
    if (s->dim % s->heads) return fprintf(stderr, "hr_make_random: dim %% heads != 0\n"), -1;
    if (s->heads % s->kv_heads) return fprintf(stderr, "hr_make_random: heads %% kv-heads != 0\n"), -1;
    if ((s->dim / s->heads) % 2) return fprintf(stderr, "hr_make_random: head_dim must be even\n"), -1;
    /* The largest tensor bounds every other one; refuse sizes that overflow. */
    size_t big = 0, t;
    size_t mats[3] = {(size_t)s->vocab, (size_t)s->hidden, (size_t)s->dim};
    for (int i = 0; i < 3; i++) {
        if (!hr_mul_size(mats[i], (size_t)s->dim, &t) || !hr_mul_size(t, (size_t)s->layers, &t) ||
            !hr_add_size(big, t, &big) || big > ((size_t)1 << 34))
            return fprintf(stderr, "hr_make_random: model too large\n"), -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    shape s;
    const char *out = NULL;
    s.seed = 1;
    s.untied = 0;
    apply_preset("tiny", &s);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int *field = NULL;
        if (strcmp(a, "--untied") == 0) {
            s.untied = 1;
            continue;
        }
        if (a[0] != '-') {
            out = a;
            continue;
        }
        if (i + 1 >= argc) {
            usage();
            return 2;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--preset") == 0) {
            if (apply_preset(v, &s) < 0) {
                usage();
                return 2;
            }
            continue;
        }
        if (strcmp(a, "--seed") == 0) {
            s.seed = strtoull(v, NULL, 10);
            continue;
        }
        if (strcmp(a, "--dim") == 0) field = &s.dim;
        else if (strcmp(a, "--hidden") == 0) field = &s.hidden;
        else if (strcmp(a, "--layers") == 0) field = &s.layers;
        else if (strcmp(a, "--heads") == 0) field = &s.heads;
        else if (strcmp(a, "--kv-heads") == 0) field = &s.kv_heads;
        else if (strcmp(a, "--vocab") == 0) field = &s.vocab;
        else if (strcmp(a, "--seq") == 0) field = &s.seq;
        if (!field || parse_int(v, field) < 0) {
            fprintf(stderr, "hr_make_random: bad option %s %s\n", a, v);
            usage();
            return 2;
        }
    }
    if (!out) {
        usage();
        return 2;
    }
    if (check_shape(&s) < 0) return 2;
    hr_status st = write_model(&s, out);
    if (st < 0) {
        fprintf(stderr, "hr_make_random: %s\n", hr_last_error());
        return 1;
    }
    return 0;
}
