/* Colormaps: piecewise-linear interpolation between a few anchor colours.
 * Sequential: perceptually ordered dark purple -> blue -> green -> yellow,
 * close to matplotlib's viridis (anchors sampled from its published values).
 * Diverging: blue -> near-white -> red, so the sign of a value reads at a
 * glance and 0 is neutral. */
#include "core/internal.h"
#include "report/report_internal.h"

#include <math.h>
#include <stdio.h>

typedef struct {
    unsigned char r, g, b;
} rgb8;

static const rgb8 k_viridis[] = {
    {68, 1, 84},    {72, 40, 120},  {62, 73, 137},  {49, 104, 142}, {38, 130, 142},
    {31, 158, 137}, {53, 183, 121}, {110, 206, 88}, {253, 231, 37},
};

static const rgb8 k_diverging[] = {
    {33, 102, 172}, {103, 169, 207}, {247, 247, 247}, {239, 138, 98}, {178, 24, 43},
};

#define N_VIRIDIS (int)(sizeof k_viridis / sizeof k_viridis[0])
#define N_DIVERGING (int)(sizeof k_diverging / sizeof k_diverging[0])

static const rgb8 *anchors(int diverging, int *n) {
    *n = diverging ? N_DIVERGING : N_VIRIDIS;
    return diverging ? k_diverging : k_viridis;
}

int hr_colormap_n_anchors(int diverging) {
    int n;
    anchors(diverging, &n);
    return n;
}

void hr_colormap_anchor_hex(int diverging, int i, char out[8]) {
    int n;
    const rgb8 *a = anchors(diverging, &n);
    if (i < 0) i = 0;
    if (i >= n) i = n - 1;
    snprintf(out, 8, "#%02x%02x%02x", a[i].r, a[i].g, a[i].b);
}

static unsigned char lerp8(unsigned char a, unsigned char b, float f) {
    float v = (float)a + ((float)b - (float)a) * f;
    return (unsigned char)lrintf(v);
}

void hr_colormap_rgb(int diverging, float t, unsigned char rgb[3]) {
    if (isnan(t)) {
        rgb[0] = HR_NAN_R, rgb[1] = HR_NAN_G, rgb[2] = HR_NAN_B;
        return;
    }
    int n;
    const rgb8 *a = anchors(diverging, &n);
    if (t < 0.f) t = 0.f;
    if (t > 1.f) t = 1.f;
    float x = t * (float)(n - 1);
    int i = (int)x;
    if (i >= n - 1) i = n - 2; /* t == 1 lands on the last segment's end */
    float f = x - (float)i;
    rgb[0] = lerp8(a[i].r, a[i + 1].r, f);
    rgb[1] = lerp8(a[i].g, a[i + 1].g, f);
    rgb[2] = lerp8(a[i].b, a[i + 1].b, f);
}

void hr_colormap_value(int diverging, double lo, double hi, float v, unsigned char rgb[3]) {
    float t;
    if (isnan(v)) t = NAN;
    else if (hi > lo) t = (float)(((double)v - lo) / (hi - lo));
    else t = 0.5f; /* constant data: the middle colour, neither extreme */
    hr_colormap_rgb(diverging, t, rgb);
}
