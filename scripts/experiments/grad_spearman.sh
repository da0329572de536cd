#!/usr/bin/env bash
# How well the gradient head scores (`grad`, `taylor`) and `amp` predict the
# exact ablation ranking of stories260K's heads, over several calibration
# texts: Spearman rank correlation over the 40 heads between each method and
# `ablation` (the exact sweep: every head gated to 0 in turn, mean loss
# increase) computed on the same windows, and the overlap of the 10 heads
# each method ranks least important with ablation's 10 (the heads a 25 %
# pruning would remove). As a noise ceiling, the Spearman between the
# ablation rankings of two different TinyStories slices.
#
# usage: scripts/experiments/grad_spearman.sh [BUILD_DIR] [WORK_DIR]
#        BUILD_DIR: a Release build holding headroom (default build)
#        WORK_DIR:  calibration slices and head-lab folders (default BUILD_DIR/grad-spearman)
# env:   HR_SHARED_DIR (default ../shared of the repo), GS_TOKENS (default 4096 = 16 windows of 256),
#        GS_THREADS (default 2)
# Writes WORK_DIR/table.md (the table of docs/RESULTS.md) and WORK_DIR/commands.txt.
#
# Calibration texts: four disjoint 150 KB slices of tinystories_val.txt
# (bytes [0, 150000), [200000, 350000), [400000, 550000), [600000, 750000),
# the model's own domain) and, out of domain, the first 150 KB of
# wikitext2_test.raw and of tinyshakespeare.txt; partial lines at either end
# dropped.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
work=${2:-$build/grad-spearman}
mkdir -p "$work"
work=$(cd "$work" && pwd)
shared=${HR_SHARED_DIR:-$(cd "$src/../shared" && pwd)}
tokens=${GS_TOKENS:-4096}
threads=${GS_THREADS:-2}
hr=$build/headroom
base=$shared/models/stories260K/stories260K.bin
text=$shared/data/text

[[ -x $hr ]] || { echo "grad_spearman: $hr missing (build the Release tree first)" >&2; exit 1; }
. "$here/common.sh"
slices="ts0 ts200k ts400k ts600k wikitext shakespeare"
cut() { # NAME FILE SKIP: whole lines only (partial first / last lines dropped)
    local first='1d'
    [[ $3 == 0 ]] && first=''
    dd if="$2" iflag=skip_bytes,count_bytes skip="$3" count=150000 status=none | sed "$first;\$d" >"$work/$1.txt"
    echo "# dd if=$(basename "$2") iflag=skip_bytes,count_bytes skip=$3 count=150000 | sed '$first;\$d' > WORK/$1.txt" \
        >>"$work/commands.txt"
}
cut ts0 "$text/tinystories_val.txt" 0
cut ts200k "$text/tinystories_val.txt" 200000
cut ts400k "$text/tinystories_val.txt" 400000
cut ts600k "$text/tinystories_val.txt" 600000
cut wikitext "$text/wikitext2_test.raw" 0
cut shakespeare "$text/tinyshakespeare.txt" 0

start=$SECONDS
for s in $slices; do
    echo "head lab on $s ($((SECONDS - start)) s)"
    run "$hr" heads "$base" -f "$work/$s.txt" --tokens "$tokens" --methods ablation,grad,taylor,amp \
        --threads "$threads" --top 0 -q --force -o "$work/lab-$s"
done

/usr/bin/python3 - "$work" "$slices" "$tokens" "$here" <<'EOF'
import csv, itertools, os, statistics, sys

work, slices, tokens = sys.argv[1], sys.argv[2].split(), sys.argv[3]
sys.path.insert(0, sys.argv[4])
from spearman import spearman
methods = ("grad", "taylor", "amp")

def bottom(v, k=10):
    return set(sorted(range(len(v)), key=lambda i: v[i])[:k])

lab = {}
for s in slices:
    rows = list(csv.DictReader(open(os.path.join(work, "lab-" + s, "heads.csv"))))
    lab[s] = {m: [float(r[m]) for r in rows] for m in ("ablation",) + methods}
n = len(lab[slices[0]]["ablation"])
out = ["| calibration text | " + " | ".join("ρ(%s, ablation)" % m for m in methods) + " | " +
       " | ".join("bottom-10 overlap %s" % m for m in methods) + " |",
       "|---|" + "---:|" * (2 * len(methods))]
per = {m: [] for m in methods}
for s in slices:
    a = lab[s]["ablation"]
    rho = [spearman(lab[s][m], a) for m in methods]
    ov = [len(bottom(lab[s][m]) & bottom(a)) for m in methods]
    for m, r in zip(methods, rho):
        per[m].append(r)
    out.append("| %s | %s | %s |" % (s, " | ".join("%.3f" % r for r in rho), " | ".join("%d/10" % o for o in ov)))
ts = [s for s in slices if s.startswith("ts")]
out.append("| mean over the 4 TinyStories slices | %s |%s" % (" | ".join(
    "%.3f" % statistics.mean(per[m][slices.index(s)] for s in ts) for m in methods), " |" * len(methods)))
ceil = [spearman(lab[x]["ablation"], lab[y]["ablation"]) for x, y in itertools.combinations(ts, 2)]
out.append("")
out.append("Noise ceiling: Spearman between the ablation rankings of two TinyStories slices, %.3f – %.3f "
           "(mean %.3f over the %d pairs); %d heads, %s calibration tokens per text." %
           (min(ceil), max(ceil), statistics.mean(ceil), len(ceil), n, tokens))
open(os.path.join(work, "table.md"), "w").write("\n".join(out) + "\n")
print("\n".join(out))
EOF
echo "done in $((SECONDS - start)) s: $work/table.md, $work/commands.txt"
