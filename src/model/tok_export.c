/* The tokenizer's vocabulary as the GGUF writer needs it. Reads the
 * tokenizer module's private state (tok_internal.h): the public header has
 * no accessor for scores, token types or merges yet. */
#include "hf_internal.h"

#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

void hr_tok_view_get(const hr_tokenizer *t, hr_tok_view *v) {
    v->spm = !t->model || strcmp(t->model->name, "spm") == 0;
    v->n_vocab = t->n_vocab;
    v->bos = t->bos;
    v->eos = t->eos;
    v->unk = t->unk;
    v->add_bos = t->add_bos;
    v->add_space_prefix = t->add_space_prefix;
}

const char *hr_tok_view_piece(const hr_tokenizer *t, int32_t id, size_t *len, float *score, int32_t *type) {
    bool spm = !t->model || strcmp(t->model->name, "spm") == 0;
    const char *blob = spm ? t->norm : t->raw;
    const size_t *off = spm ? t->norm_off : t->raw_off;
    *len = off[id + 1] - off[id] - 1;
    *score = t->scores ? t->scores[id] : 0.0f;
    *type = t->types ? t->types[id] : TOK_NORMAL;
    return blob + off[id];
}

static int cmp_rank(const void *a, const void *b) {
    const tok_merge *x = a, *y = b;
    return (x->rank > y->rank) - (x->rank < y->rank);
}

size_t hr_tok_view_merges(const hr_tokenizer *t, int32_t (*pairs)[2], size_t cap) {
    if (!t->merges) return 0;
    size_t n = 0;
    for (size_t i = 0; i <= t->merge_mask; i++) n += t->merges[i].key != TOK_NO_PAIR;
    if (!pairs || cap < n) return n;
    tok_merge *all = malloc((n ? n : 1) * sizeof *all); // (n)
    if (!all) return 0;
    size_t k = 0;
    for (size_t i = 0; i <= t->merge_mask; i++)
        if (t->merges[i].key != TOK_NO_PAIR) all[k++] = t->merges[i];
    qsort(all, n, sizeof *all, cmp_rank);
    for (size_t i = 0; i < n; i++) {
        pairs[i][0] = (int32_t)(all[i].key >> 32);
        pairs[i][1] = (int32_t)(all[i].key & 0xffffffffu);
    }
    free(all);
    return n;
}
