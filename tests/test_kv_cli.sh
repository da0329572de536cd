#!/usr/bin/env bash
# --kv plans through the CLI: memory reported, bad plans refused cleanly.
set -u
cli=${HR_CLI:?}; shared=${HR_SHARED_DIR:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0; passes=0
ok() { passes=$((passes + 1)); echo "ok   $1"; }
bad() { fails=$((fails + 1)); echo "FAIL $1"; }
head -c 30000 "$shared/data/text/tinystories_val.txt" > "$tmp/text.txt"

kv_bytes() { sed -n 's/^kv cache: *\([0-9]*\) bytes.*/\1/p' "$1"; }

"$cli" ppl --text "$tmp/text.txt" --ctx 256 > "$tmp/full.out" 2>&1 || bad "ppl without a plan runs"
printf 'default streaming sink=4 window=32\n' > "$tmp/stream.plan"
if "$cli" ppl --text "$tmp/text.txt" --ctx 256 --kv "$tmp/stream.plan" > "$tmp/stream.out" 2>&1; then
  full=$(kv_bytes "$tmp/full.out"); stream=$(kv_bytes "$tmp/stream.out")
  if [ -n "$full" ] && [ -n "$stream" ] && [ "$stream" -lt $((full / 4)) ]; then ok "streaming plan allocates less KV memory ($stream vs $full bytes)"
  else bad "streaming plan memory: '$stream' vs '$full'"; fi
else bad "ppl with a streaming plan runs: $(cat "$tmp/stream.out")"; fi

printf 'default full\n' > "$tmp/full.plan"
"$cli" ppl --text "$tmp/text.txt" --ctx 256 --kv "$tmp/full.plan" > "$tmp/fullplan.out" 2>&1
if [ "$(grep '^mean NLL' "$tmp/full.out")" = "$(grep '^mean NLL' "$tmp/fullplan.out")" ] && grep -q '^mean NLL' "$tmp/full.out"; then
  ok "an all-full plan gives the same NLL as no plan"
else bad "all-full plan NLL differs"; fi

if "$cli" generate --prompt "Once upon a time" -n 20 --temp 0 --kv "$tmp/stream.plan" > "$tmp/gen.out" 2> "$tmp/gen.err" && grep -q "kv cache" "$tmp/gen.err"; then
  ok "generate accepts --kv and reports KV bytes"
else bad "generate --kv: $(cat "$tmp/gen.err")"; fi

# A DuoAttention-style plan from head-lab scores keeps the requested share full.
if "$cli" heads --text "$tmp/text.txt" --methods streaming --tokens 512 --window 256 --out "$tmp/heads" > /dev/null 2>&1 &&
   "$cli" ppl --text "$tmp/text.txt" --ctx 256 --kv-from "$tmp/heads/heads.json" --retrieval-fraction 0.25 --kv-window 32 > "$tmp/mix.out" 2>&1 &&
   grep -q "(15 KV heads reduced by the plan)" "$tmp/mix.out"; then
  ok "--kv-from heads.json --retrieval-fraction 0.25 streams 15 of 20 KV heads"
else bad "--kv-from: $(tail -2 "$tmp/mix.out" 2>/dev/null)"; fi
printf '{"model": {"n_layers": 3}, "heads": []}' > "$tmp/other.json"
"$cli" ppl --text "$tmp/text.txt" --ctx 256 --kv-from "$tmp/other.json" > /dev/null 2> "$tmp/bad.err"
[ $? -eq 1 ] && grep -q "3 layers" "$tmp/bad.err" && ok "refuses scores of a model with another shape" || bad "other-shape scores: $(cat "$tmp/bad.err")"

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
  "$cli" ppl --text "$tmp/text.txt" --ctx 256 --kv "$tmp/bad.plan" > "$tmp/bad.out" 2> "$tmp/bad.err"; rc=$?
  if [ $rc -eq 1 ] && [ "$(grep -c 'headroom: error:' "$tmp/bad.err")" = 1 ] && ! grep -qE 'AddressSanitizer|runtime error' "$tmp/bad.err"; then
    ok "refuses $1: $(cat "$tmp/bad.err")"
  else bad "$1 (rc $rc): $(cat "$tmp/bad.err")"; fi
}
refuse "an unknown policy" "default sliding window=3"
refuse "a window larger than the context" "default streaming sink=4 window=100000"
refuse "a plan for a different shape" "head 7 0 streaming sink=1 window=8"
refuse "a malformed size" "layer 0 heavy budget=-3"
"$cli" ppl --text "$tmp/text.txt" --kv "$tmp/missing.plan" > /dev/null 2> "$tmp/bad.err"
[ $? -eq 1 ] && grep -q 'headroom: error:' "$tmp/bad.err" && ok "refuses a missing plan file" || bad "missing plan file"
echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
