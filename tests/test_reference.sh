#!/usr/bin/env bash
# headroom's logits vs the independent PyTorch reference (tests/reference/).
# Env (set by ctest): HR_TOOLS_DIR (hr_logits, hr_make_random), HR_SHARED_DIR,
# HR_SOURCE_DIR. Needs Debian's python3-torch (installed by the setup script):
# a missing torch is a failure, not a skip, so the check cannot silently vanish.
set -euo pipefail
: "${HR_TOOLS_DIR:?}" "${HR_SHARED_DIR:?}" "${HR_SOURCE_DIR:?}"
. "$(dirname "$0")/cli_prelude.sh" "$HR_SHARED_DIR/models/stories260K/stories260K.gguf"
. "$(dirname "$0")/python_prelude.sh"
need_python "torch numpy"
"$python" "$HR_SOURCE_DIR/tests/reference/check_reference.py" # not exec: the prelude's trap removes $T
