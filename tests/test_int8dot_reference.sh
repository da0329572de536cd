#!/usr/bin/env bash
# The int8 dot (Q8_0 weights, activations quantized per 32-block) vs numpy's
# float64 computation of its definition (tests/reference/
# check_int8dot_reference.py): <= 1e-5 relative, GEMV and GEMM shapes, with
# VPDPBUSD and emulated. Needs Debian's python3-numpy: a missing numpy is a
# failure, not a skip.
set -euo pipefail
: "${HR_TOOLS_DIR:?}" "${HR_SOURCE_DIR:?}"
. "$(dirname "$0")/python_prelude.sh"
need_python "numpy"
exec "$python" "$HR_SOURCE_DIR/tests/reference/check_int8dot_reference.py"
