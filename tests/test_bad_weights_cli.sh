#!/usr/bin/env bash
# Weights headroom cannot read are refused with one clear error naming the
# tensor and its dtype, before any work: every ggml type id the GGUF loader
# does not handle (names from ggml's ggml.h, written here), Q8_0 blocks
# whose f16 scale is inf or NaN (tensor, block and row named), a Q8_0
# tensor whose rows are not a multiple of 32 values, safetensors tensors
# in integer, bool or 8-bit float dtypes, and malformed per-channel int8
# (compressed-tensors) checkpoints. The malformed files are
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

# safetensors dtypes that are not floats headroom reads (I8: below).
for d in F8_E4M3 F8_E5M2 I64 I32 I16 U8 BOOL; do
  craft st-dtype "$T/hf" "$T/hf-$d" model.layers.1.self_attn.k_proj.weight $d || fail "crafting $d"
  expect_error "safetensors $d" "tensor 'model.layers.1.self_attn.k_proj.weight' has dtype $d; headroom reads" \
    "$T/none" info "$T/hf-$d"
done
# dtypes of the safetensors format the reader does not know: refused when the file is opened
for d in U16 F8_E8M0 C64; do
  craft st-dtype "$T/hf" "$T/hf-$d" model.layers.1.self_attn.k_proj.weight $d || fail "crafting $d"
  expect_error "safetensors $d" "model.layers.1.self_attn.k_proj.weight.*dtype '$d'" "$T/none" info "$T/hf-$d"
done

# Per-channel int8 (compressed-tensors): an I8 matrix without its scales,
# scales that are NaN or below 2^-100, a nonzero zero point, an I8 norm,
# and quantization configs headroom does not read (bitsandbytes, group
# scales, 4-bit) are refused naming the tensor or the setting.
py=/usr/bin/python3
if "$py" "$HR_SOURCE_DIR/tests/reference/make_hf_random.py" qwen2 "$T/i8" --dtype int8 >/dev/null 2>"$T/err"; then
  Q=model.layers.1.self_attn.k_proj.weight
  i8case() { # NAME PYTHON: a copy of $T/i8 as $T/i8-NAME, edited by the python code (h: header, cfg: config)
    rm -rf "$T/i8-$1" && cp -r "$T/i8" "$T/i8-$1" && "$py" - "$T/i8-$1" "$2" <<'PY'
import json, struct, sys
d, code = sys.argv[1], sys.argv[2]
raw = open(d + "/model.safetensors", "rb").read()
(n,) = struct.unpack_from("<Q", raw, 0)
h = json.loads(raw[8:8 + n]); data = bytearray(raw[8 + n:])
cfg = json.load(open(d + "/config.json"))
def put(name, i, fmt, v):
    struct.pack_into(fmt, data, h[name]["data_offsets"][0] + i * struct.calcsize(fmt), v)
exec(code)
hb = json.dumps(h).encode(); hb += b" " * (-len(hb) % 8)
open(d + "/model.safetensors", "wb").write(struct.pack("<Q", len(hb)) + hb + bytes(data))
json.dump(cfg, open(d + "/config.json", "w"))
PY
  }
  i8case noscale "h['$Q' + '_scalX'] = h.pop('$Q' + '_scale')"
  expect_error "int8 without scales" "tensor '$Q' is I8 but the checkpoint has no '${Q}_scale'" "$T/none" info "$T/i8-noscale"
  i8case nan "put('${Q}_scale', 3, '<H', 0x7fc0)"
  expect_error "int8 NaN scale" "tensor '${Q}_scale' row 3: scale nan is not finite" "$T/none" info "$T/i8-nan"
  i8case tiny "put('${Q}_scale', 0, '<H', 0x0d00)"
  expect_error "int8 scale 2^-101" "tensor '${Q}_scale' row 0: scale .* below 2^-100" "$T/none" info "$T/i8-tiny"
  i8case zp "h['${Q}_zero_point'] = dict(dtype='I8', shape=[32, 1], data_offsets=[len(data), len(data) + 32]); data += bytes(31) + bytes([1])"
  expect_error "int8 nonzero zero point" "tensor '${Q}_zero_point' is not zero: only symmetric int8" "$T/none" info "$T/i8-zp"
  N=model.norm.weight
  i8case norm "h['$N']['dtype'] = 'I8'; h['$N']['data_offsets'][1] = h['$N']['data_offsets'][0] + 64"
  expect_error "int8 norm" "tensor '$N' is I8: headroom reads int8 only for Linear weight matrices" "$T/none" info "$T/i8-norm"
  i8case bnb "cfg['quantization_config'] = dict(quant_method='bitsandbytes', load_in_8bit=True)"
  expect_error "bitsandbytes config" "quant_method 'bitsandbytes' is not supported" "$T/none" info "$T/i8-bnb"
  i8case group "cfg['quantization_config']['config_groups']['group_0']['weights'].update(strategy='group', group_size=128)"
  expect_error "int8 group scales" "group 'group_0': only symmetric 8-bit int weights with strategy 'channel'" "$T/none" info "$T/i8-group"
  i8case int4 "cfg['quantization_config']['format'] = 'pack-quantized'"
  expect_error "pack-quantized (int4)" "format other than 'int-quantized' is not supported" "$T/none" info "$T/i8-int4"
  expect_ok "the unedited int8 folder loads" info "$T/i8"
  grep -q "attn_q int8" "$T/out" && ok "its projections stay int8" || fail "int8 folder: $(grep compute "$T/out")"
else
  fail "make_hf_random.py --dtype int8: $(cat "$T/err")"
fi

echo "$failures failures"
[ "$failures" -eq 0 ]
