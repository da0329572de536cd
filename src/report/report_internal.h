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

/* What a heatmap PNG says about itself (from its tEXt chunks). */
typedef struct {
    int width, height;   /* pixels */
    int has_meta;        /* 1 if the headroom:* chunks were found */
    int rows, cols;      /* cells */
    double vmin, vmax;   /* colour range */
    int diverging;
    long nan_cells;
} hr_png_info;

/* Parses a PNG held in memory (header and text chunks only). */
hr_status hr_png_read_info(const unsigned char *png, size_t len, hr_png_info *out);

/* Appends the base64 encoding of data to b. */
void hr_strbuf_base64(hr_strbuf *b, const unsigned char *data, size_t n);

/* Text for HTML element content and attribute values (& < > " ' escaped). */
void put_html_text(hr_strbuf *b, const char *s);
/* JSON inside <script type="application/json"> ('<' written as \u003c). */
void put_script_json(hr_strbuf *b, const char *json);

/* Inline stylesheet and script of report.html (html_template.c). */
extern const char hr_report_css[];
extern const char hr_report_js[];

#endif
