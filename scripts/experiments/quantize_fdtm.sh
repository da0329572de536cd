#!/usr/bin/env bash
# FDTM-chosen vs perplexity-chosen vs random int8 (GGUF Q8_0) on
# stories260K, docs/RESULTS.md §11: `headroom quantize` scores every weight
# matrix on the first 4096 tokens of tinystories_val.txt and writes the model
# with 50 / 80 / 95 % of the eligible parameters as Q8_0; `headroom eval`
# measures each result against the f32 model on held-out text (the last
# 300 kB of tinystories_val.txt, first 16384 tokens): perplexity, KL,
# top-1 agreement and FDTM (64 prompts, 32-token continuations). Random
# choices run with 5 seeds at each P and, where the ranked choices stop
# short of P (a large matrix ranked late does not fit), also at the share
# they reached, so that every ranking has a random baseline of equal size.
# FORMAT=int8 runs the same with per-channel int8 (`quantize --format int8`:
# the attention / MLP projections eligible, Hugging Face folders written).
# usage: [FORMAT=q8_0|int8] scripts/experiments/quantize_fdtm.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
out=${2:-$(mktemp -d)}
shared=$(cd "$here/../shared" && pwd)
M=$shared/models/stories260K/stories260K.bin
TEXT=$shared/data/text/tinystories_val.txt
hr=$build/headroom
py=/usr/bin/python3
seeds="1 2 3 4 5"
format=${FORMAT:-q8_0}
if [ "$format" = int8 ]; then sfx=.i8; else sfx=.gguf; fi
mkdir -p "$out"
tail -c 300000 "$TEXT" >"$out/heldout.txt"

row() { # label, model [quantize.json]
  local e="$out/eval-${2##*/}.json"
  "$hr" eval "$M" "$2" -f "$out/heldout.txt" --fdtm-prompts 64 --no-speed --json "$e" --force -q >/dev/null
  "$py" - "$e" "$1" "${3:-}" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
q = json.load(open(sys.argv[3])) if sys.argv[3] else None
share = "%.1f / %.1f" % (100 * q["int8_share_of_eligible"], 100 * q["int8_share_of_all"]) if q else "100 / all eligible"
print("| %s | %s | %.4f | %+.4f | %.2e | %.4f | %.2f |" % (sys.argv[2], share, r["ppl_candidate"],
      r["ppl_candidate"] - r["ppl_base"], r["kl"], r["top1_agreement"], r["fdtm"]))
PY
}

"$hr" eval "$M" "$M" -f "$out/heldout.txt" --fdtm-prompts 64 --no-speed --json "$out/e.json" --force -q >/dev/null
"$py" -c 'import json,sys; r=json.load(open(sys.argv[1])); print("f32 perplexity on the held-out text: %.4f (%d tokens)" % (r["ppl_base"], r["scored_tokens"]))' "$out/e.json"
echo
echo "| choice | int8 % of eligible / all params | ppl | Δppl | KL | top-1 | FDTM (of 32) |"
echo "|---|---|---|---|---|---|---|"
if [ "$format" = int8 ]; then
  "$hr" convert "$M" "$out/all.i8" --to hf --dtype int8 --force >/dev/null 2>&1
  row "all eligible (convert --to hf --dtype int8)" "$out/all.i8"
else
  "$hr" convert "$M" "$out/all.gguf" --to gguf --dtype q8_0 --force >/dev/null 2>&1
  row "all eligible (convert --dtype q8_0)" "$out/all.gguf"
fi
random_rows() { # P
  for s in $seeds; do
    "$hr" quantize "$M" --by random --int8 $1% --seed $s --format "$format" -o "$out/random$1-$s$sfx" --force -q >/dev/null
    row "random $1 % (seed $s)" "$out/random$1-$s$sfx" "$out/random$1-$s$sfx.quantize.json"
  done
  "$py" - "$out" "$1" "$sfx" $seeds <<'PY'
import json, sys, statistics as st
out, p, sfx, seeds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
e = [json.load(open("%s/eval-random%s-%s%s.json" % (out, p, s, sfx))) for s in seeds]
q = [json.load(open("%s/random%s-%s%s.quantize.json" % (out, p, s, sfx))) for s in seeds]
m = lambda xs: "%.4g ± %.2g" % (st.mean(xs), st.stdev(xs))
print("| **random %s %%, mean ± sd of %d seeds** | %.1f / %.1f | %s | %s | %s | %s | %s |" % (p, len(seeds),
      100 * st.mean(x["int8_share_of_eligible"] for x in q), 100 * st.mean(x["int8_share_of_all"] for x in q),
      m([x["ppl_candidate"] for x in e]), m([x["ppl_candidate"] - x["ppl_base"] for x in e]), m([x["kl"] for x in e]),
      m([x["top1_agreement"] for x in e]), m([x["fdtm"] for x in e])))
PY
}
for p in 50 80 95; do
  for by in fdtm ppl; do
    "$hr" quantize "$M" --by $by --int8 $p% --format "$format" -f "$TEXT" -o "$out/$by$p$sfx" --force -q >/dev/null
    row "$by $p %" "$out/$by$p$sfx" "$out/$by$p$sfx.quantize.json"
  done
  random_rows $p
  reached=$("$py" -c 'import json,sys; print("%.1f" % (100 * json.load(open(sys.argv[1]))["int8_share_of_eligible"]))' \
    "$out/fdtm$p$sfx.quantize.json")
  "$py" -c 'import sys; sys.exit(0 if float(sys.argv[2]) - float(sys.argv[1]) > 2 else 1)' "$reached" $p &&
    random_rows "$reached"
done
echo
echo "per-matrix scores (fdtm run): $out/fdtm80$sfx.quantize.json"
