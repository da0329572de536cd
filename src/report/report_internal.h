/* Internals shared by the report module (colormaps, PNG metadata, base64). */
#ifndef HR_REPORT_INTERNAL_H
#define HR_REPORT_INTERNAL_H

#include "headroom/report.h"
#include "core/strbuf.h"

#include <stddef.h>

/* Largest heatmap side in cells and in pixels (browsers and viewers cope). */
#define HR_HEATMAP_MAX_SIDE 4095

/* Grey for NaN cells: distinct from every colour of both colormaps. */
#define HR_NAN_R 160
#define HR_NAN_G 160
#define HR_NAN_B 160

/* Anchor colours of a colormap as "#rrggbb" strings (for the HTML legend,
 * which must show exactly the gradient the PNGs use). */
int hr_colormap_n_anchors(int diverging);
void hr_colormap_anchor_hex(int diverging, int i, char out[8]);
/* Colour of value v in the range [lo, hi] (the middle colour when lo ==
 * hi, grey for NaN). */
void hr_colormap_value(int diverging, double lo, double hi, float v, unsigned char rgb[3]);

/* What a heatmap PNG says about itself (from its tEXt chunks). */
typedef struct {
    int width, height; /* pixels */
    int has_meta;      /* 1 if the headroom:* chunks were found */
    int rows, cols;    /* cells */
    double vmin, vmax; /* colour range */
    int diverging;
    long nan_cells;
    int plot[4];                             /* x, y, w, h of the cells (the whole image for a bare heatmap) */
    char title[160], xlabel[64], ylabel[64]; /* a labelled plot's ("" when none) */
    char *xticks, *yticks; /* its tick labels, one per line (malloc'ed, NULL when none): hr_png_info_free */
} hr_png_info;
void hr_png_info_free(hr_png_info *info);

/* Parses a PNG held in memory (header and text chunks only). */
hr_status hr_png_read_info(const unsigned char *png, size_t len, hr_png_info *out);

/* An RGB image being drawn: px (h, w, 3). */
typedef struct {
    unsigned char *px;
    int w, h;
} hr_canvas;

/* The built-in 5x7 bitmap font (font.c): glyphs HR_FONT_ADVANCE pixels
 * apart at scale 1, 7 pixels high. */
#define HR_FONT_ADVANCE 6
#define HR_FONT_HEIGHT 7
/* Characters of a UTF-8 string as the font draws them. */
int hr_font_chars(const char *s);
/* Pixels a string takes along its baseline at `scale`. */
int hr_font_width(const char *s, int scale);
/* Draws s with its top-left at (x, y), clipped to the canvas; up != 0
 * turns the text a quarter to the left: it starts at (x, y) and reads
 * upwards, its glyphs' tops facing left. */
void hr_font_draw(hr_canvas *cv, int x, int y, const char *s, int scale, const unsigned char rgb[3], int up);

/* A labelled heatmap (plot.c): the cells of `values` coloured over
 * [lo, hi], with the title, axis labels, tick labels and colour bar that
 * hr_heatmap_params asks for. */
typedef struct {
    hr_canvas cv;          /* the drawn image (malloc'ed) */
    int plot[4];           /* x, y, w, h of the cells */
    char *xticks, *yticks; /* the tick labels drawn, one per line (malloc'ed) */
} hr_plot;
hr_status hr_plot_render(const float *values, int rows, int cols, double lo, double hi, int diverging, long nan_cells,
                         const hr_heatmap_params *p, hr_plot *out);
void hr_plot_free(hr_plot *pl);

/* The key findings of a head lab (findings.c) from its parsed heads.json
 * and layers.json (may be NULL): {"importance": {method, name, formula,
 * top: [{layer, head, score, classes}]}, "classes": [{class, method, rule,
 * count, heads: [...], closest}], "flat": [{method, value, heads}],
 * "layers": [{kind, metric, median, max, threshold, candidates: [{layer,
 * score, droppable}]}], "drop_kl_threshold"}. *out owned by the caller. */
struct cJSON;
hr_status hr_report_findings(const struct cJSON *heads, const struct cJSON *layers, struct cJSON **out);

/* Appends the base64 encoding of data to b. */
void hr_strbuf_base64(hr_strbuf *b, const unsigned char *data, size_t n);

/* Methods that rank heads by importance, best first (ablation is the
 * ground truth; AMP the one-pass proxy); NULL-terminated. */
extern const char *const hr_importance_order[];

/* Text for HTML element content and attribute values (& < > " ' escaped). */
void put_html_text(hr_strbuf *b, const char *s);
/* JSON inside <script type="application/json"> ('<' written as \u003c). */
void put_script_json(hr_strbuf *b, const char *json);

/* Inline stylesheet and script of report.html (html_template.c). */
extern const char hr_report_css[];
extern const char hr_report_js[];

#endif
