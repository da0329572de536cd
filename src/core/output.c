/* Output safety: an output never replaces an input, never silently
 * replaces a file that is not an earlier output of the same kind, and is
 * proven writable before any work starts (contract in headroom/common.h). */
#include "core/internal.h"
#include "core/json.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

hr_output_params hr_output_default_params(void) {
    hr_output_params p = {HR_OUT_FILE, NULL, NULL, 0, false};
    return p;
}

/* The folder part of path ("." when none) and its last component. */
static void split_path(const char *path, char *dir, size_t dcap, const char **base) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, dcap, ".");
        *base = path;
    } else if (slash == path) {
        snprintf(dir, dcap, "/");
        *base = slash + 1;
    } else {
        snprintf(dir, dcap, "%.*s", (int)(slash - path), path);
        *base = slash + 1;
    }
}

/* Absolute, symlink-free form of path, which need not exist: its folder
 * must. Returns false when the folder cannot be resolved. */
static bool resolve(const char *path, char *out) {
    if (realpath(path, out)) return true;
    char dir[PATH_MAX], rdir[PATH_MAX];
    const char *base;
    split_path(path, dir, sizeof dir, &base);
    if (!realpath(dir, rdir)) return false;
    int n = snprintf(out, PATH_MAX, "%s/%s", strcmp(rdir, "/") == 0 ? "" : rdir, base);
    return n > 0 && n < PATH_MAX;
}

/* Whether `inner` is `outer` or lies inside it (both resolved). */
static bool inside(const char *inner, const char *outer) {
    size_t n = strlen(outer);
    if (strncmp(inner, outer, n) != 0) return false;
    return inner[n] == 0 || inner[n] == '/' || (n == 1 && outer[0] == '/');
}

/* Reads at most cap bytes of a file's start into buf (NUL-terminated). */
static size_t read_head(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = 0;
    return n;
}

static bool mem_has(const char *hay, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0) return true;
    return false;
}

/* Is the existing file at path an earlier output of this kind? */
static bool is_own_output(const char *path, const hr_output_params *p) {
    enum { HEAD = 1 << 16 };
    char *buf = malloc(HEAD);
    if (!buf) return false;
    size_t n = read_head(path, buf, HEAD);
    bool own = false;
    switch (p->kind) {
    case HR_OUT_GGUF: /* headroom's writer puts its keys first, right after the architecture */
        own = n >= 4 && memcmp(buf, "GGUF", 4) == 0 &&
              (mem_has(buf, n, HR_GGUF_WRITER_KEY) || mem_has(buf, n, "headroom export"));
        break;
    case HR_OUT_JSON: {
        free(buf);
        char *text = NULL;
        size_t len = 0;
        if (hr_read_file(path, &text, &len) != HR_OK) return false;
        cJSON *j = NULL;
        if (hr_json_parse(text, len, &j) != HR_OK) j = NULL; /* not JSON: not ours */
        free(text);
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "format");
        own = p->format && cJSON_IsString(f) && strcmp(f->valuestring, p->format) == 0;
        cJSON_Delete(j);
        return own;
    }
    case HR_OUT_TEXT:
    case HR_OUT_FILE:
        own = p->format && n >= strlen(p->format) && strncmp(buf, p->format, strlen(p->format)) == 0;
        break;
    default: break;
    }
    free(buf);
    return own;
}

/* Creates and removes a probe file in dir: the only test that also catches
 * read-only file systems and quotas. */
static hr_status probe_writable(const char *dir, const char *what) {
    char probe[PATH_MAX + 64];
    snprintf(probe, sizeof probe, "%s/.headroom-probe.%ld", dir, (long)getpid());
    FILE *f = fopen(probe, "wb");
    if (!f) return hr_err(HR_ERR_IO, "cannot write %s: folder '%s' is not writable: %s", what, dir, strerror(errno));
    fclose(f);
    unlink(probe);
    return HR_OK;
}

/* Folder outputs: new, empty, or (HR_OUT_FOLDER) holding p->format, a file
 * an earlier headroom run wrote there. */
static hr_status check_folder(const char *path, const hr_output_params *p) {
    struct stat st;
    if (stat(path, &st) != 0) {
        char dir[PATH_MAX];
        const char *base;
        split_path(path, dir, sizeof dir, &base);
        struct stat ds;
        if (stat(dir, &ds) != 0 || !S_ISDIR(ds.st_mode))
            return hr_err(HR_ERR_IO, "cannot create output folder '%s': its parent '%s' is not a folder", path, dir);
        return probe_writable(dir, path);
    }
    if (!S_ISDIR(st.st_mode)) return hr_err(HR_ERR_INVALID_ARG, "output '%s' exists and is not a folder", path);
    DIR *d = opendir(path);
    if (!d) return hr_err(HR_ERR_IO, "cannot read output folder '%s': %s", path, strerror(errno));
    int n_entries = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n_entries++;
    closedir(d);
    if (n_entries > 0 && p->kind == HR_OUT_HF_FOLDER)
        return hr_err(HR_ERR_INVALID_ARG,
                      "output folder '%s' exists and is not empty; a Hugging Face folder is written only into a new "
                      "or empty folder (remove it first)",
                      path);
    if (n_entries > 0 && !p->force) {
        char marker[PATH_MAX + 64];
        snprintf(marker, sizeof marker, "%s/%s", path, p->format ? p->format : "");
        struct stat ms;
        if (!p->format || stat(marker, &ms) != 0)
            return hr_err(HR_ERR_INVALID_ARG,
                          "output folder '%s' is not empty and holds no earlier headroom output (%s); give --force to "
                          "write into it anyway",
                          path, p->format ? p->format : "no marker");
    }
    return probe_writable(path, path);
}

hr_status hr_output_check(const char *path, const hr_output_params *p) {
    hr_output_params dp = hr_output_default_params();
    if (!p) p = &dp;
    if (!path || !*path) return hr_err(HR_ERR_INVALID_ARG, "no output path given");
    char out[PATH_MAX];
    if (!resolve(path, out)) {
        char dir[PATH_MAX];
        const char *base;
        split_path(path, dir, sizeof dir, &base);
        return hr_err(HR_ERR_IO, "cannot write '%s': folder '%s' does not exist", path, dir);
    }
    struct stat os;
    bool exists = lstat(path, &os) == 0, out_stat = stat(path, &os) == 0;
    /* Never an input: same resolved path, same file (hard link), inside an
     * input folder, or a folder holding an input. */
    for (int i = 0; i < p->n_inputs; i++) {
        const char *in = p->inputs[i];
        if (!in || !*in) continue;
        char rin[PATH_MAX];
        struct stat is;
        if (!realpath(in, rin) || stat(in, &is) != 0) continue; /* a missing input is its reader's error */
        bool same = strcmp(rin, out) == 0 || (out_stat && os.st_dev == is.st_dev && os.st_ino == is.st_ino);
        if (same)
            return hr_err(HR_ERR_INVALID_ARG, "output '%s' is the input '%s': refusing to replace an input", path, in);
        if (S_ISDIR(is.st_mode) && inside(out, rin))
            return hr_err(HR_ERR_INVALID_ARG, "output '%s' lies inside the input folder '%s': refusing to write there",
                          path, in);
        if (p->kind == HR_OUT_FOLDER || p->kind == HR_OUT_HF_FOLDER) {
            if (inside(rin, out))
                return hr_err(HR_ERR_INVALID_ARG, "output folder '%s' holds the input '%s': refusing to write there",
                              path, in);
        }
    }
    if (p->kind == HR_OUT_FOLDER || p->kind == HR_OUT_HF_FOLDER) return check_folder(path, p);
    /* A file output. */
    if (out_stat && S_ISDIR(os.st_mode))
        return hr_err(HR_ERR_INVALID_ARG, "output '%s' is a folder, expected a file path", path);
    if (exists && out_stat && !S_ISREG(os.st_mode))
        return hr_err(HR_ERR_INVALID_ARG, "output '%s' exists and is not a regular file", path);
    if (exists && !out_stat) /* a dangling symbolic link */
        return hr_err(HR_ERR_INVALID_ARG, "output '%s' is a symbolic link to nothing; remove it first", path);
    if (out_stat && !p->force && !is_own_output(path, p))
        return hr_err(
            HR_ERR_INVALID_ARG,
            "output '%s' exists and is not an earlier headroom output of this kind; give --force to replace it", path);
    char dir[PATH_MAX];
    const char *base;
    split_path(out, dir, sizeof dir, &base);
    return probe_writable(dir, path);
}

hr_status hr_write_file_atomic(const char *path, const void *data, size_t len) {
    hr_atomic_file af;
    hr_status st = hr_atomic_open(path, &af);
    if (st != HR_OK) return st;
    hr_atomic_write(&af, data, len);
    return hr_atomic_commit(&af);
}
