#!/usr/bin/env bash
# headroom's training loop (AdamW, warm-up + cosine, clipping, accumulation,
# --only parts) vs float64 PyTorch (tests/reference/check_train_reference.py)
# on stories260K and a random GQA model. Needs Debian's python3-torch: a
# missing torch is a failure, not a skip.
set -euo pipefail
: "${HR_TOOLS_DIR:?}" "${HR_SHARED_DIR:?}" "${HR_SOURCE_DIR:?}"
. "$(dirname "$0")/python_prelude.sh"
need_python "torch numpy"
exec "$python" "$HR_SOURCE_DIR/tests/reference/check_train_reference.py"
