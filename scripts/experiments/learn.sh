#!/usr/bin/env bash
# Training measurements of docs/RESULTS.md §10: a stories260K-shape model
# trained from random initialisation, and recovery of a pruned stories260K
# (50 % of heads and 25 % of MLP neurons removed) by LoRA fine-tuning.
#
# usage: scripts/experiments/learn.sh [BUILD_DIR] [WORK_DIR] [scratch|recover|all]
#        BUILD_DIR: a Release build holding headroom (default build)
#        WORK_DIR:  texts, models and logs (default BUILD_DIR/learn)
# env:   HR_SHARED_DIR (default ../shared of the repo), LEARN_STEPS (from
#        scratch, default 1500), RECOVER_STEPS (default 1000)
#
# Text split (tinystories_val.txt, 794 KB), at the last line break before 90 %:
#   train.txt   = bytes [0, 714876)      training, calibration, recovery
#   heldout.txt = bytes [714876, end)    evaluation only (headroom ppl)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
work=${2:-$build/learn}
what=${3:-all}
shared=${HR_SHARED_DIR:-$here/../../../shared}
hr="$build/headroom"
M="$shared/models/stories260K/stories260K.bin"
mkdir -p "$work"
/usr/bin/python3 "$here/split_text.py" "$shared/data/text/tinystories_val.txt" "$work"
ppl() { "$hr" ppl "$1" -f "$work/heldout.txt" -q | sed -n 's/.*perplexity[: ]*\([0-9.]*\).*/\1/p' | head -1; }

if [ "$what" != recover ]; then
  start=$(date +%s)
  "$hr" train --config "dim=64,layers=5,heads=8,kv-heads=4,hidden=172,seq=256,vocab-from=$shared/models/stories260K/tok512.bin" \
    -f "$work/train.txt" --steps "${LEARN_STEPS:-1500}" --lr 5e-3 --warmup 50 --batch 8 --window 256 --weight-decay 0.1 \
    --eval-every 100 -q -o "$work/scratch.gguf" | tee "$work/scratch.log"
  echo "minutes: $(( ($(date +%s) - start) / 60 ))" | tee -a "$work/scratch.log"
  echo "held-out perplexity (heldout.txt): scratch $(ppl "$work/scratch.gguf"), stories260K $(ppl "$M")" | tee -a "$work/scratch.log"
fi
if [ "$what" != scratch ]; then
  "$hr" heads "$M" -f "$work/train.txt" -o "$work/lab" --methods ablation_greedy -q --top 0 > /dev/null
  common=(prune "$M" --scores "$work/lab/heads.json" --by ablation_greedy --heads 50% --mlp 25% -f "$work/train.txt" -q)
  "$hr" "${common[@]}" -o "$work/pruned.gguf" > "$work/pruned.log"
  "$hr" "${common[@]}" --recover "${RECOVER_STEPS:-1000}" --recover-text "$work/train.txt" --lora-rank 8 --lr 3e-3 \
    -o "$work/recovered.gguf" | tee "$work/recovered.log"
  echo "held-out perplexity (heldout.txt): base $(ppl "$M"), pruned $(ppl "$work/pruned.gguf"), recovered $(ppl "$work/recovered.gguf")" |
    tee -a "$work/recovered.log"
fi
