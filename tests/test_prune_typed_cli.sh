#!/usr/bin/env bash
# `headroom prune` of typed GGUFs of the other layouts, against today's f32
# path: random GPT-2 (fused attn_qkv: Q/K/V typed sources cut from one
# tensor, written fused again) and Qwen2 (llama.cpp's rotate-half Q/K rows:
# typed sources with perm_heads, written rotate-half again) HF folders
# (tests/reference/make_hf_random.py) converted to bf16 and Q8_0 GGUFs;
# each pruned (--by random, 50% of the heads) as it is and as its f32
# conversion written in the same dtype: the two files must be equal byte
# for byte (the typed cut copies bf16 elements, Q8_0 rows and whole blocks;
# tests/test_prune_typed.c covers re-quantized columns).
set -u

. "$(dirname "$0")/cli_prelude.sh"

py=/usr/bin/python3
for arch in gpt2 qwen2; do
  if ! "$py" "$HR_SOURCE_DIR/tests/reference/make_hf_random.py" "$arch" "$T/hf-$arch" --dtype f32 >/dev/null 2>"$T/err"; then
    fail "make_hf_random.py $arch: $(cat "$T/err")"; continue
  fi
  for dt in bf16 q8_0; do
    x="$T/x-$arch-$dt.gguf" f="$T/f-$arch-$dt.gguf"
    expect_ok "$arch: convert to $dt" convert "$T/hf-$arch" "$x" --to gguf --dtype "$dt" || continue
    expect_ok "$arch $dt: its f32 copy" convert "$x" "$f" --to gguf --dtype f32 || continue
    expect_ok "$arch $dt: typed prune" prune "$x" --by random --seed 2 --heads 50% -o "$T/px.gguf" || continue
    grep -q "^heads removed: [1-9]" "$T/out" || fail "$arch $dt: no head removed: $(cat "$T/out")"
    expect_ok "$arch $dt: prune of the f32 copy, written $dt" prune "$f" --by random --seed 2 --heads 50% \
      --dtype "$dt" -o "$T/pf.gguf" || continue
    cmp -s "$T/px.gguf" "$T/pf.gguf" && ok "$arch $dt: pruned GGUFs equal ($(wc -c <"$T/px.gguf") bytes)" ||
      fail "$arch $dt: the typed prune's GGUF differs from the f32 path's"
  done
done
echo "$failures failures"
[ "$failures" -eq 0 ]
