#!/usr/bin/env bash
# Weights headroom cannot read are refused with one clear error naming the
# tensor and its dtype, before any work: every ggml type id the GGUF loader
# does not handle (names from ggml's ggml.h, written here), Q8_0 blocks
# whose f16 scale is inf or NaN (tensor, block and row named), a Q8_0
# tensor whose rows are not a multiple of 32 values, and safetensors
# tensors in integer, bool or 8-bit float dtypes. The malformed files are
# copies of headroom's own stories260K outputs patched by
# tests/tools/craft_weights.py.
set -u

. "$(dirname "$0")/cli_prelude.sh"
: "${HR_SOURCE_DIR:?}"
craft() { /usr/bin/python3 "$HR_SOURCE_DIR/tests/tools/craft_weights.py" "$@"; }

expect_ok "stories260K as f32 GGUF" convert "$M" "$T/s.gguf" --to gguf --dtype f32 --no-tokenizer
expect_ok "stories260K as Q8_0 GGUF" convert "$M" "$T/q.gguf" --to gguf --dtype q8_0 --no-tokenizer
expect_ok "stories260K as an HF folder" convert "$M" "$T/hf" --to hf --dtype f32 --no-tokenizer

# ggml types (ggml.h's enum ggml_type) that headroom does not read; the
# ids without a name were removed from ggml or are not assigned.
named="2:q4_0 3:q4_1 6:q5_0 7:q5_1 9:q8_1 10:q2_K 11:q3_K 12:q4_K 13:q5_K 14:q6_K 15:q8_K 16:iq2_xxs
17:iq2_xs 18:iq3_xxs 19:iq1_s 20:iq4_nl 21:iq3_s 22:iq2_s 23:iq4_xs 24:i8 25:i16 26:i32 27:i64 28:f64
29:iq1_m 34:tq1_0 35:tq2_0 39:mxfp4"
unnamed="4 5 31 32 33 36 37 38 40 1000 4294967295"
ids=$(for p in $named; do echo "${p%%:*}"; done)
mkdir "$T/types"
craft gguf-types "$T/s.gguf" "$T/types" blk.2.attn_k.weight $ids $unnamed || fail "crafting GGUF types"
n=0
for p in $named; do
  id=${p%%:*} name=${p#*:}
  expect_error "ggml type $name" "tensor 'blk.2.attn_k.weight' has ggml type $name ($id)" "$T/none" \
    info "$T/types/type-$id.gguf" && n=$((n + 1))
done
for id in $unnamed; do
  expect_error "ggml type id $id" "tensor 'blk.2.attn_k.weight' has ggml type $id (no ggml type" "$T/none" \
    info "$T/types/type-$id.gguf" && n=$((n + 1))
done
[ "$n" -eq 39 ] && ok "all 39 unhandled ggml type ids refused" || fail "$n of 39 type ids refused clearly"

# Q8_0: non-finite scales (+inf, -inf, NaN) in block 5 of blk.3.attn_v.weight
# (rows of 64 values: block 5 is in row 2), rows not a multiple of 32.
for s in 7c00 fc00 7e00; do
  craft q8-scale "$T/q.gguf" "$T/q-$s.gguf" blk.3.attn_v.weight 5 $s || fail "crafting scale $s"
  expect_error "Q8_0 scale 0x$s" "tensor 'blk.3.attn_v.weight': Q8_0 block 5 (row 2) has a non-finite scale" \
    "$T/none" ppl "$T/q-$s.gguf" -f "$T/text.txt"
done
craft gguf-dims "$T/q.gguf" "$T/q-rows.gguf" blk.0.attn_q.weight 16 256 || fail "crafting rows of 16"
expect_error "Q8_0 rows of 16 values (4096 in all)" \
  "tensor 'blk.0.attn_q.weight': ne\[0\] = 16 is not a multiple of the q8_0 block size 32" "$T/none" info "$T/q-rows.gguf"

# safetensors dtypes that are not floats headroom reads.
for d in F8_E4M3 F8_E5M2 I64 I32 I16 I8 U8 BOOL; do
  craft st-dtype "$T/hf" "$T/hf-$d" model.layers.1.self_attn.k_proj.weight $d || fail "crafting $d"
  expect_error "safetensors $d" "tensor 'model.layers.1.self_attn.k_proj.weight' has dtype $d; headroom reads" \
    "$T/none" info "$T/hf-$d"
done
# dtypes of the safetensors format the reader does not know: refused when the file is opened
for d in U16 F8_E8M0 C64; do
  craft st-dtype "$T/hf" "$T/hf-$d" model.layers.1.self_attn.k_proj.weight $d || fail "crafting $d"
  expect_error "safetensors $d" "model.layers.1.self_attn.k_proj.weight.*dtype '$d'" "$T/none" info "$T/hf-$d"
done

echo "$failures failures"
[ "$failures" -eq 0 ]
