/* Report module: PNG heatmaps decode back (through libpng itself) to the
 * right size and colours; labelled heatmaps keep every cell's colour inside
 * the plot rectangle they declare and carry their labels; the bitmap font
 * draws every character; the key findings equal a brute-force reading of
 * the documents; report.html is self-contained, escaped, and never written
 * from bad input. */
#include "check.h"
#include "headroom/report.h"
#include "report/report_internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <png.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* Decoded RGB image, (height, width, 3). */
typedef struct {
    int w, h;
    unsigned char *px;
} rgb_image;

static int decode_png(const char *path, rgb_image *out) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    out->px = NULL;
    if (!png_image_begin_read_from_file(&im, path)) return 0;
    im.format = PNG_FORMAT_RGB;
    out->w = (int)im.width;
    out->h = (int)im.height;
    out->px = malloc(PNG_IMAGE_SIZE(im));
    if (!out->px || !png_image_finish_read(&im, NULL, out->px, 0, NULL)) {
        png_image_free(&im);
        free(out->px);
        out->px = NULL;
        return 0;
    }
    return 1;
}

static const unsigned char *pixel(const rgb_image *im, int x, int y) { return im->px + ((size_t)y * im->w + x) * 3; }

/* Centre pixel of cell (r, c) of a heatmap drawn with cell px per cell. */
static const unsigned char *cell(const rgb_image *im, int cellpx, int r, int c) {
    return pixel(im, c * cellpx + cellpx / 2, r * cellpx + cellpx / 2);
}

static int same_rgb(const unsigned char *a, const unsigned char *b) { return !memcmp(a, b, 3); }

static double luminance(const unsigned char *p) { return 0.2126 * p[0] + 0.7152 * p[1] + 0.0722 * p[2]; }

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

static int count_of(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* ---- PNG heatmaps ------------------------------------------------------- */

static void png_heatmap_has_the_requested_size(void) {
    float v[3 * 5]; // (3, 5)
    for (int i = 0; i < 15; i++) v[i] = (float)i;
    hr_heatmap_params p = hr_heatmap_default_params();
    p.cell_px = 4;
    const char *path = tmp_path("size.png");
    CHECK(hr_png_heatmap(path, v, 3, 5, &p) == HR_OK, "%s", hr_last_error());
    rgb_image im;
    CHECK(decode_png(path, &im), "libpng cannot decode %s", path);
    if (!im.px) return;
    CHECK(im.w == 5 * 4 && im.h == 3 * 4, "got %d x %d", im.w, im.h);
    /* every pixel of a cell has the cell's colour */
    CHECK(same_rgb(pixel(&im, 4, 0), pixel(&im, 7, 3)), "cell (0,1) is not uniform");
    free(im.px);
}

static void png_heatmap_maps_min_to_first_colour_max_to_last_and_nan_to_grey(void) {
    float v[3 * 4]; // (3, 4): min at (0,0), max at (2,3), NaN at (1,2)
    for (int i = 0; i < 12; i++) v[i] = 0.5f + 0.1f * (float)i;
    v[0] = -3.f;
    v[11] = 7.f;
    v[1 * 4 + 2] = NAN;
    hr_heatmap_params p = hr_heatmap_default_params();
    p.cell_px = 6;
    const char *path = tmp_path("colours.png");
    CHECK(hr_png_heatmap(path, v, 3, 4, &p) == HR_OK, "%s", hr_last_error());
    rgb_image im;
    CHECK(decode_png(path, &im), "decode");
    if (!im.px) return;
    unsigned char first[3], last[3];
    hr_colormap_rgb(0, 0.f, first);
    hr_colormap_rgb(0, 1.f, last);
    const unsigned char *lo = cell(&im, 6, 0, 0), *hi = cell(&im, 6, 2, 3), *nan = cell(&im, 6, 1, 2);
    CHECK(same_rgb(lo, first), "min cell %d,%d,%d", lo[0], lo[1], lo[2]);
    CHECK(same_rgb(hi, last), "max cell %d,%d,%d", hi[0], hi[1], hi[2]);
    /* independent of our table: viridis starts dark purple and ends yellow */
    CHECK(lo[2] > lo[0] && lo[0] > lo[1] && luminance(lo) < 40, "min is not dark purple: %d,%d,%d", lo[0], lo[1],
          lo[2]);
    CHECK(hi[0] > 200 && hi[1] > 200 && hi[2] < 100, "max is not yellow: %d,%d,%d", hi[0], hi[1], hi[2]);
    CHECK(nan[0] == nan[1] && nan[1] == nan[2], "NaN cell is not grey: %d,%d,%d", nan[0], nan[1], nan[2]);
    CHECK(nan[0] == HR_NAN_R, "NaN grey %d", nan[0]);
    const unsigned char *mid = cell(&im, 6, 1, 1);
    CHECK(!same_rgb(mid, lo) && !same_rgb(mid, hi) && !same_rgb(mid, nan), "middle cell has an end colour");
    free(im.px);
}

static void sequential_colormap_gets_brighter_from_low_to_high(void) {
    double prev = -1;
    int ok = 1;
    for (int i = 0; i <= 100; i++) {
        unsigned char c[3];
        hr_colormap_rgb(0, (float)i / 100.f, c);
        double y = luminance(c);
        if (y < prev) ok = 0;
        prev = y;
    }
    CHECK(ok, "luminance is not monotonic");
    unsigned char a[3], b[3], grey[3];
    hr_colormap_rgb(0, -5.f, a);
    hr_colormap_rgb(0, 0.f, b);
    CHECK(same_rgb(a, b), "t below 0 is not clamped");
    hr_colormap_rgb(0, NAN, grey);
    for (int i = 0; i <= 100; i++) {
        hr_colormap_rgb(0, (float)i / 100.f, a);
        hr_colormap_rgb(1, (float)i / 100.f, b);
        if (same_rgb(a, grey) || same_rgb(b, grey)) {
            CHECK(0, "NaN grey also appears in a colormap at t=%d%%", i);
            break;
        }
    }
}

static void diverging_heatmap_is_symmetric_around_zero(void) {
    float v[4] = {-1.f, 0.f, 2.f, -2.f}; // (1, 4)
    hr_heatmap_params p = hr_heatmap_default_params();
    p.diverging = 1;
    p.cell_px = 2;
    const char *path = tmp_path("div.png");
    CHECK(hr_png_heatmap(path, v, 1, 4, &p) == HR_OK, "%s", hr_last_error());
    rgb_image im;
    CHECK(decode_png(path, &im), "decode");
    if (!im.px) return;
    const unsigned char *neg1 = cell(&im, 2, 0, 0), *zero = cell(&im, 2, 0, 1), *pos2 = cell(&im, 2, 0, 2),
                        *neg2 = cell(&im, 2, 0, 3);
    CHECK(zero[0] > 230 && zero[1] > 230 && zero[2] > 230, "0 is not near-white: %d,%d,%d", zero[0], zero[1], zero[2]);
    CHECK(pos2[0] > pos2[2] + 80, "+2 is not red: %d,%d,%d", pos2[0], pos2[1], pos2[2]);
    CHECK(neg2[2] > neg2[0] + 80, "-2 is not blue: %d,%d,%d", neg2[0], neg2[1], neg2[2]);
    unsigned char first[3], last[3], quarter[3];
    hr_colormap_rgb(1, 0.f, first);
    hr_colormap_rgb(1, 1.f, last);
    hr_colormap_rgb(1, 0.25f, quarter);
    CHECK(same_rgb(neg2, first) && same_rgb(pos2, last), "ends are not the colormap's ends");
    CHECK(same_rgb(neg1, quarter), "-1 in [-2, 2] is not at t = 0.25");
    free(im.px);
}

static void explicit_range_clamps_values_outside_it(void) {
    float v[3] = {-10.f, 0.5f, 10.f}; // (3, 1)
    hr_heatmap_params p = hr_heatmap_default_params();
    p.vmin = 0.f;
    p.vmax = 1.f;
    p.cell_px = 3;
    unsigned char *buf = NULL;
    size_t len = 0;
    CHECK(hr_png_heatmap_mem(v, 3, 1, &p, &buf, &len) == HR_OK, "%s", hr_last_error());
    CHECK(buf && len > 8 && !memcmp(buf, "\x89PNG", 4), "not a PNG");
    const char *path = tmp_path("clamp.png");
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(buf, 1, len, f);
        fclose(f);
    }
    hr_png_info info;
    CHECK(hr_png_read_info(buf, len, &info) == HR_OK, "%s", hr_last_error());
    CHECK(info.has_meta && info.rows == 3 && info.cols == 1 && info.vmin == 0.0 && info.vmax == 1.0 && !info.diverging,
          "metadata rows %d cols %d range %g..%g", info.rows, info.cols, info.vmin, info.vmax);
    free(buf);
    rgb_image im;
    CHECK(decode_png(path, &im), "decode");
    if (!im.px) return;
    unsigned char first[3], last[3];
    hr_colormap_rgb(0, 0.f, first);
    hr_colormap_rgb(0, 1.f, last);
    CHECK(same_rgb(cell(&im, 3, 0, 0), first) && same_rgb(cell(&im, 3, 2, 0), last), "out-of-range values not clamped");
    free(im.px);
}

static void large_matrices_get_smaller_cells(void) {
    static float v[1000 * 3]; // (1000, 3)
    for (int i = 0; i < 3000; i++) v[i] = (float)(i % 7);
    hr_heatmap_params p = hr_heatmap_default_params();
    const char *path = tmp_path("tall.png");
    CHECK(hr_png_heatmap(path, v, 1000, 3, &p) == HR_OK, "%s", hr_last_error());
    rgb_image im;
    CHECK(decode_png(path, &im), "decode");
    if (!im.px) return;
    CHECK(im.h < 4096 && im.h % 1000 == 0 && im.w == 3 * (im.h / 1000), "got %d x %d", im.w, im.h);
    free(im.px);
}

static void png_heatmap_rejects_bad_sizes_and_ranges(void) {
    float v[4] = {0, 1, 2, 3};
    const char *path = tmp_path("bad.png");
    hr_heatmap_params p = hr_heatmap_default_params();
    CHECK(hr_png_heatmap(path, v, 0, 4, &p) == HR_ERR_INVALID_ARG, "rows 0");
    CHECK(strstr(hr_last_error(), "positive") != NULL, "message: %s", hr_last_error());
    CHECK(hr_png_heatmap(path, v, 2, -1, &p) == HR_ERR_INVALID_ARG, "cols -1");
    CHECK(hr_png_heatmap(path, v, 5000, 1, &p) == HR_ERR_RANGE, "rows 5000");
    CHECK(hr_png_heatmap(path, v, 1, 1 << 30, &p) == HR_ERR_RANGE, "cols 2^30");
    CHECK(hr_png_heatmap(path, NULL, 2, 2, &p) == HR_ERR_INVALID_ARG, "NULL values");
    p.cell_px = 0;
    CHECK(hr_png_heatmap(path, v, 2, 2, &p) == HR_ERR_INVALID_ARG, "cell_px 0");
    p = hr_heatmap_default_params();
    p.vmin = 2.f;
    p.vmax = 1.f;
    CHECK(hr_png_heatmap(path, v, 2, 2, &p) == HR_ERR_INVALID_ARG, "vmin > vmax");
    p.vmin = NAN;
    CHECK(hr_png_heatmap(path, v, 2, 2, &p) == HR_ERR_INVALID_ARG, "NaN vmin");
    CHECK(!file_exists(path), "a file was written for bad input");
    CHECK(hr_png_heatmap(path, v, 2, 2, NULL) == HR_OK, "NULL params mean defaults: %s", hr_last_error());
}

static void png_heatmap_reports_unwritable_paths(void) {
    float v[4] = {0, 1, 2, 3};
    CHECK(hr_png_heatmap("/nonexistent-headroom-dir/x.png", v, 2, 2, NULL) == HR_ERR_IO, "missing dir");
    CHECK(strstr(hr_last_error(), "/nonexistent-headroom-dir/x.png") != NULL, "message: %s", hr_last_error());
    /* a regular file used as a directory: fails even for root */
    const char *file = tmp_path("plainfile");
    FILE *f = fopen(file, "w");
    if (f) fclose(f);
    char under[600];
    snprintf(under, sizeof under, "%s/x.png", file);
    CHECK(hr_png_heatmap(under, v, 2, 2, NULL) == HR_ERR_IO, "file as dir");
}

static void all_nan_and_constant_matrices_still_draw(void) {
    float nan4[4] = {NAN, NAN, NAN, NAN}, c4[4] = {3, 3, 3, 3};
    unsigned char *buf = NULL;
    size_t len;
    CHECK(hr_png_heatmap_mem(nan4, 2, 2, NULL, &buf, &len) == HR_OK, "%s", hr_last_error());
    free(buf);
    buf = NULL;
    CHECK(hr_png_heatmap_mem(c4, 2, 2, NULL, &buf, &len) == HR_OK, "%s", hr_last_error());
    free(buf);
}

/* ---- labelled heatmaps and the font ------------------------------------- */

/* Every cell of a labelled plot has its colour at the place the plot
 * rectangle (headroom:plot) says, the labels are in the text chunks, and
 * there is ink left of and below the cells (the tick labels) and right of
 * them (the colour bar). */
static void labelled_heatmap_keeps_cells_in_its_plot_rectangle_and_carries_its_labels(void) {
    float v[3 * 4]; // (3, 4)
    for (int i = 0; i < 12; i++) v[i] = (float)i;
    v[5] = NAN;
    const char *xt[4] = {"<s>", "\xc2\xb7Once", "upon", "a-very-long-token-label"};
    hr_heatmap_params p = hr_heatmap_default_params();
    p.cell_px = 10;
    p.title = "score of heads";
    p.xlabel = "key token";
    p.ylabel = "layer";
    p.xticks = xt;
    const char *path = tmp_path("labelled.png");
    CHECK(hr_png_heatmap(path, v, 3, 4, &p) == HR_OK, "%s", hr_last_error());
    char *buf = slurp(path);
    struct stat st;
    hr_png_info info;
    CHECK(buf && stat(path, &st) == 0 && hr_png_read_info((unsigned char *)buf, (size_t)st.st_size, &info) == HR_OK,
          "%s", hr_last_error());
    free(buf);
    rgb_image im;
    CHECK(decode_png(path, &im), "decode");
    if (!im.px) return;
    printf("    %d x %d pixels, cells at (%d, %d) %d x %d\n", im.w, im.h, info.plot[0], info.plot[1], info.plot[2],
           info.plot[3]);
    CHECK(info.has_meta && info.rows == 3 && info.cols == 4 && info.plot[2] == 40 && info.plot[3] == 30 &&
              info.plot[0] > 10 && info.plot[1] > 10 && im.w > info.plot[0] + 40 && im.h > info.plot[1] + 30,
          "plot rectangle %d %d %d %d in %d x %d", info.plot[0], info.plot[1], info.plot[2], info.plot[3], im.w, im.h);
    int bad = 0;
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++) {
            unsigned char want[3];
            hr_colormap_value(0, 0, 11, v[r * 4 + c], want);
            bad += !same_rgb(pixel(&im, info.plot[0] + c * 10 + 5, info.plot[1] + r * 10 + 5), want);
        }
    CHECK(bad == 0, "%d cells off their colour", bad);
    CHECK(!strcmp(info.title, "score of heads") && !strcmp(info.xlabel, "key token") && !strcmp(info.ylabel, "layer"),
          "labels '%s' '%s' '%s'", info.title, info.xlabel, info.ylabel);
    CHECK(info.yticks && !strcmp(info.yticks, "0\n1\n2"), "row ticks '%s'", info.yticks ? info.yticks : "(none)");
    CHECK(info.xticks && !strcmp(info.xticks, "<s>\n\xc2\xb7Once\nupon\na-very-long."), "column ticks '%s' (cut at 12)",
          info.xticks ? info.xticks : "(none)");
    int ink_left = 0, ink_below = 0, ink_right = 0;
    for (int y = 0; y < im.h; y++)
        for (int x = 0; x < im.w; x++) {
            const unsigned char *q = pixel(&im, x, y);
            if (q[0] > 200 && q[1] > 200 && q[2] > 200) continue;
            ink_left += x < info.plot[0] - 2 && y >= info.plot[1] && y < info.plot[1] + info.plot[3];
            ink_below += y > info.plot[1] + info.plot[3] + 1;
            ink_right += x > info.plot[0] + info.plot[2] + 2;
        }
    CHECK(ink_left > 20 && ink_below > 40 && ink_right > 100, "ink left %d, below %d, right %d", ink_left, ink_below,
          ink_right);
    hr_png_info_free(&info);
    free(im.px);
    /* shrinking keeps the plot within max_plot_px */
    static float big[200 * 100];
    p = hr_heatmap_default_params();
    p.title = "big";
    unsigned char *png = NULL;
    size_t len = 0;
    CHECK(hr_png_heatmap_mem(big, 200, 100, &p, &png, &len) == HR_OK, "%s", hr_last_error());
    CHECK(png && hr_png_read_info(png, len, &info) == HR_OK && info.plot[3] <= 600 &&
              info.plot[3] == 200 * (info.plot[3] / 200),
          "200 rows drawn %d px high", info.plot[3]);
    hr_png_info_free(&info);
    free(png);
}

/* Every printable ASCII character and the middle dot have ink, no two the
 * same bitmap; other characters draw as '?'. */
static void the_bitmap_font_draws_every_character_differently(void) {
    enum { W = 8, HH = 8 };
    static unsigned char px[97][HH * W * 3];
    unsigned char ink[3] = {0, 0, 0};
    char s[4];
    for (int i = 0; i < 97; i++) {
        memset(px[i], 255, sizeof px[i]);
        hr_canvas cv = {px[i], W, HH};
        if (i < 95) s[0] = (char)(32 + i), s[1] = 0;
        else if (i == 95) memcpy(s, "\xc2\xb7", 3);
        else memcpy(s, "\xe2\x82", 3); /* a broken sequence */
        hr_font_draw(&cv, 0, 0, s, 1, ink, 0);
    }
    int blank = 0, same = 0;
    for (int i = 1; i < 96; i++) {
        bool any = false;
        for (size_t k = 0; k < sizeof px[i]; k++) any |= px[i][k] != 255;
        blank += !any;
        for (int j = 0; j < i; j++) same += !memcmp(px[i], px[j], sizeof px[i]);
    }
    CHECK(blank == 0 && same == 0, "%d blank glyphs, %d pairs drawn alike", blank, same);
    CHECK(!memcmp(px[96], px['?' - 32], sizeof px[96]), "a broken UTF-8 sequence is not drawn as '?'");
    CHECK(hr_font_chars("a\xc2\xb7"
                        "b") == 3 &&
              hr_font_width("abc", 2) == (3 * HR_FONT_ADVANCE - 1) * 2,
          "widths");
    /* upright text: the same ink, turned */
    unsigned char flat[8 * 8 * 3], up[8 * 8 * 3];
    memset(flat, 255, sizeof flat);
    memset(up, 255, sizeof up);
    hr_canvas a = {flat, 8, 8}, b = {up, 8, 8};
    hr_font_draw(&a, 0, 0, "F", 1, ink, 0);
    hr_font_draw(&b, 0, 7, "F", 1, ink, 1);
    int diff = 0;
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 5; x++) diff += flat[(y * 8 + x) * 3] != up[((7 - x) * 8 + y) * 3];
    CHECK(diff == 0, "upright 'F' differs from the turned flat one in %d pixels", diff);
}

/* ---- key findings ---------------------------------------------------------- */

static double rnd_unit(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return (*s >> 8) / 16777216.0;
}

/* A 6 x 4 head lab with ablation (the importance), sink (classes, via
 * hr_heads_class_info's threshold), retrieval all 0 (flat) and layer KLs:
 * the findings equal what sorting and filtering the documents by hand
 * gives. */
static void findings_equal_a_brute_force_reading_of_the_documents(void) {
    enum { NL = 6, NH = 4 };
    uint32_t seed = 7;
    double abl[NL * NH], sink[NL * NH], akl[NL], mkl[NL];
    double sink_th = -1;
    for (int i = 0; i < hr_heads_n_classes(); i++)
        if (!strcmp(hr_heads_class_info(i)->id, "sink")) sink_th = hr_heads_class_info(i)->threshold;
    CHECK(sink_th > 0, "no sink class");
    cJSON *h = cJSON_CreateObject(), *ms = cJSON_AddArrayToObject(h, "methods"),
          *hs = cJSON_AddArrayToObject(h, "heads");
    const char *ids[3] = {"ablation", "sink", "retrieval"},
               *higher[3] = {"more important", "more sink", "more retrieval"};
    for (int m = 0; m < 3; m++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", ids[m]);
        cJSON_AddStringToObject(o, "higher", higher[m]);
        cJSON_AddItemToArray(ms, o);
    }
    for (int i = 0; i < NL * NH; i++) {
        abl[i] = rnd_unit(&seed), sink[i] = rnd_unit(&seed);
        cJSON *o = cJSON_CreateObject(), *s = cJSON_AddObjectToObject(o, "scores"),
              *c = cJSON_AddArrayToObject(o, "classes");
        cJSON_AddNumberToObject(o, "layer", i / NH);
        cJSON_AddNumberToObject(o, "head", i % NH);
        cJSON_AddNumberToObject(s, "ablation", abl[i]);
        cJSON_AddNumberToObject(s, "sink", sink[i]);
        cJSON_AddNumberToObject(s, "retrieval", 0);
        if (sink[i] >= sink_th) cJSON_AddItemToArray(c, cJSON_CreateString("sink"));
        cJSON_AddItemToArray(hs, o);
    }
    cJSON *l = cJSON_CreateObject(), *ls = cJSON_AddArrayToObject(l, "layers");
    for (int k = 0; k < NL; k++) {
        akl[k] = k == 4 ? 0.01 : 0.2 + rnd_unit(&seed), mkl[k] = 0.3 + rnd_unit(&seed);
        cJSON *o = cJSON_CreateObject(), *s = cJSON_AddObjectToObject(o, "scores");
        cJSON_AddNumberToObject(o, "layer", k);
        cJSON_AddNumberToObject(s, "attn_kl", akl[k]);
        cJSON_AddNumberToObject(s, "mlp_kl", mkl[k]);
        cJSON_AddItemToArray(ls, o);
    }
    cJSON *f = NULL;
    CHECK(hr_report_findings(h, l, &f) == HR_OK && f, "%s", hr_last_error());
    /* importance: the 5 highest ablation scores, best first */
    const cJSON *imp = cJSON_GetObjectItem(f, "importance"), *top = cJSON_GetObjectItem(imp, "top");
    CHECK(imp && !strcmp(cJSON_GetObjectItem(imp, "method")->valuestring, "ablation"), "importance method");
    bool used[NL * NH] = {false};
    for (int k = 0; k < 5; k++) {
        int best = -1;
        for (int i = 0; i < NL * NH; i++)
            if (!used[i] && (best < 0 || abl[i] > abl[best])) best = i;
        used[best] = true;
        const cJSON *t = cJSON_GetArrayItem(top, k);
        CHECK(t && cJSON_GetObjectItem(t, "layer")->valueint == best / NH &&
                  cJSON_GetObjectItem(t, "head")->valueint == best % NH,
              "important head %d is not %d.%d", k, best / NH, best % NH);
    }
    CHECK(cJSON_GetArraySize(top) == 5, "%d important heads", cJSON_GetArraySize(top));
    /* classes: sink's members counted by its threshold */
    int members = 0;
    for (int i = 0; i < NL * NH; i++) members += sink[i] >= sink_th;
    const cJSON *c, *sink_row = NULL;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(f, "classes")) if (!strcmp(cJSON_GetObjectItem(c, "class")->valuestring,
                                                                         "sink")) sink_row = c;
    CHECK(sink_row && cJSON_GetObjectItem(sink_row, "count")->valueint == members &&
              strstr(cJSON_GetObjectItem(sink_row, "rule")->valuestring, "0.5"),
          "sink class: %d members by hand", members);
    /* flat: retrieval only */
    const cJSON *flat = cJSON_GetObjectItem(f, "flat");
    CHECK(cJSON_GetArraySize(flat) == 1 &&
              !strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(flat, 0), "method")->valuestring, "retrieval"),
          "flat methods: %d", cJSON_GetArraySize(flat));
    /* layers: attention candidates lowest first, layer 4 droppable (0.01 <= 0.05) */
    const cJSON *attn = NULL;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(f, "layers")) if (!strcmp(cJSON_GetObjectItem(c, "kind")->valuestring,
                                                                        "attention")) attn = c;
    const cJSON *cand = cJSON_GetObjectItem(attn, "candidates");
    double prev = -1;
    bool sorted = cJSON_GetArraySize(cand) == 3;
    cJSON_ArrayForEach(c, cand) {
        double s = cJSON_GetObjectItem(c, "score")->valuedouble;
        int k = cJSON_GetObjectItem(c, "layer")->valueint;
        sorted &= s >= prev && s == akl[k];
        for (int j = 0; j < NL; j++) sorted &= !(akl[j] < s && j != k && prev < akl[j]);
        prev = s;
    }
    CHECK(attn && sorted, "attention candidates are not the 3 lowest attn_kl in order");
    const cJSON *first = cJSON_GetArrayItem(cand, 0);
    CHECK(first && cJSON_GetObjectItem(first, "layer")->valueint == 4 &&
              cJSON_IsTrue(cJSON_GetObjectItem(first, "droppable")) &&
              cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetArrayItem(cand, 1), "droppable")),
          "layer 4 (KL 0.01) droppable, the next not");
    cJSON_Delete(f);
    cJSON_Delete(h);
    cJSON_Delete(l);
}

/* ---- report.html ---------------------------------------------------------- */

#define HOSTILE "</script><img src=x onerror=alert(1)>"

static const char *k_heads =
    "{\"model\": {\"path\": \"" HOSTILE "\", \"arch\": \"llama\", \"n_layers\": 2, \"n_heads\": [2, 2],"
    " \"n_kv_heads\": [1, 1], \"head_dim\": 8},"
    " \"text\": {\"path\": \"t.txt\", \"n_tokens\": 64, \"seed\": 1},"
    " \"methods\": [{\"id\": \"ablation\", \"name\": \"Ablation\", \"paper\": \"Michel et al. 2019\","
    " \"formula\": \"loss(-h) - loss\", \"good_for\": \"importance\", \"higher\": \"more important\"}],"
    " \"heads\": ["
    "  {\"layer\": 0, \"head\": 0, \"scores\": {\"ablation\": 0.5}, \"ranks\": {\"ablation\": 2}, \"classes\": "
    "[\"prev-token\"]},"
    "  {\"layer\": 0, \"head\": 1, \"scores\": {\"ablation\": null}, \"ranks\": {\"ablation\": null}, \"classes\": []},"
    "  {\"layer\": 1, \"head\": 0, \"scores\": {\"ablation\": 0.9}, \"ranks\": {\"ablation\": 1}, \"classes\": []},"
    "  {\"layer\": 1, \"head\": 1, \"scores\": {\"ablation\": 0.1}, \"ranks\": {\"ablation\": 3}, \"classes\": "
    "[\"<b>x</b>\"]}"
    " ]}";

static const char *k_layers =
    "{\"metrics\": [{\"id\": \"drop\", \"name\": \"Layer drop\", \"paper\": \"p\", \"formula\": \"f\"}],"
    " \"layers\": [{\"layer\": 0, \"scores\": {\"drop\": 1.5}}, {\"layer\": 1, \"scores\": {\"drop\": null}}]}";

static int write_method_png(const char *path) {
    float v[4] = {0.5f, NAN, 0.9f, 0.1f}; // (2 layers, 2 heads)
    return hr_png_heatmap(path, v, 2, 2, NULL) == HR_OK;
}

static int b64val(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes base64 up to the first non-alphabet character; returns bytes. */
static size_t b64decode(const char *s, unsigned char *out, size_t cap) {
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (; b64val(*s) >= 0; s++) {
        acc = (acc << 6) | (unsigned)b64val(*s);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n < cap) out[n] = (unsigned char)(acc >> bits);
            n++;
        }
    }
    return n;
}

static void report_is_self_contained_and_embeds_images_exactly(void) {
    const char *png = tmp_path("ablation.png"), *html = tmp_path("report.html");
    CHECK(write_method_png(png), "%s", hr_last_error());
    hr_report_image ims[] = {{"Ablation (loss increase)", "caption <i>", png, "methods"},
                             {"pattern L0H0", NULL, png, "patterns"}};
    CHECK(hr_report_write_html(html, "Heads of <stories>", k_heads, k_layers, ims, 2) == HR_OK, "%s", hr_last_error());
    char *s = slurp(html);
    CHECK(s != NULL, "no report written");
    if (!s) return;
    CHECK(!strstr(s, "http://") && !strstr(s, "https://"), "network reference in report");
    CHECK(!strstr(s, "src=\"//") && !strstr(s, "url("), "protocol-relative or CSS url reference");
    CHECK(strstr(s, "id=\"heads-table\"") != NULL, "no heads table");
    CHECK(strstr(s, "<title>Heads of &lt;stories&gt;</title>") != NULL, "title not escaped");
    CHECK(count_of(s, "data:image/png;base64,") == 2, "expected 2 data URIs");
    /* the hostile string must not close the JSON script element */
    CHECK(count_of(s, "</script>") == 4, "found %d </script> (expected 4 script elements)", count_of(s, "</script>"));
    CHECK(strstr(s, "\\u003c/script>\\u003cimg src=x") != NULL, "hostile path not \\u003c-escaped");
    /* the embedded picture decodes back to the very same PNG bytes */
    char *png_bytes = slurp(png);
    FILE *f = fopen(png, "rb");
    long png_len = 0;
    if (f) {
        fseek(f, 0, SEEK_END);
        png_len = ftell(f);
        fclose(f);
    }
    const char *uri = strstr(s, "data:image/png;base64,");
    if (uri && png_bytes && png_len > 0) {
        unsigned char *dec = malloc((size_t)png_len + 16);
        size_t n = b64decode(uri + strlen("data:image/png;base64,"), dec, (size_t)png_len + 16);
        CHECK(n == (size_t)png_len && !memcmp(dec, png_bytes, n), "embedded image differs (%zu vs %ld bytes)", n,
              png_len);
        free(dec);
    }
    /* the embedded heads document still parses and holds all 4 heads */
    const char *start = strstr(s, "id=\"heads-data\">");
    CHECK(start != NULL, "no heads-data element");
    if (start) {
        start += strlen("id=\"heads-data\">");
        const char *end = strstr(start, "</script>");
        char *doc = strndup(start, (size_t)(end - start));
        CHECK(count_of(doc, "\"layer\"") == 4, "heads in embedded JSON: %d", count_of(doc, "\"layer\""));
        CHECK(!strchr(doc, '<'), "raw '<' inside embedded JSON");
        free(doc);
    }
    free(png_bytes);
    free(s);
}

static void report_without_layers_or_images_is_still_written(void) {
    const char *html = tmp_path("minimal.html");
    CHECK(hr_report_write_html(html, NULL, "{\"heads\": []}", NULL, NULL, 0) == HR_OK, "%s", hr_last_error());
    char *s = slurp(html);
    CHECK(s && strstr(s, "id=\"layers-data\">null</script>"), "layers not null");
    CHECK(s && strstr(s, "<title>headroom report</title>"), "default title");
    free(s);
}

static void report_rejects_invalid_json_and_writes_nothing(void) {
    const char *html = tmp_path("never.html");
    struct {
        const char *heads, *layers;
        const char *why;
    } bad[] = {
        {"{\"heads\": [", NULL, "not valid JSON"},
        {"{\"heads\": {}}", NULL, "\"heads\" array"},
        {"[1, 2]", NULL, "\"heads\" array"},
        {"{\"heads\": [1]}", NULL, "numeric \"layer\""},
        {"{\"heads\": [{\"layer\": 0}]}", NULL, "\"head\""},
        {"{\"heads\": []} trailing", NULL, "not valid JSON"},
        {"{\"heads\": []}", "{\"layers\": 3}", "\"layers\" array"},
        {"{\"heads\": []}", "nope", "layers.json"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hr_status st = hr_report_write_html(html, "t", bad[i].heads, bad[i].layers, NULL, 0);
        CHECK(st == HR_ERR_FORMAT, "case %zu: status %d", i, (int)st);
        CHECK(strstr(hr_last_error(), bad[i].why) != NULL, "case %zu: message '%s'", i, hr_last_error());
    }
    CHECK(hr_report_write_html(html, "t", NULL, NULL, NULL, 0) == HR_ERR_INVALID_ARG, "NULL heads");
    CHECK(!file_exists(html), "a report was written from invalid input");
}

static void failed_report_leaves_the_previous_file_untouched(void) {
    const char *html = tmp_path("keep.html");
    CHECK(hr_report_write_html(html, "first", "{\"heads\": []}", NULL, NULL, 0) == HR_OK, "%s", hr_last_error());
    char *before = slurp(html);
    CHECK(hr_report_write_html(html, "second", "{bad", NULL, NULL, 0) < 0, "bad JSON accepted");
    char *after = slurp(html);
    CHECK(before && after && !strcmp(before, after), "previous report changed");
    free(before);
    free(after);
    DIR *d = opendir(g_dir);
    struct dirent *e;
    int tmp_left = 0;
    while (d && (e = readdir(d))) tmp_left += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    CHECK(tmp_left == 0, "%d temporary files left behind", tmp_left);
}

static void report_rejects_bad_images(void) {
    const char *html = tmp_path("img.html"), *notpng = tmp_path("not.png"), *png = tmp_path("ok.png");
    FILE *f = fopen(notpng, "w");
    if (f) {
        fputs("GIF89a not a png", f);
        fclose(f);
    }
    CHECK(write_method_png(png), "%s", hr_last_error());
    hr_report_image missing = {"t", NULL, tmp_path("missing.png"), "methods"};
    CHECK(hr_report_write_html(html, "t", "{\"heads\": []}", NULL, &missing, 1) == HR_ERR_IO, "missing image");
    hr_report_image wrong = {"t", NULL, notpng, "patterns"};
    CHECK(hr_report_write_html(html, "t", "{\"heads\": []}", NULL, &wrong, 1) == HR_ERR_FORMAT, "not a PNG");
    CHECK(strstr(hr_last_error(), "not.png") != NULL, "message names the file: %s", hr_last_error());
    hr_report_image section = {"t", NULL, png, "pictures"};
    CHECK(hr_report_write_html(html, "t", "{\"heads\": []}", NULL, &section, 1) == HR_ERR_INVALID_ARG, "bad section");
    CHECK(hr_report_write_html(html, "t", "{\"heads\": []}", NULL, NULL, 2) == HR_ERR_INVALID_ARG, "NULL images");
    CHECK(hr_report_write_html(html, "t", "{\"heads\": []}", NULL, &missing, -1) == HR_ERR_INVALID_ARG, "n_images < 0");
    CHECK(!file_exists(html), "a report was written despite a bad image");
}

/* A 4x2 grey PNG whose headroom:rows text claims `rows` cells. */
static int write_png_claiming_rows(const char *path, const char *rows) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return 0;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, 4, 2, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_text t[5] = {
        {.key = "headroom:rows", .text = (char *)rows},
        {.key = "headroom:cols", .text = "2"},
        {.key = "headroom:vmin", .text = "0"},
        {.key = "headroom:vmax", .text = "1"},
        {.key = "headroom:colormap", .text = "sequential"},
    };
    for (int i = 0; i < 5; i++) t[i].compression = PNG_TEXT_COMPRESSION_NONE;
    png_set_text(png, info, t, 5);
    png_write_info(png, info);
    unsigned char row[4] = {10, 20, 30, 40};
    png_write_row(png, row);
    png_write_row(png, row);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return fclose(f) == 0;
}

static void png_metadata_is_trusted_only_when_it_fits_the_pixels(void) {
    const char *p = tmp_path("claims.png");
    const char *claims[] = {"2", "1000000000", "-3", "2x"};
    int expect[] = {1, 0, 0, 0};
    for (int i = 0; i < 4; i++) {
        CHECK(write_png_claiming_rows(p, claims[i]), "cannot write test PNG");
        char *buf = slurp(p);
        FILE *f = fopen(p, "rb");
        long n = 0;
        if (f) {
            fseek(f, 0, SEEK_END);
            n = ftell(f);
            fclose(f);
        }
        hr_png_info info;
        CHECK(buf && hr_png_read_info((unsigned char *)buf, (size_t)n, &info) == HR_OK, "%s", hr_last_error());
        CHECK(info.has_meta == expect[i], "rows '%s': has_meta %d", claims[i], info.has_meta);
        /* truncated: a clear error, not a crash */
        if (buf && i == 0) {
            CHECK(hr_png_read_info((unsigned char *)buf, 40, &info) == HR_ERR_FORMAT, "truncated PNG accepted");
            CHECK(strstr(hr_last_error(), "PNG") != NULL, "message: %s", hr_last_error());
        }
        free(buf);
    }
}

static void report_fails_clearly_on_unwritable_output_dir(void) {
    const char *out = "/nonexistent-headroom-dir/report.html";
    CHECK(hr_report_write_html(out, "t", "{\"heads\": []}", NULL, NULL, 0) == HR_ERR_IO, "missing dir");
    CHECK(strstr(hr_last_error(), out) != NULL, "message: %s", hr_last_error());
    char under[600];
    snprintf(under, sizeof under, "%s/report.html", tmp_path("plainfile"));
    FILE *f = fopen(tmp_path("plainfile"), "w");
    if (f) fclose(f);
    CHECK(hr_report_write_html(under, "t", "{\"heads\": []}", NULL, NULL, 0) == HR_ERR_IO, "file as dir");
}

int main(void) {
    if (hr_t_scratch_dir(g_dir, sizeof g_dir, "test_report")) return 1;
    RUN(png_heatmap_has_the_requested_size);
    RUN(labelled_heatmap_keeps_cells_in_its_plot_rectangle_and_carries_its_labels);
    RUN(the_bitmap_font_draws_every_character_differently);
    RUN(findings_equal_a_brute_force_reading_of_the_documents);
    RUN(png_heatmap_maps_min_to_first_colour_max_to_last_and_nan_to_grey);
    RUN(sequential_colormap_gets_brighter_from_low_to_high);
    RUN(diverging_heatmap_is_symmetric_around_zero);
    RUN(explicit_range_clamps_values_outside_it);
    RUN(large_matrices_get_smaller_cells);
    RUN(png_heatmap_rejects_bad_sizes_and_ranges);
    RUN(png_heatmap_reports_unwritable_paths);
    RUN(all_nan_and_constant_matrices_still_draw);
    RUN(report_is_self_contained_and_embeds_images_exactly);
    RUN(report_without_layers_or_images_is_still_written);
    RUN(report_rejects_invalid_json_and_writes_nothing);
    RUN(failed_report_leaves_the_previous_file_untouched);
    RUN(report_rejects_bad_images);
    RUN(png_metadata_is_trusted_only_when_it_fits_the_pixels);
    RUN(report_fails_clearly_on_unwritable_output_dir);
    hr_t_rm_rf(g_dir);
    TEST_MAIN_END();
}
