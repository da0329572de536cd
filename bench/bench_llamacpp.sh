#!/usr/bin/env bash
# Prefill and decode speed and peak memory, headroom vs llama.cpp, on the same
# GGUF file per (shape, dtype): random weights of a real shape written by
# scripts/experiments/make_random_gguf.py (independent of both engines) with a
# dummy SPM vocabulary so that llama.cpp loads it. Benchmark, not a test.
#
# usage: bench/bench_llamacpp.sh [BUILD_DIR]
# env:   LLAMA_CPP_BIN   folder holding llama-bench (required; llama.cpp built
#                        outside this repository, see docs/results/llamacpp_peer.md)
#        HR_BENCH_SHAPES  default "smollm-135m tinyllama-1.1b" (also llama-3.1-8b)
#        HR_BENCH_DTYPES  default "bf16 q8_0 f32"
#        HR_BENCH_ROUNDS  interleaved rounds (default 2), HR_BENCH_REPEATS (default 3)
#        HR_BENCH_THREADS (default 2), HR_BENCH_MODELS_DIR (default BUILD_DIR)
#        HR_BENCH_PREFILL / HR_BENCH_DECODE tokens (default 512 / 64)
#        HR_BENCH_BF16_DOT=1  on bf16 files also run hr_bench --bf16-dot 1 (the
#                        AVX512-BF16 arithmetic, README "bf16 dot") each round:
#                        a second headroom row "bf16 --bf16-dot" per phase
#        HR_BENCH_INT8_DOT=1  the same for q8_0 files with --int8-dot 1 (README
#                        "int8 dot": activations quantized per 32-block as
#                        llama.cpp's own Q8_0 path does): a row "q8_0 --int8-dot"
#
# What each side measures (the same work):
#   prefill P: llama-bench ppP evaluates P tokens, logits of the last one;
#              hr_bench --prefill P does the same (one forward of P tokens).
#   decode N:  llama-bench tgN generates N tokens one at a time after an empty
#              cache; hr_bench --decode N --prompt 1 runs N single-token
#              forwards after a 1-token prompt.
# llama.cpp keeps K/V in f16 (its default), headroom in f32. Each round runs
# llama-bench then hr_bench on one file; best tok/s over all repeats and rounds
# is compared (uncontended capacity on a shared machine), medians printed too.
# Peak RSS (kB) is /usr/bin/time's maximum resident set of each process (one
# round, the whole run: load, warm-up, all repeats).
# On a machine shared with other work, run the whole script at a raised
# priority (e.g. `nice -n -15 bash bench/bench_llamacpp.sh`, as root): both
# engines inherit it, and llama.cpp's spin-waiting threads suffer most from
# being preempted.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=${1:-$src/build}
ll=${LLAMA_CPP_BIN:?set LLAMA_CPP_BIN to the folder holding llama-bench}
shapes=${HR_BENCH_SHAPES:-smollm-135m tinyllama-1.1b}
dtypes=${HR_BENCH_DTYPES:-bf16 q8_0 f32}
rounds=${HR_BENCH_ROUNDS:-2}
repeats=${HR_BENCH_REPEATS:-3}
threads=${HR_BENCH_THREADS:-2}
models_dir=${HR_BENCH_MODELS_DIR:-$build}
prefill=${HR_BENCH_PREFILL:-512}
decode=${HR_BENCH_DECODE:-64}
bf16_dot=${HR_BENCH_BF16_DOT:-0}
int8_dot=${HR_BENCH_INT8_DOT:-0}
python=/usr/bin/python3

[[ -x $build/hr_bench ]] || { echo "bench: $build/hr_bench missing (build the Release tree first)" >&2; exit 1; }
[[ -x $ll/llama-bench ]] || { echo "bench: $ll/llama-bench missing" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "bench: /usr/bin/time missing (Debian package 'time')" >&2; exit 1; }
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
    if [[ -n ${!v+x} ]]; then echo "# unset $v (was '${!v}')"; unset "$v"; fi
done
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

echo "# CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(getconf _NPROCESSORS_ONLN) cores; $(date -u '+%F %H:%M UTC'); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# llama.cpp: $ll; headroom: $("$build/headroom" --version 2>&1 | head -1); nice $(nice)"
echo "# threads $threads, prefill $prefill, decode $decode, $rounds rounds x $repeats repeats"

# "tok/s" values of one llama-bench jsonl run: prints "pp S1 S2 ..." and "tg S1 ..."
ll_samples() {
    "$python" - "$1" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    kind = "pp" if r["n_prompt"] > 0 else "tg"
    print(kind, " ".join("%.3f" % x for x in r["samples_ts"]))
EOF
}

summary=$T/summary.txt
: >"$summary"
for shape in $shapes; do
    for dt in $dtypes; do
        f=$models_dir/random-$shape-$dt.gguf
        if [[ ! -f $f ]]; then
            echo "# generating $f"
            "$python" "$src/scripts/experiments/make_random_gguf.py" "$f" --preset "$shape" --dtype "$dt" \
                --vocab dummy --seed 1
        fi
        echo "## $shape $dt ($(du -m "$f" | cut -f1) MiB)"
        : >"$T/ll"; : >"$T/hr"; : >"$T/hrd"
        dot=0 dotopt= dotname=
        [[ $bf16_dot == 1 && $dt == bf16 ]] && dot=1 dotopt=--bf16-dot dotname="bf16 dot"
        [[ $int8_dot == 1 && $dt == q8_0 ]] && dot=1 dotopt=--int8-dot dotname="int8 dot"
        for r in $(seq 1 "$rounds"); do
            /usr/bin/time -f "%M" -o "$T/ll_rss" "$ll/llama-bench" -m "$f" -p "$prefill" -n "$decode" -t "$threads" \
                -r "$repeats" -o jsonl >"$T/ll.jsonl" 2>"$T/ll.err" ||
                { echo "bench: llama-bench failed:" >&2; tail -5 "$T/ll.err" >&2; exit 1; }
            ll_samples "$T/ll.jsonl" >"$T/ll_round"
            cat "$T/ll_round" >>"$T/ll"
            /usr/bin/time -f "%M" -o "$T/hr_rss" "$build/hr_bench" "$f" --prefill "$prefill" --decode "$decode" \
                --prompt 1 --threads "$threads" --repeats "$repeats" >"$T/hr.out"
            grep RESULT "$T/hr.out" >>"$T/hr"
            echo "round $r: llama.cpp $(tr '\n' ' ' <"$T/ll_round") | headroom $(grep -o 'phase=[a-z]* n=[0-9]* best_s=[0-9.]*' "$T/hr.out" | tr '\n' ' ')"
            echo "round $r: peak RSS kB llama.cpp $(cat "$T/ll_rss") headroom $(cat "$T/hr_rss")"
            echo "$(cat "$T/ll_rss") $(cat "$T/hr_rss")" >>"$T/rss"
            if [[ $dot == 1 ]]; then
                /usr/bin/time -f "%M" -o "$T/hr_rss" "$build/hr_bench" "$f" --prefill "$prefill" --decode "$decode" \
                    --prompt 1 --threads "$threads" --repeats "$repeats" "$dotopt" 1 >"$T/hrd.out"
                grep RESULT "$T/hrd.out" >>"$T/hrd"
                echo "round $r: headroom $dotopt $(grep -o 'phase=[a-z]* n=[0-9]* best_s=[0-9.]*' "$T/hrd.out" | tr '\n' ' ')($(grep -o "$dotname ([A-Za-z0-9-]*)" "$T/hrd.out")), peak RSS kB $(cat "$T/hr_rss")"
                echo "$(cat "$T/ll_rss") $(cat "$T/hr_rss")" >>"$T/rssd"
            fi
        done
        rows() { # LLAMA-SAMPLES HEADROOM-RESULTS RSS DTYPE-LABEL
            "$python" - "$1" "$2" "$3" "$shape" "$4" "$prefill" "$decode" >>"$summary" <<'EOF'
import re, statistics, sys
ll, hr = {"pp": [], "tg": []}, {"pp": [], "tg": []}
for line in open(sys.argv[1]):
    k, *v = line.split()
    ll[k] += [float(x) for x in v]
for line in open(sys.argv[2]):
    m = re.search(r"phase=(\w+) n=(\d+) best_s=([0-9.]+) median_s=([0-9.]+)", line)
    k = "pp" if m.group(1) == "prefill" else "tg"
    hr[k] += [int(m.group(2)) / float(m.group(3))]
rss = [tuple(map(int, l.split())) for l in open(sys.argv[3])]
shape, dt, p, n = sys.argv[4:8]
for k, name in (("pp", "prefill " + p), ("tg", "decode " + n)):
    lb, hb = max(ll[k]), max(hr[k])
    print("| %s | %s | %s | %.1f (median %.1f) | %.1f (median of rounds %.1f) | **%.2f×** | %d | %d |" % (
        shape, dt, name, lb, statistics.median(ll[k]), hb, statistics.median(hr[k]), hb / lb,
        max(r[0] for r in rss) // 1024, max(r[1] for r in rss) // 1024))
EOF
        }
        rows "$T/ll" "$T/hr" "$T/rss" "$dt"
        if [[ $dot == 1 ]]; then rows "$T/ll" "$T/hrd" "$T/rssd" "$dt $dotopt"; fi
        rm -f "$T/rss" "$T/rssd"
        tail -$((2 + 2 * dot)) "$summary"
    done
done
echo
echo "| shape | dtype | phase | llama.cpp tok/s best | headroom tok/s best | headroom / llama.cpp | llama.cpp peak RSS MiB | headroom peak RSS MiB |"
echo "|---|---|---|---:|---:|---:|---:|---:|"
cat "$summary"
