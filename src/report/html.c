/* report.html: one self-contained page. The C side only validates and
 * embeds: the head/layer documents and a description of the pictures go in
 * as inline JSON (with every '<' escaped so no string can close the script
 * element), images as base64 data URIs; the inline script draws the page. */
#include "core/internal.h"
#include "core/json.h"
#include "core/limits.h"
#include "report/report_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- string helpers ------------------------------------------------------ */

void hr_strbuf_base64(hr_strbuf *b, const unsigned char *d, size_t n) {
    static const char k[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char chunk[4 * 1024];
    size_t at = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)d[i] << 16;
        if (i + 1 < n) v |= (unsigned)d[i + 1] << 8;
        if (i + 2 < n) v |= d[i + 2];
        chunk[at++] = k[(v >> 18) & 63];
        chunk[at++] = k[(v >> 12) & 63];
        chunk[at++] = i + 1 < n ? k[(v >> 6) & 63] : '=';
        chunk[at++] = i + 2 < n ? k[v & 63] : '=';
        if (at == sizeof chunk) {
            hr_strbuf_append(b, chunk, at);
            at = 0;
        }
    }
    hr_strbuf_append(b, chunk, at);
}

/* Text for HTML element content and attribute values. */
void put_html_text(hr_strbuf *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': hr_strbuf_puts(b, "&amp;"); break;
        case '<': hr_strbuf_puts(b, "&lt;"); break;
        case '>': hr_strbuf_puts(b, "&gt;"); break;
        case '"': hr_strbuf_puts(b, "&quot;"); break;
        case '\'': hr_strbuf_puts(b, "&#39;"); break;
        default: hr_strbuf_append(b, s, 1);
        }
    }
}

/* JSON inside <script type="application/json">: '<' can only occur inside
 * JSON strings, where \u003c means the same character, so "</script>" and
 * "<!--" can never appear in the element's raw text. */
void put_script_json(hr_strbuf *b, const char *json) {
    const char *run = json;
    for (const char *s = json; *s; s++) {
        if (*s != '<') continue;
        hr_strbuf_append(b, run, (size_t)(s - run));
        hr_strbuf_puts(b, "\\u003c");
        run = s + 1;
    }
    hr_strbuf_puts(b, run);
}

/* ---- validating the documents -------------------------------------------- */

static hr_status parse_doc(const char *json, const char *name, const char *array_key, cJSON **out) {
    *out = NULL;
    cJSON *root;
    hr_status st = hr_json_parse(json, strlen(json), &root);
    if (st != HR_OK) {
        hr_err_prefix("%s", name);
        return st;
    }
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, array_key);
    if (!cJSON_IsObject(root) || !cJSON_IsArray(arr)) {
        cJSON_Delete(root);
        return hr_err(HR_ERR_FORMAT, "%s has no \"%s\" array", name, array_key);
    }
    *out = root;
    return HR_OK;
}

/* Each record must say which layer (and head) it is about, or the tables
 * would show rows nobody can place. */
static hr_status check_records(const cJSON *root, const char *name, const char *array_key, int need_head) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, array_key), *rec;
    int i = 0;
    cJSON_ArrayForEach(rec, arr) {
        if (!cJSON_IsObject(rec) || !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(rec, "layer")) ||
            (need_head && !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(rec, "head"))))
            return hr_err(HR_ERR_FORMAT, "%s: %s[%d] is not an object with a numeric \"layer\"%s", name, array_key, i,
                          need_head ? " and \"head\"" : "");
        i++;
    }
    const cJSON *methods = cJSON_GetObjectItemCaseSensitive(root, "methods");
    if (methods && !cJSON_IsArray(methods)) return hr_err(HR_ERR_FORMAT, "%s: \"methods\" is not an array", name);
    return HR_OK;
}

/* ---- pictures ----------------------------------------------------------- */

static int known_section(const char *s) {
    return !strcmp(s, "methods") || !strcmp(s, "patterns") || !strcmp(s, "layers");
}

static hr_status data_uri(const unsigned char *png, size_t len, char **out) {
    hr_strbuf b = {0};
    hr_strbuf_puts(&b, "data:image/png;base64,");
    hr_strbuf_base64(&b, png, len);
    if (b.failed) {
        hr_strbuf_free(&b);
        return hr_err(HR_ERR_NOMEM, "out of memory encoding an image");
    }
    *out = b.p;
    return HR_OK;
}

/* "a\nb" -> ["a", "b"] */
static void add_lines(cJSON *o, const char *key, const char *text) {
    cJSON *a = cJSON_AddArrayToObject(o, key);
    for (const char *s = text; a && s;) {
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        char *line = strndup(s, n);
        if (line) cJSON_AddItemToArray(a, cJSON_CreateString(line));
        free(line);
        s = e ? e + 1 : NULL;
    }
}

static void add_meta(cJSON *o, const hr_png_info *info) {
    cJSON_AddNumberToObject(o, "width", info->width);
    cJSON_AddNumberToObject(o, "height", info->height);
    if (!info->has_meta) return;
    cJSON *plot = cJSON_AddArrayToObject(o, "plot");
    for (int i = 0; plot && i < 4; i++) cJSON_AddItemToArray(plot, cJSON_CreateNumber(info->plot[i]));
    if (info->title[0]) cJSON_AddStringToObject(o, "plot_title", info->title);
    if (info->xlabel[0]) cJSON_AddStringToObject(o, "xlabel", info->xlabel);
    if (info->ylabel[0]) cJSON_AddStringToObject(o, "ylabel", info->ylabel);
    if (info->xticks) add_lines(o, "xticks", info->xticks);
    if (info->yticks) add_lines(o, "yticks", info->yticks);
    cJSON_AddNumberToObject(o, "rows", info->rows);
    cJSON_AddNumberToObject(o, "cols", info->cols);
    cJSON_AddNumberToObject(o, "vmin", info->vmin);
    cJSON_AddNumberToObject(o, "vmax", info->vmax);
    cJSON_AddStringToObject(o, "colormap", info->diverging ? "diverging" : "sequential");
    cJSON_AddNumberToObject(o, "nan_cells", (double)info->nan_cells);
}

static hr_status describe_image(const hr_report_image *im, int idx, cJSON *list) {
    if (!im->png_path || !*im->png_path) return hr_err(HR_ERR_INVALID_ARG, "report image %d has no png_path", idx);
    if (!im->section || !known_section(im->section))
        return hr_err(HR_ERR_INVALID_ARG,
                      "report image %d ('%s'): section must be \"methods\", \"patterns\" or \"layers\"", idx,
                      im->png_path);
    char *png;
    size_t len;
    hr_status st = hr_read_file(im->png_path, &png, &len);
    if (st < 0) return st;
    hr_png_info info = {0};
    if (len > HR_MAX_REPORT_IMAGE_BYTES)
        st = hr_err(HR_ERR_RANGE, "image '%s' is too large to embed (%zu bytes)", im->png_path, len);
    else if ((st = hr_png_read_info((const unsigned char *)png, len, &info)) < 0)
        hr_err_prefix("image '%s'", im->png_path);
    char *uri = NULL;
    if (st >= 0) st = data_uri((const unsigned char *)png, len, &uri);
    free(png);
    if (st < 0) {
        hr_png_info_free(&info);
        return st;
    }
    cJSON *o = cJSON_CreateObject();
    if (!o) {
        free(uri);
        hr_png_info_free(&info);
        return hr_err(HR_ERR_NOMEM, "out of memory describing images");
    }
    cJSON_AddItemToArray(list, o);
    cJSON_AddStringToObject(o, "title", im->title ? im->title : "");
    if (im->caption) cJSON_AddStringToObject(o, "caption", im->caption);
    cJSON_AddStringToObject(o, "section", im->section);
    cJSON_AddStringToObject(o, "src", uri);
    free(uri);
    add_meta(o, &info);
    hr_png_info_free(&info);
    return HR_OK;
}

static cJSON *colormap_json(int diverging) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < hr_colormap_n_anchors(diverging); i++) {
        char hex[8];
        hr_colormap_anchor_hex(diverging, i, hex);
        cJSON_AddItemToArray(a, cJSON_CreateString(hex));
    }
    return a;
}

/* {"images": [...], "colormaps": {"sequential": [...], "diverging": [...], "nan": "#rrggbb"},
 *  "findings": {...}} (takes findings) */
static hr_status report_data(const hr_report_image *images, int n_images, cJSON *findings, char **out) {
    *out = NULL;
    cJSON *root = cJSON_CreateObject();
    if (root && findings) cJSON_AddItemToObject(root, "findings", findings);
    else cJSON_Delete(findings);
    cJSON *list = cJSON_AddArrayToObject(root, "images");
    cJSON *maps = cJSON_AddObjectToObject(root, "colormaps");
    if (!root || !list || !maps) {
        cJSON_Delete(root);
        return hr_err(HR_ERR_NOMEM, "out of memory describing images");
    }
    cJSON_AddItemToObject(maps, "sequential", colormap_json(0));
    cJSON_AddItemToObject(maps, "diverging", colormap_json(1));
    char nan_hex[8];
    snprintf(nan_hex, sizeof nan_hex, "#%02x%02x%02x", HR_NAN_R, HR_NAN_G, HR_NAN_B);
    cJSON_AddStringToObject(maps, "nan", nan_hex);
    for (int i = 0; i < n_images; i++) {
        hr_status st = describe_image(&images[i], i, list);
        if (st < 0) {
            cJSON_Delete(root);
            return st;
        }
    }
    *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return *out ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory describing images");
}

/* ---- the page ----------------------------------------------------------- */

static void put_page(hr_strbuf *b, const char *title, const char *heads, const char *layers, const char *data) {
    hr_strbuf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                      /* The page must never reach out: forbid every fetch but inline code and data: images. */
                      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
                      "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n<title>");
    put_html_text(b, title);
    hr_strbuf_puts(b, "</title>\n<style>\n");
    hr_strbuf_puts(b, hr_report_css);
    hr_strbuf_puts(b, "</style>\n</head>\n<body>\n<header>\n<h1 id=\"title\">");
    put_html_text(b, title);
    hr_strbuf_puts(b,
                   "</h1>\n<p class=\"sub\" id=\"summary-line\">Attention-head analysis by headroom.</p>\n"
                   "<nav><a href=\"#findings\">Findings</a><a href=\"#methods\">Methods</a><a href=\"#heads\">Heads</a>"
                   "<a href=\"#layers\">Layers</a><a href=\"#patterns\">Attention patterns</a><a "
                   "href=\"#summary\">Run</a></nav>\n</header>\n<main>\n"
                   "<section id=\"findings\"><h2>Key findings</h2><div id=\"findings-body\"></div></section>\n"
                   "<section id=\"methods\"><h2>Methods</h2><p class=\"hint\">Each heatmap shows one score per "
                   "head: layers top to bottom, heads left to right, the colour bar on its right. Hover a cell to "
                   "read its value.</p><div id=\"methods-body\"></div></section>\n"
                   "<section id=\"heads\"><h2>Heads</h2><p class=\"hint\">One row per head, one column per method "
                   "(the score, and its rank: #1 is the highest). Click a column header to sort (again to "
                   "reverse).</p><div class=\"toolbar\"><input id=\"heads-filter\" type=\"search\" "
                   "placeholder=\"filter: layer, score, class\" aria-label=\"filter heads\"><select "
                   "id=\"heads-class\" aria-label=\"show one class\"><option value=\"\">every class</option></select>"
                   "<span id=\"heads-count\"></span></div>"
                   "<div class=\"table-wrap\"><table id=\"heads-table\"></table></div></section>\n"
                   "<section id=\"layers\"><h2>Layers</h2><div id=\"layers-body\"></div></section>\n"
                   "<section id=\"patterns\"><h2>Attention patterns</h2><p class=\"hint\">Attention weights of "
                   "single heads: each token (row) over the tokens before it (columns), tokens on both axes.</p>"
                   "<div id=\"patterns-body\"></div></section>\n"
                   "<section id=\"summary\"><h2>Run</h2><div id=\"summary-body\"></div></section>\n</main>\n"
                   "<noscript><p>The tables and figures of this report are drawn by its inline script; enable "
                   "JavaScript to see them.</p></noscript>\n"
                   "<script type=\"application/json\" id=\"heads-data\">");
    put_script_json(b, heads);
    hr_strbuf_puts(b, "</script>\n<script type=\"application/json\" id=\"layers-data\">");
    put_script_json(b, layers ? layers : "null");
    hr_strbuf_puts(b, "</script>\n<script type=\"application/json\" id=\"report-data\">");
    put_script_json(b, data);
    hr_strbuf_puts(b, "</script>\n<script>\n");
    hr_strbuf_puts(b, hr_report_js);
    hr_strbuf_puts(b, "</script>\n</body>\n</html>\n");
}

static hr_status write_all(const char *path, const hr_strbuf *b) {
    hr_atomic_file af;
    hr_status st = hr_atomic_open(path, &af);
    if (st < 0) return st;
    st = hr_atomic_write(&af, b->p, b->len);
    if (st < 0) {
        hr_atomic_abort(&af);
        return st;
    }
    return hr_atomic_commit(&af);
}

/* Parses and re-serialises the documents, so what is embedded is known-good
 * JSON (NaN/Inf already became null in the producer or fail here). */
static hr_status load_docs(const char *heads_json, const char *layers_json, char **heads_out, char **layers_out,
                           cJSON **findings) {
    *heads_out = *layers_out = NULL;
    *findings = NULL;
    cJSON *h, *l = NULL;
    hr_status st = parse_doc(heads_json, "heads.json", "heads", &h);
    if (st < 0) return st;
    if ((st = check_records(h, "heads.json", "heads", 1)) >= 0 && layers_json) {
        st = parse_doc(layers_json, "layers.json", "layers", &l);
        if (st >= 0) st = check_records(l, "layers.json", "layers", 0);
    }
    if (st >= 0) st = hr_report_findings(h, l, findings);
    if (st >= 0) {
        *heads_out = cJSON_PrintUnformatted(h);
        if (l) *layers_out = cJSON_PrintUnformatted(l);
        if (!*heads_out || (l && !*layers_out)) st = hr_err(HR_ERR_NOMEM, "out of memory serialising the report data");
    }
    cJSON_Delete(h);
    cJSON_Delete(l);
    if (st < 0) {
        cJSON_free(*heads_out);
        cJSON_free(*layers_out);
        cJSON_Delete(*findings);
        *heads_out = *layers_out = NULL;
        *findings = NULL;
    }
    return st;
}

hr_status hr_report_write_html(const char *path, const char *title, const char *heads_json, const char *layers_json,
                               const hr_report_image *images, int n_images) {
    if (!path || !*path) return hr_err(HR_ERR_INVALID_ARG, "report output path is empty");
    if (!heads_json) return hr_err(HR_ERR_INVALID_ARG, "report needs heads.json (got NULL)");
    if (n_images < 0 || (n_images > 0 && !images))
        return hr_err(HR_ERR_INVALID_ARG, "report images: %d images at %p", n_images, (const void *)images);
    char *heads, *layers;
    cJSON *findings;
    hr_status st = load_docs(heads_json, layers_json, &heads, &layers, &findings);
    if (st < 0) return st;
    char *data = NULL;
    st = report_data(images, n_images, findings, &data);
    hr_strbuf b = {0};
    if (st >= 0) {
        put_page(&b, title && *title ? title : "headroom report", heads, layers, data);
        st = b.failed ? hr_err(HR_ERR_NOMEM, "out of memory building '%s'", path) : write_all(path, &b);
    }
    hr_strbuf_free(&b);
    cJSON_free(heads);
    cJSON_free(layers);
    cJSON_free(data);
    return st;
}
