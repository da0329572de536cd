/* A corpus of documents from a folder of .txt files or a JSONL file with a
 * "text" field per line (hr_corpus_*, see evaluate.h). */
#include "headroom/evaluate.h"
#include "core/internal.h"
#include "core/json.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct hr_corpus {
    int n, cap;
    char **text;  /* (n) owned document texts, NUL-terminated */
    size_t *len;  /* (n) their lengths */
    char **name;  /* (n) "file.txt" or "line N" */
    char sha[65]; /* SHA-256 of the documents' SHA-256 hex strings, each followed by '\n' */
};

void hr_corpus_free(hr_corpus *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) free(c->text[i]), free(c->name[i]);
    free(c->text);
    free(c->len);
    free(c->name);
    free(c);
}

int hr_corpus_n_docs(const hr_corpus *c) { return c ? c->n : 0; }

const char *hr_corpus_doc(const hr_corpus *c, int i, size_t *len) {
    if (!c || i < 0 || i >= c->n) return NULL;
    if (len) *len = c->len[i];
    return c->text[i];
}

const char *hr_corpus_doc_name(const hr_corpus *c, int i) { return c && i >= 0 && i < c->n ? c->name[i] : NULL; }

const char *hr_corpus_sha256(const hr_corpus *c) { return c ? c->sha : NULL; }

/* Takes ownership of text (len bytes, NUL-terminated). */
static hr_status add(hr_corpus *c, char *text, size_t len, const char *name) {
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 64;
        char **t = realloc(c->text, sizeof *t * (size_t)cap);
        if (t) c->text = t;
        size_t *l = realloc(c->len, sizeof *l * (size_t)cap);
        if (l) c->len = l;
        char **nm = realloc(c->name, sizeof *nm * (size_t)cap);
        if (nm) c->name = nm;
        if (!t || !l || !nm) {
            free(text);
            return hr_err(HR_ERR_NOMEM, "out of memory");
        }
        c->cap = cap;
    }
    char *nm = strdup(name);
    if (!nm) {
        free(text);
        return hr_err(HR_ERR_NOMEM, "out of memory");
    }
    c->text[c->n] = text, c->len[c->n] = len, c->name[c->n] = nm;
    c->n++;
    return HR_OK;
}

static hr_status read_folder(hr_corpus *c, const char *dir) {
    char **names = NULL;
    size_t n = 0;
    hr_status st = hr_folder_names(dir, ".txt", &names, &n);
    if (st != HR_OK) return hr_err(st, "cannot open the corpus folder %s", dir);
    for (size_t i = 0; st == HR_OK && i < n; i++) {
        size_t pl = strlen(dir) + strlen(names[i]) + 2;
        char *path = malloc(pl), *text = NULL;
        size_t len = 0;
        if (!path) {
            st = hr_err(HR_ERR_NOMEM, "out of memory");
            break;
        }
        snprintf(path, pl, "%s/%s", dir, names[i]);
        st = hr_read_file(path, &text, &len);
        if (st == HR_OK) st = add(c, text, len, names[i]);
        free(path);
    }
    hr_folder_names_free(names, n);
    if (st == HR_OK && c->n == 0) return hr_err(HR_ERR_RANGE, "the corpus folder %s holds no .txt document", dir);
    return st;
}

static hr_status read_jsonl(hr_corpus *c, const char *path) {
    char *buf = NULL;
    size_t len = 0, pos = 0, a, b;
    int line = 0;
    hr_status st = hr_read_file(path, &buf, &len);
    while (st == HR_OK && hr_jsonl_next(buf, len, &pos, &line, &a, &b)) {
        cJSON *j = NULL;
        if ((st = hr_json_parse(buf + a, b - a, &j)) != HR_OK) {
            hr_err_prefix("%s line %d", path, line);
            break;
        }
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "text");
        if (!cJSON_IsObject(j) || !cJSON_IsString(t))
            st = hr_err(HR_ERR_FORMAT, "%s line %d: a corpus line is an object with a string \"text\"", path, line);
        char name[32];
        snprintf(name, sizeof name, "line %d", line);
        char *text = st == HR_OK ? strdup(t->valuestring) : NULL;
        if (st == HR_OK && !text) st = hr_err(HR_ERR_NOMEM, "out of memory");
        if (st == HR_OK) st = add(c, text, strlen(text), name);
        cJSON_Delete(j);
    }
    hr_free(buf);
    if (st == HR_OK && c->n == 0) return hr_err(HR_ERR_RANGE, "the corpus %s holds no document", path);
    return st;
}

hr_status hr_corpus_read(const char *path, hr_corpus **out) {
    if (!out) return hr_err(HR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!path) return hr_err(HR_ERR_INVALID_ARG, "no corpus path given");
    struct stat sb;
    if (stat(path, &sb) != 0) return hr_err(HR_ERR_IO, "cannot open the corpus %s", path);
    bool folder = S_ISDIR(sb.st_mode);
    size_t pl = strlen(path);
    if (!folder && !(pl > 6 && strcmp(path + pl - 6, ".jsonl") == 0))
        return hr_err(HR_ERR_INVALID_ARG, "a corpus is a folder of .txt files or a .jsonl file (%s is neither)", path);
    hr_corpus *c = calloc(1, sizeof *c);
    if (!c) return hr_err(HR_ERR_NOMEM, "out of memory");
    hr_status st = folder ? read_folder(c, path) : read_jsonl(c, path);
    char *hashes = st == HR_OK ? malloc((size_t)c->n * 65 + 1) : NULL;
    if (st == HR_OK && !hashes) st = hr_err(HR_ERR_NOMEM, "out of memory");
    for (int i = 0; st == HR_OK && i < c->n; i++) {
        hr_sha256_hex(c->text[i], c->len[i], hashes + (size_t)i * 65);
        hashes[(size_t)i * 65 + 64] = '\n';
    }
    if (st == HR_OK) hr_sha256_hex(hashes, (size_t)c->n * 65, c->sha);
    free(hashes);
    if (st != HR_OK) {
        hr_corpus_free(c);
        return st;
    }
    *out = c;
    return HR_OK;
}
