/* hr_grad_dump: headroom's gradients and gradient-based scores for the
 * PyTorch reference (tests/reference/check_grad_reference.py).
 *
 *   hr_grad_dump MODEL --ids 5,6,7,... --bos B --window W --windows K
 *                [--lora-rank R] [--lora-alpha A] [--threads T] --out PREFIX
 *
 * Windows are the head lab's: [BOS, ids[w*(W-1) .. (w+1)*(W-1))], w < K.
 * Writes PREFIX.grad.bin (float32 arrays, little-endian) and PREFIX.grad.json:
 *  - config: the architecture's traits and sizes;
 *  - tensors: every parameter tensor (name, kind, layer, shape) with the
 *    offsets (in floats) of its values and of its gradient in PREFIX.grad.bin.
 *    Before differentiating, LoRA B matrices and the head and neuron gates
 *    are set to deterministic values away from 0 and 1, so every term of
 *    every gradient is exercised. The gradient is that of the mean over the
 *    K windows of each window's mean NLL (hr_grad_accumulate, scale 1/K);
 *  - input_grad: scale * dL/d(input embeddings) of the last window;
 *  - losses of the windows;
 *  - on the unmodified model (gates 1, no adapters): the head lab's `grad`
 *    and `taylor` scores (hr_heads_run) and hr_taylor_neuron_scores;
 *  - with adapters: LoRAPrune's importance of every head and neuron
 *    (hr_loraprune_importance) from the perturbed model's LoRA values and
 *    gradients.
 */
#include "headroom/context.h"
#include "headroom/grad.h"
#include "headroom/heads.h"
#include "headroom/model.h"
#include "headroom/prune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_ids(const char *s, int32_t **out) {
    int cap = 64, n = 0;
    int32_t *t = malloc((size_t)cap * sizeof *t); // (cap)
    while (t && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0) break;
        if (n == cap) {
            int32_t *nt = realloc(t, (size_t)(cap *= 2) * sizeof *t);
            if (!nt) break;
            t = nt;
        }
        t[n++] = (int32_t)v;
        s = *end == ',' ? end + 1 : end;
    }
    *out = t;
    return n;
}

static const char *kind_names[] = {
    "tok_embd", "pos_embd", "attn_norm",  "attn_norm_b", "wq",         "bq",          "wk",     "bk",    "wv",
    "bv",       "wo",       "bo",         "ffn_norm",    "ffn_norm_b", "w_gate",      "w_up",   "b_up",  "w_down",
    "b_down",   "out_norm", "out_norm_b", "output",      "head_gate",  "neuron_gate", "lora_a", "lora_b"};

/* Appends n floats to the binary file; returns their offset in floats. */
static long put(FILE *f, const float *x, size_t n, long *at) {
    long off = *at;
    if (fwrite(x, sizeof(float), n, f) != n) return -1;
    *at += (long)n;
    return off;
}

static void put_ints(FILE *j, const char *key, const hr_config *c, int (*fn)(const hr_config *, int)) {
    fprintf(j, "  \"%s\": [", key);
    for (int l = 0; l < hr_config_n_layers(c); l++) fprintf(j, "%s%d", l ? ", " : "", fn(c, l));
    fprintf(j, "],\n");
}

static void put_scores(FILE *j, const char *key, const double *s, int n, bool last) {
    fprintf(j, "  \"%s\": [", key);
    for (int i = 0; i < n; i++) fprintf(j, "%s%.17g", i ? ", " : "", s[i]);
    fprintf(j, "]%s\n", last ? "" : ",");
}

/* Deterministic values in [lo, hi). */
static void fill(float *d, size_t n, uint32_t seed, float lo, float hi) {
    for (size_t k = 0; k < n; k++) {
        seed = seed * 1664525u + 1013904223u;
        d[k] = lo + (hi - lo) * (float)(seed >> 8) / 16777216.0f;
    }
}

static int fail(const char *what) {
    fprintf(stderr, "hr_grad_dump: %s: %s\n", what, hr_last_error());
    return 1;
}

/* The head lab's grad and taylor scores on the unmodified model, flattened
 * (layer, head); NaN-free. */
static int lab_scores(hr_model *m, const int32_t *ids, int n_ids, int bos, int W, int K, int threads, double *grad,
                      double *taylor) {
    hr_context *ctx = NULL;
    hr_context_params cp = hr_context_default_params();
    cp.n_threads = threads;
    if (hr_context_new(m, &cp, &ctx) != HR_OK) return fail("context");
    hr_heads_params hp = hr_heads_default_params();
    hp.tokens = ids, hp.n_tokens = (size_t)n_ids, hp.bos = bos, hp.window = W, hp.max_tokens = W * K;
    bool sel[64] = {false};
    hr_heads_result *r = NULL;
    if (hr_heads_parse_methods("grad,taylor", sel) != HR_OK || hr_heads_run(ctx, &hp, sel, &r) != HR_OK)
        return fail("head lab");
    const hr_config *c = hr_model_config(m);
    int gi = hr_heads_method_index("grad"), ti = hr_heads_method_index("taylor"), k = 0;
    for (int l = 0; l < hr_config_n_layers(c); l++)
        for (int h = 0; h < hr_config_n_head(c, l); h++, k++) {
            grad[k] = hr_heads_score(r, gi, l, h);
            taylor[k] = hr_heads_score(r, ti, l, h);
        }
    hr_heads_result_free(r);
    hr_context_free(ctx);
    return 0;
}

int main(int argc, char **argv) {
    const char *model = NULL, *ids_s = NULL, *out = NULL;
    int bos = 1, W = 16, K = 2, rank = 0, threads = 2;
    float alpha = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            model = a;
            continue;
        }
        if (i + 1 >= argc) goto usage;
        const char *v = argv[++i];
        if (!strcmp(a, "--ids")) ids_s = v;
        else if (!strcmp(a, "--bos")) bos = atoi(v);
        else if (!strcmp(a, "--window")) W = atoi(v);
        else if (!strcmp(a, "--windows")) K = atoi(v);
        else if (!strcmp(a, "--lora-rank")) rank = atoi(v);
        else if (!strcmp(a, "--lora-alpha")) alpha = (float)atof(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--out")) out = v;
        else goto usage;
    }
    if (!model || !ids_s || !out || W < 2 || K < 1) goto usage;
    hr_model *m = NULL;
    if (hr_model_load(model, &m) != HR_OK) return fail(model);
    const hr_config *c = hr_model_config(m);
    int32_t *ids = NULL;
    int n_ids = parse_ids(ids_s, &ids);
    if (n_ids < K * (W - 1)) {
        fprintf(stderr, "hr_grad_dump: %d ids, need %d\n", n_ids, K * (W - 1));
        return 1;
    }
    int32_t *win = malloc(sizeof(int32_t) * (size_t)K * W); // (K, W)
    for (int w = 0; w < K; w++) {
        win[(size_t)w * W] = bos;
        memcpy(win + (size_t)w * W + 1, ids + (size_t)w * (W - 1), sizeof(int32_t) * (size_t)(W - 1));
    }
    /* the perturbed, adapted model's gradients */
    hr_params_params pp = hr_params_default_params();
    pp.lora_rank = rank, pp.lora_alpha = alpha, pp.lora_targets = HR_LORA_ALL, pp.seed = 11;
    hr_params *P = NULL;
    if (hr_params_new(m, &pp, &P) != HR_OK) return fail("params");
    for (int i = 0; i < hr_params_n_tensors(P); i++) {
        hr_param_info in;
        hr_params_info(P, i, &in);
        float *d = hr_params_data_mut(P, i);
        size_t n = (size_t)(in.rows * in.cols);
        if (in.kind == HR_PARAM_LORA_B) fill(d, n, 100 + (uint32_t)i, -0.3f, 0.3f);
        if (in.kind == HR_PARAM_HEAD_GATE || in.kind == HR_PARAM_NEURON_GATE) fill(d, n, 200 + (uint32_t)i, 0.5f, 1.5f);
    }
    hr_grad_params gp = hr_grad_default_params();
    gp.kinds = HR_GRAD_WEIGHTS | HR_GRAD_GATES | HR_GRAD_LORA;
    gp.input_grad = true;
    gp.n_threads = threads;
    hr_grad *g = NULL;
    if (hr_grad_new(P, &gp, &g) != HR_OK) return fail("grad");
    double *losses = malloc(sizeof(double) * (size_t)K); // (K)
    for (int w = 0; w < K; w++)
        if (hr_grad_accumulate(g, win + (size_t)w * W, W, 1.0f / (float)K, &losses[w]) != HR_OK)
            return fail("accumulate");
    /* scores on the unmodified model */
    int n_heads = 0, ffm = hr_config_max_ff(c);
    for (int l = 0; l < hr_config_n_layers(c); l++) n_heads += hr_config_n_head(c, l);
    double *sg = calloc((size_t)n_heads + 1, sizeof(double)), *st = calloc((size_t)n_heads + 1, sizeof(double));
    double *sn = calloc((size_t)hr_config_n_layers(c) * ffm + 1, sizeof(double));
    if (lab_scores(m, ids, n_ids, bos, W, K, threads, sg, st)) return 1;
    if (hr_taylor_neuron_scores(m, win, K, W, threads, sn) != HR_OK) return fail("neuron scores");
    int mh = hr_config_max_heads(c);
    double *lh = calloc((size_t)hr_config_n_layers(c) * mh + 1, sizeof(double));  // (n_layers, max_heads)
    double *ln = calloc((size_t)hr_config_n_layers(c) * ffm + 1, sizeof(double)); // (n_layers, max_ff)
    if (rank && hr_loraprune_importance(g, lh, ln) != HR_OK) return fail("loraprune importance");

    char pb[1024], pj[1024];
    snprintf(pb, sizeof pb, "%s.grad.bin", out);
    snprintf(pj, sizeof pj, "%s.grad.json", out);
    hr_output_params op = hr_output_default_params();
    const char *inputs[] = {model};
    op.inputs = inputs, op.n_inputs = 1, op.force = true;
    if (hr_output_check(pb, &op) != HR_OK || hr_output_check(pj, &op) != HR_OK) return fail("output");
    FILE *fb = fopen(pb, "wb"), *fj = fopen(pj, "w");
    if (!fb || !fj) return fail("cannot write outputs");
    long at = 0;
    fprintf(fj,
            "{\n  \"arch\": \"%s\", \"dim\": %d, \"n_layers\": %d, \"head_dim\": %d, \"vocab\": %d, \"seq_len\": %d,\n",
            hr_arch_name(hr_config_arch(c)), hr_config_dim(c), hr_config_n_layers(c), hr_config_head_dim(c),
            hr_config_vocab_size(c), hr_config_seq_len(c));
    hr_rope_scaling rs = hr_config_rope_scaling(c);
    fprintf(fj, "  \"norm\": \"%s\", \"mlp\": \"%s\", \"pos\": \"%s\", \"norm_eps\": %.9g, \"rope_theta\": %.9g,\n",
            hr_config_norm(c) == HR_NORM_LAYER ? "layer" : "rms", hr_config_mlp(c) == HR_MLP_GELU ? "gelu" : "swiglu",
            hr_config_pos(c) == HR_POS_LEARNED ? "learned" : "rope", hr_config_norm_eps(c), hr_config_rope_theta(c));
    fprintf(fj, "  \"rope_scaling\": %s", rs.llama3 ? "" : "null,\n");
    if (rs.llama3)
        fprintf(fj,
                "{\"rope_type\": \"llama3\", \"factor\": %.9g, \"low_freq_factor\": %.9g, \"high_freq_factor\": "
                "%.9g, \"original_max_position_embeddings\": %d},\n",
                rs.factor, rs.low_freq_factor, rs.high_freq_factor, rs.original_ctx);
    fprintf(fj, "  \"tied\": %s, \"lora_scale\": %.9g,\n", hr_config_tied_classifier(c) ? "true" : "false",
            rank ? (alpha > 0 ? alpha : (float)rank) / (float)rank : 0.0);
    put_ints(fj, "n_head", c, hr_config_n_head);
    put_ints(fj, "n_head_kv", c, hr_config_n_head_kv);
    put_ints(fj, "n_ff", c, hr_config_n_ff);
    fprintf(fj, "  \"window\": %d, \"windows\": [", W);
    for (int w = 0; w < K; w++) {
        fprintf(fj, "%s[", w ? ", " : "");
        for (int t = 0; t < W; t++) fprintf(fj, "%s%d", t ? ", " : "", win[(size_t)w * W + t]);
        fprintf(fj, "]");
    }
    fprintf(fj, "],\n");
    put_scores(fj, "losses", losses, K, false);
    fprintf(fj, "  \"tensors\": [\n");
    for (int i = 0; i < hr_params_n_tensors(P); i++) {
        hr_param_info in;
        hr_params_info(P, i, &in);
        size_t n = (size_t)(in.rows * in.cols);
        long vo = put(fb, hr_params_data(P, i), n, &at);
        const float *gr = hr_grad_tensor(g, i);
        long go = gr ? put(fb, gr, n, &at) : -1;
        fprintf(fj,
                "    {\"name\": \"%s\", \"kind\": \"%s\", \"layer\": %d, \"target\": %u, \"rows\": %lld, \"cols\": "
                "%lld, \"value\": %ld, \"grad\": %ld}%s\n",
                in.name, kind_names[in.kind], in.layer, (unsigned)in.target, (long long)in.rows, (long long)in.cols, vo,
                go, i + 1 < hr_params_n_tensors(P) ? "," : "");
    }
    int n_in = 0;
    const float *din = hr_grad_input(g, &n_in);
    long io = put(fb, din, (size_t)n_in * hr_config_dim(c), &at);
    fprintf(fj, "  ],\n  \"input_grad\": %ld,\n", io);
    put_scores(fj, "grad_scores", sg, n_heads, false);
    put_scores(fj, "taylor_scores", st, n_heads, false);
    put_scores(fj, "neuron_taylor", sn, hr_config_n_layers(c) * ffm, false);
    fprintf(fj, "  \"max_heads\": %d, \"max_ff\": %d,\n", mh, ffm);
    put_scores(fj, "loraprune_heads", lh, hr_config_n_layers(c) * mh, false);
    put_scores(fj, "loraprune_neurons", ln, hr_config_n_layers(c) * ffm, true);
    fprintf(fj, "}\n");
    int bad = fclose(fb) != 0;
    bad |= fclose(fj) != 0;
    hr_grad_free(g);
    hr_params_free(P);
    hr_model_free(m);
    free(ids), free(win), free(losses), free(sg), free(st), free(sn), free(lh), free(ln);
    return bad;
usage:
    fprintf(stderr, "usage: hr_grad_dump MODEL --ids 5,6,7 --bos B --window W --windows K [--lora-rank R] "
                    "[--lora-alpha A] [--threads T] --out PREFIX\n");
    return 2;
}
