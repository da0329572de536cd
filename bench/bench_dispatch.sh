#!/usr/bin/env bash
# Kernel paths (src/engine/kernels_isa.h): prefill and decode throughput of
# one binary forced onto each CPU path with HEADROOM_CPU, on the random
# SmolLM-135M-shape model (tests/tools/hr_make_random --preset smollm-135m),
# and the AVX2 / AVX-512 ratio.
#
# usage: bench/bench_dispatch.sh [BUILD_DIR]     (a Release build holding hr_bench
#                                                 and hr_make_random)
# env:   HR_BENCH_REPEATS (default 3), HR_BENCH_ROUNDS (default 2),
#        HR_BENCH_THREADS (default 2), HR_BENCH_SCALAR (1 = also the plain-C
#        path, on prefill 64 / decode 16 only: it is ~100x slower),
#        HR_BENCH_MODELS_DIR (where the model is generated; default BUILD_DIR)
#
# Phases: prefill of 128 and 512 tokens, decode of 64 tokens after a 64-token
# prompt. Times are hr_bench's best of HR_BENCH_REPEATS after a warm-up; the
# table keeps each path's best over HR_BENCH_ROUNDS interleaved rounds (the
# paths alternate, so load from other processes hits them alike).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=${1:-$src/build}
repeats=${HR_BENCH_REPEATS:-3}
rounds=${HR_BENCH_ROUNDS:-2}
threads=${HR_BENCH_THREADS:-2}
models_dir=${HR_BENCH_MODELS_DIR:-$build}

for tool in hr_bench hr_make_random headroom; do
    [[ -x $build/$tool ]] || { echo "bench: $build/$tool missing (build the Release tree first)" >&2; exit 1; }
done
smol=$models_dir/random-smollm135m-shape.bin
if [[ ! -f $smol ]]; then
    echo "# generating $smol (random weights, SmolLM-135M shape, ~540 MB)"
    "$build/hr_make_random" --preset smollm-135m --seed 1 "$smol"
fi

paths=()
for p in avx512 avx2; do
    HEADROOM_CPU=$p "$build/headroom" --version >/dev/null 2>&1 && paths+=("$p")
done
[[ ${HR_BENCH_SCALAR:-0} == 1 ]] && paths+=(scalar)
echo "# CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(getconf _NPROCESSORS_ONLN) cores; threads $threads"
echo "# paths: ${paths[*]}"

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for ((round = 1; round <= rounds; round++)); do
    echo "# round $round of $rounds"
    for p in "${paths[@]}"; do
        phases=(--repeats "$repeats" --prefill 128,512 --prompt 64 --decode 64)
        [[ $p == scalar ]] && phases=(--repeats 1 --prefill 64 --prompt 16 --decode 16)
        out=$(HEADROOM_CPU=$p "$build/hr_bench" "$smol" --threads "$threads" "${phases[@]}")
        echo "$out" | sed "s/^/$p: /"
        sed -n "s/^RESULT/RESULT path=$p/p" <<<"$out" >>"$results"
    done
done

echo
awk '
/^RESULT/ {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    key = f["phase"] " " f["n"]
    if (!(key in seen)) { seen[key] = 1; order[++n] = key }
    if (f["tok_s"] + 0 > best[key, f["path"]] + 0) best[key, f["path"]] = f["tok_s"]
}
END {
    printf "%-8s %6s %14s %14s %14s %14s\n", "phase", "tokens", "avx512 tok/s", "avx2 tok/s", "scalar tok/s", "avx512/avx2"
    for (i = 1; i <= n; i++) {
        k = order[i]; split(k, part, " ")
        a = best[k, "avx512"] + 0; b = best[k, "avx2"] + 0; s = best[k, "scalar"] + 0
        printf "%-8s %6s %14.1f %14.1f %14.1f %14s\n", part[1], part[2], a, b, s, (a > 0 && b > 0 ? sprintf("%.2f", a / b) : "-")
    }
}' "$results"
