/* Calibration windows and text (the one home of their defaults, see
 * headroom/study.h) and amounts of units to remove. */
#include "headroom/study.h"
#include "core/internal.h"
#include "core/progress.h"
#include "study/calib_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int hr_calib_window(int n_ctx, int window) {
    if (window > 0) return window;
    return n_ctx < HR_CALIB_WINDOW ? n_ctx : HR_CALIB_WINDOW;
}

hr_status hr_calib_tokens(const hr_tokenizer *tok, const char *text, size_t len, int64_t max_tokens, int32_t **ids,
                          size_t *n_ids) {
    if (!ids || !n_ids) return hr_err(HR_ERR_INVALID_ARG, "no output pointers");
    *ids = NULL;
    *n_ids = 0;
    if (!tok || !text) return hr_err(HR_ERR_INVALID_ARG, "calibration needs a tokenizer and a text");
    if (max_tokens < 0) return hr_err(HR_ERR_RANGE, "negative calibration token count %lld", (long long)max_tokens);
    hr_encode_params ep = hr_encode_default_params();
    ep.add_bos = hr_tokenizer_bos(tok) >= 0;
    hr_status st = hr_tokenizer_encode(tok, text, len, &ep, ids, n_ids);
    if (st != HR_OK) return st;
    if (max_tokens && *n_ids > (size_t)max_tokens) *n_ids = (size_t)max_tokens;
    if (*n_ids < HR_CALIB_MIN_TOKENS) {
        size_t n = *n_ids;
        free(*ids);
        *ids = NULL;
        *n_ids = 0;
        return hr_err(HR_ERR_RANGE, "the calibration text gives only %zu tokens; at least %d are needed", n,
                      HR_CALIB_MIN_TOKENS);
    }
    return HR_OK;
}

hr_status hr_calib_run_windows(hr_context *ctx, const int32_t *tokens, size_t n_tokens, int window, hr_hook_fn hook,
                               uint32_t mask, void *user_data, const char *phase) {
    int n_ctx = hr_context_n_ctx(ctx);
    if (window > n_ctx) return hr_err(HR_ERR_RANGE, "calibration window %d exceeds the context (%d)", window, n_ctx);
    window = hr_calib_window(n_ctx, window);
    if (window < 1) return hr_err(HR_ERR_RANGE, "calibration window %d is empty", window);
    int64_t total = (int64_t)((n_tokens + (size_t)window - 1) / (size_t)window), done = 0;
    hr_status st = hr_progress_phase(phase, "windows", total);
    hr_context_set_hook(ctx, hook, mask, user_data);
    for (size_t off = 0; st == HR_OK && off < n_tokens; off += (size_t)window) {
        size_t n = n_tokens - off < (size_t)window ? n_tokens - off : (size_t)window;
        st = hr_context_truncate(ctx, 0);
        if (st == HR_OK) st = hr_forward(ctx, tokens + off, (int)n, NULL, false);
        if (st == HR_OK) st = hr_progress_update(++done);
    }
    hr_context_set_hook(ctx, NULL, 0, NULL);
    hr_context_truncate(ctx, 0);
    return st;
}

/* digits with at most one '.', nothing else */
static bool plain_number(const char *s, size_t n) {
    int dots = 0, digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') dots++;
        else if (s[i] >= '0' && s[i] <= '9') digits++;
        else return false;
    }
    return digits > 0 && dots <= 1;
}

hr_status hr_parse_amount(const char *text, int64_t eligible, int64_t *out) {
    if (!text || !out) return hr_err(HR_ERR_INVALID_ARG, "no amount given");
    size_t n = strlen(text);
    bool pct = n > 0 && text[n - 1] == '%';
    if (!plain_number(text, pct ? n - 1 : n) || (!pct && strchr(text, '.')))
        return hr_err(HR_ERR_INVALID_ARG, "'%s' is not a percentage (\"25%%\") or a count (\"10\")", text);
    if (eligible < 2) return hr_err(HR_ERR_RANGE, "only %lld units can take part: none can go", (long long)eligible);
    double x = strtod(text, NULL);
    if (pct) {
        if (x >= 100) return hr_err(HR_ERR_RANGE, "%s would remove everything (the amount must be below 100%%)", text);
        int64_t k = (int64_t)llround(x / 100.0 * (double)eligible);
        if (k == 0) {
            if (x == 0) return hr_err(HR_ERR_RANGE, "%s removes nothing", text);
            return hr_err(HR_ERR_RANGE, "%s of %lld rounds to 0; the smallest share that removes one is %.3g%%", text,
                          (long long)eligible, 50.0 / (double)eligible);
        }
        if (k >= eligible)
            return hr_err(HR_ERR_RANGE, "%s of %lld rounds to all %lld (the amount must leave one)", text,
                          (long long)eligible, (long long)eligible);
        *out = k;
        return HR_OK;
    }
    if (x == 0) return hr_err(HR_ERR_RANGE, "%s removes nothing", text);
    if (x >= (double)eligible)
        return hr_err(HR_ERR_RANGE, "%s is not below the %lld that can take part", text, (long long)eligible);
    *out = (int64_t)x;
    return HR_OK;
}
