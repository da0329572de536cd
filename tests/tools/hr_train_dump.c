/* hr_train_dump: a few steps of headroom's training loop for the PyTorch
 * reference (tests/reference/check_train_reference.py).
 *
 *   hr_train_dump MODEL --ids 5,6,7,... --window W --steps S [--batch B]
 *                 [--accum K] [--lr LR] [--warmup N] [--clip C] [--wd D]
 *                 [--lora-rank R --lora-alpha A | --full [--only SPEC]]
 *                 [--seed N] [--threads T] --out PREFIX
 *
 * The ids are the whole token stream (the held-out share is 0.2). Writes
 * PREFIX.bin (float32) and PREFIX.json: the model's configuration, every
 * parameter tensor (name, kind, shape, offset of its initial values, and of
 * its final values when it trains), the hyper-parameters, and per step the
 * window starts, the learning rate, the loss and the gradient norm.
 */
#include "headroom/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *kinds[] = {"tok_embd", "pos_embd",  "attn_norm",   "attn_norm_b", "wq",     "bq",       "wk",
                              "bk",       "wv",        "bv",          "wo",          "bo",     "ffn_norm", "ffn_norm_b",
                              "w_gate",   "w_up",      "b_up",        "w_down",      "b_down", "out_norm", "out_norm_b",
                              "output",   "head_gate", "neuron_gate", "lora_a",      "lora_b"};

static int die(const char *what) {
    fprintf(stderr, "hr_train_dump: %s: %s\n", what, hr_last_error());
    return 1;
}

int main(int argc, char **argv) {
    const char *model = NULL, *ids_s = NULL, *out = NULL;
    hr_train_params p = hr_train_default_params();
    p.heldout = 0.2f, p.n_threads = 2, p.eval_windows = 4;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            model = a;
            continue;
        }
        if (!strcmp(a, "--full")) {
            p.full = true;
            continue;
        }
        if (i + 1 >= argc) goto usage;
        const char *v = argv[++i];
        if (!strcmp(a, "--ids")) ids_s = v;
        else if (!strcmp(a, "--window")) p.window = atoi(v);
        else if (!strcmp(a, "--steps")) p.steps = atoi(v);
        else if (!strcmp(a, "--batch")) p.batch = atoi(v);
        else if (!strcmp(a, "--accum")) p.accum = atoi(v);
        else if (!strcmp(a, "--lr")) p.lr = (float)atof(v);
        else if (!strcmp(a, "--warmup")) p.warmup = atoi(v);
        else if (!strcmp(a, "--clip")) p.clip = (float)atof(v);
        else if (!strcmp(a, "--wd")) p.weight_decay = (float)atof(v);
        else if (!strcmp(a, "--lora-rank")) p.lora_rank = atoi(v);
        else if (!strcmp(a, "--lora-alpha")) p.lora_alpha = (float)atof(v);
        else if (!strcmp(a, "--only")) p.only = v;
        else if (!strcmp(a, "--seed")) p.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--threads")) p.n_threads = atoi(v);
        else if (!strcmp(a, "--out")) out = v;
        else goto usage;
    }
    if (!model || !ids_s || !out) goto usage;
    size_t n = 0, cap = 1024;
    int32_t *ids = malloc(cap * sizeof *ids); // (cap)
    for (const char *s = ids_s; ids && *s;) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s) break;
        if (n == cap) ids = realloc(ids, (cap *= 2) * sizeof *ids);
        if (!ids) break;
        ids[n++] = (int32_t)v;
        s = *end == ',' ? end + 1 : end;
    }
    hr_model *m = NULL;
    hr_train *t = NULL;
    if (hr_model_load(model, &m) != HR_OK) return die(model);
    if (hr_train_new(m, ids, n, &p, &t) != HR_OK) return die("train");
    const hr_params *P = hr_train_parameters(t);
    int nt = hr_params_n_tensors(P), K = p.batch * p.accum;
    long *init = calloc((size_t)nt, sizeof *init); // (n_tensors) offsets in floats
    char pb[1024], pj[1024];
    snprintf(pb, sizeof pb, "%s.bin", out), snprintf(pj, sizeof pj, "%s.json", out);
    FILE *fb = fopen(pb, "wb"), *fj = fopen(pj, "w");
    if (!fb || !fj || !init) return die("outputs");
    long at = 0;
    for (int i = 0; i < nt; i++) {
        hr_param_info in;
        hr_params_info(P, i, &in);
        init[i] = at;
        at += (long)fwrite(hr_params_data(P, i), sizeof(float), (size_t)(in.rows * in.cols), fb);
    }
    const hr_config *c = hr_model_config(m);
    fprintf(fj,
            "{\"arch\": \"%s\", \"dim\": %d, \"n_layers\": %d, \"head_dim\": %d, \"vocab\": %d, \"seq_len\": %d, "
            "\"norm\": \"rms\", \"mlp\": \"swiglu\", \"pos\": \"rope\", \"norm_eps\": %.9g, \"rope_theta\": %.9g, "
            "\"rope_scaling\": null, \"tied\": %s, \"lora_scale\": %.9g,\n",
            hr_arch_name(hr_config_arch(c)), hr_config_dim(c), hr_config_n_layers(c), hr_config_head_dim(c),
            hr_config_vocab_size(c), hr_config_seq_len(c), hr_config_norm_eps(c), hr_config_rope_theta(c),
            hr_config_tied_classifier(c) ? "true" : "false",
            p.lora_rank ? (p.lora_alpha > 0 ? p.lora_alpha : (float)p.lora_rank) / (float)p.lora_rank : 0.0);
    const char *keys[3] = {"n_head", "n_head_kv", "n_ff"};
    int (*fns[3])(const hr_config *, int) = {hr_config_n_head, hr_config_n_head_kv, hr_config_n_ff};
    for (int k = 0; k < 3; k++) {
        fprintf(fj, " \"%s\": [", keys[k]);
        for (int l = 0; l < hr_config_n_layers(c); l++) fprintf(fj, "%s%d", l ? ", " : "", fns[k](c, l));
        fprintf(fj, "],");
    }
    fprintf(fj,
            "\n \"window\": %d, \"lr\": %.9g, \"min_lr_ratio\": %.9g, \"warmup\": %d, \"steps\": %d, \"clip\": "
            "%.9g, \"weight_decay\": %.9g, \"beta1\": %.9g, \"beta2\": %.9g, \"eps\": %.9g, \"only\": %s%s%s,\n",
            t ? p.window : 0, p.lr, p.min_lr_ratio, p.warmup, p.steps, p.clip, p.weight_decay, p.beta1, p.beta2, p.eps,
            p.only ? "\"" : "", p.only ? p.only : "null", p.only ? "\"" : "");
    fprintf(fj, " \"ids\": [");
    for (size_t i = 0; i < n; i++) fprintf(fj, "%s%d", i ? ", " : "", ids[i]);
    fprintf(fj, "],\n \"steps_done\": [\n");
    int64_t *starts = malloc(sizeof(int64_t) * (size_t)K); // (batch * accum)
    for (int s = 0; s < p.steps; s++) {
        if (hr_train_peek_starts(t, s, starts) != HR_OK || hr_train_step(t) != HR_OK) return die("step");
        hr_train_info info;
        hr_train_get_info(t, &info);
        fprintf(fj, "  {\"starts\": [");
        for (int k = 0; k < K; k++) fprintf(fj, "%s%lld", k ? ", " : "", (long long)starts[k]);
        fprintf(fj, "], \"lr\": %.17g, \"loss\": %.17g, \"grad_norm\": %.17g}%s\n", info.lr, info.loss, info.grad_norm,
                s + 1 < p.steps ? "," : "");
    }
    fprintf(fj, " ],\n \"tensors\": [\n");
    for (int i = 0; i < nt; i++) {
        hr_param_info in;
        hr_params_info(P, i, &in);
        long fin = at;
        at += (long)fwrite(hr_params_data(P, i), sizeof(float), (size_t)(in.rows * in.cols), fb);
        fprintf(fj,
                "  {\"name\": \"%s\", \"kind\": \"%s\", \"layer\": %d, \"rows\": %lld, \"cols\": %lld, \"value\": "
                "%ld, \"final\": %ld}%s\n",
                in.name, kinds[in.kind], in.layer, (long long)in.rows, (long long)in.cols, init[i], fin,
                i + 1 < nt ? "," : "");
    }
    fprintf(fj, " ]\n}\n");
    int bad = (fclose(fb) != 0) | (fclose(fj) != 0);
    hr_train_free(t);
    hr_model_free(m);
    free(ids), free(init), free(starts);
    return bad;
usage:
    fprintf(stderr, "usage: hr_train_dump MODEL --ids 5,6,7 --window W --steps S [options] --out PREFIX\n");
    return 2;
}
