/* Q/K RoPE row layouts and the writers' tensor gathering. */
#include "io/hf_internal.h"
#include "model/config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Within each head, dst row r = src row map(r); tmp holds one head. */
static void permute_heads(float *w, int n_heads, int head_dim, size_t cols, float *tmp, int to_interleaved) {
    size_t head = (size_t)head_dim * cols;
    for (int h = 0; h < n_heads; h++) {
        float *blk = w + (size_t)h * head;
        memcpy(tmp, blk, head * sizeof(float));
        for (int r = 0; r < head_dim; r++) {
            int s = hr_qk_rotate_half_src(r, head_dim);
            if (to_interleaved) memcpy(blk + (size_t)r * cols, tmp + (size_t)s * cols, cols * sizeof(float));
            else memcpy(blk + (size_t)s * cols, tmp + (size_t)r * cols, cols * sizeof(float));
        }
    }
}

void hr_qk_to_interleaved(float *w, int n_heads, int head_dim, size_t cols, float *tmp) {
    permute_heads(w, n_heads, head_dim, cols, tmp, 1);
}

void hr_qk_to_rotate_half(float *w, int n_heads, int head_dim, size_t cols, float *tmp) {
    permute_heads(w, n_heads, head_dim, cols, tmp, 0);
}

void hr_wtensor_locate(int head_dim, const hr_wtensor *o, int64_t w, int *p, int64_t *r) {
    int64_t x = w;
    if (o->perm_heads && w < (int64_t)o->perm_heads * head_dim) {
        int j = (int)(w % head_dim), i = 0; /* the interleaved row whose rotate-half row is j */
        while (hr_qk_rotate_half_src(i, head_dim) != j) i++;
        x = w / head_dim * head_dim + i;
    }
    int k = 0;
    while (k + 1 < o->n_parts && x >= o->part_rows[k]) x -= o->part_rows[k++];
    *p = k, *r = x;
}

hr_status hr_check_finite(const char *tensor, const char *format, const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return hr_err(HR_ERR_INVALID_ARG, "tensor '%s' holds a non-finite value at %zu: %s cannot store it", tensor,
                          i, format);
    return HR_OK;
}

hr_status hr_wtensor_row(int head_dim, const hr_wtensor *o, int64_t w, float *row) {
    int p;
    int64_t r;
    hr_wtensor_locate(head_dim, o, w, &p, &r);
    size_t cols = (size_t)o->cols;
    if (o->part[p]) memcpy(row, o->part[p] + (size_t)r * cols, cols * sizeof(float));
    else if (o->tpart[p]) hr_mat_src_row(o->tpart[p], head_dim, (int)r, (int)cols, row);
    else return hr_err(HR_ERR_INVALID_ARG, "tensor '%s' has no weights to write", o->name);
    return HR_OK;
}

hr_status hr_wtensor_gather(int head_dim, const hr_wtensor *o, const float **out, float **tmp) {
    *tmp = NULL;
    if (o->n_parts == 1 && !o->perm_heads && !o->transpose && o->part[0]) {
        *out = o->part[0];
        return HR_OK;
    }
    size_t n = (size_t)o->rows * (size_t)o->cols;
    float *buf = malloc(n * sizeof(float) + 1); // (rows, cols)
    if (!buf) return hr_err(HR_ERR_NOMEM, "out of memory writing '%s'", o->name);
    size_t row = o->vec ? 1 : (size_t)o->cols, at = 0;
    for (int p = 0; p < o->n_parts; p++) {
        size_t k = (size_t)o->part_rows[p] * row;
        if (o->part[p]) {
            memcpy(buf + at, o->part[p], k * sizeof(float));
        } else if (o->tpart[p] && !o->vec) { /* typed: converted row by row, headroom's order */
            for (int64_t r = 0; r < o->part_rows[p]; r++)
                hr_mat_src_row(o->tpart[p], head_dim, (int)r, (int)row, buf + at + (size_t)r * row);
        } else {
            free(buf);
            return hr_err(HR_ERR_INVALID_ARG, "tensor '%s' has no weights to write", o->name);
        }
        at += k;
    }
    float *scratch = NULL;
    if (o->perm_heads || o->transpose) {
        size_t sn = o->transpose ? n : (size_t)head_dim * row;
        scratch = malloc(sn * sizeof(float) + 1); // (head_dim, row) or (cols, rows)
        if (!scratch) {
            free(buf);
            return hr_err(HR_ERR_NOMEM, "out of memory writing '%s'", o->name);
        }
    }
    if (o->perm_heads) hr_qk_to_rotate_half(buf, o->perm_heads, head_dim, row, scratch);
    if (o->transpose) {
        for (size_t r = 0; r < (size_t)o->rows; r++)
            for (size_t c = 0; c < (size_t)o->cols; c++)
                scratch[c * (size_t)o->rows + r] = buf[r * (size_t)o->cols + c];
        free(buf);
        buf = scratch;
        scratch = NULL;
    }
    free(scratch);
    *out = buf;
    *tmp = buf;
    return HR_OK;
}

void hr_llama3_rope_divisors(int head_dim, float theta, const hr_rope_scaling *rs, float *div) {
    double lo = rs->original_ctx / (double)rs->low_freq_factor, hi = rs->original_ctx / (double)rs->high_freq_factor;
    for (int i = 0; i < head_dim / 2; i++) {
        double f = pow((double)theta, -2.0 * i / head_dim), wl = 2 * M_PI / f, d = 1.0;
        if (wl > lo) {
            d = rs->factor;
        } else if (wl >= hi) {
            double s = (rs->original_ctx / wl - rs->low_freq_factor) / (rs->high_freq_factor - rs->low_freq_factor);
            d = 1.0 / ((1 - s) / rs->factor + s);
        }
        div[i] = (float)d;
    }
}

hr_status hr_rope_scaling_from_divisors(hr_config *c, const float *div) {
    int half = c->head_dim / 2;
    float factor = 1.0f;
    for (int i = 0; i < half; i++) {
        if (!(div[i] >= 1.0f && div[i] < 1e6f))
            return hr_err(HR_ERR_FORMAT, "rope_freqs.weight[%d] = %g is invalid", i, (double)div[i]);
        if (div[i] > factor) factor = div[i];
    }
    if (factor == 1.0f) return HR_OK; /* no scaling at all */
    /* The published Llama 3.x settings, then neighbouring ones. */
    static const int origs[] = {8192, 4096, 16384, 32768, 2048};
    static const float lows[] = {1.0f, 2.0f}, highs[] = {4.0f, 8.0f, 2.0f};
    float *want = malloc(sizeof(float) * (size_t)half); // (head_dim / 2)
    if (!want) return hr_err(HR_ERR_NOMEM, "out of memory");
    for (size_t a = 0; a < sizeof origs / sizeof *origs; a++)
        for (size_t b = 0; b < 2; b++)
            for (size_t k = 0; k < 3; k++) {
                hr_rope_scaling rs = {true, factor, lows[b], highs[k], origs[a]};
                if (rs.high_freq_factor <= rs.low_freq_factor) continue;
                hr_llama3_rope_divisors(c->head_dim, c->rope_theta, &rs, want);
                bool same = true;
                for (int i = 0; i < half && same; i++) same = fabsf(want[i] - div[i]) <= 1e-4f * div[i];
                if (same) {
                    c->rope_scaling = rs;
                    free(want);
                    return HR_OK;
                }
            }
    free(want);
    return hr_err(HR_ERR_UNSUPPORTED, "rope_freqs.weight holds RoPE scaling factors that match no llama3 setting");
}
