#!/usr/bin/env bash
# `headroom convert --dtype q8_0` vs ggml's Q8_0 written from the
# specification in numpy (tests/reference/q8_0_ref.py): every block's bytes,
# the f16 fallback of rows that are not a multiple of 32, and headroom's
# logits of the written file vs the float64 PyTorch reference on the
# reference's dequantized weights. Needs Debian's python3-torch: a missing
# torch is a failure, not a skip.
set -euo pipefail
: "${HR_CLI:?}" "${HR_TOOLS_DIR:?}" "${HR_SOURCE_DIR:?}" "${HR_SHARED_DIR:?}"
. "$(dirname "$0")/python_prelude.sh"
need_python "torch numpy"
exec "$python" "$HR_SOURCE_DIR/tests/reference/check_q8_0_reference.py"
