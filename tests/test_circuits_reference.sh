#!/usr/bin/env bash
# headroom patch (activation / path patching, knockout, DLA, logit lens) vs
# the independent PyTorch reference tests/reference/circuits_ref.py on
# random-weight GPT-2, Qwen2 and Llama (GQA) folders, tolerance 1e-4. Needs
# Debian's python3-torch: a missing torch is a failure, not a skip.
set -euo pipefail
: "${HR_CLI:?}" "${HR_SOURCE_DIR:?}"
python=/usr/bin/python3
if ! "$python" -c 'import torch, numpy' 2>/dev/null; then
    echo "test_circuits_reference: $python cannot import torch/numpy (apt install python3-torch python3-numpy)" >&2
    exit 1
fi
exec "$python" "$HR_SOURCE_DIR/tests/reference/check_circuits_reference.py"
