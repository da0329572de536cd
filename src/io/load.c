/* hr_model_load: detects a model file's format from its content (never its
 * name) and hands it to that format's loader. */
#include "model/model_internal.h"
#include "io/io_internal.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "headroom/gguf.h"

#define LLAMA2C_Q8_MAGIC 0x616b3432u

static hr_status detect_and_load(hr_model *m, const char *path) {
    const uint8_t *d = m->file.data;
    size_t n = m->file.size;
    if (n == 0) return hr_err(HR_ERR_FORMAT, "'%s' is empty", path);
    if (hr_gguf_is_gguf(d, n)) {
        m->format = HR_FORMAT_GGUF;
        /* The GGUF reader maps the file itself. */
        hr_unmap_file(&m->file);
        return hr_load_gguf(m, path);
    }
    uint32_t magic = 0;
    if (n >= 4) memcpy(&magic, d, 4);
    /* safetensors: u64 header length (high half zero) then '{'; llama2.c
     * never has a zero second int (hidden_dim). */
    if (n >= 9 && d[8] == '{' && !d[4] && !d[5] && !d[6] && !d[7])
        return hr_err(HR_ERR_FORMAT,
                      "'%s' looks like a safetensors file: pass the Hugging Face folder that "
                      "holds it and its config.json",
                      path);
    if (magic == LLAMA2C_Q8_MAGIC) {
        m->format = HR_FORMAT_LLAMA2C_Q8;
        return hr_load_llama2c_q8(m);
    }
    /* llama2.c v0 has no magic: its first int is the (small, positive) dim. */
    if (n >= 28 && magic > 0 && magic <= HR_MAX_DIM) {
        m->format = HR_FORMAT_LLAMA2C;
        return hr_load_llama2c(m);
    }
    return hr_err(HR_ERR_FORMAT,
                  "'%s' is not a model headroom can read (not GGUF, not llama2.c v0 or int8 v2: "
                  "first bytes %02x %02x %02x %02x)",
                  path, n > 0 ? d[0] : 0, n > 1 ? d[1] : 0, n > 2 ? d[2] : 0, n > 3 ? d[3] : 0);
}

/* llama2.c v0's matrices are f32 in the mapped file: recorded as typed
 * sources too, so that packing releases their pages like the others'. */
static hr_status mapped_f32_sources(hr_model *m) {
    const hr_config *c = &m->cfg;
    const char *lo = (const char *)m->file.data, *hi = lo + m->file.size;
    hr_status st = HR_OK;
    for (int l = -1; l < c->n_layers && st == HR_OK && m->file.is_mmap; l++)
        for (int i = 0; i < (l < 0 ? 2 : HR_N_PACKED_LAYER_SLOTS) && st == HR_OK; i++) {
            hr_slot s = l < 0 ? (i ? HR_SLOT_OUTPUT : HR_SLOT_TOK_EMBD) : hr_packed_layer_slots[i];
            if (s == HR_SLOT_OUTPUT && c->tied_classifier) continue;
            const char *p = (const char *)*hr_slot_ptr(&m->w, l < 0 ? 0 : l, s);
            int64_t rows, cols;
            hr_slot_shape(c, l, s, &rows, &cols);
            if (!p || p < lo || p >= hi || hr_model_src(m, l, s)) continue;
            hr_mat_src src = {p, (size_t)cols * sizeof(float), HR_WT_F32, 0, NULL, false, NULL, false};
            st = hr_model_set_src(m, l, s, src);
        }
    return st;
}

hr_status hr_model_load(const char *path, hr_model **out) {
    *out = NULL;
    if (!path) return hr_err(HR_ERR_INVALID_ARG, "no model path given");
    hr_model *m = calloc(1, sizeof *m);
    if (!m) return hr_err(HR_ERR_NOMEM, "out of memory");
    struct stat sb;
    bool is_dir = stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
    hr_status st = is_dir ? HR_OK : hr_map_file(path, &m->file);
    if (st == HR_OK && is_dir) {
        m->format = HR_FORMAT_HF;
        st = hr_load_hf(m, path);
    } else if (st == HR_OK) {
        st = detect_and_load(m, path);
    }
    if (st == HR_OK) st = hr_config_validate(&m->cfg);
    if (st == HR_OK && m->format == HR_FORMAT_LLAMA2C) st = mapped_f32_sources(m);
    /* matrices a loader converted into rows of its own (llama2.c int8, GPT-2's
     * transposed Conv1D): panels only, one copy */
    if (st == HR_OK) st = hr_model_own_panels(m);
    if (st != HR_OK) {
        if (strstr(hr_last_error(), path) == NULL) hr_err_prefix("loading '%s'", path);
        hr_model_free(m);
        return st;
    }
    *out = m;
    return HR_OK;
}
