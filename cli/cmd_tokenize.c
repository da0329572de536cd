/* headroom tokenize: text -> ids (one line of ids per text) and, with
 * --decode, ids -> text. */
#include "commands.h"
#include "common.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const cli_opt k_opts[] = {
    {"tokenizer", 0, "PATH", "the tokenizer (file, folder or model) to use; then every argument is TEXT"},
    {"text", 'f', "FILE", "read the input from FILE (default: the TEXT argument, else standard input)"},
    {"split", 0, "MARKER", "the input holds several texts, separated by lines that are exactly MARKER"},
    {"decode", 'd', NULL, "read ids (whitespace-separated, one text per line) and print their text"},
    {"bos", 0, NULL, "prepend the BOS id (default: no BOS, as llama.cpp's tokenizer tests)"},
    {"parse-special", 0, NULL, "recognise special-token text such as <|endoftext|> (default: plain text)"},
};

static const cli_spec k_spec = {
    .name = "tokenize",
    .usage = "[MODEL|TOKENIZER] [TEXT] [options]",
    .summary = "Prints the token ids of a text, space-separated on one line (one line per text with\n"
               "--split; an empty text gives an empty line). The tokenizer is a tokenizer file\n"
               "(llama2.c .bin, SentencePiece .model, GGUF, tokenizer.json, encoder.json / vocab.bpe),\n"
               "a folder holding one, or a model whose tokenizer is found as 'generate' finds it.\n"
               "Without one (no --tokenizer, and a single argument that names no existing file or\n"
               "folder is the TEXT) the default model's tokenizer is used ($HEADROOM_MODEL, else\n"
               "stories260K's tok512.bin). With --decode, reads ids and prints the text.",
    .opts = k_opts,
    .n_opts = sizeof k_opts / sizeof k_opts[0],
    .example = "  headroom tokenize \"Once upon a time\"\n"
               "  headroom tokenize ../shared/data/tokenizers/llama2/tokenizer.model \"Hello world\"\n"
               "  headroom tokenize ../shared/models/gguf-vocab/ggml-vocab-gpt-2.gguf \\\n"
               "      --text ../shared/data/tokenizer-vectors/ggml-vocab-gpt-2.gguf.inp --split __ggml_vocab_test__",
    .max_positional = 2,
};

/* The path itself when it is a tokenizer, else the one found for it as a
 * model (e.g. tok512.bin beside a llama2.c checkpoint). When both fail,
 * both reasons are given. */
static int open_tokenizer(const char *path, hr_tokenizer **t) {
    if (hr_tokenizer_load(path, t) == HR_OK) return CLI_OK;
    char first[1024], found[PATH_MAX + 256];
    snprintf(first, sizeof first, "%s", hr_last_error());
    if (hr_tokenizer_find_for_model(path, NULL, found, sizeof found) == HR_OK && strcmp(found, path) != 0) {
        if (hr_tokenizer_load(found, t) == HR_OK) return CLI_OK;
        return cli_error("%s; as a model, its tokenizer does not load either: %s", first, hr_last_error());
    }
    return cli_error("%s", first);
}

/* The tokenizer of the default model ($HEADROOM_MODEL or stories260K). */
static int open_default_tokenizer(hr_tokenizer **t) {
    cli_args none = {.n_positional = 0};
    char model[PATH_MAX + 256], found[PATH_MAX + 256];
    if (cli_resolve_model(&none, model, sizeof model) != CLI_OK) return CLI_FAIL;
    if (hr_tokenizer_find_for_model(model, NULL, found, sizeof found) != HR_OK)
        return cli_lib_error("no tokenizer found for the default model");
    if (hr_tokenizer_load(found, t) != HR_OK) return cli_lib_error("cannot load the default model's tokenizer");
    return CLI_OK;
}

static bool path_exists(const char *path) { return access(path, F_OK) == 0; }

/* Which argument names the tokenizer and which is the text: two arguments
 * are MODEL|TOKENIZER TEXT; a single one is the tokenizer when --text is
 * given or a file or folder of that name exists, else the TEXT. *source
 * NULL = the default model's tokenizer. */
static int split_arguments(const cli_args *a, const char *tok_opt, bool text_opt, const char **source,
                           const char **text) {
    int np = a->n_positional;
    bool first_is_source = np == 2 || (np == 1 && !tok_opt && (text_opt || path_exists(a->positional[0])));
    if (tok_opt && first_is_source)
        return cli_error("give the tokenizer either as --tokenizer or as the first argument, not both");
    if (tok_opt && np == 1 && text_opt) return cli_error("give either --text FILE or a TEXT argument, not both");
    *source = first_is_source ? a->positional[0] : tok_opt;
    *text = np > (int)first_is_source ? a->positional[first_is_source] : NULL;
    return CLI_OK;
}

static int read_stdin(char **text, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, stdin);
        if (n < cap) break;
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) free(buf);
        buf = nb;
        cap *= 2;
    }
    if (!buf) return cli_error("out of memory reading standard input");
    if (ferror(stdin)) {
        free(buf);
        return cli_error("cannot read standard input");
    }
    buf[n] = 0;
    *text = buf;
    *len = n;
    return CLI_OK;
}

/* An empty file is an empty text (one empty line of ids), unlike the other
 * commands' text files; the rest is read and checked as they are. */
static int read_text_file(const char *path, char **text, size_t *len) {
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > 0) return cli_read_text(path, text, len);
    *len = 0;
    *text = calloc(1, 1);
    return *text ? CLI_OK : cli_error("out of memory");
}

static int read_input(const char *file, const char *arg, char **text, size_t *len) {
    if (file && arg) return cli_error("give either --text FILE or a TEXT argument, not both");
    if (file) return read_text_file(file, text, len);
    if (arg) {
        *len = strlen(arg);
        *text = malloc(*len + 1);
        if (!*text) return cli_error("out of memory");
        memcpy(*text, arg, *len + 1);
        return CLI_OK;
    }
    if (isatty(STDIN_FILENO))
        return cli_error("no text given: pass TEXT, --text FILE or pipe the text into standard input");
    return read_stdin(text, len);
}

/* Next text of buf[*pos..len): up to the next line that is exactly the
 * marker (the newline before it is not part of the text, as in llama.cpp's
 * .inp files); nothing after the last marker line is no text. */
static bool next_text(const char *buf, size_t len, const char *marker, size_t *pos, size_t *start, size_t *n) {
    if (*pos >= len && (marker || *pos > len)) return false;
    *start = *pos;
    if (!marker) {
        *n = len - *pos;
        *pos = len + 1;
        return true;
    }
    size_t ml = strlen(marker);
    for (size_t i = *pos; i + ml <= len; i++) {
        bool at_line = i == *pos || buf[i - 1] == '\n';
        if (at_line && memcmp(buf + i, marker, ml) == 0 && (i + ml == len || buf[i + ml] == '\n')) {
            *n = i > *pos ? i - 1 - *pos : 0;
            *pos = i + ml + 1;
            return true;
        }
    }
    *n = len - *pos;
    *pos = len;
    return true;
}

static int encode_texts(const hr_tokenizer *t, const char *buf, size_t len, const char *marker,
                        const hr_encode_params *p) {
    size_t pos = 0, start, n;
    for (int k = 0; next_text(buf, len, marker, &pos, &start, &n); k++) {
        int32_t *ids = NULL;
        size_t n_ids = 0;
        if (hr_tokenizer_encode(t, buf + start, n, p, &ids, &n_ids) != HR_OK)
            return cli_lib_error("cannot encode the text");
        for (size_t i = 0; i < n_ids; i++) printf(i ? " %d" : "%d", (int)ids[i]);
        putchar('\n');
        free(ids);
    }
    return CLI_OK;
}

/* Parses the whitespace-separated ids of one line. */
static int parse_ids(const char *s, size_t len, int32_t **ids, size_t *n) {
    *n = 0;
    *ids = malloc((len / 2 + 1) * sizeof **ids);
    if (!*ids) return cli_error("out of memory");
    for (size_t i = 0; i < len;) {
        if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r') {
            i++;
            continue;
        }
        char *end;
        errno = 0;
        long v = strtol(s + i, &end, 10);
        if (end == s + i || errno || v < INT32_MIN || v > INT32_MAX ||
            (end < s + len && *end != ' ' && *end != '\t' && *end != '\r'))
            return cli_error("'%.*s' is not a token id", (int)strcspn(s + i, " \t\r\n"), s + i);
        (*ids)[(*n)++] = (int32_t)v;
        i = (size_t)(end - s);
    }
    return CLI_OK;
}

static int decode_lines(const hr_tokenizer *t, const char *buf, size_t len, const char *marker) {
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        int32_t *ids = NULL;
        size_t n = 0;
        char *text = NULL;
        size_t tl = 0;
        int rc = parse_ids(buf + pos, end - pos, &ids, &n);
        if (rc == CLI_OK && hr_tokenizer_decode(t, ids, n, true, &text, &tl) != HR_OK)
            rc = cli_lib_error("cannot decode the ids");
        free(ids);
        if (rc != CLI_OK) return rc;
        fwrite(text, 1, tl, stdout);
        if (marker) printf("\n%s\n", marker); /* the layout --split reads */
        else putchar('\n');
        free(text);
        pos = end + 1;
    }
    return CLI_OK;
}

int cmd_tokenize(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&k_spec, argc, argv, &a) != CLI_OK) return CLI_FAIL;
    if (a.help) {
        cli_print_help(&k_spec);
        return CLI_OK;
    }
    const char *marker = cli_value(&k_spec, &a, "split");
    if (marker && (!*marker || strchr(marker, '\n'))) return cli_error("--split needs a one-line, non-empty marker");
    const char *file = cli_value(&k_spec, &a, "text"), *source = NULL, *arg = NULL;
    if (split_arguments(&a, cli_value(&k_spec, &a, "tokenizer"), file != NULL, &source, &arg) != CLI_OK)
        return CLI_FAIL;
    hr_tokenizer *t = NULL;
    if ((source ? open_tokenizer(source, &t) : open_default_tokenizer(&t)) != CLI_OK) return CLI_FAIL;
    char *buf = NULL;
    size_t len = 0;
    int rc = read_input(file, arg, &buf, &len);
    if (rc == CLI_OK) {
        if (cli_value(&k_spec, &a, "decode")) {
            rc = decode_lines(t, buf, len, marker);
        } else {
            hr_encode_params p = hr_encode_default_params();
            p.add_bos = cli_value(&k_spec, &a, "bos") != NULL;
            p.parse_special = cli_value(&k_spec, &a, "parse-special") != NULL;
            rc = encode_texts(t, buf, len, marker, &p);
        }
    }
    if (fflush(stdout) != 0 && rc == CLI_OK) rc = cli_error("cannot write the output");
    free(buf);
    hr_tokenizer_free(t);
    return rc;
}
