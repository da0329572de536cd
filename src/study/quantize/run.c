/* A whole quantization study (hr_quantize_run, see quantize.h): lists the
 * weight matrices, scores each eligible one by quantizing only it (Q8_0
 * quantize-dequantize in a view of the model that borrows every other
 * weight), ranks them and takes the P % of eligible parameters. */
#include "headroom/quantize.h"
#include "study/quantize/quantize_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "headroom/context.h"
#include "headroom/evaluate.h"
#include "headroom/save.h"
#include "headroom/study.h"
#include "core/progress.h"
#include "core/rng.h"
#include "formats/dtype.h"
#include "io/io_internal.h"
#include "model/arch.h"

#define RNG_STREAM_QUANT 0x51a47ull /* the random order's stream of the seed */

hr_quantize_params hr_quantize_default_params(void) {
    hr_quantize_params p = {0};
    p.by = HR_QUANT_BY_FDTM;
    p.int8_percent = 80.0;
    p.max_tokens = 4096;
    p.fdtm_prompts = 32;
    p.fdtm_prompt_len = 16;
    p.fdtm_gen = 32;
    p.dtype = HR_DTYPE_KEEP;
    return p;
}

hr_status hr_quant_by_from_name(const char *name, hr_quant_by *out) {
    static const char *names[] = {"fdtm", "ppl", "random"};
    for (int i = 0; name && i < 3; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (hr_quant_by)i;
            return HR_OK;
        }
    return hr_err(HR_ERR_INVALID_ARG, "unknown ranking '%s' (fdtm, ppl, random)", name ? name : "");
}

const char *hr_quant_by_name(hr_quant_by b) {
    return b == HR_QUANT_BY_PPL ? "ppl" : b == HR_QUANT_BY_RANDOM ? "random" : "fdtm";
}

hr_status hr_quant_format_from_name(const char *name, hr_quant_format *out) {
    if (name && strcmp(name, "q8_0") == 0) *out = HR_QUANT_Q8_0;
    else if (name && strcmp(name, "int8") == 0) *out = HR_QUANT_INT8;
    else return hr_err(HR_ERR_INVALID_ARG, "unknown format '%s' (q8_0, int8)", name ? name : "");
    return HR_OK;
}

const char *hr_quant_format_name(hr_quant_format f) { return f == HR_QUANT_INT8 ? "int8" : "q8_0"; }

void hr_quantize_result_free(hr_quantize_result *r) {
    if (!r) return;
    for (int i = 0; i < r->n; i++) free((char *)r->comp[i].pub.name);
    free(r->comp);
    free(r);
}

const hr_quantize_summary *hr_quantize_result_summary(const hr_quantize_result *r) { return r ? &r->sum : NULL; }

const hr_quant_component *hr_quantize_component(const hr_quantize_result *r, int i) {
    return r && i >= 0 && i < r->n ? &r->comp[i].pub : NULL;
}

static hr_status add_component(hr_quantize_result *r, int *cap, const char *name, int layer) {
    if (r->n == *cap) {
        int nc = *cap ? *cap * 2 : 32;
        hr_qcomp *p = realloc(r->comp, (size_t)nc * sizeof *p);
        if (!p) return hr_err(HR_ERR_NOMEM, "out of memory");
        r->comp = p, *cap = nc;
    }
    hr_qcomp *c = &r->comp[r->n];
    memset(c, 0, sizeof *c);
    c->pub.name = strdup(name);
    if (!c->pub.name) return hr_err(HR_ERR_NOMEM, "out of memory");
    r->n++;
    c->pub.layer = layer;
    c->pub.rank = -1;
    c->pub.fdtm = c->pub.ppl = c->pub.dppl = c->pub.kl = NAN;
    return HR_OK;
}

/* The components: matrices as the GGUF writer names them (Q/K/V fused into
 * attn_qkv where the architecture's GGUF fuses them). */
static hr_status list_components(hr_quantize_result *r) {
    const hr_model *m = r->base;
    const hr_arch_info *ai = hr_arch_info_of(m->cfg.arch);
    int n = hr_model_tensors(m, NULL, 0), cap = 0;
    hr_tensor_ref *refs = malloc((size_t)(n ? n : 1) * sizeof *refs); // (n)
    if (!refs) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_model_tensors(m, refs, n);
    hr_status st = HR_OK;
    for (int i = 0; i < n && st == HR_OK; i++) {
        const hr_tensor_ref *t = &refs[i];
        if (t->n_dims != 2) continue;
        bool fused = ai && ai->gguf_fused_qkv && t->layer >= 0 &&
                     (strstr(t->name, ".attn_q.") || strstr(t->name, ".attn_k.") || strstr(t->name, ".attn_v."));
        if (fused && !strstr(t->name, ".attn_q.")) { /* K and V join the attn_qkv component Q opened */
            hr_qcomp *c = &r->comp[r->n - 1];
            c->part[c->n_parts] = t->data, c->part_n[c->n_parts++] = (size_t)t->rows * (size_t)t->cols;
            c->pub.params += t->rows * t->cols;
            continue;
        }
        char name[96];
        if (fused) snprintf(name, sizeof name, "blk.%d.attn_qkv.weight", t->layer);
        else snprintf(name, sizeof name, "%s", t->name);
        if ((st = add_component(r, &cap, name, t->layer)) != HR_OK) break;
        hr_qcomp *c = &r->comp[r->n - 1];
        c->part[0] = t->data, c->part_n[0] = (size_t)t->rows * (size_t)t->cols, c->n_parts = 1;
        c->cols = (int)t->cols;
        c->pub.params = t->rows * t->cols;
        /* int8: not GPT-2's family (fused QKV in GGUF, Conv1D in HF: no Linear layout) */
        bool conv1d = ai && ai->gguf_fused_qkv;
        c->pub.eligible = r->params.format == HR_QUANT_INT8 ? !conv1d && hr_int8_channel_eligible(t->wslot, t->cols)
                                                            : hr_gguf_q8_eligible(name, t->rows, t->cols);
    }
    free(refs);
    return st;
}

/* A part's quantize-dequantize in the study's format into dst (q: scratch
 * of cols bytes for int8). */
static void round_trip(hr_quant_format f, const float *src, float *dst, size_t n, int cols, int8_t *q) {
    if (f == HR_QUANT_Q8_0) {
        hr_q8_0_round_trip(src, dst, n);
        return;
    }
    for (size_t at = 0; at < n; at += (size_t)cols) {
        float s = hr_quantize_i8_row(src + at, q, (size_t)cols);
        hr_dequant_i8(q, s, dst + at, (size_t)cols);
    }
}

/* A model that borrows every weight of m except the component's, which it
 * holds as its quantize-dequantize (Q8_0 or per-channel int8). */
static hr_status quantized_view(const hr_model *m, const hr_qcomp *c, hr_quant_format f, hr_model **out) {
    *out = NULL;
    hr_model *v = calloc(1, sizeof *v);
    if (!v) return hr_err(HR_ERR_NOMEM, "out of memory");
    v->cfg = m->cfg, v->w = m->w, v->format = m->format;
    snprintf(v->source_dtype, sizeof v->source_dtype, "%s", m->source_dtype);
    int8_t *row = malloc((size_t)c->cols + 1); // (cols) one int8 row
    for (int k = 0; k < c->n_parts; k++) {
        float *q = row ? hr_model_alloc_owned(v, c->part_n[k]) : NULL; // (rows, cols) of the part
        if (!q) {
            free(row);
            hr_model_free(v);
            return hr_err(HR_ERR_NOMEM, "out of memory quantizing '%s'", c->pub.name);
        }
        round_trip(f, c->part[k], q, c->part_n[k], c->cols, row);
        /* every slot pointing at the matrix: a tied classifier shares the embedding */
        for (int l = -1; l < m->cfg.n_layers; l++)
            for (int s = l < 0 ? HR_SLOT_TOK_EMBD : 0; s < (l < 0 ? HR_SLOT_OUTPUT + 1 : HR_N_LAYER_SLOTS); s++) {
                const float **pp = hr_slot_ptr(&v->w, l < 0 ? 0 : l, (hr_slot)s);
                if (pp && *pp == c->part[k]) *pp = q;
            }
    }
    free(row);
    *out = v;
    return HR_OK;
}

static hr_status new_context(const hr_model *m, int n_ctx, int n_threads, hr_context **ctx) {
    hr_context_params cp = hr_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = n_threads;
    return hr_context_new(m, &cp, ctx);
}

/* The comparisons' own phases (windows, prompts) would interleave with
 * "scoring components" once per matrix: they go here instead. */
static int quiet_phase(const hr_progress_info *info, void *user_data) {
    (void)info, (void)user_data;
    return 0;
}

/* Scores one component against the base context. */
static hr_status score(hr_quantize_result *r, hr_qcomp *c, hr_context *base, const int32_t *ids, size_t n_ids) {
    const hr_quantize_params *p = &r->params;
    hr_model *v = NULL;
    hr_context *cand = NULL;
    hr_status st = quantized_view(r->base, c, p->format, &v);
    if (st == HR_OK) st = new_context(v, r->ctx_len, p->n_threads, &cand);
    hr_compare_result cr;
    hr_progress_run inner;
    hr_progress_enter(&inner, quiet_phase, NULL, 0);
    if (st == HR_OK) st = hr_compare_logits(base, cand, ids, n_ids, r->n_ctx, 0, &cr);
    double f = NAN;
    if (st == HR_OK)
        st = hr_compare_fdtm(base, cand, ids, n_ids, p->fdtm_prompts, p->fdtm_prompt_len, p->fdtm_gen, p->seed, &f);
    hr_progress_leave(&inner);
    if (st == HR_OK) {
        r->sum.base_ppl = exp(cr.nll_base);
        r->sum.n_tokens = (int)cr.n_tokens;
        c->pub.ppl = exp(cr.nll_cand);
        c->pub.dppl = c->pub.ppl - r->sum.base_ppl;
        c->pub.kl = cr.kl;
        c->pub.fdtm = f;
    } else {
        hr_err_prefix("scoring '%s'", c->pub.name);
    }
    hr_context_free(cand);
    hr_model_free(v);
    return st;
}

static hr_status score_all(hr_quantize_result *r, const hr_tokenizer *tok) {
    const hr_quantize_params *p = &r->params;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    hr_status st = hr_calib_tokens(tok, p->text, p->text_len, p->max_tokens, &ids, &n_ids);
    if (st == HR_OK && n_ids < (size_t)p->fdtm_prompt_len + 1)
        st = hr_err(HR_ERR_RANGE, "the text gives %zu tokens: an FDTM prompt needs %d", n_ids, p->fdtm_prompt_len + 1);
    hr_context *base = NULL;
    if (st == HR_OK) st = new_context(r->base, r->ctx_len, p->n_threads, &base);
    if (st == HR_OK) st = hr_progress_phase("scoring components", "components", r->sum.n_eligible);
    for (int i = 0, done = 0; st == HR_OK && i < r->n; i++) {
        if (!r->comp[i].pub.eligible) continue;
        st = score(r, &r->comp[i], base, ids, n_ids);
        if (st == HR_OK) st = hr_progress_update(++done);
    }
    hr_context_free(base);
    hr_free(ids);
    return st;
}

/* Ranking keys (see quantize.h); ties keep listing order. */
typedef struct {
    double fdtm, dppl;
    int index;
    bool by_fdtm;
} rank_key;

static int by_score(const void *a, const void *b) {
    const rank_key *x = a, *y = b;
    if (x->by_fdtm && x->fdtm != y->fdtm) return x->fdtm > y->fdtm ? -1 : 1;
    if (x->dppl != y->dppl) return x->dppl < y->dppl ? -1 : 1;
    return x->index - y->index;
}

static int64_t smallest(const hr_quantize_result *r) {
    int64_t s = 0;
    for (int i = 0; i < r->n; i++)
        if (r->comp[i].pub.eligible && (s == 0 || r->comp[i].pub.params < s)) s = r->comp[i].pub.params;
    return s;
}

static hr_status choose(hr_quantize_result *r) {
    rank_key *order = malloc(sizeof *order * (size_t)(r->n + 1)); // (n_eligible)
    if (!order) return hr_err(HR_ERR_NOMEM, "out of memory");
    int k = 0;
    for (int i = 0; i < r->n; i++)
        if (r->comp[i].pub.eligible)
            order[k++] = (rank_key){r->comp[i].pub.fdtm, r->comp[i].pub.dppl, i, r->params.by == HR_QUANT_BY_FDTM};
    if (r->params.by == HR_QUANT_BY_RANDOM) {
        hr_rng rng = hr_rng_stream(r->params.seed, RNG_STREAM_QUANT);
        hr_rng_shuffle(&rng, order, (size_t)k, sizeof *order);
    } else {
        qsort(order, (size_t)k, sizeof *order, by_score);
    }
    double target = r->params.int8_percent / 100.0 * (double)r->sum.params_eligible;
    for (int j = 0; j < k; j++) {
        hr_quant_component *c = &r->comp[order[j].index].pub;
        c->rank = j;
        if ((double)(r->sum.params_int8 + c->params) <= target) {
            c->chosen = true;
            r->sum.params_int8 += c->params;
            r->sum.n_chosen++;
        }
    }
    free(order);
    if (r->sum.n_chosen == 0)
        return hr_err(HR_ERR_RANGE,
                      "%g %% of the %lld eligible parameters holds no whole matrix (the smallest has %lld)",
                      r->params.int8_percent, (long long)r->sum.params_eligible, (long long)smallest(r));
    return HR_OK;
}

static hr_status check_params(const hr_model *m, const hr_tokenizer *tok, const hr_quantize_params *p, int *n_ctx) {
    if (p->dtype == HR_DTYPE_Q8_0)
        return hr_err(HR_ERR_INVALID_ARG, "the matrices not chosen are written f32, f16 or bf16, not q8_0");
    if (p->dtype == HR_DTYPE_INT8)
        return hr_err(HR_ERR_INVALID_ARG, "the matrices not chosen are written f32, f16 or bf16, not int8");
    if ((unsigned)p->dtype > HR_DTYPE_KEEP) return hr_err(HR_ERR_INVALID_ARG, "unknown dtype %d", (int)p->dtype);
    if (!(p->int8_percent > 0 && p->int8_percent < 100))
        return hr_err(HR_ERR_RANGE, "the int8 share must lie in (0, 100) %%, got %g %%", p->int8_percent);
    if ((unsigned)p->by > HR_QUANT_BY_RANDOM) return hr_err(HR_ERR_INVALID_ARG, "unknown ranking %d", (int)p->by);
    if ((unsigned)p->format > HR_QUANT_INT8) return hr_err(HR_ERR_INVALID_ARG, "unknown format %d", (int)p->format);
    if (p->by != HR_QUANT_BY_RANDOM && !p->text)
        return hr_err(HR_ERR_INVALID_ARG, "ranking by %s needs a text to score the components on",
                      hr_quant_by_name(p->by));
    if (p->text && !tok) return hr_err(HR_ERR_INVALID_ARG, "scoring needs a tokenizer");
    if (p->max_tokens < 0 || p->n_ctx < 0 || p->n_threads < 0) return hr_err(HR_ERR_RANGE, "negative size or count");
    if (p->fdtm_prompts < 1 || p->fdtm_prompt_len < 2 || p->fdtm_gen < 1)
        return hr_err(HR_ERR_RANGE, "FDTM needs at least 1 prompt of 2 tokens and 1 generated token");
    int seq = m->cfg.seq_len;
    if (p->n_ctx > seq) return hr_err(HR_ERR_RANGE, "window %d exceeds the model's context (%d)", p->n_ctx, seq);
    *n_ctx = hr_calib_window(seq, p->n_ctx);
    if (p->text && p->fdtm_prompt_len + p->fdtm_gen > seq)
        return hr_err(HR_ERR_RANGE, "an FDTM prompt of %d + %d tokens exceeds the model's context (%d)",
                      p->fdtm_prompt_len, p->fdtm_gen, seq);
    return HR_OK;
}

hr_status hr_quantize_run(const hr_model *m, const hr_tokenizer *tok, const hr_quantize_params *p,
                          hr_quantize_result **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!m || !p) return hr_err(HR_ERR_INVALID_ARG, "no model or parameters given");
    hr_status need_ = hr_model_need_f32(m); /* reads f32 rows (model_internal.h) */
    if (need_ != HR_OK) return need_;
    int n_ctx = 0;
    hr_status st = check_params(m, tok, p, &n_ctx);
    if (st != HR_OK) return st;
    hr_quantize_result *r = calloc(1, sizeof *r);
    if (!r) return hr_err(HR_ERR_NOMEM, "out of memory");
    r->base = m;
    r->params = *p;
    r->n_ctx = n_ctx;
    r->ctx_len = n_ctx > p->fdtm_prompt_len + p->fdtm_gen ? n_ctx : p->fdtm_prompt_len + p->fdtm_gen;
    r->sum.base_ppl = NAN;
    r->sum.params_total = hr_model_n_params(m);
    hr_dtype kept = hr_dtype_for_model(m, p->dtype, true);
    if (p->dtype == HR_DTYPE_KEEP && kept == HR_DTYPE_Q8_0) kept = HR_DTYPE_F32;
    r->kept = kept;
    snprintf(r->sum.kept_dtype, sizeof r->sum.kept_dtype, "%s", hr_dtype_name(kept));
    st = list_components(r);
    for (int i = 0; i < r->n; i++)
        if (r->comp[i].pub.eligible) r->sum.n_eligible++, r->sum.params_eligible += r->comp[i].pub.params;
    r->sum.n_components = r->n;
    if (st == HR_OK && r->sum.n_eligible == 0)
        st = p->format == HR_QUANT_INT8
                 ? hr_err(HR_ERR_UNSUPPORTED, "this model has no attention or MLP projection that per-channel int8 "
                                              "can hold (GPT-2's fused Conv1D matrices are not)")
                 : hr_err(HR_ERR_UNSUPPORTED,
                          "no weight matrix of this model can be Q8_0 (rows must hold a multiple of 32 values)");
    hr_progress_run run;
    hr_progress_enter(&run, p->progress_phase, p->progress_user_data, p->text ? 1 : 0);
    if (st == HR_OK && p->text) {
        r->sum.scored = true;
        st = score_all(r, tok);
    }
    hr_progress_leave(&run);
    if (st == HR_OK) st = choose(r);
    if (st != HR_OK) {
        hr_quantize_result_free(r);
        return st;
    }
    r->params.text = NULL; /* borrowed: not kept */
    *out = r;
    return HR_OK;
}

/* Writes r to path as GGUF (Q8_0 results) or an HF folder (int8 ones). */
static hr_status save(const hr_quantize_result *r, const hr_tokenizer *tok, const char *path, hr_quant_format f) {
    if (!r || !path) return hr_err(HR_ERR_INVALID_ARG, "no result or output path given");
    if (r->params.format != f)
        return hr_err(HR_ERR_INVALID_ARG, "a %s result is written as %s", hr_quant_format_name(r->params.format),
                      r->params.format == HR_QUANT_INT8 ? "a Hugging Face folder (hr_quantize_save_hf)"
                                                        : "GGUF (hr_quantize_save_gguf)");
    const char **names = malloc(sizeof(char *) * (size_t)(r->sum.n_chosen + 1)); // (n_chosen)
    if (!names) return hr_err(HR_ERR_NOMEM, "out of memory");
    int k = 0;
    for (int i = 0; i < r->n; i++)
        if (r->comp[i].pub.chosen) names[k++] = r->comp[i].pub.name;
    hr_status st = f == HR_QUANT_INT8 ? hr_hf_save_int8_mixed(r->base, tok, path, r->kept, names, k)
                                      : hr_gguf_save_mixed(r->base, tok, path, r->kept, names, k);
    free(names);
    return st;
}

hr_status hr_quantize_save_gguf(const hr_quantize_result *r, const hr_tokenizer *tok, const char *path) {
    return save(r, tok, path, HR_QUANT_Q8_0);
}

hr_status hr_quantize_save_hf(const hr_quantize_result *r, const hr_tokenizer *tok, const char *dir) {
    return save(r, tok, dir, HR_QUANT_INT8);
}
