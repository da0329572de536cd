/* PNG heatmaps through libpng. libpng reports errors by longjmp; every
 * function that calls setjmp keeps its locals unchanged afterwards and does
 * the real work in a helper, so nothing is clobbered. Errors never print:
 * the message is captured and returned through hr_err. */
#include "core/internal.h"
#include "report/report_internal.h"

#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

hr_heatmap_params hr_heatmap_default_params(void) {
    hr_heatmap_params p = {.cell_px = 24, .diverging = 0, .vmin = 0.f, .vmax = 0.f, .max_plot_px = 600};
    return p;
}

static bool labelled(const hr_heatmap_params *p) {
    return p->title || p->xlabel || p->ylabel || p->xticks || p->yticks;
}

/* ---- libpng plumbing -------------------------------------------------- */

typedef struct {
    char msg[256];
} png_err_box;

static void on_png_error(png_structp png, png_const_charp msg) {
    png_err_box *box = png_get_error_ptr(png);
    if (box) snprintf(box->msg, sizeof box->msg, "%s", msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg) {
    (void)png;
    hr_log(HR_LOG_DEBUG, "libpng: %s", msg ? msg : "");
}

static void sink_write(png_structp png, png_bytep data, png_size_t n) {
    hr_strbuf *s = png_get_io_ptr(png);
    hr_strbuf_append(s, data, n);
    if (s->failed) png_error(png, "out of memory or PNG too large");
}

static void sink_flush(png_structp png) { (void)png; }

/* ---- colour mapping --------------------------------------------------- */

/* Resolved colour range: t = (v - lo) * scale. */
typedef struct {
    float lo, hi;
    int diverging;
    long nan_cells;
} range;

static hr_status resolve_range(const float *v, size_t n, const hr_heatmap_params *p, range *r) {
    r->diverging = p->diverging != 0;
    r->nan_cells = 0;
    float mn = INFINITY, mx = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (isnan(v[i])) {
            r->nan_cells++;
            continue;
        }
        if (v[i] < mn) mn = v[i];
        if (v[i] > mx) mx = v[i];
    }
    if (isnan(p->vmin) || isnan(p->vmax) || isinf(p->vmin) || isinf(p->vmax))
        return hr_err(HR_ERR_INVALID_ARG, "heatmap colour range must be finite (got %g..%g)", (double)p->vmin,
                      (double)p->vmax);
    if (p->vmin > p->vmax)
        return hr_err(HR_ERR_INVALID_ARG, "heatmap vmin %g is above vmax %g", (double)p->vmin, (double)p->vmax);
    if (p->vmin < p->vmax) {
        r->lo = p->vmin, r->hi = p->vmax;
        return HR_OK;
    }
    if (mn > mx) mn = mx = 0.f; /* all NaN: nothing to scale */
    /* Infinite cells clamp to the ends instead of stretching the range. */
    if (isinf(mn) || isinf(mx)) {
        float fmn = INFINITY, fmx = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            if (!isfinite(v[i])) continue;
            if (v[i] < fmn) fmn = v[i];
            if (v[i] > fmx) fmx = v[i];
        }
        if (fmn > fmx) fmn = fmx = 0.f;
        mn = fmn, mx = fmx;
    }
    if (r->diverging) {
        float m = fmaxf(fabsf(mn), fabsf(mx));
        mn = -m, mx = m;
    }
    r->lo = mn, r->hi = mx;
    return HR_OK;
}

static void cell_colour(const range *r, float v, unsigned char rgb[3]) {
    hr_colormap_value(r->diverging, r->lo, r->hi, v, rgb);
}

/* ---- encoding --------------------------------------------------------- */

typedef struct {
    const float *values; /* (rows, cols) */
    int rows, cols, cell;
    range r;
    unsigned char *line; /* (cols * cell, 3) one pixel row of a bare heatmap */
    const hr_plot *plot; /* a labelled plot's drawn image, or NULL */
    const hr_heatmap_params *p;
} heat_job;

/* A labelled plot's chunks: where the cells are, the labels (UTF-8). */
static int plot_text(const heat_job *j, png_text *t, char *s_plot, size_t cap) {
    static const char *const keys[] = {"headroom:title", "headroom:xlabel", "headroom:ylabel", "headroom:xticks",
                                       "headroom:yticks"};
    const char *vals[] = {j->p->title, j->p->xlabel, j->p->ylabel, j->plot->xticks, j->plot->yticks};
    const int *r = j->plot->plot;
    snprintf(s_plot, cap, "%d %d %d %d", r[0], r[1], r[2], r[3]);
    int n = 0;
    t[n++] = (png_text){.compression = PNG_TEXT_COMPRESSION_NONE, .key = "headroom:plot", .text = s_plot};
    for (int i = 0; i < 5; i++)
        if (vals[i])
            t[n++] =
                (png_text){.compression = PNG_ITXT_COMPRESSION_NONE, .key = (char *)keys[i], .text = (char *)vals[i]};
    return n;
}

static void encode_rows(png_structp png, png_infop info, const heat_job *j) {
    int w = j->plot ? j->plot->cv.w : j->cols * j->cell, h = j->plot ? j->plot->cv.h : j->rows * j->cell;
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    char s_vmin[32], s_vmax[32], s_rows[16], s_cols[16], s_nan[24];
    snprintf(s_vmin, sizeof s_vmin, "%.9g", (double)j->r.lo);
    snprintf(s_vmax, sizeof s_vmax, "%.9g", (double)j->r.hi);
    snprintf(s_rows, sizeof s_rows, "%d", j->rows);
    snprintf(s_cols, sizeof s_cols, "%d", j->cols);
    snprintf(s_nan, sizeof s_nan, "%ld", j->r.nan_cells);
    png_text text[] = {
        {.compression = PNG_TEXT_COMPRESSION_NONE, .key = "Software", .text = "headroom"},
        {.compression = PNG_TEXT_COMPRESSION_NONE, .key = "headroom:vmin", .text = s_vmin},
        {.compression = PNG_TEXT_COMPRESSION_NONE, .key = "headroom:vmax", .text = s_vmax},
        {.compression = PNG_TEXT_COMPRESSION_NONE, .key = "headroom:rows", .text = s_rows},
        {.compression = PNG_TEXT_COMPRESSION_NONE, .key = "headroom:cols", .text = s_cols},
        {.compression = PNG_TEXT_COMPRESSION_NONE,
         .key = "headroom:colormap",
         .text = j->r.diverging ? "diverging" : "sequential"},
        {.compression = PNG_TEXT_COMPRESSION_NONE, .key = "headroom:nan_cells", .text = s_nan},
        {0},
        {0},
        {0},
        {0},
        {0},
        {0}, /* a labelled plot's */
    };
    int n_text = 7;
    char s_plot[64];
    if (j->plot) n_text += plot_text(j, text + 7, s_plot, sizeof s_plot);
    png_set_text(png, info, text, n_text);
    png_write_info(png, info);
    if (j->plot) {
        for (int y = 0; y < h; y++) png_write_row(png, j->plot->cv.px + (size_t)y * w * 3);
        png_write_end(png, info);
        return;
    }
    for (int row = 0; row < j->rows; row++) {
        const float *v = j->values + (size_t)row * (size_t)j->cols;
        for (int c = 0; c < j->cols; c++) {
            unsigned char rgb[3];
            cell_colour(&j->r, v[c], rgb);
            unsigned char *px = j->line + (size_t)c * (size_t)j->cell * 3;
            for (int k = 0; k < j->cell; k++) memcpy(px + 3 * k, rgb, 3);
        }
        for (int k = 0; k < j->cell; k++) png_write_row(png, j->line);
    }
    png_write_end(png, info);
}

static hr_status run_encoder(heat_job *j, hr_strbuf *sink) {
    png_err_box box = {{0}};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &box, on_png_error, on_png_warning);
    if (!png) return hr_err(HR_ERR_NOMEM, "cannot create PNG writer");
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return hr_err(HR_ERR_NOMEM, "cannot create PNG writer");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return hr_err(HR_ERR_FORMAT, "PNG encoding failed: %s", box.msg);
    }
    png_set_write_fn(png, sink, sink_write, sink_flush);
    encode_rows(png, info, j);
    png_destroy_write_struct(&png, &info);
    return HR_OK;
}

static hr_status check_shape(const float *values, int rows, int cols, const hr_heatmap_params *p) {
    if (!values) return hr_err(HR_ERR_INVALID_ARG, "heatmap values are NULL");
    if (rows <= 0 || cols <= 0)
        return hr_err(HR_ERR_INVALID_ARG, "heatmap shape %d x %d: rows and cols must be positive", rows, cols);
    if (rows > HR_HEATMAP_MAX_SIDE || cols > HR_HEATMAP_MAX_SIDE)
        return hr_err(HR_ERR_RANGE, "heatmap shape %d x %d is too large (at most %d per side)", rows, cols,
                      HR_HEATMAP_MAX_SIDE);
    if (p->cell_px <= 0) return hr_err(HR_ERR_INVALID_ARG, "heatmap cell_px must be positive (got %d)", p->cell_px);
    return HR_OK;
}

hr_status hr_png_heatmap_mem(const float *values, int rows, int cols, const hr_heatmap_params *p, unsigned char **png,
                             size_t *len) {
    if (!png || !len) return hr_err(HR_ERR_INVALID_ARG, "hr_png_heatmap_mem: NULL output");
    *png = NULL;
    *len = 0;
    hr_heatmap_params dp = hr_heatmap_default_params();
    if (!p) p = &dp;
    hr_status st = check_shape(values, rows, cols, p);
    if (st < 0) return st;
    heat_job j = {.values = values, .rows = rows, .cols = cols, .cell = p->cell_px};
    int side = rows > cols ? rows : cols;
    if (j.cell > HR_HEATMAP_MAX_SIDE / side) j.cell = HR_HEATMAP_MAX_SIDE / side;
    if (j.cell < 1) j.cell = 1;
    st = resolve_range(values, (size_t)rows * (size_t)cols, p, &j.r);
    if (st < 0) return st;
    hr_plot plot;
    j.p = p;
    if (labelled(p)) {
        if ((st = hr_plot_render(values, rows, cols, j.r.lo, j.r.hi, j.r.diverging, j.r.nan_cells, p, &plot)) < 0)
            return st;
        j.plot = &plot;
    } else if (!(j.line = malloc((size_t)cols * (size_t)j.cell * 3))) { /* small: < 4096 * 3 bytes */
        return hr_err(HR_ERR_NOMEM, "out of memory for a heatmap row");
    }
    hr_strbuf sink = {0};
    st = run_encoder(&j, &sink);
    free(j.line);
    if (j.plot) hr_plot_free(&plot);
    if (st < 0) {
        hr_strbuf_free(&sink);
        return st;
    }
    *png = (unsigned char *)sink.p;
    *len = sink.len;
    return HR_OK;
}

hr_status hr_png_heatmap(const char *path, const float *values, int rows, int cols, const hr_heatmap_params *p) {
    if (!path || !*path) return hr_err(HR_ERR_INVALID_ARG, "heatmap output path is empty");
    unsigned char *buf;
    size_t len;
    hr_status st = hr_png_heatmap_mem(values, rows, cols, p, &buf, &len);
    if (st < 0) return st;
    hr_atomic_file af;
    st = hr_atomic_open(path, &af);
    if (st >= 0) {
        st = hr_atomic_write(&af, buf, len);
        if (st < 0) hr_atomic_abort(&af);
        else st = hr_atomic_commit(&af);
    }
    free(buf);
    return st;
}

/* ---- reading the metadata back ----------------------------------------- */

typedef struct {
    const unsigned char *data;
    size_t len, at;
} mem_source;

static void source_read(png_structp png, png_bytep out, png_size_t n) {
    mem_source *s = png_get_io_ptr(png);
    if (n > s->len - s->at) png_error(png, "truncated PNG");
    memcpy(out, s->data + s->at, n);
    s->at += n;
}

static int parse_int(const char *s, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < 0 || v > 1000000000L) return 0;
    *out = (int)v;
    return 1;
}

static void read_text_meta(png_structp png, png_infop info, hr_png_info *o) {
    png_textp text;
    int n = 0, found = 0, plot[4], has_plot = 0;
    png_get_text(png, info, &text, &n);
    for (int i = 0; i < n; i++) {
        const char *k = text[i].key, *v = text[i].text ? text[i].text : "";
        if (strncmp(k, "headroom:", 9) != 0) continue;
        k += 9;
        if (!strcmp(k, "plot")) has_plot = sscanf(v, "%d %d %d %d", &plot[0], &plot[1], &plot[2], &plot[3]) == 4;
        else if (!strcmp(k, "title")) snprintf(o->title, sizeof o->title, "%s", v);
        else if (!strcmp(k, "xlabel")) snprintf(o->xlabel, sizeof o->xlabel, "%s", v);
        else if (!strcmp(k, "ylabel")) snprintf(o->ylabel, sizeof o->ylabel, "%s", v);
        else if (!strcmp(k, "xticks") && !o->xticks) o->xticks = strdup(v);
        else if (!strcmp(k, "yticks") && !o->yticks) o->yticks = strdup(v);
        if (!strcmp(k, "vmin")) found += (o->vmin = strtod(v, NULL), 1);
        else if (!strcmp(k, "vmax")) found += (o->vmax = strtod(v, NULL), 1);
        else if (!strcmp(k, "rows")) found += parse_int(v, &o->rows);
        else if (!strcmp(k, "cols")) found += parse_int(v, &o->cols);
        else if (!strcmp(k, "colormap")) found += (o->diverging = !strcmp(v, "diverging"), 1);
        else if (!strcmp(k, "nan_cells")) o->nan_cells = strtol(v, NULL, 10);
    }
    /* Trusted only when consistent with the pixels (each cell at least one
     * pixel): the page draws one axis label per cell. */
    o->has_meta = found == 5 && o->rows > 0 && o->cols > 0 && o->rows <= HR_HEATMAP_MAX_SIDE &&
                  o->cols <= HR_HEATMAP_MAX_SIDE && o->rows <= o->height && o->cols <= o->width && isfinite(o->vmin) &&
                  isfinite(o->vmax) && o->vmin <= o->vmax;
    /* the cells' rectangle: inside the image, at least a pixel per cell */
    o->plot[0] = 0, o->plot[1] = 0, o->plot[2] = o->width, o->plot[3] = o->height;
    if (has_plot && plot[0] >= 0 && plot[1] >= 0 && plot[2] >= o->cols && plot[3] >= o->rows &&
        plot[0] + plot[2] <= o->width && plot[1] + plot[3] <= o->height)
        memcpy(o->plot, plot, sizeof plot);
}

void hr_png_info_free(hr_png_info *info) {
    if (!info) return;
    free(info->xticks);
    free(info->yticks);
    info->xticks = info->yticks = NULL;
}

static void read_header(png_structp png, png_infop info, mem_source *src, hr_png_info *o) {
    png_set_read_fn(png, src, source_read);
    png_read_info(png, info);
    o->width = (int)png_get_image_width(png, info);
    o->height = (int)png_get_image_height(png, info);
    read_text_meta(png, info, o);
}

hr_status hr_png_read_info(const unsigned char *data, size_t len, hr_png_info *out) {
    memset(out, 0, sizeof *out);
    if (!data || len < 8 || png_sig_cmp(data, 0, 8) != 0) return hr_err(HR_ERR_FORMAT, "not a PNG file");
    png_err_box box = {{0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &box, on_png_error, on_png_warning);
    if (!png) return hr_err(HR_ERR_NOMEM, "cannot create PNG reader");
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return hr_err(HR_ERR_NOMEM, "cannot create PNG reader");
    }
    mem_source src = {.data = data, .len = len};
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        hr_png_info_free(out);
        return hr_err(HR_ERR_FORMAT, "malformed PNG: %s", box.msg);
    }
    read_header(png, info, &src, out);
    png_destroy_read_struct(&png, &info, NULL);
    return HR_OK;
}
