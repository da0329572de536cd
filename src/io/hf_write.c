/* Hugging Face folder writer: config.json + model.safetensors (+
 * tokenizer.json and tokenizer_config.json when a tokenizer is given),
 * built in a temporary folder beside the destination and renamed into
 * place. */
#include "headroom/save.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/hf_internal.h"
#include "core/progress.h"
#include "formats/dtype.h"
#include "model/arch.h"
#include "model/config.h"

#define CHUNK 65536

typedef struct {
    hr_wtensor *t;
    int n, cap;
} wlist;

static hr_wtensor *add(wlist *L, const char *name, int64_t rows, int64_t cols, const float *p) {
    if (L->n == L->cap) {
        int cap = L->cap ? 2 * L->cap : 64;
        hr_wtensor *q = realloc(L->t, (size_t)cap * sizeof *q);
        if (!q) return NULL;
        L->t = q;
        L->cap = cap;
    }
    hr_wtensor *o = &L->t[L->n++];
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", name);
    o->rows = rows, o->cols = cols, o->vec = rows == 1;
    o->part[0] = p, o->part_rows[0] = rows == 1 ? cols : rows, o->n_parts = 1;
    return o;
}

bool hr_int8_channel_eligible(hr_slot s, int64_t cols) {
    bool proj = s == HR_SLOT_Q || s == HR_SLOT_K || s == HR_SLOT_V || s == HR_SLOT_O || s == HR_SLOT_GATE ||
                s == HR_SLOT_UP || s == HR_SLOT_DOWN;
    return proj && cols % 4 == 0;
}

/* Which projections become int8: every one (all) or those whose GGUF
 * names are listed (used[i] set when names[i] is met). */
typedef struct {
    bool all;
    const char *const *names; /* (n) */
    int n;
    bool *used; /* (n) */
} int8_choice;

static bool int8_chosen(const int8_choice *ch, int layer, hr_slot s) {
    if (ch->all) return true;
    char g[96];
    snprintf(g, sizeof g, "blk.%d.%s", layer, hr_slot_gguf_name(s));
    for (int i = 0; i < ch->n; i++)
        if (strcmp(ch->names[i], g) == 0) return ch->used[i] = true;
    return false;
}

/* The row's tensors from a {NULL}-ended list that the model holds (layer
 * -1: model tensors), named and laid out as the family's checkpoints are.
 * Each is written in dtype (its `type`); with
 * int8 (HR_DTYPE_INT8 or a choice) the projections chosen int8, the rest
 * in dtype (f32 when dtype is int8). */
static hr_status plan_list(const hr_model *m, const hr_arch_info *ai, const hr_hf_tensor *list, int layer, wlist *L,
                           hr_dtype dtype, const int8_choice *ch) {
    const hr_config *c = &m->cfg;
    hr_weights *w = (hr_weights *)&m->w; /* read only */
    int li = layer < 0 ? 0 : layer;      /* per-layer sizes are read only for layer tensors */
    for (const hr_hf_tensor *t = list; t->name; t++) {
        bool stacked = t->slot == HR_SLOT_QKV || t->slot == HR_SLOT_QKV_B;
        const hr_layer_weights *lw = &m->w.layers[li];
        const float *p = stacked ? (t->slot == HR_SLOT_QKV ? lw->wq : lw->bq) : *hr_slot_ptr(w, li, t->slot);
        /* a matrix kept typed: written from its typed source, row by row */
        const hr_mat_src *ts = !p && !stacked ? hr_model_src(m, layer, t->slot) : NULL;
        bool typed_qkv = !p && t->slot == HR_SLOT_QKV && hr_model_src(m, li, HR_SLOT_Q);
        if (!p && !ts && !typed_qkv) continue;
        char nm[160];
        int at = snprintf(nm, sizeof nm, "%s", ai->hf_prefix);
        if (layer >= 0) at += snprintf(nm + at, sizeof nm - (size_t)at, ai->hf_layer, layer);
        snprintf(nm + at, sizeof nm - (size_t)at, "%s", t->name);
        int64_t rows, cols;
        hr_slot_shape(c, layer, t->slot, &rows, &cols);
        hr_wtensor *o = add(L, nm, rows, cols, p);
        if (!o) return HR_ERR_NOMEM;
        o->tpart[0] = ts;
        if (stacked) { /* Q, K, V rows (bias elements) one after another */
            int64_t q = (int64_t)c->n_head[li] * c->head_dim, kv = (int64_t)c->n_head_kv[li] * c->head_dim;
            o->n_parts = 3;
            o->part[1] = t->slot == HR_SLOT_QKV ? lw->wk : lw->bk;
            o->part[2] = t->slot == HR_SLOT_QKV ? lw->wv : lw->bv;
            o->part_rows[0] = q, o->part_rows[1] = kv, o->part_rows[2] = kv;
            static const hr_slot qkv[3] = {HR_SLOT_Q, HR_SLOT_K, HR_SLOT_V};
            for (int k = 0; k < 3 && t->slot == HR_SLOT_QKV; k++)
                if (!o->part[k]) o->tpart[k] = hr_model_src(m, li, qkv[k]);
        }
        if (t->layout == HR_HF_CONV1D && rows > 1) o->transpose = true;
        if (t->layout == HR_HF_ROTATE_HALF)
            o->perm_heads = t->slot == HR_SLOT_Q || t->slot == HR_SLOT_Q_B ? c->n_head[li] : c->n_head_kv[li];
        o->linear = hr_int8_channel_eligible(t->slot, cols) && !stacked && !o->transpose && !o->vec;
        o->type = dtype == HR_DTYPE_INT8 ? HR_DTYPE_F32 : dtype;
        if (o->linear && ch && int8_chosen(ch, layer, t->slot)) {
            o->type = HR_DTYPE_INT8;
            o->tpart[0] = hr_model_src(m, layer, t->slot); /* int8 sources are copied as they are */
        }
    }
    return HR_OK;
}

/* Matrices kept typed are written from their typed sources (no f32 copy
 * of the model: one row, or for GPT-2's transposed Conv1D one matrix, at a
 * time). */
static hr_status plan_tensors(const hr_model *m, const hr_arch_info *ai, wlist *L, hr_dtype dtype,
                              const int8_choice *ch) {
    hr_status st = plan_list(m, ai, ai->hf_head, -1, L, dtype, ch);
    for (int l = 0; l < m->cfg.n_layers && st == HR_OK; l++)
        st = plan_list(m, ai, ai->hf_layer_tensors, l, L, dtype, ch);
    if (st == HR_OK) st = plan_list(m, ai, ai->hf_tail, -1, L, dtype, ch);
    hr_wtensor *lm = NULL;
    if (st == HR_OK && !m->cfg.tied_classifier &&
        !(lm = add(L, HR_HF_LM_HEAD, m->cfg.vocab_size, m->cfg.dim, m->w.output)))
        st = HR_ERR_NOMEM;
    if (lm) lm->type = dtype == HR_DTYPE_INT8 ? HR_DTYPE_F32 : dtype;
    if (lm && !lm->part[0]) lm->tpart[0] = hr_model_src(m, -1, HR_SLOT_OUTPUT);
    if (lm && !lm->part[0] && !lm->tpart[0]) st = hr_err(HR_ERR_INVALID_ARG, "the model has no output matrix");
    return st;
}

/* compressed-tensors' description of HR_DTYPE_INT8 (save.h); the Linear
 * modules left unquantized (projections not int8, lm_head) are ignored. */
static void add_quantization_config(cJSON *j, const wlist *L) {
    cJSON *q = cJSON_AddObjectToObject(j, "quantization_config");
    cJSON_AddStringToObject(q, "quant_method", "compressed-tensors");
    cJSON_AddStringToObject(q, "format", "int-quantized");
    cJSON_AddStringToObject(q, "quantization_status", "compressed");
    cJSON *ign = cJSON_AddArrayToObject(q, "ignore");
    cJSON_AddItemToArray(ign, cJSON_CreateString("lm_head"));
    for (int i = 0; i < L->n; i++)
        if (L->t[i].linear && L->t[i].type != HR_DTYPE_INT8) {
            char mod[96];
            snprintf(mod, sizeof mod, "%s", L->t[i].name);
            char *dot = strrchr(mod, '.'); /* NAME.weight -> the module NAME */
            if (dot) *dot = 0;
            cJSON_AddItemToArray(ign, cJSON_CreateString(mod));
        }
    cJSON *g = cJSON_AddObjectToObject(cJSON_AddObjectToObject(q, "config_groups"), "group_0");
    cJSON *tg = cJSON_AddArrayToObject(g, "targets");
    cJSON_AddItemToArray(tg, cJSON_CreateString("Linear"));
    cJSON_AddNullToObject(g, "input_activations");
    cJSON_AddNullToObject(g, "output_activations");
    cJSON *w = cJSON_AddObjectToObject(g, "weights");
    cJSON_AddNumberToObject(w, "num_bits", 8);
    cJSON_AddStringToObject(w, "type", "int");
    cJSON_AddBoolToObject(w, "symmetric", true);
    cJSON_AddStringToObject(w, "strategy", "channel");
    cJSON_AddNullToObject(w, "group_size");
    cJSON_AddBoolToObject(w, "dynamic", false);
}

/* Shortest decimal that reads back as the same float (config.json
 * readers parse doubles; 1e-5 should not become 9.99999974738e-06). */
static cJSON *float_json(float v) {
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    if (!strpbrk(buf, ".eEn")) strcat(buf, ".0");
    return cJSON_CreateRaw(buf);
}

static char *config_json(const hr_model *m, const hr_arch_info *ai, const hr_tokenizer *tok, hr_dtype dtype,
                         const wlist *L) {
    const hr_config *c = &m->cfg;
    static const char *const torch_dtype[] = {"float32", "float16", "bfloat16", "float32", "float32", "float32"};
    cJSON *j = cJSON_CreateObject();
    cJSON *archs = cJSON_AddArrayToObject(j, "architectures");
    cJSON_AddItemToArray(archs, cJSON_CreateString(ai->hf_class));
    cJSON_AddStringToObject(j, "model_type", ai->name);
    cJSON_AddNumberToObject(j, "vocab_size", c->vocab_size);
    if (ai->hf_config == HR_HF_CONFIG_GPT2) {
        cJSON_AddNumberToObject(j, "n_embd", c->dim);
        cJSON_AddNumberToObject(j, "n_layer", c->n_layers);
        cJSON_AddNumberToObject(j, "n_head", c->n_head[0]);
        cJSON_AddNumberToObject(j, "n_inner", c->n_ff[0]);
        cJSON_AddNumberToObject(j, "n_positions", c->seq_len);
        cJSON_AddNumberToObject(j, "n_ctx", c->seq_len);
        cJSON_AddItemToObject(j, "layer_norm_epsilon", float_json(c->norm_eps));
        cJSON_AddStringToObject(j, "activation_function", "gelu_new");
    } else {
        cJSON_AddNumberToObject(j, "hidden_size", c->dim);
        cJSON_AddNumberToObject(j, "intermediate_size", c->n_ff[0]);
        cJSON_AddNumberToObject(j, "num_hidden_layers", c->n_layers);
        cJSON_AddNumberToObject(j, "num_attention_heads", c->n_head[0]);
        cJSON_AddNumberToObject(j, "num_key_value_heads", c->n_head_kv[0]);
        cJSON_AddNumberToObject(j, "head_dim", c->head_dim);
        cJSON_AddNumberToObject(j, "max_position_embeddings", c->seq_len);
        cJSON_AddItemToObject(j, "rms_norm_eps", float_json(c->norm_eps));
        cJSON_AddItemToObject(j, "rope_theta", float_json(c->rope_theta));
        cJSON_AddStringToObject(j, "hidden_act", "silu");
        if (ai->hf_attention_bias) cJSON_AddBoolToObject(j, "attention_bias", c->qkv_bias);
        if (c->rope_scaling.llama3) {
            cJSON *rs = cJSON_AddObjectToObject(j, "rope_scaling");
            cJSON_AddStringToObject(rs, "rope_type", "llama3");
            cJSON_AddItemToObject(rs, "factor", float_json(c->rope_scaling.factor));
            cJSON_AddItemToObject(rs, "low_freq_factor", float_json(c->rope_scaling.low_freq_factor));
            cJSON_AddItemToObject(rs, "high_freq_factor", float_json(c->rope_scaling.high_freq_factor));
            cJSON_AddNumberToObject(rs, "original_max_position_embeddings", c->rope_scaling.original_ctx);
        }
    }
    cJSON_AddBoolToObject(j, "tie_word_embeddings", c->tied_classifier);
    if (tok && hr_tokenizer_bos(tok) >= 0) cJSON_AddNumberToObject(j, "bos_token_id", hr_tokenizer_bos(tok));
    if (tok && hr_tokenizer_eos(tok) >= 0) cJSON_AddNumberToObject(j, "eos_token_id", hr_tokenizer_eos(tok));
    cJSON_AddStringToObject(j, "torch_dtype", torch_dtype[dtype]);
    bool any_int8 = false;
    for (int i = 0; i < L->n; i++) any_int8 |= L->t[i].type == HR_DTYPE_INT8;
    if (any_int8) add_quantization_config(j, L);
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    return s;
}

static const char *st_dtype(hr_dtype d) {
    return d == HR_DTYPE_F16 ? "F16" : d == HR_DTYPE_BF16 ? "BF16" : d == HR_DTYPE_INT8 ? "I8" : "F32";
}
static size_t st_esize(hr_dtype d) { return d == HR_DTYPE_F32 ? 4 : d == HR_DTYPE_INT8 ? 1 : 2; }

/* JSON header: tensors in list order, contiguous (an int8 tensor followed
 * by its NAME_scale, F32 (rows, 1)); padded with spaces so the data section
 * starts 8-byte aligned. */
static char *st_header(const wlist *L, size_t *len) {
    cJSON *j = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(j, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    size_t off = 0;
    for (int i = 0; i < L->n; i++) {
        const hr_wtensor *o = &L->t[i];
        hr_dtype dtype = (hr_dtype)o->type;
        size_t esize = st_esize(dtype);
        cJSON *e = cJSON_AddObjectToObject(j, o->name);
        cJSON_AddStringToObject(e, "dtype", st_dtype(dtype));
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        if (o->vec) {
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)o->cols));
        } else {
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)(o->transpose ? o->cols : o->rows)));
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)(o->transpose ? o->rows : o->cols)));
        }
        size_t nb = (size_t)o->rows * (size_t)o->cols * esize;
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + nb)));
        off += nb;
        if (dtype == HR_DTYPE_INT8) {
            char sn[112];
            snprintf(sn, sizeof sn, "%s_scale", o->name);
            cJSON *s = cJSON_AddObjectToObject(j, sn);
            cJSON_AddStringToObject(s, "dtype", "F32");
            cJSON *ss = cJSON_AddArrayToObject(s, "shape");
            cJSON_AddItemToArray(ss, cJSON_CreateNumber((double)o->rows));
            cJSON_AddItemToArray(ss, cJSON_CreateNumber(1));
            cJSON *so = cJSON_AddArrayToObject(s, "data_offsets");
            cJSON_AddItemToArray(so, cJSON_CreateNumber((double)off));
            cJSON_AddItemToArray(so, cJSON_CreateNumber((double)(off + 4 * (size_t)o->rows)));
            off += 4 * (size_t)o->rows;
        }
    }
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s) return NULL;
    size_t n = strlen(s), padded = (n + 7) / 8 * 8;
    char *out = realloc(s, padded + 1);
    if (!out) {
        free(s);
        return NULL;
    }
    memset(out + n, ' ', padded - n);
    out[padded] = 0;
    *len = padded;
    return out;
}

/* n values of src in dtype d (f32, f16 or bf16; round to nearest even) at dst. */
static void encode_vals(hr_dtype d, const float *src, size_t n, uint8_t *dst) {
    for (size_t e = 0; e < n; e++) {
        if (d == HR_DTYPE_F32) {
            memcpy(dst + 4 * e, &src[e], 4);
        } else {
            uint16_t h = d == HR_DTYPE_F16 ? hr_f32_to_f16(src[e]) : hr_f32_to_bf16(src[e]);
            memcpy(dst + 2 * e, &h, 2);
        }
    }
}

/* A matrix (not transposed) row by row in written order: f32 / f16 /
 * bf16 elements, or for HR_DTYPE_INT8 the int8 rows then their scales
 * (rows of a per-channel int8 source copied with their scales, others
 * quantized by hr_quantize_i8_row). chunk holds CHUNK * 4 bytes. */
static hr_status write_rows(const hr_model *m, hr_atomic_file *af, const hr_wtensor *o, uint8_t *chunk) {
    int hd = m->cfg.head_dim;
    hr_dtype dtype = (hr_dtype)o->type;
    size_t cols = (size_t)o->cols, es = st_esize(dtype), fill = 0;
    float *row = malloc(sizeof(float) * cols);                                           // (cols) one row
    float *sc = dtype == HR_DTYPE_INT8 ? malloc(sizeof(float) * (size_t)o->rows) : NULL; // (rows) int8 scales
    uint8_t *big = cols * es > CHUNK * 4 ? malloc(cols * es) : NULL;                     // one row over the chunk
    if (!row || (dtype == HR_DTYPE_INT8 && !sc) || (cols * es > CHUNK * 4 && !big)) {
        free(row), free(sc), free(big);
        return hr_err(HR_ERR_NOMEM, "out of memory writing '%s'", o->name);
    }
    hr_status st = HR_OK;
    for (int64_t w = 0; st == HR_OK && w < o->rows; w++) {
        if (fill + cols * es > CHUNK * 4) {
            st = hr_atomic_write(af, chunk, fill);
            fill = 0;
        }
        uint8_t *dst = big ? big : chunk + fill;
        int p;
        int64_t r;
        hr_wtensor_locate(hd, o, w, &p, &r);
        const hr_mat_src *ts = o->tpart[p];
        if (st == HR_OK && dtype == HR_DTYPE_INT8 && ts && ts->type == HR_WT_I8) {
            hr_mat_src_raw_row(ts, hd, (int)r, (int)cols, dst, &sc[w]);
        } else if (st == HR_OK) {
            st = hr_wtensor_row(hd, o, w, row);
            if (st == HR_OK && dtype == HR_DTYPE_INT8) st = hr_check_finite(o->name, "int8", row, cols);
            if (st == HR_OK && dtype == HR_DTYPE_INT8) sc[w] = hr_quantize_i8_row(row, (int8_t *)dst, cols);
            else if (st == HR_OK) encode_vals(dtype, row, cols, dst);
        }
        if (st == HR_OK && big) st = hr_atomic_write(af, big, cols * es);
        else fill += cols * es;
    }
    if (st == HR_OK && fill) st = hr_atomic_write(af, chunk, fill);
    if (st == HR_OK && sc) st = hr_atomic_write(af, sc, sizeof(float) * (size_t)o->rows);
    free(row), free(sc), free(big);
    return st;
}

static hr_status write_safetensors(const hr_model *m, const wlist *L, const char *path) {
    size_t hlen = 0;
    char *hdr = st_header(L, &hlen);
    uint8_t *chunk = malloc(CHUNK * 4); // (CHUNK) encoded values
    if (!hdr || !chunk) {
        free(hdr);
        free(chunk);
        return hr_err(HR_ERR_NOMEM, "out of memory building the safetensors header");
    }
    hr_atomic_file af;
    hr_status st = hr_atomic_open(path, &af);
    if (st != HR_OK) {
        free(hdr);
        free(chunk);
        return st;
    }
    uint64_t hl = hlen;
    st = hr_atomic_write(&af, &hl, 8);
    if (st == HR_OK) st = hr_atomic_write(&af, hdr, hlen);
    if (st == HR_OK) st = hr_progress_phase("writing safetensors", "tensors", L->n);
    for (int i = 0; i < L->n && st == HR_OK; i++) {
        const float *src = NULL;
        float *tmp = NULL;
        hr_dtype dtype = (hr_dtype)L->t[i].type;
        size_t es = st_esize(dtype), n = 0;
        if (!L->t[i].vec && !L->t[i].transpose) {
            st = write_rows(m, &af, &L->t[i], chunk);
        } else {
            st = hr_wtensor_gather(m->cfg.head_dim, &L->t[i], &src, &tmp);
            n = (size_t)L->t[i].rows * (size_t)L->t[i].cols;
        }
        for (size_t at = 0; st == HR_OK && at < n; at += CHUNK) {
            size_t k = n - at < CHUNK ? n - at : CHUNK;
            encode_vals(dtype, src + at, k, chunk);
            st = hr_atomic_write(&af, chunk, k * es);
        }
        free(tmp);
        if (st == HR_OK) st = hr_progress_update(i + 1);
    }
    free(hdr);
    free(chunk);
    if (st == HR_OK) return hr_atomic_commit(&af);
    hr_atomic_abort(&af);
    return st;
}

static hr_status write_text(const char *path, const char *text) {
    hr_atomic_file af;
    hr_status st = hr_atomic_open(path, &af);
    if (st != HR_OK) return st;
    st = hr_atomic_write(&af, text, strlen(text));
    if (st == HR_OK) st = hr_atomic_write(&af, "\n", 1);
    if (st == HR_OK) return hr_atomic_commit(&af);
    hr_atomic_abort(&af);
    return st;
}

static hr_status write_tokenizer(const hr_tokenizer *tok, const char *dir, int max_len) {
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    hr_status st = hr_tokenizer_save_json(tok, path);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    if (st == HR_OK) st = hr_tokenizer_save_config_json(tok, path, max_len);
    return st;
}

static void remove_tree_files(const char *dir) {
    static const char *const files[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"};
    char p[PATH_MAX + 32];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, files[i]) < sizeof p) unlink(p);
    }
    rmdir(dir);
}

static hr_status check_writable(const hr_config *c, const hr_arch_info *ai, const char *dir) {
    if (!ai || !ai->hf_layer_tensors)
        return hr_err(HR_ERR_UNSUPPORTED, "architecture %s cannot be written as a Hugging Face folder",
                      hr_arch_name(c->arch));
    for (int l = 0; l < c->n_layers; l++)
        if (c->n_head[l] != c->n_head[0] || c->n_head_kv[l] != c->n_head_kv[0] || c->n_ff[l] != c->n_ff[0] ||
            c->n_head[l] == 0 || c->n_ff[l] == 0)
            return hr_err(HR_ERR_UNSUPPORTED,
                          "layer %d differs in size from layer 0: a Hugging Face %s config cannot "
                          "describe per-layer sizes (write GGUF instead)",
                          l, hr_arch_name(c->arch));
    struct stat sb;
    if (stat(dir, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode)) return hr_err(HR_ERR_IO, "'%s' exists and is not a folder", dir);
        if (rmdir(dir) != 0) return hr_err(HR_ERR_IO, "'%s' exists and is not empty: %s", dir, strerror(errno));
    }
    return HR_OK;
}

static hr_status save_hf(const hr_model *m, const hr_tokenizer *tok, const char *dir, hr_dtype dtype,
                         const int8_choice *ch) {
    if (!m || !dir) return hr_err(HR_ERR_INVALID_ARG, "no model or output folder given");
    dtype = hr_dtype_for_model(m, dtype, false);
    if (dtype == HR_DTYPE_Q8_0)
        return hr_err(HR_ERR_UNSUPPORTED,
                      "a Hugging Face folder holds f32, f16, bf16 or per-channel int8 weights; q8_0 is GGUF only");
    if ((unsigned)dtype > HR_DTYPE_BF16 && dtype != HR_DTYPE_INT8)
        return hr_err(HR_ERR_INVALID_ARG, "unknown dtype %d", (int)dtype);
    const hr_arch_info *ai = hr_arch_info_of(m->cfg.arch);
    hr_status st = check_writable(&m->cfg, ai, dir);
    if (st != HR_OK) return st;
    wlist L = {0};
    int8_choice all = {true, NULL, 0, NULL};
    if (!ch && dtype == HR_DTYPE_INT8) ch = &all;
    st = plan_tensors(m, ai, &L, dtype, ch);
    for (int i = 0; st == HR_OK && ch && i < ch->n; i++)
        if (!ch->used[i])
            st = hr_err(HR_ERR_INVALID_ARG,
                        "'%s' is not an attention or MLP projection of this model (with rows of a multiple of 4)",
                        ch->names[i]);
    bool any_linear = false;
    for (int i = 0; i < L.n; i++) any_linear |= L.t[i].linear;
    if (st == HR_OK && ch && !any_linear)
        st = hr_err(HR_ERR_UNSUPPORTED, "this model has no Linear attention or MLP projection to write as per-channel "
                                        "int8 (GPT-2's are Conv1D)");
    if (st != HR_OK) {
        free(L.t);
        return st;
    }
    char tmp[PATH_MAX], path[PATH_MAX + 32];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dir, (long)getpid()) >= sizeof tmp) {
        free(L.t);
        return hr_err(HR_ERR_INVALID_ARG, "output path is too long");
    }
    if (mkdir(tmp, 0755) != 0) {
        free(L.t);
        return hr_err(HR_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
    }
    char *cfg = config_json(m, ai, tok, dtype, &L);
    st = cfg ? HR_OK : hr_err(HR_ERR_NOMEM, "out of memory building config.json");
    snprintf(path, sizeof path, "%s/config.json", tmp);
    if (st == HR_OK) st = write_text(path, cfg);
    snprintf(path, sizeof path, "%s/model.safetensors", tmp);
    hr_progress_run run;
    hr_progress_enter(&run, NULL, NULL, 1);
    if (st == HR_OK) st = write_safetensors(m, &L, path);
    hr_progress_leave(&run);
    if (st == HR_OK && tok) st = write_tokenizer(tok, tmp, m->cfg.seq_len);
    if (st == HR_OK && rename(tmp, dir) != 0)
        st = hr_err(HR_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, dir, strerror(errno));
    if (st != HR_OK) remove_tree_files(tmp);
    free(cfg);
    free(L.t);
    return st;
}

hr_status hr_model_save_hf(const hr_model *m, const hr_tokenizer *tok, const char *dir, hr_dtype dtype) {
    return save_hf(m, tok, dir, dtype, NULL);
}

hr_status hr_hf_save_int8_mixed(const hr_model *m, const hr_tokenizer *tok, const char *dir, hr_dtype dtype,
                                const char *const *int8_names, int n_int8) {
    if (n_int8 < 0 || (n_int8 > 0 && !int8_names)) return hr_err(HR_ERR_INVALID_ARG, "bad list of int8 tensors");
    if (dtype == HR_DTYPE_INT8 || dtype == HR_DTYPE_Q8_0)
        return hr_err(HR_ERR_INVALID_ARG, "the tensors not chosen are written f32, f16 or bf16");
    bool *used = calloc((size_t)n_int8 + 1, sizeof *used); // (n_int8)
    if (!used) return hr_err(HR_ERR_NOMEM, "out of memory");
    int8_choice ch = {false, int8_names, n_int8, used};
    hr_status st = save_hf(m, tok, dir, dtype, &ch);
    free(used);
    return st;
}
