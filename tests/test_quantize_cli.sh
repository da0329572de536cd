#!/usr/bin/env bash
# End-to-end tests of `headroom quantize` and `convert --dtype q8_0` on
# stories260K: a random choice writes a GGUF whose Q8_0 tensors are the
# report's chosen matrices, `eval` reads it back, and bad input fails with
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

echo "$failures failures"
[ "$failures" -eq 0 ]
