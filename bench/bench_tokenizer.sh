#!/usr/bin/env bash
# Tokenizer throughput (a benchmark, not a test: tests assert what the
# tokenizers compute, never how fast): `headroom tokenize` encodes each
# text with each tokenizer; prints bytes, seconds and MB/s per pair, the
# best of HR_BENCH_REPEATS runs (process start and tokenizer load included).
#
# usage: bench/bench_tokenizer.sh [BUILD_DIR]     (default: build)
# env:   HR_BENCH_REPEATS (default 3), HR_SHARED_DIR (default ../shared)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=${1:-$src/build}
repeats=${HR_BENCH_REPEATS:-3}
shared=${HR_SHARED_DIR:-$(cd "$src/../shared" && pwd)}
cli=$build/headroom
[ -x "$cli" ] || { echo "bench_tokenizer: $cli not built" >&2; exit 1; }

pairs=(
  "$shared/models/stories260K/tok512.bin $shared/data/text/tinystories_val.txt"
  "$shared/models/gguf-vocab/ggml-vocab-llama-spm.gguf $shared/data/text/tinystories_val.txt"
  "$shared/data/tokenizers/gpt2 $shared/data/text/tinyshakespeare.txt"
)
for f in tinystories_val.txt tinyshakespeare.txt wikitext2_test.raw brown.txt; do
  pairs+=("$shared/data/tokenizers/qwen3/tokenizer.json $shared/data/text/$f")
done
printf '%-46s %-22s %10s %9s %8s\n' tokenizer text bytes seconds MB/s
for p in "${pairs[@]}"; do
  read -r tok text <<<"$p"
  bytes=$(stat -c %s "$text")
  best=
  for _ in $(seq "$repeats"); do
    t0=$(date +%s.%N)
    "$cli" tokenize "$tok" --text "$text" >/dev/null
    t1=$(date +%s.%N)
    best=$(awk -v a="$t0" -v b="$t1" -v best="$best" 'BEGIN { d = b - a; print (best == "" || d < best) ? d : best }')
  done
  awk -v tok="${tok#"$shared"/}" -v text="$(basename "$text")" -v n="$bytes" -v s="$best" \
    'BEGIN { printf "%-46s %-22s %10d %9.3f %8.1f\n", tok, text, n, s, n / s / 1e6 }'
done
