#!/usr/bin/env bash
# The Python package (python/headroom) over this build's libheadroom.so:
# runs its pytest suite (python/tests) with Debian's /usr/bin/python3 —
# logits, caches and hooks against the C library and the PyTorch reference,
# the studies against the CLI's JSON, errors and misuse, memory growth,
# installation with pip (--target and a venv), the example script.
# pytest or the library missing fails in CI (CI=true) and skips locally
# (exit 77), never a silent pass. In the ASan leg the library is
# instrumented: Python runs with the sanitizer runtime preloaded (leak
# detection off: CPython keeps objects at exit by design), so a memory error
# in C under any Python test fails it; the install and memory-growth tests
# are skipped there (an ASan library loads only with the runtime preloaded;
# ASan's quarantine makes RSS meaningless).
set -u
. "$(dirname "$0")/cli_prelude.sh"
: "${HR_BINARY_DIR:?}" "${HR_SOURCE_DIR:?}"

missing() {
  case "${CI:-}" in
    "" | false | 0) echo "SKIP: $1"; exit 77 ;;
    *) echo "FAIL: $1 (CI=$CI: required)"; exit 1 ;;
  esac
}
py=/usr/bin/python3
[ -x "$py" ] || missing "$py is missing (Debian: python3)"
"$py" -c "import pytest, numpy" 2>/dev/null || missing "pytest or numpy is missing for $py (scripts/setup.sh --tests)"
lib="$HR_BINARY_DIR/libheadroom.so"
[ -f "$lib" ] || missing "$lib is missing (build the headroom_shared target)"

export HEADROOM_LIB="$lib" PYTHONDONTWRITEBYTECODE=1
preload=()
if [ "${HR_SANITIZE:-OFF}" = ON ]; then
  preload=(env "LD_PRELOAD=$(${HR_CC:-cc} -print-file-name=libasan.so) $(${HR_CC:-cc} -print-file-name=libubsan.so)"
           "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1" "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1")
fi
cd "$HR_SOURCE_DIR/python" || exit 1
"${preload[@]}" "$py" -m pytest -q -s -p no:cacheprovider --basetemp="$T/pytest" tests
