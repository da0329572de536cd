/* headroom — everything: include this one header to use the whole library.
 * Each module's header can also be included alone (see docs/ARCHITECTURE.md). */
#ifndef HEADROOM_H
#define HEADROOM_H

#include "headroom/common.h"
#include "headroom/gguf.h"
#include "headroom/safetensors.h"
#include "headroom/tokenizer.h"
#include "headroom/model.h"
#include "headroom/save.h"
#include "headroom/context.h"
#include "headroom/kvcache.h"
#include "headroom/sample.h"
#include "headroom/study.h"
#include "headroom/grad.h"
#include "headroom/heads.h"
#include "headroom/scores.h"
#include "headroom/prune.h"
#include "headroom/gqa.h"
#include "headroom/evaluate.h"
#include "headroom/circuits.h"
#include "headroom/train.h"
#include "headroom/quantize.h"
#include "headroom/report.h"

#endif
