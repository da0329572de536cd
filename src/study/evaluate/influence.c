/* AttentionInfluence: per-document loss with and without masked heads
 * (hr_influence_*, see evaluate.h). */
#include "headroom/evaluate.h"
#include "headroom/study.h"
#include "core/json.h"
#include "engine/kernels.h"
#include "model/model_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PIECE = 64 }; /* tokens fed per hr_forward: the logits buffer holds (PIECE, vocab) */

hr_influence_params hr_influence_default_params(void) {
    hr_influence_params p;
    memset(&p, 0, sizeof p);
    return p;
}

typedef struct {
    const char *text; /* borrowed: into the text or the corpus */
    size_t len;
} doc_range;

static bool blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return false;
    return true;
}

/* The documents of text: runs of lines between separator lines (blank
 * lines, or lines exactly `split`), without the separators' newlines;
 * blank documents dropped. *out owned: free(). */
static hr_status split_docs(const char *t, size_t len, const char *split, doc_range **out, int *n_out) {
    int cap = 64, n = 0;
    doc_range *d = malloc(sizeof *d * (size_t)cap);
    if (!d) return hr_err(HR_ERR_NOMEM, "out of memory");
    size_t doc = 0, pos = 0;
    for (;;) {
        const char *nl = pos < len ? memchr(t + pos, '\n', len - pos) : NULL;
        size_t end = nl ? (size_t)(nl - t) : len;
        bool sep =
            split ? (end - pos == strlen(split) && memcmp(t + pos, split, end - pos) == 0) : blank(t + pos, end - pos);
        bool last = end >= len;
        if (sep || last) {
            size_t stop = sep ? pos : len;
            while (stop > doc && (t[stop - 1] == '\n' || t[stop - 1] == '\r')) stop--;
            if (stop > doc && !blank(t + doc, stop - doc)) {
                if (n == cap) {
                    doc_range *nd = realloc(d, sizeof *d * (size_t)(cap *= 2));
                    if (!nd) {
                        free(d);
                        return hr_err(HR_ERR_NOMEM, "out of memory");
                    }
                    d = nd;
                }
                d[n++] = (doc_range){t + doc, stop - doc};
            }
            doc = end + 1;
        }
        if (last) break;
        pos = end + 1;
    }
    *out = d;
    *n_out = n;
    return HR_OK;
}

/* The documents of p: the corpus's non-blank ones, or the text split. */
static hr_status collect_docs(const hr_influence_params *p, doc_range **out, int *n_out) {
    if (!p->corpus) return split_docs(p->text, p->text_len, p->split, out, n_out);
    int n = 0, total = hr_corpus_n_docs(p->corpus);
    doc_range *d = malloc(sizeof *d * (size_t)(total + 1));
    if (!d) return hr_err(HR_ERR_NOMEM, "out of memory");
    for (int i = 0; i < total; i++) {
        size_t len = 0;
        const char *t = hr_corpus_doc(p->corpus, i, &len);
        if (!blank(t, len)) d[n++] = (doc_range){t, len};
    }
    *out = d;
    *n_out = n;
    return HR_OK;
}

/* Mean NLL of tokens 1..n-1 given the earlier ones. */
static hr_status doc_loss(hr_context *ctx, const int32_t *ids, int n, float *logits, int vocab, double *loss) {
    hr_status st = hr_context_truncate(ctx, 0);
    double sum = 0;
    for (int done = 0; st == HR_OK && done < n;) {
        int k = n - done < PIECE ? n - done : PIECE;
        st = hr_forward(ctx, ids + done, k, logits, true);
        for (int i = 0; st == HR_OK && i < k; i++)
            if (done + i + 1 < n) sum += hr_token_nll(logits + (size_t)i * vocab, vocab, ids[done + i + 1]);
        done += k;
    }
    *loss = sum / (n - 1);
    return st;
}

typedef struct {
    hr_context *ctx[2]; /* model as it is, heads masked */
    float *logits;      /* (PIECE, vocab) */
    doc_range *docs;
    int n_docs;
} influence_run;

static hr_status prepare(const hr_model *m, const hr_tokenizer *tok, const hr_influence_params *p, influence_run *r) {
    const hr_config *c = hr_model_config(m);
    if (!tok || !p || (!p->text && !p->corpus) || !p->heads || !p->on_doc)
        return hr_err(HR_ERR_INVALID_ARG, "influence needs a tokenizer, a text or corpus, the heads to mask and a "
                                          "callback");
    if (p->text && p->corpus) return hr_err(HR_ERR_INVALID_ARG, "influence takes a text or a corpus, not both");
    if (p->max_tokens < 0 || p->max_tokens == 1 || p->max_tokens > c->seq_len || p->first_doc < 0 || p->max_docs < 0)
        return hr_err(HR_ERR_RANGE, "influence: max_tokens %d (the model's context is %d), first_doc %d, max_docs %d",
                      p->max_tokens, c->seq_len, p->first_doc, p->max_docs);
    if (p->split && (!*p->split || strchr(p->split, '\n')))
        return hr_err(HR_ERR_INVALID_ARG, "a document separator is one non-empty line");
    hr_status st = collect_docs(p, &r->docs, &r->n_docs);
    if (st != HR_OK) return st;
    if (r->n_docs == 0) return hr_err(HR_ERR_RANGE, "the %s holds no document", p->corpus ? "corpus" : "text");
    hr_context_params cp = hr_context_default_params();
    cp.n_ctx = p->max_tokens ? p->max_tokens : c->seq_len;
    cp.n_threads = p->n_threads;
    cp.n_batch = PIECE;
    for (int i = 0; st == HR_OK && i < 2; i++) st = hr_context_new(m, &cp, &r->ctx[i]);
    if (st == HR_OK && !(r->logits = malloc(sizeof(float) * PIECE * (size_t)c->vocab_size)))
        st = hr_err(HR_ERR_NOMEM, "out of memory");
    if (st != HR_OK) return st;
    int32_t *calib = NULL;
    size_t n_calib = 0;
    if (hr_head_mask_needs_means(p->heads) && !p->calib_tokens) {
        if (!p->text) return hr_err(HR_ERR_INVALID_ARG, "mean-ablated heads over a corpus need calibration tokens");
        st = hr_calib_tokens(tok, p->text, p->text_len, 0, &calib, &n_calib);
    }
    if (st == HR_OK)
        st = hr_head_mask_apply(p->heads, r->ctx[1], p->calib_tokens ? p->calib_tokens : calib,
                                p->calib_tokens ? p->n_calib_tokens : n_calib);
    free(calib);
    return st;
}

hr_status hr_influence_run(const hr_model *m, const hr_tokenizer *tok, const hr_influence_params *p, int *n_docs) {
    if (!m) return hr_err(HR_ERR_INVALID_ARG, "no model given");
    influence_run r;
    memset(&r, 0, sizeof r);
    hr_status st = prepare(m, tok, p, &r);
    int vocab = hr_model_config(m)->vocab_size, n_ctx = st == HR_OK ? hr_context_n_ctx(r.ctx[0]) : 0, scored = 0;
    hr_encode_params ep = hr_encode_default_params();
    ep.add_bos = hr_tokenizer_bos(tok) >= 0;
    for (int i = p ? p->first_doc : 0; st == HR_OK && i < r.n_docs && (!p->max_docs || scored < p->max_docs); i++) {
        const char *text = r.docs[i].text;
        int32_t *ids = NULL;
        size_t n = 0;
        hr_influence_doc d;
        memset(&d, 0, sizeof d);
        d.index = i;
        hr_sha256_hex(text, r.docs[i].len, d.sha256);
        st = hr_tokenizer_encode(tok, text, r.docs[i].len, &ep, &ids, &n);
        d.n_tokens = n > (size_t)n_ctx ? n_ctx : (int)n;
        if (st == HR_OK && d.n_tokens < 2) st = hr_err(HR_ERR_FORMAT, "document %d gives no token to score", i);
        if (st == HR_OK) st = doc_loss(r.ctx[0], ids, d.n_tokens, r.logits, vocab, &d.loss_base);
        if (st == HR_OK) st = doc_loss(r.ctx[1], ids, d.n_tokens, r.logits, vocab, &d.loss_masked);
        free(ids);
        d.influence = (d.loss_masked - d.loss_base) / d.loss_base;
        if (st == HR_OK && p->on_doc(&d, p->user_data))
            st = hr_err(HR_ERR_ABORTED, "influence stopped by its callback");
        if (st == HR_OK && p->progress && p->progress(i + 1, r.n_docs, p->progress_user_data))
            st = hr_err(HR_ERR_ABORTED, "influence aborted by the progress callback");
        scored++;
    }
    if (n_docs) *n_docs = r.n_docs;
    for (int i = 0; i < 2; i++) hr_context_free(r.ctx[i]);
    free(r.logits);
    free(r.docs);
    return st;
}

/* ---- the JSONL file ---- */

static hr_status print_line(cJSON *j, char **out) {
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!s) return hr_err(HR_ERR_NOMEM, "out of memory");
    *out = s;
    return HR_OK;
}

hr_status hr_influence_header_json(const char *model_path, const char *text_path, const hr_influence_params *p,
                                   char **out) {
    if (!out || !p || (!p->text && !p->corpus) || !p->heads)
        return hr_err(HR_ERR_INVALID_ARG, "no parameters or output pointer");
    char sha[65], *heads = NULL;
    if (p->corpus) snprintf(sha, sizeof sha, "%s", hr_corpus_sha256(p->corpus));
    else hr_sha256_hex(p->text, p->text_len, sha);
    hr_status st = hr_head_mask_describe(p->heads, &heads);
    if (st != HR_OK) return st;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", "headroom.influence");
    cJSON_AddNumberToObject(j, "format_version", 1);
    cJSON_AddStringToObject(j, "model", model_path ? model_path : "");
    cJSON_AddStringToObject(j, p->corpus ? "corpus" : "text", text_path ? text_path : "");
    cJSON_AddStringToObject(j, p->corpus ? "corpus_sha256" : "text_sha256", sha);
    cJSON_AddStringToObject(j, "heads", heads);
    cJSON_AddStringToObject(j, "split", p->split ? p->split : "");
    cJSON_AddNumberToObject(j, "max_tokens", p->max_tokens);
    free(heads);
    return print_line(j, out);
}

hr_status hr_influence_doc_json(const hr_influence_doc *d, char **out) {
    if (!d || !out) return hr_err(HR_ERR_INVALID_ARG, "no document or output pointer");
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "doc", d->index);
    cJSON_AddStringToObject(j, "sha256", d->sha256);
    cJSON_AddNumberToObject(j, "tokens", d->n_tokens);
    cJSON_AddNumberToObject(j, "loss_base", d->loss_base);
    cJSON_AddNumberToObject(j, "loss_masked", d->loss_masked);
    cJSON_AddNumberToObject(j, "influence", d->influence);
    return print_line(j, out);
}

hr_status hr_influence_resume(const char *text, size_t len, const char *header, const hr_influence_params *p,
                              int *n_done, size_t *keep) {
    if (!text || !header || !p || !n_done || !keep) return hr_err(HR_ERR_INVALID_ARG, "nothing to resume from");
    *n_done = 0;
    *keep = 0;
    size_t hl = strlen(header);
    if (len < hl + 1 || memcmp(text, header, hl) != 0 || text[hl] != '\n')
        return hr_err(HR_ERR_INVALID_ARG, "the file was written by another run (model, text, heads, split or "
                                          "max_tokens differ): its first line is not this run's header");
    doc_range *docs = NULL;
    int n = 0;
    hr_status st = collect_docs(p, &docs, &n);
    size_t pos = hl + 1;
    while (st == HR_OK && pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        if (!nl) break; /* a torn last line is dropped */
        size_t end = (size_t)(nl - text);
        cJSON *j = NULL;
        if (hr_json_parse(text + pos, end - pos, &j) != HR_OK) {
            st = hr_err(HR_ERR_INVALID_ARG, "line %d of the file is not a document record", *n_done + 2);
            break;
        }
        const cJSON *doc = cJSON_GetObjectItemCaseSensitive(j, "doc"),
                    *sha = cJSON_GetObjectItemCaseSensitive(j, "sha256");
        char want[65] = "";
        if (*n_done < n) hr_sha256_hex(docs[*n_done].text, docs[*n_done].len, want);
        bool ok = cJSON_IsNumber(doc) && doc->valuedouble == *n_done && cJSON_IsString(sha) &&
                  !strcmp(sha->valuestring, want);
        cJSON_Delete(j);
        if (!ok) {
            st =
                hr_err(HR_ERR_INVALID_ARG, "line %d of the file is not document %d of this text", *n_done + 2, *n_done);
            break;
        }
        ++*n_done;
        pos = end + 1;
    }
    free(docs);
    if (st == HR_OK) *keep = pos < len ? pos : len;
    return st;
}
