#!/usr/bin/env bash
# Sets up, builds and runs every test: the Release build, then the same
# suite under AddressSanitizer + UBSan, then a bounded fuzz run (fuzz/run.sh).
# The last line sums all three: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
jobs=$(nproc 2>/dev/null || echo 2)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
passed=0; failed=0; status=0
for cfg in release asan; do
  if [ "$cfg" = release ]; then dir=build; flags=(-DCMAKE_BUILD_TYPE=Release)
  else dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=Debug -DHR_SANITIZE=ON); fi
  echo "== $cfg build ($dir) =="
  cmake -S . -B "$dir" "${flags[@]}" >/dev/null || exit 1
  cmake --build "$dir" -j "$jobs" || exit 1
  (cd "$dir" && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure --timeout 600) 2>&1 | tee "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  # ctest: "100% tests passed, 0 tests failed out of 27"
  f=; total=
  read -r f total < <(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\1 \2/p' "$log" | tail -1)
  if [ -n "${total:-}" ]; then passed=$((passed + total - f)); failed=$((failed + f)); else status=1; fi
done
echo "== fuzz (bounded libFuzzer run of every parser, build-fuzz) =="
bash fuzz/run.sh 2>&1 | tee "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fp=; ff=
read -r fp ff < <(sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$log" | tail -1)
passed=$((passed + ${fp:-0})); failed=$((failed + ${ff:-1}))
[ "$failed" -eq 0 ] || status=1
echo "all: $passed passed, $failed failed"
exit $status
