#!/usr/bin/env bash
# Sublayers as one pool on stories260K: FinerCut (iterative, re-scored after
# each removal) against the one-shot rankings — FinerCut's output change
# ranked once (--by-output) and "What Matters in Transformers"' joint layer
# drop by the 1 - cos layer metrics computed on the calibration text — at
# K = 1 .. 2 n_layers - 1 sublayers dropped, each scored by held-out
# perplexity (headroom ppl, 256-token windows).
#
# usage: scripts/experiments/sublayer_drops.sh [BUILD_DIR] [WORK_DIR]
# env:   HR_SHARED_DIR (default ../shared of the repo), SD_TOKENS (calibration
#        tokens, default 2048), SD_MAX_K (default 9)
# Text split as prune_curves.sh: calibration = bytes [0, 400000) of
# tinystories_val.txt, held out = bytes [600000, 700000), first partial line
# dropped. Writes WORK_DIR/table.md and WORK_DIR/commands.txt.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
work=${2:-$build/sublayer-drops}
mkdir -p "$work"
work=$(cd "$work" && pwd)
shared=${HR_SHARED_DIR:-$(cd "$src/../shared" && pwd)}
tokens=${SD_TOKENS:-2048}
max_k=${SD_MAX_K:-9}
hr=$build/headroom
base=$shared/models/stories260K/stories260K.bin
text=$shared/data/text/tinystories_val.txt
[[ -x $hr ]] || { echo "sublayer_drops: $hr missing (build the Release tree first)" >&2; exit 1; }

head -c 400000 "$text" >"$work/calib.txt"
dd if="$text" iflag=skip_bytes,count_bytes skip=600000 count=100000 status=none | sed 1d >"$work/heldout.txt"
: >"$work/commands.txt"
run() {
    echo "$*" | sed -e "s#$shared#../shared#g" -e "s#$work#WORK#g" -e "s#$build#BUILD#g" >>"$work/commands.txt"
    "$@"
}
ppl() { run "$hr" ppl "$1" --text "$work/heldout.txt" 2>/dev/null | awk '/^perplexity:/ {print $2}'; }
# "L.attn L.mlp ..." in the order prune chose them
order() { awk '/^sublayer drop/ {sub(/:$/, "", $3); printf "%s%d.%s", (n++ ? " " : ""), $5, ($6 == "attention" ? "attn" : "mlp")}'; }

{
    echo "| K | FinerCut iterative | order | FinerCut one shot | order | joint drop (1 - cos) | order |"
    echo "|---|---|---|---|---|---|---|"
    echo "| 0 | $(ppl "$base") | | | | | |"
} >"$work/table.md"
for k in $(seq 1 "$max_k"); do
    row="| $k"
    for mode in iterative by-output joint; do
        flag=(); [[ $mode != joint ]] && flag=(--"$mode")
        out=$work/$mode-$k.gguf
        o=$(run "$hr" prune "$base" --drop-sublayers "$k" "${flag[@]}" --text "$work/calib.txt" --tokens "$tokens" \
            --out "$out" --force 2>/dev/null | order)
        row="$row | $(ppl "$out") | $o"
    done
    echo "$row |" >>"$work/table.md"
done
cat "$work/table.md"
