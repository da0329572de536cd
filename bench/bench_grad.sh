#!/usr/bin/env bash
# Gradient importance: cost and quality (benchmark, not a test).
#
#  1. cost: on the same token windows and threads, tests/tools/hr_bench_grad
#     times one inference forward (hr_forward, all logits), the gradient of
#     the head gates (hr_grad_accumulate: one training forward + backward per
#     window, engine reused), the head lab's `grad`, `taylor` and exact
#     `ablation` methods alone (with their setup), and bench/bench_grad.py the
#     same `grad` scores with PyTorch autograd (float32, weights not requiring
#     grad). Torch runs with torch.set_num_threads(1) x OPENBLAS_NUM_THREADS=T
#     and T x 1; the faster counts. Rounds are interleaved; each figure is the
#     best over rounds. Wall and process-CPU seconds are both reported: on a
#     shared machine wall time includes time slices taken by neighbours; with
#     HR_BENCH_THREADS=1 the CPU seconds of both sides are a fair measure.
#  2. quality: Spearman rank correlation over all heads of `grad`, `taylor`
#     (and `amp`, for comparison) with the exact ablation ranking on
#     stories260K and tinystories_val.txt.
#
# usage: bench/bench_grad.sh [BUILD_DIR]     (a Release build holding headroom,
#                                             hr_bench_grad and hr_make_random)
# env:   HR_BENCH_THREADS (default 2), HR_BENCH_ROUNDS (default 3),
#        HR_BENCH_REPEATS (default 3), HR_BENCH_MODELS_DIR (where the random
#        SmolLM-shape model is generated; default BUILD_DIR), HR_SHARED_DIR,
#        GB_MODELS (default "stories smollm"; "" = quality only), GB_SPEARMAN_TOKENS (default 4096)
#
# Windows: stories260K 4 x 256 tokens, SmolLM-135M shape (random weights)
# 1 x 128 tokens (as bench/bench_ablation.sh), from tinystories_val.txt
# through tok512.bin. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset for the
# benchmark's own commands.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=${1:-$src/build}
threads=${HR_BENCH_THREADS:-2}
rounds=${HR_BENCH_ROUNDS:-3}
repeats=${HR_BENCH_REPEATS:-3}
shared=${HR_SHARED_DIR:-$(cd "$src/../shared" && pwd)}
models_dir=${HR_BENCH_MODELS_DIR:-$build}
which_models=${GB_MODELS-stories smollm}
sp_tokens=${GB_SPEARMAN_TOKENS:-4096}
python=/usr/bin/python3

BENCH_TOOLS="headroom hr_bench_grad hr_make_random" BENCH_TEXT_BYTES=40000
. "$here/prelude.sh"
text=$shared/data/text/tinystories_val.txt
smol=$models_dir/random-smollm135m-shape.bin
echo "# CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(getconf _NPROCESSORS_ONLN) cores; threads $threads; load $(cut -d' ' -f1-3 /proc/loadavg)"

field() { sed -n "s/.*what=$2 seconds=\([0-9.]*\) .*/\1/p" "$1" | head -1; }
cpuf() { sed -n "s/.*what=$2 seconds=[0-9.]* cpu_seconds=\([0-9.]*\) .*/\1/p" "$1" | head -1; }
minf() { "$python" -c "import sys; v=[float(x) for x in sys.argv[1:] if x]; print(min(v) if v else 'nan')" "$@"; }

# MODEL LABEL WINDOW N_WINDOWS
cost() {
    local model=$1 label=$2 window=$3 nwin=$4 r cfg out s
    local fw=() gr=() lg=() lt=() la=() th=() cfw=() cgr=() clg=() cth=() tc=() ctc=()
    for ((r = 0; r < rounds; r++)); do
        out=$T/hr-$label.out
        "$build/hr_bench_grad" "$model" --ids "$T/ids.txt" --window "$window" --windows "$nwin" --threads "$threads" \
            --repeats "$repeats" --what forward,gates,lab:grad,lab:taylor --csv "$T/hr-$label" >"$out"
        # the exact sweep is 10-100x longer: one timed run per round
        "$build/hr_bench_grad" "$model" --ids "$T/ids.txt" --window "$window" --windows "$nwin" --threads "$threads" \
            --repeats 1 --what lab:ablation >>"$out"
        grep RESULT "$out" | sed "s/^/# round $r: /"
        fw+=("$(field "$out" forward)") gr+=("$(field "$out" gates)") lg+=("$(field "$out" lab:grad)")
        lt+=("$(field "$out" lab:taylor)") la+=("$(field "$out" lab:ablation)")
        cfw+=("$(cpuf "$out" forward)") cgr+=("$(cpuf "$out" gates)") clg+=("$(cpuf "$out" lab:grad)")
        for cfg in "1 $threads" "$threads 1"; do
            set -- $cfg
            s=$(OPENBLAS_NUM_THREADS=$2 "$python" "$here/bench_grad.py" "$model" --ids "$T/ids.txt" --window "$window" \
                --windows "$nwin" --threads "$1" --repeats "$repeats" --csv "$T/torch-$label.csv" | grep RESULT)
            echo "# round $r: torch intra-op $1, OpenBLAS $2: $s"
            th+=("$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' <<<"$s")") cth+=("$(sed -n 's/.* cpu_seconds=//p' <<<"$s")")
            tc+=("$(sed -n 's/.*cold_seconds=\([0-9.]*\).*/\1/p' <<<"$s")")
            ctc+=("$(sed -n 's/.*cold_cpu_seconds=\([0-9.]*\).*/\1/p' <<<"$s")")
        done
    done
    local diff
    diff=$("$python" - "$T/hr-$label-grad.csv" "$T/torch-$label.csv" <<'EOF'
import csv, sys
a = {(int(r["layer"]), int(r["head"])): float(r["grad"]) for r in csv.DictReader(open(sys.argv[1]))}
b = {(int(r["layer"]), int(r["head"])): float(r["grad"]) for r in csv.DictReader(open(sys.argv[2]))}
print("%.2g" % (max(abs(a[k] - b[k]) for k in b) / max(abs(v) for v in b.values())))
EOF
)
    "$python" - "$label" "$nwin" "$window" "$diff" "$(minf "${fw[@]}")" "$(minf "${gr[@]}")" "$(minf "${lg[@]}")" \
        "$(minf "${lt[@]}")" "$(minf "${la[@]}")" "$(minf "${th[@]}")" "$(minf "${cfw[@]}")" "$(minf "${cgr[@]}")" \
        "$(minf "${clg[@]}")" "$(minf "${cth[@]}")" "$(minf "${tc[@]}")" "$(minf "${ctc[@]}")" <<'EOF'
import sys
label, nwin, window, diff = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
F, G, LG, LT, LA, TH, CF, CG, CLG, CTH, TC, CTC = (float(x) for x in sys.argv[5:17])
print("RESULT model=%s tokens=%dx%d wall: forward_s=%.4f gate_grads_s=%.4f grad_over_forward=%.2f lab_grad_s=%.4f "
      "lab_taylor_s=%.4f lab_ablation_s=%.3f ablation_over_grad=%.1f torch_grad_s=%.4f torch_over_headroom=%.2f"
      % (label, nwin, window, F, G, G / F, LG, LT, LA, LA / LG, TH, TH / LG))
print("RESULT model=%s tokens=%dx%d cpu: forward_s=%.4f gate_grads_s=%.4f grad_over_forward=%.2f lab_grad_s=%.4f "
      "torch_grad_s=%.4f torch_over_headroom=%.2f max_rel_score_diff=%s"
      % (label, nwin, window, CF, CG, CG / CF, CLG, CTH, CTH / CLG, diff))
# both sides from a loaded model to the scores, setup included: the lab method against torch's first pass
print("RESULT model=%s tokens=%dx%d cold: lab_grad_wall_s=%.4f torch_first_pass_wall_s=%.4f ratio_wall=%.2f "
      "lab_grad_cpu_s=%.4f torch_first_pass_cpu_s=%.4f ratio_cpu=%.2f"
      % (label, nwin, window, LG, TC, TC / LG, CLG, CTC, CTC / CLG))
# steady state: the gate-gradient pass on warm buffers against torch's warm passes
print("RESULT model=%s tokens=%dx%d warm: gate_grads_wall_s=%.4f torch_wall_s=%.4f ratio_wall=%.2f "
      "gate_grads_cpu_s=%.4f torch_cpu_s=%.4f ratio_cpu=%.2f" % (label, nwin, window, G, TH, TH / G, CG, CTH, CTH / CG))
EOF
}

bench_each_model cost "$which_models"

# Ranking quality against the exact ablation sweep.
"$build/headroom" heads "$shared/models/stories260K/stories260K.bin" -f "$text" --tokens "$sp_tokens" \
    --methods ablation,grad,taylor,amp --threads "$threads" --top 0 -o "$T/lab" >/dev/null
"$python" - "$T/lab/heads.csv" "$sp_tokens" "$src/scripts/experiments" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
sys.path.insert(0, sys.argv[3])
from spearman import spearman
abl = [float(r["ablation"]) for r in rows]
for m in ("grad", "taylor", "amp"):
    print("RESULT spearman_vs_ablation method=%s heads=%d tokens=%s rho=%.3f"
          % (m, len(rows), sys.argv[2], spearman([float(r[m]) for r in rows], abl)))
top = sorted(range(len(rows)), key=lambda i: -abl[i])[:5]
for m in ("grad", "taylor"):
    v = [float(r[m]) for r in rows]
    mine = sorted(range(len(rows)), key=lambda i: -v[i])[:5]
    print("RESULT top5_overlap method=%s %d/5 (ablation top 5: %s; %s top 5: %s)"
          % (m, len(set(top) & set(mine)), " ".join("%s.%s" % (rows[i]["layer"], rows[i]["head"]) for i in top), m,
             " ".join("%s.%s" % (rows[i]["layer"], rows[i]["head"]) for i in mine)))
EOF
