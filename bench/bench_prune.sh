#!/usr/bin/env bash
# Prefill speedup of pruned models vs their FLOP reduction (benchmark, not a test).
#
# usage: bench/bench_prune.sh [BUILD_DIR]       (a Release build holding headroom,
#                                                hr_bench and hr_make_random)
# env:   HR_BENCH_REPEATS (timed prefills per hr_bench call, default 3),
#        HR_BENCH_ROUNDS (interleaved rounds over all models, default 3),
#        HR_BENCH_THREADS (default 2), HR_BENCH_PREFILL (tokens, default 512),
#        HR_BENCH_MODELS_DIR (where the models are generated; default BUILD_DIR),
#        HR_SHARED_DIR (default ../shared of the repo),
#        HR_BENCH_PIN (CPU list for taskset, e.g. 2,3; default: no pinning)
#
# Models (random weights, SmolLM-135M shape: 30 layers, dim 576, 9 heads /
# 3 KV heads of 64, FFN 1536, vocab 49152, tied classifier):
#   base, 25 % / 50 % of the query heads pruned by AMP score (GQA groups kept
#   even: a KV head goes when its 3 query heads go), 25 % / 50 % of the MLP
#   neurons pruned by AMP importance, once with the global budget (each
#   layer keeps a different, odd FFN size) and once per layer ("pl": every
#   layer keeps 1152 / 768 neurons, multiples of 16). Scores come from 256 tokens of
#   tinystories_val.txt through stories260K's 512-token tokenizer (its ids
#   are valid ids of the 49152-token vocabulary; the weights are random, so
#   any text serves).
# Each hr_bench call does one untimed warm-up prefill and HR_BENCH_REPEATS
# timed ones; the model order rotates every round; a model's time is its best
# over all rounds (other processes only ever add time).
#
# FLOPs of one N-token prefill that returns the last position's logits
# (what hr_bench times), from each model's per-layer shapes (headroom info):
#   per layer l:  2*N*D*d*(2*H_l + 2*K_l)     Q, K, V, O projections
#               + 2*H_l*d*N*(N+1)             Q.K^T and P.V over the causal pairs
#               + 2*N*D*F_l*(3 if gated else 2)   MLP
#   plus          2*D*V                       classifier of the last position
# D = dim, d = head_dim, H_l / K_l = query / KV heads, F_l = FFN size, V = vocab.
# Norms, RoPE, softmax and SiLU (O(N*D) each) are left out.
#
# Printed per model: FLOP reduction R = FLOPs(base)/FLOPs(model), speedup
# S = t(base)/t(model), S/R (target >= 0.9), and the realised share of the
# saved FLOPs (1 - t/t_base) / (1 - F/F_base), a stricter reading that does
# not approach 1 just because R is small. The last column repeats S / R with
# each model's median (over rounds) of its per-call best time, as a check of
# how much the best-of choice moves the result.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=${1:-$src/build}
repeats=${HR_BENCH_REPEATS:-3}
rounds=${HR_BENCH_ROUNDS:-3}
threads=${HR_BENCH_THREADS:-2}
n_prefill=${HR_BENCH_PREFILL:-512}
shared=${HR_SHARED_DIR:-$(cd "$src/../shared" && pwd)}
models_dir=${HR_BENCH_MODELS_DIR:-$build}
text=$shared/data/text/tinystories_val.txt
tokenizer=$shared/models/stories260K/tok512.bin

for tool in headroom hr_bench hr_make_random; do
    [[ -x $build/$tool ]] || { echo "bench: $build/$tool missing (build the Release tree first)" >&2; exit 1; }
done

# Inherited OpenBLAS tuning would make this run differ from others.
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
    if [[ -n ${!v+x} ]]; then echo "# unset $v (was '${!v}')"; unset "$v"; fi
done

base=$models_dir/random-smollm135m-shape.bin
lab=$models_dir/prune-bench-lab
if [[ ! -f $base ]]; then
    echo "# generating $base (random weights, SmolLM-135M shape, ~540 MB)"
    "$build/hr_make_random" --preset smollm-135m --seed 1 "$base"
fi
if [[ ! -f $lab/heads.json ]]; then
    echo "# head scores (AMP) -> $lab/heads.json"
    "$build/headroom" heads "$base" --tokenizer "$tokenizer" -f "$text" --methods amp --tokens 256 \
        --threads "$threads" -o "$lab" >/dev/null
fi

prune() { # NAME ARGS...: writes $models_dir/smol-NAME.gguf once
    local out=$models_dir/smol-$1.gguf
    shift
    [[ -f $out ]] && return 0
    echo "# headroom prune $* -> $out"
    "$build/headroom" prune "$base" --tokenizer "$tokenizer" --threads "$threads" "$@" -o "$out" >/dev/null
}
prune heads25 --scores "$lab/heads.json" --by amp --heads 25%
prune heads50 --scores "$lab/heads.json" --by amp --heads 50%
prune mlp25 -f "$text" -n 256 --mlp 25%
prune mlp50 -f "$text" -n 256 --mlp 50%
prune mlp25pl -f "$text" -n 256 --mlp 25% --budget per-layer
prune mlp50pl -f "$text" -n 256 --mlp 50% --budget per-layer

names=(base heads25 heads50 mlp25 mlp50 mlp25pl mlp50pl)
path_of() { [[ $1 == base ]] && echo "$base" || echo "$models_dir/smol-$1.gguf"; }

# One line per model: name total_heads total_kv_heads total_ffn params flops
shapes=$(mktemp)
results=$(mktemp)
trap 'rm -f "$shapes" "$results"' EXIT
for name in "${names[@]}"; do
    "$build/headroom" info "$(path_of "$name")" | awk -v name="$name" -v n="$n_prefill" '
        /^dim:/        { D = $2 }
        /^head_dim:/   { d = $2 }
        /^vocab_size:/ { V = $2 }
        /^parameters:/ { P = $2 }
        /^norm \/ mlp/ { gated = ($0 ~ /SwiGLU|GeGLU/) ? 3 : 2 }
        /^layers:/     { in_layers = 1; next }
        in_layers && /^ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ *$/ { H[++L] = $2; K[L] = $3; F[L] = $4; next }
        in_layers && /^ *$/ { in_layers = 0 }
        END {
            fl = 2 * D * V
            for (l = 1; l <= L; l++) {
                fl += 2 * n * D * d * (2 * H[l] + 2 * K[l])
                fl += 2 * H[l] * d * n * (n + 1)
                fl += 2 * n * D * F[l] * gated
                h += H[l]; k += K[l]; f += F[l]
            }
            printf "%s %d %d %d %d %.6e\n", name, h, k, f, P, fl
        }' >>"$shapes"
done

pin=()
[[ -n ${HR_BENCH_PIN:-} ]] && pin=(taskset -c "$HR_BENCH_PIN")
echo "# CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(getconf _NPROCESSORS_ONLN) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# hr_bench MODEL --prefill $n_prefill --decode 0 --threads $threads --repeats $repeats; $rounds rounds, order rotated"
for ((round = 0; round < rounds; round++)); do
    for ((i = 0; i < ${#names[@]}; i++)); do
        name=${names[$(((i + round) % ${#names[@]}))]}
        out=$("${pin[@]}" "$build/hr_bench" "$(path_of "$name")" --prefill "$n_prefill" --decode 0 --threads "$threads" --repeats "$repeats")
        best=$(sed -n 's/^RESULT.* best_s=\([0-9.]*\).*/\1/p' <<<"$out")
        echo "round $((round + 1)) $name best_s=$best"
        echo "$name $best" >>"$results"
    done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
awk -v n="$n_prefill" '
    function median(list,    v, k, i, j, x) {
        k = split(list, v, " ")
        for (i = 2; i <= k; i++) { x = v[i] + 0; for (j = i - 1; j >= 1 && v[j] + 0 > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
        return k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
    }
    FNR == NR { h[$1] = $2; k[$1] = $3; f[$1] = $4; p[$1] = $5; fl[$1] = $6; order[++m] = $1; next }
    { if (!($1 in t) || $2 + 0 < t[$1] + 0) t[$1] = $2; all[$1] = all[$1] " " $2 }
    END {
        printf "| model | heads | KV heads | FFN neurons | parameters | GFLOP (prefill %d) | FLOP reduction R | best prefill tok/s | speedup S (best) | S / R (best) | saved time / saved FLOPs (best) | S / R (median of rounds) |\n", n
        printf "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        b = order[1]; mb = median(all[b])
        for (i = 1; i <= m; i++) {
            x = order[i]; R = fl[b] / fl[x]; S = t[b] / t[x]; Sm = mb / median(all[x])
            share = (i == 1) ? "" : sprintf("%.2f", (1 - t[x] / t[b]) / (1 - fl[x] / fl[b]))
            printf "| %s | %d | %d | %d | %.1fM | %.2f | %.3f | %.1f | %.3f | %s | %s | %s |\n",
                   x, h[x], k[x], f[x], p[x] / 1e6, fl[x] / 1e9, R, n / t[x], S,
                   (i == 1) ? "" : sprintf("%.3f", S / R), share, (i == 1) ? "" : sprintf("%.3f", Sm / R)
        }
    }' "$shapes" "$results"
