#!/usr/bin/env bash
# The compute ceiling of a prefill on this machine: bench/peak_fma.c's peak
# f32 FMA and VDPBF16PS rates on T threads, divided by the FLOP a token of a
# P-token prefill costs on the SmolLM-135M, TinyLlama-1.1B and Llama-3.1-8B shapes (the
# shapes of hr_make_random's presets and of bench_llamacpp.sh's files:
# 2 x the Q K V O gate up down weights, plus QK^T and AV over P/2 + 1/2 keys
# on average; the classifier runs once per prefill, left out). An exact
# (f32-activation) prefill cannot pass the f32 ceiling; llama.cpp's bf16
# products and headroom --bf16-dot run on the bf16 one. Compare with the
# tokens/s of bench_llamacpp.sh.
#
# usage: bench/bench_peak.sh           env: HR_BENCH_THREADS (2), HR_BENCH_PREFILL (512), CC (cc)
# x86-64 with AVX512F and AVX512_BF16 only (peak_fma's instructions).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${HR_BENCH_THREADS:-2} prefill=${HR_BENCH_PREFILL:-512}
grep -qw avx512_bf16 /proc/cpuinfo || { echo "bench_peak: this CPU has no AVX512_BF16" >&2; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"${CC:-cc}" -std=c11 -O2 -march=native -pthread -o "$T/peak_fma" bench/peak_fma.c
out=$("$T/peak_fma" "$threads")
echo "$out"
f32=$(sed -n 's/.*f32_fma_gflops=//p' <<<"$out") bf16=$(sed -n 's/.*bf16_dot_gflops=//p' <<<"$out")
echo "| shape | GFLOP / token (prefill $prefill) | exact f32 ceiling tok/s | bf16-dot ceiling tok/s |"
echo "|---|---:|---:|---:|"
# name dim n_layers n_heads n_kv_heads head_dim hidden
for s in "smollm-135m 576 30 9 3 64 1536" "tinyllama-1.1b 2048 22 32 4 64 5632" "llama-3.1-8b 4096 32 32 8 128 14336"; do
    read -r name dim nl nh nkv hd hid <<<"$s"
    awk -v name="$name" -v d="$dim" -v nl="$nl" -v nh="$nh" -v nkv="$nkv" -v hd="$hd" -v h="$hid" -v p="$prefill" \
        -v f32="$f32" -v bf="$bf16" 'BEGIN {
        w = d * nh * hd * 2 + d * nkv * hd * 2 + 3 * d * h   # Q O, K V, gate up down
        att = 2 * nh * hd * (p + 1) / 2                      # QK^T and AV, mean keys per query
        g = 2 * nl * (w + att) / 1e9
        printf "| %s | %.3f | %.0f | %.0f |\n", name, g, f32 / g, bf / g }'
done
