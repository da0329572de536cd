#!/usr/bin/env bash
# Activation patching of every head: `headroom patch --what heads` (the
# whole command: load, both runs of every pair, the sweep that reruns only
# the layers from the patched head on and only the positions from the first
# token where the prompts differ, patch.json and report) against
# bench/bench_patch.py (straightforward PyTorch: all pairs as one batch, one
# full forward per patched head), same weights, pairs and threads, on the
# SmolLM-135M shape (random weights). Benchmark, not a test.
#
# usage: bench/bench_patch.sh [BUILD_DIR]
# env:   HR_BENCH_THREADS (default 1), HR_BENCH_PAIRS (default 100),
#        HR_BENCH_EVERY (torch patches every K-th head and scales its time to
#        all heads, default 10: each patched forward costs the same),
#        HR_BENCH_MODELS_DIR (default BUILD_DIR)
# Pairs: 16 tokens (BOS + 15 random ids), the corrupt prompt differing at
# positions 3 and 9 (IOI-like: names early and late), random answer / wrong.
# Torch runs in the two configurations of bench_ablation.sh (intra-op
# threads T with OPENBLAS_NUM_THREADS=1, and 1 with T; one when T = 1); the
# faster counts. The two matrices are compared on the heads torch ran.
# Both sides report wall and CPU seconds (user + system of the process): on
# a shared, loaded machine the CPU time of single-threaded runs is the
# steadier measure of the work each side needs.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=${1:-$src/build}
threads=${HR_BENCH_THREADS:-1}
n_pairs=${HR_BENCH_PAIRS:-100}
every=${HR_BENCH_EVERY:-10}
models_dir=${HR_BENCH_MODELS_DIR:-$build}
python=/usr/bin/python3
for tool in headroom hr_make_random; do
    [[ -x $build/$tool ]] || { echo "bench: $build/$tool missing (build the Release tree first)" >&2; exit 1; }
done
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
    if [[ -n ${!v+x} ]]; then echo "# unset $v (was '${!v}')"; unset "$v"; fi
done
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
smol=$models_dir/random-smollm135m-shape.bin
[[ -s $smol ]] || "$build/hr_make_random" --preset smollm-135m "$smol"
"$python" - "$n_pairs" "$T/pairs.jsonl" <<'PY'
import json, random, sys
r = random.Random(1)
with open(sys.argv[2], "w") as f:
    for _ in range(int(sys.argv[1])):
        c = [1] + [r.randrange(2, 49152) for _ in range(15)]
        d = list(c)
        d[3], d[9] = r.randrange(2, 49152), r.randrange(2, 49152)
        f.write(json.dumps({"clean_ids": c, "corrupt_ids": d, "answer_id": r.randrange(2, 49152),
                            "wrong_id": r.randrange(2, 49152)}) + "\n")
PY
echo "# CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(getconf _NPROCESSORS_ONLN) cores; threads $threads; load $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -f "%e %U %S" -o "$T/hr.time" "$build/headroom" patch "$smol" --pairs "$T/pairs.jsonl" --what heads \
    --no-dla --no-lens --threads "$threads" --out "$T/hr" >"$T/hr.log"
read -r hr_s hr_u hr_sys <"$T/hr.time"
hr_cpu=$("$python" -c "print($hr_u + $hr_sys)")
echo "headroom: $(grep 'forward passes' "$T/hr.log"); wall $hr_s s, cpu $hr_cpu s"
best=""
cfgs=("$threads 1")
[[ $threads -gt 1 ]] && cfgs+=("1 $threads")
for cfg in "${cfgs[@]}"; do
    set -- $cfg
    line=$(OPENBLAS_NUM_THREADS=$2 OMP_NUM_THREADS=$1 "$python" "$here/bench_patch.py" "$smol" --pairs "$T/pairs.jsonl" \
        --threads "$1" --every "$every" --out "$T/torch-$1-$2.json" | grep RESULT)
    echo "torch (intra-op $1, OpenBLAS $2): $line"
    s=$(sed 's/.*seconds_all_heads=\([0-9.]*\).*/\1/' <<<"$line")
    c=$(sed 's/.*cpu_all_heads=\([0-9.]*\).*/\1/' <<<"$line")
    if [[ -z $best ]] || "$python" -c "import sys; sys.exit(0 if $s < $best else 1)"; then best=$s; best_cpu=$c; cfgbest="$1-$2"; fi
done
"$python" - "$T/hr/patch.json" "$T/torch-$cfgbest.json" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))["patching"]["heads"]["values"]
t = json.load(open(sys.argv[2]))["heads"]
d = max(abs(h[l][k] - t[l][k]) for l in range(len(t)) for k in range(len(t[l])) if t[l][k] is not None)
print("max |headroom - torch| over the heads torch ran: %.3g (float32 both)" % d)
PY
echo "RESULT patch_heads pairs=$n_pairs threads=$threads headroom_s=$hr_s torch_s=$best speedup_wall=$("$python" -c "print('%.2f' % ($best / $hr_s))") headroom_cpu_s=$hr_cpu torch_cpu_s=$best_cpu speedup_cpu=$("$python" -c "print('%.2f' % ($best_cpu / $hr_cpu))")"
