/* hr_logits: writes headroom's logits for a token sequence, (n, vocab)
 * float32 raw, for comparison with tests/reference/llama_ref.py.
 *
 * Modes exercise the different paths of hr_forward on one sequence:
 *   prefill  one call with all n tokens (batched matrix products)
 *   decode   one call per token (KV-cache decode)
 *   chunked  calls of --chunk tokens each (batched prefill with n_past > 0)
 * --batch sets hr_context_params.n_batch (internal batch splitting).
 */
#include "headroom/context.h"
#include "headroom/model.h"
#include "core/internal.h"
#include "model/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *model, *out, *tokens, *mode;
    int threads, n_ctx, batch, chunk;
} options;

static void usage(void) {
    fprintf(stderr, "usage: hr_logits MODEL --tokens 1,2,3 --out FILE [--mode prefill|decode|chunked]\n"
                    "         [--chunk N] [--batch N] [--threads N] [--n-ctx N]\n");
}

/* Parses "1,2,3" into a malloc'ed array; returns count or -1. */
static int parse_tokens(const char *s, int32_t **out) {
    int cap = 16, n = 0;
    int32_t *t = malloc((size_t)cap * sizeof *t); // (cap)
    if (!t) return -1;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            free(t);
            return -1;
        }
        if (n == cap) {
            cap *= 2;
            int32_t *nt = realloc(t, (size_t)cap * sizeof *t);
            if (!nt) {
                free(t);
                return -1;
            }
            t = nt;
        }
        t[n++] = (int32_t)v;
        s = *end ? end + 1 : end;
    }
    *out = t;
    return n;
}

static int parse_args(int argc, char **argv, options *o) {
    *o = (options){.mode = "prefill", .chunk = 7};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            o->model = a;
            continue;
        }
        if (i + 1 >= argc) return -1;
        const char *v = argv[++i];
        if (strcmp(a, "--tokens") == 0) o->tokens = v;
        else if (strcmp(a, "--out") == 0) o->out = v;
        else if (strcmp(a, "--mode") == 0) o->mode = v;
        else if (strcmp(a, "--threads") == 0) o->threads = atoi(v);
        else if (strcmp(a, "--n-ctx") == 0) o->n_ctx = atoi(v);
        else if (strcmp(a, "--batch") == 0) o->batch = atoi(v);
        else if (strcmp(a, "--chunk") == 0) o->chunk = atoi(v);
        else return -1;
    }
    if (!o->model || !o->out || !o->tokens || o->chunk < 1) return -1;
    if (strcmp(o->mode, "prefill") && strcmp(o->mode, "decode") && strcmp(o->mode, "chunked")) return -1;
    return 0;
}

/* Runs tokens through ctx in calls of step tokens, all logits kept. */
static hr_status run_steps(hr_context *ctx, const int32_t *tok, int n, int step, float *logits, int vocab) {
    for (int i = 0; i < n; i += step) {
        int k = n - i < step ? n - i : step;
        hr_status st = hr_forward(ctx, tok + i, k, logits + (size_t)i * (size_t)vocab, true);
        if (st < 0) return st;
    }
    return HR_OK;
}

static hr_status write_floats(const char *path, const float *x, size_t n) {
    hr_atomic_file af;
    hr_status st = hr_atomic_open(path, &af);
    if (st < 0) return st;
    st = hr_atomic_write(&af, x, n * sizeof(float));
    if (st < 0) {
        hr_atomic_abort(&af);
        return st;
    }
    return hr_atomic_commit(&af);
}

static hr_status run(const options *o, const int32_t *tok, int n) {
    hr_model *m = NULL;
    hr_context *ctx = NULL;
    float *logits = NULL; // (n, vocab)
    hr_status st = hr_model_load(o->model, &m);
    if (st < 0) return st;
    hr_context_params p = hr_context_default_params();
    p.n_threads = o->threads;
    p.n_ctx = o->n_ctx;
    p.n_batch = o->batch;
    st = hr_context_new(m, &p, &ctx);
    int vocab = st < 0 ? 0 : hr_model_config(m)->vocab_size;
    if (st == HR_OK) {
        logits = calloc((size_t)n * (size_t)vocab, sizeof(float));
        if (!logits) st = hr_err(HR_ERR_NOMEM, "out of memory for logits");
    }
    if (st == HR_OK) {
        int step = !strcmp(o->mode, "decode") ? 1 : !strcmp(o->mode, "chunked") ? o->chunk : n;
        st = run_steps(ctx, tok, n, step, logits, vocab);
    }
    if (st == HR_OK) st = write_floats(o->out, logits, (size_t)n * (size_t)vocab);
    free(logits);
    hr_context_free(ctx);
    hr_model_free(m);
    return st;
}

int main(int argc, char **argv) {
    options o;
    int32_t *tok = NULL;
    if (parse_args(argc, argv, &o) < 0) {
        usage();
        return 2;
    }
    int n = parse_tokens(o.tokens, &tok);
    if (n <= 0) {
        fprintf(stderr, "hr_logits: bad --tokens '%s'\n", o.tokens);
        free(tok);
        return 2;
    }
    hr_status st = run(&o, tok, n);
    free(tok);
    if (st < 0) {
        fprintf(stderr, "hr_logits: %s: %s\n", hr_status_str(st), hr_last_error());
        return 1;
    }
    return 0;
}
