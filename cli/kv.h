/* The --kv options shared by generate, ppl and eval: a per-head KV-cache
 * plan from a plan file, or a DuoAttention-style mixed plan built from
 * head-lab scores (heads.json, read by the library's score table). */
#ifndef HR_CLI_KV_H
#define HR_CLI_KV_H

#include "common.h"
#include "headroom/kvcache.h"

#define CLI_KV_OPTIONS                                                                                                 \
    {"kv", 0, "PLAN", "per-head KV-cache plan file (default: every head keeps its full cache)"},                       \
        {"kv-from", 0, "HEADS.json", "mixed plan from head-lab scores: top heads full, the rest streaming"},           \
        {"kv-method", 0, "ID",                                                                                         \
         "with --kv-from: score ranking the heads (default streaming: least mass in sink+recent keeps full)"},         \
        {"retrieval-fraction", 0, "F", "with --kv-from: fraction of KV heads kept full (default 0.25)"},               \
        {"kv-sink", 0, "S", "with --kv-from: sink tokens of streaming heads (default 4)"},                             \
        {"kv-window", 0, "W", "with --kv-from: recent window of streaming heads (default 64)"},                        \
        {"kv-save", 0, "FILE", "write the KV plan used (plan file format)"}, {                                         \
        "verbose", 'v', NULL, "print the KV plan used, one line per layer (stderr)"                                    \
    }

/* Builds the plan the options ask for; *out = NULL when none was asked.
 * model_path names the model the plan is for (an input --kv-save must not
 * replace). Prints the error line and returns CLI_FAIL on bad input. */
int cli_kv_plan(const cli_spec *spec, const cli_args *a, const char *model_path, const hr_model *m, hr_kv_plan **out);

#endif
