/* Checkpoints of a training run (format in headroom/train.h): written
 * atomically, refused when from another model shape, mode or part, or
 * corrupt. */
#include "study/train/train_internal.h"
#include "core/internal.h"
#include "core/strbuf.h"

#include <stdlib.h>
#include <string.h>

static const char k_magic[8] = {'H', 'R', 'T', 'R', 'A', 'I', 'N', '1'};
enum { CKPT_VERSION = 1 };

uint64_t hr_train_fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}
#define FNV0 0xcbf29ce484222325ull

/* The header: what a checkpoint must match (model shape, mode, part). */
static void put_header(const hr_train *t, hr_strbuf *b) {
    const hr_config *c = hr_model_config(t->model);
    int32_t h[9] = {(int32_t)c->arch,  c->dim,         c->n_layers,
                    c->head_dim,       c->vocab_size,  c->seq_len,
                    t->p.full ? 1 : 0, t->p.lora_rank, (int32_t)(t->p.lora_targets ? t->p.lora_targets : HR_LORA_ALL)};
    hr_strbuf_append(b, h, sizeof h);
    for (int l = 0; l < c->n_layers; l++) {
        int32_t s[3] = {c->n_head[l], c->n_head_kv[l], c->n_ff[l]};
        hr_strbuf_append(b, s, sizeof s);
    }
    uint64_t oh = t->only ? hr_train_fnv(FNV0, t->only, strlen(t->only)) : 0;
    if (t->ranks) oh = hr_train_fnv(oh ? oh : FNV0, t->ranks, sizeof(int) * (size_t)c->n_layers);
    int32_t n = t->n_tt;
    hr_strbuf_append(b, &oh, sizeof oh);
    hr_strbuf_append(b, &n, sizeof n);
}

hr_status hr_train_save(const hr_train *t, const char *path) {
    if (!t || !path) return hr_err(HR_ERR_INVALID_ARG, "no training run or path given");
    hr_strbuf hd = {0}, b = {0};
    put_header(t, &hd);
    uint32_t ver = CKPT_VERSION, hlen = (uint32_t)hd.len;
    hr_strbuf_append(&b, k_magic, sizeof k_magic);
    hr_strbuf_append(&b, &ver, sizeof ver);
    hr_strbuf_append(&b, &hlen, sizeof hlen);
    hr_strbuf_append(&b, hd.p, hd.len);
    hr_strbuf_free(&hd);
    int64_t st3[3] = {t->info.step, (int64_t)t->rng.s, (int64_t)t->n_tokens};
    hr_strbuf_append(&b, st3, sizeof st3);
    for (int i = 0; i < t->n_tt; i++) {
        const hr_train_tensor *x = &t->tt[i];
        hr_param_info in;
        hr_params_info(t->params, x->index, &in);
        char name[64] = {0};
        memcpy(name, in.name, sizeof name);
        int64_t shape[2] = {in.rows, in.cols};
        hr_strbuf_append(&b, name, sizeof name);
        hr_strbuf_append(&b, shape, sizeof shape);
        hr_strbuf_append(&b, hr_params_data(t->params, x->index), x->n * sizeof(float));
        hr_strbuf_append(&b, x->m, x->n * sizeof(float));
        hr_strbuf_append(&b, x->v, x->n * sizeof(float));
    }
    if (b.failed) {
        hr_strbuf_free(&b);
        return hr_err(HR_ERR_NOMEM, "out of memory building the checkpoint");
    }
    uint64_t sum = hr_train_fnv(FNV0, b.p, b.len);
    hr_strbuf_append(&b, &sum, sizeof sum);
    hr_status st = b.failed ? hr_err(HR_ERR_NOMEM, "out of memory") : hr_write_file_atomic(path, b.p, b.len);
    hr_strbuf_free(&b);
    return st;
}

/* Reads n bytes at *at of data (len), or fails. */
static bool take(const char *data, size_t len, size_t *at, void *dst, size_t n) {
    if (n > len - *at) return false;
    memcpy(dst, data + *at, n);
    *at += n;
    return true;
}

hr_status hr_train_load(hr_train *t, const char *path) {
    char *data = NULL;
    size_t len = 0;
    hr_status st = hr_read_file(path, &data, &len);
    if (st != HR_OK) return hr_err(st, "cannot read checkpoint %s: %s", path, hr_last_error());
    hr_strbuf hd = {0};
    put_header(t, &hd);
    size_t at = 0;
    char magic[8];
    uint32_t ver = 0, hlen = 0;
    uint64_t sum = 0;
    st = HR_ERR_FORMAT;
    const char *why = NULL;
    if (len < sizeof magic + 16 || !take(data, len, &at, magic, 8) || memcmp(magic, k_magic, 8) != 0)
        why = "not a headroom training checkpoint (bad magic)";
    else if (memcpy(&sum, data + len - 8, 8), sum != hr_train_fnv(FNV0, data, len - 8))
        why = "corrupt (checksum mismatch)";
    else if (!take(data, len - 8, &at, &ver, 4) || ver != CKPT_VERSION) why = "unsupported checkpoint version";
    else if (!take(data, len - 8, &at, &hlen, 4) || hlen != hd.len || hlen > len - 8 - at ||
             memcmp(data + at, hd.p, hd.len) != 0)
        why = "from another model shape or training mode (LoRA rank / targets, full, --only part)";
    if (why) {
        hr_strbuf_free(&hd);
        hr_free(data);
        return hr_err(st, "checkpoint %s: %s", path, why);
    }
    at += hlen;
    hr_strbuf_free(&hd);
    int64_t st3[3];
    bool ok = take(data, len - 8, &at, st3, sizeof st3);
    if (ok && (st3[0] < 0 || st3[0] > t->p.steps || st3[1] == 0 || st3[2] != (int64_t)t->n_tokens))
        why = st3[2] != (int64_t)t->n_tokens ? "made on another text (token count differs)"
                                             : "its step is beyond the run's steps";
    for (int i = 0; ok && !why && i < t->n_tt; i++) {
        hr_train_tensor *x = &t->tt[i];
        hr_param_info in;
        hr_params_info(t->params, x->index, &in);
        char name[64];
        int64_t shape[2];
        ok = take(data, len - 8, &at, name, sizeof name) && take(data, len - 8, &at, shape, sizeof shape);
        if (ok && (strncmp(name, in.name, sizeof name) != 0 || shape[0] != in.rows || shape[1] != in.cols)) {
            why = "tensor list differs";
            break;
        }
        float *w = hr_params_data_mut(t->params, x->index);
        ok = ok && take(data, len - 8, &at, w, x->n * sizeof(float)) &&
             take(data, len - 8, &at, x->m, x->n * sizeof(float)) &&
             take(data, len - 8, &at, x->v, x->n * sizeof(float));
    }
    if (ok && !why && at != len - 8) why = "trailing bytes";
    hr_free(data);
    if (!ok) return hr_err(HR_ERR_FORMAT, "checkpoint %s: truncated", path);
    if (why) return hr_err(HR_ERR_FORMAT, "checkpoint %s: %s", path, why);
    hr_params_touch(t->params);
    t->info.step = (int)st3[0];
    t->rng.s = (uint64_t)st3[1];
    return HR_OK;
}
