#!/usr/bin/env bash
# Quality vs size of stories260K after MLP neuron pruning: AMP (the default
# neuron importance) vs first-order Taylor (`--by taylor`), global budget.
#
# usage: scripts/experiments/prune_mlp.sh [BUILD_DIR] [WORK_DIR]
#        BUILD_DIR: a Release build holding headroom (default build)
#        WORK_DIR:  models, reports and JSON results (default BUILD_DIR/prune-mlp)
# env:   HR_SHARED_DIR (default ../shared of the repo), PM_LEVELS (default "10 25 50"),
#        PM_TOKENS (calibration tokens, default 2048 = prune's default), PM_THREADS (default 2)
# Writes WORK_DIR/table.md and WORK_DIR/commands.txt.
#
# Text split as scripts/experiments/prune_curves.sh: calibration = bytes
# [0, 400000) of tinystories_val.txt; held-out evaluation = bytes
# [600000, 700000), first partial line dropped, every 256-token window.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
work=${2:-$build/prune-mlp}
mkdir -p "$work/models" "$work/eval"
work=$(cd "$work" && pwd)
shared=${HR_SHARED_DIR:-$(cd "$src/../shared" && pwd)}
levels=${PM_LEVELS:-10 25 50}
tokens=${PM_TOKENS:-2048}
threads=${PM_THREADS:-2}
hr=$build/headroom
base=$shared/models/stories260K/stories260K.bin

[[ -x $hr ]] || { echo "prune_mlp: $hr missing (build the Release tree first)" >&2; exit 1; }
. "$here/common.sh"
split_text

start=$SECONDS
for level in $levels; do
    for m in amp taylor; do
        echo "$m: $level % of the neurons ($((SECONDS - start)) s)"
        name=mlp-$m-$level
        run "$hr" prune "$base" --mlp "$level%" --by "$m" -f "$work/calib.txt" --tokens "$tokens" --threads "$threads" \
            --force -o "$work/models/$name.gguf"
        run "$hr" eval "$base" "$work/models/$name.gguf" -f "$work/heldout.txt" --windows 0 --fdtm-prompts 32 \
            --no-speed --threads "$threads" --json "$work/eval/$name.json"
    done
done

/usr/bin/python3 - "$work" "$levels" "$tokens" <<'EOF'
import json, os, sys
work, levels, tokens = sys.argv[1], sys.argv[2].split(), sys.argv[3]
out = ["| neurons removed | method | parameters | perplexity | KL | top-1 | FDTM |", "|---:|---|---:|---:|---:|---:|---:|"]
base = None
for lv in levels:
    for m in ("amp", "taylor"):
        e = json.load(open(os.path.join(work, "eval", "mlp-%s-%s.json" % (m, lv))))
        base = e["ppl_base"]
        out.append("| %s %% | %s | %d | %.3f | %.4f | %.3f | %.2f |" % (lv, m, e["candidate"]["params"],
                   e["ppl_candidate"], e["kl"], e["top1_agreement"], e["fdtm"]))
out.append("")
out.append("Base perplexity %.3f; %s calibration tokens; global budget." % (base, tokens))
open(os.path.join(work, "table.md"), "w").write("\n".join(out) + "\n")
print("\n".join(out))
EOF
echo "done in $((SECONDS - start)) s: $work/table.md"
