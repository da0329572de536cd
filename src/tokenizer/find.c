/* Locating the vocabulary that goes with a model file. */
#include "tokenizer/tok_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static hr_status put_path(char *buf, size_t cap, const char *path) {
    size_t n = strlen(path);
    if (n >= cap) return hr_err(HR_ERR_RANGE, "tokenizer path '%s' does not fit in %zu bytes", path, cap);
    memcpy(buf, path, n + 1);
    return HR_OK;
}

/* A GGUF model carries its own vocabulary when it has tokenizer keys; that
 * vocabulary is authoritative, so it wins over files lying beside it. */
static bool gguf_has_vocab(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return false;
    unsigned char magic[4];
    size_t got = fread(magic, 1, sizeof magic, fp);
    fclose(fp);
    if (!hr_gguf_is_gguf(magic, got)) return false;
    hr_gguf *g = NULL;
    if (hr_gguf_open(path, &g) != HR_OK) return false; /* the model loader reports why */
    bool has = hr_gguf_find(g, "tokenizer.ggml.tokens") >= 0;
    hr_gguf_close(g);
    return has;
}

/* A Hugging Face model folder keeps its tokenizer in tokenizer.json (some
 * SentencePiece models only in tokenizer.model). */
static hr_status find_in_folder(const char *dir, char *buf, size_t cap) {
    static const char *const names[] = {"tokenizer.json", "tokenizer.model"};
    char cand[4096];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int n = snprintf(cand, sizeof cand, "%s/%s", dir, names[i]);
        if (n < 0 || (size_t)n >= sizeof cand) return hr_err(HR_ERR_RANGE, "model path too long");
        if (access(cand, R_OK) == 0) return put_path(buf, cap, cand);
    }
    return hr_err(HR_ERR_NOT_FOUND, "no tokenizer for model folder '%s': it has no tokenizer.json or tokenizer.model",
                  dir);
}

hr_status hr_tokenizer_find_for_model(const char *model_path, const char *explicit_path, char *buf, size_t cap) {
    if (!buf || !cap) return hr_err(HR_ERR_INVALID_ARG, "hr_tokenizer_find_for_model: no output buffer");
    buf[0] = 0;
    if (explicit_path) {
        if (access(explicit_path, R_OK) != 0)
            return hr_err(errno == ENOENT ? HR_ERR_NOT_FOUND : HR_ERR_IO, "tokenizer '%s': %s", explicit_path,
                          strerror(errno));
        return put_path(buf, cap, explicit_path);
    }
    if (!model_path) return hr_err(HR_ERR_INVALID_ARG, "no model path and no tokenizer path given");
    struct stat sb;
    if (stat(model_path, &sb) == 0 && S_ISDIR(sb.st_mode)) return find_in_folder(model_path, buf, cap);
    if (gguf_has_vocab(model_path)) return put_path(buf, cap, model_path);
    const char *slash = strrchr(model_path, '/');
    int dir_len = slash ? (int)(slash - model_path) : 1;
    const char *dir = slash ? model_path : ".";
    if (slash == model_path) dir_len = 1; /* model in "/" */
    static const char *names[] = {"tok512.bin", "tokenizer.bin", "tokenizer.json", "tokenizer.model"};
    char cand[4096];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int n = snprintf(cand, sizeof cand, "%.*s/%s", dir_len, dir, names[i]);
        if (n < 0 || (size_t)n >= sizeof cand) return hr_err(HR_ERR_RANGE, "model path too long");
        if (access(cand, R_OK) == 0) return put_path(buf, cap, cand);
    }
    return hr_err(HR_ERR_NOT_FOUND,
                  "no tokenizer for model '%s': looked for %.*s/tok512.bin, %.*s/tokenizer.bin, "
                  "%.*s/tokenizer.json, %.*s/tokenizer.model and for tokenizer.ggml.* keys in the model itself; "
                  "pass a tokenizer path explicitly",
                  model_path, dir_len, dir, dir_len, dir, dir_len, dir, dir_len, dir);
}
