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
    fprintf(stderr, "headroom: %s: %.*s\n", name, (int)n, msg);
}

void cli_install_log(void) {
    const char *v = getenv("HEADROOM_VERBOSE");
    g_verbose = v && *v && strcmp(v, "0") != 0;
    hr_set_log_callback(cli_log, NULL);
}

/* ---- option parsing ---- */

static int find_long(const cli_spec *spec, const char *name, size_t len) {
    for (int i = 0; i < spec->n_opts; i++)
        if (strlen(spec->opts[i].name) == len && strncmp(spec->opts[i].name, name, len) == 0) return i;
    return -1;
}

static int find_short(const cli_spec *spec, char c) {
    for (int i = 0; i < spec->n_opts; i++)
        if (spec->opts[i].short_name && spec->opts[i].short_name == c) return i;
    return -1;
}

static bool is_help(const char *a) { return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0; }

/* Parses one option at argv[*i]; advances *i past a separate value. */
static int parse_option(const cli_spec *spec, int argc, char **argv, int *i, cli_args *out) {
    const char *arg = argv[*i], *val = NULL;
    int idx;
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
    if (spec->n_opts > (int)(sizeof out->values / sizeof out->values[0]))
        return cli_error("internal: too many options for '%s'", spec->name);
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
    return CLI_OK;
}

void cli_print_help(const cli_spec *spec) {
    printf("usage: headroom %s %s\n\n%s\n\noptions:\n", spec->name, spec->usage, spec->summary);
    for (int i = 0; i < spec->n_opts; i++) {
        const cli_opt *o = &spec->opts[i];
        char left[64], sh[8] = "    ";
        if (o->short_name) snprintf(sh, sizeof sh, "-%c, ", o->short_name);
        snprintf(left, sizeof left, "%s--%s%s%s", sh, o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        printf("  %-26s %s\n", left, o->help);
    }
    printf("  %-26s %s\n", "-h, --help", "show this help and exit");
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
    if (errno || end == v || *end)
        return cli_error("invalid value '%s' for --%s: expected an integer", v, name);
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
        if (c < 0x80) { i++; continue; }
        if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; min = 0x10000; }
        else return (long)i;
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
