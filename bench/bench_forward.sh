#!/usr/bin/env bash
# Forward-pass throughput: headroom (tests/tools/hr_bench.c) vs the PyTorch
# reference (bench/bench_ref.py) on the same weights, tokens and threads.
#
# usage: bench/bench_forward.sh [BUILD_DIR]      (a Release build holding hr_bench
#                                                 and hr_make_random)
# env:   HR_BENCH_REPEATS (default 5), HR_BENCH_ROUNDS (default 2),
#        HR_BENCH_THREADS (default 2),
#        HR_BENCH_MODELS_DIR (where the random SmolLM-shape model is generated;
#        default BUILD_DIR), HR_SHARED_DIR (default ../shared of the repo)
#
# headroom runs twice: the default exact GEMM (prefill bit-identical to
# decode) and --blas 1 (batched products through OpenBLAS sgemm).
# Phases: prefill of 128 and 512 tokens (last position's logits only, on both
# sides), decode of 64 tokens after a 64-token prompt (KV cache on both sides).
# Times are the best of HR_BENCH_REPEATS runs after one warm-up, best again
# over HR_BENCH_ROUNDS interleaved rounds; medians are in the raw RESULT lines.
# Torch runs with intra-op threads 1 and 2; the faster is compared.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=${1:-$src/build}
repeats=${HR_BENCH_REPEATS:-5}
rounds=${HR_BENCH_ROUNDS:-2}
threads=${HR_BENCH_THREADS:-2}
shared=${HR_SHARED_DIR:-$(cd "$src/../shared" && pwd)}
models_dir=${HR_BENCH_MODELS_DIR:-$build}
python=/usr/bin/python3

for tool in hr_bench hr_make_random; do
    [[ -x $build/$tool ]] || { echo "bench: $build/$tool missing (build the Release tree first)" >&2; exit 1; }
done

# Tuning variables inherited from the environment would skew one side; both
# sides run with OpenBLAS's own CPU detection.
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
    if [[ -n ${!v+x} ]]; then echo "# unset $v (was '${!v}')"; unset "$v"; fi
done
# Torch's intra-op threads are set by bench_ref.py (torch.set_num_threads),
# so OMP_* variables are not needed.
export OPENBLAS_NUM_THREADS=$threads

smol=$models_dir/random-smollm135m-shape.bin
if [[ ! -f $smol ]]; then
    echo "# generating $smol (random weights, SmolLM-135M shape, ~540 MB)"
    "$build/hr_make_random" --preset smollm-135m --seed 1 "$smol"
fi

echo "# CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(getconf _NPROCESSORS_ONLN) cores"
echo "# torch BLAS: $("$python" - <<'EOF'
import torch, re
cfg = torch.__config__.show()
m = re.search(r"BLAS_INFO=([^,]*)", cfg)
print("BLAS_INFO=%s (Debian links libblas.so.3 -> %s)" % (m.group(1) if m else "?",
      __import__("os").path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")))
EOF
)"
echo "# threads: headroom n_threads=$threads; torch intra-op 1 and 2 (faster kept); OPENBLAS_NUM_THREADS=$threads for both"

results=$(mktemp)
trap 'rm -f "$results"' EXIT

phases=(--repeats "$repeats" --prefill 128,512 --prompt 64 --decode 64)

# Runs one benchmark command, echoing its output and recording its RESULTs.
record() {
    local label=$1 out
    shift
    out=$("$@")
    echo "$out"
    sed -n "s/^RESULT/RESULT model=$label/p" <<<"$out" >>"$results"
}

run_model() {
    local label=$1 path=$2
    echo "# $label: $path"
    record "$label" "$build/hr_bench" "$path" --threads "$threads" "${phases[@]}"
    record "$label" "$build/hr_bench" "$path" --threads "$threads" --blas 1 "${phases[@]}"
    for tt in 1 2; do
        record "$label" "$python" "$here/bench_ref.py" "$path" --torch-threads "$tt" "${phases[@]}"
    done
}

# Rounds interleave the two sides so that load from other processes on this
# shared machine hits both alike; the table keeps each side's best round.
for ((round = 1; round <= rounds; round++)); do
    echo "# round $round of $rounds"
    run_model stories260K "$shared/models/stories260K/stories260K.bin"
    run_model smollm135m-random "$smol"
done

echo
awk '
/^RESULT/ {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    key = f["model"] " " f["phase"] " " f["n"]
    if (!(key in seen)) { seen[key] = 1; order[++n] = key }
    if (f["impl"] == "headroom") { if (f["tok_s"] + 0 > h[key] + 0) h[key] = f["tok_s"] }
    else if (f["impl"] == "headroom-blas") { if (f["tok_s"] + 0 > hb[key] + 0) hb[key] = f["tok_s"] }
    else if (f["tok_s"] + 0 > t[key] + 0) { t[key] = f["tok_s"]; tcfg[key] = f["impl"] }
}
END {
    printf "%-20s %-8s %6s %14s %14s %14s %-9s %6s %6s\n", "model", "phase", "tokens", "headroom tok/s", "+blas tok/s", "torch tok/s", "(config)", "ratio", "+blas"
    for (i = 1; i <= n; i++) {
        k = order[i]; split(k, part, " ")
        printf "%-20s %-8s %6s %14.1f %14.1f %14.1f %-9s %6.2f %6.2f\n", part[1], part[2], part[3], h[k], hb[k], t[k], tcfg[k], (t[k] > 0 ? h[k] / t[k] : 0), (t[k] > 0 ? hb[k] / t[k] : 0)
    }
}' "$results"
