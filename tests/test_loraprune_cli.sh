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
read -r a b < <(sed -n 's/^held-out loss \([0-9.]*\) -> \([0-9.]*\) .*/\1 \2/p' "$T/out")
/usr/bin/python3 - "$T/lp.gguf.prune.json" "${a:-x}" "${b:-x}" <<'PY' && ok "held-out loss printed before and after ($a -> $b), as in prune.json" || fail "held-out loss: $(cat "$T/out")"
import json, sys
r = json.load(open(sys.argv[1]))["loraprune"]
assert abs(float(sys.argv[2]) - r["heldout_loss_before"]) < 1e-4 and abs(float(sys.argv[3]) - r["heldout_loss"]) < 1e-4
assert 0 < r["heldout_loss_before"] < 3  # the base model on in-domain text (perplexity ~5)
PY
expect_ok "LoRAPrune model loads" info "$T/lp.gguf"

# held-out loss shown in the progress every --eval-every steps (stderr is not a terminal: a line per update)
HEADROOM_PROGRESS_INTERVAL=0 "$HR_CLI" prune "$M" --by loraprune --heads 25% -f "$T/big.txt" --threads 2 \
  --iterations 1 --recover 8 --eval-every 4 -o "$T/ev.gguf" >"$T/out" 2>"$T/err"
grep -q "loraprune.*loss [0-9.]*, held-out [0-9.]*" "$T/err" && ok "progress shows training and held-out loss" ||
  fail "no held-out loss in the progress: $(tail -c 600 "$T/err")"

# Ctrl-C: a clean stop with one error line and nothing written
HEADROOM_PROGRESS_INTERVAL=0 "$HR_CLI" prune "$M" --by loraprune --heads 50% -f "$T/big.txt" --threads 2 \
  --iterations 2 --recover 100000 -o "$T/cut.gguf" >"$T/out" 2>"$T/err" &
pid=$!
for _ in $(seq 300); do grep -q "loraprune" "$T/err" && break; sleep 0.1; done # steps run: the handler is in place
kill -INT $pid
wait $pid
rc=$?
if [ "$rc" -eq 1 ] && grep -q "^headroom: error: LoRAPrune stopped after step [0-9]* of 100000; nothing written" "$T/err" &&
   [ -z "$(ls "$T" | grep '^cut')" ]; then ok "Ctrl-C stops LoRAPrune cleanly, nothing written"
else fail "Ctrl-C (exit $rc): $(cat "$T/err"); $(ls "$T")"; fi

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
