#include "common.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MODEL_REL "shared/models/stories260K/stories260K.bin"

int cli_error(const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* one line whatever the message holds */
    for (char *c = msg; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
    fflush(stdout);
    cli_progress_break();
    fprintf(stderr, "headroom: error: %s\n", msg);
    return CLI_FAIL;
}

int cli_lib_error(const char *what) {
    const char *e = hr_last_error();
    if (!e || !*e) return cli_error("%s", what);
    return cli_error("%s", e);
}

static bool g_verbose;

static void cli_log(hr_log_level level, const char *msg, void *user_data) {
    (void)user_data;
    if (level >= HR_LOG_INFO && !g_verbose) return;
    static const char *const names[] = {"library error", "warning", "info", "debug"};
    const char *name = (unsigned)level < 4 ? names[level] : "log";
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) n--;
    cli_progress_break();
    fprintf(stderr, "headroom: %s: %.*s\n", name, (int)n, msg);
}

void cli_install_log(void) {
    const char *v = getenv("HEADROOM_VERBOSE");
    g_verbose = v && *v && strcmp(v, "0") != 0;
    hr_set_log_callback(cli_log, NULL);
}

/* ---- option parsing ---- */

typedef struct {
    char letter;
    const char *name;
} short_row;

#define CLI_SHORT_ROW(c, n) {c, n},
static const short_row k_short[] = {CLI_SHORT_OPTIONS(CLI_SHORT_ROW)};
#undef CLI_SHORT_ROW
enum { N_SHORT = sizeof k_short / sizeof k_short[0] };

const char *cli_short_long_name(char letter) {
    for (int i = 0; i < N_SHORT; i++)
        if (k_short[i].letter == letter) return k_short[i].name;
    return NULL;
}

char cli_short_letter(const char *long_name) {
    for (int i = 0; i < N_SHORT; i++)
        if (strcmp(k_short[i].name, long_name) == 0) return k_short[i].letter;
    return 0;
}

static int find_long(const cli_spec *spec, const char *name, size_t len) {
    for (int i = 0; i < spec->n_opts; i++)
        if (strlen(spec->opts[i].name) == len && strncmp(spec->opts[i].name, name, len) == 0) return i;
    return -1;
}

static int find_short(const cli_spec *spec, char c) {
    const char *name = cli_short_long_name(c);
    return name ? find_long(spec, name, strlen(name)) : -1;
}

/* A row whose letter is not the table's, or that takes an option every
 * command has, is a mistake in the command's option table. */
static int check_spec(const cli_spec *spec, const cli_args *a) {
    if (spec->n_opts > (int)(sizeof a->values / sizeof a->values[0]))
        return cli_error("internal: too many options for '%s'", spec->name);
    for (int i = 0; i < spec->n_opts; i++) {
        const cli_opt *o = &spec->opts[i];
        char want = cli_short_letter(o->name);
        if (o->short_name && o->short_name != want)
            return cli_error("internal: 'headroom %s' gives --%s the letter -%c, which means --%s in every command",
                             spec->name, o->name, o->short_name,
                             cli_short_long_name(o->short_name) ? cli_short_long_name(o->short_name) : "nothing");
        if (!strcmp(o->name, "help") || !strcmp(o->name, "quiet"))
            return cli_error("internal: 'headroom %s' redefines --%s", spec->name, o->name);
    }
    return CLI_OK;
}

static bool is_help(const char *a) { return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0; }
static bool is_quiet(const char *a) { return strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0; }

/* Parses one option at argv[*i]; advances *i past a separate value. */
static int parse_option(const cli_spec *spec, int argc, char **argv, int *i, cli_args *out) {
    const char *arg = argv[*i], *val = NULL;
    int idx;
    if (is_quiet(arg)) {
        out->quiet = true;
        return CLI_OK;
    }
    if (arg[1] == '-') {
        const char *name = arg + 2, *eq = strchr(name, '=');
        idx = find_long(spec, name, eq ? (size_t)(eq - name) : strlen(name));
        if (eq) val = eq + 1;
    } else {
        idx = find_short(spec, arg[1]);
        if (arg[2]) val = arg + 2; /* "-n5" */
    }
    if (idx < 0)
        return cli_error("unknown option '%s' for 'headroom %s' (see 'headroom %s --help')", arg, spec->name,
                         spec->name);
    const cli_opt *o = &spec->opts[idx];
    if (o->arg && !val) {
        if (*i + 1 >= argc) return cli_error("option --%s needs a value (%s)", o->name, o->arg);
        val = argv[++*i];
    } else if (!o->arg) {
        if (val) return cli_error("option --%s takes no value", o->name);
        val = "";
    }
    out->values[idx] = val;
    return CLI_OK;
}

int cli_parse(const cli_spec *spec, int argc, char **argv, cli_args *out) {
    memset(out, 0, sizeof *out);
    if (check_spec(spec, out) != CLI_OK) return CLI_FAIL;
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (is_help(argv[i])) {
            out->help = true;
            return CLI_OK;
        }
    bool only_positional = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!only_positional && strcmp(arg, "--") == 0) {
            only_positional = true;
        } else if (!only_positional && arg[0] == '-' && arg[1]) {
            if (parse_option(spec, argc, argv, &i, out) != CLI_OK) return CLI_FAIL;
        } else {
            int cap = (int)(sizeof out->positional / sizeof out->positional[0]);
            if (out->n_positional >= spec->max_positional || out->n_positional >= cap)
                return cli_error("unexpected argument '%s' for 'headroom %s' (see 'headroom %s --help')", arg,
                                 spec->name, spec->name);
            out->positional[out->n_positional++] = arg;
        }
    }
    cli_progress_start(spec->name, out->quiet);
    return CLI_OK;
}

static void help_row(char letter, const char *name, const char *arg, const char *help) {
    char left[64], sh[8] = "    ";
    if (letter) snprintf(sh, sizeof sh, "-%c, ", letter);
    snprintf(left, sizeof left, "%s--%s%s%s", sh, name, arg ? " " : "", arg ? arg : "");
    printf("  %-26s %s\n", left, help);
}

void cli_print_help(const cli_spec *spec) {
    printf("usage: headroom %s %s\n\n%s\n\noptions:\n", spec->name, spec->usage, spec->summary);
    for (int i = 0; i < spec->n_opts; i++) {
        const cli_opt *o = &spec->opts[i];
        help_row(cli_short_letter(o->name), o->name, o->arg, o->help);
    }
    help_row('q', "quiet", NULL, "no progress lines on stderr");
    help_row('h', "help", NULL, "show this help and exit");
    printf("\nexample:\n%s\n", spec->example);
}

const char *cli_value(const cli_spec *spec, const cli_args *a, const char *name) {
    for (int i = 0; i < spec->n_opts; i++)
        if (strcmp(spec->opts[i].name, name) == 0) return a->values[i];
    return NULL;
}

int cli_get_int(const cli_spec *spec, const cli_args *a, const char *name, long min, long max, long *out) {
    const char *v = cli_value(spec, a, name);
    if (!v) return CLI_OK;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end) return cli_error("invalid value '%s' for --%s: expected an integer", v, name);
    if (x < min || x > max) return cli_error("--%s %ld is out of range [%ld, %ld]", name, x, min, max);
    *out = x;
    return CLI_OK;
}

int cli_get_u64(const cli_spec *spec, const cli_args *a, const char *name, uint64_t *out) {
    const char *v = cli_value(spec, a, name);
    if (!v) return CLI_OK;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-')
        return cli_error("invalid value '%s' for --%s: expected a non-negative integer", v, name);
    *out = (uint64_t)x;
    return CLI_OK;
}

int cli_get_float(const cli_spec *spec, const cli_args *a, const char *name, double min, double max, double *out) {
    const char *v = cli_value(spec, a, name);
    if (!v) return CLI_OK;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x))
        return cli_error("invalid value '%s' for --%s: expected a number", v, name);
    if (x < min || x > max) return cli_error("--%s %g is out of range [%g, %g]", name, x, min, max);
    *out = x;
    return CLI_OK;
}

hr_dtype cli_gguf_dtype(hr_dtype d) { return d == HR_DTYPE_INT8 ? HR_DTYPE_KEEP : d; }

int cli_get_dtype(const cli_spec *spec, const cli_args *a, hr_dtype *out) {
    const char *v = cli_value(spec, a, "dtype");
    *out = HR_DTYPE_KEEP;
    if (v && hr_dtype_from_name(v, out) != HR_OK) return cli_lib_error("bad --dtype");
    if (*out == HR_DTYPE_Q8_0 && cli_value(spec, a, "hf"))
        return cli_error("--dtype q8_0 is GGUF only: a Hugging Face folder (--hf) holds f32, f16, bf16 or int8");
    if (*out == HR_DTYPE_INT8 && !cli_value(spec, a, "hf"))
        return cli_error("--dtype int8 (per-channel) is for Hugging Face folders (--hf); GGUF's 8-bit type is q8_0");
    return CLI_OK;
}

/* ---- model and tokenizer ---- */

static bool readable(const char *path) { return access(path, R_OK) == 0; }

/* <repo>/build-x/headroom -> <repo>/../shared/... */
static bool default_beside_exe(char *buf, size_t cap) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return false;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return false;
    *slash = 0;
    int w = snprintf(buf, cap, "%s/../../%s", exe, DEFAULT_MODEL_REL);
    return w > 0 && (size_t)w < cap;
}

int cli_resolve_model(const cli_args *a, char *buf, size_t cap) {
    const char *p = a->n_positional > 0 ? a->positional[0] : getenv("HEADROOM_MODEL");
    if (p && *p) {
        if (snprintf(buf, cap, "%s", p) >= (int)cap) return cli_error("model path is too long");
        return CLI_OK;
    }
    char beside[PATH_MAX + 64] = "";
    if (default_beside_exe(beside, sizeof beside) && readable(beside)) {
        char real[PATH_MAX];
        snprintf(buf, cap, "%s", realpath(beside, real) ? real : beside);
        return CLI_OK;
    }
    const char *cwd_rel = "../" DEFAULT_MODEL_REL;
    if (readable(cwd_rel)) {
        snprintf(buf, cap, "%s", cwd_rel);
        return CLI_OK;
    }
    return cli_error("no MODEL given and the default model was not found (looked in '%s' and '%s'); "
                     "download stories260K.bin and tok512.bin from the Hugging Face hub repository "
                     "karpathy/tinyllamas, folder stories260K, into ../shared/models/stories260K/ next to the "
                     "repository, or pass MODEL or set HEADROOM_MODEL",
                     beside[0] ? beside : "<executable dir>/../../" DEFAULT_MODEL_REL, cwd_rel);
}

int cli_load_model(const char *path, hr_model **out) {
    if (hr_model_load(path, out) != HR_OK) {
        const char *e = hr_last_error();
        if (e && strstr(e, path)) return cli_error("%s", e);
        return cli_error("cannot load model '%s': %s", path, e && *e ? e : "unknown error");
    }
    return CLI_OK;
}

int cli_load_tokenizer(const char *model_path, const hr_model *m, const char *explicit_path, hr_tokenizer **out) {
    char path[PATH_MAX + 256];
    *out = NULL;
    if (hr_tokenizer_find_for_model(model_path, explicit_path, path, sizeof path) != HR_OK)
        return cli_lib_error("no tokenizer found for the model");
    if (hr_tokenizer_load(path, out) != HR_OK) {
        const char *e = hr_last_error();
        if (e && strstr(e, path)) return cli_error("%s", e);
        return cli_error("cannot load tokenizer '%s': %s", path, e && *e ? e : "unknown error");
    }
    int tv = hr_tokenizer_vocab_size(*out), mv = hr_config_vocab_size(hr_model_config(m));
    if (tv > mv) {
        hr_tokenizer_free(*out);
        *out = NULL;
        return cli_error("tokenizer '%s' has %d tokens but the model's vocabulary has only %d", path, tv, mv);
    }
    return CLI_OK;
}

void cli_load_tokenizer_optional(const char *model_path, const hr_model *m, const char *explicit_path,
                                 hr_tokenizer **out) {
    char path[PATH_MAX + 256];
    *out = NULL;
    if (hr_tokenizer_find_for_model(model_path, explicit_path, path, sizeof path) != HR_OK ||
        hr_tokenizer_load(path, out) != HR_OK)
        return;
    if (hr_tokenizer_vocab_size(*out) > hr_config_vocab_size(hr_model_config(m))) {
        hr_tokenizer_free(*out);
        *out = NULL;
    }
}

/* ---- outputs ---- */

int cli_check_output(const char *path, hr_output_kind kind, const char *format, bool force, const char *model_path,
                     const char *explicit_tokenizer, const char *const *inputs) {
    enum { MAX_INPUTS = 16 };
    const char *all[MAX_INPUTS + 2];
    int n = 0;
    char tok[PATH_MAX + 256];
    if (model_path) {
        all[n++] = model_path;
        if (hr_tokenizer_find_for_model(model_path, explicit_tokenizer, tok, sizeof tok) == HR_OK) all[n++] = tok;
    }
    for (int i = 0; inputs && inputs[i] && n < MAX_INPUTS + 2; i++) all[n++] = inputs[i];
    hr_output_params p = hr_output_default_params();
    p.kind = kind;
    p.format = format;
    p.inputs = all;
    p.n_inputs = n;
    p.force = force;
    if (hr_output_check(path, &p) != HR_OK) return cli_lib_error("cannot write the output");
    return CLI_OK;
}

int cli_write_file(const char *path, const char *data) {
    if (hr_write_file_atomic(path, data, strlen(data)) != HR_OK) return cli_lib_error("cannot write the output");
    return CLI_OK;
}

/* ---- text ---- */

long cli_utf8_invalid_at(const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            n = 2;
            cp = c & 0x1F;
            min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3;
            cp = c & 0x0F;
            min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4;
            cp = c & 0x07;
            min = 0x10000;
        } else return (long)i;
        if (len - i < n) return (long)i;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return (long)i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        /* overlong forms, UTF-16 surrogates and code points past U+10FFFF */
        if (cp < min || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return (long)i;
        i += n;
    }
    return -1;
}

int cli_read_text(const char *path, char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    char *buf = NULL;
    size_t n = 0;
    if (hr_read_file(path, &buf, &n) != HR_OK) return cli_lib_error("cannot read the text file");
    if (n == 0) {
        free(buf);
        return cli_error("text is empty: '%s'", path);
    }
    long bad_at = cli_utf8_invalid_at(buf, n);
    if (bad_at >= 0) {
        free(buf);
        return cli_error("text file '%s' is not valid UTF-8 (byte offset %ld)", path, bad_at);
    }
    *text = buf;
    *len = n;
    return CLI_OK;
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- progress ---- */

typedef struct {
    const char *command;
    bool quiet, tty;
    double interval;    /* non-terminal: seconds between lines */
    double phase_start; /* when the current phase reported done = 0 */
    double last_line;   /* when the last line was printed (or the phase began) */
    int step;           /* step of the current phase (a change starts a new phase) */
    char phase[96];
    bool line_open; /* a terminal line is drawn without its newline */
} progress_printer;

static progress_printer g_progress;

void cli_format_seconds(double s, char *buf, size_t cap) {
    if (!(s >= 0) || s > 1e8) snprintf(buf, cap, "?");
    else if (s < 1) snprintf(buf, cap, "%.0f ms", s * 1e3);
    else if (s < 10) snprintf(buf, cap, "%.1f s", s);
    else if (s < 60) snprintf(buf, cap, "%.0f s", s);
    else if (s < 3600) snprintf(buf, cap, "%dm %02ds", (int)(s / 60), (int)s % 60);
    else snprintf(buf, cap, "%dh %02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

/* "heads [3/9] ablation sweep: 120/1080 head ablations (11%), 3.2/s, ETA 4m 58s" */
static void progress_line(const hr_progress_info *p, double elapsed, char *buf, size_t cap) {
    char steps[32] = "", tail[64];
    if (p->n_steps > 0) snprintf(steps, sizeof steps, " [%d/%d]", p->step, p->n_steps);
    else if (p->step > 0) snprintf(steps, sizeof steps, " [%d]", p->step);
    double rate = elapsed > 0 && p->done > 0 ? (double)p->done / elapsed : 0;
    if (p->done >= p->total) {
        char t[24];
        cli_format_seconds(elapsed, t, sizeof t);
        snprintf(tail, sizeof tail, "done in %s", t);
    } else if (rate > 0) {
        char eta[24];
        cli_format_seconds((double)(p->total - p->done) / rate, eta, sizeof eta);
        if (rate >= 1) snprintf(tail, sizeof tail, "%.3g/s, ETA %s", rate, eta);
        else snprintf(tail, sizeof tail, "%.3g s each, ETA %s", 1 / rate, eta);
    } else {
        snprintf(tail, sizeof tail, "ETA ?");
    }
    snprintf(buf, cap, "%s%s %s: %lld/%lld %s (%.0f%%), %s", g_progress.command, steps, p->phase, (long long)p->done,
             (long long)p->total, p->unit, 100.0 * (double)p->done / (double)(p->total > 0 ? p->total : 1), tail);
}

static int progress_cb(const hr_progress_info *p, void *ud) {
    progress_printer *g = ud;
    double now = cli_now();
    if (p->step != g->step || strncmp(p->phase, g->phase, sizeof g->phase - 1) != 0 || p->done == 0) {
        if (p->step != g->step || strncmp(p->phase, g->phase, sizeof g->phase - 1) != 0) cli_progress_break();
        g->step = p->step;
        snprintf(g->phase, sizeof g->phase, "%s", p->phase);
        g->phase_start = g->last_line = now;
    }
    char line[256];
    if (g->tty) {
        bool end = p->done >= p->total;
        if (!end && g->line_open && now - g->last_line < 0.1) return 0; /* redraw at most 10 times a second */
        progress_line(p, now - g->phase_start, line, sizeof line);
        fprintf(stderr, "\r\033[K%s", line);
        if (end) fputc('\n', stderr);
        g->line_open = !end;
        g->last_line = now;
        fflush(stderr);
    } else if (now - g->last_line >= g->interval && (p->done > 0 || g->interval == 0)) {
        progress_line(p, now - g->phase_start, line, sizeof line);
        fprintf(stderr, "%s\n", line);
        g->last_line = now;
    }
    return 0;
}

void cli_progress_start(const char *command, bool quiet) {
    memset(&g_progress, 0, sizeof g_progress);
    g_progress.command = command;
    g_progress.quiet = quiet;
    g_progress.tty = isatty(STDERR_FILENO) == 1;
    g_progress.interval = 5;
    g_progress.step = -1;
    const char *iv = getenv("HEADROOM_PROGRESS_INTERVAL");
    if (iv && *iv) {
        char *end;
        double v = strtod(iv, &end);
        if (end != iv && !*end && v >= 0 && v < 1e6) g_progress.interval = v;
    }
    hr_set_progress_callback(quiet ? NULL : progress_cb, quiet ? NULL : &g_progress);
}

bool cli_progress_enabled(void) { return !g_progress.quiet; }

void cli_progress_break(void) {
    if (!g_progress.line_open) return;
    fputc('\n', stderr);
    g_progress.line_open = false;
}
