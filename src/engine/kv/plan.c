/* KV-cache plans: a policy per (layer, KV head), plan files, mixed plans.
 * What each policy means is its registry row (policy.h). */
#include "headroom/kvcache.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/rng.h"
#include "engine/kv/policy.h"
#include "model/config.h"

struct hr_kv_plan {
    int n_layers;
    int n_kv[HR_MAX_LAYERS];
    hr_kv_policy *pol[HR_MAX_LAYERS]; /* (n_kv[l]) */
};

const char *hr_kv_kind_name(hr_kv_kind k) {
    const hr_kv_policy_ops *ops = hr_kv_policy_ops_of(k);
    return ops ? ops->name : "unknown";
}

int hr_kv_policy_capacity(const hr_kv_policy *p, int n_ctx) {
    const hr_kv_policy_ops *ops = hr_kv_policy_ops_of(p->kind);
    long cap = ops ? ops->capacity(p, n_ctx) : n_ctx;
    return cap < n_ctx ? (int)cap : n_ctx;
}

hr_status hr_kv_policy_validate(const hr_kv_policy *p, int n_ctx) {
    const hr_kv_policy_ops *ops = hr_kv_policy_ops_of(p->kind);
    if (!ops) return hr_err(HR_ERR_INVALID_ARG, "unknown KV policy %d", (int)p->kind);
    return ops->validate(p, n_ctx);
}

hr_status hr_kv_plan_new(const hr_config *c, hr_kv_plan **out) {
    *out = NULL;
    hr_kv_plan *p = calloc(1, sizeof *p);
    if (!p) return hr_err(HR_ERR_NOMEM, "out of memory");
    p->n_layers = c->n_layers;
    for (int l = 0; l < c->n_layers; l++) {
        p->n_kv[l] = c->n_head_kv[l];
        p->pol[l] = calloc((size_t)(c->n_head_kv[l] ? c->n_head_kv[l] : 1), sizeof(hr_kv_policy));
        if (!p->pol[l]) {
            hr_kv_plan_free(p);
            return hr_err(HR_ERR_NOMEM, "out of memory");
        }
    }
    *out = p;
    return HR_OK;
}

void hr_kv_plan_free(hr_kv_plan *p) {
    if (!p) return;
    for (int l = 0; l < p->n_layers; l++) free(p->pol[l]);
    free(p);
}

hr_status hr_kv_plan_set(hr_kv_plan *p, int layer, int kv_head, hr_kv_policy pol) {
    if (layer < 0 || layer >= p->n_layers || kv_head < 0 || kv_head >= p->n_kv[layer])
        return hr_err(HR_ERR_RANGE, "plan entry for layer %d KV head %d is outside the model (%d layers)", layer,
                      kv_head, p->n_layers);
    if (!hr_kv_policy_ops_of(pol.kind)) return hr_err(HR_ERR_INVALID_ARG, "unknown KV policy %d", (int)pol.kind);
    p->pol[layer][kv_head] = pol;
    return HR_OK;
}

hr_kv_policy hr_kv_plan_get(const hr_kv_plan *p, int layer, int kv_head) {
    hr_kv_policy full = {HR_KV_FULL, 0, 0, 0};
    if (!p || layer < 0 || layer >= p->n_layers || kv_head < 0 || kv_head >= p->n_kv[layer]) return full;
    return p->pol[layer][kv_head];
}

hr_status hr_kv_plan_check(const hr_kv_plan *p, const hr_config *c) {
    if (p->n_layers != c->n_layers)
        return hr_err(HR_ERR_INVALID_ARG, "KV plan is for %d layers, the model has %d", p->n_layers, c->n_layers);
    for (int l = 0; l < c->n_layers; l++)
        if (p->n_kv[l] != c->n_head_kv[l])
            return hr_err(HR_ERR_INVALID_ARG, "KV plan has %d KV heads in layer %d, the model has %d", p->n_kv[l], l,
                          c->n_head_kv[l]);
    return HR_OK;
}

int hr_kv_plan_n_reduced(const hr_kv_plan *p) {
    int n = 0;
    for (int l = 0; l < p->n_layers; l++)
        for (int g = 0; g < p->n_kv[l]; g++) n += p->pol[l][g].kind != HR_KV_FULL;
    return n;
}

/* ---- plan files ---- */

/* Parses "kind [key=value ...]" from the words w[0..n). */
static hr_status parse_policy(char **w, int n, hr_kv_policy *out, const char *where) {
    memset(out, 0, sizeof *out);
    int k = 0;
    while (k < hr_kv_n_policies && strcmp(w[0], hr_kv_policies[k]->name) != 0) k++;
    if (k == hr_kv_n_policies) {
        char names[256] = "";
        for (int i = 0; i < hr_kv_n_policies; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                     hr_kv_policies[i]->name);
        return hr_err(HR_ERR_FORMAT, "%s: unknown KV policy '%s' (%s)", where, w[0], names);
    }
    const hr_kv_policy_ops *ops = hr_kv_policies[k];
    out->kind = (hr_kv_kind)k;
    ops->defaults(out);
    for (int i = 1; i < n; i++) {
        char *eq = strchr(w[i], '=');
        if (!eq) return hr_err(HR_ERR_FORMAT, "%s: expected key=value, got '%s'", where, w[i]);
        *eq = 0;
        char *end;
        errno = 0;
        long v = strtol(eq + 1, &end, 10);
        if (*end || errno || v < 0 || v > (1L << 30))
            return hr_err(HR_ERR_FORMAT, "%s: '%s' is not a valid size", where, eq + 1);
        if (!ops->set_param(out, w[i], (int)v))
            return hr_err(HR_ERR_FORMAT, "%s: unknown %s parameter '%s' (%s)", where, ops->name, w[i],
                          ops->params[0] ? ops->params : "it has none");
    }
    return HR_OK;
}

static int parse_int(const char *s, long *v) {
    char *end;
    errno = 0;
    *v = strtol(s, &end, 10);
    return *s && !*end && !errno;
}

static hr_status apply_line(hr_kv_plan *p, const hr_config *c, char *line, const char *where, int lineno,
                            int *default_line) {
    char *w[16];
    int n = 0;
    for (char *tok = strtok(line, " \t\r\n"); tok && n < 16; tok = strtok(NULL, " \t\r\n")) w[n++] = tok;
    if (n == 0) return HR_OK;
    hr_kv_policy pol;
    hr_status st;
    long a, b;
    if (strcmp(w[0], "default") == 0 && n >= 2) {
        if (*default_line)
            return hr_err(HR_ERR_FORMAT, "%s: a second 'default' line (the first is line %d); a plan has one", where,
                          *default_line);
        *default_line = lineno;
        if ((st = parse_policy(w + 1, n - 1, &pol, where)) != HR_OK) return st;
        for (int l = 0; l < c->n_layers; l++)
            for (int g = 0; g < c->n_head_kv[l]; g++) p->pol[l][g] = pol;
        return HR_OK;
    }
    if (strcmp(w[0], "layer") == 0 && n >= 3) {
        if (!parse_int(w[1], &a) || a < 0 || a >= c->n_layers)
            return hr_err(HR_ERR_FORMAT, "%s: layer '%s' is outside the model (%d layers)", where, w[1], c->n_layers);
        if ((st = parse_policy(w + 2, n - 2, &pol, where)) != HR_OK) return st;
        for (int g = 0; g < c->n_head_kv[a]; g++) p->pol[a][g] = pol;
        return HR_OK;
    }
    if (strcmp(w[0], "head") == 0 && n >= 4) {
        if (!parse_int(w[1], &a) || a < 0 || a >= c->n_layers || !parse_int(w[2], &b) || b < 0 || b >= c->n_head_kv[a])
            return hr_err(HR_ERR_FORMAT, "%s: KV head '%s %s' is outside the model", where, w[1], w[2]);
        if ((st = parse_policy(w + 3, n - 3, &pol, where)) != HR_OK) return st;
        p->pol[a][b] = pol;
        return HR_OK;
    }
    return hr_err(HR_ERR_FORMAT, "%s: expected 'default POLICY', 'layer L POLICY' or 'head L H POLICY'", where);
}

hr_status hr_kv_plan_load(const char *path, const hr_config *c, hr_kv_plan **out) {
    *out = NULL;
    char *text;
    size_t len;
    hr_status st = hr_read_file(path, &text, &len);
    if (st != HR_OK) return st;
    if (strlen(text) != len) {
        free(text);
        return hr_err(HR_ERR_FORMAT, "KV plan '%s' contains a NUL byte", path);
    }
    hr_kv_plan *p;
    if ((st = hr_kv_plan_new(c, &p)) != HR_OK) {
        free(text);
        return st;
    }
    int lineno = 0, default_line = 0;
    for (char *line = text, *next; line && st == HR_OK; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char where[600];
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        st = apply_line(p, c, line, where, lineno, &default_line);
    }
    free(text);
    if (st != HR_OK) {
        hr_kv_plan_free(p);
        return st;
    }
    *out = p;
    return HR_OK;
}

hr_status hr_kv_plan_save(const hr_kv_plan *p, const char *path) {
    hr_atomic_file af;
    hr_status st = hr_atomic_open(path, &af);
    if (st != HR_OK) return st;
    char line[320], params[256];
    int n = snprintf(line, sizeof line, "# headroom KV plan: %d layers\ndefault full\n", p->n_layers);
    st = hr_atomic_write(&af, line, (size_t)n);
    for (int l = 0; l < p->n_layers && st == HR_OK; l++)
        for (int g = 0; g < p->n_kv[l] && st == HR_OK; g++) {
            const hr_kv_policy *q = &p->pol[l][g];
            if (q->kind == HR_KV_FULL) continue;
            const hr_kv_policy_ops *ops = hr_kv_policy_ops_of(q->kind);
            ops->format(q, params, sizeof params);
            n = snprintf(line, sizeof line, "head %d %d %s%s\n", l, g, ops->name, params);
            st = hr_atomic_write(&af, line, (size_t)n);
        }
    if (st != HR_OK) {
        hr_atomic_abort(&af);
        return st;
    }
    return hr_atomic_commit(&af);
}

/* ---- mixed plans ---- */

typedef struct {
    float score;
    int layer, head;
} ranked;

static int by_score_desc(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->layer != y->layer) return x->layer - y->layer;
    return x->head - y->head;
}

static int n_full_for(int total, float fraction) {
    int k = (int)lroundf(fraction * (float)total);
    return k < 0 ? 0 : k > total ? total : k;
}

static hr_status fill_mixed(const hr_config *c, ranked *r, int total, float fraction, hr_kv_policy rest,
                            hr_kv_plan **out) {
    if (!(fraction >= 0 && fraction <= 1))
        return hr_err(HR_ERR_RANGE, "retrieval fraction %g is not in [0, 1]", (double)fraction);
    hr_status st = hr_kv_policy_validate(&rest, c->seq_len);
    if (st != HR_OK) return st;
    hr_kv_plan *p;
    if ((st = hr_kv_plan_new(c, &p)) != HR_OK) return st;
    int keep = n_full_for(total, fraction);
    for (int i = keep; i < total; i++) p->pol[r[i].layer][r[i].head] = rest;
    *out = p;
    return HR_OK;
}

static int count_kv(const hr_config *c) {
    int n = 0;
    for (int l = 0; l < c->n_layers; l++) n += c->n_head_kv[l];
    return n;
}

hr_status hr_kv_plan_from_scores(const hr_config *c, const float *scores, float fraction, hr_kv_policy rest,
                                 hr_kv_plan **out) {
    *out = NULL;
    int total = count_kv(c), mh = hr_config_max_heads(c), k = 0;
    ranked *r = malloc(sizeof *r * (size_t)(total ? total : 1));
    if (!r) return hr_err(HR_ERR_NOMEM, "out of memory");
    for (int l = 0; l < c->n_layers; l++) {
        int group = c->n_head_kv[l] ? c->n_head[l] / c->n_head_kv[l] : 0;
        for (int g = 0; g < c->n_head_kv[l]; g++) {
            float best = -INFINITY;
            for (int h = g * group; h < (g + 1) * group; h++) {
                float v = scores[(size_t)l * mh + h];
                if (v > best) best = v; /* NaN scores never win */
            }
            r[k++] = (ranked){best, l, g};
        }
    }
    qsort(r, (size_t)total, sizeof *r, by_score_desc);
    hr_status st = fill_mixed(c, r, total, fraction, rest, out);
    free(r);
    return st;
}

hr_status hr_kv_plan_random(const hr_config *c, float fraction, hr_kv_policy rest, uint64_t seed, hr_kv_plan **out) {
    *out = NULL;
    int total = count_kv(c), k = 0;
    ranked *r = malloc(sizeof *r * (size_t)(total ? total : 1));
    if (!r) return hr_err(HR_ERR_NOMEM, "out of memory");
    for (int l = 0; l < c->n_layers; l++)
        for (int g = 0; g < c->n_head_kv[l]; g++) r[k++] = (ranked){0, l, g};
    hr_rng rng = hr_rng_new(seed);
    hr_rng_shuffle(&rng, r, (size_t)total, sizeof *r);
    hr_status st = fill_mixed(c, r, total, fraction, rest, out);
    free(r);
    return st;
}
