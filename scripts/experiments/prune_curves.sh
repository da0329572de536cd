#!/usr/bin/env bash
# Quality vs size of stories260K after head pruning (every scoring method and
# random choice) and after MHA->GQA conversion (neighbour vs asym grouping).
#
# usage: scripts/experiments/prune_curves.sh [BUILD_DIR] [WORK_DIR]
#        BUILD_DIR: a Release build holding headroom (default build)
#        WORK_DIR:  models, reports and JSON results (default BUILD_DIR/prune-curves)
# env:   HR_SHARED_DIR (default ../shared of the repo), PC_SEEDS (random seeds,
#        default "1 2 3 4 5"), PC_LEVELS (default "10 25 50 75"),
#        PC_CONFIGS (default "duplicate even perlayer"), PC_THREADS (default 2)
# Writes WORK_DIR/tables.md (the tables of docs/results/prune_curves.md),
# WORK_DIR/results.tsv (one row per candidate) and WORK_DIR/commands.txt.
#
# Text split (tinystories_val.txt, 794 KB): calibration = bytes [0, 400000)
# (head lab, asym grouping); held-out evaluation = bytes [600000, 700000),
# first partial line dropped (~100 KB, ~49k tokens, every 256-token window).
#
# Head selection configurations:
#   duplicate  --uneven duplicate --budget global: the model's lowest-ranked
#              heads go, exactly the requested count (K/V rows are copied
#              where GQA groups end up uneven) -- compares the rankings;
#   even       --uneven even --budget global (the defaults): GQA groups of a
#              layer stay even, so the count removed is rounded per layer
#              (it differs by method);
#   perlayer   --uneven duplicate --budget per-layer: the same count in every
#              layer, the method only ranks heads within a layer (scores
#              need not be comparable across layers).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
work=${2:-$build/prune-curves}
mkdir -p "$work"
work=$(cd "$work" && pwd)
shared=${HR_SHARED_DIR:-$(cd "$src/../shared" && pwd)}
seeds=${PC_SEEDS:-1 2 3 4 5}
levels=${PC_LEVELS:-10 25 50 75}
configs=${PC_CONFIGS:-duplicate even perlayer}
threads=${PC_THREADS:-2}
hr=$build/headroom
base=$shared/models/stories260K/stories260K.bin

[[ -x $hr ]] || { echo "prune_curves: $hr missing (build the Release tree first)" >&2; exit 1; }
mkdir -p "$work/models" "$work/eval"
start=$SECONDS
. "$here/common.sh"
split_text

echo "head lab on the calibration text"
run "$hr" heads "$base" -f "$work/calib.txt" --tokens 4096 --threads "$threads" --methods all -o "$work/lab"

evaluate() { # NAME: compares models/NAME.gguf with the base on the held-out text
    run "$hr" eval "$base" "$work/models/$1.gguf" -f "$work/heldout.txt" --windows 0 --fdtm-prompts 32 \
        --no-speed --threads "$threads" --json "$work/eval/$1.json"
}

# id:flag. prune ranks every method by its "higher" field: "more important"
# keeps the highest, "more harmless" (fdtm) removes the highest first; the
# traits confidence ("more confident") and entropy ("more diffuse") are kept
# as they are / inverted (--invert) so that the heads judged least
# important go first.
methods="ablation ablation_kl ablation_greedy amp grad taylor fdtm confidence entropy:invert"

flags_of() {
    case $1 in
        duplicate) echo "--uneven duplicate --budget global" ;;
        even) echo "--uneven even --budget global" ;;
        perlayer) echo "--uneven duplicate --budget per-layer" ;;
        *) echo "prune_curves: unknown configuration '$1'" >&2; exit 1 ;;
    esac
}

for mode in $configs; do
    f=$(flags_of "$mode")
    read -r -a flags <<<"$f"
    for level in $levels; do
        echo "$mode: $level % of the heads ($((SECONDS - start)) s)"
        for spec in $methods; do
            id=${spec%%:*}
            inv=()
            [[ $spec == *:invert ]] && inv=(--invert)
            name=$mode-$id-$level
            run "$hr" prune "$base" --scores "$work/lab/heads.json" --by "$id" "${inv[@]}" --heads "$level%" \
                "${flags[@]}" --threads "$threads" -o "$work/models/$name.gguf"
            evaluate "$name"
        done
        for seed in $seeds; do
            name=$mode-random$seed-$level
            run "$hr" prune "$base" --by random --seed "$seed" --heads "$level%" "${flags[@]}" \
                --threads "$threads" -o "$work/models/$name.gguf"
            evaluate "$name"
        done
    done
done

echo "GQA conversion ($((SECONDS - start)) s)"
for kv in 2 1; do
    for grouping in neighbour asym; do
        name=gqa-$grouping-kv$kv
        run "$hr" gqa "$base" --kv-heads "$kv" --grouping "$grouping" -f "$work/calib.txt" --threads "$threads" \
            -o "$work/models/$name.gguf"
        evaluate "$name"
    done
done

/usr/bin/python3 - "$work" "$levels" "$seeds" "$configs" "$methods" <<'EOF'
import json, math, os, statistics, sys

work, levels, seeds, modes, methods = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split(), sys.argv[5].split()
ids = [m.split(":")[0] for m in methods]
label = {m.split(":")[0]: m.split(":")[0] + (" (inverted)" if m.endswith(":invert") else "") for m in methods}
label["fdtm"] = "fdtm (harmless first)"

def load(name):
    e = json.load(open(os.path.join(work, "eval", name + ".json")))
    rep = os.path.join(work, "models", name + ".gguf.prune.json")
    p = json.load(open(rep)) if os.path.exists(rep) else {}
    return {"ppl": e["ppl_candidate"], "kl": e["kl"], "top1": e["top1_agreement"], "fdtm": e["fdtm"],
            "heads": p.get("heads_removed", 0), "params": e["candidate"]["params"],
            "kv": e["candidate"]["kv_bytes_per_token"], "ppl_base": e["ppl_base"], "fdtm_gen": e["fdtm_gen"]}

rows, tsv = {}, ["name\tmode\tmethod\tlevel\theads_removed\tparams\tkv_bytes_per_token\tppl\tkl\ttop1\tfdtm"]
for mode in modes:
    for lv in levels:
        for i in ids + ["random" + s for s in seeds]:
            name = f"{mode}-{i}-{lv}"
            r = rows[name] = load(name)
            tsv.append(f"{name}\t{mode}\t{i}\t{lv}\t{r['heads']}\t{r['params']}\t{r['kv']}\t{r['ppl']:.4f}\t{r['kl']:.5f}\t{r['top1']:.4f}\t{r['fdtm']:.3f}")
for kv in ("2", "1"):
    for g in ("neighbour", "asym"):
        name = f"gqa-{g}-kv{kv}"
        r = rows[name] = load(name)
        tsv.append(f"{name}\tgqa\t{g}\tkv{kv}\t0\t{r['params']}\t{r['kv']}\t{r['ppl']:.4f}\t{r['kl']:.5f}\t{r['top1']:.4f}\t{r['fdtm']:.3f}")
open(os.path.join(work, "results.tsv"), "w").write("\n".join(tsv) + "\n")

any_row = next(iter(rows.values()))
metrics = [("ppl", "perplexity (held-out)", "%.3f", False), ("kl", "KL(base‖pruned), nats/token", "%.4f", False),
           ("top1", "top-1 agreement with the base", "%.3f", True),
           ("fdtm", "FDTM (first divergent token of %d)" % any_row["fdtm_gen"], "%.2f", True)]
out = [f"Base model: perplexity {any_row['ppl_base']:.3f} on the held-out text, 40 heads (5 layers × 8, 4 KV heads per layer), "
       f"260032 parameters, 1280 KV bytes/token.\n"]

def rand_stats(mode, lv, key):
    v = [rows[f"{mode}-random{s}-{lv}"][key] for s in seeds]
    return statistics.mean(v), (statistics.stdev(v) if len(v) > 1 else 0.0), min(v), max(v)

for mode in modes:
    flags = {"duplicate": "--uneven duplicate --budget global", "even": "--uneven even --budget global",
             "perlayer": "--uneven duplicate --budget per-layer"}[mode]
    out.append(f"### Head pruning, {mode} (`{flags}`)\n")
    hdr = "| method | " + " | ".join(f"{lv} %" for lv in levels) + " |"
    sep = "|---|" + "---:|" * len(levels)
    out += ["Heads removed (of 40) / parameters:\n", hdr, sep]
    for i in ids + ["random" + s for s in seeds]:
        out.append(f"| {label.get(i, i)} | " + " | ".join(
            f"{rows[f'{mode}-{i}-{lv}']['heads']} / {rows[f'{mode}-{i}-{lv}']['params']}" for lv in levels) + " |")
    out.append("")
    for key, title, fmt, higher_better in metrics:
        out += [f"{title}:\n", hdr, sep]
        for i in ids:
            cells = []
            for lv in levels:
                v = rows[f"{mode}-{i}-{lv}"][key]
                m, sd, lo, hi = rand_stats(mode, lv, key)
                better = v > hi if higher_better else v < lo
                cells.append((fmt % v) + (" ✓" if better else ""))
            out.append(f"| {label[i]} | " + " | ".join(cells) + " |")
        out.append(f"| random, mean ± sd ({len(seeds)} seeds) | " + " | ".join(
            (fmt % rand_stats(mode, lv, key)[0]) + " ± " + (fmt % rand_stats(mode, lv, key)[1]) for lv in levels) + " |")
        out.append("| random, min – max | " + " | ".join(
            (fmt % rand_stats(mode, lv, key)[2]) + " – " + (fmt % rand_stats(mode, lv, key)[3]) for lv in levels) + " |")
        out.append("")
    out.append("✓ = better than every random seed at that level.\n")
    # how often each method beats the random mean / the best seed, over levels and metrics
    out += ["Score-guided vs random (over the 4 metrics × levels):\n",
            "| method | beats random mean | beats every seed |", "|---|---:|---:|"]
    for i in ids:
        bm = be = n = 0
        for lv in levels:
            for key, _, _, hb in metrics:
                v = rows[f"{mode}-{i}-{lv}"][key]
                m, sd, lo, hi = rand_stats(mode, lv, key)
                n += 1
                bm += (v > m) if hb else (v < m)
                be += (v > hi) if hb else (v < lo)
        out.append(f"| {label[i]} | {bm}/{n} | {be}/{n} |")
    out.append("")
    # ASCII chart: log perplexity vs level
    out += ["```", f"perplexity vs heads pruned ({mode}); bar length ∝ ln(ppl / base ppl)"]
    scale = max(math.log(r["ppl"] / r["ppl_base"]) for n, r in rows.items() if n.startswith(mode + "-")) or 1
    for lv in levels:
        for i in ids + ["random"]:
            v = rand_stats(mode, lv, "ppl")[0] if i == "random" else rows[f"{mode}-{i}-{lv}"]["ppl"]
            bar = "#" * max(0, round(50 * math.log(v / any_row["ppl_base"]) / scale))
            out.append(f"{lv:>3}% {('random mean' if i == 'random' else i):<12} {v:8.3f} {bar}")
        out.append("")
    out += ["```", ""]

out += ["### MHA → GQA (query heads stay 8 per layer; K/V of a group replaced by their mean)\n",
        "| KV heads per layer | grouping | parameters | KV bytes/token | perplexity | KL | top-1 | FDTM |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
        f"| 4 (base) | — | 260032 | 1280 | {any_row['ppl_base']:.3f} | 0 | 1 | {any_row['fdtm_gen']} |"]
for kv in ("2", "1"):
    for g in ("neighbour", "asym"):
        r = rows[f"gqa-{g}-kv{kv}"]
        out.append(f"| {kv} | {g} | {r['params']} | {r['kv']} | {r['ppl']:.3f} | {r['kl']:.4f} | {r['top1']:.3f} | {r['fdtm']:.2f} |")
out.append("")
open(os.path.join(work, "tables.md"), "w").write("\n".join(out))
EOF
echo "done in $((SECONDS - start)) s: $work/tables.md, $work/results.tsv, $work/commands.txt"
