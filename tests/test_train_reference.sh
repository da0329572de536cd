#!/usr/bin/env bash
# headroom's training loop (AdamW, warm-up + cosine, clipping, accumulation,
# --only parts) vs float64 PyTorch (tests/reference/check_train_reference.py)
# on stories260K and a random GQA model. Needs Debian's python3-torch: a
# missing torch is a failure, not a skip.
set -euo pipefail
: "${HR_TOOLS_DIR:?}" "${HR_SHARED_DIR:?}" "${HR_SOURCE_DIR:?}"
python=/usr/bin/python3
if ! "$python" -c 'import torch, numpy' 2>/dev/null; then
    echo "test_train_reference: $python cannot import torch/numpy (apt install python3-torch python3-numpy)" >&2
    exit 1
fi
exec "$python" "$HR_SOURCE_DIR/tests/reference/check_train_reference.py"
