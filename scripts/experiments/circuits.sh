#!/usr/bin/env bash
# The circuits seed studies of docs/RESULTS.md §9 on stories260K:
#  1. retrieval heads: natural-needle retrieval scores; masking the top-4
#     retrieval heads vs 4 random heads (10 seeds) on the natural retrieval
#     task (name recall) and on perplexity;
#  2. name recall: activation patching (heads, residual per position), path
#     patching into the logits, DLA and the logit lens on name-recall pairs
#     built from the text;
#  3. correct-letter heads: DLA and patching at the answer-letter position
#     on multiple-choice items (lm-eval-style JSONL) written from the text.
# usage: scripts/experiments/circuits.sh [BUILD_DIR] [OUT_DIR]
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

echo "## 1. retrieval heads"
"$hr" heads "$M" --text "$TEXT" --methods retrieval --needles natural --out "$out/lab" --force >/dev/null
top=$("$py" - "$out/lab/heads.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
hs = sorted(d["heads"], key=lambda h: (-h["scores"]["retrieval"], h["layer"], h["head"]))
print(" ".join("%d.%d=%.4f" % (h["layer"], h["head"], h["scores"]["retrieval"]) for h in hs[:8]), file=sys.stderr)
print(",".join("%d.%d" % (h["layer"], h["head"]) for h in hs[:4]))
PY
)
echo "top-4 natural retrieval heads: $top"
row() { # label, eval options...
  local label=$1; shift
  "$hr" eval "$M" --text "$TEXT" --recall --recall-items 500 --no-speed --json "$out/e.json" --force "$@" >/dev/null
  "$py" -c 'import json,sys; r=json.load(open(sys.argv[1])); c=r["recall"]
print("| %s | %s | %.3f | %.3f | %+.3f | %.4f | %.4f |" % (sys.argv[2], r.get("candidate_heads", ""), c["acc_base"],
      c["acc_candidate"], c["acc_candidate"] - c["acc_base"], r["ppl_base"], r["ppl_candidate"]))' "$out/e.json" "$label"
}
echo "| candidate | heads masked | recall base | recall candidate | change | ppl base | ppl candidate |"
echo "|---|---|---|---|---|---|---|"
row "top-4 retrieval" --mask-heads "$top"
for s in 1 2 3 4 5 6 7 8 9 10; do row "random, seed $s" --random-heads 4 --seed "$s"; done

echo "## 2. name recall"
"$hr" patch "$M" --name-recall "$TEXT" --n-pairs 100 --what heads,resid --path "* -> logits" --out "$out/recall" --force
"$py" - "$out/recall/patch.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
def top(m, k=6):
    cells = [(v, l, h) for l, row in enumerate(m) for h, v in enumerate(row) if v is not None]
    return ", ".join("%d.%d %.3f" % (l, h, v) for v, l, h in sorted(cells, key=lambda c: -abs(c[0]))[:k])
print("clean logit diff %.3f, corrupt %.3f" % (d["clean"], d["corrupt"]))
print("patching heads:", top(d["patching"]["heads"]["values"]))
print("path -> logits:", top(d["path"]["senders"]["values"]))
print("DLA heads:", top(d["dla"]["heads"]), "| mlp", ["%.3f" % v for v in d["dla"]["mlp"]],
      "| embed %.3f | sum %.3f of %.3f" % (d["dla"]["embed"], d["dla"]["sum_of_parts"], d["dla"]["logit_diff"]))
print("lens rank:", ["%.1f" % v for v in d["lens"]["rank"]], "logit diff:", ["%.2f" % v for v in d["lens"]["logit_diff"]])
r = d["patching"]["resid"]["values"]
print("resid, last position:", ["%.3f" % row[-1] for row in r])
PY

echo "## 3. correct letter"
"$py" - "$TEXT" "$out/letters.jsonl" <<'PY'
import json, random, re, sys
text = open(sys.argv[1], encoding="utf-8").read()[:200000]
names = sorted(set(re.findall(r"(?<=[a-z,] )([A-Z][a-z]{2,})\b", text)))
rng = random.Random(0)
items = []
for para in text.split("\n"):
    m = re.search(r"named ([A-Z][a-z]{2,})\.", para)
    if not m or len(items) >= 200:
        continue
    gold = m.group(1)
    others = rng.sample([n for n in names if n != gold and n not in para], 3)
    choices = others + [gold]
    rng.shuffle(choices)
    ctx = para[:m.end()] + " What is the name?"
    items.append({"context": ctx, "choices": [" " + c for c in choices], "gold": choices.index(gold)})
with open(sys.argv[2], "w") as f:
    for it in items:
        f.write(json.dumps(it) + "\n")
print("%d items" % len(items))
PY
"$hr" patch "$M" --letters "$out/letters.jsonl" --what heads,resid --out "$out/letters" --force
"$py" - "$out/letters/patch.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
def top(m, k=6):
    cells = [(v, l, h) for l, row in enumerate(m) for h, v in enumerate(row) if v is not None]
    return ", ".join("%d.%d %.3f" % (l, h, v) for v, l, h in sorted(cells, key=lambda c: -abs(c[0]))[:k])
pc = d["pairs"]["clean_metric"]
print("pairs %d; clean logit diff %.4f, corrupt %.4f; the gold letter beats the other in %d of %d clean prompts"
      % (d["pairs"]["count"], d["clean"], d["corrupt"], sum(v > 0 for v in pc), len(pc)))
print("warning:", d.get("warning", "none"))
print("patching heads:", top(d["patching"]["heads"]["values"]))
print("DLA heads:", top(d["dla"]["heads"]), "| sum %.3f of %.3f" % (d["dla"]["sum_of_parts"], d["dla"]["logit_diff"]))
print("lens rank:", ["%.1f" % v for v in d["lens"]["rank"]])
PY
echo "outputs in $out"
