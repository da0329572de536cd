#!/usr/bin/env bash
# Head-lab scores of ten methods (confidence, distance, entropy, influence,
# pattern, streaming, amp, duplicate, retrieval, fdtm) vs an independent
# PyTorch reference written from each method's definition
# (tests/reference/heads_ref.py), on stories260K, a random GQA model and a
# planted model with a known copy head and duplicate-token head; the inputs
# headroom drew with its seeded generator are recorded by
# tests/tools/hr_heads_dump. Needs Debian's python3-torch: a missing torch is
# a failure, not a skip.
set -euo pipefail
: "${HR_CLI:?}" "${HR_TOOLS_DIR:?}" "${HR_SHARED_DIR:?}" "${HR_SOURCE_DIR:?}"
. "$(dirname "$0")/python_prelude.sh"
need_python "torch numpy"
exec "$python" "$HR_SOURCE_DIR/tests/reference/check_heads_reference.py"
