/* Layer and sublayer metrics (layers.json): ShortGPT block influence,
 * "What Matters in Transformers" sublayer similarity, FinerCut-style KL of
 * removing one sublayer; FDTM columns are filled by the fdtm method. */
#include "study/heads/heads_internal.h"

#include <stdlib.h>
#include <string.h>

static const hr_layer_metric_info k_metrics[LM_COUNT] = {
    {"block_influence", "block influence",
     "Men et al. 2024, ShortGPT: Layers in Large Language Models are More Redundant Than You Expect",
     "mean over calibration tokens of 1 - cos(x_in, x_out) of the whole block (low = redundant layer)"},
    {"attn_sim", "attention sublayer change",
     "He et al. 2024, What Matters in Transformers? Not All Attention is Needed",
     "mean over tokens of 1 - cos(x, x + Attn(x)) (low = redundant attention sublayer)"},
    {"mlp_sim", "MLP sublayer change", "He et al. 2024, What Matters in Transformers? Not All Attention is Needed",
     "mean over tokens of 1 - cos(h, h + MLP(h)), h = x + Attn(x) (low = redundant MLP)"},
    {"attn_kl", "KL of removing attention",
     "Zhang et al. 2024, FinerCut: Finer-grained Interpretable Layer Pruning for Large Language Models",
     "mean over calibration positions of KL(p_base || p without this attention sublayer) (nats)"},
    {"mlp_kl", "KL of removing the MLP",
     "Zhang et al. 2024, FinerCut: Finer-grained Interpretable Layer Pruning for Large Language Models",
     "mean over calibration positions of KL(p_base || p without this MLP sublayer) (nats)"},
    {"fdtm_attn", "FDTM of removing attention", "Deiseroth et al. 2023, Divergent Token Metrics",
     "mean first divergent greedy token when the attention sublayer is removed (fdtm method; higher = safer)"},
    {"fdtm_mlp", "FDTM of removing the MLP", "Deiseroth et al. 2023, Divergent Token Metrics",
     "mean first divergent greedy token when the MLP sublayer is removed (fdtm method; higher = safer)"},
};

int hr_heads_n_layer_metrics(void) { return LM_COUNT; }
const hr_layer_metric_info *hr_heads_layer_metric_info(int i) { return i >= 0 && i < LM_COUNT ? &k_metrics[i] : NULL; }

typedef struct {
    float *pre, *attn, *mlp; /* (L, W, dim) each */
    int W, dim;
} layer_rec;

static int layer_hook(const hr_hook_event *ev, void *ud) {
    layer_rec *r = ud;
    float *base = ev->point == HR_HOOK_RESID_PRE ? r->pre : ev->point == HR_HOOK_ATTN_OUT ? r->attn : r->mlp;
    float *dst = base + ((size_t)ev->layer * r->W + ev->pos0) * r->dim;
    for (int t = 0; t < ev->n_tokens; t++)
        memcpy(dst + (size_t)t * r->dim, ev->data + (size_t)t * ev->stride, sizeof(float) * r->dim);
    return 0;
}

/* 1 - cos(a, a + d) */
static double one_minus_cos(const float *a, const float *d, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        double b = (double)a[i] + d[i];
        ab += a[i] * b;
        aa += (double)a[i] * a[i];
        bb += b * b;
    }
    return aa > 0 && bb > 0 ? 1.0 - ab / sqrt(aa * bb) : 0.0;
}

static void similarities(hr_lab *lab, const layer_rec *r, double scale) {
    int W = r->W, dim = r->dim;
    float *tmp = malloc(sizeof(float) * dim), *sum = malloc(sizeof(float) * dim);
    if (!tmp || !sum) goto out;
    for (int l = 0; l < lab->L; l++) {
        double bi = 0, as = 0, ms = 0;
        for (int t = 0; t < W; t++) {
            size_t o = ((size_t)l * W + t) * dim;
            const float *x = r->pre + o, *a = r->attn + o, *m = r->mlp + o;
            for (int i = 0; i < dim; i++) tmp[i] = x[i] + a[i], sum[i] = a[i] + m[i];
            bi += one_minus_cos(x, sum, dim);
            as += one_minus_cos(x, a, dim);
            ms += one_minus_cos(tmp, m, dim);
        }
        lab->layer_scores[(size_t)LM_BLOCK_INFLUENCE * lab->L + l] += bi / W * scale;
        lab->layer_scores[(size_t)LM_ATTN_SIM * lab->L + l] += as / W * scale;
        lab->layer_scores[(size_t)LM_MLP_SIM * lab->L + l] += ms / W * scale;
    }
out:
    free(tmp);
    free(sum);
}

/* KL of skipping each sublayer: re-enter at the MLP with the residual the
 * attention received (no attention), or at the next block with the
 * residual the MLP received (no MLP). */
static hr_status removal_kls(hr_lab *lab, const layer_rec *r, const int32_t *win, float *logits, const float *base_p,
                             const double *negent, float *x, double scale, int64_t done) {
    int W = r->W, dim = r->dim, vocab = lab->c->vocab_size;
    hr_status st = HR_OK;
    for (int l = 0; st == HR_OK && l < lab->L; l++) {
        size_t o = (size_t)l * W * dim;
        double nll, kl;
        st = hr_forward_from(lab->ctx, l, 1, r->pre + o, W, logits, true);
        if (st != HR_OK) break;
        lab_nll_kl(lab, logits, base_p, negent, win, W, vocab, &nll, &kl);
        lab->layer_scores[(size_t)LM_ATTN_KL * lab->L + l] += kl * scale;
        for (size_t i = 0; i < (size_t)W * dim; i++) x[i] = r->pre[o + i] + r->attn[o + i];
        st = hr_forward_from(lab->ctx, l + 1, 0, x, W, logits, true);
        if (st != HR_OK) break;
        lab_nll_kl(lab, logits, base_p, negent, win, W, vocab, &nll, &kl);
        lab->layer_scores[(size_t)LM_MLP_KL * lab->L + l] += kl * scale;
        st = lab_progress(lab, done + l + 1, (int64_t)lab->n_windows * lab->L);
    }
    return st;
}

hr_status lab_layer_metrics(hr_lab *lab) {
    size_t W = (size_t)lab->W, dim = (size_t)lab->c->dim, vocab = (size_t)lab->c->vocab_size, n_rec, n_log;
    if (!hr_mul_size((size_t)lab->L, W * dim, &n_rec) || !hr_mul_size(W, vocab, &n_log))
        return hr_err(HR_ERR_NOMEM, "layer buffers overflow");
    layer_rec r = {malloc(sizeof(float) * (n_rec ? n_rec : 1)), malloc(sizeof(float) * (n_rec ? n_rec : 1)),
                   malloc(sizeof(float) * (n_rec ? n_rec : 1)), lab->W, lab->c->dim};
    float *logits = malloc(sizeof(float) * n_log), *base_p = malloc(sizeof(float) * n_log);
    float *x = malloc(sizeof(float) * W * dim);
    double *negent = malloc(sizeof(double) * W);
    hr_status st =
        r.pre && r.attn && r.mlp && logits && base_p && x && negent ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory");
    /* Layers without attention or MLP emit nothing: their change is 0. */
    if (st == HR_OK) {
        memset(r.attn, 0, sizeof(float) * n_rec);
        memset(r.mlp, 0, sizeof(float) * n_rec);
    }
    for (int m = LM_BLOCK_INFLUENCE; m <= LM_MLP_KL; m++)
        for (int l = 0; l < lab->L; l++) lab->layer_scores[(size_t)m * lab->L + l] = 0;
    double scale = 1.0 / lab->n_windows;
    for (int w = 0; st == HR_OK && w < lab->n_windows; w++) {
        const int32_t *win = lab->windows + (size_t)w * W;
        hr_context_set_hook(lab->ctx, layer_hook, HR_HOOK_RESID_PRE | HR_HOOK_ATTN_OUT | HR_HOOK_MLP_OUT, &r);
        st = hr_context_truncate(lab->ctx, 0);
        if (st == HR_OK) st = hr_forward(lab->ctx, win, lab->W, base_p, true);
        hr_context_set_hook(lab->ctx, NULL, 0, NULL);
        if (st != HR_OK) break;
        lab_base_probs(lab, base_p, negent, lab->W, (int)vocab);
        similarities(lab, &r, scale);
        st = removal_kls(lab, &r, win, logits, base_p, negent, x, scale, (int64_t)w * lab->L);
    }
    free(r.pre);
    free(r.attn);
    free(r.mlp);
    free(logits);
    free(base_p);
    free(x);
    free(negent);
    return st;
}

/* Progress: one item per window and layer. Per window: the base forward
 * with every logit, then for every layer one
 * forward from its MLP (no attention: L - l - 1/2 layers) and one from the
 * next block (no MLP: L - l - 1 layers), each with every logit. Summed over
 * layers that is W * (L + 1/2) tokens and W * (1 + 2L) rows per window. */
void lab_cost_layer_metrics(const hr_lab *lab, lab_cost *out) {
    double W = lab->W, N = lab->n_windows;
    out->work = (hr_heads_work){N * W * (lab->L + 0.5), 0, N * W * (1 + 2.0 * lab->L), 0};
    out->items = (int64_t)lab->n_windows * lab->L;
    out->exact = true;
}
