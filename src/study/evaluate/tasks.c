/* Synthetic passkey retrieval and multiple-choice tasks (evaluate.h). */
#include "headroom/evaluate.h"
#include "study/evaluate/evaluate_internal.h"
#include "model/model_internal.h"
#include "core/json.h"
#include "core/progress.h"
#include "core/rng.h"
#include "engine/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One passkey prompt: BOS, filler with the needle at a random depth, the
 * needle's first half (the cue); answer = the rest of the needle. */
static void passkey_prompt(const int32_t *text, size_t n_text, int length, int needle_len, hr_rng *rng, int32_t *p,
                           int32_t bos, int32_t *needle) {
    for (int i = 0; i < needle_len; i++) needle[i] = text[hr_rng_below(rng, n_text)];
    int cue = needle_len / 2, prompt_len = length - (needle_len - cue);
    int filler = prompt_len - 1 - needle_len - cue;
    int depth = (int)hr_rng_below(rng, (uint64_t)filler + 1);
    size_t start = n_text > (size_t)filler ? (size_t)hr_rng_below(rng, n_text - (size_t)filler) : 0;
    int k = 0;
    p[k++] = bos;
    for (int i = 0; i < filler; i++) {
        if (i == depth)
            for (int j = 0; j < needle_len; j++) p[k++] = needle[j];
        p[k++] = text[(start + (size_t)i) % n_text];
    }
    if (depth == filler)
        for (int j = 0; j < needle_len; j++) p[k++] = needle[j];
    for (int j = 0; j < cue; j++) p[k++] = needle[j];
}

hr_status hr_passkey(hr_context *ctx, const int32_t *tokens, size_t n_tokens, int32_t bos, int length, int trials,
                     int needle_len, uint64_t seed, hr_passkey_result *out) {
    if (n_tokens > 0 && tokens[0] == bos) tokens++, n_tokens--;
    if (needle_len < 3 || trials < 1) return hr_err(HR_ERR_INVALID_ARG, "passkey needs needles of >= 3 tokens");
    if (length > hr_context_n_ctx(ctx) || length < 2 * needle_len + 4)
        return hr_err(HR_ERR_RANGE, "passkey length %d does not fit (needs %d..%d)", length, 2 * needle_len + 4,
                      hr_context_n_ctx(ctx));
    if (n_tokens < 1) return hr_err(HR_ERR_RANGE, "no filler text for passkey prompts");
    int32_t *p = malloc(sizeof(int32_t) * (size_t)length), *needle = malloc(sizeof(int32_t) * (size_t)needle_len);
    int32_t *gen = malloc(sizeof(int32_t) * (size_t)needle_len);
    hr_status st = p && needle && gen ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory");
    hr_rng rng = hr_rng_stream(seed, (uint64_t)length);
    int exact = 0, right = 0, cue = needle_len / 2, ans = needle_len - cue;
    char phase[32];
    snprintf(phase, sizeof phase, "passkey %d", length);
    hr_progress_run run;
    hr_progress_enter(&run, NULL, NULL, 1);
    if (st == HR_OK) st = hr_progress_phase(phase, "trials", trials);
    for (int t = 0; st == HR_OK && t < trials; t++) {
        passkey_prompt(tokens, n_tokens, length, needle_len, &rng, p, bos, needle);
        st = hr_eval_greedy(ctx, p, length - ans, ans, gen);
        int ok = 0;
        for (int i = 0; st == HR_OK && i < ans; i++) ok += gen[i] == needle[cue + i];
        right += ok;
        exact += ok == ans;
        if (st == HR_OK) st = hr_progress_update(t + 1);
    }
    hr_progress_leave(&run);
    free(p);
    free(needle);
    free(gen);
    if (st != HR_OK) return st;
    *out = (hr_passkey_result){length, trials, (double)exact / trials, (double)right / ((double)trials * ans)};
    return HR_OK;
}

void hr_mc_task_free(hr_mc_task *t) {
    if (!t) return;
    for (int i = 0; i < t->n_items; i++) {
        free(t->items[i].context);
        for (int j = 0; j < t->items[i].n_choices; j++) free(t->items[i].choices[j]);
        free(t->items[i].choices);
    }
    free(t->items);
    free(t);
}

static char *dup_str(const char *s) {
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

/* Parses one JSON line into it; returns an error message or NULL. */
static const char *parse_item(const char *line, size_t len, hr_mc_item *it) {
    cJSON *j;
    if (hr_json_parse(line, len, &j) != HR_OK) return "not valid JSON";
    const char *err = NULL;
    cJSON *ctx = cJSON_GetObjectItemCaseSensitive(j, "context");
    cJSON *ch = cJSON_GetObjectItemCaseSensitive(j, "choices");
    cJSON *gold = cJSON_GetObjectItemCaseSensitive(j, "gold");
    int n = cJSON_IsArray(ch) ? cJSON_GetArraySize(ch) : 0;
    if (!cJSON_IsObject(j)) err = "not a JSON object";
    else if (!cJSON_IsString(ctx)) err = "\"context\" must be a string";
    else if (n < 2) err = "\"choices\" must be an array of at least 2 strings";
    else if (!cJSON_IsNumber(gold) || gold->valuedouble != floor(gold->valuedouble) || gold->valuedouble < 0 ||
             gold->valuedouble >= n)
        err = "\"gold\" must be an index into \"choices\"";
    for (int i = 0; !err && i < n; i++)
        if (!cJSON_IsString(cJSON_GetArrayItem(ch, i)) || !*cJSON_GetArrayItem(ch, i)->valuestring)
            err = "every choice must be a non-empty string";
    if (!err) {
        it->context = dup_str(ctx->valuestring);
        it->choices = calloc((size_t)n, sizeof(char *));
        it->n_choices = n;
        it->gold = (int)gold->valuedouble;
        bool ok = it->context && it->choices;
        for (int i = 0; ok && i < n; i++) ok = (it->choices[i] = dup_str(cJSON_GetArrayItem(ch, i)->valuestring));
        if (!ok) err = "out of memory";
    }
    cJSON_Delete(j);
    return err;
}

hr_status hr_mc_parse(const char *text, size_t len, hr_mc_task **out) {
    *out = NULL;
    hr_mc_task *t = calloc(1, sizeof *t);
    if (!t) return hr_err(HR_ERR_NOMEM, "out of memory");
    int cap = 0, line_no = 0;
    size_t pos = 0, a, b;
    while (hr_jsonl_next(text, len, &pos, &line_no, &a, &b)) {
        if (t->n_items == cap) {
            cap = cap ? cap * 2 : 16;
            hr_mc_item *p = realloc(t->items, sizeof *p * (size_t)cap);
            if (!p) {
                hr_mc_task_free(t);
                return hr_err(HR_ERR_NOMEM, "out of memory");
            }
            t->items = p;
        }
        hr_mc_item *it = &t->items[t->n_items];
        memset(it, 0, sizeof *it);
        t->n_items++;
        const char *err = parse_item(text + a, b - a, it);
        if (err) {
            hr_mc_task_free(t);
            return hr_err(HR_ERR_FORMAT, "task file line %d: %s", line_no, err);
        }
    }
    if (t->n_items == 0) {
        hr_mc_task_free(t);
        return hr_err(HR_ERR_FORMAT, "the task file has no items");
    }
    *out = t;
    return HR_OK;
}

/* Sum of log p(cont tokens) for the sequence ids (n), whose last n_cont
 * tokens are the continuation. */
static hr_status score_sequence(hr_context *ctx, const int32_t *ids, int n, int n_cont, double *ll) {
    int V = hr_context_model(ctx)->cfg.vocab_size, n_ctx = hr_context_n_ctx(ctx);
    if (n > n_ctx) ids += n - n_ctx, n = n_ctx;
    if (n_cont >= n) return hr_err(HR_ERR_RANGE, "a choice is longer than the context");
    float *logits = malloc(sizeof(float) * (size_t)n * V);
    if (!logits) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_status st = hr_context_truncate(ctx, 0);
    if (st == HR_OK) st = hr_forward(ctx, ids, n, logits, true);
    double s = 0;
    for (int i = n - n_cont; st == HR_OK && i < n; i++) {
        s -= hr_token_nll(logits + (size_t)(i - 1) * V, V, ids[i]);
    }
    free(logits);
    *ll = s;
    return st;
}

/* log-likelihood of choice c of item it. */
static hr_status score_choice(hr_context *ctx, const hr_tokenizer *tok, const hr_mc_item *it, int c, double *ll) {
    hr_encode_params ep = hr_encode_default_params();
    ep.add_bos = true;
    size_t lc = strlen(it->context), lch = strlen(it->choices[c]);
    char *whole = malloc(lc + lch + 1);
    if (!whole) return hr_err(HR_ERR_NOMEM, "out of memory");
    memcpy(whole, it->context, lc);
    memcpy(whole + lc, it->choices[c], lch + 1);
    int32_t *ci = NULL, *wi = NULL;
    size_t nc = 0, nw = 0;
    hr_status st = hr_tokenizer_encode(tok, it->context, lc, &ep, &ci, &nc);
    if (st == HR_OK) st = hr_tokenizer_encode(tok, whole, lc + lch, &ep, &wi, &nw);
    if (st == HR_OK && nw <= nc)
        st = hr_err(HR_ERR_FORMAT, "choice '%s' adds no tokens to its context", it->choices[c]);
    if (st == HR_OK) st = score_sequence(ctx, wi, (int)nw, (int)(nw - nc), ll);
    free(whole);
    free(ci);
    free(wi);
    return st;
}

hr_status hr_mc_eval(hr_context *ctx, const hr_tokenizer *tok, const hr_mc_task *task, hr_mc_result *out) {
    int right = 0, right_norm = 0;
    hr_progress_run run;
    hr_progress_enter(&run, NULL, NULL, 1);
    hr_status pst = hr_progress_phase("tasks", "items", task->n_items);
    for (int i = 0; pst == HR_OK && i < task->n_items; i++) {
        const hr_mc_item *it = &task->items[i];
        int best = -1, best_n = -1;
        double bs = -INFINITY, bn = -INFINITY;
        for (int c = 0; c < it->n_choices; c++) {
            double ll = 0;
            hr_status st = score_choice(ctx, tok, it, c, &ll);
            if (st != HR_OK) {
                hr_err_prefix("task item %d", i + 1);
                hr_progress_leave(&run);
                return st;
            }
            double norm = ll / (double)strlen(it->choices[c]);
            if (ll > bs) bs = ll, best = c;
            if (norm > bn) bn = norm, best_n = c;
        }
        right += best == it->gold;
        right_norm += best_n == it->gold;
        pst = hr_progress_update(i + 1);
    }
    hr_progress_leave(&run);
    if (pst != HR_OK) return pst;
    *out = (hr_mc_result){task->n_items, (double)right / task->n_items, (double)right_norm / task->n_items};
    return HR_OK;
}
