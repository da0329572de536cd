#!/usr/bin/env bash
# Sets up, builds and runs every test: the Release build, then the same
# suite under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)
for cfg in release asan; do
  if [ "$cfg" = release ]; then dir=build; flags=(-DCMAKE_BUILD_TYPE=Release)
  else dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=Debug -DHR_SANITIZE=ON); fi
  echo "== $cfg build ($dir) =="
  cmake -S . -B "$dir" "${flags[@]}" >/dev/null
  cmake --build "$dir" -j "$jobs"
  (cd "$dir" && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure --timeout 600)
done
