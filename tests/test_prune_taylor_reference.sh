#!/usr/bin/env bash
# `headroom prune --mlp 25% --by taylor` removes the same MLP neurons as a
# float64 PyTorch autograd computation of the first-order Taylor scores on
# the same calibration windows, on a random GQA model and stories260K
# (tests/reference/check_prune_taylor.py). Needs Debian's python3-torch: a
# missing torch is a failure, not a skip.
set -euo pipefail
: "${HR_CLI:?}" "${HR_TOOLS_DIR:?}" "${HR_SHARED_DIR:?}" "${HR_SOURCE_DIR:?}"
python=/usr/bin/python3
if ! "$python" -c 'import torch, numpy' 2>/dev/null; then
    echo "test_prune_taylor_reference: $python cannot import torch/numpy (apt install python3-torch python3-numpy)" >&2
    exit 1
fi
exec "$python" "$HR_SOURCE_DIR/tests/reference/check_prune_taylor.py"
