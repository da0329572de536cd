#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, CMake -DHR_FUZZ=ON) in
# their own build directory and fuzzes each for a bounded time, two at a
# time on two cores. Fails on any crash, sanitizer report, leak, timeout
# (an input taking > 10 s) or out-of-memory; the input that triggered it is
# saved under BUILD/fuzz-artifacts/<target>/ and its log tail printed.
#
# usage: fuzz/run.sh [TARGET...]        (default: every fuzz/fuzz_*.c)
# env:   HR_FUZZ_SECONDS  seconds per target (default 20)
#        HR_FUZZ_BUILD    build directory (default build-fuzz)
#        HR_FUZZ_JOBS     targets fuzzed at once (default: cores, at most 2)
# Reproduce a finding: BUILD/<target> BUILD/fuzz-artifacts/<target>/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${HR_FUZZ_SECONDS:-20}
dir=${HR_FUZZ_BUILD:-build-fuzz}
cores=$(nproc 2>/dev/null || echo 2)
par=${HR_FUZZ_JOBS:-$((cores < 2 ? cores : 2))}
shared=../shared

if ! command -v clang >/dev/null; then
  echo "fuzz: clang not found (scripts/setup.sh installs clang and libclang-rt-14-dev)" >&2
  exit 1
fi
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for src in fuzz/fuzz_*.c; do targets+=("$(basename "$src" .c)"); done
fi

start=$SECONDS
CC=clang cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DHR_FUZZ=ON >/dev/null
cmake --build "$dir" -j "$cores" --target "${targets[@]}" >/dev/null
echo "fuzz: built ${#targets[@]} targets in $((SECONDS - start)) s; fuzzing each for ${secs} s, $par at a time"

# Seeds: the committed corpus plus small real files from ../shared when
# present; libFuzzer adds what it finds to the (build-local) work corpus.
seed() {
  local t=$1 work=$dir/fuzz-corpus/$1
  mkdir -p "$work" "$dir/fuzz-artifacts/$t"
  cp fuzz/corpus/"$t"/* "$work"/
  if [ "$t" = fuzz_tokenizer_bin ] && [ -f "$shared/models/stories260K/tok512.bin" ]; then
    cp "$shared/models/stories260K/tok512.bin" "$work"/
  fi
}

fuzz_one() {
  local t=$1
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$dir/$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$dir/fuzz-artifacts/$t/" "$dir/fuzz-corpus/$t" >"$dir/fuzz-$t.log" 2>&1
}

report() {
  local t=$1 rc=$2 runs
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/fuzz-$t.log" | tail -1)
  if [ "$rc" -eq 0 ]; then
    echo "fuzz: $t ok (${runs:-?} inputs)"
  else
    echo "fuzz: $t FAILED (exit $rc); log tail:" >&2
    tail -n 40 "$dir/fuzz-$t.log" >&2
  fi
}

failed=0
n_ok=0
n_bad=0
declare -A pid_of=()
for t in "${targets[@]}"; do
  seed "$t"
  while [ "$(jobs -rp | wc -l)" -ge "$par" ]; do sleep 0.2; done
  fuzz_one "$t" &
  pid_of[$t]=$!
done
for t in "${targets[@]}"; do
  rc=0
  wait "${pid_of[$t]}" || rc=$?
  report "$t" "$rc"
  if [ "$rc" -eq 0 ]; then n_ok=$((n_ok + 1)); else failed=1; n_bad=$((n_bad + 1)); fi
done
echo "fuzz: done in $((SECONDS - start)) s"
echo "fuzz: $n_ok passed, $n_bad failed"
exit $failed
