/* Names in a text (internal): what the natural retrieval task (eval) and
 * the name-recall prompt pairs (circuits) are drawn from — one home for
 * "what is a name" and "where does it recur".
 *
 * A name is an ASCII word of 3+ letters, an upper-case letter followed by
 * lower-case ones, that the text also uses at least once in mid-sentence
 * (after a lower-case letter, a digit or a comma, skipping spaces), so
 * sentence-opening words ("The", "One") are not names. A recurrence is an
 * occurrence of a name preceded by a space whose previous occurrence ends
 * at least min_gap bytes before it; its context runs from the start of the
 * paragraph (the byte after the last newline, or the text's start) holding
 * the previous occurrence up to the space before the recurrence. */
#ifndef HR_STUDY_NAMES_H
#define HR_STUDY_NAMES_H

#include "headroom/common.h"
#include "core/rng.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char **names; /* (n_names) distinct names, first-seen order */
    int n_names;
    size_t *occ;   /* (n_occ) byte offsets of every occurrence of a name */
    int *occ_name; /* (n_occ) which name */
    size_t n_occ;
} hr_name_index;

hr_status hr_names_scan(const char *text, size_t len, hr_name_index *out);
void hr_names_free(hr_name_index *ix);

typedef struct {
    size_t start; /* context start (paragraph) */
    size_t end;   /* context end: the space before the recurrence */
    int name;
} hr_recurrence;

/* Every recurrence whose context is at most max_bytes long, shuffled with
 * rng (the caller takes them in that order). *out owned: free(). */
hr_status hr_names_recurrences(const hr_name_index *ix, const char *text, size_t len, int min_gap, size_t max_bytes,
                               hr_rng *rng, hr_recurrence **out, size_t *n);

/* Whether name occurs in s[0..n) as a whole word. */
bool hr_names_in(const char *s, size_t n, const char *name);

/* s[0..n) with every whole-word occurrence of `from` replaced by `to`
 * (NUL-terminated; *out owned: free()). */
hr_status hr_names_replace(const char *s, size_t n, const char *from, const char *to, char **out, size_t *out_len);

#endif
