/* hr_tokenizer_load: picks the loader from the file's content (a small
 * table: adding a format is one loader plus one row), or from the files a
 * directory holds. */
#include "tokenizer/tok_internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *path;
    const uint8_t *data;
    size_t size;
} tok_file;

static bool readable(const char *path) { return access(path, R_OK) == 0; }

/* dir + "/" + name into buf; false when it does not fit. */
static bool join(char *buf, size_t cap, const char *dir, size_t dir_len, const char *name) {
    while (dir_len > 1 && dir[dir_len - 1] == '/') dir_len--;
    int n = snprintf(buf, cap, "%.*s/%s", (int)dir_len, dir, name);
    return n >= 0 && (size_t)n < cap;
}

static size_t dir_len_of(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? (size_t)(slash - path) + (slash == path) : 0;
}

/* The companion of a vocab.json / merges.txt pair lying beside path. */
static hr_status find_beside(const char *path, const char *const *names, size_t n_names, char *buf, size_t cap) {
    size_t dl = dir_len_of(path);
    for (size_t i = 0; i < n_names; i++)
        if (join(buf, cap, dl ? path : ".", dl ? dl : 1, names[i]) && readable(buf)) return HR_OK;
    return hr_err(HR_ERR_NOT_FOUND, "no %s or %s beside '%s' (a BPE vocabulary needs both files)", names[0], names[1],
                  path);
}

static const char *const k_vocab_names[] = {"vocab.json", "encoder.json"};

static bool is_gguf(const tok_file *f) { return hr_gguf_is_gguf(f->data, f->size); }

static hr_status load_gguf(const tok_file *f, hr_tokenizer **out) {
    hr_gguf *g = NULL;
    hr_status st = hr_gguf_open_memory(f->data, f->size, &g);
    if (!st) st = hr_tokenizer_from_gguf(g, out);
    hr_gguf_close(g);
    return st;
}

static bool starts_with_brace(const tok_file *f) {
    for (size_t i = 0; i < f->size; i++) {
        uint8_t c = f->data[i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return c == '{';
    }
    return false;
}

static hr_status load_json(const tok_file *f, hr_tokenizer **out) {
    return tok_load_json(f->path, f->data, f->size, out);
}

static bool is_merges_txt(const tok_file *f) { return f->size >= 8 && memcmp(f->data, "#version", 8) == 0; }

static hr_status load_merges_txt(const tok_file *f, hr_tokenizer **out) {
    char vocab[4096];
    hr_status st = find_beside(f->path, k_vocab_names, 2, vocab, sizeof vocab);
    return st ? st : tok_load_vocab_merges(vocab, f->path, out);
}

static bool is_spm_model(const tok_file *f) { return tok_is_spm_model(f->data, f->size); }

static hr_status load_spm_model(const tok_file *f, hr_tokenizer **out) {
    return tok_load_spm_model(f->data, f->size, out);
}

static bool always(const tok_file *f) { return (void)f, true; }

static hr_status load_bin(const tok_file *f, hr_tokenizer **out) { return tok_load_bin(f->data, f->size, out); }

/* First match wins; the llama2.c .bin has no magic, so it comes last. */
static const struct {
    bool (*detect)(const tok_file *f);
    hr_status (*load)(const tok_file *f, hr_tokenizer **out);
} k_formats[] = {
    {is_gguf, load_gguf},             /* GGUF tokenizer.ggml.* ("llama", "gpt2") */
    {starts_with_brace, load_json},   /* tokenizer.json; vocab.json / encoder.json + merges */
    {is_merges_txt, load_merges_txt}, /* merges.txt / vocab.bpe + vocab */
    {is_spm_model, load_spm_model},   /* SentencePiece .model (protobuf ModelProto) */
    {always, load_bin},               /* llama2.c tokenizer .bin */
};

static hr_status load_file(const char *path, hr_tokenizer **out) {
    hr_mapped_file m;
    hr_status st = hr_map_file(path, &m);
    if (st) return st;
    tok_file f = {path, m.data, m.size};
    for (size_t i = 0; i < sizeof k_formats / sizeof k_formats[0]; i++)
        if (k_formats[i].detect(&f)) {
            st = k_formats[i].load(&f, out);
            break;
        }
    hr_unmap_file(&m);
    return st;
}

/* A directory: a Hugging Face model or tokenizer folder. */
static hr_status load_dir(const char *dir, hr_tokenizer **out) {
    static const char *const names[] = {"tokenizer.json", "vocab.json", "encoder.json",
                                        "tokenizer.bin",  "tok512.bin", "tokenizer.model"};
    char buf[4096];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (join(buf, sizeof buf, dir, strlen(dir), names[i]) && readable(buf)) return load_file(buf, out);
    return hr_err(HR_ERR_NOT_FOUND,
                  "directory has no tokenizer.json, vocab.json + merges.txt, encoder.json + vocab.bpe, "
                  "tokenizer.bin, tok512.bin or tokenizer.model");
}

hr_status hr_tokenizer_load(const char *path, hr_tokenizer **out) {
    if (!out || !path) return hr_err(HR_ERR_INVALID_ARG, "hr_tokenizer_load: NULL argument");
    *out = NULL;
    struct stat sb;
    hr_status st = stat(path, &sb) == 0 && S_ISDIR(sb.st_mode) ? load_dir(path, out) : load_file(path, out);
    if (st) hr_err_prefix("loading tokenizer '%s'", path);
    return st;
}
