/* The score table's layout (opaque hr_scores of headroom/scores.h), shared
 * by its builder (scores.c) and its file readers (read.c). */
#ifndef HR_SCORES_INTERNAL_H
#define HR_SCORES_INTERNAL_H

#include "headroom/scores.h"
#include "core/limits.h"

typedef struct {
    char id[64];
    char higher[64]; /* the file's "higher" text */
    hr_score_kind kind;
    double *v; /* (n_layers, max_heads) NaN = null */
} score_method;

typedef struct {
    char id[64];
    double *v; /* (n_layers) NaN = null */
} score_metric;

struct hr_scores {
    int n_layers, max_heads, head_dim;
    int n_head[HR_MAX_LAYERS], n_head_kv[HR_MAX_LAYERS]; /* the model shape */
    score_method *methods;                               /* (n_methods) */
    int n_methods;
    score_metric *metrics; /* (n_metrics) */
    int n_metrics;
    char heads_source[512], layers_source[512]; /* "" = not loaded */
};

hr_score_kind hr_scores_kind_of(const char *higher);
/* Append a method / metric with every value NaN; index, or -1 when out of memory. */
int hr_scores_add_method(hr_scores *s, const char *id, const char *higher);
int hr_scores_add_metric(hr_scores *s, const char *id);
void hr_scores_clear_heads(hr_scores *s);
void hr_scores_clear_layers(hr_scores *s);
/* Index of a method (metric) whose values are all numbers; errors name the
 * missing method or the first null value. */
hr_status hr_scores_find_method(const hr_scores *s, const char *method, int *index);
hr_status hr_scores_find_metric(const hr_scores *s, const char *metric, int *index);

#endif
