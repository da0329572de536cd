/* Circuits internals: prompt pairs, the parsed path / knockout
 * specifications, and the per-pair run caches the sweeps reuse. */
#ifndef HR_CIRCUITS_INTERNAL_H
#define HR_CIRCUITS_INTERNAL_H

#include "headroom/circuits.h"
#include "core/internal.h"
#include "model/model_internal.h"

#include <stdint.h>

typedef struct {
    int32_t *clean, *corrupt; /* (n) each */
    int n;
    int32_t answer, wrong;
    int answer_tokens, wrong_tokens;
    int line;
} pair_rec;

struct hr_pairs {
    pair_rec *p; /* (cap) */
    int n, cap;
};

/* Tokens of `answer` as a continuation of prompt (plen bytes; NULL = no
 * prompt): the tokens of prompt + answer after the prompt's own when those
 * are a prefix, else the answer's own tokens (no BOS). *ids owned: free(). */
hr_status hr_circ_answer_tokens(const hr_tokenizer *tok, const char *prompt, size_t plen, const char *answer,
                                int32_t **ids, size_t *n);

/* ---- specifications ---- */

typedef enum { RECV_Q = 0, RECV_K = 1, RECV_V = 2, RECV_MLP = 3 } recv_kind;

typedef struct {
    recv_kind kind;
    int layer;
    int head; /* query head (Q), KV head (K, V); -1 for MLP */
} receiver;

typedef struct {
    bool all_senders; /* "*": each head on its own */
    uint8_t *senders; /* (n_layers, max_heads) the listed heads */
    int first_sender; /* lowest sender layer (list) */
    bool logits;      /* receiver "logits" */
    receiver *recv;   /* (n_recv) */
    int n_recv;
    int first_recv, last_recv; /* layers */
} path_spec;

/* One position set: "*" or items of single positions / ranges, negative
 * counting from the end. */
typedef struct {
    bool all;
    int n;
    int lo[64], hi[64];
} pos_set;

typedef struct {
    bool all_heads;
    uint8_t *heads; /* (n_layers, max_heads) */
    int first_layer;
    pos_set queries, keys;
} knock_spec;

hr_status hr_circ_parse_path(const hr_config *c, const char *spec, path_spec *out);
void hr_circ_path_free(path_spec *p);
/* Whether sender head layer ls has a path to every receiver. */
bool hr_circ_path_reaches(const path_spec *p, int ls);
hr_status hr_circ_parse_knockout(const hr_config *c, const char *spec, knock_spec *out);
void hr_circ_knockout_free(knock_spec *k);
/* Whether position p of a prompt of n tokens is in the set. */
bool hr_circ_pos_in(const pos_set *s, int p, int n);

#endif
