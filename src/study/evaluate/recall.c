/* The natural retrieval task: recall of an earlier-introduced name as a
 * multiple-choice item (hr_recall_task_build, evaluate.h). */
#include "headroom/evaluate.h"
#include "core/internal.h"
#include "core/rng.h"
#include "study/names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { RECALL_CHOICES = 4 };

hr_recall_params hr_recall_default_params(void) {
    hr_recall_params p = {200, 80, 192, 0};
    return p;
}

static char *space_name(const char *name) {
    size_t n = strlen(name);
    char *s = malloc(n + 2);
    if (s) s[0] = ' ', memcpy(s + 1, name, n + 1);
    return s;
}

/* Fills it from recurrence r; false when fewer than 3 distractors exist. */
static hr_status make_item(const hr_name_index *ix, const char *text, const hr_recurrence *r, hr_rng *rng,
                           hr_mc_item *it, bool *ok) {
    *ok = false;
    int pick[RECALL_CHOICES], n = 0;
    for (int tries = 0; n < RECALL_CHOICES - 1 && tries < 64; tries++) {
        int c = (int)hr_rng_below(rng, (uint64_t)ix->n_names);
        bool dup = c == r->name || hr_names_in(text + r->start, r->end - r->start, ix->names[c]);
        for (int i = 0; i < n; i++) dup |= pick[i] == c;
        if (!dup) pick[n++] = c;
    }
    if (n < RECALL_CHOICES - 1) return HR_OK;
    int gold = (int)hr_rng_below(rng, RECALL_CHOICES);
    it->context = strndup(text + r->start, r->end - r->start);
    it->choices = calloc(RECALL_CHOICES, sizeof(char *));
    if (!it->context || !it->choices) return hr_err(HR_ERR_NOMEM, "out of memory");
    it->n_choices = RECALL_CHOICES;
    it->gold = gold;
    for (int c = 0, d = 0; c < RECALL_CHOICES; c++)
        if (!(it->choices[c] = space_name(ix->names[c == gold ? r->name : pick[d++]])))
            return hr_err(HR_ERR_NOMEM, "out of memory");
    *ok = true;
    return HR_OK;
}

hr_status hr_recall_task_build(const hr_tokenizer *tok, const char *text, size_t len, const hr_recall_params *p,
                               hr_mc_task **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    hr_recall_params dp = hr_recall_default_params();
    if (!p) p = &dp;
    if (!tok || !text) return hr_err(HR_ERR_INVALID_ARG, "the recall task needs a tokenizer and a text");
    if (p->max_items < 1 || p->min_gap < 0 || p->max_ctx < 8)
        return hr_err(HR_ERR_RANGE, "recall task: %d items, gap %d, context %d tokens is out of range", p->max_items,
                      p->min_gap, p->max_ctx);
    hr_name_index ix;
    hr_status st = hr_names_scan(text, len, &ix);
    if (st != HR_OK) return st;
    hr_rng rng = hr_rng_stream(p->seed, 0x4EC411);
    hr_recurrence *rec = NULL;
    size_t n_rec = 0;
    /* A token is at least one byte: contexts longer than 8 bytes a token are
     * not even tokenized. */
    st = hr_names_recurrences(&ix, text, len, p->min_gap, (size_t)p->max_ctx * 8, &rng, &rec, &n_rec);
    hr_mc_task *t = calloc(1, sizeof *t);
    if (st == HR_OK && !(t && (t->items = calloc((size_t)p->max_items, sizeof(hr_mc_item)))))
        st = hr_err(HR_ERR_NOMEM, "out of memory");
    hr_encode_params ep = hr_encode_default_params();
    ep.add_bos = hr_tokenizer_bos(tok) >= 0;
    for (size_t i = 0; st == HR_OK && i < n_rec && t->n_items < p->max_items; i++) {
        int32_t *ids = NULL;
        size_t n_ids = 0;
        st = hr_tokenizer_encode(tok, text + rec[i].start, rec[i].end - rec[i].start, &ep, &ids, &n_ids);
        free(ids);
        /* room for the longest choice: a name is at most 32 bytes */
        if (st != HR_OK || n_ids + 33 > (size_t)p->max_ctx) continue;
        bool ok = false;
        hr_mc_item *it = &t->items[t->n_items];
        st = make_item(&ix, text, &rec[i], &rng, it, &ok);
        if (st == HR_OK && ok) t->n_items++;
        else if (st == HR_OK) memset(it, 0, sizeof *it);
        else t->n_items++; /* freed below with the task */
    }
    free(rec);
    int n_names = ix.n_names;
    hr_names_free(&ix);
    if (st == HR_OK && t->n_items == 0)
        st = hr_err(HR_ERR_RANGE,
                    "the text has no name recurring after %d bytes within %d tokens (%d names found): no recall item",
                    p->min_gap, p->max_ctx, n_names);
    if (st != HR_OK) {
        hr_mc_task_free(t);
        return st;
    }
    *out = t;
    return HR_OK;
}
