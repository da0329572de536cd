#!/usr/bin/env bash
# Sets up (build + test dependencies), builds and runs every test leg:
#   release   Release build (build/): the whole ctest suite
#   asan      Debug + AddressSanitizer + UBSan (build-asan/): the whole suite
#   portable  -DHR_NATIVE=OFF -DHR_BLAS=OFF (build-portable/): the
#             dispatching kernels (test_dispatch forces every path this CPU
#             runs) and the build without OpenBLAS, on the kernel, context,
#             KV-cache, pruning and GQA tests, all on HEADROOM_CPU=avx2 (scalar
#             without AVX2)
#   tsan      ThreadSanitizer, without OpenBLAS (build-tsan/): the tests
#             that run the thread pool (kernels, context, KV cache, head lab)
#   fuzz      a bounded libFuzzer run of every parser (fuzz/run.sh, build-fuzz/)
# Each leg builds only the targets it runs (and hr_make_random, which
# test_kvcache calls to make its random model); ctest runs -j cores. The last
# line sums all legs:
# "all: N passed, N failed" (skipped tests count in neither).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests || exit 1
jobs=$(nproc 2>/dev/null || echo 2)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
passed=0; failed=0; status=0

# leg NAME DIR "CMAKE FLAGS" "TARGETS (empty = all)" "CTEST REGEX (empty = all)" [ENV=VALUE...]
leg() {
  local name=$1 dir=$2 flags=$3 targets=$4 regex=$5; shift 5
  local start=$SECONDS f total skipped
  echo "== $name ($dir) =="
  # shellcheck disable=SC2086 # flag and target lists split on spaces
  cmake -S . -B "$dir" $flags >/dev/null || { status=1; failed=$((failed + 1)); return; }
  # shellcheck disable=SC2086
  cmake --build "$dir" -j "$jobs" ${targets:+--target $targets} || { status=1; failed=$((failed + 1)); return; }
  (cd "$dir" && env "$@" ctest -j "$jobs" --output-on-failure --timeout 600 ${regex:+-R "$regex"}) 2>&1 | tee "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  # ctest: "100% tests passed, 0 tests failed out of 27"; skipped: "***Skipped"
  f=; total=
  read -r f total < <(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\1 \2/p' "$log" | tail -1)
  skipped=$(grep -c '\*\*\*Skipped' "$log")
  if [ -n "${total:-}" ]; then
    passed=$((passed + total - f - skipped)); failed=$((failed + f))
  else
    status=1; failed=$((failed + 1))
  fi
  echo "== $name: $((SECONDS - start)) s =="
}

leg release build "-DCMAKE_BUILD_TYPE=Release" "" ""
leg asan build-asan "-DCMAKE_BUILD_TYPE=Debug -DHR_SANITIZE=ON" "" "" ASAN_OPTIONS=detect_leaks=1
# the portable leg's tests run on the AVX2 path (plain C where the CPU lacks it)
portable_cpu=$(grep -qw avx2 /proc/cpuinfo 2>/dev/null && echo avx2 || echo scalar)
leg portable build-portable "-DCMAKE_BUILD_TYPE=Release -DHR_NATIVE=OFF -DHR_BLAS=OFF" \
  "test_dispatch test_kernels test_context test_kvcache test_prune test_gqa hr_make_random" \
  "^test_(dispatch|kernels|context|kvcache|prune|gqa)$" HEADROOM_CPU="$portable_cpu"
# halt_on_error: the first race fails the test (not only the exit code 66).
leg tsan build-tsan "-DCMAKE_BUILD_TYPE=Release -DHR_TSAN=ON -DHR_BLAS=OFF" \
  "test_kernels test_context test_kvcache test_heads hr_make_random" \
  "^test_(kernels|context|kvcache|heads)$" TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"

echo "== fuzz (bounded libFuzzer run of every parser, build-fuzz) =="
bash fuzz/run.sh 2>&1 | tee "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fp=; ff=
read -r fp ff < <(sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$log" | tail -1)
passed=$((passed + ${fp:-0})); failed=$((failed + ${ff:-1}))
[ "$failed" -eq 0 ] || status=1
echo "all: $passed passed, $failed failed"
exit $status
