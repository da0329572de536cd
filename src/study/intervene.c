/* Heads masked without writing a model (hr_head_mask_*, study.h), head
 * lists and head means (study/intervene.h). */
#include "study/intervene.h"
#include "core/internal.h"
#include "core/rng.h"
#include "core/strbuf.h"
#include "model/model_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- head lists ---- */

static bool parse_int(const char **s, long *out) {
    char *end;
    if (!isdigit((unsigned char)**s)) return false;
    errno = 0;
    *out = strtol(*s, &end, 10);
    if (errno || *out > 100000) return false;
    *s = end;
    return true;
}

hr_status hr_parse_head_list(const hr_config *c, const char *list, const char *what, uint8_t *sel, int *n_sel) {
    int mh = hr_config_max_heads(c), count = 0;
    if (!list) return hr_err(HR_ERR_INVALID_ARG, "%s: no head list", what);
    const char *s = list;
    for (;;) {
        while (*s == ',' || *s == ' ' || *s == '\t') s++;
        if (!*s) break;
        const char *item = s;
        long l, h = -1;
        bool ok = parse_int(&s, &l) && *s == '.';
        if (ok) {
            s++;
            if (*s == '*') s++;
            else ok = parse_int(&s, &h);
        }
        size_t len = strcspn(item, ", \t");
        if (!ok || (*s && *s != ',' && *s != ' ' && *s != '\t'))
            return hr_err(HR_ERR_INVALID_ARG, "%s: '%.*s' is not a head (write LAYER.HEAD, e.g. 2.5, or LAYER.*)", what,
                          (int)len, item);
        if (l >= c->n_layers)
            return hr_err(HR_ERR_INVALID_ARG, "%s: no head %.*s (the model has %d layers)", what, (int)len, item,
                          c->n_layers);
        if (h >= c->n_head[l])
            return hr_err(HR_ERR_INVALID_ARG, "%s: no head %.*s (layer %ld has %d heads)", what, (int)len, item, l,
                          c->n_head[l]);
        for (int k = h < 0 ? 0 : (int)h; k < (h < 0 ? c->n_head[l] : (int)h + 1); k++) {
            count += !sel[(size_t)l * mh + k];
            sel[(size_t)l * mh + k] = 1;
        }
    }
    if (n_sel) *n_sel = count;
    return HR_OK;
}

/* ---- head means ---- */

typedef struct {
    float *sum;  /* (L, H, hd) */
    double *acc; /* (L, H, hd) running sums in double */
    int H, hd;
} mean_acc;

static int mean_hook(const hr_hook_event *ev, void *ud) {
    mean_acc *m = ud;
    double *a = m->acc + ((size_t)ev->layer * m->H + ev->head) * m->hd;
    for (int t = 0; t < ev->n_tokens; t++) {
        const float *o = ev->data + (size_t)t * ev->stride;
        for (int d = 0; d < m->hd; d++) a[d] += o[d];
    }
    return 0;
}

hr_status hr_head_means_of_windows(hr_context *ctx, const int32_t *windows, int n_windows, int W, float *means) {
    const hr_config *c = hr_model_config(hr_context_model(ctx));
    int H = hr_config_max_heads(c), hd = c->head_dim;
    size_t n = (size_t)c->n_layers * H * hd;
    mean_acc m = {means, calloc(n ? n : 1, sizeof(double)), H, hd};
    if (!m.acc) return hr_err(HR_ERR_NOMEM, "out of memory for head means");
    if (n_windows < 1 || W < 1) {
        free(m.acc);
        return hr_err(HR_ERR_RANGE, "head means need at least one window");
    }
    hr_status st = HR_OK;
    hr_context_set_hook(ctx, mean_hook, HR_HOOK_HEAD_OUT, &m);
    for (int w = 0; st == HR_OK && w < n_windows; w++) {
        st = hr_context_truncate(ctx, 0);
        if (st == HR_OK) st = hr_forward(ctx, windows + (size_t)w * W, W, NULL, false);
    }
    hr_context_set_hook(ctx, NULL, 0, NULL);
    hr_context_truncate(ctx, 0);
    for (size_t i = 0; st == HR_OK && i < n; i++) means[i] = (float)(m.acc[i] / ((double)n_windows * W));
    free(m.acc);
    return st;
}

hr_status hr_head_means(hr_context *ctx, const int32_t *tokens, size_t n_tokens, int window, size_t max_tokens,
                        float *means) {
    if (!ctx || !tokens || !means) return hr_err(HR_ERR_INVALID_ARG, "head means need a context, tokens and a buffer");
    if (max_tokens && n_tokens > max_tokens) n_tokens = max_tokens;
    int W = window > 0 ? window : hr_calib_window(hr_context_n_ctx(ctx), 0);
    if (W > hr_context_n_ctx(ctx))
        return hr_err(HR_ERR_RANGE, "window %d exceeds the context %d", W, hr_context_n_ctx(ctx));
    if (W < 2 || n_tokens < (size_t)W)
        return hr_err(HR_ERR_RANGE, "head means need one window of %d tokens; the text gives %zu", W, n_tokens);
    int n_windows = (int)((n_tokens - 1) / (size_t)(W - 1));
    int32_t *win = malloc(sizeof(int32_t) * (size_t)n_windows * W); /* (n_windows, W) BOS + text tokens */
    if (!win) return hr_err(HR_ERR_NOMEM, "out of memory");
    for (int w = 0; w < n_windows; w++) {
        win[(size_t)w * W] = tokens[0];
        memcpy(win + (size_t)w * W + 1, tokens + 1 + (size_t)w * (W - 1), sizeof(int32_t) * (size_t)(W - 1));
    }
    hr_status st = hr_head_means_of_windows(ctx, win, n_windows, W, means);
    free(win);
    return st;
}

/* ---- masks ---- */

struct hr_head_mask {
    int L, H, hd;
    float *gates;  /* (L, H) */
    uint8_t *mean; /* (L, H) 1 = mean-ablated */
    int n_heads, n_mean;
};

hr_head_mask_params hr_head_mask_default_params(void) {
    hr_head_mask_params p;
    memset(&p, 0, sizeof p);
    return p;
}

void hr_head_mask_free(hr_head_mask *mk) {
    if (!mk) return;
    free(mk->gates);
    free(mk->mean);
    free(mk);
}

const float *hr_head_mask_gates(const hr_head_mask *mk) { return mk ? mk->gates : NULL; }
bool hr_head_mask_needs_means(const hr_head_mask *mk) { return mk && mk->n_mean > 0; }
int hr_head_mask_n_heads(const hr_head_mask *mk) { return mk ? mk->n_heads : 0; }

/* Marks the heads of a list in `taken` (an error when one is taken already). */
static hr_status take_list(const hr_config *c, const char *list, const char *what, uint8_t *taken, uint8_t *mine) {
    size_t n = (size_t)c->n_layers * hr_config_max_heads(c);
    memset(mine, 0, n);
    hr_status st = hr_parse_head_list(c, list, what, mine, NULL);
    for (size_t i = 0; st == HR_OK && i < n; i++) {
        if (mine[i] && taken[i])
            return hr_err(HR_ERR_INVALID_ARG, "%s: head %zu.%zu is already set by another option", what,
                          i / (size_t)hr_config_max_heads(c), i % (size_t)hr_config_max_heads(c));
        taken[i] |= mine[i];
    }
    return st;
}

/* One gates-file line "L.H VALUE" or "default VALUE" (comments removed). */
static hr_status gates_line(const hr_config *c, const char *name, int line_no, char *line, float *gates, uint8_t *taken,
                            float *dflt, bool *has_dflt) {
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    char head[64], val[64], extra[8];
    int k = sscanf(line, "%63s %63s %7s", head, val, extra);
    if (k <= 0) return HR_OK;
    if (k != 2)
        return hr_err(HR_ERR_FORMAT, "%s line %d: expected 'LAYER.HEAD VALUE' or 'default VALUE'", name, line_no);
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (*end || errno || !isfinite(v))
        return hr_err(HR_ERR_FORMAT, "%s line %d: gate '%s' is not a finite number", name, line_no, val);
    if (strcmp(head, "default") == 0) {
        if (*has_dflt) return hr_err(HR_ERR_FORMAT, "%s line %d: a second 'default' line", name, line_no);
        *has_dflt = true;
        *dflt = (float)v;
        return HR_OK;
    }
    size_t n = (size_t)c->n_layers * hr_config_max_heads(c);
    uint8_t *one = calloc(n ? n : 1, 1);
    if (!one) return hr_err(HR_ERR_NOMEM, "out of memory");
    char what[96];
    snprintf(what, sizeof what, "%s line %d", name, line_no);
    int cnt = 0;
    hr_status st = hr_parse_head_list(c, head, what, one, &cnt);
    for (size_t i = 0; st == HR_OK && i < n; i++) {
        if (!one[i]) continue;
        if (taken[i]) st = hr_err(HR_ERR_FORMAT, "%s: head %s is set twice (or by another option)", what, head);
        taken[i] = 1;
        gates[i] = (float)v;
    }
    if (st != HR_OK && st != HR_ERR_FORMAT) st = HR_ERR_FORMAT;
    free(one);
    return st;
}

static hr_status read_gates(const hr_config *c, const char *text, const char *name, float *gates, uint8_t *taken,
                            uint8_t *listed) {
    size_t n = (size_t)c->n_layers * hr_config_max_heads(c), len = strlen(text);
    float dflt = 1;
    bool has_dflt = false;
    hr_status st = HR_OK;
    int line_no = 0;
    for (size_t pos = 0; st == HR_OK && pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        char *line = strndup(text + pos, end - pos);
        if (!line) return hr_err(HR_ERR_NOMEM, "out of memory");
        st = gates_line(c, name, ++line_no, line, gates, listed, &dflt, &has_dflt);
        free(line);
        pos = end + 1;
    }
    for (size_t i = 0; st == HR_OK && i < n; i++) {
        if (listed[i] && taken[i])
            return hr_err(HR_ERR_INVALID_ARG, "%s: a head it sets is also set by another option", name);
        if (!listed[i] && has_dflt && !taken[i]) gates[i] = dflt;
    }
    for (size_t i = 0; i < n; i++) taken[i] |= listed[i] || has_dflt;
    return st;
}

static hr_status build(const hr_config *c, const hr_head_mask_params *p, hr_head_mask *mk) {
    size_t n = (size_t)mk->L * mk->H;
    uint8_t *taken = calloc(n, 1), *mine = calloc(n, 1);
    if (!taken || !mine) {
        free(taken), free(mine);
        return hr_err(HR_ERR_NOMEM, "out of memory");
    }
    hr_status st = HR_OK;
    if (p->mask_heads) {
        st = take_list(c, p->mask_heads, "--mask-heads", taken, mine);
        for (size_t i = 0; st == HR_OK && i < n; i++)
            if (mine[i]) mk->gates[i] = 0;
    }
    if (st == HR_OK && p->mean_heads) {
        st = take_list(c, p->mean_heads, "--mean-heads", taken, mine);
        for (size_t i = 0; st == HR_OK && i < n; i++)
            if (mine[i]) mk->gates[i] = 0, mk->mean[i] = 1;
    }
    if (st == HR_OK && p->gates_text) {
        memset(mine, 0, n);
        st = read_gates(c, p->gates_text, p->gates_name ? p->gates_name : "gates", mk->gates, taken, mine);
    }
    if (st == HR_OK && p->random_heads) {
        int free_heads = 0;
        for (int l = 0; l < mk->L; l++)
            for (int h = 0; h < c->n_head[l]; h++) free_heads += !taken[(size_t)l * mk->H + h];
        if (p->random_heads < 0 || p->random_heads > free_heads)
            st = hr_err(HR_ERR_RANGE, "--random-heads %d: %d heads are free to draw from", p->random_heads, free_heads);
        int *pool = malloc(sizeof(int) * (size_t)(free_heads ? free_heads : 1));
        if (st == HR_OK && !pool) st = hr_err(HR_ERR_NOMEM, "out of memory");
        if (st == HR_OK) {
            int k = 0;
            for (int l = 0; l < mk->L; l++)
                for (int h = 0; h < c->n_head[l]; h++)
                    if (!taken[(size_t)l * mk->H + h]) pool[k++] = l * mk->H + h;
            hr_rng rng = hr_rng_stream(p->seed, 0x4A4D);
            hr_rng_shuffle(&rng, pool, (size_t)k, sizeof(int));
            for (int i = 0; i < p->random_heads; i++) mk->gates[pool[i]] = 0;
        }
        free(pool);
    }
    for (size_t i = 0; i < n; i++) {
        mk->n_heads += mk->gates[i] != 1.0f;
        mk->n_mean += mk->mean[i];
    }
    free(taken), free(mine);
    return st;
}

hr_status hr_head_mask_new(const hr_config *c, const hr_head_mask_params *p, hr_head_mask **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!c || !p) return hr_err(HR_ERR_INVALID_ARG, "a head mask needs a model configuration and parameters");
    hr_head_mask *mk = calloc(1, sizeof *mk);
    if (!mk) return hr_err(HR_ERR_NOMEM, "out of memory");
    mk->L = c->n_layers;
    mk->H = hr_config_max_heads(c) ? hr_config_max_heads(c) : 1;
    mk->hd = c->head_dim;
    size_t n = (size_t)mk->L * mk->H;
    mk->gates = malloc(sizeof(float) * n);
    mk->mean = calloc(n, 1);
    hr_status st = mk->gates && mk->mean ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == HR_OK && i < n; i++) mk->gates[i] = 1;
    if (st == HR_OK) st = build(c, p, mk);
    if (st != HR_OK) {
        hr_head_mask_free(mk);
        return st;
    }
    *out = mk;
    return HR_OK;
}

hr_status hr_head_mask_describe(const hr_head_mask *mk, char **out) {
    if (!mk || !out) return hr_err(HR_ERR_INVALID_ARG, "no mask or output pointer");
    hr_strbuf b = {0};
    for (int i = 0; i < mk->L * mk->H; i++) {
        if (mk->mean[i]) hr_strbuf_printf(&b, "%s%d.%d=mean", b.len ? " " : "", i / mk->H, i % mk->H);
        else if (mk->gates[i] != 1.0f)
            hr_strbuf_printf(&b, "%s%d.%d=%g", b.len ? " " : "", i / mk->H, i % mk->H, mk->gates[i]);
    }
    if (b.failed) {
        hr_strbuf_free(&b);
        return hr_err(HR_ERR_NOMEM, "out of memory");
    }
    *out = b.p ? b.p : calloc(1, 1);
    return *out ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory");
}

hr_status hr_head_mask_means(const hr_head_mask *mk, const hr_model *m, int n_threads, const int32_t *tokens,
                             size_t n_tokens, float **means) {
    *means = NULL;
    if (!mk || !mk->n_mean) return HR_OK;
    const hr_config *c = hr_model_config(m);
    if (c->n_layers != mk->L || hr_config_max_heads(c) != mk->H || c->head_dim != mk->hd)
        return hr_err(HR_ERR_INVALID_ARG, "the head mask was built for a model of another shape");
    if (!tokens) return hr_err(HR_ERR_INVALID_ARG, "mean-ablated heads need a calibration text");
    size_t n = (size_t)mk->L * mk->H * mk->hd;
    float *mv = calloc(n ? n : 1, sizeof(float));
    hr_context *ctx = NULL;
    hr_context_params cp = hr_context_default_params();
    cp.n_ctx = hr_calib_window(c->seq_len, 0);
    cp.n_threads = n_threads;
    hr_status st = mv ? hr_context_new(m, &cp, &ctx) : hr_err(HR_ERR_NOMEM, "out of memory");
    if (st == HR_OK) st = hr_head_means(ctx, tokens, n_tokens, 0, HR_CALIB_HEADS_TOKENS, mv);
    hr_context_free(ctx);
    /* out = gate * out + (1 - gate) * mean: heads that are not mean-ablated keep mean 0 */
    for (size_t i = 0; st == HR_OK && i < (size_t)mk->L * mk->H; i++)
        if (!mk->mean[i]) memset(mv + i * mk->hd, 0, sizeof(float) * (size_t)mk->hd);
    if (st != HR_OK) {
        free(mv);
        return st;
    }
    *means = mv;
    return HR_OK;
}

hr_status hr_head_mask_apply(const hr_head_mask *mk, hr_context *ctx, const int32_t *tokens, size_t n_tokens) {
    if (!ctx) return hr_err(HR_ERR_INVALID_ARG, "no context");
    const hr_config *c = hr_model_config(hr_context_model(ctx));
    if (mk && (c->n_layers != mk->L || hr_config_max_heads(c) != mk->H || c->head_dim != mk->hd))
        return hr_err(HR_ERR_INVALID_ARG, "the head mask was built for a model of another shape");
    float *means = NULL;
    hr_status st = hr_head_mask_means(mk, hr_context_model(ctx), 0, tokens, n_tokens, &means);
    if (st == HR_OK) st = hr_context_set_head_means(ctx, means);
    if (st == HR_OK) st = hr_context_set_head_gates(ctx, mk ? mk->gates : NULL);
    free(means);
    return st;
}
