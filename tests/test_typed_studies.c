/* Studies that read weight rows (AMP, successor, gradient and Taylor
 * heads, direct logit attribution, AMP and Taylor MLP neuron importance)
 * on a model whose matrices stay typed
 * (bf16, f16, Q8_0 in a GGUF) read those rows one matrix or one row at a
 * time (model_internal.h hr_model_rows / hr_model_matrix_f32) instead of
 * converting the model to f32. The independent reference is the path the
 * f32 computation takes: the same file loaded again and converted to f32
 * rows (hr_model_need_f32), whose floats are the dequantizer's, so every
 * score must be equal bit for bit. Also on the two pruned the same way
 * (a layer without attention, one without MLP), and LoRA adapters exist
 * alike. Checks, per dtype: the typed model is never converted (f32_ready
 * 0) and the weight bytes it holds (hr_model_weight_bytes) do not grow;
 * every score equals the f32 twin's (max |diff| printed, tolerance 0).
 * hr_grad_bytes counts the f32 rows the backward converted (the classifier
 * and one layer), checked against the bytes the shapes give. */
#include "check.h"
#include "story_util.h"
#include "headroom/circuits.h"
#include "headroom/context.h"
#include "headroom/grad.h"
#include "headroom/heads.h"
#include "headroom/prune.h"
#include "headroom/save.h"
#include "headroom/tokenizer.h"
#include "model/model_internal.h"
#include "study/prune/surgery_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MODEL SHARED("models/stories260K/stories260K.bin")
#define TOKENIZER SHARED("models/stories260K/tok512.bin")
#define TEXT SHARED("data/text/tinystories_val.txt")

static hr_tokenizer *tok;
static int32_t *calib; // (n_calib) tokens of the text, BOS first
static size_t n_calib;

/* stories260K written in dtype d and loaded back: its matrices typed. */
static hr_model *typed_model(hr_dtype d) {
    hr_model *m = typed_copy(MODEL, d, "typed_studies");
    CHECK(m != NULL, "stories260K as %s: %s", hr_dtype_name(d), hr_last_error());
    return m;
}

static hr_context *context_of(const hr_model *m) {
    hr_context *ctx = NULL;
    hr_context_params p = hr_context_default_params();
    p.n_ctx = 128;
    p.n_threads = 2;
    CHECK(hr_context_new(m, &p, &ctx) == HR_OK, "context: %s", hr_last_error());
    return ctx;
}

/* Largest |a - b| over n doubles; NaN in one but not the other is infinite. */
static double max_diff(const double *a, const double *b, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) {
            if (isnan(a[i]) != isnan(b[i])) return INFINITY;
            continue;
        }
        double d = fabs(a[i] - b[i]);
        if (d > worst) worst = d;
    }
    return worst;
}

/* amp and successor scores of every head, (L, H) with NaN padding. */
static double *head_scores(const hr_model *m, int *n_out) {
    hr_context *ctx = context_of(m);
    if (!ctx) return NULL;
    bool *sel = calloc((size_t)hr_heads_n_methods(), sizeof *sel);
    int ids[4] = {hr_heads_method_index("amp"), hr_heads_method_index("successor"), hr_heads_method_index("grad"),
                  hr_heads_method_index("taylor")};
    for (int k = 0; k < 4; k++) sel[ids[k]] = true;
    hr_heads_params p = hr_heads_default_params();
    p.tokens = calib + 1;
    p.n_tokens = n_calib - 1;
    p.bos = calib[0];
    p.window = 128;
    p.max_tokens = 256;
    p.tok = tok;
    p.no_layer_metrics = true;
    hr_heads_result *r = NULL;
    CHECK(hr_heads_run(ctx, &p, sel, &r) == HR_OK, "heads: %s", hr_last_error());
    const hr_config *c = hr_model_config(m);
    double *out = NULL;
    if (r) {
        for (int k = 0; k < 4; k++) CHECK(hr_heads_result_has(r, ids[k]), "%s", hr_heads_result_note(r, ids[k]));
        *n_out = 4 * c->n_layers * 8;
        out = malloc(sizeof(double) * (size_t)*n_out);
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < c->n_layers; l++)
                for (int h = 0; h < 8; h++) out[(k * c->n_layers + l) * 8 + h] = hr_heads_score(r, ids[k], l, h);
    }
    hr_heads_result_free(r);
    free(sel);
    hr_context_free(ctx);
    return out;
}

/* Direct logit attribution of three pairs: embed, norm bias, every head, every MLP. */
static double *dla_scores(const hr_model *m, int *n_out) {
    hr_pairs *ps = NULL;
    CHECK(hr_pairs_new(&ps) == HR_OK, "pairs");
    for (int i = 0; i < 3; i++) {
        int32_t clean[12], corrupt[12];
        memcpy(clean, calib + 20 * i, sizeof clean);
        memcpy(corrupt, clean, sizeof clean);
        corrupt[4] = clean[4] == 300 ? 301 : 300;
        hr_pairs_add(ps, clean, corrupt, 12, calib[20 * i + 12], 300 + i);
    }
    hr_patch_params p = hr_patch_default_params();
    p.what = 0;
    p.lens = false;
    p.n_threads = 2;
    hr_patch_result *r = NULL;
    CHECK(hr_patch_run(m, ps, &p, &r) == HR_OK, "patch: %s", hr_last_error());
    const hr_patch_summary *s = r ? hr_patch_result_summary(r) : NULL;
    double *out = NULL;
    if (s) {
        CHECK(s->has_dla, "no DLA");
        int L = s->n_layers, H = s->max_heads;
        *n_out = 3 + L * H + L;
        out = malloc(sizeof(double) * (size_t)*n_out);
        out[0] = s->dla_embed, out[1] = s->dla_norm_bias, out[2] = s->dla_sum;
        memcpy(out + 3, s->dla_heads, sizeof(double) * (size_t)(L * H));
        memcpy(out + 3 + L * H, s->dla_mlp, sizeof(double) * (size_t)L);
    }
    hr_patch_result_free(r);
    hr_pairs_free(ps);
    return out;
}

/* AMP neuron importance of every MLP neuron. */
static double *neuron_scores(const hr_model *m, int *n_out) {
    const hr_config *c = hr_model_config(m);
    hr_context *ctx = context_of(m);
    if (!ctx) return NULL;
    float *imp[64];
    int n = 0;
    for (int l = 0; l < c->n_layers; l++) imp[l] = malloc(sizeof(float) * (size_t)c->n_ff[l]), n += c->n_ff[l];
    CHECK(hr_prune_neuron_importance(ctx, calib, 256, 128, imp) == HR_OK, "neurons: %s", hr_last_error());
    double *out = malloc(sizeof(double) * (size_t)n);
    for (int l = 0, k = 0; l < c->n_layers; l++)
        for (int j = 0; j < c->n_ff[l]; j++) out[k++] = imp[l][j];
    for (int l = 0; l < c->n_layers; l++) free(imp[l]);
    hr_context_free(ctx);
    *n_out = n;
    return out;
}

/* First-order Taylor importance of every MLP neuron (the backward through
 * every layer: W_down, W_up, W_gate, W_o, ... products). */
static double *taylor_neuron_scores(const hr_model *m, int *n_out) {
    const hr_config *c = hr_model_config(m);
    int ffm = 0;
    for (int l = 0; l < c->n_layers; l++) ffm = c->n_ff[l] > ffm ? c->n_ff[l] : ffm;
    *n_out = c->n_layers * ffm;
    double *out = malloc(sizeof(double) * (size_t)*n_out);
    CHECK(hr_taylor_neuron_scores(m, calib, 2, 64, 2, out) == HR_OK, "taylor neurons: %s", hr_last_error());
    return out;
}

/* The values of every borrowed weight through hr_params_data: a typed
 * model's are converted on that first ask (the one case that converts). */
static double *param_values(const hr_model *m, int *n_out) {
    hr_params *P = NULL;
    CHECK(hr_params_new(m, NULL, &P) == HR_OK, "params: %s", hr_last_error());
    size_t n = 0;
    double *out = NULL;
    for (int i = 0; P && i < hr_params_n_tensors(P); i++) {
        hr_param_info info;
        hr_params_info(P, i, &info);
        if (info.kind >= HR_PARAM_HEAD_GATE) continue;
        const float *d = hr_params_data(P, i);
        CHECK(d != NULL, "%s: no values: %s", info.name, hr_last_error());
        if (!d) break;
        out = realloc(out, sizeof(double) * (n + (size_t)(info.rows * info.cols)));
        for (int64_t k = 0; k < info.rows * info.cols; k++) out[n++] = d[k];
    }
    hr_params_free(P);
    *n_out = (int)n;
    return out;
}

typedef double *(*study_fn)(const hr_model *m, int *n_out);

/* One study on the typed model and on its f32 twin. */
/* m pruned: layer 1 without its attention, layer 3 without its MLP (a
 * typed model is cut in its dtype and stays typed); m is freed. */
static hr_model *pruned(hr_model *m) {
    hr_prune_spec *s = NULL;
    hr_model *p = NULL;
    CHECK(hr_prune_spec_new(m, &s) == HR_OK, "spec: %s", hr_last_error());
    if (s) {
        s->drop_attn[1] = s->drop_mlp[3] = true;
        CHECK(hr_prune_apply(m, s, &p) == HR_OK, "prune: %s", hr_last_error());
    }
    hr_prune_spec_free(s);
    hr_model_free(m);
    return p;
}

static bool g_pruned; /* the twins are pruned() first */

static void same_as_f32(hr_dtype d, const char *what, study_fn fn) {
    hr_model *t = typed_model(d), *r = typed_model(d);
    if (!t || !r) goto done;
    CHECK(hr_model_need_f32(r) == HR_OK, "need_f32: %s", hr_last_error());
    if (g_pruned) t = pruned(t), r = pruned(r);
    if (!t || !r) goto done;
    hr_context_free(context_of(t)); /* the first context packs the panels: count from there */
    int64_t before = hr_model_weight_bytes(t);
    int nt = 0, nr = 0;
    double *a = fn(t, &nt), *b = fn(r, &nr);
    int64_t after = hr_model_weight_bytes(t);
    CHECK(a && b && nt == nr && nt > 0, "%s %s: no scores", hr_dtype_name(d), what);
    double dd = a && b && nt == nr ? max_diff(a, b, (size_t)nt) : INFINITY;
    printf("    %s%s %s: %d scores, max |typed - f32| %.3g; typed model converted: %s; weight bytes %lld -> %lld\n",
           g_pruned ? "pruned " : "", hr_dtype_name(d), what, nt, dd, t->f32_ready ? "yes" : "no", (long long)before,
           (long long)after);
    CHECK(dd == 0, "%s %s: scores differ by %.3g (tolerance 0)", hr_dtype_name(d), what, dd);
    if (fn == param_values) { /* asking for a borrowed weight's values converts, once */
        CHECK(t->f32_ready, "%s %s: the typed model's values came without f32 rows", hr_dtype_name(d), what);
        goto freed;
    }
    CHECK(!t->f32_ready, "%s %s: the typed model was converted to f32", hr_dtype_name(d), what);
    CHECK(after == before, "%s %s: weight bytes grew %lld -> %lld", hr_dtype_name(d), what, (long long)before,
          (long long)after);
freed:
    free(a);
    free(b);
done:
    hr_model_free(t);
    hr_model_free(r);
}

static const hr_dtype k_dtypes[] = {HR_DTYPE_BF16, HR_DTYPE_F16, HR_DTYPE_Q8_0};

static void amp_successor_grad_and_taylor_heads_of_a_typed_model_equal_its_f32_twins_without_converting_it(void) {
    for (size_t i = 0; i < sizeof k_dtypes / sizeof *k_dtypes; i++)
        same_as_f32(k_dtypes[i], "amp+successor+grad+taylor", head_scores);
}

static void direct_logit_attribution_of_a_typed_model_equals_its_f32_twins_without_converting_it(void) {
    for (size_t i = 0; i < sizeof k_dtypes / sizeof *k_dtypes; i++) same_as_f32(k_dtypes[i], "dla", dla_scores);
}

static void mlp_neuron_importance_of_a_typed_model_equals_its_f32_twins_without_converting_it(void) {
    for (size_t i = 0; i < sizeof k_dtypes / sizeof *k_dtypes; i++) same_as_f32(k_dtypes[i], "neurons", neuron_scores);
}

static void taylor_neuron_importance_of_a_typed_model_equals_its_f32_twins_without_converting_it(void) {
    for (size_t i = 0; i < sizeof k_dtypes / sizeof *k_dtypes; i++)
        same_as_f32(k_dtypes[i], "taylor neurons", taylor_neuron_scores);
}

/* Shapes of every parameter tensor with LoRA adapters of rank 4 (the
 * adapters exist for a typed model's matrices too). */
static double *lora_shapes(const hr_model *m, int *n_out) {
    hr_params_params pp = hr_params_default_params();
    pp.lora_rank = 4;
    hr_params *P = NULL;
    CHECK(hr_params_new(m, &pp, &P) == HR_OK, "params: %s", hr_last_error());
    int n = P ? hr_params_n_tensors(P) : 0, lora = 0;
    double *out = malloc(sizeof(double) * (size_t)(2 * n + 1));
    for (int i = 0; i < n; i++) {
        hr_param_info info;
        hr_params_info(P, i, &info);
        out[2 * i] = (double)info.rows, out[2 * i + 1] = (double)info.cols;
        lora += info.kind == HR_PARAM_LORA_A;
    }
    CHECK(lora > 0, "no LoRA adapters");
    hr_params_free(P);
    *n_out = 2 * n;
    return out;
}

static void a_typed_model_gets_the_same_lora_adapters_as_its_f32_twin(void) {
    for (size_t i = 0; i < sizeof k_dtypes / sizeof *k_dtypes; i++) same_as_f32(k_dtypes[i], "lora", lora_shapes);
}

static void the_same_holds_for_a_pruned_typed_model_with_a_layer_without_attention_and_one_without_mlp(void) {
    g_pruned = true;
    for (size_t i = 0; i < sizeof k_dtypes / sizeof *k_dtypes; i++) {
        same_as_f32(k_dtypes[i], "amp+successor+grad+taylor", head_scores);
        same_as_f32(k_dtypes[i], "dla", dla_scores);
        same_as_f32(k_dtypes[i], "neurons", neuron_scores);
        same_as_f32(k_dtypes[i], "taylor neurons", taylor_neuron_scores);
    }
    g_pruned = false;
}

static void a_typed_models_borrowed_weights_are_converted_when_their_values_are_asked_for(void) {
    for (size_t i = 0; i < sizeof k_dtypes / sizeof *k_dtypes; i++) same_as_f32(k_dtypes[i], "params", param_values);
}

/* hr_grad_bytes of a gradient object over a typed model's borrowed
 * weights minus that of its f32 twin's, after one window with gradients
 * down to the embedding: the f32 rows the backward converted, which are
 * the classifier (the tied embedding, vocab x dim) and the last layer it
 * read, layer 0 (q_dim x dim, 2 kv_dim x dim, dim x q_dim, 3 n_ff x dim),
 * counted from the shapes. */
static size_t grad_bytes_after_a_window(const hr_model *m) {
    hr_params *P = NULL;
    hr_params_params pp = hr_params_default_params();
    CHECK(hr_params_new(m, &pp, &P) == HR_OK, "params: %s", hr_last_error());
    hr_grad *g = NULL;
    hr_grad_params gp = hr_grad_default_params();
    gp.n_threads = 2;
    gp.kinds = HR_GRAD_KIND(HR_PARAM_TOK_EMBD) | HR_GRAD_GATES;
    CHECK(P && hr_grad_new(P, &gp, &g) == HR_OK, "grad: %s", hr_last_error());
    double loss = 0;
    CHECK(g && hr_grad_accumulate(g, calib, 64, 1.0f, &loss) == HR_OK, "accumulate: %s", hr_last_error());
    size_t b = hr_grad_bytes(g);
    hr_grad_free(g);
    hr_params_free(P);
    return b;
}

static void a_typed_models_gradient_object_counts_the_f32_rows_its_backward_converted(void) {
    for (size_t i = 0; i < sizeof k_dtypes / sizeof *k_dtypes; i++) {
        hr_model *t = typed_model(k_dtypes[i]), *r = typed_model(k_dtypes[i]);
        if (!t || !r) goto done;
        CHECK(hr_model_need_f32(r) == HR_OK, "need_f32: %s", hr_last_error());
        const hr_config *c = hr_model_config(t);
        size_t qd = (size_t)c->n_head[0] * c->head_dim, kvd = (size_t)c->n_head_kv[0] * c->head_dim,
               dim = (size_t)c->dim, ff = (size_t)c->n_ff[0];
        size_t want =
            sizeof(float) * ((size_t)c->vocab_size * dim + qd * dim + 2 * kvd * dim + dim * qd + 3 * ff * dim);
        size_t bt = grad_bytes_after_a_window(t), br = grad_bytes_after_a_window(r);
        printf("    %s: hr_grad_bytes typed %zu, f32 twin %zu, difference %lld, expected %zu\n",
               hr_dtype_name(k_dtypes[i]), bt, br, (long long)bt - (long long)br, want);
        CHECK(bt == br + want, "%s: hr_grad_bytes typed %zu != f32 twin's %zu + converted %zu",
              hr_dtype_name(k_dtypes[i]), bt, br, want);
    done:
        hr_model_free(t);
        hr_model_free(r);
    }
}

int main(void) {
    CHECK(hr_tokenizer_load(TOKENIZER, &tok) == HR_OK, "tokenizer: %s", hr_last_error());
    FILE *f = fopen(TEXT, "rb");
    CHECK(f != NULL, "cannot open %s", TEXT);
    if (!tok || !f) TEST_MAIN_END();
    char text[8192];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = 0;
    hr_encode_params ep = hr_encode_default_params();
    ep.add_bos = true;
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(hr_tokenizer_encode(tok, text, len, &ep, &ids, &n) == HR_OK && n > 300, "encode: %s", hr_last_error());
    calib = ids, n_calib = n;
    if (n > 300) {
        RUN(amp_successor_grad_and_taylor_heads_of_a_typed_model_equal_its_f32_twins_without_converting_it);
        RUN(direct_logit_attribution_of_a_typed_model_equals_its_f32_twins_without_converting_it);
        RUN(mlp_neuron_importance_of_a_typed_model_equals_its_f32_twins_without_converting_it);
        RUN(taylor_neuron_importance_of_a_typed_model_equals_its_f32_twins_without_converting_it);
        RUN(a_typed_model_gets_the_same_lora_adapters_as_its_f32_twin);
        RUN(the_same_holds_for_a_pruned_typed_model_with_a_layer_without_attention_and_one_without_mlp);
        RUN(a_typed_models_borrowed_weights_are_converted_when_their_values_are_asked_for);
        RUN(a_typed_models_gradient_object_counts_the_f32_rows_its_backward_converted);
    }
    free(ids);
    hr_tokenizer_free(tok);
    TEST_MAIN_END();
}
