/* Labelled heatmaps (hr_plot_render, report_internal.h): the cells, the
 * title above, the y label and tick labels on the left, x tick labels
 * (upright when they are words) and the x label below, a colour bar with
 * its range on the right, drawn with the built-in bitmap font (font.c) so
 * the PNG reads on its own.
 *
 *   PAD  title (scale 2, or 1 when it does not fit)
 *        ylabel | yticks | cells (rows x cols, cell px each) | bar | range
 *                          xticks (horizontal, or upright)
 *                          xlabel                             none swatch
 */
#include "core/internal.h"
#include "report/report_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char k_ink[3] = {0x1d, 0x23, 0x30}, k_frame[3] = {0xc8, 0xcc, 0xd4};
enum { PAD = 8, GAP = 4, LINE = HR_FONT_HEIGHT + 2, LABEL_CHARS = 12, BAR_W = 10, BAR_MIN_H = 64 };

/* Tick labels of one axis: the caller's, cut to LABEL_CHARS characters
 * (the last one then '.'), or the cell index. */
typedef struct {
    char (*text)[LABEL_CHARS * 4 + 1]; /* (n) UTF-8 */
    int n, max_px;                     /* widest label at scale 1 */
} ticks;

static bool ticks_make(ticks *t, const char *const *given, int n) {
    t->n = n;
    t->max_px = 0;
    t->text = calloc((size_t)n, sizeof *t->text);
    if (!t->text) return false;
    for (int i = 0; i < n; i++) {
        char *d = t->text[i];
        if (!given) {
            snprintf(d, sizeof *t->text, "%d", i);
        } else {
            const char *s = given[i] ? given[i] : "";
            size_t at = 0;
            for (int c = 0; *s && c < LABEL_CHARS; c++) { /* whole UTF-8 characters */
                size_t len = 1;
                while (s[len] && ((unsigned char)s[len] & 0xC0) == 0x80) len++;
                if (c == LABEL_CHARS - 1 && s[len]) {
                    d[at++] = '.';
                    break;
                }
                memcpy(d + at, s, len);
                at += len, s += len;
            }
            d[at] = 0;
        }
        int w = hr_font_width(d, 1);
        if (w > t->max_px) t->max_px = w;
    }
    return true;
}

/* One label per line (malloc'ed). */
static char *ticks_join(const ticks *t) {
    size_t n = 1;
    for (int i = 0; i < t->n; i++) n += strlen(t->text[i]) + 1;
    char *s = malloc(n), *d = s;
    for (int i = 0; s && i < t->n; i++) d += sprintf(d, "%s%s", i ? "\n" : "", t->text[i]);
    if (s) *d = 0;
    return s;
}

/* Label every step-th cell, step in 1, 2, 5, 10, 20, 50, ..., so that
 * labels are at least `need` pixels apart. */
static int tick_step(int cell, int need) {
    int step = cell >= need ? 1 : (need + cell - 1) / cell;
    for (int nice = 1;; nice *= 10)
        for (int k = 0; k < 3; k++) {
            int s = nice * (k == 0 ? 1 : k == 1 ? 2 : 5);
            if (s >= step) return s;
        }
}

typedef struct {
    int cell, px, py, pw, ph; /* the cells */
    int w, h;                 /* the canvas */
    int xstep, ystep, x_up;   /* tick spacing; x labels upright */
    int title_scale;
    int bar_x, bar_h;  /* the colour bar */
    char range[3][32]; /* its labels: high, middle, low */
} plot_layout;

static void layout(int rows, int cols, double lo, double hi, long nan_cells, const hr_heatmap_params *p,
                   const ticks *xt, const ticks *yt, plot_layout *L) {
    int side = rows > cols ? rows : cols, max_px = p->max_plot_px > 0 ? p->max_plot_px : 600;
    L->cell = p->cell_px;
    if (L->cell * side > max_px) L->cell = max_px / side > 1 ? max_px / side : 1;
    L->pw = L->cell * cols, L->ph = L->cell * rows;
    L->ystep = tick_step(L->cell, HR_FONT_HEIGHT + 1); /* one pixel between labels */
    int horiz = tick_step(L->cell, xt->max_px + 6);
    L->x_up = p->xticks && horiz > 1; /* words that do not fit side by side stand up */
    L->xstep = L->x_up ? tick_step(L->cell, HR_FONT_HEIGHT + 1) : horiz;
    snprintf(L->range[0], sizeof L->range[0], "%.3g", hi);
    snprintf(L->range[1], sizeof L->range[1], "%.3g", (lo + hi) / 2);
    snprintf(L->range[2], sizeof L->range[2], "%.3g", lo);
    int range_w = hr_font_width("none", 1);
    for (int i = 0; i < 3; i++)
        if (hr_font_width(L->range[i], 1) > range_w) range_w = hr_font_width(L->range[i], 1);
    L->title_scale = 2;
    L->px = PAD + (p->ylabel ? LINE + GAP : 0) + yt->max_px + GAP;
    L->py = PAD + (p->title ? 2 * LINE + GAP : 0);
    L->bar_x = L->px + L->pw + 3 * GAP;
    L->bar_h = L->ph > BAR_MIN_H ? L->ph : BAR_MIN_H;
    L->w = L->bar_x + BAR_W + GAP + range_w + PAD;
    if (p->title && hr_font_width(p->title, 2) + 2 * PAD > L->w) {
        L->title_scale = 1;
        if (hr_font_width(p->title, 1) + 2 * PAD > L->w) L->w = hr_font_width(p->title, 1) + 2 * PAD;
    }
    int below = L->py + L->ph + GAP + (L->x_up ? xt->max_px : HR_FONT_HEIGHT) + (p->xlabel ? GAP + LINE : 0) + PAD;
    int legend = L->py + L->bar_h + (nan_cells ? GAP + LINE : 0) + PAD;
    L->h = below > legend ? below : legend;
}

static void fill(hr_canvas *cv, int x, int y, int w, int h, const unsigned char rgb[3]) {
    for (int yy = y < 0 ? 0 : y; yy < y + h && yy < cv->h; yy++)
        for (int xx = x < 0 ? 0 : x; xx < x + w && xx < cv->w; xx++)
            memcpy(cv->px + ((size_t)yy * cv->w + xx) * 3, rgb, 3);
}

static void frame(hr_canvas *cv, int x, int y, int w, int h) {
    fill(cv, x - 1, y - 1, w + 2, 1, k_frame);
    fill(cv, x - 1, y + h, w + 2, 1, k_frame);
    fill(cv, x - 1, y, 1, h, k_frame);
    fill(cv, x + w, y, 1, h, k_frame);
}

static void draw_axes(hr_canvas *cv, const hr_heatmap_params *p, const plot_layout *L, const ticks *xt,
                      const ticks *yt) {
    if (p->title) hr_font_draw(cv, PAD, PAD, p->title, L->title_scale, k_ink, 0);
    for (int r = 0; r < yt->n; r += L->ystep) /* right-aligned, centred on the row */
        hr_font_draw(cv, L->px - GAP - hr_font_width(yt->text[r], 1),
                     L->py + r * L->cell + (L->cell - HR_FONT_HEIGHT) / 2, yt->text[r], 1, k_ink, 0);
    for (int c = 0; c < xt->n; c += L->xstep) {
        int x = L->px + c * L->cell + L->cell / 2, y = L->py + L->ph + GAP;
        if (L->x_up) /* reading upwards, ending just below the cells */
            hr_font_draw(cv, x - HR_FONT_HEIGHT / 2, y + hr_font_width(xt->text[c], 1), xt->text[c], 1, k_ink, 1);
        else hr_font_draw(cv, x - hr_font_width(xt->text[c], 1) / 2, y, xt->text[c], 1, k_ink, 0);
    }
    int below = L->py + L->ph + GAP + (L->x_up ? xt->max_px : HR_FONT_HEIGHT) + GAP;
    if (p->xlabel) hr_font_draw(cv, L->px + (L->pw - hr_font_width(p->xlabel, 1)) / 2, below, p->xlabel, 1, k_ink, 0);
    if (p->ylabel) hr_font_draw(cv, PAD, L->py + (L->ph + hr_font_width(p->ylabel, 1)) / 2, p->ylabel, 1, k_ink, 1);
}

/* The colour bar: the top of the range at its top; the three range labels;
 * a grey swatch "none" for cells without a value. */
static void draw_legend(hr_canvas *cv, int diverging, long nan_cells, const plot_layout *L) {
    for (int y = 0; y < L->bar_h; y++) {
        unsigned char rgb[3];
        hr_colormap_rgb(diverging, 1.f - (float)y / (float)(L->bar_h - 1), rgb);
        fill(cv, L->bar_x, L->py + y, BAR_W, 1, rgb);
    }
    frame(cv, L->bar_x, L->py, BAR_W, L->bar_h);
    int tx = L->bar_x + BAR_W + GAP;
    hr_font_draw(cv, tx, L->py, L->range[0], 1, k_ink, 0);
    hr_font_draw(cv, tx, L->py + (L->bar_h - HR_FONT_HEIGHT) / 2, L->range[1], 1, k_ink, 0);
    hr_font_draw(cv, tx, L->py + L->bar_h - HR_FONT_HEIGHT, L->range[2], 1, k_ink, 0);
    if (nan_cells) {
        static const unsigned char grey[3] = {HR_NAN_R, HR_NAN_G, HR_NAN_B};
        int y = L->py + L->bar_h + GAP + 1;
        fill(cv, L->bar_x, y, BAR_W, HR_FONT_HEIGHT, grey);
        hr_font_draw(cv, tx, y, "none", 1, k_ink, 0);
    }
}

void hr_plot_free(hr_plot *pl) {
    if (!pl) return;
    free(pl->cv.px);
    free(pl->xticks);
    free(pl->yticks);
    memset(pl, 0, sizeof *pl);
}

hr_status hr_plot_render(const float *values, int rows, int cols, double lo, double hi, int diverging, long nan_cells,
                         const hr_heatmap_params *p, hr_plot *out) {
    memset(out, 0, sizeof *out);
    ticks xt = {0}, yt = {0};
    hr_status st = ticks_make(&xt, p->xticks, cols) && ticks_make(&yt, p->yticks, rows)
                       ? HR_OK
                       : hr_err(HR_ERR_NOMEM, "out of memory for tick labels");
    plot_layout L;
    if (st == HR_OK) {
        layout(rows, cols, lo, hi, nan_cells, p, &xt, &yt, &L);
        if (L.w > HR_HEATMAP_MAX_SIDE || L.h > HR_HEATMAP_MAX_SIDE)
            st = hr_err(HR_ERR_RANGE, "a labelled heatmap of %d x %d pixels is too large", L.w, L.h);
    }
    hr_canvas *cv = &out->cv;
    if (st == HR_OK) {
        cv->w = L.w, cv->h = L.h;
        cv->px = malloc((size_t)cv->w * (size_t)cv->h * 3); // (h, w, 3)
        out->xticks = ticks_join(&xt);
        out->yticks = ticks_join(&yt);
        if (!cv->px || !out->xticks || !out->yticks) st = hr_err(HR_ERR_NOMEM, "out of memory for a heatmap");
    }
    if (st == HR_OK) {
        memset(cv->px, 255, (size_t)cv->w * (size_t)cv->h * 3);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) {
                unsigned char rgb[3];
                hr_colormap_value(diverging, lo, hi, values[(size_t)r * cols + c], rgb);
                fill(cv, L.px + c * L.cell, L.py + r * L.cell, L.cell, L.cell, rgb);
            }
        frame(cv, L.px, L.py, L.pw, L.ph);
        draw_axes(cv, p, &L, &xt, &yt);
        draw_legend(cv, diverging, nan_cells, &L);
        out->plot[0] = L.px, out->plot[1] = L.py, out->plot[2] = L.pw, out->plot[3] = L.ph;
    }
    free(xt.text);
    free(yt.text);
    if (st != HR_OK) hr_plot_free(out);
    return st;
}
