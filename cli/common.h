/* Helpers shared by the headroom subcommands: option parsing, error
 * reporting, default model lookup, model/tokenizer/text loading. */
#ifndef HR_CLI_COMMON_H
#define HR_CLI_COMMON_H

#include "headroom/common.h"
#include "headroom/model.h"
#include "headroom/save.h"
#include "headroom/tokenizer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CLI_PRINTF(a, b)
#endif

/* A macro's value as a string literal (defaults in help texts). */
#define CLI_STR_(x) #x
#define CLI_STR(x) CLI_STR_(x)

/* One-letter options mean the same long option in every command: this is
 * the one table of them. A command whose option table has the long name
 * gets the letter (cli_parse and cli_print_help read the table; a row's own
 * short_name must be 0 or the table's letter, which cli_parse checks).
 * -h (--help) and -q (--quiet) belong to every command; -V (--version) is
 * the top level's. tests/test_cli_help.sh walks every command's --help. */
#define CLI_SHORT_OPTIONS(X)                                                                                           \
    X('f', "text")                                                                                                     \
    X('o', "out")                                                                                                      \
    X('n', "tokens")                                                                                                   \
    X('t', "threads")                                                                                                  \
    X('s', "seed")                                                                                                     \
    X('c', "ctx")                                                                                                      \
    X('w', "windows")                                                                                                  \
    X('m', "methods")                                                                                                  \
    X('p', "prompt")                                                                                                   \
    X('d', "decode")                                                                                                   \
    X('v', "verbose")                                                                                                  \
    X('q', "quiet")                                                                                                    \
    X('h', "help")

/* The long option of a one-letter option (NULL when the letter has none),
 * and the letter of a long option (0 when none). */
const char *cli_short_long_name(char letter);
char cli_short_letter(const char *long_name);

/* Option rows several subcommands share. */
#define CLI_THREADS_OPTION                                                                                             \
    { "threads", 't', "K", "worker threads; 0 = all cores (default 0)" }
#define CLI_TOKENIZER_OPTION                                                                                           \
    { "tokenizer", 0, "PATH", "tokenizer (default: beside the model, or the GGUF)" }
#define CLI_FORCE_OPTION                                                                                               \
    { "force", 0, NULL, "replace an existing output that is not an earlier headroom output of the same kind" }
#define CLI_BF16_DOT_OPTION                                                                                            \
    { "bf16-dot", 0, NULL, "bf16 weights: AVX512-BF16's arithmetic, activations rounded to bf16 (README, bf16 dot)" }
#define CLI_INT8_DOT_OPTION                                                                                            \
    {                                                                                                                  \
        "int8-dot", 0, NULL,                                                                                           \
            "Q8_0 / int8 weights: llama.cpp's int8 arithmetic, activations quantized per 32 (README, int8 dot)"        \
    }
#define CLI_DTYPE_OPTION                                                                                               \
    {                                                                                                                  \
        "dtype", 0, "f32|f16|bf16|q8_0|int8",                                                                          \
            "output dtype (default: the input model's; q8_0: GGUF only; int8: per-channel, the --hf folder only, "     \
            "the GGUF then keeps the input's, f32 for an int8 input)"                                                  \
    }

/* Process exit codes. */
enum { CLI_OK = 0, CLI_FAIL = 1 };

/* Prints the one-line "headroom: error: <message>" and returns CLI_FAIL. */
int cli_error(const char *fmt, ...) CLI_PRINTF(1, 2);
/* The same with hr_last_error() as the message (or `what` when empty). */
int cli_lib_error(const char *what);

/* Library log lines on stderr: warnings always, info/debug with
 * HEADROOM_VERBOSE set in the environment. */
void cli_install_log(void);

/* One option of a subcommand. arg == NULL marks a flag without a value. */
typedef struct {
    const char *name; /* long name without "--" */
    char short_name;  /* 0 = none */
    const char *arg;  /* value placeholder for the help text, e.g. "N" */
    const char *help; /* one line, with the default */
} cli_opt;

typedef struct {
    const char *name;    /* subcommand */
    const char *usage;   /* after "headroom NAME " */
    const char *summary; /* first help paragraph */
    const cli_opt *opts;
    int n_opts;
    const char *example; /* one or more lines */
    int max_positional;
} cli_spec;

/* Parsed command line: values[i] is the argument of opts[i] (NULL when
 * absent; "" for a given flag). */
typedef struct {
    const char *values[48];
    const char *positional[4];
    int n_positional;
    bool help;
    bool quiet; /* --quiet / -q: no progress lines, no cost estimates */
} cli_args;

/* Parses argv[1..argc) (argv[0] is the subcommand name). Accepts
 * "--name value", "--name=value", "-x value", "--" ends options; --help and
 * --quiet are every command's. Installs the progress printer below for the
 * command (off with --quiet). Returns CLI_OK, or CLI_FAIL after printing
 * the error line. */
int cli_parse(const cli_spec *spec, int argc, char **argv, cli_args *out);
void cli_print_help(const cli_spec *spec);

const char *cli_value(const cli_spec *spec, const cli_args *a, const char *name);
/* Integer / float option values; absent options keep *out. Out-of-range or
 * malformed values print the error line and return CLI_FAIL. */
int cli_get_int(const cli_spec *spec, const cli_args *a, const char *name, long min, long max, long *out);
int cli_get_u64(const cli_spec *spec, const cli_args *a, const char *name, uint64_t *out);
int cli_get_float(const cli_spec *spec, const cli_args *a, const char *name, double min, double max, double *out);
/* --dtype: absent, HR_DTYPE_KEEP (the writers keep the input model's
 * dtype, hr_dtype_for_model); q8_0 together with --hf, and int8 without
 * it, are errors. */
/* The dtype for the GGUF of a command that writes a GGUF and maybe an HF
 * folder: d, except int8 (HF only): HR_DTYPE_KEEP (the input's; f32 for
 * an int8 input: GGUF has no per-channel int8). */
hr_dtype cli_gguf_dtype(hr_dtype d);
int cli_get_dtype(const cli_spec *spec, const cli_args *a, hr_dtype *out);

/* Model path: the positional argument, else $HEADROOM_MODEL, else the
 * default stories260K.bin next to the repository. Writes into buf. */
int cli_resolve_model(const cli_args *a, char *buf, size_t cap);

int cli_load_model(const char *path, hr_model **out);
/* Finds and loads the tokenizer for the model (explicit may be NULL) and
 * checks that its ids fit the model's vocabulary. */
int cli_load_tokenizer(const char *model_path, const hr_model *m, const char *explicit_path, hr_tokenizer **out);

/* The tokenizer to embed in a written model when one is found (not an
 * error when none is, or when it does not fit the model): *out may be NULL. */
void cli_load_tokenizer_optional(const char *model_path, const hr_model *m, const char *explicit_path,
                                 hr_tokenizer **out);

/* Refuses an output that may not be written (see hr_output_check): prints
 * the error line and returns CLI_FAIL. inputs is a NULL-terminated list of
 * the paths the command reads; the tokenizer found beside model_path (or
 * explicit_tokenizer) is added to them when model_path is given. */
int cli_check_output(const char *path, hr_output_kind kind, const char *format, bool force, const char *model_path,
                     const char *explicit_tokenizer, const char *const *inputs);

/* Writes a whole file atomically; prints the error line on failure. */
int cli_write_file(const char *path, const char *data);

/* Reads a text file; rejects unreadable, empty and invalid UTF-8 files. */
int cli_read_text(const char *path, char **text, size_t *len);
/* Seconds from a monotonic clock. */
double cli_now(void);

/* The one progress printer of every command (installed by cli_parse as the
 * library's progress callback, hr_set_progress_callback). Each phase of a
 * long run shows its name, step, items done / total, rate and ETA on
 * stderr: on a terminal as one line redrawn in place (left behind, with the
 * phase's duration, when the phase ends); elsewhere (logs, CI) as a plain
 * line at most every HEADROOM_PROGRESS_INTERVAL seconds (default 5; 0 =
 * every update), so short runs print none. --quiet silences it. */
void cli_progress_start(const char *command, bool quiet);
/* Whether progress and estimates may be printed (not --quiet). */
bool cli_progress_enabled(void);
/* Ends a progress line left open on a terminal (before other stderr text). */
void cli_progress_break(void);
/* "1h 02m", "3m 05s", "12.3 s" */
void cli_format_seconds(double s, char *buf, size_t cap);

/* Offset of the first invalid UTF-8 byte, or -1 when valid. */
long cli_utf8_invalid_at(const char *s, size_t len);

#endif
