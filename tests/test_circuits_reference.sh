#!/usr/bin/env bash
# headroom patch (activation / path patching, knockout, DLA, logit lens) vs
# the independent PyTorch reference tests/reference/circuits_ref.py on
# random-weight GPT-2, Qwen2 and Llama (GQA) folders, tolerance 1e-4. Needs
# Debian's python3-torch: a missing torch is a failure, not a skip.
set -euo pipefail
: "${HR_CLI:?}" "${HR_SOURCE_DIR:?}"
. "$(dirname "$0")/python_prelude.sh"
need_python "torch numpy"
exec "$python" "$HR_SOURCE_DIR/tests/reference/check_circuits_reference.py"
