#!/usr/bin/env bash
# `headroom prune` of typed GGUFs of the other layouts, against today's f32
# path: random GPT-2 (fused attn_qkv: Q/K/V typed sources cut from one
# tensor, written fused again) and Qwen2 (llama.cpp's rotate-half Q/K rows:
# typed sources with perm_heads, written rotate-half again) HF folders
# (tests/reference/make_hf_random.py) converted to bf16 and Q8_0 GGUFs;
# each pruned (--by random, 50% of the heads) as it is and as its f32
# conversion written in the same dtype: the two files must be equal byte
# for byte (the typed cut copies bf16 elements, Q8_0 rows and whole blocks;
# tests/test_prune_typed.c covers re-quantized columns). The same typed
# files written as HF folders (row by row from the typed sources) equal,
# byte for byte, their f32 copies written in the same dtype; the bf16
# folders, read back (GPT-2's Conv1D transposed in bf16) and written again
# or pruned, give the same bytes again.
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
    # the HF writer reads typed matrices row by row (GPT-2: fused QKV parts,
    # transposed Conv1D; Qwen2: rotate-half rows): the same bytes as from f32
    hd=$([ "$dt" = q8_0 ] && echo f32 || echo "$dt")
    rm -rf "$T/hx" "$T/hf32"
    expect_ok "$arch $dt: typed model to HF" convert "$x" "$T/hx" --to hf --no-tokenizer || continue
    expect_ok "$arch $dt: its f32 copy to HF $hd" convert "$f" "$T/hf32" --to hf --dtype "$hd" --no-tokenizer || continue
    cmp -s "$T/hx/model.safetensors" "$T/hf32/model.safetensors" &&
      ok "$arch $dt: HF folders from typed rows and from f32 equal ($(wc -c <"$T/hx/model.safetensors") bytes)" ||
      fail "$arch $dt: the HF writer's typed rows differ from the f32 path's"
    [ "$dt" = bf16 ] || continue
    # that bf16 folder read back (GPT-2: Conv1D matrices transposed in bf16,
    # the fused QKV split into three, all held as bf16 panels) and written
    # again: the same bytes; pruned: the same GGUF as the prune of its
    # conversion to a bf16 GGUF (read in place from the file)
    rm -rf "$T/hx2"
    expect_ok "$arch bf16 HF: written again" convert "$T/hx" "$T/hx2" --to hf --no-tokenizer || continue
    cmp -s "$T/hx/model.safetensors" "$T/hx2/model.safetensors" &&
      ok "$arch bf16 HF: read and written again, the same bytes" ||
      fail "$arch bf16 HF: read and written again, the safetensors differ"
    expect_ok "$arch bf16 HF: typed prune" prune "$T/hx" --by random --seed 2 --heads 50% -o "$T/phx.gguf" || continue
    expect_ok "$arch bf16 HF: to a bf16 GGUF" convert "$T/hx" "$T/xh.gguf" --to gguf || continue
    expect_ok "$arch bf16 HF: that GGUF pruned" prune "$T/xh.gguf" --by random --seed 2 --heads 50% \
      -o "$T/pxh.gguf" || continue
    cmp -s "$T/pxh.gguf" "$T/phx.gguf" && ok "$arch bf16 HF: pruned GGUF equals its bf16 GGUF's" ||
      fail "$arch bf16 HF: the pruned GGUF differs from its bf16 GGUF's prune"
  done
done
echo "$failures failures"
[ "$failures" -eq 0 ]
