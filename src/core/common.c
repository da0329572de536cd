#include "core/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char g_last_error[1024];
static hr_log_fn g_log_fn;
static void *g_log_ud;

const char *hr_status_str(hr_status s) {
    switch (s) {
    case HR_OK: return "ok";
    case HR_ERR_INVALID_ARG: return "invalid argument";
    case HR_ERR_IO: return "I/O error";
    case HR_ERR_FORMAT: return "format error";
    case HR_ERR_UNSUPPORTED: return "unsupported";
    case HR_ERR_NOMEM: return "out of memory";
    case HR_ERR_RANGE: return "out of range";
    case HR_ERR_NOT_FOUND: return "not found";
    case HR_ERR_ABORTED: return "aborted";
    }
    return "unknown status";
}

const char *hr_last_error(void) { return g_last_error; }

hr_status hr_err(hr_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_last_error, sizeof g_last_error, fmt, ap);
    va_end(ap);
    return st;
}

void hr_err_prefix(const char *fmt, ...) {
    char prefix[512], old[sizeof g_last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_last_error, sizeof old);
    /* Built by hand: snprintf("%s: %s") trips -Wformat-truncation. */
    size_t np = strlen(prefix), no = strlen(old), cap = sizeof g_last_error - 1;
    if (np > cap) np = cap;
    memcpy(g_last_error, prefix, np);
    size_t at = np;
    if (at + 2 <= cap) {
        memcpy(g_last_error + at, ": ", 2);
        at += 2;
    }
    if (no > cap - at) no = cap - at;
    memcpy(g_last_error + at, old, no);
    g_last_error[at + no] = 0;
}

void hr_set_log_callback(hr_log_fn fn, void *user_data) {
    g_log_fn = fn;
    g_log_ud = user_data;
}

void hr_log(hr_log_level level, const char *fmt, ...) {
    if (!g_log_fn) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_log_fn(level, buf, g_log_ud);
}

int hr_held_err_keep(hr_held_err *e, hr_status st) {
    e->st = st;
    snprintf(e->msg, sizeof e->msg, "%s", hr_last_error());
    return 1;
}

hr_status hr_held_err_raise(const hr_held_err *e, hr_status st) {
    return st == HR_ERR_ABORTED && e->st != HR_OK ? hr_err(e->st, "%s", e->msg) : st;
}

hr_status hr_map_file(const char *path, hr_mapped_file *out) {
    memset(out, 0, sizeof *out);
    if (!path) return hr_err(HR_ERR_INVALID_ARG, "no file path given");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return hr_err(HR_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return hr_err(HR_ERR_IO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return hr_err(HR_ERR_IO, "'%s' is not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return HR_OK;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return hr_err(HR_ERR_IO, "cannot mmap '%s': %s", path, strerror(errno));
    out->data = p;
    out->size = (size_t)st.st_size;
    out->is_mmap = 1;
    return HR_OK;
}

void hr_release_pages(const void *p, size_t n) {
    if (!p || n == 0) return;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)p + page - 1) / page * page, hi = ((uintptr_t)p + n) / page * page;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

enum { HUGE_PAGE = 2 << 20, HUGE_REGION = 8 << 20 };

void *hr_map_anon(size_t *bytes, bool populate) {
    size_t size;
    if (*bytes == 0 || !hr_add_size(*bytes, 4095, &size)) return NULL;
    size &= ~(size_t)4095;
#if defined(MAP_POPULATE)
    void *p = MAP_FAILED;
#if defined(MADV_HUGEPAGE) && defined(MADV_POPULATE_WRITE)
    size_t huge = 0, map = 0;
    if (size >= HUGE_REGION && hr_add_size(size, HUGE_PAGE - 1, &huge) &&
        hr_add_size(huge & ~(size_t)(HUGE_PAGE - 1), HUGE_PAGE, &map)) {
        huge &= ~(size_t)(HUGE_PAGE - 1);
        char *m = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) { /* keep the 2 MiB-aligned middle */
            char *q = (char *)(((uintptr_t)m + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
            if (q > m) munmap(m, (size_t)(q - m));
            if (q + huge < m + map) munmap(q + huge, (size_t)(m + map - (q + huge)));
            madvise(q, huge, MADV_HUGEPAGE); /* advice: 4 KiB pages where refused */
            if (!populate || madvise(q, huge, MADV_POPULATE_WRITE) == 0) p = q, size = huge;
            else munmap(q, huge); /* kernel before 5.14, or no memory: try below */
        }
    }
#endif
    if (p == MAP_FAILED)
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0), -1,
                 0);
    if (p == MAP_FAILED) return NULL;
#else
    void *p = aligned_alloc(4096, size);
    if (!p) return NULL;
    memset(p, 0, size);
#endif
    *bytes = size;
    return p;
}

void hr_unmap_anon(void *p, size_t bytes) {
    if (!p) return;
#if defined(MAP_POPULATE)
    munmap(p, bytes);
#else
    (void)bytes;
    free(p);
#endif
}

void hr_prefault_pages(const void *p, size_t n) {
#if defined(MADV_POPULATE_READ)
    if (!p || n == 0) return;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = (uintptr_t)p / page * page, hi = ((uintptr_t)p + n + page - 1) / page * page;
    madvise((void *)lo, hi - lo, MADV_POPULATE_READ); /* advice: faults as before where it fails */
#else
    (void)p, (void)n;
#endif
}

uint64_t hr_available_memory(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[128];
    unsigned long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    if (f) fclose(f);
    if (kb) return (uint64_t)kb * 1024u;
    long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

void hr_unmap_file(hr_mapped_file *f) {
    if (!f) return;
    if (f->data) {
        if (f->is_mmap) munmap((void *)f->data, f->size);
        else free((void *)f->data);
    }
    memset(f, 0, sizeof *f);
}

hr_status hr_read_file(const char *path, char **out, size_t *len) {
    *out = NULL;
    if (len) *len = 0;
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return hr_err(HR_ERR_IO, "'%s' is a folder, expected a file", path);
    FILE *fp = fopen(path, "rb");
    if (!fp) return hr_err(HR_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(fp);
        return hr_err(HR_ERR_NOMEM, "out of memory reading '%s'", path);
    }
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (n < cap) break;
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) {
            free(buf);
            fclose(fp);
            return hr_err(HR_ERR_NOMEM, "out of memory reading '%s'", path);
        }
        buf = nb;
        cap *= 2;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        free(buf);
        return hr_err(HR_ERR_IO, "read error on '%s'", path);
    }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return HR_OK;
}

hr_status hr_atomic_open(const char *path, hr_atomic_file *af) {
    memset(af, 0, sizeof *af);
    size_t n = strlen(path) + 32;
    af->tmp = malloc(n);
    af->final = strdup(path);
    if (!af->tmp || !af->final) {
        free(af->tmp);
        free(af->final);
        return hr_err(HR_ERR_NOMEM, "out of memory");
    }
    snprintf(af->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    af->fp = fopen(af->tmp, "wb");
    if (!af->fp) {
        hr_status st = hr_err(HR_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        free(af->tmp);
        free(af->final);
        memset(af, 0, sizeof *af);
        return st;
    }
    return HR_OK;
}

hr_status hr_atomic_write(hr_atomic_file *af, const void *buf, size_t n) {
    if (af->failed) return HR_ERR_IO;
    if (n && fwrite(buf, 1, n, (FILE *)af->fp) != n) {
        af->failed = 1;
        return hr_err(HR_ERR_IO, "write to '%s' failed: %s", af->final, strerror(errno));
    }
    return HR_OK;
}

void hr_atomic_abort(hr_atomic_file *af) {
    if (!af || !af->tmp) return;
    if (af->fp) fclose((FILE *)af->fp);
    unlink(af->tmp);
    free(af->tmp);
    free(af->final);
    memset(af, 0, sizeof *af);
}

hr_status hr_atomic_commit(hr_atomic_file *af) {
    if (!af->fp) return hr_err(HR_ERR_INVALID_ARG, "atomic file not open");
    FILE *fp = (FILE *)af->fp;
    int bad = af->failed || fflush(fp) != 0 || fsync(fileno(fp)) != 0;
    int e = errno;
    if (fclose(fp) != 0) bad = 1;
    af->fp = NULL;
    if (bad) {
        hr_status st = hr_err(HR_ERR_IO, "writing '%s' failed: %s", af->final, strerror(e));
        hr_atomic_abort(af);
        return st;
    }
    if (rename(af->tmp, af->final) != 0) {
        hr_status st = hr_err(HR_ERR_IO, "cannot rename into '%s': %s", af->final, strerror(errno));
        hr_atomic_abort(af);
        return st;
    }
    free(af->tmp);
    free(af->final);
    memset(af, 0, sizeof *af);
    return HR_OK;
}

void hr_free(void *p) { free(p); }

const char *hr_version(void) { return HR_VERSION; }

double hr_time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int hr_n_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void hr_folder_names_free(char **names, size_t n) {
    for (size_t i = 0; names && i < n; i++) free(names[i]);
    free(names);
}

hr_status hr_folder_names(const char *path, const char *suffix, char ***out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(path);
    if (!d) return hr_err(HR_ERR_IO, "cannot read folder '%s'", path);
    char **names = NULL;
    size_t n = 0, cap = 0, sl = suffix ? strlen(suffix) : 0;
    hr_status st = HR_OK;
    for (struct dirent *e; st == HR_OK && (e = readdir(d));) {
        size_t nl = strlen(e->d_name);
        if (e->d_name[0] == '.' || nl <= sl || (sl && strcmp(e->d_name + nl - sl, suffix) != 0)) continue;
        size_t len = strlen(path) + nl + 2;
        char *full = malloc(len);
        struct stat fs;
        if (!full) {
            st = hr_err(HR_ERR_NOMEM, "out of memory");
            break;
        }
        snprintf(full, len, "%s/%s", path, e->d_name);
        bool regular = stat(full, &fs) == 0 && S_ISREG(fs.st_mode);
        free(full);
        if (!regular) continue;
        if (n == cap) {
            char **g = realloc(names, sizeof *names * (cap = cap ? 2 * cap : 16));
            if (!g) st = hr_err(HR_ERR_NOMEM, "out of memory");
            else names = g;
        }
        if (st == HR_OK && !(names[n++] = strdup(e->d_name))) st = hr_err(HR_ERR_NOMEM, "out of memory");
    }
    closedir(d);
    if (st != HR_OK) {
        hr_folder_names_free(names, n);
        return st;
    }
    if (n) qsort(names, n, sizeof *names, name_cmp);
    *out = names;
    *n_out = n;
    return HR_OK;
}
