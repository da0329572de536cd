/* hr_hook_dump: runs one forward pass with a hook on the points of --mask
 * and writes every event it receives, in order, to --out (raw, native
 * endianness): per event six int32 (point, layer, head, n_tokens, pos0,
 * n_cols) and then its n_tokens x n_cols floats, rows packed (the event's
 * row stride removed). python/tests compares headroom.Model.run_with_cache
 * with it: the Python cache must hold exactly what the C hooks receive.
 *
 * usage: hr_hook_dump MODEL --tokens 1,2,3 --mask BITS --out FILE
 *                     [--threads N] [--batch N]
 */
#include "headroom/context.h"
#include "headroom/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    unsigned char *data; /* (len) the dump so far */
    size_t len, cap;
    int failed;
} dump;

static void put(dump *d, const void *p, size_t n) {
    if (d->failed) return;
    if (d->len + n > d->cap) {
        size_t cap = d->cap ? d->cap : 1 << 16;
        while (cap < d->len + n) cap *= 2;
        unsigned char *nd = realloc(d->data, cap);
        if (!nd) {
            d->failed = 1;
            return;
        }
        d->data = nd, d->cap = cap;
    }
    memcpy(d->data + d->len, p, n);
    d->len += n;
}

static int on_event(const hr_hook_event *ev, void *ud) {
    dump *d = ud;
    int32_t hdr[6] = {(int32_t)ev->point, ev->layer, ev->head, ev->n_tokens, ev->pos0, ev->n_cols};
    put(d, hdr, sizeof hdr);
    for (int t = 0; t < ev->n_tokens; t++)
        put(d, ev->data + (size_t)t * (size_t)ev->stride, sizeof(float) * (size_t)ev->n_cols);
    return d->failed;
}

/* "1,2,3" -> malloc'ed ids; count or -1. */
static int parse_tokens(const char *s, int32_t **out) {
    int n = 1;
    for (const char *c = s; *c; c++) n += *c == ',';
    int32_t *t = malloc(sizeof *t * (size_t)n); // (n)
    if (!t) return -1;
    for (int i = 0; i < n; i++) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            free(t);
            return -1;
        }
        t[i] = (int32_t)v;
        s = *end ? end + 1 : end;
    }
    *out = t;
    return n;
}

int main(int argc, char **argv) {
    const char *model = NULL, *tokens = NULL, *out = NULL;
    long mask = -1, threads = 0, batch = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] != '-') {
            model = argv[i];
            continue;
        }
        if (i + 1 >= argc) break;
        const char *a = argv[i], *v = argv[++i];
        if (!strcmp(a, "--tokens")) tokens = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--mask")) mask = strtol(v, NULL, 0);
        else if (!strcmp(a, "--threads")) threads = strtol(v, NULL, 10);
        else if (!strcmp(a, "--batch")) batch = strtol(v, NULL, 10);
        else model = NULL, i = argc;
    }
    int32_t *ids = NULL;
    int n = tokens ? parse_tokens(tokens, &ids) : -1;
    if (!model || !out || mask < 0 || n <= 0) {
        fprintf(stderr, "usage: hr_hook_dump MODEL --tokens 1,2,3 --mask BITS --out FILE [--threads N] [--batch N]\n");
        free(ids);
        return 2;
    }
    hr_model *m = NULL;
    hr_context *ctx = NULL;
    dump d = {0};
    float *logits = NULL; // (n, vocab): every row, so that the final point covers every position
    hr_context_params p = hr_context_default_params();
    p.n_threads = (int)threads;
    p.n_batch = (int)batch;
    hr_status st = hr_model_load(model, &m);
    if (st == HR_OK) st = hr_context_new(m, &p, &ctx);
    if (st == HR_OK && !(logits = malloc(sizeof(float) * (size_t)n * (size_t)hr_config_vocab_size(hr_model_config(m)))))
        st = HR_ERR_NOMEM;
    if (st == HR_OK) {
        hr_context_set_hook(ctx, on_event, (uint32_t)mask, &d);
        st = hr_forward(ctx, ids, n, logits, true);
    }
    if (st == HR_OK && d.failed) st = HR_ERR_NOMEM;
    if (st == HR_OK) st = hr_write_file_atomic(out, d.data, d.len);
    if (st != HR_OK) fprintf(stderr, "hr_hook_dump: %s: %s\n", hr_status_str(st), hr_last_error());
    free(d.data);
    free(logits);
    free(ids);
    hr_context_free(ctx);
    hr_model_free(m);
    return st == HR_OK ? 0 : 1;
}
