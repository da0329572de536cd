/* Pruning a model whose matrices are typed (bf16, f16, Q8_0 in a GGUF)
 * cuts them in their dtype (study/prune/build.c) without converting the
 * model to f32, and the GGUF writer writes them from those bytes. The
 * independent reference is today's path: the same model converted to f32
 * (hr_model_need_f32), pruned, written. stories260K (head_dim 8, n_ff 172)
 * converted to each dtype; two specs:
 *   exact: layer 0 drops query heads 0-3 (attn_output keeps the whole
 *          32-blocks 32..63), layer 1 drops 50 neurons, layer 2 its
 *          attention, layer 3 query heads 0-1 (48 columns: a Q8_0 row of
 *          48 values cannot be Q8_0, it stays f32), layer 4 the block;
 *   requant: layer 1 drops query heads 0, 2, 4, 6 (attn_output keeps 32
 *          columns that are no whole block: Q8_0 re-quantizes those rows).
 * Checks: the source model is not converted (f32_ready 0) and the pruned
 * matrices are owned typed sources; GGUF bytes equal today's (kept dtype,
 * f32 and f16 output); every pruned matrix's f32 rows equal today's bit for
 * bit (requant: all but the re-quantized attn_output); logits bit-identical
 * (requant Q8_0: max |diff| printed, measured 0.049, bounded by 0.1 — the
 * Q8_0 rounding of one 64 x 32 matrix; and bit-identical to today's result
 * written as Q8_0 and loaded back, which holds the same bytes; that model
 * is also the reference of its f32 / f16 GGUF bytes). */
#include "check.h"
#include "story_util.h"
#include "headroom/context.h"
#include "headroom/prune.h"
#include "headroom/save.h"
#include "model/model_internal.h"
#include "study/prune/surgery_internal.h"
#include "model_util.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MODEL SHARED("models/stories260K/stories260K.bin")

static const hr_dtype k_dtypes[] = {HR_DTYPE_BF16, HR_DTYPE_F16, HR_DTYPE_Q8_0};

static void tmp_path(char *out, size_t n, const char *what, hr_dtype d) {
    snprintf(out, n, "/tmp/hr_test_prune_typed_%d_%s_%s.gguf", (int)getpid(), what, hr_dtype_name(d));
}

/* stories260K written in dtype d and loaded back: its matrices typed. */
static hr_model *typed_model(hr_dtype d) {
    hr_model *m = typed_copy(MODEL, d, "prune_typed_in");
    CHECK(m != NULL, "stories260K as %s: %s", hr_dtype_name(d), hr_last_error());
    return m;
}

static hr_prune_spec *spec_of(const hr_model *m, bool requant) {
    hr_prune_spec *s = NULL;
    CHECK(hr_prune_spec_new(m, &s) == HR_OK, "spec: %s", hr_last_error());
    if (!s) return NULL;
    if (requant) {
        for (int h = 0; h < 8; h += 2) s->keep_head[1][h] = 0;
        return s;
    }
    for (int h = 0; h < 4; h++) s->keep_head[0][h] = 0;
    for (int j = 0; j < 100; j += 2) s->keep_ff[1][j] = 0;
    s->drop_attn[2] = true;
    s->keep_head[3][0] = s->keep_head[3][1] = 0;
    s->drop_block[4] = true;
    return s;
}

/* Are two files byte for byte equal? */
static bool same_file(const char *a, const char *b, long *size) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool same = fa && fb;
    *size = 0;
    for (int ca = 0, cb = 0; same && ca != EOF; (*size)++) {
        ca = fgetc(fa), cb = fgetc(fb);
        same = ca == cb;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

/* Every matrix of typed prune p is an owned typed source (no f32 rows) of
 * the input's type — or f32 where a Q8_0 row length is no multiple of 32. */
static void check_typed(const hr_model *p, hr_wtype want, const char *label) {
    int n = hr_model_tensors(p, NULL, 0), typed = 0, bad = 0;
    hr_tensor_ref *refs = malloc(sizeof *refs * (size_t)n); // (n)
    hr_model_tensors(p, refs, n);
    for (int i = 0; i < n; i++) {
        if (refs[i].n_dims != 2) continue;
        const hr_mat_src *s = hr_model_src(p, refs[i].layer, refs[i].wslot);
        bool ok = !refs[i].data && s && s->owned && !s->perm_heads &&
                  (s->type == want || s->type == HR_WT_F32 || (want == HR_WT_Q8_0 && s->type == HR_WT_F16));
        typed += ok;
        if (!ok) {
            bad++;
            fprintf(stderr, "    %s: %s\n", refs[i].name, s ? hr_wtype_name(s->type) : "f32 rows");
        }
    }
    printf("    %s: %d matrices typed, %d not\n", label, typed, bad);
    CHECK(typed > 0 && bad == 0, "%s: %d matrices not typed", label, bad);
    free(refs);
}

/* Max |diff| of p's f32 rows (after hr_model_need_f32) against ref's, over
 * every matrix except attn_output of layer skip_o (-1: none). */
static double weights_diff(const hr_model *p, const hr_model *ref, int skip_o, const char *label) {
    CHECK(hr_model_need_f32(p) == HR_OK && hr_model_need_f32(ref) == HR_OK, "need_f32: %s", hr_last_error());
    int n = hr_model_tensors(p, NULL, 0);
    hr_tensor_ref *a = malloc(sizeof *a * (size_t)n), *b = malloc(sizeof *b * (size_t)n); // (n)
    CHECK(hr_model_tensors(ref, NULL, 0) == n, "%s: tensor counts differ", label);
    hr_model_tensors(p, a, n);
    hr_model_tensors(ref, b, n);
    double worst = 0;
    for (int i = 0; i < n; i++) {
        if (a[i].layer == skip_o && a[i].wslot == HR_SLOT_O) continue;
        CHECK(a[i].data && b[i].data && a[i].rows == b[i].rows && a[i].cols == b[i].cols, "%s: %s", label, a[i].name);
        if (a[i].data && b[i].data)
            for (int64_t k = 0; k < a[i].rows * a[i].cols; k++) {
                double d = fabs((double)a[i].data[k] - (double)b[i].data[k]);
                if (d > worst) worst = d;
            }
    }
    printf("    %s: weights max abs diff %.3g over %d tensors\n", label, worst, n);
    free(a);
    free(b);
    return worst;
}

static void run_case(hr_dtype d, bool requant) {
    char label[96];
    snprintf(label, sizeof label, "%s %s", hr_dtype_name(d), requant ? "requant" : "exact");
    hr_model *t = typed_model(d), *r = typed_model(d);
    if (!t || !r) {
        hr_model_free(t);
        hr_model_free(r);
        return;
    }
    hr_prune_spec *s = spec_of(t, requant);
    hr_model *p = NULL, *q = NULL;
    int64_t in_bytes = hr_model_weight_bytes(t);
    CHECK(hr_prune_apply(t, s, &p) == HR_OK, "%s typed prune: %s", label, hr_last_error());
    CHECK(hr_model_need_f32(r) == HR_OK && hr_prune_apply(r, s, &q) == HR_OK, "%s f32 prune: %s", label,
          hr_last_error());
    if (!p || !q) goto done;
    CHECK(t->f32_ready == 0 && p->f32_ready == 0, "%s: the typed prune converted to f32", label);
    hr_wtype want = d == HR_DTYPE_BF16 ? HR_WT_BF16 : d == HR_DTYPE_F16 ? HR_WT_F16 : HR_WT_Q8_0;
    check_typed(p, want, label);
    int64_t pb = hr_model_weight_bytes(p), qb = hr_model_weight_bytes(q);
    printf("    %s: weight bytes: input %lld, typed prune %lld, f32 prune %lld; %lld rows re-quantized\n", label,
           (long long)in_bytes, (long long)pb, (long long)qb, (long long)p->requantized_rows);
    CHECK(pb < qb && pb < in_bytes, "%s: the typed prune holds %lld bytes", label, (long long)pb);
    CHECK((p->requantized_rows > 0) == (requant && d == HR_DTYPE_Q8_0), "%s: %lld rows re-quantized", label,
          (long long)p->requantized_rows);

    /* Q8_0 re-quantized rows: today's result written as Q8_0 holds them;
     * loaded back, it is the reference of the other output dtypes */
    bool rq = p->requantized_rows > 0;
    hr_model *back = NULL;
    char pa[256], pq[256];
    if (rq) {
        tmp_path(pq, sizeof pq, "f32q", d);
        CHECK(hr_model_save_gguf(q, NULL, pq, HR_DTYPE_KEEP) == HR_OK && hr_model_load(pq, &back) == HR_OK,
              "%s: today's Q8_0 file: %s", label, hr_last_error());
        unlink(pq);
        float *lp = run_logits(p), *lb = back ? run_logits(back) : NULL;
        CHECK(lp && lb, "forward: %s", hr_last_error());
        if (lp && lb) {
            double dd =
                hr_t_maxdiff("typed prune vs today's Q8_0 file loaded back", lp, lb, (size_t)N_TOK * p->cfg.vocab_size);
            CHECK(dd == 0, "%s: logits differ by %.3g from the reloaded file", label, dd);
        }
        free(lp);
        free(lb);
    }
    /* GGUF bytes: kept dtype, f32 and f16 output */
    static const hr_dtype outs[] = {HR_DTYPE_KEEP, HR_DTYPE_F32, HR_DTYPE_F16};
    for (size_t k = 0; k < sizeof outs / sizeof *outs; k++) {
        const hr_model *ref = rq && k > 0 ? back : q;
        tmp_path(pa, sizeof pa, "typed", outs[k]);
        tmp_path(pq, sizeof pq, "f32", outs[k]);
        long size = 0;
        bool ok = ref && hr_model_save_gguf(p, NULL, pa, outs[k]) == HR_OK &&
                  hr_model_save_gguf(ref, NULL, pq, outs[k]) == HR_OK;
        CHECK(ok, "%s: save: %s", label, hr_last_error());
        bool same = ok && same_file(pa, pq, &size);
        printf("    %s: written as %s: %ld bytes, %s %s\n", label, hr_dtype_name(outs[k]), size,
               same ? "equal to" : "DIFFER from", ref == q ? "today's" : "today's Q8_0 file's");
        CHECK(same, "%s: GGUF written as %s differs", label, hr_dtype_name(outs[k]));
        unlink(pa);
        unlink(pq);
    }
    hr_model_free(back);

    /* logits: bit-identical, except where Q8_0 re-quantized */
    float *lp = run_logits(p), *lq = run_logits(q);
    CHECK(lp && lq, "forward: %s", hr_last_error());
    if (lp && lq) {
        double dd = hr_t_maxdiff(label, lp, lq, (size_t)N_TOK * p->cfg.vocab_size);
        if (rq) CHECK(dd <= 0.1, "%s: logits differ by %.3g (tol 0.1)", label, dd);
        else CHECK(dd == 0, "%s: logits not bit-identical (%.3g)", label, dd);
    }
    free(lp);
    free(lq);
    /* the weights themselves, as f32 rows (converts p: last) */
    double wd = weights_diff(p, q, rq ? 1 : -1, label);
    CHECK(wd == 0, "%s: pruned weights differ by %.3g", label, wd);
done:
    hr_prune_spec_free(s);
    hr_model_free(p);
    hr_model_free(q);
    hr_model_free(t);
    hr_model_free(r);
}

static void pruning_typed_models_cuts_them_in_their_dtype_and_equals_todays_f32_path(void) {
    for (size_t i = 0; i < sizeof k_dtypes / sizeof *k_dtypes; i++) run_case(k_dtypes[i], false);
}

static void q8_0_columns_that_are_no_whole_block_are_requantized_as_the_writer_would(void) {
    for (size_t i = 0; i < sizeof k_dtypes / sizeof *k_dtypes; i++) run_case(k_dtypes[i], true);
}

/* Writes p and q (as GGUF, kept dtype) and compares the files. */
static void same_gguf(const hr_model *p, const hr_model *q, const char *label) {
    char pa[256], pq[256];
    tmp_path(pa, sizeof pa, "typed", HR_DTYPE_KEEP);
    tmp_path(pq, sizeof pq, "f32", HR_DTYPE_KEEP);
    long size = 0;
    bool ok = hr_model_save_gguf(p, NULL, pa, HR_DTYPE_KEEP) == HR_OK &&
              hr_model_save_gguf(q, NULL, pq, HR_DTYPE_KEEP) == HR_OK;
    CHECK(ok, "%s: save: %s", label, hr_last_error());
    bool same = ok && same_file(pa, pq, &size);
    printf("    %s: %ld bytes, %s\n", label, size, same ? "equal" : "DIFFER");
    CHECK(same, "%s: GGUF bytes differ", label);
    unlink(pa);
    unlink(pq);
}

/* An HF folder's Q/K rows are rotate-half (typed sources with perm_heads):
 * the typed cut takes them back to headroom's order; and a qwen2 GGUF
 * (llama.cpp's rotate-half Q/K rows) written from typed rows equals the
 * one written from f32 rows. */
static void rotate_half_q_k_rows_are_cut_and_written_in_the_right_order(void) {
    char dir[256];
    snprintf(dir, sizeof dir, "/tmp/hr_test_prune_typed_%d_hf", (int)getpid());
    hr_model *f = NULL, *t = NULL, *r = NULL;
    CHECK(hr_model_load(MODEL, &f) == HR_OK, "load: %s", hr_last_error());
    if (f) CHECK(hr_model_save_hf(f, NULL, dir, HR_DTYPE_BF16) == HR_OK, "save hf: %s", hr_last_error());
    CHECK(hr_model_load(dir, &t) == HR_OK && hr_model_load(dir, &r) == HR_OK, "load hf: %s", hr_last_error());
    hr_model_free(f);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cannot remove %s", dir);
    if (!t || !r) {
        hr_model_free(t);
        hr_model_free(r);
        return;
    }
    const hr_mat_src *qs = hr_model_src(t, 0, HR_SLOT_Q);
    CHECK(qs && qs->perm_heads > 0 && qs->type == HR_WT_BF16, "the HF folder's Q rows are not typed rotate-half");
    hr_prune_spec *s = spec_of(t, false);
    hr_model *p = NULL, *q = NULL;
    CHECK(hr_prune_apply(t, s, &p) == HR_OK, "typed prune: %s", hr_last_error());
    CHECK(hr_model_need_f32(r) == HR_OK && hr_prune_apply(r, s, &q) == HR_OK, "f32 prune: %s", hr_last_error());
    if (p && q) {
        CHECK(t->f32_ready == 0 && p->f32_ready == 0, "the typed prune converted to f32");
        check_typed(p, HR_WT_BF16, "hf bf16");
        same_gguf(p, q, "hf bf16 pruned, llama GGUF");
        hr_arch a = p->cfg.arch;
        p->cfg.arch = q->cfg.arch = HR_ARCH_QWEN2;
        same_gguf(p, q, "hf bf16 pruned, qwen2 GGUF (rotate-half Q/K rows)");
        p->cfg.arch = q->cfg.arch = a;
        float *lp = run_logits(p), *lq = run_logits(q);
        CHECK(lp && lq, "forward: %s", hr_last_error());
        if (lp && lq) {
            double d = hr_t_maxdiff("hf bf16 pruned typed vs f32", lp, lq, (size_t)N_TOK * p->cfg.vocab_size);
            CHECK(d == 0, "logits not bit-identical (%.3g)", d);
        }
        free(lp);
        free(lq);
    }
    hr_prune_spec_free(s);
    hr_model_free(p);
    hr_model_free(q);
    hr_model_free(t);
    hr_model_free(r);
}

/* Resident bytes of m's weights (hr_model_weight_bytes) before and after
 * its first context: equal when the forward reads m's own panels in place. */
static void one_copy(const hr_model *m, const char *label) {
    int64_t before = hr_model_weight_bytes(m);
    hr_context *ctx = NULL;
    hr_context_params cp = hr_context_default_params();
    cp.n_ctx = 32;
    CHECK(hr_context_new(m, &cp, &ctx) == HR_OK, "%s: context: %s", label, hr_last_error());
    int64_t after = hr_model_weight_bytes(m);
    int panels = 0, rows = 0;
    static const hr_slot mats[] = {HR_SLOT_Q, HR_SLOT_K, HR_SLOT_V, HR_SLOT_O, HR_SLOT_GATE, HR_SLOT_UP, HR_SLOT_DOWN};
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int i = 0; i < 7; i++) {
            const hr_mat_src *src = hr_model_src(m, l, mats[i]);
            if (src && src->panels) panels++;
            else if (*hr_slot_ptr((hr_weights *)&m->w, l, mats[i]))
                rows++, fprintf(stderr, "    %s: blk.%d.%s held as rows\n", label, l, hr_slot_gguf_name(mats[i]));
        }
    printf("    %s: weight bytes %lld before its first context, %lld after; %d matrices as panels, %d as rows\n", label,
           (long long)before, (long long)after, panels, rows);
    CHECK(after == before && panels > 0 && rows == 0, "%s: %lld bytes after the context, %lld before", label,
          (long long)after, (long long)before);
    hr_context_free(ctx);
}

/* A model built in memory (a prune of a typed GGUF, of the f32 llama2.c
 * file, a prune of that prune) keeps each matrix once: as the panels its
 * forward reads in place, not rows plus a packed copy (which doubled the
 * bytes once a context existed). */
static void a_model_built_in_memory_holds_one_copy_of_its_matrices_once_a_context_exists(void) {
    hr_model *f = NULL;
    CHECK(hr_model_load(MODEL, &f) == HR_OK, "load: %s", hr_last_error());
    for (int i = -1; f && i < (int)(sizeof k_dtypes / sizeof *k_dtypes); i++) {
        hr_model *t = i < 0 ? NULL : typed_model(k_dtypes[i]), *in = i < 0 ? f : t;
        if (!in) continue;
        char label[64];
        snprintf(label, sizeof label, "%s prune", i < 0 ? "f32" : hr_dtype_name(k_dtypes[i]));
        hr_prune_spec *s = spec_of(in, false);
        hr_model *p = NULL, *pp = NULL;
        CHECK(hr_prune_apply(in, s, &p) == HR_OK, "%s: %s", label, hr_last_error());
        if (p) one_copy(p, label);
        hr_prune_spec_free(s);
        /* cut again from the panels: equals the same cut of the same model held as rows */
        hr_prune_spec *s2 = NULL;
        if (p && hr_prune_spec_new(p, &s2) == HR_OK) {
            for (int h = 0; h < 4; h++) s2->keep_head[1][h] = 0;
            for (int j = 0; j < 40; j++) s2->keep_ff[0][j] = 0;
            hr_model *w = hr_t_writable_copy(p), *pw = NULL;
            CHECK(w && hr_prune_apply(p, s2, &pp) == HR_OK && hr_prune_apply(w, s2, &pw) == HR_OK, "%s twice: %s",
                  label, hr_last_error());
            if (pp && pw) {
                char l2[160];
                snprintf(l2, sizeof l2, "%s of the prune, from panels vs from rows", label);
                same_gguf(pp, pw, l2);
                one_copy(pp, l2);
            }
            hr_model_free(w);
            hr_model_free(pw);
        }
        hr_prune_spec_free(s2);
        hr_model_free(pp);
        hr_model_free(p);
        hr_model_free(t);
    }
    hr_model_free(f);
}

int main(void) {
    if (access(MODEL, R_OK) != 0) {
        printf("skip: %s not found\n", MODEL);
        return HR_T_SKIP;
    }
    RUN(pruning_typed_models_cuts_them_in_their_dtype_and_equals_todays_f32_path);
    RUN(q8_0_columns_that_are_no_whole_block_are_requantized_as_the_writer_would);
    RUN(rotate_half_q_k_rows_are_cut_and_written_in_the_right_order);
    RUN(a_model_built_in_memory_holds_one_copy_of_its_matrices_once_a_context_exists);
    TEST_MAIN_END();
}
