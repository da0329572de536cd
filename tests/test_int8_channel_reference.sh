#!/usr/bin/env bash
# Per-channel int8 (compressed-tensors) on stories260K end to end: the HF
# writer's quantization vs numpy's, logits vs float64 PyTorch on the
# dequantized weights and vs the f32 GGUF of the same weights (bit for
# bit), HF -> HF byte-identical, and a pruned int8 folder cut from the
# original rows / columns with their scales (tests/reference/
# check_int8_channel.py). Needs Debian's python3-torch and numpy: missing
# ones are a failure, not a skip.
set -euo pipefail
: "${HR_CLI:?}" "${HR_TOOLS_DIR:?}" "${HR_SOURCE_DIR:?}" "${HR_SHARED_DIR:?}"
. "$(dirname "$0")/python_prelude.sh"
need_python "torch numpy"
exec "$python" "$HR_SOURCE_DIR/tests/reference/check_int8_channel.py"
