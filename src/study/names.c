/* Names in a text and where they recur (see study/names.h). */
#include "study/names.h"
#include "core/internal.h"

#include <stdlib.h>
#include <string.h>

static bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
static bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
static bool is_alpha(char c) { return is_lower(c) || is_upper(c); }

/* The previous non-space byte before i lets a capitalised word count as
 * mid-sentence. */
static bool mid_sentence(const char *t, size_t i) {
    while (i > 0 && t[i - 1] == ' ') i--;
    if (i == 0) return false;
    char c = t[i - 1];
    return is_lower(c) || (c >= '0' && c <= '9') || c == ',';
}

static bool name_shape(const char *w, size_t n) {
    if (n < 3 || n > 32 || !is_upper(w[0])) return false;
    for (size_t i = 1; i < n; i++)
        if (!is_lower(w[i])) return false;
    return true;
}

static int find_name(const hr_name_index *ix, const char *w, size_t n) {
    for (int i = 0; i < ix->n_names; i++)
        if (strlen(ix->names[i]) == n && memcmp(ix->names[i], w, n) == 0) return i;
    return -1;
}

void hr_names_free(hr_name_index *ix) {
    if (!ix) return;
    for (int i = 0; i < ix->n_names; i++) free(ix->names[i]);
    free(ix->names);
    free(ix->occ);
    free(ix->occ_name);
    memset(ix, 0, sizeof *ix);
}

/* Pass 1 collects the names (shape + a mid-sentence use), pass 2 every
 * occurrence of them. Distinct names are few, so a linear lookup does. */
hr_status hr_names_scan(const char *t, size_t len, hr_name_index *ix) {
    memset(ix, 0, sizeof *ix);
    int cap = 0;
    size_t occ_cap = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < len;) {
            if (!is_alpha(t[i])) {
                i++;
                continue;
            }
            size_t j = i;
            while (j < len && is_alpha(t[j])) j++;
            if (name_shape(t + i, j - i)) {
                int k = find_name(ix, t + i, j - i);
                if (pass == 0 && k < 0 && mid_sentence(t, i)) {
                    if (ix->n_names == cap) {
                        cap = cap ? 2 * cap : 64;
                        char **nn = realloc(ix->names, sizeof(char *) * (size_t)cap);
                        if (!nn) goto nomem;
                        ix->names = nn;
                    }
                    if (!(ix->names[ix->n_names] = strndup(t + i, j - i))) goto nomem;
                    ix->n_names++;
                } else if (pass == 1 && k >= 0) {
                    if (ix->n_occ == occ_cap) {
                        occ_cap = occ_cap ? 2 * occ_cap : 1024;
                        size_t *no = realloc(ix->occ, sizeof(size_t) * occ_cap);
                        if (no) ix->occ = no;
                        int *nn = realloc(ix->occ_name, sizeof(int) * occ_cap);
                        if (nn) ix->occ_name = nn;
                        if (!no || !nn) goto nomem;
                    }
                    ix->occ[ix->n_occ] = i;
                    ix->occ_name[ix->n_occ++] = k;
                }
            }
            i = j;
        }
    }
    return HR_OK;
nomem:
    hr_names_free(ix);
    return hr_err(HR_ERR_NOMEM, "out of memory scanning names");
}

hr_status hr_names_recurrences(const hr_name_index *ix, const char *t, size_t len, int min_gap, size_t max_bytes,
                               hr_rng *rng, hr_recurrence **out, size_t *n) {
    *out = NULL;
    *n = 0;
    size_t *last =
        malloc(sizeof(size_t) * (size_t)(ix->n_names ? ix->n_names : 1)); /* (n_names) previous occurrence + 1 */
    hr_recurrence *r = malloc(sizeof(hr_recurrence) * (ix->n_occ ? ix->n_occ : 1));
    if (!last || !r) {
        free(last);
        free(r);
        return hr_err(HR_ERR_NOMEM, "out of memory");
    }
    memset(last, 0, sizeof(size_t) * (size_t)ix->n_names);
    size_t k = 0;
    for (size_t o = 0; o < ix->n_occ; o++) {
        int nm = ix->occ_name[o];
        size_t at = ix->occ[o], prev = last[nm];
        last[nm] = at + 1;
        if (!prev || at == 0 || t[at - 1] != ' ') continue;
        prev--; /* offset of the previous occurrence */
        if (at < prev + strlen(ix->names[nm]) + (size_t)min_gap) continue;
        size_t start = prev;
        while (start > 0 && t[start - 1] != '\n') start--;
        size_t end = at - 1;
        if (end - start > max_bytes || end <= start) continue;
        r[k++] = (hr_recurrence){start, end, nm};
    }
    (void)len;
    free(last);
    hr_rng_shuffle(rng, r, k, sizeof *r);
    *out = r;
    *n = k;
    return HR_OK;
}

bool hr_names_in(const char *s, size_t n, const char *name) {
    size_t m = strlen(name);
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(s + i, name, m) == 0 && (i == 0 || !is_alpha(s[i - 1])) && (i + m == n || !is_alpha(s[i + m])))
            return true;
    return false;
}

hr_status hr_names_replace(const char *s, size_t n, const char *from, const char *to, char **out, size_t *out_len) {
    size_t m = strlen(from), r = strlen(to), cap = n + 1, k = 0;
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(s + i, from, m) == 0) cap += r; /* enough whatever the boundaries */
    char *o = malloc(cap);
    if (!o) return hr_err(HR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n;) {
        if (i + m <= n && memcmp(s + i, from, m) == 0 && (i == 0 || !is_alpha(s[i - 1])) &&
            (i + m == n || !is_alpha(s[i + m]))) {
            memcpy(o + k, to, r);
            k += r;
            i += m;
        } else {
            o[k++] = s[i++];
        }
    }
    o[k] = 0;
    *out = o;
    *out_len = k;
    return HR_OK;
}
