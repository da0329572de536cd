/* GPT-2's byte-level alphabet and the pre-tokenizer split regexes.
 *
 * Byte-level BPE vocabularies store every piece as printable characters:
 * bytes 0x21..0x7E, 0xA1..0xAC and 0xAE..0xFF stand for themselves (as
 * code points), the other 68 bytes are given code points 256, 257, ... in
 * byte order (so ' ' is U+0120 'Ġ', '\n' is U+010A 'Ċ'). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/tok_internal.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

static bool byte_is_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

static unsigned byte_code_point(uint8_t b) {
    if (byte_is_printable(b)) return b;
    unsigned n = 0;
    for (unsigned i = 0; i < b; i++) n += !byte_is_printable(i);
    return 256 + n;
}

size_t tok_byte_char(uint8_t b, char out[2]) {
    unsigned cp = byte_code_point(b);
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* Code point -> byte for the 324 code points the alphabet uses; -1 else.
 * Computed, not tabulated lazily, so that it needs no shared state. */
static int code_point_byte(unsigned cp) {
    if (cp < 256) return byte_is_printable(cp) ? (int)cp : -1;
    unsigned want = cp - 256, n = 0;
    for (unsigned b = 0; b < 256; b++)
        if (!byte_is_printable(b) && n++ == want) return (int)b;
    return -1;
}

long tok_byte_unmap(const char *s, size_t len, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        uint8_t c = (uint8_t)s[i];
        unsigned cp;
        if (c < 0x80) {
            cp = c;
            i += 1;
        } else if ((c & 0xE0) == 0xC0 && i + 1 < len && ((uint8_t)s[i + 1] & 0xC0) == 0x80) {
            cp = (unsigned)(c & 0x1F) << 6 | ((uint8_t)s[i + 1] & 0x3F);
            i += 2;
        } else {
            return -1; /* 3- and 4-byte characters are outside the alphabet */
        }
        int b = code_point_byte(cp);
        if (b < 0) return -1;
        out[o++] = (char)b;
    }
    return (long)o;
}

/* The regexes of the Hugging Face tokenizer.json files (and llama.cpp's
 * tokenizer.ggml.pre names for them). The case-insensitive contractions
 * are spelled out as [sS] etc., as llama.cpp does, so that Unicode case
 * folding (e.g. U+017F matching 's') cannot differ between engines. */
#define CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"

static const struct {
    const char *name;
    const char *regex;
} k_pre[] = {
    {"gpt-2", "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"},
    {"llama-bpe", CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
                               "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {"qwen2", CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
                           "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
};

/* Other names llama.cpp gives the same three regexes. */
static const struct {
    const char *alias, *name;
} k_alias[] = {
    {"gpt2", "gpt-2"},          {"mpt", "gpt-2"},
    {"olmo", "gpt-2"},          {"jais", "gpt-2"},
    {"llama3", "llama-bpe"},    {"dbrx", "llama-bpe"},
    {"smaug-bpe", "llama-bpe"}, {"qwen2.5", "qwen2"},
    {"qwen-2.5", "qwen2"},      {"deepseek-r1-qwen", "qwen2"},
    {"stablelm2", "qwen2"},
};

const char *tok_pre_regex(const char *name, size_t len) {
    for (size_t i = 0; i < sizeof k_alias / sizeof k_alias[0]; i++)
        if (strlen(k_alias[i].alias) == len && memcmp(name, k_alias[i].alias, len) == 0) {
            name = k_alias[i].name;
            len = strlen(name);
            break;
        }
    for (size_t i = 0; i < sizeof k_pre / sizeof k_pre[0]; i++)
        if (strlen(k_pre[i].name) == len && memcmp(name, k_pre[i].name, len) == 0) return k_pre[i].regex;
    return NULL;
}

/* Hugging Face's spelling of the contractions (tokenizer.json files of
 * Llama 3 and Qwen2 use it); the rest of those regexes is identical. */
#define HF_CONTRACTIONS "(?i:'s|'t|'re|'ve|'m|'ll|'d)"

const char *tok_pre_name_of(const char *pattern, size_t len) {
    static const size_t ours = sizeof CONTRACTIONS - 1, hf = sizeof HF_CONTRACTIONS - 1;
    for (size_t i = 0; i < sizeof k_pre / sizeof k_pre[0]; i++) {
        const char *re = k_pre[i].regex;
        size_t rl = strlen(re);
        if (rl == len && memcmp(re, pattern, len) == 0) return k_pre[i].name;
        bool contr = rl >= ours && memcmp(re, CONTRACTIONS, ours) == 0;
        if (contr && len >= hf && memcmp(pattern, HF_CONTRACTIONS, hf) == 0 && len - hf == rl - ours &&
            memcmp(pattern + hf, re + ours, rl - ours) == 0)
            return k_pre[i].name;
    }
    return NULL;
}

hr_status tok_set_pre_regex(hr_tokenizer *t, const char *pattern, size_t len) {
    int code;
    PCRE2_SIZE at;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_UTF | PCRE2_UCP, &code, &at, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof msg);
        return hr_err(HR_ERR_FORMAT, "pre-tokenizer regex does not compile at offset %zu: %s", (size_t)at,
                      (const char *)msg);
    }
    /* JIT is only a speed-up: the interpreter gives the same matches */
    if (pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) != 0)
        hr_log(HR_LOG_DEBUG, "tokenizer: PCRE2 JIT unavailable, using the interpreter");
    char *text = malloc(len + 1);
    if (!text) {
        pcre2_code_free(re);
        return hr_err(HR_ERR_NOMEM, "out of memory");
    }
    memcpy(text, pattern, len);
    text[len] = 0;
    if (t->pre_re) pcre2_code_free(t->pre_re);
    free(t->pre_pattern);
    t->pre_re = re;
    t->pre_pattern = text;
    t->pre_name = tok_pre_name_of(pattern, len);
    return HR_OK;
}
