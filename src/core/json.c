/* Guarded JSON parsing (core/json.h). */
#include "core/json.h"

#include "core/internal.h"
#include "core/limits.h"

#include <string.h>

/* Deepest nesting of s (n bytes), counting stops once past limit; *at is
 * the byte where the nesting first went past limit (n when it never did). */
static int scan_depth(const char *s, size_t n, int limit, size_t *at) {
    int depth = 0, max = 0;
    bool in_str = false;
    *at = n;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max) max = depth;
            if (max > limit) {
                *at = i;
                break;
            }
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return max;
}

int hr_json_depth(const char *text, size_t len, int limit) {
    size_t at;
    return scan_depth(text, len, limit, &at);
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

hr_status hr_json_parse(const char *text, size_t len, cJSON **root) {
    *root = NULL;
    if (!text) return hr_err(HR_ERR_INVALID_ARG, "no JSON text given");
    size_t at;
    if (scan_depth(text, len, HR_JSON_MAX_DEPTH, &at) > HR_JSON_MAX_DEPTH)
        return hr_err(HR_ERR_FORMAT, "JSON nests deeper than %d levels (at byte %zu)", HR_JSON_MAX_DEPTH, at);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!j) {
        at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        return hr_err(HR_ERR_FORMAT, "not valid JSON (malformed JSON near byte %zu)", at);
    }
    for (const char *p = end; p && p < text + len; p++)
        if (!is_space(*p)) {
            cJSON_Delete(j);
            return hr_err(HR_ERR_FORMAT, "not valid JSON (trailing bytes after the value at byte %zu)",
                          (size_t)(p - text));
        }
    *root = j;
    return HR_OK;
}

bool hr_jsonl_next(const char *text, size_t len, size_t *pos, int *line_no, size_t *a, size_t *b) {
    while (*pos < len) {
        const char *nl = memchr(text + *pos, '\n', len - *pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        ++*line_no;
        *a = *pos;
        *b = end;
        *pos = end + 1;
        while (*a < *b && (text[*a] == ' ' || text[*a] == '\t' || text[*a] == '\r')) ++*a;
        if (*a < *b) return true;
    }
    return false;
}
