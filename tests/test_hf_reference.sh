#!/usr/bin/env bash
# headroom's logits on random-weight Hugging Face folders (GPT-2, Qwen2,
# Llama + GQA + llama3 RoPE) vs independent PyTorch references, directly and
# after HF -> GGUF -> HF conversion. Needs Debian's python3-torch: a missing
# torch is a failure, not a skip.
set -euo pipefail
: "${HR_CLI:?}" "${HR_TOOLS_DIR:?}" "${HR_SOURCE_DIR:?}"
. "$(dirname "$0")/python_prelude.sh"
need_python "torch numpy"
exec "$python" "$HR_SOURCE_DIR/tests/reference/check_hf_reference.py"
