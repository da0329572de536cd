#!/usr/bin/env bash
# End-to-end tests of `headroom quantize` and `convert --dtype q8_0` on
# stories260K: a random choice writes a GGUF whose Q8_0 tensors are the
# report's chosen matrices (with --format int8 an HF folder whose I8
# tensors are), `eval` reads it back, and bad input fails with
# one "headroom: error:" line and nothing written.
set -u

. "$(dirname "$0")/cli_prelude.sh"

expect_error "--int8 0%" "(0, 100)" "$T/q.gguf" quantize "$M" --by random --int8 0% -o "$T/q.gguf"
expect_error "--int8 100%" "(0, 100)" "$T/q.gguf" quantize "$M" --by random --int8 100% -o "$T/q.gguf"
expect_error "--int8 -5" "(0, 100)" "$T/q.gguf" quantize "$M" --by random --int8 -5 -o "$T/q.gguf"
expect_error "--int8 not a number" "percentage" "$T/q.gguf" quantize "$M" --by random --int8 lots -o "$T/q.gguf"
expect_error "--int8 missing" "required" "$T/q.gguf" quantize "$M" --by random -o "$T/q.gguf"
expect_error "--by fdtm without text" "needs --text" "$T/q.gguf" quantize "$M" --by fdtm --int8 80% -o "$T/q.gguf"
expect_error "--by ppl without text" "needs --text" "$T/q.gguf" quantize "$M" --by ppl --int8 80% -o "$T/q.gguf"
expect_error "unknown --by" "unknown ranking" "$T/q.gguf" quantize "$M" --by size --int8 80% -o "$T/q.gguf"
expect_error "--out onto the model" "is the input" "$T/none" quantize "$M" --by random --int8 50% -o "$M"
expect_error "q8_0 into an HF folder" "q8_0" "$T/hf" convert "$M" "$T/hf" --to hf --dtype q8_0
expect_error "prune --hf with q8_0" "GGUF only" "$T/p.gguf" prune "$M" --by random --heads 10% -o "$T/p.gguf" --hf "$T/phf" --dtype q8_0
expect_error "gqa --hf with q8_0" "GGUF only" "$T/g.gguf" gqa "$M" --kv-heads 2 -o "$T/g.gguf" --hf "$T/ghf" --dtype q8_0

expect_ok "quantize 50% at random" quantize "$M" --by random --int8 50% --seed 2 -o "$T/r50.gguf"
[ -s "$T/r50.gguf" ] && [ -s "$T/r50.gguf.quantize.json" ] && ok "GGUF and quantize.json written" ||
  fail "outputs missing"
/usr/bin/python3 - "$T/r50.gguf" "$T/r50.gguf.quantize.json" "$HR_SOURCE_DIR/tests/reference" <<'PY' &&
import json, sys
sys.path.insert(0, sys.argv[3])
import q8_0_ref
r = q8_0_ref.Reader(sys.argv[1])
rep = json.load(open(sys.argv[2]))
assert rep["format"] == "headroom.quantize" and rep["format_version"] == 1, rep["format"]
chosen = {c["name"] for c in rep["components"] if c["chosen"]}
q8 = {n for n, (ne, ty, off) in r.tensors.items() if ty == q8_0_ref.GGML_Q8_0}
assert chosen == q8 and q8, (sorted(chosen ^ q8))
n = sum(c["params"] for c in rep["components"] if c["chosen"])
assert n == rep["params_int8"] <= 0.5 * rep["params_eligible"], (n, rep["params_int8"], rep["params_eligible"])
print("  %d Q8_0 tensors = the chosen matrices, %d of %d eligible parameters" % (len(q8), n, rep["params_eligible"]))
PY
  ok "the Q8_0 tensors are exactly the report's chosen matrices" || fail "file and report disagree"
expect_ok "eval reads the quantized model" eval "$M" "$T/r50.gguf" -f "$T/text.txt" --json "$T/e.json"
grep -q '"fdtm"' "$T/e.json" && ok "eval.json has the FDTM" || fail "eval.json without FDTM"

# --format int8: per-channel int8 projections in an HF folder. The chosen
# matrices are I8 with F32 (rows, 1) scales equal to numpy's per-row int8 of
# the f32 weights, the others f32; quantization_config ignores the others;
# the folder loads (eval) with them int8.
expect_error "unknown --format" "unknown format 'int4'" "$T/none" quantize "$M" --by random --int8 50% --format int4 -o "$T/none"
/usr/bin/python3 "$HR_SOURCE_DIR/tests/reference/make_hf_random.py" gpt2 "$T/hf-gpt2" >/dev/null ||
  fail "make_hf_random.py gpt2"
expect_error "int8 of GPT-2's Conv1D family" "per-channel int8" "$T/none" quantize "$T/hf-gpt2" --by random --int8 50% \
  --format int8 -o "$T/none"
expect_ok "quantize 50% at random, per-channel int8" quantize "$M" --by random --int8 50% --seed 2 --format int8 \
  -o "$T/i50"
expect_ok "the f32 weights as an HF folder" convert "$M" "$T/f32hf" --to hf --dtype f32 --no-tokenizer
/usr/bin/python3 - "$T/i50" "$T/i50.quantize.json" "$T/f32hf" <<'PY' &&
import json, struct, sys
import numpy as np
def raw(d):
    data = open(d + "/model.safetensors", "rb").read()
    (n,) = struct.unpack_from("<Q", data, 0)
    h = json.loads(data[8:8 + n])
    return {k: (v["dtype"], v["shape"], data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in h.items() if k != "__metadata__"}
q, rep, f = raw(sys.argv[1]), json.load(open(sys.argv[2])), raw(sys.argv[3])
cfg = json.load(open(sys.argv[1] + "/config.json"))
gg = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
      "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
chosen = {c["name"] for c in rep["components"] if c["chosen"]}
ignore, bad, n8 = set(cfg["quantization_config"]["ignore"]), [], 0
for name, (dt, shape, b) in f.items():
    if not name.endswith("_proj.weight"):
        bad += [name] if q.get(name) != (dt, shape, b) else []
        continue
    parts = name.split(".")  # model.layers.L.<mod>.<proj>.weight
    g = "blk.%s.%s.weight" % (parts[2], gg[parts[3] + "." + parts[4]])
    if g in chosen:
        n8 += 1
        w = np.frombuffer(b, "<f4").reshape(shape)
        s = (np.max(np.abs(w), axis=1) / np.float32(127)).astype(np.float32)
        want = np.rint((w / s[:, None]).astype(np.float32)).astype(np.int8)
        ok = q[name][0] == "I8" and np.array_equal(np.frombuffer(q[name][2], "i1").reshape(shape), want) and \
            np.array_equal(np.frombuffer(q[name + "_scale"][2], "<f4"), s) and name[:-7] not in ignore
    else:
        ok = q.get(name) == (dt, shape, b) and name[:-7] in ignore
    bad += [] if ok else [name]
print("    %d chosen matrices int8 = numpy's per-row int8; %d others f32 and ignored; %s" % (n8, len(f) - n8, bad[:3]))
sys.exit(0 if not bad and n8 == rep["n_chosen"] and n8 > 0 else 1)
PY
  ok "int8 folder: the chosen matrices are numpy's per-row int8, the rest the f32 bytes" ||
  fail "int8 folder differs from the report / numpy"
grep -q '"int8_format":[[:space:]]*"per-channel int8' "$T/i50.quantize.json" && ok "quantize.json names the format" ||
  fail "quantize.json's int8_format"
expect_ok "prune --hf --dtype int8" prune "$M" --by random --heads 10% --uniform -o "$T/p8.gguf" --hf "$T/p8hf" --dtype int8
grep -q "source dtype: *int8" <("$HR_CLI" info "$T/p8hf") && grep -q "source dtype: *f32" <("$HR_CLI" info "$T/p8.gguf") &&
  ok "prune --dtype int8: the HF folder int8, the GGUF f32" || fail "prune --dtype int8 outputs' dtypes"
expect_error "int8 HF of GPT-2 (Conv1D)" "no Linear attention or MLP projection" "$T/g8" convert "$T/hf-gpt2" "$T/g8" \
  --to hf --dtype int8 --no-tokenizer
expect_ok "eval reads the int8 folder" eval "$M" "$T/i50" --tokenizer "$(dirname "$M")/tok512.bin" -f "$T/text.txt" \
  --json "$T/e8.json"

echo "$failures failures"
[ "$failures" -eq 0 ]
