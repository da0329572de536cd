#!/usr/bin/env bash
# headroom's gradients (every weight, head and neuron gates, LoRA adapters,
# input embeddings) and gradient head scores vs float64 PyTorch autograd on
# stories260K and random models of every architecture
# (tests/reference/check_grad_reference.py). Needs Debian's python3-torch:
# a missing torch is a failure, not a skip.
set -euo pipefail
: "${HR_TOOLS_DIR:?}" "${HR_SHARED_DIR:?}" "${HR_SOURCE_DIR:?}"
. "$(dirname "$0")/python_prelude.sh"
need_python "torch numpy"
exec "$python" "$HR_SOURCE_DIR/tests/reference/check_grad_reference.py"
