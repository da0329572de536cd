#!/usr/bin/env bash
# prune / gqa / finetune / quantize write the input model's dtype (bf16,
# f16, Q8_0) unless --dtype says otherwise: every tensor's type and bytes
# against an independent rounding of the f32 pruned weights (torch bf16,
# numpy f16, tests/reference/q8_0_ref.py's Q8_0), and headroom's logits
# against the float64 PyTorch reference on those weights
# (tests/reference/check_writers_keep_dtype.py). Needs Debian's
# python3-torch: a missing torch is a failure, not a skip.
set -euo pipefail
: "${HR_CLI:?}" "${HR_TOOLS_DIR:?}" "${HR_SOURCE_DIR:?}" "${HR_SHARED_DIR:?}"
python=/usr/bin/python3
if ! "$python" -c 'import torch, numpy' 2>/dev/null; then
    echo "test_writers_keep_dtype: $python cannot import torch/numpy (apt install python3-torch python3-numpy)" >&2
    exit 1
fi
exec "$python" "$HR_SOURCE_DIR/tests/reference/check_writers_keep_dtype.py"
