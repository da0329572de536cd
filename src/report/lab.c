/* The head lab's folder: JSON / CSV, heatmaps, attention patterns and
 * report.html (hr_report_head_lab, see report.h). */
#include "headroom/report.h"
#include "core/internal.h"
#include "report/report_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_IMAGES = 80, MAX_HEATMAPS = 64 };

hr_lab_report_params hr_lab_report_default_params(void) {
    hr_lab_report_params p;
    memset(&p, 0, sizeof p);
    p.top = 4;
    p.bos = 1;
    return p;
}

typedef struct {
    hr_report_image img[MAX_IMAGES];
    char titles[MAX_IMAGES][96], paths[MAX_IMAGES][PATH_MAX];
    int n;
} image_list;

static hr_status write_text(const char *dir, const char *name, const char *data) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return hr_write_file_atomic(path, data, strlen(data));
}

/* (n_layers, max_heads) matrix of a method's scores, NaN where absent. */
static float *score_matrix(const hr_heads_result *r, const hr_model *m, int method, int *rows, int *cols) {
    const hr_config *c = hr_model_config(m);
    *rows = hr_config_n_layers(c);
    *cols = hr_config_max_heads(c);
    float *v = malloc(sizeof(float) * (size_t)(*rows) * (size_t)(*cols ? *cols : 1));
    if (!v) return NULL;
    for (int l = 0; l < *rows; l++)
        for (int h = 0; h < *cols; h++) v[(size_t)l * *cols + h] = (float)hr_heads_score(r, method, l, h);
    return v;
}

static hr_status heatmaps(const char *dir, const hr_heads_result *r, const hr_model *m, image_list *il) {
    for (int i = 0; i < hr_heads_n_methods() && il->n < MAX_HEATMAPS; i++) {
        if (!hr_heads_result_has(r, i)) continue;
        const hr_head_method_info *mi = hr_heads_method_info(i);
        int rows, cols;
        float *v = score_matrix(r, m, i, &rows, &cols);
        if (!v) return hr_err(HR_ERR_NOMEM, "out of memory");
        snprintf(il->paths[il->n], PATH_MAX, "%s/heads_%s.png", dir, mi->id);
        snprintf(il->titles[il->n], sizeof il->titles[0], "%s (%s)", mi->id, mi->name);
        hr_heatmap_params hp = hr_heatmap_default_params();
        hp.title = il->titles[il->n];
        hp.xlabel = "head";
        hp.ylabel = "layer";
        hr_status st = hr_png_heatmap(il->paths[il->n], v, rows, cols, &hp);
        free(v);
        if (st != HR_OK) return st;
        /* no caption: the report shows the method's formula beside its picture */
        il->img[il->n] = (hr_report_image){il->titles[il->n], NULL, il->paths[il->n], "methods"};
        il->n++;
    }
    return HR_OK;
}

int hr_report_importance_method(const hr_heads_result *r) {
    for (int k = 0; hr_importance_order[k]; k++) {
        int i = hr_heads_method_index(hr_importance_order[k]);
        if (hr_heads_result_has(r, i)) return i;
    }
    for (int i = 0; i < hr_heads_n_methods(); i++)
        if (hr_heads_result_has(r, i) && strcmp(hr_heads_method_info(i)->higher, "more important") == 0) return i;
    for (int i = 0; i < hr_heads_n_methods(); i++)
        if (hr_heads_result_has(r, i)) return i;
    return -1;
}

/* A token as an axis label: "<s>" for BOS, spaces as middle dots, line
 * breaks and tabs escaped, other control bytes and broken UTF-8 as '?'. */
static void token_label(const hr_tokenizer *tok, int32_t id, int32_t bos, char *out, size_t cap) {
    char piece[64];
    size_t n = 0;
    if (id == bos) {
        snprintf(out, cap, "<s>");
        return;
    }
    if (!tok || hr_tokenizer_decode_one(tok, -1, id, piece, sizeof piece - 1, &n) != HR_OK) {
        snprintf(out, cap, "%d", (int)id);
        return;
    }
    size_t at = 0;
    for (size_t i = 0; i < n && at + 4 < cap;) {
        unsigned char c = (unsigned char)piece[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++) ok = ((unsigned char)piece[i + k] & 0xC0) == 0x80;
        if (!ok) out[at++] = '?', i++;
        else if (c == ' ') memcpy(out + at, "\xc2\xb7", 2), at += 2, i++;
        else if (c == '\n' || c == '\t') out[at++] = '\\', out[at++] = c == '\n' ? 'n' : 't', i++;
        else if (c < 32 || c == 127) out[at++] = '?', i++;
        else memcpy(out + at, piece + i, len), at += len, i += len;
    }
    out[at] = 0;
}

static hr_status patterns(const char *dir, const hr_heads_result *r, hr_context *ctx, const hr_lab_report_params *p,
                          image_list *il) {
    int m = hr_report_importance_method(r);
    if (m < 0 || p->top <= 0) return HR_OK;
    const int32_t *src = p->pattern_tokens ? p->pattern_tokens : p->text_tokens;
    size_t n_src = p->pattern_tokens ? p->n_pattern_tokens : p->n_text_tokens;
    if (!src || n_src < 1) return hr_err(HR_ERR_INVALID_ARG, "attention patterns need a prompt of at least one token");
    int n = n_src + 1 < HR_PATTERN_TOKENS ? (int)n_src + 1 : HR_PATTERN_TOKENS;
    if (n > hr_context_n_ctx(ctx)) n = hr_context_n_ctx(ctx);
    int32_t win[HR_PATTERN_TOKENS];     // (n) BOS + the prompt's first n-1 tokens
    char labels[HR_PATTERN_TOKENS][48]; // (n) axis labels
    const char *ticks[HR_PATTERN_TOKENS];
    float *map = malloc(sizeof(float) * (size_t)n * n); // (n, n) queries x keys
    hr_status st = map ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory");
    win[0] = p->bos;
    memcpy(win + 1, src, sizeof(int32_t) * (size_t)(n - 1));
    for (int i = 0; i < n; i++) {
        token_label(p->tok, win[i], p->bos, labels[i], sizeof labels[i]);
        ticks[i] = labels[i];
    }
    for (int rank = 1; st == HR_OK && rank <= p->top && il->n < MAX_IMAGES; rank++) {
        int fl = -1, fh = -1;
        for (int l = 0; l < hr_heads_result_n_layers(r); l++)
            for (int h = 0; h < hr_heads_result_n_heads(r, l); h++)
                if (hr_heads_rank(r, m, l, h) == rank) fl = l, fh = h;
        if (fl < 0) break;
        if ((st = hr_heads_attention_map(ctx, win, n, fl, fh, map)) != HR_OK) break;
        snprintf(il->paths[il->n], PATH_MAX, "%s/pattern_L%d_H%d.png", dir, fl, fh);
        snprintf(il->titles[il->n], sizeof il->titles[0], "head %d.%d (rank %d by %s)", fl, fh, rank,
                 hr_heads_method_info(m)->id);
        hr_heatmap_params hp = hr_heatmap_default_params();
        hp.vmin = 0;
        hp.vmax = 1;
        hp.cell_px = 8; /* one 5x7 label per token: 64 tokens take 512 pixels, two pictures side by side */
        hp.title = il->titles[il->n];
        hp.xlabel = "key (attended token)";
        hp.ylabel = "query token";
        hp.xticks = ticks;
        hp.yticks = ticks;
        if ((st = hr_png_heatmap(il->paths[il->n], map, n, n, &hp)) != HR_OK) break;
        il->img[il->n] = (hr_report_image){il->titles[il->n],
                                           p->pattern_tokens ? "attention of each token (row) to the tokens before it "
                                                               "(columns), on the pattern prompt"
                                                             : "attention of each token (row) to the tokens before it "
                                                               "(columns), on the start of the calibration text",
                                           il->paths[il->n], "patterns"};
        il->n++;
    }
    free(map);
    return st;
}

hr_status hr_report_head_lab(const char *dir, const hr_heads_result *r, hr_context *ctx, const hr_model *m,
                             const hr_lab_report_params *p, int *n_pictures) {
    if (!dir || !r || !ctx || !m) return hr_err(HR_ERR_INVALID_ARG, "no folder, result, context or model given");
    hr_lab_report_params dp = hr_lab_report_default_params();
    if (!p) p = &dp;
    hr_heads_meta meta = {p->model_path, NULL, p->text_path, p->seed};
    char *hj = NULL, *lj = NULL, *csv = NULL;
    hr_status st = hr_heads_to_json(r, m, &meta, &hj, &lj, &csv);
    if (st == HR_OK) st = write_text(dir, "heads.json", hj);
    if (st == HR_OK) st = write_text(dir, "heads.csv", csv);
    if (st == HR_OK && lj) st = write_text(dir, "layers.json", lj);
    if (st == HR_OK && !lj) { /* an earlier run's layers.json would not describe this one */
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/layers.json", dir);
        if (remove(path) != 0 && errno != ENOENT) st = hr_err(HR_ERR_IO, "cannot remove the earlier %s", path);
    }
    image_list *il = calloc(1, sizeof *il);
    if (st == HR_OK && !il) st = hr_err(HR_ERR_NOMEM, "out of memory");
    if (st == HR_OK) st = heatmaps(dir, r, m, il);
    if (st == HR_OK) st = patterns(dir, r, ctx, p, il);
    if (st == HR_OK) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/report.html", dir);
        st = hr_report_write_html(path, "headroom head lab", hj, lj, il->img, il->n);
    }
    if (st == HR_OK && n_pictures) *n_pictures = il->n;
    free(il);
    free(hj);
    free(lj);
    free(csv);
    return st;
}
