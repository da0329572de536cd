/* hr_bench_kv: long-context decode with a full KV cache vs a head-aware
 * plan. For each plan: a context of exactly prompt+decode tokens is created,
 * the prompt prefilled, then `decode` single-token steps timed. Memory is
 * measured: the process's resident set (VmRSS) grows by what the context
 * really touches, and is printed beside what the context allocated.
 *
 *   hr_bench_kv MODEL [--prompt 8192] [--decode 64] [--threads 2]
 *               [--fraction 0.25] [--sink 4] [--window 256]
 *
 * Plans: full; mixed = KV heads scored by a fixed pseudo-random score
 * (random weights have no retrieval heads to find), top `fraction` full and
 * the rest streaming(sink, window).
 */
#include "headroom/context.h"
#include "headroom/kvcache.h"
#include "headroom/model.h"
#include "core/internal.h"
#include "model/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long rss_kib(void) {
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (fp && fgets(line, sizeof line, fp))
        if (strncmp(line, "VmRSS:", 6) == 0) kib = strtol(line + 6, NULL, 10);
    if (fp) fclose(fp);
    return kib;
}

static int run(const hr_model *m, const hr_kv_plan *plan, const char *name, int prompt, int decode, int threads) {
    const hr_config *c = hr_model_config(m);
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)(prompt + decode));
    for (int i = 0; i < prompt + decode; i++)
        tok[i] = (int32_t)(((uint64_t)i * 2654435761ull + 7) % (uint64_t)c->vocab_size);
    float *logits = malloc(sizeof(float) * (size_t)c->vocab_size);
    hr_context_params p = hr_context_default_params();
    p.n_ctx = prompt + decode;
    p.n_threads = threads;
    p.kv_plan = plan;
    long rss0 = rss_kib();
    hr_context *ctx = NULL;
    hr_status st = hr_context_new(m, &p, &ctx);
    double t0 = hr_time_now();
    if (st == HR_OK) st = hr_forward(ctx, tok, prompt, logits, false);
    double t1 = hr_time_now();
    for (int i = 0; i < decode && st == HR_OK; i++) st = hr_forward(ctx, tok + prompt + i, 1, logits, false);
    double t2 = hr_time_now();
    long rss1 = rss_kib();
    if (st != HR_OK) {
        fprintf(stderr, "hr_bench_kv: %s\n", hr_last_error());
        return 1;
    }
    printf("RESULT plan=%s ctx=%d kv_bytes=%zu rss_growth_kib=%ld prefill_tok_s=%.1f decode_tok_s=%.2f\n", name,
           p.n_ctx, hr_context_kv_bytes(ctx), rss1 - rss0, prompt / (t1 - t0), decode / (t2 - t1));
    fflush(stdout);
    hr_context_free(ctx);
    free(tok);
    free(logits);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr, "usage: hr_bench_kv MODEL [--prompt N] [--decode N] [--threads N] [--fraction F] "
                        "[--sink S] [--window W]\n");
        return argc < 2;
    }
    int prompt = 8192, decode = 64, threads = 0, sink = 4, window = 256;
    double fraction = 0.25;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--prompt") == 0) prompt = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--decode") == 0) decode = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--threads") == 0) threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--fraction") == 0) fraction = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--sink") == 0) sink = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--window") == 0) window = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "hr_bench_kv: unknown option %s\n", argv[i]);
            return 1;
        }
    }
    hr_model *m = NULL;
    if (hr_model_load(argv[1], &m) != HR_OK) {
        fprintf(stderr, "hr_bench_kv: %s\n", hr_last_error());
        return 1;
    }
    const hr_config *c = hr_model_config(m);
    int mh = hr_config_max_heads(c);
    float *scores = malloc(sizeof(float) * (size_t)c->n_layers * mh);
    for (int i = 0; i < c->n_layers * mh; i++) scores[i] = (float)((i * 2654435761u) % 1000);
    hr_kv_policy rest = {HR_KV_STREAMING, sink, window, 0};
    hr_kv_plan *mixed = NULL;
    if (hr_kv_plan_from_scores(c, scores, (float)fraction, rest, &mixed) != HR_OK) {
        fprintf(stderr, "hr_bench_kv: %s\n", hr_last_error());
        return 1;
    }
    { /* fault the mapped weights in first, so RSS growth is the context's */
        hr_context *warm = NULL;
        int32_t t0 = 1;
        float *lg = malloc(sizeof(float) * (size_t)c->vocab_size);
        hr_context_params wp = hr_context_default_params();
        wp.n_ctx = 8;
        if (hr_context_new(m, &wp, &warm) == HR_OK) hr_forward(warm, &t0, 1, lg, false);
        hr_context_free(warm);
        free(lg);
    }
    char name[64];
    snprintf(name, sizeof name, "mixed(%.0f%%full,stream%d+%d)", fraction * 100, sink, window);
    int rc = run(m, NULL, "full", prompt, decode, threads) || run(m, mixed, name, prompt, decode, threads);
    hr_kv_plan_free(mixed);
    free(scores);
    hr_model_free(m);
    return rc;
}
