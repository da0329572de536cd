/* Reading JSON documents headroom wrote (score tables, reports): nesting
 * bounded by HR_JSON_MAX_DEPTH before cJSON, which recurses, sees the text. */
#include "core/internal.h"
#include "core/limits.h"

#include <cjson/cJSON.h>

int hr_json_depth(const char *s, size_t n) {
    int depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max) max = depth;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return max;
}

hr_status hr_json_parse(const char *text, size_t len, const char *name, struct cJSON **out) {
    *out = NULL;
    int depth = hr_json_depth(text, len);
    if (depth > HR_JSON_MAX_DEPTH)
        return hr_err(HR_ERR_FORMAT, "%s nests %d levels deep (at most %d accepted)", name, depth, HR_JSON_MAX_DEPTH);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!j) {
        size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        return hr_err(HR_ERR_FORMAT, "%s is not valid JSON (error near byte %zu)", name, at);
    }
    *out = j;
    return HR_OK;
}
