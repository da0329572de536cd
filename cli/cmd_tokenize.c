/* headroom tokenize: text -> ids (one line of ids per text) and, with
 * --decode, ids -> text. */
#include "commands.h"
#include "common.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt k_opts[] = {
    {"text", 't', "FILE", "read the input from FILE (default: the TEXT argument, else standard input)"},
    {"split", 's', "MARKER", "the input holds several texts, separated by lines that are exactly MARKER"},
    {"decode", 'd', NULL, "read ids (whitespace-separated, one text per line) and print their text"},
    {"bos", 0, NULL, "prepend the BOS id (default: no BOS, as llama.cpp's tokenizer tests)"},
    {"parse-special", 0, NULL, "recognise special-token text such as <|endoftext|> (default: plain text)"},
};

static const cli_spec k_spec = {
    .name = "tokenize",
    .usage = "MODEL|TOKENIZER_FILE|DIR [TEXT] [options]",
    .summary = "Prints the token ids of a text, space-separated on one line (one line per text with\n"
               "--split). The tokenizer is a tokenizer file (llama2.c .bin, GGUF, tokenizer.json,\n"
               "encoder.json / vocab.bpe), a directory holding one, or a model whose tokenizer is\n"
               "found as 'generate' finds it. With --decode, reads ids and prints the text.",
    .opts = k_opts,
    .n_opts = sizeof k_opts / sizeof k_opts[0],
    .example = "  headroom tokenize ../shared/data/tokenizers/gpt2 \"Hello world\"\n"
               "  headroom tokenize ../shared/models/gguf-vocab/ggml-vocab-gpt-2.gguf \\\n"
               "      --text ../shared/data/tokenizer-vectors/ggml-vocab-gpt-2.gguf.inp --split __ggml_vocab_test__",
    .max_positional = 2,
};

/* The path itself when it is a tokenizer, else the one found for it as a
 * model (e.g. tok512.bin beside a llama2.c checkpoint). */
static int open_tokenizer(const char *path, hr_tokenizer **t) {
    if (hr_tokenizer_load(path, t) == HR_OK) return CLI_OK;
    char first[1024], found[PATH_MAX + 256];
    snprintf(first, sizeof first, "%s", hr_last_error());
    if (hr_tokenizer_find_for_model(path, NULL, found, sizeof found) == HR_OK && strcmp(found, path) != 0) {
        if (hr_tokenizer_load(found, t) == HR_OK) return CLI_OK;
        return cli_lib_error("cannot load the tokenizer");
    }
    return cli_error("%s", first);
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

static int read_input(const cli_spec *spec, const cli_args *a, char **text, size_t *len) {
    const char *file = cli_value(spec, a, "text");
    if (file && a->n_positional > 1) return cli_error("give either --text FILE or a TEXT argument, not both");
    if (file) return cli_read_text(file, text, len);
    if (a->n_positional > 1) {
        *len = strlen(a->positional[1]);
        *text = malloc(*len + 1);
        if (!*text) return cli_error("out of memory");
        memcpy(*text, a->positional[1], *len + 1);
        return CLI_OK;
    }
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
        if (end == s + i || errno || v < INT32_MIN || v > INT32_MAX || (end < s + len && *end != ' ' && *end != '\t' && *end != '\r'))
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
    if (a.n_positional < 1) return cli_error("no tokenizer given (see 'headroom tokenize --help')");
    const char *marker = cli_value(&k_spec, &a, "split");
    if (marker && (!*marker || strchr(marker, '\n'))) return cli_error("--split needs a one-line, non-empty marker");
    hr_tokenizer *t = NULL;
    if (open_tokenizer(a.positional[0], &t) != CLI_OK) return CLI_FAIL;
    char *buf = NULL;
    size_t len = 0;
    int rc = read_input(&k_spec, &a, &buf, &len);
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
