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
#    position's logits, a fresh NumPy array per call) vs the same hr_forward
#    straight through ctypes (the C library alone), alternated call by call in
#    one process (bench_python.py overhead); the C program doing the same
#    (tests/tools/hr_bench_logits) is printed beside them. HR_BENCH_THREADS
#    threads everywhere.
# 2. run_with_cache(["pattern"]) vs a TransformerLens-style PyTorch forward
#    storing every layer's pattern, on the same weights and tokens, alternated
#    call by call (bench_python.py cache); torch with intra-op threads 1 +
#    OPENBLAS_NUM_THREADS=2 and 2 + 1, the faster kept; OPENBLAS_CORETYPE /
#    OPENBLAS_L2_SIZE unset for this command only.
# Overheads and speed-ups are medians of the per-pair ratios (robust to load
# from other processes on this shared machine); best times are printed too.
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
    record "$label" "$python" "$here/bench_python.py" overhead "$path" --n 128 --threads "$threads" --repeats "$reps"
    record "$label" env OPENBLAS_NUM_THREADS=2 "$python" "$here/bench_python.py" cache "$path" --n 128 \
        --threads "$threads" --torch-threads 1 --repeats "$reps"
    record "$label" env OPENBLAS_NUM_THREADS=1 "$python" "$here/bench_python.py" cache "$path" --n 128 \
        --threads "$threads" --torch-threads 2 --repeats "$reps"
}
for ((round = 1; round <= rounds; round++)); do
    echo "# round $round of $rounds"
    run_model stories260K "$shared/models/stories260K/stories260K.bin" 300
    run_model smollm135m-random "$smol" 20
done

echo
awk '
/^RESULT/ {
    delete f
    for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    m = f["model"]; if (!(m in seen)) { seen[m] = 1; order[++n] = m }
    k = m SUBSEP f["impl"]
    if (!(k in best) || f["best_s"] + 0 < best[k]) best[k] = f["best_s"] + 0
    if ("ratio_median" in f) { r = f["ratio_median"] + 0; if (!(k in ratio) || r < ratio[k]) { ratio[k] = r; diff[k] = f["diff_median_us"] } }
    if (f["impl"] ~ /^torch/ && (!((m, "torch") in ratio) || f["ratio_median"] + 0 < ratio[m, "torch"])) {
        ratio[m, "torch"] = f["ratio_median"] + 0; tcfg[m] = f["impl"]; tbest[m] = f["best_s"] + 0
        hbest[m] = best[m, "headroom-vs-" f["impl"]]
    }
}
END {
    printf "%-18s %10s %11s %10s %9s %8s | %10s %10s %-15s %8s\n", "model", "C prog ms", "C ctypes ms", "Python ms",
        "overhead", "(us)", "hr cache", "torch", "(torch config)", "speedup"
    for (i = 1; i <= n; i++) {
        m = order[i]
        printf "%-18s %10.3f %11.3f %10.3f %8.1f%% %8s | %10.3f %10.3f %-15s %7.2fx\n", m, 1000 * best[m, "c"],
            1000 * best[m, "c-via-ctypes"], 1000 * best[m, "python"], 100 * (ratio[m, "python"] - 1),
            diff[m, "python"], 1000 * hbest[m], 1000 * tbest[m], tcfg[m], ratio[m, "torch"]
    }
    print "(ms: best times; overhead: median per-pair ratio Python / C via ctypes, best round, and its"
    print " median per-pair difference in microseconds;"
    print " speedup: median per-pair ratio torch / headroom, the faster torch config, best round)"
}' "$results"
