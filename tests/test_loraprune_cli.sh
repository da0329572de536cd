#!/usr/bin/env bash
# `headroom prune --by loraprune` and CFSP's recovery budget on stories260K:
# LoRAPrune reaches exactly the amount asked over its iterations and
# prune.json records what each removed; `--recover-budget cfsp` spreads
# rank 8 × 5 layers over the layers; bad input (zero iterations, no text, no
# step budget, options LoRAPrune does not take) fails with one
# "headroom: error:" line and nothing written.
set -u

. "$(dirname "$0")/cli_prelude.sh"

head -c 40000 "$TEXT" > "$T/big.txt"
LP=(prune "$M" --by loraprune --heads 50% --mlp 25% -f "$T/big.txt" --threads 2 -q)

expect_ok "LoRAPrune in 3 iterations" "${LP[@]}" --iterations 3 --recover 40 -o "$T/lp.gguf"
/usr/bin/python3 - "$T/lp.gguf.prune.json" <<'PY' && ok "prune.json: 3 iterations after steps 10, 20, 30 remove 20 heads and 215 neurons" || fail "prune.json: $(head -c 600 "$T/lp.gguf.prune.json")"
import json, sys
r = json.load(open(sys.argv[1]))
s = r["loraprune"]["schedule"]
assert [e["after_step"] for e in s] == [10, 20, 30], s
assert sum(e["heads_removed"] for e in s) == r["heads_removed"] == 20
assert sum(e["neurons_removed"] for e in s) == r["neurons_removed"] == 215
assert all(len(e["heads"]) == e["heads_removed"] for e in s)
assert sum(len(l["removed_heads"]) for l in r["layers"]) == 20
PY
expect_ok "LoRAPrune model loads" info "$T/lp.gguf"

expect_ok "one-shot prune + CFSP recovery budget" prune "$M" --by random --heads 25% -f "$T/big.txt" \
  --recover 10 --recover-budget cfsp --threads 2 -q -o "$T/cfsp.gguf"
ranks=$(sed -n 's/^cfsp recovery ranks per layer: //p' "$T/out")
[ "$(echo "$ranks" | wc -w)" -eq 5 ] && [ "$(echo "$ranks" | tr ' ' '+' | bc)" -eq 40 ] &&
  ok "CFSP ranks per layer ($ranks) sum to 8 x 5" || fail "CFSP ranks: '$ranks' ($(cat "$T/out"))"

expect_error "zero iterations" "iterations" "$T/x.gguf" "${LP[@]}" --iterations 0 --recover 40 -o "$T/x.gguf"
expect_error "LoRAPrune without text" "fine-tunes on text" "$T/x.gguf" prune "$M" --by loraprune --heads 50% --recover 40 -o "$T/x.gguf"
expect_error "LoRAPrune without a step budget" "needs its LoRA step budget" "$T/x.gguf" "${LP[@]}" -o "$T/x.gguf"
expect_error "LoRAPrune with head scores" "does not take --scores" "$T/x.gguf" "${LP[@]}" --recover 40 --scores "$T/big.txt" -o "$T/x.gguf"
expect_error "LoRAPrune with block drops" "does not take --drop-blocks" "$T/x.gguf" "${LP[@]}" --recover 40 --drop-blocks 1 -o "$T/x.gguf"
expect_error "fewer steps than parts" "cannot be split over 4 iterations" "$T/x.gguf" "${LP[@]}" --recover 3 -o "$T/x.gguf"
expect_error "--iterations without LoRAPrune" "needs --by loraprune" "$T/x.gguf" prune "$M" --by random --heads 25% --iterations 2 -o "$T/x.gguf"
expect_error "unknown recovery budget" "unknown --recover-budget" "$T/x.gguf" prune "$M" --by random --heads 25% -f "$T/big.txt" --recover 5 --recover-budget even -o "$T/x.gguf"
expect_error "recovery budget without recovery" "needs --recover" "$T/x.gguf" prune "$M" --by random --heads 25% --recover-budget cfsp -o "$T/x.gguf"

echo "$failures failures"
[ "$failures" -eq 0 ]
