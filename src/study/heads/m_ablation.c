/* ablation / ablation_kl: exact effect of removing one head.
 *
 * One base forward per window records the residual entering every layer;
 * each (layer, head) is then gated off and only layers >= layer are re-run
 * with hr_forward_from, so a sweep costs sum_l n_head[l] * (L - l) layer
 * passes instead of L * H full forwards. */
#include "study/heads/heads_internal.h"
#include "study/intervene.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    float *buf; /* (L, W, dim) residual entering each layer */
    int W, dim;
} abl_rec;

static int record_hook(const hr_hook_event *ev, void *ud) {
    abl_rec *r = ud;
    float *dst = r->buf + ((size_t)ev->layer * r->W + ev->pos0) * r->dim;
    for (int t = 0; t < ev->n_tokens; t++)
        memcpy(dst + (size_t)t * r->dim, ev->data + (size_t)t * ev->stride, (size_t)r->dim * sizeof(float));
    return 0;
}

/* Mean output of every head over the calibration windows (mean-ablation). */
static hr_status head_means(hr_lab *lab, float **out) {
    *out = calloc((size_t)lab->L * lab->H * lab->c->head_dim, sizeof(float));
    if (!*out) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_status st = hr_head_means_of_windows(lab->ctx, lab->windows, lab->n_windows, lab->W, *out);
    if (st != HR_OK) {
        free(*out);
        *out = NULL;
    }
    return st;
}

typedef struct {
    float *resid;   /* (L, W, dim) */
    float *logits;  /* (W, vocab) */
    float *base_p;  /* (W, vocab) */
    double *negent; /* (W) */
    float *gates;   /* (L, H) */
} sweep_bufs;

typedef struct {
    const float *alive; /* (L, H) base gates: 0 = already removed; NULL = all 1 */
    double *loss, *kl;  /* (L, H) outputs, added to (mean over windows) */
    int64_t prog_done, prog_total;
} sweep_req;

static hr_status sweep_window(hr_lab *lab, sweep_bufs *b, const int32_t *win, sweep_req *rq) {
    int W = lab->W, vocab = lab->c->vocab_size;
    size_t lh = (size_t)lab->L * lab->H;
    abl_rec r = {b->resid, W, lab->c->dim};
    for (size_t i = 0; i < lh; i++) b->gates[i] = rq->alive ? rq->alive[i] : 1.0f;
    hr_status st = hr_context_set_head_gates(lab->ctx, b->gates);
    hr_context_set_hook(lab->ctx, record_hook, HR_HOOK_RESID_PRE, &r);
    if (st == HR_OK) st = hr_context_truncate(lab->ctx, 0);
    if (st == HR_OK) st = hr_forward(lab->ctx, win, W, b->base_p, true);
    hr_context_set_hook(lab->ctx, NULL, 0, NULL);
    if (st != HR_OK) return st;
    double base_nll, nll, kl;
    lab_nll_kl(lab, b->base_p, NULL, NULL, win, W, vocab, &base_nll, NULL);
    lab_base_probs(lab, b->base_p, b->negent, W, vocab);
    for (int l = 0; st == HR_OK && l < lab->L; l++) {
        const float *x = b->resid + (size_t)l * W * lab->c->dim;
        for (int h = 0; st == HR_OK && h < lab->c->n_head[l]; h++) {
            size_t i = lab_idx(lab, l, h);
            if (b->gates[i] == 0) continue; /* removed in the base */
            float keep = b->gates[i];
            b->gates[i] = 0;
            st = hr_context_set_head_gates(lab->ctx, b->gates);
            b->gates[i] = keep;
            if (st == HR_OK) st = hr_forward_from(lab->ctx, l, 0, x, W, b->logits, true);
            if (st != HR_OK) break;
            lab_nll_kl(lab, b->logits, b->base_p, b->negent, win, W, vocab, &nll, &kl);
            rq->loss[i] += (nll - base_nll) / lab->n_windows;
            rq->kl[i] += kl / lab->n_windows;
            st = lab_progress(lab, ++rq->prog_done, rq->prog_total);
        }
    }
    return st;
}

hr_status lab_ablation_sweep(hr_lab *lab, const float *alive, double *loss, double *kl, int64_t *prog_done,
                             int64_t prog_total) {
    size_t lh = (size_t)lab->L * lab->H, W = (size_t)lab->W, vocab = (size_t)lab->c->vocab_size;
    size_t dim = (size_t)lab->c->dim, n_resid, n_logits;
    if (!hr_mul_size(lh ? (size_t)lab->L : 1, W * dim, &n_resid) || !hr_mul_size(W, vocab, &n_logits))
        return hr_err(HR_ERR_NOMEM, "ablation buffers overflow");
    sweep_bufs b = {malloc(n_resid * sizeof(float)), malloc(n_logits * sizeof(float)), malloc(n_logits * sizeof(float)),
                    malloc(W * sizeof(double)), malloc((lh ? lh : 1) * sizeof(float))};
    float *means = NULL;
    hr_status st = HR_OK;
    if (!b.resid || !b.logits || !b.base_p || !b.negent || !b.gates)
        st = hr_err(HR_ERR_NOMEM, "out of memory for the ablation sweep");
    if (st == HR_OK && lab->p.mean_ablation) {
        st = head_means(lab, &means);
        if (st == HR_OK) st = hr_context_set_head_means(lab->ctx, means);
    }
    sweep_req rq = {alive, loss, kl, *prog_done, prog_total};
    for (int w = 0; st == HR_OK && w < lab->n_windows; w++)
        st = sweep_window(lab, &b, lab->windows + (size_t)w * W, &rq);
    *prog_done = rq.prog_done;
    hr_context_set_head_gates(lab->ctx, NULL);
    hr_context_set_head_means(lab->ctx, NULL);
    free(means);
    free(b.resid);
    free(b.logits);
    free(b.base_p);
    free(b.negent);
    free(b.gates);
    return st;
}

static hr_status run_sweep(hr_lab *lab) {
    if (lab->abl_loss) return HR_OK;
    size_t lh = (size_t)lab->L * lab->H;
    double *loss = calloc(lh ? lh : 1, sizeof(double)), *kl = calloc(lh ? lh : 1, sizeof(double));
    if (!loss || !kl) {
        free(loss), free(kl);
        return hr_err(HR_ERR_NOMEM, "out of memory for the ablation sweep");
    }
    int64_t total = 0, done = 0;
    for (int l = 0; l < lab->L; l++) total += lab->c->n_head[l];
    hr_status st = lab_ablation_sweep(lab, NULL, loss, kl, &done, total * lab->n_windows);
    if (st != HR_OK) {
        free(loss), free(kl);
        return st;
    }
    lab->abl_loss = loss;
    lab->abl_kl = kl;
    return HR_OK;
}

/* One sweep: per window the base forward with every logit, then one forward
 * from each head's layer with every logit (plus, with mean ablation, a
 * forward per window for the means). Progress: one item per head and window. */
static void ablation_cost(const hr_lab *lab, lab_cost *out) {
    double NW = (double)lab->n_windows * lab->W;
    int heads = lab_n_heads(lab);
    out->work =
        (hr_heads_work){NW * (1 + lab_heads_depth(lab)) + (lab->p.mean_ablation ? NW : 0), 0, NW * (1 + heads), 0};
    out->items = (int64_t)heads * lab->n_windows;
    out->exact = true;
}

static hr_status copy_scores(hr_lab *lab, const double *src, double *scores) {
    for (int l = 0; l < lab->L; l++)
        for (int h = 0; h < lab->c->n_head[l]; h++) scores[lab_idx(lab, l, h)] = src[lab_idx(lab, l, h)];
    return HR_OK;
}

static hr_status ablation_compute(hr_lab *lab, int method, double *scores) {
    (void)method;
    hr_status st = run_sweep(lab);
    return st == HR_OK ? copy_scores(lab, lab->abl_loss, scores) : st;
}

static hr_status ablation_kl_compute(hr_lab *lab, int method, double *scores) {
    (void)method;
    hr_status st = run_sweep(lab);
    return st == HR_OK ? copy_scores(lab, lab->abl_kl, scores) : st;
}

const hr_head_method hr_method_ablation = {
    {"ablation", "ablation: loss increase",
     "Michel et al. 2019, Are Sixteen Heads Really Better than One? (NeurIPS); exact single-head ablation",
     "mean over calibration windows of NLL(head gated to 0, or to its mean output with --mean-ablation) - "
     "NLL(base), nats/token, all window positions scored",
     "the ground truth of head importance for the calibration text; the reference other (cheaper) scores are "
     "judged against",
     "more important", true},
    LAB_INPUT_NONE,
    NULL,
    ablation_compute,
    {"ablation sweep", "head ablations", ablation_cost}};

const hr_head_method hr_method_ablation_kl = {
    {"ablation_kl", "ablation: KL divergence",
     "Michel et al. 2019; KL form as in FinerCut (Zhang et al. 2024) and Wanda-style output matching",
     "mean over calibration positions of KL(p_base || p_ablated) of the next-token distribution (nats)",
     "importance that also counts changes which do not move the loss (e.g. redistributing probability among "
     "wrong tokens); always >= 0",
     "more important", true},
    LAB_INPUT_NONE,
    NULL,
    ablation_kl_compute,
    {"ablation sweep", "head ablations", ablation_cost}};
