/* Path-patching and knockout specifications (circuits.h): parsed and
 * checked against the model before any work. */
#include "study/circuits/circuits_internal.h"
#include "study/intervene.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Splits s at the first `sep`: *left and *right are malloc'ed, trimmed. */
static hr_status split(const char *s, const char *sep, const char *what, char **left, char **right) {
    *left = *right = NULL;
    const char *at = strstr(s, sep);
    if (!at) return hr_err(HR_ERR_INVALID_ARG, "%s '%s' has no '%s'", what, s, sep);
    const char *a = s, *b = at;
    while (a < b && isspace((unsigned char)*a)) a++;
    while (b > a && isspace((unsigned char)b[-1])) b--;
    const char *c = at + strlen(sep), *d = c + strlen(c);
    while (c < d && isspace((unsigned char)*c)) c++;
    while (d > c && isspace((unsigned char)d[-1])) d--;
    *left = strndup(a, (size_t)(b - a));
    *right = strndup(c, (size_t)(d - c));
    if (!*left || !*right) {
        free(*left), free(*right);
        *left = *right = NULL;
        return hr_err(HR_ERR_NOMEM, "out of memory");
    }
    if (!**left || !**right) {
        free(*left), free(*right);
        *left = *right = NULL;
        return hr_err(HR_ERR_INVALID_ARG, "%s '%s': both sides of '%s' must name something", what, s, sep);
    }
    return HR_OK;
}

/* A list of heads or "*" into sel; *first receives the lowest layer. */
static hr_status heads_or_all(const hr_config *c, const char *s, const char *what, bool *all, uint8_t *sel,
                              int *first) {
    *all = strcmp(s, "*") == 0;
    *first = 0;
    if (*all) return HR_OK;
    int n = 0;
    hr_status st = hr_parse_head_list(c, s, what, sel, &n);
    if (st == HR_OK && n == 0) return hr_err(HR_ERR_INVALID_ARG, "%s: no head listed", what);
    int mh = hr_config_max_heads(c);
    for (int i = 0; st == HR_OK && i < c->n_layers * mh; i++)
        if (sel[i]) {
            *first = i / mh;
            break;
        }
    return st;
}

static hr_status add_receiver(path_spec *p, receiver r) {
    for (int i = 0; i < p->n_recv; i++)
        if (p->recv[i].kind == r.kind && p->recv[i].layer == r.layer && p->recv[i].head == r.head) return HR_OK;
    receiver *nr = realloc(p->recv, sizeof *nr * (size_t)(p->n_recv + 1));
    if (!nr) return hr_err(HR_ERR_NOMEM, "out of memory");
    p->recv = nr;
    p->recv[p->n_recv++] = r;
    return HR_OK;
}

/* One receiver word: logits, L.mlp, L.H[q][k][v]. */
static hr_status receiver_word(const hr_config *c, const char *w, size_t len, path_spec *p) {
    char buf[64];
    if (len >= sizeof buf) return hr_err(HR_ERR_INVALID_ARG, "--path: unknown receiver '%.*s'", (int)len, w);
    memcpy(buf, w, len);
    buf[len] = 0;
    if (strcmp(buf, "logits") == 0) {
        p->logits = true;
        return HR_OK;
    }
    char *end;
    long l = strtol(buf, &end, 10);
    if (end == buf || *end != '.' || l < 0)
        return hr_err(HR_ERR_INVALID_ARG,
                      "--path: unknown receiver '%s' (receivers: logits, L.mlp, L.H with q, k or v: e.g. 3.1q)", buf);
    if (l >= c->n_layers)
        return hr_err(HR_ERR_INVALID_ARG, "--path: unknown receiver '%s' (the model has %d layers)", buf, c->n_layers);
    const char *rest = end + 1;
    if (strcmp(rest, "mlp") == 0) {
        if (c->n_ff[l] == 0) return hr_err(HR_ERR_INVALID_ARG, "--path: layer %ld has no MLP", l);
        return add_receiver(p, (receiver){RECV_MLP, (int)l, -1});
    }
    long h = strtol(rest, &end, 10);
    if (end == rest || h < 0)
        return hr_err(HR_ERR_INVALID_ARG, "--path: unknown receiver '%s' (write L.Hq, L.Hk, L.Hv, L.H or L.mlp)", buf);
    if (h >= c->n_head[l])
        return hr_err(HR_ERR_INVALID_ARG, "--path: unknown receiver '%s' (layer %ld has %d heads)", buf, l,
                      c->n_head[l]);
    const char *suf = *end ? end : "qkv";
    int group = c->n_head[l] / c->n_head_kv[l];
    for (const char *k = suf; *k; k++) {
        hr_status st;
        if (*k == 'q') st = add_receiver(p, (receiver){RECV_Q, (int)l, (int)h});
        else if (*k == 'k') st = add_receiver(p, (receiver){RECV_K, (int)l, (int)h / group});
        else if (*k == 'v') st = add_receiver(p, (receiver){RECV_V, (int)l, (int)h / group});
        else return hr_err(HR_ERR_INVALID_ARG, "--path: unknown receiver '%s' (the input is q, k or v)", buf);
        if (st != HR_OK) return st;
    }
    return HR_OK;
}

void hr_circ_path_free(path_spec *p) {
    if (!p) return;
    free(p->senders);
    free(p->recv);
    memset(p, 0, sizeof *p);
}

bool hr_circ_path_reaches(const path_spec *p, int ls) {
    if (p->logits) return true;
    for (int i = 0; i < p->n_recv; i++)
        if (p->recv[i].kind == RECV_MLP ? ls <= p->recv[i].layer : ls < p->recv[i].layer) return true;
    return false;
}

hr_status hr_circ_parse_path(const hr_config *c, const char *spec, path_spec *p) {
    memset(p, 0, sizeof *p);
    if (!spec) return hr_err(HR_ERR_INVALID_ARG, "no --path given");
    char *left, *right;
    hr_status st = split(spec, "->", "--path", &left, &right);
    if (st != HR_OK) return st;
    size_t n = (size_t)c->n_layers * hr_config_max_heads(c);
    if (!(p->senders = calloc(n ? n : 1, 1))) st = hr_err(HR_ERR_NOMEM, "out of memory");
    if (st == HR_OK) st = heads_or_all(c, left, "--path senders", &p->all_senders, p->senders, &p->first_sender);
    for (const char *s = right; st == HR_OK && *s;) {
        while (*s == ',' || isspace((unsigned char)*s)) s++;
        size_t len = strcspn(s, ", \t");
        if (len) st = receiver_word(c, s, len, p);
        s += len;
    }
    if (st == HR_OK && !p->logits && p->n_recv == 0)
        st = hr_err(HR_ERR_INVALID_ARG, "--path '%s' names no receiver", spec);
    if (st == HR_OK && p->logits && p->n_recv)
        st = hr_err(HR_ERR_INVALID_ARG, "--path '%s': 'logits' cannot be combined with other receivers", spec);
    p->first_recv = c->n_layers;
    p->last_recv = -1;
    for (int i = 0; i < p->n_recv; i++) {
        if (p->recv[i].layer < p->first_recv) p->first_recv = p->recv[i].layer;
        if (p->recv[i].layer > p->last_recv) p->last_recv = p->recv[i].layer;
    }
    int mh = hr_config_max_heads(c);
    for (int i = 0; st == HR_OK && !p->all_senders && i < (int)n; i++)
        if (p->senders[i] && !hr_circ_path_reaches(p, i / mh))
            st = hr_err(HR_ERR_INVALID_ARG,
                        "--path '%s': sender %d.%d has no path to the receivers (it comes after them)", spec, i / mh,
                        i % mh);
    free(left), free(right);
    if (st != HR_OK) hr_circ_path_free(p);
    return st;
}

/* ---- knockout ---- */

static hr_status parse_positions(const char *s, const char *what, pos_set *out) {
    memset(out, 0, sizeof *out);
    if (strcmp(s, "*") == 0) {
        out->all = true;
        return HR_OK;
    }
    for (const char *q = s; *q;) {
        while (*q == ',' || isspace((unsigned char)*q)) q++;
        if (!*q) break;
        char *end;
        long a = strtol(q, &end, 10), b;
        if (end == q)
            return hr_err(HR_ERR_INVALID_ARG, "--knockout %s '%s': expected positions (3, -1, 2..5 or *)", what, s);
        b = a;
        if (strncmp(end, "..", 2) == 0) {
            const char *r = end + 2;
            b = strtol(r, &end, 10);
            if (end == r) return hr_err(HR_ERR_INVALID_ARG, "--knockout %s '%s': a range needs an end (2..5)", what, s);
        }
        if (*end && *end != ',' && !isspace((unsigned char)*end))
            return hr_err(HR_ERR_INVALID_ARG, "--knockout %s '%s': expected positions (3, -1, 2..5 or *)", what, s);
        if (out->n == (int)(sizeof out->lo / sizeof out->lo[0]))
            return hr_err(HR_ERR_INVALID_ARG, "--knockout %s: more than 64 position items", what);
        if (a < -100000 || a > 100000 || b < -100000 || b > 100000)
            return hr_err(HR_ERR_INVALID_ARG, "--knockout %s: position out of range", what);
        out->lo[out->n] = (int)a;
        out->hi[out->n++] = (int)b;
        q = end;
    }
    if (!out->n) return hr_err(HR_ERR_INVALID_ARG, "--knockout %s: no position given", what);
    return HR_OK;
}

bool hr_circ_pos_in(const pos_set *s, int p, int n) {
    if (s->all) return true;
    for (int i = 0; i < s->n; i++) {
        int lo = s->lo[i] < 0 ? n + s->lo[i] : s->lo[i], hi = s->hi[i] < 0 ? n + s->hi[i] : s->hi[i];
        if (p >= lo && p <= hi) return true;
    }
    return false;
}

void hr_circ_knockout_free(knock_spec *k) {
    if (!k) return;
    free(k->heads);
    memset(k, 0, sizeof *k);
}

hr_status hr_circ_parse_knockout(const hr_config *c, const char *spec, knock_spec *k) {
    memset(k, 0, sizeof *k);
    if (!spec) return hr_err(HR_ERR_INVALID_ARG, "no --knockout given");
    char *heads, *rest, *q = NULL, *kk = NULL;
    hr_status st = split(spec, ":", "--knockout", &heads, &rest);
    if (st != HR_OK) return st;
    st = split(rest, "->", "--knockout", &q, &kk);
    size_t n = (size_t)c->n_layers * hr_config_max_heads(c);
    if (st == HR_OK && !(k->heads = calloc(n ? n : 1, 1))) st = hr_err(HR_ERR_NOMEM, "out of memory");
    if (st == HR_OK) st = heads_or_all(c, heads, "--knockout heads", &k->all_heads, k->heads, &k->first_layer);
    if (st == HR_OK) st = parse_positions(q, "queries", &k->queries);
    if (st == HR_OK) st = parse_positions(kk, "keys", &k->keys);
    free(heads), free(rest), free(q), free(kk);
    if (st != HR_OK) hr_circ_knockout_free(k);
    return st;
}
