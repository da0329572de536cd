/* Trainable parameters: the model's weights (borrowed or an owned copy),
 * head and neuron gates, LoRA adapters. */
#include "engine/grad/grad_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

hr_params_params hr_params_default_params(void) {
    hr_params_params p;
    memset(&p, 0, sizeof p);
    return p;
}

/* GGUF name suffix of each base-weight kind (model tensor listing order). */
static const struct {
    const char *suffix;
    hr_param_kind kind;
} weight_names[] = {
    {"token_embd.weight", HR_PARAM_TOK_EMBD},
    {"position_embd.weight", HR_PARAM_POS_EMBD},
    {"attn_norm.weight", HR_PARAM_ATTN_NORM},
    {"attn_norm.bias", HR_PARAM_ATTN_NORM_B},
    {"attn_q.weight", HR_PARAM_WQ},
    {"attn_q.bias", HR_PARAM_BQ},
    {"attn_k.weight", HR_PARAM_WK},
    {"attn_k.bias", HR_PARAM_BK},
    {"attn_v.weight", HR_PARAM_WV},
    {"attn_v.bias", HR_PARAM_BV},
    {"attn_output.weight", HR_PARAM_WO},
    {"attn_output.bias", HR_PARAM_BO},
    {"ffn_norm.weight", HR_PARAM_FFN_NORM},
    {"ffn_norm.bias", HR_PARAM_FFN_NORM_B},
    {"ffn_gate.weight", HR_PARAM_W_GATE},
    {"ffn_up.weight", HR_PARAM_W_UP},
    {"ffn_up.bias", HR_PARAM_B_UP},
    {"ffn_down.weight", HR_PARAM_W_DOWN},
    {"ffn_down.bias", HR_PARAM_B_DOWN},
    {"output_norm.weight", HR_PARAM_OUT_NORM},
    {"output_norm.bias", HR_PARAM_OUT_NORM_B},
    {"output.weight", HR_PARAM_OUTPUT},
};

/* LoRA targets: the matrix's name and which of its sizes are d_in / d_out. */
static const char *const lora_names[HR_LORA_N_TARGETS] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                                          "ffn_gate", "ffn_up", "ffn_down"};

const hr_slot hr_lora_slot[HR_LORA_N_TARGETS] = {HR_SLOT_Q,    HR_SLOT_K,  HR_SLOT_V,   HR_SLOT_O,
                                                 HR_SLOT_GATE, HR_SLOT_UP, HR_SLOT_DOWN};

hr_slot hr_param_slot(hr_param_kind k) {
    static const hr_slot slots[HR_PARAM_HEAD_GATE] = {
        [HR_PARAM_TOK_EMBD] = HR_SLOT_TOK_EMBD,
        [HR_PARAM_POS_EMBD] = HR_SLOT_POS_EMBD,
        [HR_PARAM_ATTN_NORM] = HR_SLOT_ATTN_NORM,
        [HR_PARAM_ATTN_NORM_B] = HR_SLOT_ATTN_NORM_B,
        [HR_PARAM_WQ] = HR_SLOT_Q,
        [HR_PARAM_BQ] = HR_SLOT_Q_B,
        [HR_PARAM_WK] = HR_SLOT_K,
        [HR_PARAM_BK] = HR_SLOT_K_B,
        [HR_PARAM_WV] = HR_SLOT_V,
        [HR_PARAM_BV] = HR_SLOT_V_B,
        [HR_PARAM_WO] = HR_SLOT_O,
        [HR_PARAM_BO] = HR_SLOT_O_B,
        [HR_PARAM_FFN_NORM] = HR_SLOT_FFN_NORM,
        [HR_PARAM_FFN_NORM_B] = HR_SLOT_FFN_NORM_B,
        [HR_PARAM_W_GATE] = HR_SLOT_GATE,
        [HR_PARAM_W_UP] = HR_SLOT_UP,
        [HR_PARAM_B_UP] = HR_SLOT_UP_B,
        [HR_PARAM_W_DOWN] = HR_SLOT_DOWN,
        [HR_PARAM_B_DOWN] = HR_SLOT_DOWN_B,
        [HR_PARAM_OUT_NORM] = HR_SLOT_OUT_NORM,
        [HR_PARAM_OUT_NORM_B] = HR_SLOT_OUT_NORM_B,
        [HR_PARAM_OUTPUT] = HR_SLOT_OUTPUT,
    };
    return k >= 0 && k < HR_PARAM_HEAD_GATE ? slots[k] : (hr_slot)HR_N_SLOTS;
}

/* The slot of the forward's weight view that a base-weight kind fills. */
static const float **weight_slot(hr_weights *w, hr_param_kind k, int layer) {
    hr_slot s = hr_param_slot(k);
    return s == (hr_slot)HR_N_SLOTS ? NULL : hr_slot_ptr(w, layer >= 0 ? layer : 0, s);
}

static hr_param_kind kind_of(const char *name) {
    const char *suffix = name;
    if (strncmp(name, "blk.", 4) == 0) {
        const char *dot = strchr(name + 4, '.');
        suffix = dot ? dot + 1 : name;
    }
    for (size_t i = 0; i < sizeof weight_names / sizeof weight_names[0]; i++)
        if (strcmp(suffix, weight_names[i].suffix) == 0) return weight_names[i].kind;
    return HR_PARAM_KIND_COUNT;
}

/* d_in / d_out of LoRA target i in layer l (0 when the matrix is absent). */
static void lora_dims(const hr_config *c, int l, int i, int *d_in, int *d_out) {
    int qd = c->n_head[l] * c->head_dim, kvd = c->n_head_kv[l] * c->head_dim, ff = c->n_ff[l], dim = c->dim;
    int in[HR_LORA_N_TARGETS] = {dim, dim, dim, qd, dim, dim, ff};
    int out[HR_LORA_N_TARGETS] = {qd, kvd, kvd, dim, ff, ff, dim};
    /* present by the config (a matrix kept typed has no f32 pointer) */
    bool ok = hr_slot_expected(c, l, hr_lora_slot[i]) && in[i] > 0 && out[i] > 0;
    *d_in = ok ? in[i] : 0;
    *d_out = ok ? out[i] : 0;
}

void hr_params_free(hr_params *p) {
    if (!p) return;
    for (int i = 0; p->t && i < p->n; i++) free(p->t[i].owned);
    free(p->t);
    hr_packed_weights_free(p->own_packed);
    if (p->model_packed) hr_model_packed_release(p->model);
    free(p);
}

/* Appends a tensor; data NULL = a new owned buffer filled with fill. */
static hr_status add_tensor(hr_params *p, int cap, const char *name, hr_param_kind kind, int layer,
                            hr_lora_target target, int64_t rows, int64_t cols, const float *data, bool copy,
                            float fill) {
    if (p->n >= cap) return hr_err(HR_ERR_INVALID_ARG, "too many parameter tensors");
    hr_param_tensor *t = &p->t[p->n];
    memset(t, 0, sizeof *t);
    snprintf(t->info.name, sizeof t->info.name, "%s", name);
    t->info.kind = kind, t->info.layer = layer, t->info.target = target;
    t->info.rows = rows, t->info.cols = cols;
    size_t n;
    if (!hr_mul_size((size_t)rows, (size_t)cols, &n)) return hr_err(HR_ERR_NOMEM, "tensor %s too large", name);
    if (!data && !copy && kind < HR_PARAM_HEAD_GATE) {
        /* a borrowed matrix the model keeps typed: no f32 rows (yet) */
    } else if (!data || copy) {
        t->owned = malloc(n * sizeof(float) + 1); /* (rows, cols) */
        if (!t->owned) return hr_err(HR_ERR_NOMEM, "out of memory for %s (%zu floats)", name, n);
        if (data) memcpy(t->owned, data, n * sizeof(float));
        else
            for (size_t i = 0; i < n; i++) t->owned[i] = fill;
        t->data = t->owned;
    } else {
        t->data = data;
    }
    t->info.writable = t->owned != NULL;
    if (kind < HR_PARAM_LORA_A) p->idx[kind][layer >= 0 ? layer : 0] = p->n;
    p->n++;
    return HR_OK;
}

/* splitmix64 + Box-Muller, for the LoRA A initialisation. */
static uint64_t mix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double normal01(uint64_t *s) {
    double u1 = ((double)(mix64(s) >> 11) + 1.0) / 9007199254740993.0,
           u2 = (double)(mix64(s) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static hr_status add_lora(hr_params *p, int cap) {
    const hr_config *c = p->c;
    int r = p->p.lora_rank;
    uint32_t targets = p->p.lora_targets ? p->p.lora_targets : HR_LORA_ALL;
    uint64_t rng = p->p.seed * 0x2545F4914F6CDD1Dull + 0x1D0Au;
    for (int l = 0; l < c->n_layers; l++)
        for (int i = 0; i < HR_LORA_N_TARGETS; i++) {
            int d_in, d_out;
            lora_dims(c, l, i, &d_in, &d_out);
            if (!(targets & (1u << i)) || d_in == 0) continue;
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s.lora_a", l, lora_names[i]);
            hr_status st =
                add_tensor(p, cap, name, HR_PARAM_LORA_A, l, (hr_lora_target)(1u << i), r, d_in, NULL, false, 0.0f);
            if (st != HR_OK) return st;
            p->lora[l][i][0] = p->n - 1;
            float *a = p->t[p->n - 1].owned;
            double sd = 1.0 / sqrt((double)d_in);
            for (size_t k = 0; k < (size_t)r * d_in; k++) a[k] = (float)(sd * normal01(&rng));
            snprintf(name, sizeof name, "blk.%d.%s.lora_b", l, lora_names[i]);
            st = add_tensor(p, cap, name, HR_PARAM_LORA_B, l, (hr_lora_target)(1u << i), d_out, r, NULL, false, 0.0f);
            if (st != HR_OK) return st;
            p->lora[l][i][1] = p->n - 1;
        }
    return HR_OK;
}

hr_status hr_params_new(const hr_model *m, const hr_params_params *pp, hr_params **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!m) return hr_err(HR_ERR_INVALID_ARG, "no model given");
    hr_params_params dp = hr_params_default_params();
    if (!pp) pp = &dp;
    /* Copied weights are trained: they need f32 rows. Borrowed ones stay as
     * the model holds them: matrices kept typed have NULL data here, the
     * gradient engine packs from the model and converts one layer at a time
     * for the backward (grad.c bwd_weights), Taylor scores likewise. */
    if (pp->copy_weights) {
        hr_status need_ = hr_model_need_f32(m); /* reads f32 rows (model_internal.h) */
        if (need_ != HR_OK) return need_;
    }
    if (pp->lora_rank < 0 || pp->lora_rank > 4096)
        return hr_err(HR_ERR_RANGE, "LoRA rank %d out of range", pp->lora_rank);
    if (pp->lora_targets & ~(uint32_t)HR_LORA_ALL)
        return hr_err(HR_ERR_INVALID_ARG, "unknown LoRA targets 0x%x", pp->lora_targets);
    if (!isfinite(pp->lora_alpha) || pp->lora_alpha < 0)
        return hr_err(HR_ERR_INVALID_ARG, "LoRA alpha must be finite and >= 0");
    const hr_config *c = hr_model_config(m);
    int n_w = hr_model_tensors(m, NULL, 0);
    int cap = n_w + 2 * c->n_layers + (pp->lora_rank > 0 ? 2 * HR_LORA_N_TARGETS * c->n_layers : 0);
    hr_params *p = calloc(1, sizeof *p);
    hr_tensor_ref *refs = malloc(sizeof *refs * (size_t)(n_w ? n_w : 1));
    if (p) p->t = calloc((size_t)cap, sizeof *p->t);
    if (!p || !refs || !p->t) {
        free(refs);
        hr_params_free(p);
        return hr_err(HR_ERR_NOMEM, "out of memory");
    }
    p->model = m, p->c = c, p->p = *pp;
    p->lora_scale =
        pp->lora_rank > 0 ? (pp->lora_alpha > 0 ? pp->lora_alpha : (float)pp->lora_rank) / (float)pp->lora_rank : 0;
    memset(p->idx, 0xff, sizeof p->idx);
    memset(p->lora, 0xff, sizeof p->lora);
    hr_model_tensors(m, refs, n_w);
    hr_status st = HR_OK;
    for (int i = 0; st == HR_OK && i < n_w; i++) {
        hr_param_kind k = kind_of(refs[i].name);
        if (k == HR_PARAM_KIND_COUNT) {
            st = hr_err(HR_ERR_UNSUPPORTED, "tensor %s has no parameter kind", refs[i].name);
            break;
        }
        st = add_tensor(p, cap, refs[i].name, k, refs[i].layer, 0, refs[i].rows, refs[i].cols, refs[i].data,
                        pp->copy_weights, 0.0f);
        if (st == HR_OK) *weight_slot(&p->w, k, refs[i].layer) = p->t[p->n - 1].data;
    }
    free(refs);
    if (st == HR_OK && c->tied_classifier) p->w.output = p->w.tok_embd;
    for (int l = 0; st == HR_OK && l < c->n_layers; l++) {
        char name[64];
        if (c->n_head[l] > 0) {
            snprintf(name, sizeof name, "blk.%d.head_gate", l);
            st = add_tensor(p, cap, name, HR_PARAM_HEAD_GATE, l, 0, 1, c->n_head[l], NULL, false, 1.0f);
        }
        if (st == HR_OK && c->n_ff[l] > 0) {
            snprintf(name, sizeof name, "blk.%d.neuron_gate", l);
            st = add_tensor(p, cap, name, HR_PARAM_NEURON_GATE, l, 0, 1, c->n_ff[l], NULL, false, 1.0f);
        }
    }
    if (st == HR_OK && pp->lora_rank > 0) st = add_lora(p, cap);
    if (st != HR_OK) {
        hr_params_free(p);
        return st;
    }
    p->dirty = true;
    *out = p;
    return HR_OK;
}

const hr_model *hr_params_model(const hr_params *p) { return p ? p->model : NULL; }
int hr_params_n_tensors(const hr_params *p) { return p ? p->n : 0; }

hr_status hr_params_info(const hr_params *p, int i, hr_param_info *out) {
    if (!p || !out) return hr_err(HR_ERR_INVALID_ARG, "no parameters or output given");
    if (i < 0 || i >= p->n)
        return hr_err(HR_ERR_RANGE, "parameter tensor %d out of range (%d tensors)", i, p ? p->n : 0);
    *out = p->t[i].info;
    return HR_OK;
}

int hr_params_index(const hr_params *p, hr_param_kind kind, int layer) {
    if (kind < 0 || kind >= HR_PARAM_LORA_A) return -1;
    bool global = kind == HR_PARAM_TOK_EMBD || kind == HR_PARAM_POS_EMBD || kind == HR_PARAM_OUT_NORM ||
                  kind == HR_PARAM_OUT_NORM_B || kind == HR_PARAM_OUTPUT;
    if (global) return p->idx[kind][0];
    return layer >= 0 && layer < p->c->n_layers ? p->idx[kind][layer] : -1;
}

int hr_params_find(const hr_params *p, hr_param_kind kind, int layer, hr_lora_target target) {
    if (!p) return -1;
    if (kind == HR_PARAM_LORA_A || kind == HR_PARAM_LORA_B) {
        if (layer < 0 || layer >= p->c->n_layers || target == 0 || (target & (target - 1))) return -1;
        int i = __builtin_ctz((unsigned)target);
        return i < HR_LORA_N_TARGETS ? p->lora[layer][i][kind == HR_PARAM_LORA_B] : -1;
    }
    return target ? -1 : hr_params_index(p, kind, layer);
}

/* A borrowed weight the model keeps typed has no f32 rows here: asking for
 * its values converts the model's matrices (hr_model_need_f32, once, under
 * its lock) and answers with the model's rows; the parameters themselves
 * are not changed (the gradient engine keeps reading them one layer at a
 * time). */
const float *hr_params_data(const hr_params *p, int i) {
    if (!p || i < 0 || i >= p->n) return NULL;
    const hr_param_tensor *t = &p->t[i];
    if (t->data || t->owned || t->info.kind >= HR_PARAM_HEAD_GATE) return t->data;
    if (hr_model_need_f32(p->model) != HR_OK) return NULL;
    return *weight_slot((hr_weights *)&p->model->w, t->info.kind, t->info.layer);
}

float *hr_params_data_mut(hr_params *p, int i) {
    if (!p || i < 0 || i >= p->n || !p->t[i].owned) return NULL;
    if (p->t[i].info.kind < HR_PARAM_HEAD_GATE) p->dirty = true;
    return p->t[i].owned;
}

void hr_params_touch(hr_params *p) {
    if (p) p->dirty = true;
}

void hr_params_release_packed(hr_params *p) {
    if (!p) return;
    hr_packed_weights_free(p->own_packed);
    p->own_packed = NULL;
}

hr_status hr_params_packed(hr_params *p, hr_pool *pool, const hr_packed_weights **out) {
    if (!p->p.copy_weights) { /* held from the first forward until hr_params_free */
        hr_status st = hr_model_packed_hold(p->model, pool, &p->model_packed);
        *out = p->model_packed;
        return st;
    }
    if (p->own_packed && p->dirty) { /* the weights changed in place: same shape, same buffer */
        hr_status st = hr_repack_weights(p->c, &p->w, pool, p->own_packed);
        if (st != HR_OK) return st;
        p->dirty = false;
    }
    if (!p->own_packed) {
        hr_status st = hr_pack_weights(p->c, &p->w, pool, &p->own_packed);
        if (st != HR_OK) return st;
        p->dirty = false;
    }
    *out = p->own_packed;
    return HR_OK;
}
