/* headroom — common definitions: status codes, last-error messages, logging.
 *
 * Every function that can fail returns hr_status (negative = error). The
 * message describing the most recent failure on the calling thread is kept
 * and read with hr_last_error(); handles also keep their own copy where they
 * document it. The library never prints: log lines go to the callback that
 * the application installs with hr_set_log_callback() (none = silent).
 */
#ifndef HEADROOM_COMMON_H
#define HEADROOM_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    HR_OK = 0,
    HR_ERR_INVALID_ARG = -1, /* caller passed something unusable */
    HR_ERR_IO = -2,          /* open/read/write/mmap/rename failed */
    HR_ERR_FORMAT = -3,      /* file or text is malformed / hostile */
    HR_ERR_UNSUPPORTED = -4, /* well-formed but not supported (dtype, arch) */
    HR_ERR_NOMEM = -5,       /* allocation failed or size overflowed */
    HR_ERR_RANGE = -6,       /* value outside the allowed range (e.g. ctx) */
    HR_ERR_NOT_FOUND = -7,   /* key, tensor or file missing */
    HR_ERR_ABORTED = -8      /* a callback asked to stop */
} hr_status;

/* Short constant name of a status ("format error", ...). Never NULL. */
const char *hr_status_str(hr_status s);

/* Message of the last failure on this thread ("" if none). Borrowed; valid
 * until the next failing call on the same thread. */
const char *hr_last_error(void);

typedef enum {
    HR_LOG_ERROR = 0,
    HR_LOG_WARN = 1,
    HR_LOG_INFO = 2,
    HR_LOG_DEBUG = 3
} hr_log_level;

typedef void (*hr_log_fn)(hr_log_level level, const char *msg, void *user_data);

/* Installs the process-wide log sink; NULL silences the library. */
void hr_set_log_callback(hr_log_fn fn, void *user_data);

/* Progress callback for long operations: done out of total units.
 * Return non-zero to abort (the operation then returns HR_ERR_ABORTED). */
typedef int (*hr_progress_fn)(int64_t done, int64_t total, void *user_data);

#ifdef __cplusplus
}
#endif
#endif
