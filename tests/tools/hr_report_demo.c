/* Writes a demo report from synthetic head-lab data (no model needed), for
 * the browser test and for looking at the page by hand.
 *
 *   hr_report_demo OUT_DIR [N_LAYERS N_HEADS]
 *       writes OUT_DIR/{heads.json, layers.json, *.png, report.html}
 *   hr_report_demo --png-stats FILE.png
 *       prints "WIDTH HEIGHT DISTINCT_COLOURS" (to tell a blank screenshot)
 *
 * The model path deliberately holds markup, so a page that renders it as
 * HTML instead of text shows up in the browser test. */
#include "headroom/report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOSTILE_PATH "models/</script><img src=x onerror=alert(1)>.bin"

static uint32_t g_rng = 12345u;
static float frand(void) {
    g_rng = g_rng * 1664525u + 1013904223u;
    return (float)(g_rng >> 8) / (float)(1u << 24);
}

typedef struct {
    const char *id, *name, *paper, *formula, *good_for, *higher;
    int diverging;
} method;

static const method k_methods[] = {
    {"ablation", "Ablation", "Michel, Levy & Neubig 2019, Are Sixteen Heads Really Better than One?",
     "L(model with head h zeroed) - L(model)", "finding heads the model cannot do without", "more important", 1},
    {"entropy", "Attention entropy", "Clark et al. 2019, What Does BERT Look At?",
     "mean over queries of -sum_k a(q,k) log a(q,k)", "telling broad (averaging) heads from sharp ones", "more diffuse",
     0},
    {"prev_token", "Previous-token score", "Olsson et al. 2022, In-context Learning and Induction Heads",
     "mean over queries q of a(q, q-1)", "spotting heads that copy from the previous token", "more previous-token", 0},
};
#define N_METHODS (int)(sizeof k_methods / sizeof k_methods[0])

/* rank 1 = highest; NaN gets no rank (0). */
static void ranks_of(const float *v, int n, int *rank) {
    for (int i = 0; i < n; i++) {
        rank[i] = 0;
        if (isnan(v[i])) continue;
        int r = 1;
        for (int j = 0; j < n; j++) r += !isnan(v[j]) && (v[j] > v[i] || (v[j] == v[i] && j < i));
        rank[i] = r;
    }
}

static void add_num_or_null(cJSON *o, const char *k, double v, int valid) {
    cJSON_AddItemToObject(o, k, valid ? cJSON_CreateNumber(v) : cJSON_CreateNull());
}

static int write_text(const char *path, const char *s) {
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    int ok = fputs(s, f) >= 0;
    return fclose(f) == 0 && ok;
}

static char *heads_doc(int nl, int nh, float *scores /* (N_METHODS, nl * nh) */) {
    int n = nl * nh;
    for (int h = 0; h < n; h++) {
        int layer = h / nh;
        scores[0 * n + h] = 0.9f * frand() * frand() - 0.15f + (layer == 0 ? 0.3f : 0.f);
        scores[1 * n + h] = 0.3f + 2.2f * frand();
        scores[2 * n + h] = (h % 5 == 1) ? 0.7f + 0.3f * frand() : 0.2f * frand();
    }
    scores[1] = NAN;                                         /* one missing score: drawn grey, shown as a dash */
    int *rank = malloc(sizeof(int) * (size_t)n * N_METHODS); // (N_METHODS, n)
    for (int m = 0; m < N_METHODS; m++) ranks_of(scores + m * n, n, rank + m * n);

    cJSON *root = cJSON_CreateObject(), *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "path", HOSTILE_PATH);
    cJSON_AddStringToObject(model, "arch", "llama");
    cJSON_AddNumberToObject(model, "n_layers", nl);
    int *hv = malloc(sizeof(int) * (size_t)nl), *kv = malloc(sizeof(int) * (size_t)nl);
    for (int l = 0; l < nl; l++) hv[l] = nh, kv[l] = nh > 1 ? nh / 2 : 1;
    cJSON_AddItemToObject(model, "n_heads", cJSON_CreateIntArray(hv, nl));
    cJSON_AddItemToObject(model, "n_kv_heads", cJSON_CreateIntArray(kv, nl));
    cJSON_AddNumberToObject(model, "head_dim", 8);
    free(hv);
    free(kv);
    cJSON *text = cJSON_AddObjectToObject(root, "text");
    cJSON_AddStringToObject(text, "path", "data/text/tinystories_val.txt");
    cJSON_AddNumberToObject(text, "n_tokens", 512);
    cJSON_AddNumberToObject(text, "seed", 42);
    cJSON *methods = cJSON_AddArrayToObject(root, "methods");
    for (int m = 0; m < N_METHODS; m++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", k_methods[m].id);
        cJSON_AddStringToObject(o, "name", k_methods[m].name);
        cJSON_AddStringToObject(o, "paper", k_methods[m].paper);
        cJSON_AddStringToObject(o, "formula", k_methods[m].formula);
        cJSON_AddStringToObject(o, "good_for", k_methods[m].good_for);
        cJSON_AddStringToObject(o, "higher", k_methods[m].higher);
        cJSON_AddItemToArray(methods, o);
    }
    cJSON *heads = cJSON_AddArrayToObject(root, "heads");
    for (int h = 0; h < n; h++) {
        cJSON *o = cJSON_CreateObject(), *sc, *rk, *cl;
        cJSON_AddNumberToObject(o, "layer", h / nh);
        cJSON_AddNumberToObject(o, "head", h % nh);
        sc = cJSON_AddObjectToObject(o, "scores");
        rk = cJSON_AddObjectToObject(o, "ranks");
        for (int m = 0; m < N_METHODS; m++) {
            float v = scores[m * n + h];
            add_num_or_null(sc, k_methods[m].id, v, !isnan(v));
            add_num_or_null(rk, k_methods[m].id, rank[m * n + h], rank[m * n + h] > 0);
        }
        cl = cJSON_AddArrayToObject(o, "classes");
        if (scores[2 * n + h] > 0.6f) cJSON_AddItemToArray(cl, cJSON_CreateString("previous-token"));
        if (scores[1 * n + h] < 0.6f) cJSON_AddItemToArray(cl, cJSON_CreateString("sharp"));
        if (rank[h] > 0 && rank[h] <= 3) cJSON_AddItemToArray(cl, cJSON_CreateString("important"));
        cJSON_AddItemToArray(heads, o);
    }
    free(rank);
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    return s;
}

static char *layers_doc(int nl, float *lm /* (nl, 2) */) {
    cJSON *root = cJSON_CreateObject(), *metrics = cJSON_AddArrayToObject(root, "metrics");
    const char *ids[2] = {"drop", "cos"}, *names[2] = {"Layer drop (loss increase)", "Residual cosine"};
    const char *papers[2] = {"Gromov et al. 2024, The Unreasonable Ineffectiveness of the Deeper Layers",
                             "Men et al. 2024, ShortGPT"};
    const char *formulas[2] = {"L(skip layer) - L", "mean cos(x_in, x_out)"};
    for (int k = 0; k < 2; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", ids[k]);
        cJSON_AddStringToObject(o, "name", names[k]);
        cJSON_AddStringToObject(o, "paper", papers[k]);
        cJSON_AddStringToObject(o, "formula", formulas[k]);
        cJSON_AddItemToArray(metrics, o);
    }
    cJSON *layers = cJSON_AddArrayToObject(root, "layers");
    for (int l = 0; l < nl; l++) {
        lm[l * 2 + 0] = 2.0f / (float)(l + 1) * (0.8f + 0.4f * frand());
        lm[l * 2 + 1] = 0.5f + 0.45f * (float)l / (float)(nl > 1 ? nl - 1 : 1);
        cJSON *o = cJSON_CreateObject(), *sc;
        cJSON_AddNumberToObject(o, "layer", l);
        sc = cJSON_AddObjectToObject(o, "scores");
        cJSON_AddNumberToObject(sc, "drop", lm[l * 2 + 0]);
        cJSON_AddNumberToObject(sc, "cos", lm[l * 2 + 1]);
        cJSON_AddItemToArray(layers, o);
    }
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    return s;
}

/* Causal attention of one synthetic head: (t, t), NaN above the diagonal. */
static void pattern(float *a, int t, int prev_token) {
    for (int q = 0; q < t; q++) {
        float sum = 0;
        for (int k = 0; k < t; k++) {
            float w = k > q        ? NAN
                      : prev_token ? (k == q - 1 || (q == 0 && k == 0) ? 8.f : 0.2f * frand())
                                   : (k == 0 ? 3.f : 0.5f + frand());
            a[q * t + k] = w;
            if (!isnan(w)) sum += w;
        }
        for (int k = 0; k <= q; k++) a[q * t + k] /= sum;
    }
}

static int demo(const char *dir, int nl, int nh) {
    char p[12][1024];
    int n = nl * nh;
    float *scores = malloc(sizeof(float) * (size_t)n * N_METHODS); // (N_METHODS, nl, nh)
    float lm[2 * 64];                                              // (nl, 2)
    enum { T = 24 };
    float att[T * T]; // (T, T)
    char *hj = heads_doc(nl, nh, scores), *lj = layers_doc(nl, lm);
    snprintf(p[0], sizeof p[0], "%s/heads.json", dir);
    snprintf(p[1], sizeof p[1], "%s/layers.json", dir);
    int ok = write_text(p[0], hj) && write_text(p[1], lj);
    hr_report_image ims[8];
    const char *titles[N_METHODS] = {"Ablation (loss increase)", "Attention entropy (nats)", "Previous-token score"};
    const char *caps[N_METHODS] = {
        "How much the loss rises when the head's output is zeroed; red = needed, blue = harmful.",
        "Low entropy = the head looks at few tokens.", "Share of attention on the token just before the query."};
    int ni = 0;
    for (int m = 0; ok && m < N_METHODS; m++, ni++) {
        hr_heatmap_params hp = hr_heatmap_default_params();
        hp.diverging = k_methods[m].diverging;
        snprintf(p[2 + m], sizeof p[2 + m], "%s/%s.png", dir, k_methods[m].id);
        ok = hr_png_heatmap(p[2 + m], scores + m * n, nl, nh, &hp) == HR_OK;
        ims[ni] = (hr_report_image){titles[m], caps[m], p[2 + m], "methods"};
    }
    snprintf(p[6], sizeof p[6], "%s/layers.png", dir);
    if (ok) ok = hr_png_heatmap(p[6], lm, nl, 2, NULL) == HR_OK;
    ims[ni++] =
        (hr_report_image){"Layer metrics (drop, cosine)", "Columns: layer drop, residual cosine.", p[6], "layers"};
    for (int k = 0; ok && k < 2; k++) {
        pattern(att, T, k == 0);
        hr_heatmap_params hp = hr_heatmap_default_params();
        hp.cell_px = 12;
        hp.vmin = 0.f, hp.vmax = 1.f;
        snprintf(p[7 + k], sizeof p[7 + k], "%s/pattern_%d.png", dir, k);
        ok = hr_png_heatmap(p[7 + k], att, T, T, &hp) == HR_OK;
        ims[ni++] =
            (hr_report_image){k == 0 ? "Layer 0 head 1: previous token" : "Layer 1 head 0: first-token sink",
                              "Attention weights on a 24-token sample; grey = masked (future).", p[7 + k], "patterns"};
    }
    snprintf(p[9], sizeof p[9], "%s/report.html", dir);
    if (ok) ok = hr_report_write_html(p[9], "Head lab: demo (synthetic data)", hj, lj, ims, ni) == HR_OK;
    if (!ok) fprintf(stderr, "hr_report_demo: %s\n", hr_last_error());
    else printf("heads %d images %d report %s\n", n, ni, p[9]);
    free(hj);
    free(lj);
    free(scores);
    return ok ? 0 : 1;
}

static int png_stats(const char *path) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&im, path)) {
        fprintf(stderr, "hr_report_demo: cannot read %s: %s\n", path, im.message);
        return 1;
    }
    im.format = PNG_FORMAT_RGB;
    unsigned char *px = malloc(PNG_IMAGE_SIZE(im)); // (height, width, 3)
    uint8_t *seen = calloc(1u << 21, 1);            // one bit per 24-bit colour
    if (!px || !seen || !png_image_finish_read(&im, NULL, px, 0, NULL)) {
        fprintf(stderr, "hr_report_demo: cannot decode %s\n", path);
        free(px);
        free(seen);
        return 1;
    }
    size_t n = (size_t)im.width * im.height, distinct = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = (uint32_t)px[3 * i] << 16 | (uint32_t)px[3 * i + 1] << 8 | px[3 * i + 2];
        if (!(seen[c >> 3] & (1u << (c & 7)))) distinct++;
        seen[c >> 3] |= (uint8_t)(1u << (c & 7));
    }
    printf("%u %u %zu\n", im.width, im.height, distinct);
    free(px);
    free(seen);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--png-stats")) return png_stats(argv[2]);
    if (argc != 2 && argc != 4) {
        fprintf(stderr, "usage: hr_report_demo OUT_DIR [N_LAYERS N_HEADS] | --png-stats FILE.png\n");
        return 2;
    }
    int nl = argc == 4 ? atoi(argv[2]) : 5, nh = argc == 4 ? atoi(argv[3]) : 8;
    if (nl < 1 || nl > 64 || nh < 1 || nh > 64) {
        fprintf(stderr, "hr_report_demo: layers and heads must be in 1..64\n");
        return 2;
    }
    return demo(argv[1], nl, nh);
}
