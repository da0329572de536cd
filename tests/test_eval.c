#include "check.h"

#include "headroom/context.h"
#include "headroom/evaluate.h"
#include "headroom/model.h"
#include "model/config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_PATH SHARED("models/stories260K/stories260K.bin")

static hr_model *g_model;

static hr_context *new_ctx(int n_ctx) {
    hr_context_params cp = hr_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = 1;
    hr_context *ctx = NULL;
    hr_status st = hr_context_new(g_model, &cp, &ctx);
    CHECK(st == HR_OK, "hr_context_new(%d): %s", n_ctx, hr_last_error());
    return ctx;
}

/* Pseudo-random token ids with BOS (1) first; a fixed LCG keeps runs equal. */
static int32_t *make_tokens(size_t n) {
    int32_t *t = malloc(n * sizeof *t);
    uint32_t x = 12345;
    int vocab = hr_model_config(g_model)->vocab_size;
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        t[i] = (int32_t)((x >> 8) % (uint32_t)vocab);
    }
    t[0] = 1;
    return t;
}

/* Reference accumulator: log-softmax in double, independent of the library. */
typedef struct {
    double sum, sum2;
    long n;
} ref_acc;

static void ref_add(ref_acc *r, const float *logits, int vocab, int32_t target) {
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < vocab; i++) mx = fmax(mx, logits[i]);
    for (int i = 0; i < vocab; i++) s += exp(logits[i] - mx);
    double nll = -(logits[target] - mx - log(s));
    r->sum += nll;
    r->sum2 += nll * nll;
    r->n++;
}

/* Runs win[0..len) from an empty cache and scores positions [from, to)
 * against targets[pos]. */
static void ref_window(hr_context *ctx, const int32_t *win, int len, const int32_t *targets, int from, int to,
                       ref_acc *r) {
    int vocab = hr_model_config(g_model)->vocab_size;
    float *logits = malloc((size_t)len * (size_t)vocab * sizeof *logits); /* (len, vocab) */
    CHECK(hr_context_truncate(ctx, 0) == HR_OK, "truncate: %s", hr_last_error());
    hr_status st = hr_forward(ctx, win, len, logits, true);
    CHECK(st == HR_OK, "forward: %s", hr_last_error());
    for (int j = from; j < to && st == HR_OK; j++) ref_add(r, logits + (size_t)j * vocab, vocab, targets[j]);
    free(logits);
}

/* Hugging Face's loop: windows at k*stride, each scoring the targets past
 * the previous window's end. */
static ref_acc ref_sliding(hr_context *ctx, const int32_t *t, int n, int n_ctx, int stride) {
    ref_acc r = {0};
    int prev_end = 0;
    for (int begin = 0; begin < n; begin += stride) {
        int end = begin + n_ctx < n ? begin + n_ctx : n;
        int first_target = prev_end > begin + 1 ? prev_end : begin + 1;
        ref_window(ctx, t + begin, end - begin, t + begin + 1, first_target - begin - 1, end - begin - 1, &r);
        prev_end = end;
        if (end == n) break;
    }
    return r;
}

static double ref_stderr_ppl(const ref_acc *r) {
    double m = r->sum / r->n, v = r->sum2 / r->n - m * m;
    return exp(m) * sqrt(v / (r->n - 1));
}

static void check_against(const hr_ppl_result *res, const ref_acc *r, const char *what) {
    double mean = r->sum / r->n;
    CHECK(res->n_scored == r->n, "%s: scored %lld, reference %ld", what, (long long)res->n_scored, r->n);
    CHECK(fabs(res->mean_nll - mean) <= 1e-5, "%s: mean NLL %.8f vs brute force %.8f", what, res->mean_nll, mean);
    CHECK(fabs(res->ppl - exp(res->mean_nll)) <= 1e-9 * res->ppl, "%s: ppl %.6f != exp(mean)", what, res->ppl);
    double se = ref_stderr_ppl(r);
    CHECK(fabs(res->ppl_stderr - se) <= 1e-4 * se + 1e-9, "%s: ppl stderr %.8f vs %.8f", what, res->ppl_stderr, se);
    printf("    %s: %lld scored, mean NLL %.6f (ref %.6f), ppl %.4f +/- %.4f\n", what, (long long)res->n_scored,
           res->mean_nll, mean, res->ppl, res->ppl_stderr);
}

static void sliding_mean_nll_equals_brute_force_over_windows(void) {
    const int n = 300, n_ctx = 64;
    int32_t *t = make_tokens(n);
    hr_context *ctx = new_ctx(n_ctx);
    const int strides[3] = {0, 24, 63}; /* 0 = default n_ctx/2 */
    for (int k = 0; k < 3; k++) {
        hr_ppl_params p = hr_ppl_default_params();
        p.n_ctx = n_ctx;
        p.stride = strides[k];
        hr_ppl_result res;
        hr_status st = hr_perplexity(ctx, t, n, &p, &res);
        CHECK(st == HR_OK, "stride %d: %s", strides[k], hr_last_error());
        if (st != HR_OK) continue;
        ref_acc r = ref_sliding(ctx, t, n, n_ctx, strides[k] ? strides[k] : n_ctx / 2);
        CHECK(res.n_scored == n - 1, "stride %d: every token after the first once: %lld", strides[k],
              (long long)res.n_scored);
        check_against(&res, &r, strides[k] == 0 ? "default stride" : strides[k] == 24 ? "stride 24" : "stride 63");
    }
    hr_context_free(ctx);
    free(t);
}

static void single_window_with_stride_equal_to_n_ctx_scores_n_ctx_minus_one_tokens(void) {
    const int n_ctx = 40;
    int32_t *t = make_tokens(n_ctx);
    hr_context *ctx = new_ctx(n_ctx);
    hr_ppl_params p = hr_ppl_default_params();
    p.n_ctx = n_ctx;
    p.stride = n_ctx;
    hr_ppl_result res;
    hr_status st = hr_perplexity(ctx, t, n_ctx, &p, &res);
    CHECK(st == HR_OK, "%s", hr_last_error());
    if (st == HR_OK) {
        CHECK(res.n_scored == n_ctx - 1, "scored %lld", (long long)res.n_scored);
        CHECK(res.n_windows == 1, "windows %d", res.n_windows);
        ref_acc r = {0};
        ref_window(ctx, t, n_ctx, t + 1, 0, n_ctx - 1, &r);
        check_against(&res, &r, "one window");
    }
    hr_context_free(ctx);
    free(t);
}

/* llama.cpp: chunks of n_ctx from an empty cache, first token -> BOS,
 * positions n_ctx/2 .. n_ctx-2 scored. */
static ref_acc ref_llamacpp(hr_context *ctx, const int32_t *t, int n, int n_ctx, int32_t bos) {
    ref_acc r = {0};
    int32_t *win = malloc((size_t)n_ctx * sizeof *win);
    for (int c = 0; c < n / n_ctx; c++) {
        memcpy(win, t + c * n_ctx, (size_t)n_ctx * sizeof *win);
        if (bos >= 0) win[0] = bos;
        ref_window(ctx, win, n_ctx, t + c * n_ctx + 1, n_ctx / 2, n_ctx - 1, &r);
    }
    free(win);
    return r;
}

static void llamacpp_protocol_scores_the_second_half_of_each_chunk(void) {
    const int n_ctx = 64, n = 64 * 3 + 17; /* 3 chunks, 17 leftover tokens ignored */
    int32_t *t = make_tokens(n);
    hr_context *ctx = new_ctx(n_ctx);
    hr_ppl_params p = hr_ppl_default_params();
    p.protocol = HR_PPL_LLAMACPP;
    p.bos = 1;
    hr_ppl_result res;
    hr_status st = hr_perplexity(ctx, t, n, &p, &res);
    CHECK(st == HR_OK, "%s", hr_last_error());
    if (st == HR_OK) {
        CHECK(res.n_scored == 3 * (n_ctx - 1 - n_ctx / 2), "scored %lld", (long long)res.n_scored);
        CHECK(res.n_windows == 3, "chunks %d", res.n_windows);
        CHECK(res.n_evaluated == 3 * n_ctx, "evaluated %lld", (long long)res.n_evaluated);
        ref_acc r = ref_llamacpp(ctx, t, n, n_ctx, 1);
        check_against(&res, &r, "llama.cpp");
        /* the chunks' first tokens (other than chunk 0) are not BOS, so
         * leaving them in place must change the result */
        p.bos = -1;
        hr_ppl_result keep;
        CHECK(hr_perplexity(ctx, t, n, &p, &keep) == HR_OK, "%s", hr_last_error());
        ref_acc rk = ref_llamacpp(ctx, t, n, n_ctx, -1);
        check_against(&keep, &rk, "llama.cpp without BOS");
        CHECK(fabs(keep.mean_nll - res.mean_nll) > 1e-7, "BOS replacement had no effect");
    }
    hr_context_free(ctx);
    free(t);
}

static void odd_n_ctx_uses_integer_half_in_llamacpp_protocol(void) {
    const int n_ctx = 33, n = 66;
    int32_t *t = make_tokens(n);
    hr_context *ctx = new_ctx(n_ctx);
    hr_ppl_params p = hr_ppl_default_params();
    p.protocol = HR_PPL_LLAMACPP;
    p.bos = 1;
    hr_ppl_result res;
    CHECK(hr_perplexity(ctx, t, n, &p, &res) == HR_OK, "%s", hr_last_error());
    CHECK(res.n_scored == 2 * (33 - 1 - 16), "scored %lld", (long long)res.n_scored);
    hr_context_free(ctx);
    free(t);
}

static void n_ctx_beyond_the_model_context_is_a_range_error(void) {
    int seq_len = hr_model_config(g_model)->seq_len;
    int32_t *t = make_tokens((size_t)seq_len * 3);
    hr_context *ctx = new_ctx(seq_len);
    hr_ppl_params p = hr_ppl_default_params();
    p.n_ctx = seq_len + 1;
    hr_ppl_result res;
    hr_status st = hr_perplexity(ctx, t, (size_t)seq_len * 3, &p, &res);
    CHECK(st == HR_ERR_RANGE, "status %d", st);
    CHECK(strstr(hr_last_error(), "context") != NULL, "message: %s", hr_last_error());
    hr_context_free(ctx);
    ctx = new_ctx(32);
    p.n_ctx = 64; /* fits the model but not this context's cache */
    CHECK(hr_perplexity(ctx, t, 200, &p, &res) == HR_ERR_RANGE, "cache overflow accepted");
    hr_context_free(ctx);
    free(t);
}

static void too_few_tokens_or_a_bad_stride_are_errors(void) {
    int32_t *t = make_tokens(200);
    hr_context *ctx = new_ctx(64);
    hr_ppl_params p = hr_ppl_default_params();
    hr_ppl_result res;
    p.protocol = HR_PPL_LLAMACPP;
    hr_status st = hr_perplexity(ctx, t, 127, &p, &res);
    CHECK(st == HR_ERR_INVALID_ARG, "127 tokens for n_ctx 64 accepted (%d)", st);
    CHECK(strstr(hr_last_error(), "128") != NULL, "message should name 2*n_ctx: %s", hr_last_error());
    p.protocol = HR_PPL_SLIDING;
    CHECK(hr_perplexity(ctx, t, 1, &p, &res) == HR_ERR_INVALID_ARG, "1 token accepted");
    CHECK(hr_perplexity(ctx, t, 0, &p, &res) == HR_ERR_INVALID_ARG, "0 tokens accepted");
    p.stride = 64;
    CHECK(hr_perplexity(ctx, t, 200, &p, &res) == HR_ERR_INVALID_ARG, "stride n_ctx on long text");
    p.stride = 65;
    CHECK(hr_perplexity(ctx, t, 200, &p, &res) == HR_ERR_RANGE, "stride > n_ctx accepted");
    p.stride = 0;
    t[5] = 100000;
    st = hr_perplexity(ctx, t, 200, &p, &res);
    CHECK(st == HR_ERR_INVALID_ARG && strstr(hr_last_error(), "index 5"), "bad token: %d %s", st, hr_last_error());
    hr_context_free(ctx);
    free(t);
}

static int count_calls(int64_t done, int64_t total, void *ud) {
    int *calls = ud;
    calls[0]++;
    calls[1] = done == total;
    return calls[2] && done >= calls[2];
}

static void progress_reports_every_window_and_can_abort(void) {
    int32_t *t = make_tokens(300);
    hr_context *ctx = new_ctx(64);
    hr_ppl_params p = hr_ppl_default_params();
    int calls[3] = {0, 0, 0};
    p.progress = count_calls;
    p.progress_user_data = calls;
    hr_ppl_result res;
    CHECK(hr_perplexity(ctx, t, 300, &p, &res) == HR_OK, "%s", hr_last_error());
    CHECK(calls[0] == res.n_windows && calls[1], "calls %d windows %d last %d", calls[0], res.n_windows, calls[1]);
    int calls2[3] = {0, 0, 2};
    p.progress_user_data = calls2;
    CHECK(hr_perplexity(ctx, t, 300, &p, &res) == HR_ERR_ABORTED, "abort ignored");
    CHECK(calls2[0] == 2, "kept going after abort: %d calls", calls2[0]);
    hr_context_free(ctx);
    free(t);
}

int main(void) {
    HR_T_REQUIRE_SHARED("models/stories260K/stories260K.bin");
    hr_status st = hr_model_load(MODEL_PATH, &g_model);
    CHECK(st == HR_OK, "loading %s: %s", MODEL_PATH, hr_last_error());
    if (st != HR_OK) TEST_MAIN_END();
    RUN(sliding_mean_nll_equals_brute_force_over_windows);
    RUN(single_window_with_stride_equal_to_n_ctx_scores_n_ctx_minus_one_tokens);
    RUN(llamacpp_protocol_scores_the_second_half_of_each_chunk);
    RUN(odd_n_ctx_uses_integer_half_in_llamacpp_protocol);
    RUN(n_ctx_beyond_the_model_context_is_a_range_error);
    RUN(too_few_tokens_or_a_bad_stride_are_errors);
    RUN(progress_reports_every_window_and_can_abort);
    hr_model_free(g_model);
    TEST_MAIN_END();
}
