#!/usr/bin/env bash
# --kv plans through the CLI: memory reported, bad plans refused cleanly.
set -u
cli=${HR_CLI:?}; shared=${HR_SHARED_DIR:?}
. "$(dirname "$0")/cli_prelude.sh"
tmp=$T
model=$M
fails=0; passes=0
ok() { passes=$((passes + 1)); echo "ok   $1"; }
bad() { fails=$((fails + 1)); echo "FAIL $1"; }
head -c 30000 "$shared/data/text/tinystories_val.txt" > "$tmp/text.txt"

kv_bytes() { sed -n 's/^kv cache: *\([0-9]*\) bytes.*/\1/p' "$1"; }

"$cli" ppl "$model" --text "$tmp/text.txt" --ctx 256 > "$tmp/full.out" 2>&1 || bad "ppl without a plan runs"
printf 'default streaming sink=4 window=32\n' > "$tmp/stream.plan"
if "$cli" ppl "$model" --text "$tmp/text.txt" --ctx 256 --kv "$tmp/stream.plan" > "$tmp/stream.out" 2>&1; then
  full=$(kv_bytes "$tmp/full.out"); stream=$(kv_bytes "$tmp/stream.out")
  if [ -n "$full" ] && [ -n "$stream" ] && [ "$stream" -lt $((full / 4)) ]; then ok "streaming plan allocates less KV memory ($stream vs $full bytes)"
  else bad "streaming plan memory: '$stream' vs '$full'"; fi
else bad "ppl with a streaming plan runs: $(cat "$tmp/stream.out")"; fi

printf 'default full\n' > "$tmp/full.plan"
"$cli" ppl "$model" --text "$tmp/text.txt" --ctx 256 --kv "$tmp/full.plan" > "$tmp/fullplan.out" 2>&1
if [ "$(grep '^mean NLL' "$tmp/full.out")" = "$(grep '^mean NLL' "$tmp/fullplan.out")" ] && grep -q '^mean NLL' "$tmp/full.out"; then
  ok "an all-full plan gives the same NLL as no plan"
else bad "all-full plan NLL differs"; fi

if "$cli" generate "$model" --prompt "Once upon a time" -n 20 --temp 0 --kv "$tmp/stream.plan" > "$tmp/gen.out" 2> "$tmp/gen.err" && grep -q "kv cache" "$tmp/gen.err"; then
  ok "generate accepts --kv and reports KV bytes"
else bad "generate --kv: $(cat "$tmp/gen.err")"; fi

# A DuoAttention-style plan from head-lab scores keeps the requested share full.
if "$cli" heads "$model" --text "$tmp/text.txt" --methods streaming --tokens 512 --window 256 --out "$tmp/heads" > /dev/null 2>&1 &&
   "$cli" ppl "$model" --text "$tmp/text.txt" --ctx 256 --kv-from "$tmp/heads/heads.json" --retrieval-fraction 0.25 --kv-window 32 > "$tmp/mix.out" 2>&1 &&
   grep -q "(15 KV heads reduced by the plan)" "$tmp/mix.out"; then
  ok "--kv-from heads.json --retrieval-fraction 0.25 streams 15 of 20 KV heads"
else bad "--kv-from: $(tail -2 "$tmp/mix.out" 2>/dev/null)"; fi
# Bad score files and options that would be ignored: one error line naming the cause.
kv_refuse() { # name, pattern, args...
  local name=$1 pat=$2; shift 2
  "$cli" ppl "$model" --text "$tmp/text.txt" --ctx 256 "$@" > "$tmp/bad.out" 2> "$tmp/bad.err"; rc=$?
  if [ $rc -eq 1 ] && [ "$(grep -c 'headroom: error:' "$tmp/bad.err")" = 1 ] && grep -q -- "$pat" "$tmp/bad.err" &&
     ! grep -qE 'AddressSanitizer|runtime error' "$tmp/bad.err"; then ok "refuses $name: $(cat "$tmp/bad.err")"
  else bad "$name (rc $rc, want '$pat'): $(cat "$tmp/bad.err")"; fi
}
printf '{"format": "headroom.heads", "format_version": 1, "model": {"n_layers": 3}, "heads": []}' > "$tmp/other.json"
kv_refuse "scores of a model with another shape" "different shape (3 layers; this model has 5)" --kv-from "$tmp/other.json"
h=$tmp/heads/heads.json
edit() { /usr/bin/python3 -c "import json,sys; d=json.load(open('$h')); $1; json.dump(d, open('$tmp/' + sys.argv[1], 'w'))" "$2"; }
edit "d['heads'] = d['heads'][:30]" part.json
kv_refuse "heads.json with 30 of 40 heads" "30 of 40 heads present; missing 3.6, 3.7, 4.0" --kv-from "$tmp/part.json"
edit "d['heads'][29]['scores']['streaming'] = None" null.json
kv_refuse "a null score" "head 3.5 has no score for 'streaming' (null)" --kv-from "$tmp/null.json"
edit "d.pop('format'); d.pop('format_version')" old.json
kv_refuse "a heads.json of an older headroom" "written by an older headroom; rerun headroom heads" --kv-from "$tmp/old.json"
edit "d['heads'].append(d['heads'][7])" dup.json
kv_refuse "a head listed twice" "head 0.7 appears twice" --kv-from "$tmp/dup.json"
kv_refuse "a method the file lacks" "no scores for method 'retrieval' (it has: streaming)" --kv-from "$h" --kv-method retrieval
for opt in "retrieval-fraction 0.5" "kv-method sink" "kv-sink 2" "kv-window 16"; do
  kv_refuse "--${opt% *} without --kv-from" "--${opt% *} has no effect without --kv-from" --${opt% *} "${opt#* }"
done
kv_refuse "--kv-save without a plan" "--kv-save needs a plan" --kv-save "$tmp/x.plan"
printf 'default full\nhead 0 0 streaming sink=4 window=8\ndefault streaming sink=4 window=32\n' > "$tmp/two.plan"
kv_refuse "a plan with two default lines" "two.plan:3: a second 'default' line (the first is line 1)" --kv "$tmp/two.plan"

# --kv-save writes the plan --kv-from built; run again from the file, it gives the same NLL; --verbose prints it.
if "$cli" ppl "$model" --text "$tmp/text.txt" --ctx 256 --kv-from "$h" --kv-window 32 --kv-save "$tmp/saved.plan" \
     --verbose > "$tmp/from.out" 2> "$tmp/from.err" &&
   "$cli" ppl "$model" --text "$tmp/text.txt" --ctx 256 --kv "$tmp/saved.plan" > "$tmp/saved.out" 2>&1 &&
   [ "$(grep -c '^head [0-9] [0-9] streaming sink=4 window=32$' "$tmp/saved.plan")" = 15 ] &&
   [ "$(grep -c '^kv plan: layer [0-4]:' "$tmp/from.err")" = 5 ] &&
   [ "$(grep '^mean NLL' "$tmp/from.out")" = "$(grep '^mean NLL' "$tmp/saved.out")" ]; then
  ok "--kv-save writes the 15 streaming heads; the saved plan gives the same NLL; --verbose prints 5 layers"
else bad "--kv-save / --verbose: $(cat "$tmp/from.err") $(head -3 "$tmp/saved.plan" 2>/dev/null)"; fi

model=$shared/models/stories260K/stories260K.bin
# stories260K: 5 layers x 4 KV heads of 8 dims, ctx 256. Full: 20 stores of keys + values,
# 8 x (256 + 16 padding) floats each. Streaming sink=4 window=32: 20 stores of 36 slots
# (8 x 36 floats x 2, slot position + order 4 + 4 bytes per slot), plus the gather buffer
# per KV head of a layer: (36 + 16) entries x (8 floats x 2 + score + position).
full_bytes=$((20 * 8 * 272 * 4 * 2))
stream_bytes=$((20 * 36 * (8 * 4 * 2 + 4 * 2) + 4 * (36 + 16) * (8 * 4 * 2 + 4 * 2)))
if "$cli" eval "$model" "$model" --text "$tmp/text.txt" --ctx 256 --kv "$tmp/stream.plan" > "$tmp/eval.out" 2>&1 &&
   grep -qE "^KV bytes allocated +$full_bytes +$stream_bytes\$" "$tmp/eval.out"; then
  ok "eval applies --kv to the candidate and reports both caches"
else bad "eval --kv: $(grep -i 'kv\|error' "$tmp/eval.out")"; fi

refuse() { # name, plan text, extra args
  printf '%s\n' "$2" > "$tmp/bad.plan"
  "$cli" ppl "$model" --text "$tmp/text.txt" --ctx 256 --kv "$tmp/bad.plan" > "$tmp/bad.out" 2> "$tmp/bad.err"; rc=$?
  if [ $rc -eq 1 ] && [ "$(grep -c 'headroom: error:' "$tmp/bad.err")" = 1 ] && ! grep -qE 'AddressSanitizer|runtime error' "$tmp/bad.err"; then
    ok "refuses $1: $(cat "$tmp/bad.err")"
  else bad "$1 (rc $rc): $(cat "$tmp/bad.err")"; fi
}
refuse "an unknown policy" "default sliding window=3"
refuse "a window larger than the context" "default streaming sink=4 window=100000"
refuse "a plan for a different shape" "head 7 0 streaming sink=1 window=8"
refuse "a malformed size" "layer 0 heavy budget=-3"
"$cli" ppl "$model" --text "$tmp/text.txt" --kv "$tmp/missing.plan" > /dev/null 2> "$tmp/bad.err"
[ $? -eq 1 ] && grep -q 'headroom: error:' "$tmp/bad.err" && ok "refuses a missing plan file" || bad "missing plan file"
echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
