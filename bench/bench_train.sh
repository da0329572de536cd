#!/usr/bin/env bash
# Training step: headroom vs PyTorch (benchmark, not a test).
#
# On the same model shape, window, batch and threads, tests/tools/hr_bench_train
# times hr_train_step (K windows of W tokens: training forward, backward into
# every weight, global-norm clipping, AdamW) and bench/bench_train.py the
# same step in PyTorch (float32 autograd, clip_grad_norm_, torch.optim.AdamW).
# Torch runs with torch.set_num_threads(1) x OPENBLAS_NUM_THREADS=T and
# T x 1; the faster counts. Rounds are interleaved; each figure is the best
# over rounds. Wall and process-CPU seconds are both reported (on a shared
# machine CPU seconds are the fairer measure).
#
# usage: bench/bench_train.sh [BUILD_DIR]   (a Release build holding headroom,
#                                            hr_bench_train and hr_make_random)
# env:   HR_BENCH_THREADS (default 2), HR_BENCH_ROUNDS (default 3),
#        HR_BENCH_REPEATS (default 3), HR_BENCH_MODELS_DIR, HR_SHARED_DIR,
#        BT_MODELS (default "stories"; "stories smollm" adds the SmolLM-135M shape)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=${1:-$src/build}
threads=${HR_BENCH_THREADS:-2}
rounds=${HR_BENCH_ROUNDS:-3}
repeats=${HR_BENCH_REPEATS:-3}
shared=${HR_SHARED_DIR:-$(cd "$src/../shared" && pwd)}
models_dir=${HR_BENCH_MODELS_DIR:-$build}
python=/usr/bin/python3

BENCH_TOOLS="headroom hr_bench_train hr_make_random" BENCH_TEXT_BYTES=40000
. "$here/prelude.sh"
smol=$models_dir/random-smollm135m-shape.bin
echo "# CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(getconf _NPROCESSORS_ONLN) cores; threads $threads; load $(cut -d' ' -f1-3 /proc/loadavg)"
get() { sed -n "s/.* $2=\([0-9.]*\).*/\1/p" <<<"$1"; }
minf() { "$python" -c "import sys; v=[float(x) for x in sys.argv[1:] if x]; print(min(v) if v else 'nan')" "$@"; }

# MODEL LABEL WINDOW N_WINDOWS
step() {
    local model=$1 label=$2 window=$3 nwin=$4 r s hw=() hc=() tw=() tc=()
    for ((r = 0; r < rounds; r++)); do
        s=$("$build/hr_bench_train" "$model" --ids "$T/ids.txt" --window "$window" --windows "$nwin" \
            --threads "$threads" --repeats "$repeats" | grep RESULT)
        echo "# round $r: headroom: $s"
        hw+=("$(get "$s" seconds)") hc+=("$(get "$s" cpu_seconds)")
        for cfg in "1 $threads" "$threads 1"; do
            set -- $cfg
            s=$(OPENBLAS_NUM_THREADS=$2 "$python" "$here/bench_train.py" "$model" --ids "$T/ids.txt" --window "$window" \
                --windows "$nwin" --threads "$1" --repeats "$repeats" | grep RESULT)
            echo "# round $r: torch intra-op $1, OpenBLAS $2: $s"
            tw+=("$(get "$s" seconds)") tc+=("$(get "$s" cpu_seconds)")
        done
    done
    "$python" - "$label" "$nwin" "$window" "$(minf "${hw[@]}")" "$(minf "${tw[@]}")" "$(minf "${hc[@]}")" \
        "$(minf "${tc[@]}")" <<'PY'
import sys
label, k, w = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
hw, tw, hc, tc = (float(x) for x in sys.argv[4:8])
print("RESULT model=%s tokens=%dx%d wall: headroom_s=%.4f (%.0f tokens/s) torch_s=%.4f (%.0f tokens/s) "
      "torch_over_headroom=%.2f; cpu: headroom_s=%.4f torch_s=%.4f torch_over_headroom=%.2f"
      % (label, k, w, hw, k * w / hw, tw, k * w / tw, tw / hw, hc, tc, tc / hc))
PY
}

bench_each_model step "${BT_MODELS:-stories}"
