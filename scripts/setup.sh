#!/usr/bin/env bash
# Installs the Debian packages headroom needs, only those missing, quietly.
#
#   scripts/setup.sh           what the build and the main job need
#                              (scripts/demo.sh): compiler, CMake, pkg-config,
#                              cJSON, PCRE2, libpng, zlib, OpenBLAS
#   scripts/setup.sh --tests   also what the tests need (scripts/test.sh):
#                              python3-torch + numpy (references), pytest,
#                              pip, setuptools, wheel and venv (the Python
#                              package: tests/test_python.sh), chromium
#                              (report in a browser), clang + its runtime
#                              (fuzzing), clang-format (tests/test_format.sh)
#
# When everything is installed it does nothing and needs no root. Otherwise
# it runs apt-get as root (directly, or through sudo); apt's output goes to
# a log file, printed only when apt fails.
set -euo pipefail
build=(build-essential cmake pkg-config libcjson-dev libpcre2-dev libpng-dev zlib1g-dev libopenblas-dev)
tests=(python3 python3-torch python3-numpy python3-pytest python3-pip python3-setuptools python3-wheel python3-venv
       chromium clang libclang-rt-14-dev clang-format)
case "${1:-}" in
  "") pkgs=("${build[@]}") ;;
  --tests) pkgs=("${build[@]}" "${tests[@]}") ;;
  *) echo "usage: scripts/setup.sh [--tests]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "setup: missing Debian packages: ${missing[*]}" >&2
  echo "setup: install them as root: apt-get install ${missing[*]}" >&2
  exit 1
fi
log=${TMPDIR:-/tmp}/headroom-setup.log
echo "setup: installing ${missing[*]} (apt log: $log)" >&2
if ! { "${as_root[@]}" apt-get update &&
       "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"; } \
     >"$log" 2>&1; then
  echo "setup: apt-get failed; its output:" >&2
  cat "$log" >&2
  exit 1
fi
