/* Parsing JSON that comes from outside (internal): the one guarded entry
 * to cJSON for config.json, tokenizer.json, safetensors headers, index
 * files, task files and the library's own reports read back.
 *
 * cJSON recurses once per nesting level, so a hostile file of a million
 * '[' would exhaust the stack; the text's nesting is counted first and
 * anything deeper than HR_JSON_MAX_DEPTH (core/limits.h) is refused before
 * cJSON sees it. Only whitespace may follow the value. */
#ifndef HR_CORE_JSON_H
#define HR_CORE_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "headroom/common.h"

/* Deepest {/[ nesting of text (len bytes), brackets inside strings not
 * counted; counting stops once past limit. */
int hr_json_depth(const char *text, size_t len, int limit);

/* Parses len bytes of text into *root (owned: cJSON_Delete). Errors, with
 * *root NULL: HR_ERR_FORMAT "JSON nests deeper than N levels (at byte B)",
 * "not valid JSON (malformed JSON near byte B)", "not valid JSON
 * (trailing bytes after the value at byte B)". Callers prefix the document's name (hr_err_prefix). */
hr_status hr_json_parse(const char *text, size_t len, cJSON **root);

/* JSONL: the next non-blank line of text[0..len) at or after *pos. Returns
 * false at the end; else [*a, *b) is the line without leading blanks and
 * its newline, *line_no its 1-based number (counting blank lines), and *pos
 * moves past it. Start with *pos = 0, *line_no = 0. */
bool hr_jsonl_next(const char *text, size_t len, size_t *pos, int *line_no, size_t *a, size_t *b);

#endif
