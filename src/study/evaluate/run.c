/* A whole evaluation run (hr_eval_run, see evaluate.h) and its JSON. */
#include "headroom/evaluate.h"
#include "headroom/study.h"
#include "headroom/kvcache.h"
#include "study/evaluate/evaluate_internal.h"
#include "model/model_internal.h"
#include "core/progress.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { PASSKEY_NEEDLE = 16 };
static const int k_passkey_lengths[HR_EVAL_PASSKEY_LENGTHS] = {64, 128, 256, 512};

struct hr_eval_result {
    hr_eval_summary s;                                     /* its pointers point into the fields below */
    int passkey_length[HR_EVAL_PASSKEY_LENGTHS];           /* (HR_EVAL_PASSKEY_LENGTHS) */
    hr_passkey_result passkey[HR_EVAL_PASSKEY_LENGTHS][2]; /* [length][base, candidate] */
    char warning[256];
    char *paths[4]; /* owned copies: base, candidate, text, tasks */
    char *heads;    /* hr_head_mask_describe of the candidate's mask, "" for none */
};

hr_eval_params hr_eval_default_params(void) {
    hr_eval_params p;
    memset(&p, 0, sizeof p);
    p.max_tokens = HR_EVAL_TOKENS;
    p.fdtm_prompts = 8;
    p.fdtm_prompt_len = 16;
    p.fdtm_gen = 32;
    p.passkey_trials = 20;
    p.speed = true;
    p.cand_kv_random = -1;
    p.recall_items = 200;
    return p;
}

void hr_eval_result_free(hr_eval_result *r) {
    if (!r) return;
    for (int i = 0; i < 4; i++) free(r->paths[i]);
    free(r->heads);
    free(r);
}

const hr_eval_summary *hr_eval_result_summary(const hr_eval_result *r) { return r ? &r->s : NULL; }

/* Copies the path and hashes what it names. */
static hr_status source(hr_eval_result *r, int i, const char *path, hr_eval_source *out) {
    out->path = "";
    out->sha256[0] = 0;
    if (!path) return HR_OK;
    if (!(r->paths[i] = strdup(path))) return hr_err(HR_ERR_NOMEM, "out of memory");
    out->path = r->paths[i];
    return hr_sha256_path(path, out->sha256);
}

/* Whether a and b name the same file or folder (an 8B model's 16 GB take
 * minutes to hash). */
static bool same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Everything that can be refused before the work. */
static hr_status check(const hr_model *base, const hr_model *cand, const hr_tokenizer *tok, const hr_eval_params *p,
                       int *n_ctx) {
    if (!base || !cand || !tok || !p || !p->text)
        return hr_err(HR_ERR_INVALID_ARG, "evaluation needs two models, a tokenizer and a text");
    const hr_config *cb = &base->cfg, *cc = &cand->cfg;
    if (cb->vocab_size != cc->vocab_size)
        return hr_err(HR_ERR_INVALID_ARG, "the models do not share a vocabulary (%d and %d tokens)", cb->vocab_size,
                      cc->vocab_size);
    if (p->n_ctx < 0 || p->windows < 0 || p->max_tokens < 0 || p->fdtm_prompts < 1 || p->fdtm_prompt_len < 2 ||
        p->fdtm_gen < 1 || p->passkey_trials < 1 || p->recall_items < 1 || p->cand_kv_random > 1)
        return hr_err(HR_ERR_RANGE, "evaluation parameter out of range");
    if (p->cand_kv_random >= 0 && p->cand_kv_plan)
        return hr_err(HR_ERR_INVALID_ARG, "a random KV plan and a KV plan for the candidate exclude each other");
    int seq = cb->seq_len < cc->seq_len ? cb->seq_len : cc->seq_len;
    *n_ctx = hr_calib_window(seq, p->n_ctx);
    if (*n_ctx > seq) return hr_err(HR_ERR_RANGE, "window %d exceeds the models' context length %d", *n_ctx, seq);
    if (*n_ctx < p->fdtm_prompt_len + p->fdtm_gen)
        return hr_err(HR_ERR_RANGE, "window %d is too short for %d-token FDTM prompts and %d generated tokens", *n_ctx,
                      p->fdtm_prompt_len, p->fdtm_gen);
    return HR_OK;
}

/* The candidate's context carries its KV plan (given or random) and head
 * mask; the base keeps its full cache and all heads. */
static hr_status contexts(const hr_model *base, const hr_model *cand, const hr_eval_params *p, int n_ctx,
                          const int32_t *ids, size_t n_ids, hr_context **c) {
    hr_context_params cp = hr_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = p->n_threads;
    cp.bf16_dot = p->bf16_dot;
    cp.int8_dot = p->int8_dot;
    hr_kv_plan *rnd = NULL;
    hr_status st = hr_context_new(base, &cp, &c[0]);
    if (st == HR_OK && p->cand_kv_random >= 0) {
        hr_kv_policy rest = {HR_KV_STREAMING, 4, 64, 0};
        st = hr_kv_plan_random(&cand->cfg, (float)p->cand_kv_random, rest, p->seed, &rnd);
    }
    cp.kv_plan = rnd ? rnd : p->cand_kv_plan;
    if (st == HR_OK) st = hr_context_new(cand, &cp, &c[1]);
    hr_kv_plan_free(rnd);
    if (st == HR_OK && p->cand_heads)
        st = hr_head_mask_apply(p->cand_heads, c[1], p->calib_tokens ? p->calib_tokens : ids,
                                p->calib_tokens ? p->n_calib_tokens : n_ids);
    return st;
}

static hr_status measure(hr_context **c, const int32_t *ids, size_t n_ids, const hr_eval_params *p, hr_eval_result *r) {
    hr_eval_summary *s = &r->s;
    hr_status st = hr_compare_logits(c[0], c[1], ids, n_ids, s->n_ctx, p->windows, &s->cmp);
    if (st == HR_OK)
        st = hr_compare_fdtm(c[0], c[1], ids, n_ids, p->fdtm_prompts, p->fdtm_prompt_len, p->fdtm_gen, p->seed,
                             &s->fdtm);
    s->ppl_base = exp(s->cmp.nll_base);
    s->ppl_cand = exp(s->cmp.nll_cand);
    for (int k = 0; st == HR_OK && p->passkey && k < HR_EVAL_PASSKEY_LENGTHS && k_passkey_lengths[k] <= s->n_ctx; k++) {
        for (int i = 0; st == HR_OK && i < 2; i++)
            st = hr_passkey(c[i], ids, n_ids, ids[0], k_passkey_lengths[k], p->passkey_trials, PASSKEY_NEEDLE, p->seed,
                            &r->passkey[k][i]);
        r->passkey_length[k] = k_passkey_lengths[k];
        s->n_passkey = k + 1;
    }
    return st;
}

static hr_status tasks_and_speed(const hr_model *const *m, hr_context **c, const hr_tokenizer *tok, const int32_t *ids,
                                 const hr_eval_params *p, hr_eval_summary *s) {
    hr_status st = HR_OK;
    for (int i = 0; st == HR_OK && p->tasks && i < 2; i++) st = hr_mc_eval(c[i], tok, p->tasks, &s->tasks_result[i]);
    s->has_tasks = p->tasks != NULL;
    if (p->recall) {
        hr_recall_params rp = hr_recall_default_params();
        rp.max_items = p->recall_items;
        rp.max_ctx = s->n_ctx;
        rp.seed = p->seed;
        hr_mc_task *t = NULL;
        if (st == HR_OK) st = hr_recall_task_build(tok, p->text, p->text_len, &rp, &t);
        for (int i = 0; st == HR_OK && i < 2; i++) st = hr_mc_eval(c[i], tok, t, &s->recall_result[i]);
        hr_mc_task_free(t);
        s->has_recall = true;
    }
    int np = s->n_ctx / 2, nd = s->n_ctx / 4;
    if (st == HR_OK && p->speed) st = hr_progress_phase("speed", "models", 2);
    for (int i = 0; st == HR_OK && p->speed && i < 2; i++) {
        st = hr_measure_speed(c[i], ids, np, nd, 3, &s->prefill_tps[i], &s->decode_tps[i]);
        if (st == HR_OK) st = hr_progress_update(i + 1);
    }
    s->has_speed = p->speed;
    for (int i = 0; i < 2; i++) {
        s->params[i] = hr_model_n_params(m[i]);
        s->weight_bytes[i] = hr_model_weight_bytes(m[i]);
        s->kv_bytes_per_token[i] = hr_model_kv_bytes_per_token(m[i]);
        s->kv_bytes_allocated[i] = (int64_t)hr_context_kv_bytes(c[i]);
    }
    return st;
}

hr_status hr_eval_run(const hr_model *base, const hr_model *cand, const hr_tokenizer *tok, const hr_eval_params *p,
                      hr_eval_result **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    int n_ctx = 0;
    hr_status st = check(base, cand, tok, p, &n_ctx);
    if (st != HR_OK) return st;
    hr_eval_result *r = calloc(1, sizeof *r);
    if (!r) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_eval_summary *s = &r->s;
    s->passkey_length = r->passkey_length;
    s->passkey = &r->passkey[0][0];
    s->warning = r->warning;
    s->n_ctx = n_ctx;
    s->fdtm_prompts = p->fdtm_prompts;
    s->fdtm_gen = p->fdtm_gen;
    s->windows_asked = p->windows;
    s->kv_random = p->cand_kv_random;
    st = p->cand_heads ? hr_head_mask_describe(p->cand_heads, &r->heads)
                       : ((r->heads = calloc(1, 1)) ? HR_OK : HR_ERR_NOMEM);
    if (st != HR_OK) {
        hr_eval_result_free(r);
        return hr_err(HR_ERR_NOMEM, "out of memory");
    }
    int32_t *ids = NULL;
    size_t n_ids = 0;
    hr_context *c[2] = {NULL, NULL};
    const hr_model *m[2] = {base, cand};
    hr_eval_params q = *p;
    st = hr_calib_tokens(tok, p->text, p->text_len, 0, &ids, &n_ids);
    if (st == HR_OK && p->speed && n_ids < (size_t)(n_ctx / 2 + n_ctx / 4))
        st = hr_err(HR_ERR_RANGE, "the text gives %zu tokens; the speed measurement needs %d (or skip it)", n_ids,
                    n_ctx / 2 + n_ctx / 4);
    if (st == HR_OK && !q.windows && q.max_tokens) {
        q.windows = (int)(q.max_tokens / n_ctx > 0 ? q.max_tokens / n_ctx : 1);
        s->max_tokens = q.max_tokens;
    }
    s->text_tokens = (int64_t)n_ids;
    int n_passkey = 0;
    for (int k = 0; p->passkey && k < HR_EVAL_PASSKEY_LENGTHS; k++) n_passkey += k_passkey_lengths[k] <= n_ctx;
    hr_progress_run
        run; /* hashing, KL / top-1, FDTM, passkey per length and model, tasks and recall per model, speed */
    hr_progress_enter(&run, p->progress_phase, p->progress_user_data,
                      3 + 2 * n_passkey + (p->tasks ? 2 : 0) + (p->recall ? 2 : 0) + (p->speed ? 1 : 0));
    const char *paths[4] = {p->base_path, p->cand_path, p->text_path, p->tasks_path};
    hr_eval_source *srcs[4] = {&s->base, &s->cand, &s->text, &s->tasks};
    if (st == HR_OK) st = hr_progress_phase("hashing inputs", "files", 4);
    for (int i = 0; st == HR_OK && i < 4; i++) {
        if (i == 1 && same_file(paths[0], paths[1])) { /* masked heads / KV plan on BASE: hash it once */
            if (!(r->paths[1] = strdup(paths[1]))) st = hr_err(HR_ERR_NOMEM, "out of memory");
            else {
                s->cand.path = r->paths[1];
                memcpy(s->cand.sha256, s->base.sha256, sizeof s->cand.sha256);
            }
        } else st = source(r, i, paths[i], srcs[i]);
        if (st == HR_OK) st = hr_progress_update(i + 1);
    }
    if (st == HR_OK) st = contexts(base, cand, p, n_ctx, ids, n_ids, c);
    if (st == HR_OK) st = measure(c, ids, n_ids, &q, r);
    if (st == HR_OK) st = tasks_and_speed(m, c, tok, ids, p, s);
    hr_progress_leave(&run);
    if (st == HR_OK && s->ppl_cand > 10 * s->ppl_base)
        snprintf(
            r->warning, sizeof r->warning,
            "the candidate's perplexity (%.4g) is %.1fx the base's (%.4g): it needs recovery fine-tuning before use",
            s->ppl_cand, s->ppl_cand / s->ppl_base, s->ppl_base);
    free(ids);
    for (int i = 0; i < 2; i++) hr_context_free(c[i]);
    if (st != HR_OK) {
        hr_eval_result_free(r);
        return st;
    }
    *out = r;
    return HR_OK;
}

/* ---- eval.json ---- */

static void add_source(cJSON *o, const hr_eval_source *src) {
    cJSON_AddStringToObject(o, "path", src->path);
    cJSON_AddStringToObject(o, "sha256", src->sha256);
}

hr_status hr_eval_result_json(const hr_eval_result *r, char **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!r) return hr_err(HR_ERR_INVALID_ARG, "no evaluation result given");
    const hr_eval_summary *s = &r->s;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", "headroom.eval");
    cJSON_AddNumberToObject(j, "format_version", 1);
    cJSON *t = cJSON_AddObjectToObject(j, "text");
    add_source(t, &s->text);
    cJSON_AddNumberToObject(t, "tokens", (double)s->text_tokens);
    cJSON_AddNumberToObject(t, "budget_tokens", (double)s->max_tokens);
    cJSON_AddNumberToObject(j, "scored_tokens", (double)s->cmp.n_tokens);
    cJSON_AddNumberToObject(j, "windows", s->cmp.n_windows);
    cJSON_AddNumberToObject(j, "ctx", s->n_ctx);
    cJSON_AddNumberToObject(j, "ppl_base", s->ppl_base);
    cJSON_AddNumberToObject(j, "ppl_candidate", s->ppl_cand);
    cJSON_AddNumberToObject(j, "kl", s->cmp.kl);
    cJSON_AddNumberToObject(j, "kl_max", s->cmp.kl_max);
    cJSON_AddNumberToObject(j, "top1_agreement", s->cmp.top1);
    cJSON_AddNumberToObject(j, "fdtm", s->fdtm);
    cJSON_AddNumberToObject(j, "fdtm_gen", s->fdtm_gen);
    if (s->warning[0]) cJSON_AddStringToObject(j, "warning", s->warning);
    if (s->n_passkey) {
        cJSON *pk = cJSON_AddArrayToObject(j, "passkey");
        for (int k = 0; k < s->n_passkey; k++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "length", s->passkey_length[k]);
            cJSON_AddNumberToObject(e, "trials", s->passkey[2 * k].trials);
            cJSON_AddNumberToObject(e, "token_acc_base", s->passkey[2 * k].token);
            cJSON_AddNumberToObject(e, "token_acc_candidate", s->passkey[2 * k + 1].token);
            cJSON_AddNumberToObject(e, "exact_base", s->passkey[2 * k].exact);
            cJSON_AddNumberToObject(e, "exact_candidate", s->passkey[2 * k + 1].exact);
            cJSON_AddItemToArray(pk, e);
        }
    }
    if (s->has_tasks) {
        cJSON *tk = cJSON_AddObjectToObject(j, "tasks");
        if (s->tasks.path[0]) add_source(tk, &s->tasks);
        cJSON_AddNumberToObject(tk, "items", s->tasks_result[0].n_items);
        cJSON_AddNumberToObject(tk, "acc_base", s->tasks_result[0].acc);
        cJSON_AddNumberToObject(tk, "acc_candidate", s->tasks_result[1].acc);
        cJSON_AddNumberToObject(tk, "acc_norm_base", s->tasks_result[0].acc_norm);
        cJSON_AddNumberToObject(tk, "acc_norm_candidate", s->tasks_result[1].acc_norm);
    }
    if (s->has_recall) {
        cJSON *rc = cJSON_AddObjectToObject(j, "recall");
        cJSON_AddStringToObject(rc, "task", "name recall from the text, 4 choices (chance 0.25)");
        cJSON_AddNumberToObject(rc, "items", s->recall_result[0].n_items);
        cJSON_AddNumberToObject(rc, "acc_base", s->recall_result[0].acc);
        cJSON_AddNumberToObject(rc, "acc_candidate", s->recall_result[1].acc);
        cJSON_AddNumberToObject(rc, "acc_norm_base", s->recall_result[0].acc_norm);
        cJSON_AddNumberToObject(rc, "acc_norm_candidate", s->recall_result[1].acc_norm);
    }
    if (r->heads[0]) cJSON_AddStringToObject(j, "candidate_heads", r->heads);
    if (s->kv_random >= 0) cJSON_AddNumberToObject(j, "candidate_kv_random_fraction", s->kv_random);
    static const char *names[2] = {"base", "candidate"};
    const hr_eval_source *srcs[2] = {&s->base, &s->cand};
    for (int i = 0; i < 2; i++) {
        cJSON *e = cJSON_AddObjectToObject(j, names[i]);
        add_source(e, srcs[i]);
        cJSON_AddNumberToObject(e, "params", (double)s->params[i]);
        cJSON_AddNumberToObject(e, "weight_bytes", (double)s->weight_bytes[i]);
        cJSON_AddNumberToObject(e, "kv_bytes_per_token", (double)s->kv_bytes_per_token[i]);
        cJSON_AddNumberToObject(e, "kv_bytes_allocated", (double)s->kv_bytes_allocated[i]);
        if (s->has_speed) {
            cJSON_AddNumberToObject(e, "prefill_tokens_per_s", s->prefill_tps[i]);
            cJSON_AddNumberToObject(e, "decode_tokens_per_s", s->decode_tps[i]);
        }
    }
    char *txt = cJSON_Print(j);
    cJSON_Delete(j);
    if (!txt) return hr_err(HR_ERR_NOMEM, "out of memory");
    *out = txt;
    return HR_OK;
}
