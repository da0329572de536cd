/* headroom — the score table: per-head scores of one or more head-lab
 * methods and per-layer metrics, for one model shape. The one reader of
 * heads.json and layers.json: pruning, KV plans and every later study take
 * their scores from here.
 *
 * A table is built from a head-lab result (hr_scores_from_heads) or read
 * from the files `headroom heads` writes (hr_scores_read_heads /
 * hr_scores_read_layers). Files are checked before anything is used:
 *  - "format" must be "headroom.heads" / "headroom.layers" and
 *    "format_version" 1 (files without them were written by an older
 *    headroom: rerun `headroom heads`);
 *  - the shape (layers, query heads and KV heads per layer, head_dim) must
 *    be the model's;
 *  - every (layer, head) must have exactly one record (missing heads are
 *    listed, duplicates named), every score must be a number or null, and
 *    every score key must be a method listed in "methods";
 *  - nesting deeper than HR_JSON_MAX_DEPTH is refused before parsing.
 * Each failure is HR_ERR_FORMAT (HR_ERR_INVALID_ARG for a shape mismatch)
 * with a message naming the file and what is wrong, e.g.
 *   "lab/heads.json: 30 of 40 heads present; missing 2.0, 2.1, ...".
 * A null score (a method the lab skipped, a metric not computed) is refused
 * only when that method is asked for: "lab/heads.json: head 3.5 has no
 * score for 'ablation' (null)".
 *
 * Orientation. Each method's "higher" field says what a high score means:
 *   "more important"  -> HR_SCORE_IMPORTANCE   (keep order = the score)
 *   "more harmless"   -> HR_SCORE_HARMLESSNESS (keep order = -score)
 *   "more <trait>"    -> HR_SCORE_TRAIT        (keep order = the score; a
 *                        trait says what a head does, not whether it
 *                        matters: invert explicitly when low = keep)
 *   "prune first ..." -> HR_SCORE_STEERING     (keep order = -score: heads
 *                        whose removal steers the model, e.g. PH3's memory
 *                        or context heads (hr_patch_ph3_json); pruning
 *                        removes the highest first, hr_scores_top_heads
 *                        names the highest)
 * so callers ask for the keep order (higher = keep) without knowing the
 * method.
 */
#ifndef HEADROOM_SCORES_H
#define HEADROOM_SCORES_H

#include "headroom/common.h"
#include "headroom/heads.h"
#include "headroom/kvcache.h"
#include "headroom/model.h"
#include "headroom/tokenizer.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hr_scores hr_scores;

typedef enum {
    HR_SCORE_IMPORTANCE = 0,
    HR_SCORE_HARMLESSNESS = 1,
    HR_SCORE_TRAIT = 2,
    HR_SCORE_STEERING = 3
} hr_score_kind;

/* "importance" | "harmlessness" | "trait" | "steering". */
HR_API const char *hr_score_kind_name(hr_score_kind k);

/* An empty table for c's shape. *out owned by caller: hr_scores_free(). */
HR_API hr_status hr_scores_new(const hr_config *c, hr_scores **out);
HR_API void hr_scores_free(hr_scores *s); /* NULL ok */

/* Every method the result holds (run, or skipped with a note) and every
 * layer metric. The result must be of c's shape. *out owned by caller. */
HR_API hr_status hr_scores_from_heads(const hr_heads_result *r, const hr_config *c, hr_scores **out);

/* The head lab run on the fly for one method, as a table: what `headroom
 * heads --methods METHOD` writes and hr_scores_read_heads reads, without
 * the file. The calibration tokens come from text (tokenized without BOS;
 * every window starts with tok's BOS, as `heads` does); the other settings
 * from p (NULL = hr_heads_default_params(): the same defaults as `heads`;
 * p's tokens, n_tokens, bos and tok are ignored). An unknown method is
 * HR_ERR_INVALID_ARG; the lab's errors (e.g. a text shorter than one
 * window) as hr_heads_run gives them. n_threads 0 = all cores. *out owned
 * by caller: hr_scores_free(). */
HR_API hr_status hr_scores_compute(const hr_model *m, const hr_tokenizer *tok, const char *text, size_t len,
                                   const hr_heads_params *p, const char *method, int n_threads, hr_scores **out);

/* Reads heads.json / layers.json into s (checked as above); a second file
 * of the same kind is HR_ERR_INVALID_ARG. On failure s is unchanged. */
HR_API hr_status hr_scores_read_heads(hr_scores *s, const char *path);
HR_API hr_status hr_scores_read_layers(hr_scores *s, const char *path);
/* The same from text; name labels messages. */
HR_API hr_status hr_scores_parse_heads(hr_scores *s, const char *json, size_t len, const char *name);
HR_API hr_status hr_scores_parse_layers(hr_scores *s, const char *json, size_t len, const char *name);

/* Where the head scores / layer metrics came from: the file name, "head-lab
 * result", or "" when none. Borrowed. */
HR_API const char *hr_scores_heads_source(const hr_scores *s);
HR_API const char *hr_scores_layers_source(const hr_scores *s);

HR_API int hr_scores_n_methods(const hr_scores *s);
HR_API const char *hr_scores_method_id(const hr_scores *s, int i);     /* NULL when out of range */
HR_API const char *hr_scores_method_higher(const hr_scores *s, int i); /* the file's "higher" text */
HR_API hr_score_kind hr_scores_method_kind(const hr_scores *s, int i);
HR_API int hr_scores_method_index(const hr_scores *s, const char *id); /* -1 when absent */
/* Score of (layer, head) by method i as stored; NaN when null or absent. */
HR_API double hr_scores_head(const hr_scores *s, int i, int layer, int head);

/* Keep order of `method` for every head: out (n_layers × max_heads,
 * row-major) receives the score oriented by the method's kind (see above),
 * negated once more when invert; entries beyond a layer's heads are NaN.
 * An absent method is HR_ERR_NOT_FOUND listing the methods present; a null
 * score of any head is HR_ERR_FORMAT naming the head. */
HR_API hr_status hr_scores_keep_order(const hr_scores *s, const char *method, bool invert, float *out);

/* The k heads `method` ranks first in its keep order (the most important,
 * or the most of a trait such as retrieval; for a steering score the
 * highest scores, the heads to remove), as a head list "L.H,L.H,..."
 * for hr_head_mask_params.mask_heads, best first (ties: the lower layer,
 * then head). k outside 1 .. the heads scored is HR_ERR_RANGE; errors of
 * hr_scores_keep_order as there. *out owned by caller: hr_free(). */
HR_API hr_status hr_scores_top_heads(const hr_scores *s, const char *method, int k, char **out);

HR_API int hr_scores_n_layer_metrics(const hr_scores *s);
HR_API const char *hr_scores_layer_metric_id(const hr_scores *s, int i);
/* Layer metric `metric` of every layer into out (n_layers); absent is
 * HR_ERR_NOT_FOUND, a null value HR_ERR_FORMAT naming the layer. */
HR_API hr_status hr_scores_layer_metric(const hr_scores *s, const char *metric, float *out);

/* DuoAttention-style mixed KV plan from the scores of `method` (NULL =
 * "streaming"): the fraction of KV heads whose query heads rank highest in
 * "needs a full cache" order stay full, the rest get `rest`
 * (hr_kv_plan_from_scores). The order is the keep order, except that the
 * traits "streaming" and "sink" (attention mass on sink + recent tokens)
 * count inverted, as 1 - score: a head that reads beyond them needs its full
 * cache. c must be the table's shape. *out owned: hr_kv_plan_free(). */
HR_API hr_status hr_scores_kv_plan(const hr_scores *s, const hr_config *c, const char *method, float fraction,
                                   hr_kv_policy rest, hr_kv_plan **out);

#ifdef __cplusplus
}
#endif
#endif
