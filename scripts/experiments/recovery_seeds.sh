#!/usr/bin/env bash
# Recovery comparisons of docs/RESULTS.md §10 over several seeds: stories260K
# with 50 % of its heads and 25 % of its MLP neurons removed, then the same
# LoRA budget (rank 8 on all seven matrices, RECOVER_STEPS steps, lr 3e-3):
#   (a) LoRAPrune iterative (--iterations 4) against one-shot pruning + the
#       same LoRA budget (LoRAPrune's own criterion with --iterations 1, and
#       the one-shot scores below);
#   (b) head scores grad / taylor / ablation_greedy (head lab on the seed's
#       calibration text), each pruned once and recovered the same way;
#   (c) the recovery budget: CFSP's per-layer ranks (--recover-budget cfsp)
#       against uniform rank 8, for one-shot taylor and for LoRAPrune.
# Held-out perplexity on heldout.txt (never trained or calibrated on) before
# and after recovery; mean ± sd over the seeds.
#
# usage: scripts/experiments/recovery_seeds.sh [BUILD_DIR] [WORK_DIR]
# env:   HR_SHARED_DIR (default ../shared of the repo), SEEDS (default "1 2 3"),
#        RECOVER_STEPS (default 400), THREADS (default 2)
#
# Text split as learn.sh (tinystories_val.txt at the last line break before
# 90 %): train.txt (training, calibration, recovery) and heldout.txt
# (evaluation only). Seed s: calibration text = 60,000 bytes of train.txt
# from byte 130,000 (s - 1) (head lab scores, MLP importance); LoRA
# initialisation and training windows from --seed s.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
work=${2:-$build/recovery}
shared=${HR_SHARED_DIR:-$here/../../../shared}
seeds=${SEEDS:-1 2 3}
steps=${RECOVER_STEPS:-400}
threads=${THREADS:-2}
hr="$build/headroom"
M="$shared/models/stories260K/stories260K.bin"
mkdir -p "$work"
/usr/bin/python3 "$here/split_text.py" "$shared/data/text/tinystories_val.txt" "$work" > /dev/null
ppl() { "$hr" ppl "$1" -f "$work/heldout.txt" -q --threads "$threads" | sed -n 's/.*perplexity[: ]*\([0-9.]*\).*/\1/p' | head -1; }
rows="$work/rows.tsv"
printf 'seed\tvariant\tpruned\trecovered\tparams\n' > "$rows"
params() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['params_after'])" "$1.prune.json"; }
start=$(date +%s)
base=$(ppl "$M")
for s in $seeds; do
  d="$work/seed$s"
  mkdir -p "$d"
  dd if="$work/train.txt" of="$d/calib.txt" bs=1 skip=$(( (s - 1) * 130000 )) count=60000 status=none
  "$hr" heads "$M" -f "$d/calib.txt" -o "$d/lab" --methods grad,taylor,ablation_greedy --threads "$threads" -q --top 0 > /dev/null
  rec=(--recover "$steps" --lora-rank 8 --lr 3e-3 --seed "$s" --threads "$threads" -q)
  for by in grad taylor ablation_greedy; do
    one=(prune "$M" --scores "$d/lab/heads.json" --by "$by" --heads 50% --mlp 25% -f "$d/calib.txt" --threads "$threads" -q)
    "$hr" "${one[@]}" -o "$d/$by.gguf" > /dev/null
    "$hr" "${one[@]}" "${rec[@]}" --recover-text "$work/train.txt" -o "$d/$by-rec.gguf" > /dev/null
    printf '%s\tone-shot %s\t%s\t%s\t%s\n' "$s" "$by" "$(ppl "$d/$by.gguf")" "$(ppl "$d/$by-rec.gguf")" "$(params "$d/$by-rec.gguf")" >> "$rows"
    if [ "$by" = taylor ]; then
      "$hr" "${one[@]}" "${rec[@]}" --recover-text "$work/train.txt" --recover-budget cfsp -o "$d/$by-cfsp.gguf" > /dev/null
      printf '%s\tone-shot taylor, cfsp ranks\t%s\t%s\t%s\n' "$s" "$(ppl "$d/$by.gguf")" "$(ppl "$d/$by-cfsp.gguf")" "$(params "$d/$by-cfsp.gguf")" >> "$rows"
    fi
  done
  lp=(prune "$M" --by loraprune --heads 50% --mlp 25% -f "$work/train.txt" "${rec[@]}")
  for k in 1 4; do
    "$hr" "${lp[@]}" --iterations "$k" -o "$d/lp$k.gguf" > /dev/null
    printf '%s\tloraprune K=%s\t-\t%s\t%s\n' "$s" "$k" "$(ppl "$d/lp$k.gguf")" "$(params "$d/lp$k.gguf")" >> "$rows"
  done
  "$hr" "${lp[@]}" --iterations 4 --recover-budget cfsp -o "$d/lp4-cfsp.gguf" > /dev/null
  printf '%s\tloraprune K=4, cfsp ranks\t-\t%s\t%s\n' "$s" "$(ppl "$d/lp4-cfsp.gguf")" "$(params "$d/lp4-cfsp.gguf")" >> "$rows"
  echo "seed $s done after $(( $(date +%s) - start )) s" >&2
done
/usr/bin/python3 - "$rows" "$base" "$steps" <<'PY'
import statistics as st, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
order = []
for r in rows:
    if r[1] not in order:
        order.append(r[1])
def ms(v):
    v = [float(x) for x in v if x != "-"]
    if not v:
        return "—"
    return "%.2f ± %.2f" % (st.mean(v), st.stdev(v) if len(v) > 1 else 0.0)
print("base stories260K: held-out perplexity %s; %s recovery steps; seeds %s" % (sys.argv[2], sys.argv[3],
      " ".join(sorted({r[0] for r in rows}))))
print("| variant | pruned (before recovery) | after recovery | parameters (mean) |")
print("|---|---|---|---|")
for v in order:
    sel = [r for r in rows if r[1] == v]
    print("| %s | %s | %s | %d |" % (v, ms(r[2] for r in sel), ms(r[3] for r in sel),
                                    round(st.mean(int(r[4]) for r in sel))))
PY
echo "minutes: $(( ($(date +%s) - start) / 60 ))"
