/* Prompt pairs: JSONL parsing, the continuation rule for answers, and the
 * pairs built from a text (name recall) or from multiple-choice items
 * (correct letter). See circuits.h. */
#include "headroom/circuits.h"
#include "core/json.h"
#include "core/strbuf.h"
#include "study/circuits/circuits_internal.h"
#include "study/names.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

hr_pairs_params hr_pairs_default_params(void) {
    hr_pairs_params p = {HR_ANSWER_FIRST_TOKEN};
    return p;
}

hr_status hr_pairs_new(hr_pairs **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = calloc(1, sizeof **out);
    return *out ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory");
}

void hr_pairs_free(hr_pairs *ps) {
    if (!ps) return;
    for (int i = 0; i < ps->n; i++) free(ps->p[i].clean), free(ps->p[i].corrupt);
    free(ps->p);
    free(ps);
}

int hr_pairs_count(const hr_pairs *ps) { return ps ? ps->n : 0; }

hr_status hr_pairs_get(const hr_pairs *ps, int i, hr_pair *out) {
    if (!ps || !out || i < 0 || i >= ps->n) return hr_err(HR_ERR_RANGE, "no pair %d", i);
    const pair_rec *r = &ps->p[i];
    *out = (hr_pair){r->clean, r->corrupt, r->n, r->answer, r->wrong, r->answer_tokens, r->wrong_tokens, r->line};
    return HR_OK;
}

/* Appends a pair taking ownership of clean and corrupt (freed on failure). */
static hr_status push(hr_pairs *ps, int32_t *clean, int32_t *corrupt, int n, int32_t answer, int32_t wrong,
                      int answer_tokens, int wrong_tokens, int line) {
    if (ps->n == ps->cap) {
        int cap = ps->cap ? 2 * ps->cap : 16;
        pair_rec *np = realloc(ps->p, sizeof *np * (size_t)cap);
        if (!np) {
            free(clean), free(corrupt);
            return hr_err(HR_ERR_NOMEM, "out of memory");
        }
        ps->p = np;
        ps->cap = cap;
    }
    ps->p[ps->n++] = (pair_rec){clean, corrupt, n, answer, wrong, answer_tokens, wrong_tokens, line};
    return HR_OK;
}

hr_status hr_pairs_add(hr_pairs *ps, const int32_t *clean, const int32_t *corrupt, int n, int32_t answer,
                       int32_t wrong) {
    if (!ps || !clean || !corrupt || n < 1) return hr_err(HR_ERR_INVALID_ARG, "a pair needs prompts of >= 1 token");
    if (answer == wrong) return hr_err(HR_ERR_INVALID_ARG, "answer and wrong are the same token %d", answer);
    int32_t *a = malloc(sizeof(int32_t) * (size_t)n), *b = malloc(sizeof(int32_t) * (size_t)n);
    if (!a || !b) {
        free(a), free(b);
        return hr_err(HR_ERR_NOMEM, "out of memory");
    }
    memcpy(a, clean, sizeof(int32_t) * (size_t)n);
    memcpy(b, corrupt, sizeof(int32_t) * (size_t)n);
    return push(ps, a, b, n, answer, wrong, 1, 1, 0);
}

/* ---- the continuation rule ---- */

hr_status hr_circ_answer_tokens(const hr_tokenizer *tok, const char *prompt, size_t plen, const char *answer,
                                int32_t **ids, size_t *n) {
    *ids = NULL;
    *n = 0;
    hr_encode_params ep = hr_encode_default_params();
    ep.add_bos = false;
    int32_t *pi = NULL, *wi = NULL;
    size_t np = 0, nw = 0, alen = strlen(answer);
    hr_status st = HR_OK;
    if (prompt) {
        char *whole = malloc(plen + alen + 1);
        if (!whole) return hr_err(HR_ERR_NOMEM, "out of memory");
        memcpy(whole, prompt, plen);
        memcpy(whole + plen, answer, alen + 1);
        st = hr_tokenizer_encode(tok, prompt, plen, &ep, &pi, &np);
        if (st == HR_OK) st = hr_tokenizer_encode(tok, whole, plen + alen, &ep, &wi, &nw);
        free(whole);
        if (st == HR_OK && nw > np && memcmp(pi, wi, sizeof(int32_t) * np) == 0) {
            memmove(wi, wi + np, sizeof(int32_t) * (nw - np));
            free(pi);
            *ids = wi;
            *n = nw - np;
            return HR_OK;
        }
        free(pi), free(wi);
        if (st != HR_OK) return st;
    }
    return hr_tokenizer_encode(tok, answer, alen, &ep, ids, n);
}

/* ---- JSONL ---- */

typedef struct {
    const hr_tokenizer *tok;
    const hr_pairs_params *p;
    int line;
} line_ctx;

/* Field NAME as text or NAME+suffix as ids (is_alt), exactly one of them:
 * *t (a non-empty string, with a tokenizer to read it) or *a is set; key
 * receives the ids field's name. */
static hr_status text_or_ids(const line_ctx *lc, const cJSON *j, const char *name, const char *suffix, const char *what,
                             cJSON_bool (*is_alt)(const cJSON *), char key[32], const cJSON **t, const cJSON **a) {
    snprintf(key, 32, "%s%s", name, suffix);
    *t = cJSON_GetObjectItemCaseSensitive(j, name);
    *a = cJSON_GetObjectItemCaseSensitive(j, key);
    if (cJSON_IsString(*t) == is_alt(*a))
        return hr_err(HR_ERR_FORMAT, "pairs line %d: give \"%s\" (text) or \"%s\" (%s), one of them", lc->line, name,
                      key, what);
    if (!cJSON_IsString(*t)) {
        *t = NULL;
        return HR_OK;
    }
    *a = NULL;
    if (!lc->tok)
        return hr_err(HR_ERR_FORMAT, "pairs line %d: \"%s\" is text but no tokenizer was given", lc->line, name);
    if (!*(*t)->valuestring) return hr_err(HR_ERR_FORMAT, "pairs line %d: \"%s\" is empty", lc->line, name);
    return HR_OK;
}

/* A prompt field: "NAME" (text, with BOS) or "NAME_ids" (array of ints). */
static hr_status read_prompt(const line_ctx *lc, const cJSON *j, const char *name, int32_t **ids, size_t *n,
                             const char **text) {
    char key[32];
    const cJSON *t, *a;
    *text = NULL;
    hr_status st = text_or_ids(lc, j, name, "_ids", "token ids", cJSON_IsArray, key, &t, &a);
    if (st != HR_OK) return st;
    if (t) {
        hr_encode_params ep = hr_encode_default_params();
        ep.add_bos = hr_tokenizer_bos(lc->tok) >= 0;
        *text = t->valuestring;
        return hr_tokenizer_encode(lc->tok, t->valuestring, strlen(t->valuestring), &ep, ids, n);
    }
    int k = cJSON_GetArraySize(a);
    if (k < 1) return hr_err(HR_ERR_FORMAT, "pairs line %d: \"%s\" is empty", lc->line, key);
    *ids = malloc(sizeof(int32_t) * (size_t)k);
    if (!*ids) return hr_err(HR_ERR_NOMEM, "out of memory");
    for (int i = 0; i < k; i++) {
        const cJSON *e = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < 0 || e->valuedouble > 1e9)
            return hr_err(HR_ERR_FORMAT, "pairs line %d: \"%s\"[%d] is not a token id", lc->line, key, i);
        (*ids)[i] = (int32_t)e->valuedouble;
    }
    *n = (size_t)k;
    return HR_OK;
}

/* An answer field: "NAME" (text, continuation of the clean prompt) or
 * "NAME_id" (one id). */
static hr_status read_answer(const line_ctx *lc, const cJSON *j, const char *name, const char *prompt, int32_t *tok_out,
                             int *n_tokens) {
    char key[32];
    const cJSON *t, *a;
    hr_status st = text_or_ids(lc, j, name, "_id", "a token id", cJSON_IsNumber, key, &t, &a);
    if (st != HR_OK) return st;
    if (a) {
        if (a->valuedouble != floor(a->valuedouble) || a->valuedouble < 0 || a->valuedouble > 1e9)
            return hr_err(HR_ERR_FORMAT, "pairs line %d: \"%s\" is not a token id", lc->line, key);
        *tok_out = (int32_t)a->valuedouble;
        *n_tokens = 1;
        return HR_OK;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    st = hr_circ_answer_tokens(lc->tok, prompt, prompt ? strlen(prompt) : 0, t->valuestring, &ids, &n);
    if (st == HR_OK && n == 0) st = hr_err(HR_ERR_FORMAT, "pairs line %d: \"%s\" gives no token", lc->line, name);
    if (st == HR_OK && n > 1 && lc->p->answers == HR_ANSWER_SINGLE_TOKEN)
        st = hr_err(HR_ERR_FORMAT,
                    "pairs line %d: \"%s\" (\"%s\") is %zu tokens; answers must be one token (or score the first "
                    "token: the default rule)",
                    lc->line, name, t->valuestring, n);
    if (st == HR_OK) *tok_out = ids[0], *n_tokens = (int)n;
    free(ids);
    return st;
}

static hr_status parse_line(hr_pairs *ps, const line_ctx *lc, const char *text, size_t len) {
    cJSON *j;
    hr_status st = hr_json_parse(text, len, &j);
    if (st != HR_OK) return hr_err(HR_ERR_FORMAT, "pairs line %d: not valid JSON", lc->line);
    int32_t *clean = NULL, *corrupt = NULL, answer = 0, wrong = 0;
    size_t nc = 0, nr = 0;
    int na = 0, nw = 0;
    const char *clean_text = NULL, *corrupt_text = NULL;
    if (!cJSON_IsObject(j)) st = hr_err(HR_ERR_FORMAT, "pairs line %d: not a JSON object", lc->line);
    if (st == HR_OK) st = read_prompt(lc, j, "clean", &clean, &nc, &clean_text);
    if (st == HR_OK) st = read_prompt(lc, j, "corrupt", &corrupt, &nr, &corrupt_text);
    if (st == HR_OK && nc != nr)
        st = hr_err(HR_ERR_FORMAT,
                    "pairs line %d: clean and corrupt prompts have different lengths (%zu and %zu tokens); patching "
                    "needs them aligned token for token",
                    lc->line, nc, nr);
    if (st == HR_OK) st = read_answer(lc, j, "answer", clean_text, &answer, &na);
    if (st == HR_OK) st = read_answer(lc, j, "wrong", clean_text, &wrong, &nw);
    if (st == HR_OK && answer == wrong)
        st = hr_err(HR_ERR_FORMAT, "pairs line %d: answer and wrong answer are scored by the same token %d", lc->line,
                    answer);
    cJSON_Delete(j);
    if (st != HR_OK) {
        free(clean), free(corrupt);
        return st;
    }
    return push(ps, clean, corrupt, (int)nc, answer, wrong, na, nw, lc->line);
}

hr_status hr_pairs_parse(const char *text, size_t len, const hr_tokenizer *tok, const hr_pairs_params *p,
                         hr_pairs **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    hr_pairs_params dp = hr_pairs_default_params();
    if (!p) p = &dp;
    if (!text) return hr_err(HR_ERR_INVALID_ARG, "no pairs text");
    hr_pairs *ps;
    hr_status st = hr_pairs_new(&ps);
    line_ctx lc = {tok, p, 0};
    size_t pos = 0, a, b;
    while (st == HR_OK && hr_jsonl_next(text, len, &pos, &lc.line, &a, &b)) st = parse_line(ps, &lc, text + a, b - a);
    if (st == HR_OK && ps->n == 0) st = hr_err(HR_ERR_FORMAT, "the pairs file holds no pair");
    if (st != HR_OK) {
        hr_pairs_free(ps);
        return st;
    }
    *out = ps;
    return HR_OK;
}

static void put_ids(hr_strbuf *b, const int32_t *ids, int n) {
    hr_strbuf_puts(b, "[");
    for (int i = 0; i < n; i++) hr_strbuf_printf(b, "%s%d", i ? ", " : "", ids[i]);
    hr_strbuf_puts(b, "]");
}

hr_status hr_pairs_to_jsonl(const hr_pairs *ps, char **out) {
    if (!ps || !out) return hr_err(HR_ERR_INVALID_ARG, "no pairs or output pointer");
    hr_strbuf b = {0};
    for (int i = 0; i < ps->n; i++) {
        const pair_rec *r = &ps->p[i];
        hr_strbuf_puts(&b, "{\"clean_ids\": ");
        put_ids(&b, r->clean, r->n);
        hr_strbuf_puts(&b, ", \"corrupt_ids\": ");
        put_ids(&b, r->corrupt, r->n);
        hr_strbuf_printf(&b, ", \"answer_id\": %d, \"wrong_id\": %d}\n", r->answer, r->wrong);
    }
    if (b.failed) {
        hr_strbuf_free(&b);
        return hr_err(HR_ERR_NOMEM, "out of memory");
    }
    *out = b.p ? b.p : calloc(1, 1);
    return *out ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory");
}

/* ---- pairs built from text ---- */

/* Tokens of a prompt text with BOS (when the tokenizer has one). */
static hr_status encode_prompt(const hr_tokenizer *tok, const char *s, size_t n, int32_t **ids, size_t *n_ids) {
    hr_encode_params ep = hr_encode_default_params();
    ep.add_bos = hr_tokenizer_bos(tok) >= 0;
    return hr_tokenizer_encode(tok, s, n, &ep, ids, n_ids);
}

/* First token of " name" after prompt. */
static hr_status first_answer_token(const hr_tokenizer *tok, const char *prompt, size_t plen, const char *name,
                                    int32_t *out, int *n_tokens) {
    char ans[40];
    snprintf(ans, sizeof ans, " %s", name);
    int32_t *ids = NULL;
    size_t n = 0;
    hr_status st = hr_circ_answer_tokens(tok, prompt, plen, ans, &ids, &n);
    if (st == HR_OK && n == 0) st = hr_err(HR_ERR_FORMAT, "'%s' gives no token", ans);
    if (st == HR_OK) *out = ids[0], *n_tokens = (int)n;
    free(ids);
    return st;
}

/* Tries other names for recurrence r until one gives a corrupt prompt of
 * the clean prompt's length and a different first answer token. */
static hr_status recall_pair(hr_pairs *ps, const hr_tokenizer *tok, const hr_name_index *ix, const char *text,
                             const hr_recurrence *r, int max_ctx, hr_rng *rng) {
    const char *ctxt = text + r->start;
    size_t clen = r->end - r->start;
    int32_t *clean = NULL, answer = 0;
    size_t nc = 0;
    int na = 0;
    hr_status st = encode_prompt(tok, ctxt, clen, &clean, &nc);
    if (st != HR_OK || nc > (size_t)max_ctx) {
        free(clean);
        return st;
    }
    st = first_answer_token(tok, ctxt, clen, ix->names[r->name], &answer, &na);
    for (int tries = 0; st == HR_OK && tries < 32; tries++) {
        int other = (int)hr_rng_below(rng, (uint64_t)ix->n_names);
        if (other == r->name || hr_names_in(ctxt, clen, ix->names[other])) continue;
        char *cor_text = NULL;
        size_t cor_len = 0;
        int32_t *corrupt = NULL, wrong = 0;
        size_t nr = 0;
        int nw = 0;
        st = hr_names_replace(ctxt, clen, ix->names[r->name], ix->names[other], &cor_text, &cor_len);
        if (st == HR_OK) st = encode_prompt(tok, cor_text, cor_len, &corrupt, &nr);
        if (st == HR_OK) st = first_answer_token(tok, ctxt, clen, ix->names[other], &wrong, &nw);
        free(cor_text);
        if (st == HR_OK && nr == nc && wrong != answer)
            return push(ps, clean, corrupt, (int)nc, answer, wrong, na, nw, 0);
        free(corrupt);
    }
    free(clean);
    return st;
}

hr_status hr_pairs_name_recall(const hr_tokenizer *tok, const char *text, size_t len, int max_ctx, int max_pairs,
                               uint64_t seed, hr_pairs **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!tok || !text || max_ctx < 8 || max_pairs < 1)
        return hr_err(HR_ERR_INVALID_ARG,
                      "name-recall pairs need a tokenizer, a text, max_ctx >= 8 and max_pairs >= 1");
    hr_recall_params rp = hr_recall_default_params();
    hr_name_index ix;
    hr_status st = hr_names_scan(text, len, &ix);
    if (st != HR_OK) return st;
    hr_rng rng = hr_rng_stream(seed, 0x9A125);
    hr_recurrence *rec = NULL;
    size_t n_rec = 0;
    hr_pairs *ps = NULL;
    st = hr_names_recurrences(&ix, text, len, rp.min_gap, (size_t)max_ctx * 8, &rng, &rec, &n_rec);
    if (st == HR_OK) st = hr_pairs_new(&ps);
    for (size_t i = 0; st == HR_OK && i < n_rec && ps->n < max_pairs; i++)
        st = recall_pair(ps, tok, &ix, text, &rec[i], max_ctx, &rng);
    free(rec);
    hr_names_free(&ix);
    if (st == HR_OK && ps->n == 0) st = hr_err(HR_ERR_RANGE, "the text gives no name-recall pair");
    if (st != HR_OK) {
        hr_pairs_free(ps);
        return st;
    }
    *out = ps;
    return HR_OK;
}

/* "context\nA. c0\nB. c1\n...\nAnswer:" with choices in the order given. */
static char *letter_prompt(const hr_mc_item *it, const int *order) {
    hr_strbuf b = {0};
    hr_strbuf_puts(&b, it->context);
    for (int c = 0; c < it->n_choices; c++) {
        const char *ch = it->choices[order[c]];
        while (*ch == ' ') ch++;
        hr_strbuf_printf(&b, "\n%c. %s", 'A' + c, ch);
    }
    hr_strbuf_puts(&b, "\nAnswer:");
    if (b.failed) {
        hr_strbuf_free(&b);
        return NULL;
    }
    return b.p;
}

static hr_status choice_pair(hr_pairs *ps, const hr_tokenizer *tok, const hr_mc_item *it, int max_ctx) {
    if (it->n_choices < 2 || it->n_choices > 26) return HR_OK;
    int order[26], swapped[26];
    for (int c = 0; c < it->n_choices; c++) order[c] = swapped[c] = c;
    int g = it->gold, o = (g + 1) % it->n_choices;
    swapped[g] = o, swapped[o] = g;
    char *pc = letter_prompt(it, order), *pr = letter_prompt(it, swapped);
    int32_t *clean = NULL, *corrupt = NULL, answer = 0, wrong = 0;
    size_t nc = 0, nr = 0;
    int na = 0, nw = 0;
    hr_status st = pc && pr ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory");
    char la[3] = {' ', (char)('A' + g), 0}, lw[3] = {' ', (char)('A' + o), 0};
    if (st == HR_OK) st = encode_prompt(tok, pc, strlen(pc), &clean, &nc);
    if (st == HR_OK) st = encode_prompt(tok, pr, strlen(pr), &corrupt, &nr);
    int32_t *ids = NULL;
    size_t n = 0;
    if (st == HR_OK && (st = hr_circ_answer_tokens(tok, pc, strlen(pc), la, &ids, &n)) == HR_OK && n)
        answer = ids[0], na = (int)n;
    free(ids), ids = NULL;
    if (st == HR_OK && (st = hr_circ_answer_tokens(tok, pc, strlen(pc), lw, &ids, &n)) == HR_OK && n)
        wrong = ids[0], nw = (int)n;
    free(ids);
    free(pc), free(pr);
    if (st == HR_OK && nc == nr && nc <= (size_t)max_ctx && na && nw && answer != wrong)
        return push(ps, clean, corrupt, (int)nc, answer, wrong, na, nw, 0);
    free(clean), free(corrupt);
    return st;
}

hr_status hr_pairs_from_choices(const hr_tokenizer *tok, const hr_mc_task *task, int max_ctx, hr_pairs **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!tok || !task || max_ctx < 8)
        return hr_err(HR_ERR_INVALID_ARG, "letter pairs need a tokenizer, items and max_ctx >= 8");
    hr_pairs *ps;
    hr_status st = hr_pairs_new(&ps);
    for (int i = 0; st == HR_OK && i < task->n_items; i++) st = choice_pair(ps, tok, &task->items[i], max_ctx);
    if (st == HR_OK && ps->n == 0)
        st = hr_err(HR_ERR_RANGE, "no item gives a letter pair of equal lengths within %d tokens", max_ctx);
    if (st != HR_OK) {
        hr_pairs_free(ps);
        return st;
    }
    *out = ps;
    return HR_OK;
}
