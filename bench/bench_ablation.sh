#!/usr/bin/env bash
# Ablation sweep: `headroom heads --methods ablation` (the whole command:
# load, exact single-head sweep that re-runs only the layers from the ablated
# head on, plus the layer metrics and outputs it always writes) against
# bench/bench_ablation.py (straightforward PyTorch: one full forward per
# ablated head), same token windows, same threads. Benchmark, not a test.
#
# usage: bench/bench_ablation.sh [BUILD_DIR]     (a Release build holding headroom
#                                                 and hr_make_random)
# env:   HR_BENCH_THREADS (default 2), HR_BENCH_MODELS_DIR (where the random
#        SmolLM-shape model is generated; default BUILD_DIR), HR_SHARED_DIR,
#        AB_MODELS (default "stories smollm")
#
# Windows: stories260K 4 x 256 tokens, SmolLM-135M shape (random weights)
# 1 x 128 tokens, both from tinystories_val.txt through tok512.bin (its ids
# are valid ids of the 49152-token vocabulary; the weights are random, so any
# text serves). Torch runs in two configurations without oversubscription
# (intra-op threads T with OPENBLAS_NUM_THREADS=1, and 1 with T) and the
# faster counts; OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset for both sides.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=${1:-$src/build}
threads=${HR_BENCH_THREADS:-2}
shared=${HR_SHARED_DIR:-$(cd "$src/../shared" && pwd)}
models_dir=${HR_BENCH_MODELS_DIR:-$build}
which_models=${AB_MODELS:-stories smollm}
python=/usr/bin/python3

BENCH_TOOLS="headroom hr_make_random" BENCH_TEXT_BYTES=20000
. "$here/prelude.sh"

smol=$models_dir/random-smollm135m-shape.bin
echo "# CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(getconf _NPROCESSORS_ONLN) cores; threads $threads"

# MODEL LABEL WINDOW N_WINDOWS
one() {
    local model=$1 label=$2 window=$3 nwin=$4 t0 t1 hr_s torch_s
    t0=$(date +%s.%N)
    "$build/headroom" heads "$model" --tokenizer "$tok" -f "$T/text.txt" --methods ablation --window "$window" \
        --tokens $((window * nwin)) --threads "$threads" --top 0 -o "$T/out-$label" >/dev/null
    t1=$(date +%s.%N)
    hr_s=$("$python" -c "print($t1 - $t0)")
    # Two fair torch configurations (intra-op threads x OpenBLAS threads =
    # the thread budget, never more); the faster one is compared.
    local cfg best_cfg="" s
    torch_s=""
    for cfg in "$threads 1" "1 $threads"; do
        set -- $cfg
        s=$(OPENBLAS_NUM_THREADS=$2 "$python" "$here/bench_ablation.py" "$model" --ids "$T/ids.txt" \
            --window "$window" --windows "$nwin" --threads "$1" --csv "$T/torch-$label.csv" |
            sed -n 's/.*seconds=//p')
        echo "# torch intra-op $1, OpenBLAS $2: $s s"
        if [[ -z $torch_s ]] || "$python" -c "import sys; sys.exit(0 if $s < $torch_s else 1)"; then
            torch_s=$s best_cfg="t$1/ob$2"
        fi
    done
    # Same quantity on both sides: the largest score difference over all heads.
    local diff
    diff=$("$python" - "$T/out-$label/heads.csv" "$T/torch-$label.csv" <<'EOF'
import csv, sys
a = {(int(r["layer"]), int(r["head"])): float(r["ablation"]) for r in csv.DictReader(open(sys.argv[1]))}
b = {(int(r["layer"]), int(r["head"])): float(r["ablation"]) for r in csv.DictReader(open(sys.argv[2]))}
print("%.2g" % max(abs(a[k] - b[k]) for k in b))
EOF
)
    printf 'RESULT model=%s tokens=%dx%d headroom_s=%.2f torch_s=%.2f torch_cfg=%s speedup=%.2f max_score_diff=%s\n' \
        "$label" "$nwin" "$window" "$hr_s" "$torch_s" "$best_cfg" "$("$python" -c "print($torch_s / $hr_s)")" "$diff"
}

bench_each_model one "$which_models"
