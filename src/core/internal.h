/* Internal helpers shared by all library modules (not installed). */
#ifndef HR_INTERNAL_H
#define HR_INTERNAL_H

#include "headroom/common.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define HR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define HR_PRINTF(a, b)
#endif

/* Records a formatted message as this thread's last error and returns st,
 * so failures read: return hr_err(HR_ERR_FORMAT, "bad magic in %s", path); */
hr_status hr_err(hr_status st, const char *fmt, ...) HR_PRINTF(2, 3);

/* Prefixes the current last-error message ("loading x: <old message>"). */
void hr_err_prefix(const char *fmt, ...) HR_PRINTF(1, 2);

/* A failure inside a forward-pass hook: the forward's own "aborted by hook"
 * replaces the last error, so the hook keeps it (hr_held_err_keep, which
 * returns 1: the hook's "stop") and the caller raises it again after the
 * forward (hr_held_err_raise: st unless the forward was aborted by it). */
typedef struct {
    hr_status st; /* HR_OK: nothing held */
    char msg[1024];
} hr_held_err;
int hr_held_err_keep(hr_held_err *e, hr_status st);
hr_status hr_held_err_raise(const hr_held_err *e, hr_status st);

void hr_log(hr_log_level level, const char *fmt, ...) HR_PRINTF(2, 3);

/* Overflow-checked size arithmetic: return false on overflow. */
static inline bool hr_mul_size(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool hr_add_size(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }

/* A read-only memory map of a whole file (never a heap copy: typed weight
 * sources that are not owned buffers are such mappings, and their pages
 * are released with madvise, engine/pack.c, model/model.c). */
typedef struct {
    const uint8_t *data;
    size_t size;
    int is_mmap;
} hr_mapped_file;

/* Maps path read-only. Empty files map to size 0 with data NULL. */
hr_status hr_map_file(const char *path, hr_mapped_file *out);
void hr_unmap_file(hr_mapped_file *f);
/* Drops the resident pages wholly inside [p, p + n) of a read-only file
 * mapping (madvise MADV_DONTNEED): they leave the process's memory and are
 * read from the file again if touched. Only for memory-mapped files — or
 * for hr_map_anon memory whose contents are no longer needed (they read
 * back as zeros). */
void hr_release_pages(const void *p, size_t n);
/* Maps the pages of [p, p + n) of a read-only file mapping in one kernel
 * call (MADV_POPULATE_READ where the kernel has it, Linux 5.14) instead
 * of page fault by page fault as they are read; no-op elsewhere. */
void hr_prefault_pages(const void *p, size_t n);
/* Zero-filled anonymous memory of at least *bytes (0 < *bytes), 64-byte
 * aligned. populate: filled in up front in one kernel call instead of one
 * page fault per 4 KiB at first touch (page faults cost ~8 us each on the
 * development VM: 4 s of the 4.5 s it took to pack a 2.2 GB model); else
 * resident only as written (a buffer filled while another is given back).
 * From 8 MiB on the region is 2 MiB-aligned and asks for transparent huge
 * pages (MADV_HUGEPAGE, used where the system's setting is "madvise" or
 * "always": one fault per 2 MiB). *bytes becomes the size to pass to
 * hr_unmap_anon. NULL when it cannot be had. */
void *hr_map_anon(size_t *bytes, bool populate);
void hr_unmap_anon(void *p, size_t bytes);
/* Bytes of memory the system can still give without swapping (Linux:
 * MemAvailable of /proc/meminfo; else free physical pages); 0 = unknown. */
uint64_t hr_available_memory(void);


/* Atomic output: write to "<path>.tmp.<pid>", then rename over path. */
typedef struct {
    void *fp;    /* FILE* */
    char *tmp;   /* temporary path, owned */
    char *final; /* destination path, owned */
    int failed;
} hr_atomic_file;

hr_status hr_atomic_open(const char *path, hr_atomic_file *af);
hr_status hr_atomic_write(hr_atomic_file *af, const void *buf, size_t n);
/* Flushes, fsyncs and renames into place; on any earlier failure removes the
 * temporary file instead. Always releases af. */
hr_status hr_atomic_commit(hr_atomic_file *af);
void hr_atomic_abort(hr_atomic_file *af);

/* Key headroom's GGUF writer puts first after general.architecture; the
 * output check recognises earlier headroom GGUFs by it. */
#define HR_GGUF_WRITER_KEY "headroom.writer"

/* Seconds from a monotonic clock. */
double hr_time_now(void);

/* Number of online CPU cores (>= 1). */
int hr_n_cores(void);

/* SHA-256 (FIPS 180-4), streaming. */
typedef struct {
    uint32_t h[8];    /* chaining state */
    uint64_t n_bytes; /* message length so far */
    uint8_t buf[64];  /* (fill) bytes of the next block */
    size_t fill;
} hr_sha256_ctx;
void hr_sha256_init(hr_sha256_ctx *s);
void hr_sha256_update(hr_sha256_ctx *s, const void *data, size_t len);
void hr_sha256_final(hr_sha256_ctx *s, uint8_t digest[32]);
/* Tests: true = use the plain C rounds, false = the SHA extensions where
 * the CPU has them (the default). Returns whether the SHA extensions are in
 * use now. Not for use while another thread hashes. */
bool hr_sha256_use_generic(bool generic);
/* Lower-case hex digest of a buffer. */
void hr_sha256_hex(const void *data, size_t len, char hex[65]);
/* Digest of a file, or of a folder: its regular files (names not starting
 * with '.') in name order, each hashed as name, NUL byte, content. */
hr_status hr_sha256_path(const char *path, char hex[65]);

/* The regular files of a folder whose names do not start with '.' and end
 * with suffix (NULL = any), in byte order of their names. *names (*n of
 * them) owned by caller: hr_folder_names_free(). */
hr_status hr_folder_names(const char *path, const char *suffix, char ***names, size_t *n);
void hr_folder_names_free(char **names, size_t n);


#endif
