/* Limits of what headroom accepts: the one home of every size bound.
 *
 * They lie far above any real model but low enough that every product of
 * them used for sizes fits in 64 bits without overflow. Loaders reject
 * files beyond them (hr_config_validate); internal tables use
 * HR_MAX_LAYERS as their fixed length. */
#ifndef HR_CORE_LIMITS_H
#define HR_CORE_LIMITS_H

#ifndef HR_MAX_LAYERS
#define HR_MAX_LAYERS 256 /* transformer blocks */
#endif

enum {
    HR_MAX_DIM = 1 << 16,      /* residual width */
    HR_MAX_HEADS = 1 << 10,    /* query or KV heads of one layer */
    HR_MAX_HEAD_DIM = 1 << 10, /* size of one head */
    HR_MAX_FF = 1 << 18,       /* MLP hidden size of one layer */
    HR_MAX_VOCAB = 1 << 22,    /* vocabulary */
    HR_MAX_SEQ = 1 << 22,      /* context length */
    HR_JSON_MAX_DEPTH = 64     /* nesting accepted in any JSON document read */
};

#endif
