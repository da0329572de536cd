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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the library (CMake reads it from here: one source). */
#define HR_VERSION_MAJOR 0
#define HR_VERSION_MINOR 2
#define HR_VERSION_PATCH 0
#define HR_VERSION "0.2.0"

/* Every public function carries HR_API: the shared library exports these
 * and hides everything else (-fvisibility=hidden). */
#if defined(__GNUC__) || defined(__clang__)
#define HR_API __attribute__((visibility("default")))
#else
#define HR_API
#endif

/* The version the library was built as ("0.2.0"); compare with HR_VERSION
 * to detect a header / library mismatch. Never NULL. */
HR_API const char *hr_version(void);

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
HR_API const char *hr_status_str(hr_status s);

/* Message of the last failure on this thread ("" if none). Borrowed; valid
 * until the next failing call on the same thread. */
HR_API const char *hr_last_error(void);

typedef enum { HR_LOG_ERROR = 0, HR_LOG_WARN = 1, HR_LOG_INFO = 2, HR_LOG_DEBUG = 3 } hr_log_level;

typedef void (*hr_log_fn)(hr_log_level level, const char *msg, void *user_data);

/* Installs the process-wide log sink; NULL silences the library. */
HR_API void hr_set_log_callback(hr_log_fn fn, void *user_data);

/* ---- progress ----
 *
 * Long runs report where they are as a sequence of phases, each counting
 * items from 0 to its total: the head lab (hr_heads_run), perplexity
 * (hr_perplexity), evaluation (hr_eval_run and its parts), pruning with
 * calibration (hr_prune_run, hr_prune_neuron_importance,
 * hr_prune_layer_importance), GQA similarity (hr_gqa_kv_similarity),
 * training (hr_train_run: one phase of steps, the unit text carrying loss,
 * held-out loss and tokens/s) and the model writers (hr_model_save_gguf /
 * _hf, per tensor). A run calls its callback at the start of every phase
 * (done = 0) and after every item; a callback that returns non-zero stops
 * the run, which then returns HR_ERR_ABORTED (the message names the phase
 * and how far it got) and writes no output (training writes only its
 * checkpoint, headroom/train.h). Callbacks are called on the thread that
 * called the run, never from worker threads. The library prints nothing:
 * what to show is the callback's business (the headroom CLI draws one line
 * per phase). */
typedef struct {
    const char *phase; /* what runs now, e.g. "ablation sweep" (borrowed; never NULL) */
    const char *unit;  /* what one item is, e.g. "head ablations", "windows", "tensors" (never NULL) */
    int64_t done;      /* items of this phase finished: 0 at its start, total at its end */
    int64_t total;     /* items of this phase (>= 1) */
    int step, n_steps; /* this phase is step `step` (1-based) of the run's n_steps; n_steps 0 = unknown */
} hr_progress_info;

/* Phase-aware progress callback. Return non-zero to abort. */
typedef int (*hr_progress_phase_fn)(const hr_progress_info *info, void *user_data);

/* Sets the calling thread's progress callback (NULL removes it): every long
 * run on this thread reports to it, unless its params name a callback of
 * their own (hr_heads_params.progress_phase, hr_ppl_params.progress_phase,
 * hr_prune_params.progress_phase, hr_eval_params.progress_phase,
 * hr_train_params.progress_phase), which then takes
 * every phase of that run, including the phases of the calls it makes. */
HR_API void hr_set_progress_callback(hr_progress_phase_fn fn, void *user_data);

/* The older, phase-blind callback (hr_heads_params.progress,
 * hr_ppl_params.progress): done out of total units of the whole run.
 * Return non-zero to abort (the run then returns HR_ERR_ABORTED). */
typedef int (*hr_progress_fn)(int64_t done, int64_t total, void *user_data);

/* ---- outputs ----
 *
 * Every file headroom writes appears atomically (a temporary file beside
 * it, fsync, rename) and never replaces an input. */

/* Frees a buffer the library allocated and handed to the caller (JSON
 * texts, token arrays, file contents). NULL is a no-op. */
HR_API void hr_free(void *p);

/* Reads a whole file into a NUL-terminated buffer; *out owned by the
 * caller (hr_free), *len (may be NULL) its length. A folder is an error. */
HR_API hr_status hr_read_file(const char *path, char **out, size_t *len);

/* Writes len bytes to path atomically. */
HR_API hr_status hr_write_file_atomic(const char *path, const void *data, size_t len);

typedef enum {
    HR_OUT_FILE = 0,     /* any file; an existing one must start with `format` (when given) */
    HR_OUT_GGUF = 1,     /* a model file; an existing one must be a GGUF written by headroom */
    HR_OUT_JSON = 2,     /* an existing file must be a JSON object whose "format" equals `format` */
    HR_OUT_TEXT = 3,     /* an existing file must start with `format` (e.g. "# headroom KV plan") */
    HR_OUT_FOLDER = 4,   /* several files; an existing folder must be empty or hold the file `format` */
    HR_OUT_HF_FOLDER = 5 /* a Hugging Face folder: must not exist or be empty */
} hr_output_kind;

typedef struct {
    hr_output_kind kind;
    const char *format;        /* marker of an earlier output of the kind (see above); may be NULL */
    const char *const *inputs; /* paths the command reads (models, folders, texts, scores); NULL entries skipped */
    int n_inputs;
    bool force; /* replace / write into outputs that are not headroom's */
} hr_output_params;

HR_API hr_output_params hr_output_default_params(void);

/* Checks, before any work, that path may be written: it does not resolve
 * (through symbolic links, and by device + inode for hard links) to one of
 * the inputs, does not lie inside an input folder, a folder output does not
 * hold an input; an existing file is an earlier headroom output of the same
 * kind unless force; a file path is not a folder; and its folder is
 * writable (a probe file is created and removed). HR_ERR_INVALID_ARG or
 * HR_ERR_IO with a message naming the path and the reason. */
HR_API hr_status hr_output_check(const char *path, const hr_output_params *p);

#ifdef __cplusplus
}
#endif
#endif
