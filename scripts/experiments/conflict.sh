#!/usr/bin/env bash
# PH3 on stories260K (docs/RESULTS.md §9): knowledge-conflict pairs built
# from the text, memory vs context heads by path patching into the logits,
# and steering by gating them.
#  1. the text is split in two halves at a line break: heads are found on
#     conflict pairs of the first half, the steering is measured on conflict
#     pairs of the second half (no prompt is shared);
#  2. for the base model, the top-k memory heads gated, the top-k context
#     heads gated (k = 2, 4) and k = 4 random heads (seeds 1-5, drawn
#     uniformly from the 40 heads by Python's random.Random(seed)): the share
#     of clean (conflict) prompts whose top-1 is the context answer / the
#     memory answer, the mean logit(context) - logit(memory), and the
#     perplexity of the first 100 kB of the second half;
#  3. `prune --by ph3-memory --heads 4 --uneven duplicate` gives the same
#     answers as gating those heads.
# usage: scripts/experiments/conflict.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
out=${2:-$(mktemp -d)}
shared=$(cd "$here/../shared" && pwd)
M=$shared/models/stories260K/stories260K.bin
TEXT=$shared/data/text/tinystories_val.txt
hr=$build/headroom
py=/usr/bin/python3
mkdir -p "$out"

"$py" - "$TEXT" "$out" <<'PY'
import sys
t = open(sys.argv[1], encoding="utf-8").read()
cut = t.index("\n", len(t) // 2) + 1
open(sys.argv[2] + "/find.txt", "w", encoding="utf-8").write(t[:cut])
b = t[cut:]
open(sys.argv[2] + "/measure.txt", "w", encoding="utf-8").write(b)
open(sys.argv[2] + "/ppl.txt", "w", encoding="utf-8").write(b[:b.index("\n", 100000) + 1])
PY

echo "## heads (first half, 100 pairs)"
"$hr" patch "$M" --conflict "$out/find.txt" --n-pairs 100 --what none --out "$out/find" --force
echo "## measurement pairs (second half, 200 pairs)"
"$hr" patch "$M" --conflict "$out/measure.txt" --n-pairs 200 --what none --no-dla --no-lens --out "$out/measure" \
  --force | grep -E "^(patch|conflict):"
top() { # method k
  "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); m=sys.argv[2]
hs=sorted(d["heads"], key=lambda h: (-h["scores"][m], h["layer"], h["head"]))
print(",".join("%d.%d" % (h["layer"], h["head"]) for h in hs[:int(sys.argv[3])]))' "$out/find/ph3.json" "$1" "$2"
}
"$py" -c 'import json,sys; d=json.load(open(sys.argv[1]))
for m in ("ph3-memory", "ph3-context"):
    hs=sorted(d["heads"], key=lambda h: -h["scores"][m])[:6]
    print(m, " ".join("%d.%d=%.3f" % (h["layer"], h["head"], h["scores"][m]) for h in hs))' "$out/find/ph3.json"

row() { # label, model, heads ("" = none)
  local label=$1 model=$2 heads=$3 mask=()
  [ -n "$heads" ] && mask=(--mask-heads "$heads")
  "$hr" patch "$model" --pairs "$out/measure/pairs.jsonl" --what none --no-dla --no-lens --out "$out/row" --force \
    "${mask[@]}" >/dev/null 2>&1
  local ppl
  ppl=$("$hr" ppl "$model" -f "$out/ppl.txt" --tokenizer "$shared/models/stories260K/tok512.bin" "${mask[@]}" 2>/dev/null |
    sed -n 's/.*perplexity[: ]*\([0-9.]*\).*/\1/p' | head -1)
  "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); p=d["pairs"]; n=p["count"]
ld=sum(p["clean_metric"])/n
print("| %s | %s | %.3f | %.3f | %+.3f | %s |" % (sys.argv[2], sys.argv[3] or "-", p["clean_top_answer"]/n,
      p["clean_top_wrong"]/n, ld, sys.argv[4]))' "$out/row/patch.json" "$label" "$heads" "$ppl"
}
echo "| model | heads gated to 0 | context answer | memory answer | logit(ctx) - logit(mem) | perplexity |"
echo "|---|---|---|---|---|---|"
row "base" "$M" ""
for k in 2 4; do
  row "top-$k memory heads" "$M" "$(top ph3-memory $k)"
  row "top-$k context heads" "$M" "$(top ph3-context $k)"
done
for s in 1 2 3 4 5; do
  row "random 4, seed $s" "$M" "$("$py" -c 'import random,sys; r=random.Random(int(sys.argv[1]))
print(",".join("%d.%d" % divmod(i, 8) for i in sorted(r.sample(range(40), 4))))' "$s")"
done
echo "## prune --by ph3-memory --heads 4 (a smaller model) vs gating"
# --uneven duplicate: GQA groups may lose different numbers of query heads,
# so exactly the top-4 heads go (the default keeps groups even and removes
# other heads of the same layers)
"$hr" prune "$M" --scores "$out/find/ph3.json" --by ph3-memory --heads 4 --uneven duplicate --out "$out/p4.gguf" \
  --force | head -1
row "pruned: ph3-memory, 4 heads" "$out/p4.gguf" ""
