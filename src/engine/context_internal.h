/* What library modules (the head lab) may use of a context beyond the
 * public API. */
#ifndef HR_CONTEXT_INTERNAL_H
#define HR_CONTEXT_INTERNAL_H

#include "headroom/context.h"
#include "engine/pool.h"

/* The context's thread pool, for work between forward passes (loss and KL
 * over logits). Borrowed; not to be used while a forward pass runs. */
hr_pool *hr_context_pool(const hr_context *ctx);

#endif
