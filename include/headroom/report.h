/* headroom — pictures and reports for people: PNG heatmaps and a
 * self-contained HTML page (no network: images are embedded as data URIs,
 * data as inline JSON, scripts inline).
 *
 * Data contract of the head-lab outputs embedded in the report:
 *  heads.json = {
 *    "format": "headroom.heads", "format_version": 1,
 *    "model":   {"path": str, "arch": str, "n_layers": int, "n_heads": [int...],
 *                "n_kv_heads": [int...], "head_dim": int},
 *    "text":    {"path": str, "n_tokens": int, "seed": int},
 *    "methods": [{"id": str, "name": str, "paper": str, "formula": str,
 *                 "good_for": str, "higher": "more important" | "more <trait>"}...],
 *    "heads":   [{"layer": int, "head": int,
 *                 "scores": {"<method id>": number|null, ...},
 *                 "ranks":  {"<method id>": int (1 = highest score)|null, ...},
 *                 "classes": [str...]}...]        one record per (layer, head)
 *  }
 *  layers.json = {
 *    "format": "headroom.layers", "format_version": 1,
 *    "model":   {"n_layers": int},
 *    "metrics": [{"id": str, "name": str, "paper": str, "formula": str}...],
 *    "layers":  [{"layer": int, "scores": {"<metric id>": number|null}}...]
 *  }
 */
#ifndef HEADROOM_REPORT_H
#define HEADROOM_REPORT_H

#include "headroom/circuits.h"
#include "headroom/common.h"
#include "headroom/context.h"
#include "headroom/heads.h"
#include "headroom/model.h"
#include "headroom/tokenizer.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int cell_px;      /* pixels per cell (default 24; clamped so the image stays < 4096 px) */
    int diverging;    /* 0 = sequential colormap (viridis-like), 1 = diverging around 0 */
    float vmin, vmax; /* colour range; vmin == vmax = use the data's min/max (NaN cells drawn grey) */
    /* Labels. With any of them set the PNG is a labelled plot that reads on
     * its own: the title above, the y label and tick labels left of the
     * cells, x tick labels (turned upright when they are words that do not
     * fit) and the x label below, and a colour bar with its range on the
     * right, in a built-in 5x7 bitmap font (printable ASCII; the middle dot
     * U+00B7 marks spaces; other characters draw as '?'). Without them the
     * PNG is the bare cells, cols x rows x cell_px pixels. */
    const char *title;           /* may be NULL */
    const char *xlabel, *ylabel; /* axis titles of the columns and rows; may be NULL */
    const char *const *xticks;   /* cols labels (borrowed); NULL = column numbers */
    const char *const *yticks;   /* rows labels; NULL = row numbers */
    int max_plot_px;             /* labelled: cells shrink so the cells' longer side stays <= this (default 600) */
} hr_heatmap_params;

HR_API hr_heatmap_params hr_heatmap_default_params(void);

/* Colour at t in [0, 1] (clamped) of the sequential (diverging = 0) or
 * diverging (1) colormap; NaN gives the grey used for missing cells. */
HR_API void hr_colormap_rgb(int diverging, float t, unsigned char rgb[3]);

/* Writes a (rows, cols) matrix as a PNG heatmap, row 0 at the top (layers ×
 * heads, or queries × keys for attention patterns). Atomic write.
 * rows and cols must be in 1..4095. The diverging map with an automatic range
 * is symmetric around 0 (0 = white). The colour range, colormap and shape are
 * stored in tEXt chunks ("headroom:vmin", ...) so the report can draw a legend;
 * a labelled plot adds "headroom:plot" (x y w h of the cells in pixels),
 * "headroom:title", "headroom:xlabel", "headroom:ylabel" and the tick labels
 * "headroom:xticks" / "headroom:yticks" (one per line), UTF-8 in iTXt chunks. */
HR_API hr_status hr_png_heatmap(const char *path, const float *values, int rows, int cols, const hr_heatmap_params *p);

/* Same, encoded into a malloc'ed PNG buffer (caller frees). */
HR_API hr_status hr_png_heatmap_mem(const float *values, int rows, int cols, const hr_heatmap_params *p,
                                    unsigned char **png, size_t *len);

/* One embedded picture in the report. An image in section "methods" is shown
 * beside the method whose id or name its title starts with (longest match);
 * rows × cols of "methods" images read as layers × heads, of "patterns" as
 * query × key positions. */
typedef struct {
    const char *title;    /* e.g. "ablation (loss increase)" */
    const char *caption;  /* short explanation, may be NULL */
    const char *png_path; /* file to embed (read and base64-encoded) */
    const char *section;  /* "methods" | "patterns" | "layers" */
} hr_report_image;

/* Writes a self-contained report.html: summary, per-method heatmaps with
 * explanations, a sortable table with one row per head (all scores, ranks,
 * classes), the layer table, and the attention-pattern pictures.
 * heads_json / layers_json are the documents above (layers_json may be
 * NULL). Atomic write. */
HR_API hr_status hr_report_write_html(const char *path, const char *title, const char *heads_json,
                                      const char *layers_json, const hr_report_image *images, int n_images);

/* Everything `headroom heads` writes, into the existing folder dir:
 * heads.json, heads.csv, layers.json (hr_heads_to_json), one labelled
 * heatmap heads_<method>.png per method run (layers x heads, title, axes,
 * colour bar), attention patterns pattern_L<l>_H<h>.png of the `top` most
 * important heads (hr_report_importance_method) on the pattern prompt (BOS
 * + at most HR_PATTERN_TOKENS - 1 of its tokens, the calibration text's
 * when none is given; ctx runs them) with the tokens on both axes, and
 * report.html. Each file is written atomically. *n_pictures (may be NULL)
 * receives the number of PNGs. */
#define HR_PATTERN_TOKENS 64 /* tokens of an attention-pattern picture, BOS included */

typedef struct {
    const char *model_path, *text_path; /* named in heads.json */
    uint64_t seed;
    int top;                    /* attention patterns drawn (default 4) */
    const int32_t *text_tokens; /* the calibration text without BOS (borrowed) */
    size_t n_text_tokens;
    int32_t bos;
    const int32_t *pattern_tokens; /* the pattern prompt without BOS (borrowed); NULL = the calibration
                                           text's first tokens */
    size_t n_pattern_tokens;
    const hr_tokenizer *tok; /* labels the patterns' axes with the tokens (NULL = positions) */
} hr_lab_report_params;

HR_API hr_lab_report_params hr_lab_report_default_params(void);
/* The method that ranks heads by importance in the pictures and the
 * report's findings: the first of ablation, ablation_kl, ablation_greedy,
 * amp that r has, else the first "more important" method, else the first
 * method run; -1 when none. */
HR_API int hr_report_importance_method(const hr_heads_result *r);
HR_API hr_status hr_report_head_lab(const char *dir, const hr_heads_result *r, hr_context *ctx, const hr_model *m,
                                    const hr_lab_report_params *p, int *n_pictures);

/* Everything `headroom patch` writes, into the existing folder dir:
 * patch.json (hr_patch_result_json), one heatmap PNG per matrix the run
 * produced (patch_heads.png, patch_layers.png, patch_mlp.png,
 * patch_resid.png, patch_positions.png, path_senders.png,
 * knockout_heads.png; diverging colours over [-1, 1], NaN grey) and
 * report.html: a self-contained page without script (summary, the
 * heatmaps with one token label per position column, DLA bars for every
 * part, the logit-lens table with token labels), patch.json embedded as
 * inline JSON. Each file is written atomically. *n_pictures (may be NULL)
 * receives the number of PNGs. */
HR_API hr_status hr_report_patch(const char *dir, const hr_patch_result *r, const hr_model *m,
                                 const hr_patch_meta *meta, int *n_pictures);

#ifdef __cplusplus
}
#endif
#endif
