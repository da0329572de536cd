#!/usr/bin/env bash
# `headroom prune --mlp 25% --by taylor` removes the same MLP neurons as a
# float64 PyTorch autograd computation of the first-order Taylor scores on
# the same calibration windows, on a random GQA model and stories260K
# (tests/reference/check_prune_taylor.py). Needs Debian's python3-torch: a
# missing torch is a failure, not a skip.
set -euo pipefail
: "${HR_CLI:?}" "${HR_TOOLS_DIR:?}" "${HR_SHARED_DIR:?}" "${HR_SOURCE_DIR:?}"
. "$(dirname "$0")/python_prelude.sh"
need_python "torch numpy"
exec "$python" "$HR_SOURCE_DIR/tests/reference/check_prune_taylor.py"
