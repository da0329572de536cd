#!/usr/bin/env bash
# The Python layer's cost, and the attention-pattern cache against
# TransformerLens-style PyTorch code (bench/bench_python.py), on stories260K
# and on a random model of SmolLM-135M's shape (as bench/bench_forward.sh).
#
# usage: bench/bench_python.sh [BUILD_DIR]   (a Release build holding libheadroom.so,
#                                             hr_bench_logits and hr_make_random)
# env:   HR_BENCH_ROUNDS (default 3), HR_BENCH_THREADS (default 2),
#        HR_BENCH_MODELS_DIR (where the SmolLM-shape model is generated;
#        default BUILD_DIR), HR_SHARED_DIR (default ../shared of the repo)
#
# 1. logits overhead: headroom.Model.logits(ids) for a 128-token prompt (every
#    position's logits, a fresh NumPy array per call) vs the same call from C
#    (tests/tools/hr_bench_logits: hr_forward into a reused buffer), both with
#    HR_BENCH_THREADS threads; best of many calls, best again over rounds that
#    interleave the two sides (the machine is shared).
# 2. run_with_cache(["pattern"]) vs a TransformerLens-style PyTorch forward
#    storing every layer's pattern, on the same weights and tokens; torch with
#    intra-op threads 1 + OPENBLAS_NUM_THREADS=2 and 2 + 1, the faster kept;
#    OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset for this command only.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=${1:-$src/build}
rounds=${HR_BENCH_ROUNDS:-3}
threads=${HR_BENCH_THREADS:-2}
shared=${HR_SHARED_DIR:-$(cd "$src/../shared" && pwd)}
models_dir=${HR_BENCH_MODELS_DIR:-$build}
python=/usr/bin/python3
export HEADROOM_LIB=$build/libheadroom.so

for f in hr_bench_logits hr_make_random libheadroom.so; do
    [[ -e $build/$f ]] || { echo "bench: $build/$f missing (build the Release tree first)" >&2; exit 1; }
done
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
    if [[ -n ${!v+x} ]]; then echo "# unset $v (was '${!v}')"; unset "$v"; fi
done

smol=$models_dir/random-smollm135m-shape.bin
if [[ ! -f $smol ]]; then
    echo "# generating $smol (random weights, SmolLM-135M shape, ~540 MB)"
    "$build/hr_make_random" --preset smollm-135m --seed 1 "$smol"
fi
echo "# CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(getconf _NPROCESSORS_ONLN) cores"
echo "# headroom threads=$threads; torch: intra-op 1 + OPENBLAS_NUM_THREADS=2, and 2 + 1"

results=$(mktemp)
trap 'rm -f "$results"' EXIT
record() { # label, command...
    local label=$1 out
    shift
    out=$("$@")
    echo "$out"
    sed -n "s/^RESULT/RESULT model=$label/p" <<<"$out" >>"$results"
}
run_model() { # label, path, repeats
    local label=$1 path=$2 reps=$3
    record "$label" "$build/hr_bench_logits" "$path" --n 128 --threads "$threads" --repeats "$reps"
    record "$label" "$python" "$here/bench_python.py" headroom "$path" --n 128 --threads "$threads" --repeats "$reps"
    record "$label" env OPENBLAS_NUM_THREADS=2 "$python" "$here/bench_python.py" torch "$path" --n 128 \
        --torch-threads 1 --repeats "$reps"
    record "$label" env OPENBLAS_NUM_THREADS=1 "$python" "$here/bench_python.py" torch "$path" --n 128 \
        --torch-threads 2 --repeats "$reps"
}
for ((round = 1; round <= rounds; round++)); do
    echo "# round $round of $rounds"
    run_model stories260K "$shared/models/stories260K/stories260K.bin" 300
    run_model smollm135m-random "$smol" 10
done

echo
awk '
/^RESULT/ {
    delete f
    for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    m = f["model"]; if (!(m in seen)) { seen[m] = 1; order[++n] = m }
    k = m SUBSEP f["impl"] SUBSEP f["what"]
    if (!(k in best) || f["best_s"] + 0 < best[k]) best[k] = f["best_s"] + 0
    if (f["impl"] ~ /^torch/) { tk = m SUBSEP "torch"; if (!(tk in best) || f["best_s"] + 0 < best[tk]) { best[tk] = f["best_s"] + 0; tcfg[m] = f["impl"] } }
}
END {
    printf "%-20s %12s %12s %9s   %14s %14s %-16s %7s\n", "model", "C logits ms", "Py logits ms", "overhead", "hr cache ms", "torch cache ms", "(torch config)", "speedup"
    for (i = 1; i <= n; i++) {
        m = order[i]
        c = best[m SUBSEP "c" SUBSEP "logits"]; p = best[m SUBSEP "python" SUBSEP "logits"]
        h = best[m SUBSEP "headroom" SUBSEP "cache_pattern"]; t = best[m SUBSEP "torch"]
        printf "%-20s %12.3f %12.3f %8.1f%%   %14.3f %14.3f %-16s %6.2fx\n", m, 1000 * c, 1000 * p, 100 * (p - c) / c, 1000 * h, 1000 * t, tcfg[m], t / h
    }
}' "$results"
