/* The patching report: patch.json, one heatmap PNG per matrix, and a
 * self-contained report.html drawn here, in C (no script: every label is
 * escaped text), with the heatmaps embedded as data URIs, DLA bars per
 * component and the logit-lens table (hr_report_patch, see report.h). */
#include "headroom/report.h"
#include "core/internal.h"
#include "core/strbuf.h"
#include "report/report_internal.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LABEL_MAX = 24 };

/* The token's text for a label (its vocabulary piece, escaped by the caller). */
static void token_label(const hr_tokenizer *tok, int32_t id, char *out, size_t cap) {
    size_t len = 0;
    const char *s = tok ? hr_tokenizer_piece(tok, id, &len) : NULL;
    if (!s) {
        snprintf(out, cap, "%d", id);
        return;
    }
    if (len >= cap) len = cap - 1;
    memcpy(out, s, len);
    out[len] = 0;
}

typedef struct {
    const char *dir;
    const hr_patch_summary *s;
    const hr_tokenizer *tok;
    hr_strbuf *html;
    int n_pictures;
} page;

/* Writes the PNG file and embeds it with its title, axis note and, for
 * position columns, one token label per column. */
static hr_status figure(page *pg, const char *file, const char *title, const char *caption, const double *v, int rows,
                        int cols, bool positions) {
    if (!v) return HR_OK;
    float *f = malloc(sizeof(float) * (size_t)rows * (size_t)cols);
    if (!f) return hr_err(HR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < (size_t)rows * cols; i++) f[i] = (float)v[i];
    hr_heatmap_params hp = hr_heatmap_default_params();
    hp.diverging = 1;
    hp.vmin = -1, hp.vmax = 1;
    unsigned char *png = NULL;
    size_t len = 0;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", pg->dir, file);
    hr_status st = hr_png_heatmap_mem(f, rows, cols, &hp, &png, &len);
    if (st == HR_OK) st = hr_write_file_atomic(path, png, len);
    free(f);
    hr_png_info info;
    if (st == HR_OK) st = hr_png_read_info(png, len, &info);
    if (st != HR_OK) {
        free(png);
        return st;
    }
    hr_strbuf *b = pg->html;
    hr_strbuf_puts(b, "<figure class=\"heatmap\"><div class=\"fig-title\">");
    put_html_text(b, title);
    hr_strbuf_puts(b, "</div><img class=\"heatmap\" alt=\"\" src=\"data:image/png;base64,");
    hr_strbuf_base64(b, png, len);
    hr_strbuf_puts(b, "\">");
    free(png);
    if (positions) {
        int cell = info.width / cols;
        hr_strbuf_printf(b, "<div class=\"tokens\" style=\"grid-template-columns: repeat(%d, %dpx)\">", cols, cell);
        for (int c = 0; c < cols; c++) {
            char lab[LABEL_MAX + 8];
            token_label(pg->tok, pg->s->labels[c], lab, LABEL_MAX);
            hr_strbuf_puts(b, "<span class=\"tok\">");
            put_html_text(b, lab);
            hr_strbuf_puts(b, "</span>");
        }
        hr_strbuf_puts(b, "</div>");
    }
    hr_strbuf_puts(b, "<figcaption>");
    put_html_text(b, caption);
    hr_strbuf_puts(b, " Colour: -1 (blue) .. 0 (white) .. 1 (red); grey = no such component.</figcaption></figure>\n");
    pg->n_pictures++;
    return HR_OK;
}

static void dd(hr_strbuf *b, const char *k, const char *v) {
    hr_strbuf_puts(b, "<dt>");
    put_html_text(b, k);
    hr_strbuf_puts(b, "</dt><dd>");
    put_html_text(b, v);
    hr_strbuf_puts(b, "</dd>");
}

static void summary(page *pg, const hr_patch_meta *meta) {
    const hr_patch_summary *s = pg->s;
    hr_strbuf *b = pg->html;
    char v[256];
    hr_strbuf_puts(b, "<section id=\"summary\"><h2>Summary</h2><div class=\"card\"><dl>");
    dd(b, "model", meta && meta->model_path ? meta->model_path : "");
    dd(b, "pairs", meta && meta->pairs_path ? meta->pairs_path : "");
    snprintf(v, sizeof v, "%d (%d positions, aligned at the end)", s->n_pairs, s->n_positions);
    dd(b, "pair count", v);
    dd(b, "metric", hr_patch_metric_name(s->metric));
    dd(b, "direction",
       s->direction == HR_PATCH_NOISE ? "noising (clean run, corrupt activation)"
                                      : "denoising (corrupt run, clean activation)");
    snprintf(v, sizeof v, "%.6g clean, %.6g corrupt (means over pairs)", s->clean, s->corrupt);
    dd(b, "metric of the runs", v);
    dd(b, "normalised value", "(mean patched - mean corrupt) / (mean clean - mean corrupt): 0 = corrupt, 1 = clean");
    snprintf(v, sizeof v, "%lld", (long long)s->forward_passes);
    dd(b, "forward passes", v);
    if (s->warning[0]) dd(b, "warning", s->warning);
    hr_strbuf_puts(b, "</dl></div></section>\n");
}

typedef struct {
    char name[32];
    double v;
} part;

static int by_size(const void *a, const void *b) {
    double x = fabs(((const part *)a)->v), y = fabs(((const part *)b)->v);
    return (x < y) - (x > y);
}

/* Bars of every DLA part, largest first. */
static hr_status dla_bars(page *pg) {
    const hr_patch_summary *s = pg->s;
    if (!s->has_dla) return HR_OK;
    int L = s->n_layers, H = s->max_heads, n = 0;
    part *p = malloc(sizeof(part) * (size_t)(L * H + 2 * L + 2));
    if (!p) return hr_err(HR_ERR_NOMEM, "out of memory");
    p[n] = (part){"embed", s->dla_embed}, n++;
    if (s->has_norm_bias) p[n] = (part){"final norm bias", s->dla_norm_bias}, n++;
    for (int l = 0; l < L; l++) {
        for (int h = 0; h < H; h++)
            if (!isnan(s->dla_heads[(size_t)l * H + h])) {
                snprintf(p[n].name, sizeof p[n].name, "head %d.%d", l, h);
                p[n++].v = s->dla_heads[(size_t)l * H + h];
            }
        if (s->has_attn_bias && !isnan(s->dla_attn_bias[l])) {
            snprintf(p[n].name, sizeof p[n].name, "attn bias %d", l);
            p[n++].v = s->dla_attn_bias[l];
        }
        if (!isnan(s->dla_mlp[l])) {
            snprintf(p[n].name, sizeof p[n].name, "mlp %d", l);
            p[n++].v = s->dla_mlp[l];
        }
    }
    qsort(p, (size_t)n, sizeof *p, by_size);
    double mx = n ? fabs(p[0].v) : 0;
    hr_strbuf *b = pg->html;
    hr_strbuf_printf(b,
                     "<section id=\"dla\"><h2>Direct logit attribution</h2><p class=\"hint\">Each part's contribution "
                     "to the logit difference (answer - wrong) on the clean prompts, through the final norm with its "
                     "scale frozen; the parts sum to %.6g (the model's logit difference: %.6g).</p>"
                     "<div class=\"table-wrap\"><table id=\"dla-table\"><thead><tr><th>part</th><th class=\"num\">"
                     "contribution</th><th>bar</th></tr></thead><tbody>",
                     s->dla_sum, s->dla_total);
    for (int i = 0; i < n; i++) {
        double w = mx > 0 ? 300.0 * fabs(p[i].v) / mx : 0;
        hr_strbuf_printf(b,
                         "<tr class=\"dla-row\"><td>%s</td><td class=\"num\">%.5g</td><td><div class=\"dla-bar %s\" "
                         "style=\"width:%.1fpx\"></div></td></tr>",
                         p[i].name, p[i].v, p[i].v < 0 ? "neg" : "pos", w);
    }
    hr_strbuf_puts(b, "</tbody></table></div></section>\n");
    free(p);
    return HR_OK;
}

static void lens_table(page *pg) {
    const hr_patch_summary *s = pg->s;
    if (!s->has_lens) return;
    hr_strbuf *b = pg->html;
    hr_strbuf_puts(b, "<section id=\"lens\"><h2>Logit lens</h2><p class=\"hint\">The residual after each block at the "
                      "last position, through the final norm and the classifier: mean logit difference, probability "
                      "and rank of the answer over the pairs (rank 1 = top), and the top tokens of the first pair.</p>"
                      "<div class=\"table-wrap\"><table id=\"lens-table\"><thead><tr><th>after block</th><th "
                      "class=\"num\">logit diff</th><th class=\"num\">p(answer)</th><th class=\"num\">rank</th>"
                      "<th>top tokens (pair 1)</th></tr></thead><tbody>");
    for (int l = 0; l < s->n_layers; l++) {
        hr_strbuf_printf(b,
                         "<tr class=\"lens-row\"><td>%d</td><td class=\"num\">%.4g</td><td class=\"num\">%.4g</td>"
                         "<td class=\"num\">%.1f</td><td>",
                         l, s->lens_logit_diff[l], s->lens_prob[l], s->lens_rank[l]);
        for (int k = 0; s->lens_pairs > 0 && k < s->lens_top; k++) {
            char lab[LABEL_MAX + 8];
            token_label(pg->tok, s->lens_tokens[(size_t)l * s->lens_top + k], lab, LABEL_MAX);
            hr_strbuf_puts(b, "<span class=\"tok\">");
            put_html_text(b, lab);
            hr_strbuf_puts(b, "</span> ");
        }
        hr_strbuf_puts(b, "</td></tr>");
    }
    hr_strbuf_puts(b, "</tbody></table></div></section>\n");
}

static const char k_patch_css[] =
    ".tokens { display: grid; font: 11px 'DejaVu Sans Mono', monospace; color: var(--muted); height: 90px; }\n"
    ".tokens .tok { writing-mode: vertical-rl; transform: rotate(180deg); white-space: pre; overflow: hidden; }\n"
    "td .tok { font: 12px 'DejaVu Sans Mono', monospace; background: #eef1f6; border-radius: 3px; padding: 0 4px; "
    "white-space: pre; }\n"
    ".dla-bar { height: 11px; border-radius: 2px; }\n"
    ".dla-bar.pos { background: #c0392b; }\n"
    ".dla-bar.neg { background: #2e6db4; }\n"
    ".value { font-size: 18px; font-variant-numeric: tabular-nums; }\n";

/* A path-patching or knockout section: the heatmap of a "*" sweep, or
 * the one value of a head list (element id "<id>-value"). */
static hr_status head_study(page *pg, const char *id, const char *title, const char *spec, const char *file,
                            const char *fig_title, const char *caption, const double *heads, double value) {
    hr_strbuf *b = pg->html;
    hr_strbuf_printf(b, "<section id=\"%s\"><h2>%s</h2><p class=\"hint\">", id, title);
    put_html_text(b, spec);
    hr_strbuf_puts(b, "</p>");
    hr_status st = HR_OK;
    if (heads) st = figure(pg, file, fig_title, caption, heads, pg->s->n_layers, pg->s->max_heads, false);
    else hr_strbuf_printf(b, "<p class=\"value\" id=\"%s-value\">%.6g</p>", id, value);
    hr_strbuf_puts(b, "</section>\n");
    return st;
}

static hr_status sections(page *pg) {
    const hr_patch_summary *s = pg->s;
    int L = s->n_layers, H = s->max_heads, P = s->n_positions;
    hr_strbuf *b = pg->html;
    hr_strbuf_puts(b, "<section id=\"patching\"><h2>Activation patching</h2><p class=\"hint\">Normalised metric "
                      "with one component patched (rows: layers, or layer x head; columns: heads or positions).</p>"
                      "<div class=\"figs\">");
    hr_status st = figure(pg, "patch_heads.png", "head outputs (layers x heads)",
                          "Each head's output patched at every position.", s->heads, L, H, false);
    if (st == HR_OK)
        st = figure(pg, "patch_layers.png", "attention outputs (layers x positions)",
                    "The attention sublayer's output patched at one position.", s->attn, L, P, true);
    if (st == HR_OK)
        st = figure(pg, "patch_mlp.png", "MLP outputs (layers x positions)",
                    "The MLP's output patched at one position.", s->mlp, L, P, true);
    if (st == HR_OK)
        st = figure(pg, "patch_resid.png", "residual stream (layers x positions)",
                    "The residual entering the layer patched at one position.", s->resid, L, P, true);
    if (st == HR_OK)
        st = figure(pg, "patch_positions.png", "heads at positions (layer x head rows, positions)",
                    "One head's output patched at one position; row = layer * heads + head.", s->head_pos, L * H, P,
                    true);
    hr_strbuf_puts(b, "</div></section>\n");
    if (st == HR_OK && s->path)
        st = head_study(pg, "path", "Path patching", s->path, "path_senders.png", "senders (layers x heads)",
                        "Each head's effect through the receivers only.", s->path_heads, s->path_value);
    if (st == HR_OK && s->knockout)
        st = head_study(pg, "knockout", "Attention knockout", s->knockout, "knockout_heads.png",
                        "heads knocked out (layers x heads)",
                        "Each head's attention blocked on its own (1 = no effect).", s->knockout_heads,
                        s->knockout_value);
    if (st == HR_OK) st = dla_bars(pg);
    if (st == HR_OK) lens_table(pg);
    return st;
}

hr_status hr_report_patch(const char *dir, const hr_patch_result *r, const hr_model *m, const hr_patch_meta *meta,
                          int *n_pictures) {
    if (!dir || !r || !m) return hr_err(HR_ERR_INVALID_ARG, "no folder, result or model given");
    char *json = NULL, path[PATH_MAX];
    hr_status st = hr_patch_result_json(r, m, meta, &json);
    snprintf(path, sizeof path, "%s/patch.json", dir);
    if (st == HR_OK) st = hr_write_file_atomic(path, json, strlen(json));
    hr_strbuf html = {0};
    page pg = {dir, hr_patch_result_summary(r), meta ? meta->tok : NULL, &html, 0};
    hr_strbuf_puts(&html, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
                          "style-src 'unsafe-inline'\">\n<title>headroom patching report</title>\n<style>\n");
    hr_strbuf_puts(&html, hr_report_css);
    hr_strbuf_puts(&html, k_patch_css);
    hr_strbuf_puts(&html, "</style>\n</head>\n<body>\n<header>\n<h1 id=\"title\">headroom patching report</h1>\n"
                          "<p class=\"sub\">Activation patching, path patching, knockout, direct logit attribution and "
                          "the logit lens over prompt pairs. Everything below is embedded in this file.</p>\n<nav><a "
                          "href=\"#summary\">Summary</a><a href=\"#patching\">Patching</a><a href=\"#dla\">DLA</a><a "
                          "href=\"#lens\">Logit lens</a></nav>\n</header>\n<main>\n");
    if (st == HR_OK) {
        summary(&pg, meta);
        st = sections(&pg);
    }
    hr_strbuf_puts(&html, "</main>\n<script type=\"application/json\" id=\"patch-data\">");
    if (json) put_script_json(&html, json);
    hr_strbuf_puts(&html, "</script>\n</body>\n</html>\n");
    snprintf(path, sizeof path, "%s/report.html", dir);
    if (st == HR_OK && html.failed) st = hr_err(HR_ERR_NOMEM, "out of memory building the report");
    if (st == HR_OK) st = hr_write_file_atomic(path, html.p, html.len);
    if (st == HR_OK && n_pictures) *n_pictures = pg.n_pictures;
    hr_strbuf_free(&html);
    free(json);
    return st;
}
