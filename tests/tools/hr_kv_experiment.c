/* hr_kv_experiment: what head-aware KV plans cost and save on a real model.
 *
 *   hr_kv_experiment MODEL TEXT [--ctx 512] [--windows 16] [--sink 4] [--window 32]
 *                    [--calib 2048] [--seeds 3] [--fractions 0.125,0.25,0.5] [--threads 0]
 *
 * Head scores come from the head lab's `streaming` method (attention mass in
 * sink + recent tokens, DuoAttention's criterion) on the first --calib tokens
 * of TEXT; evaluation uses the following --windows windows of --ctx tokens.
 * For each plan (all full, all streaming, head-aware mixes keeping a fraction
 * of KV heads full, random mixes with the same number of full heads) it
 * prints KV bytes allocated, perplexity over every position, and the
 * retrieval accuracy: top-1 accuracy on the positions whose next token
 * occurred earlier in the window but not among the last `window` tokens, so
 * predicting it needs memory that a streaming head has dropped.
 */
#include "headroom/context.h"
#include "headroom/heads.h"
#include "headroom/kvcache.h"
#include "headroom/model.h"
#include "headroom/tokenizer.h"
#include "core/internal.h"
#include "model/config.h"
#include "engine/kernels.h"
#include "headroom/sample.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int ctx, windows, sink, window, calib, seeds, threads;
    double fractions[8];
    int n_fractions;
} options;

typedef struct {
    size_t kv_bytes;
    double nll;    /* mean over all scored positions */
    double recall; /* top-1 accuracy on long-range positions */
    int n_recall;
} outcome;

static int die(const char *what) {
    fprintf(stderr, "hr_kv_experiment: %s: %s\n", what, hr_last_error());
    return 1;
}

/* Is position t's next token a long-range recall (seen before t-window+1 only)? */
static bool long_range(const int32_t *w, int t, int window) {
    int32_t next = w[t + 1];
    for (int s = t; s > t - window && s >= 0; s--)
        if (w[s] == next) return false;
    for (int s = t - window; s >= 1; s--) /* s >= 1: BOS is not a recall */
        if (w[s] == next) return true;
    return false;
}

static hr_status evaluate(const hr_model *m, const hr_kv_plan *plan, const int32_t *toks, const options *o,
                          outcome *out) {
    int V = hr_model_config(m)->vocab_size;
    hr_context_params p = hr_context_default_params();
    p.n_ctx = o->ctx;
    p.n_threads = o->threads;
    p.kv_plan = plan;
    hr_context *ctx = NULL;
    hr_status st = hr_context_new(m, &p, &ctx);
    if (st != HR_OK) return st;
    float *lg = malloc(sizeof(float) * (size_t)o->ctx * V);
    double nll = 0;
    long n_nll = 0, hits = 0, n_rec = 0;
    for (int wi = 0; wi < o->windows && st == HR_OK; wi++) {
        const int32_t *w = toks + (size_t)wi * o->ctx;
        if ((st = hr_context_truncate(ctx, 0)) != HR_OK) break;
        if ((st = hr_forward(ctx, w, o->ctx, lg, true)) != HR_OK) break;
        for (int t = 0; t + 1 < o->ctx; t++) {
            const float *row = lg + (size_t)t * V;
            int best = hr_argmax(row, V);
            nll += hr_token_nll(row, V, w[t + 1]);
            n_nll++;
            if (long_range(w, t, o->window)) {
                n_rec++;
                hits += best == w[t + 1];
            }
        }
    }
    out->kv_bytes = hr_context_kv_bytes(ctx);
    out->nll = nll / (double)(n_nll ? n_nll : 1);
    out->recall = n_rec ? (double)hits / (double)n_rec : 0;
    out->n_recall = (int)n_rec;
    free(lg);
    hr_context_free(ctx);
    return st;
}

static void print_row(const char *name, const outcome *r, const outcome *full) {
    printf("| %-34s | %9zu | %5.1f%% | %8.4f | %6.1f%% |\n", name, r->kv_bytes, 100.0 * r->kv_bytes / full->kv_bytes,
           exp(r->nll), 100 * r->recall);
    fflush(stdout);
}

static int parse(int argc, char **argv, options *o) {
    *o = (options){512, 16, 4, 32, 2048, 3, 0, {0.125, 0.25, 0.5}, 3};
    for (int i = 3; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--ctx") == 0) o->ctx = atoi(v);
        else if (strcmp(a, "--windows") == 0) o->windows = atoi(v);
        else if (strcmp(a, "--sink") == 0) o->sink = atoi(v);
        else if (strcmp(a, "--window") == 0) o->window = atoi(v);
        else if (strcmp(a, "--calib") == 0) o->calib = atoi(v);
        else if (strcmp(a, "--seeds") == 0) o->seeds = atoi(v);
        else if (strcmp(a, "--threads") == 0) o->threads = atoi(v);
        else if (strcmp(a, "--fractions") == 0) {
            o->n_fractions = 0;
            for (char *s = (char *)v; *s && o->n_fractions < 8;) {
                o->fractions[o->n_fractions++] = strtod(s, &s);
                if (*s == ',') s++;
                else break;
            }
        } else return -1;
    }
    return o->ctx > 8 && o->windows > 0 && o->window > 0 && o->calib > 0 ? 0 : -1;
}

int main(int argc, char **argv) {
    options o;
    if (argc < 3 || parse(argc, argv, &o) < 0) {
        fprintf(stderr, "usage: hr_kv_experiment MODEL TEXT [--ctx N] [--windows N] [--sink S] [--window W]\n"
                        "       [--calib N] [--seeds N] [--fractions F,F,...] [--threads N]\n");
        return 2;
    }
    hr_model *m = NULL;
    hr_tokenizer *tok = NULL;
    char tokpath[4096];
    if (hr_model_load(argv[1], &m) != HR_OK) return die("model");
    if (hr_tokenizer_find_for_model(argv[1], NULL, tokpath, sizeof tokpath) != HR_OK ||
        hr_tokenizer_load(tokpath, &tok) != HR_OK)
        return die("tokenizer");
    char *text;
    size_t len, n;
    int32_t *ids;
    if (hr_read_file(argv[2], &text, &len) != HR_OK) return die("text");
    hr_encode_params ep = hr_encode_default_params();
    ep.add_bos = false;
    if (hr_tokenizer_encode(tok, text, len, &ep, &ids, &n) != HR_OK) return die("tokenize");
    size_t need = (size_t)o.calib + (size_t)o.windows * o.ctx;
    if (n < need) {
        fprintf(stderr, "hr_kv_experiment: text has %zu tokens, need %zu\n", n, need);
        return 1;
    }
    /* Evaluation windows start with BOS, like every calibration window. */
    int32_t bos = hr_tokenizer_bos(tok);
    int32_t *eval = malloc(sizeof(int32_t) * (size_t)o.windows * o.ctx);
    for (int w = 0; w < o.windows; w++) {
        eval[(size_t)w * o.ctx] = bos;
        memcpy(eval + (size_t)w * o.ctx + 1, ids + o.calib + (size_t)w * (o.ctx - 1),
               sizeof(int32_t) * (size_t)(o.ctx - 1));
    }
    const hr_config *c = hr_model_config(m);
    int mh = hr_config_max_heads(c);
    /* Head scores: the lab's streaming mass on the calibration tokens. */
    hr_context *ctx = NULL;
    hr_context_params cp = hr_context_default_params();
    cp.n_ctx = o.ctx;
    cp.n_threads = o.threads;
    if (hr_context_new(m, &cp, &ctx) != HR_OK) return die("context");
    hr_heads_params hp = hr_heads_default_params();
    hp.tokens = ids;
    hp.n_tokens = (size_t)o.calib;
    hp.bos = bos;
    hp.window = o.ctx;
    hp.max_tokens = o.calib;
    bool *sel = calloc((size_t)hr_heads_n_methods(), sizeof(bool));
    int method = hr_heads_method_index("streaming");
    sel[method] = true;
    hr_heads_result *hr = NULL;
    if (hr_heads_run(ctx, &hp, sel, &hr) != HR_OK) return die("head lab");
    float *score = malloc(sizeof(float) * (size_t)c->n_layers * mh);
    for (int l = 0; l < c->n_layers; l++)
        for (int h = 0; h < mh; h++)
            score[l * mh + h] = h < c->n_head[l] ? (float)(1.0 - hr_heads_score(hr, method, l, h)) : NAN;
    hr_heads_result_free(hr);
    hr_context_free(ctx);

    printf("model %s, %d evaluation windows of %d tokens, streaming = sink %d + window %d\n\n", argv[1], o.windows,
           o.ctx, o.sink, o.window);
    printf("| plan | KV bytes | of full | perplexity | retrieval acc. |\n|---|---|---|---|---|\n");
    outcome full, r;
    if (evaluate(m, NULL, eval, &o, &full) != HR_OK) return die("full");
    print_row("all full (base model)", &full, &full);
    hr_kv_policy rest = {HR_KV_STREAMING, o.sink, o.window, 0};
    hr_kv_plan *plan = NULL;
    if (hr_kv_plan_from_scores(c, score, 0, rest, &plan) != HR_OK || evaluate(m, plan, eval, &o, &r) != HR_OK)
        return die("all streaming");
    print_row("all streaming", &r, &full);
    hr_kv_plan_free(plan);
    for (int f = 0; f < o.n_fractions; f++) {
        char name[96];
        if (hr_kv_plan_from_scores(c, score, (float)o.fractions[f], rest, &plan) != HR_OK ||
            evaluate(m, plan, eval, &o, &r) != HR_OK)
            return die("head-aware");
        snprintf(name, sizeof name, "head-aware, %.1f%% heads full", 100 * o.fractions[f]);
        print_row(name, &r, &full);
        hr_kv_plan_free(plan);
        outcome avg = {0, 0, 0, 0};
        for (int s = 0; s < o.seeds; s++) {
            if (hr_kv_plan_random(c, (float)o.fractions[f], rest, (uint64_t)s + 1, &plan) != HR_OK ||
                evaluate(m, plan, eval, &o, &r) != HR_OK)
                return die("random");
            avg.kv_bytes = r.kv_bytes;
            avg.nll += r.nll / o.seeds;
            avg.recall += r.recall / o.seeds;
            hr_kv_plan_free(plan);
        }
        snprintf(name, sizeof name, "random, %.1f%% full (mean of %d)", 100 * o.fractions[f], o.seeds);
        print_row(name, &avg, &full);
    }
    printf("\nretrieval positions: %d (next token seen earlier in the window, not in the last %d)\n", full.n_recall,
           o.window);
    free(score), free(sel), free(eval), free(ids), free(text);
    hr_tokenizer_free(tok);
    hr_model_free(m);
    return 0;
}
