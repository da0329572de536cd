#!/usr/bin/env bash
# End-to-end tests of `headroom finetune`, `headroom train` and
# `headroom prune --recover` on
# stories260K: LoRA fine-tuning lowers the held-out loss and writes a GGUF
# and an HF folder that load; Ctrl-C writes a checkpoint and --resume ends
# with a model byte-identical to an uninterrupted run's; train from random
# initialisation is deterministic from --seed and learns; bad input fails
# with one "headroom: error:" line and nothing written.
set -u

. "$(dirname "$0")/cli_prelude.sh"

head -c 60000 "$TEXT" > "$T/big.txt"
FT=(finetune "$M" -f "$T/big.txt" --window 32 --batch 2 -q)

expect_ok "LoRA fine-tuning" "${FT[@]}" --lora-rank 4 --lora-targets q,v,down --steps 40 --lr 3e-3 -o "$T/ft.gguf" --hf "$T/ft-hf"
read -r a b < <(sed -n 's/^held-out loss \([0-9.]*\) -> \([0-9.]*\) .*/\1 \2/p' "$T/out")
/usr/bin/python3 -c "import sys; sys.exit(0 if float('$b') < float('$a') else 1)" 2>/dev/null &&
  ok "held-out loss falls ($a -> $b)" || fail "held-out loss did not fall: $(cat "$T/out")"
expect_ok "fine-tuned GGUF loads" info "$T/ft.gguf"
expect_ok "fine-tuned HF folder loads" info "$T/ft-hf"
[ ! -e "$T/ft.gguf.ckpt" ] && ok "no default checkpoint left after a finished run" || fail "ft.gguf.ckpt left behind"

# Ctrl-C: a checkpoint, then --resume gives the uninterrupted run's model byte for byte
expect_ok "uninterrupted run" "${FT[@]}" --lora-rank 4 --steps 400 -o "$T/whole.gguf"
"$HR_CLI" "${FT[@]}" --lora-rank 4 --steps 400 -o "$T/cut.gguf" --checkpoint "$T/cut.ckpt" \
  --checkpoint-every 20 >"$T/out" 2>"$T/err" &
pid=$!
for _ in $(seq 300); do [ -e "$T/cut.ckpt" ] && break; sleep 0.1; done # training runs: the handler is in place
kill -INT $pid
wait $pid
rc=$?
if [ "$rc" -eq 1 ] && grep -q "^headroom: error: training stopped after step [0-9]* of 400; checkpoint written" "$T/err" &&
   [ -s "$T/cut.ckpt" ] && [ ! -e "$T/cut.gguf" ]; then ok "Ctrl-C writes a checkpoint and no model"
else fail "Ctrl-C (exit $rc): $(cat "$T/err")"; fi
expect_ok "resume" "${FT[@]}" --lora-rank 4 --steps 400 -o "$T/cut.gguf" --checkpoint "$T/cut.ckpt" --resume "$T/cut.ckpt"
cmp -s "$T/whole.gguf" "$T/cut.gguf" && ok "resumed model equals the uninterrupted one byte for byte" ||
  fail "resumed model differs"

# training from scratch
CFG="dim=32,layers=2,heads=4,kv-heads=2,hidden=64,seq=64,vocab-from=$HR_SHARED_DIR/models/stories260K/tok512.bin"
expect_ok "train from random initialisation" train --config "$CFG" -f "$T/big.txt" --steps 60 --lr 1e-2 --window 32 -q -o "$T/r1.gguf"
grep -q "held-out loss 6\.[0-9]* -> [0-5]\." "$T/out" && ok "a random model learns ($(grep held-out "$T/out"))" || fail "no learning: $(cat "$T/out")"
expect_ok "same seed again" train --config "$CFG" -f "$T/big.txt" --steps 60 --lr 1e-2 --window 32 -q -o "$T/r2.gguf"
cmp -s "$T/r1.gguf" "$T/r2.gguf" && ok "train is deterministic from --seed" || fail "two runs differ"
expect_ok "the same run with --recompute" train --config "$CFG" -f "$T/big.txt" --steps 60 --lr 1e-2 --window 32 -q \
  --recompute -o "$T/r3.gguf"
cmp -s "$T/r1.gguf" "$T/r3.gguf" && ok "--recompute trains the same model byte for byte" || fail "--recompute changed the model"
expect_ok "trained model runs" ppl "$T/r1.gguf" -f "$T/text.txt"

# recovery after pruning: LoRA fine-tune of the pruned model, merged
expect_ok "prune --recover" prune "$M" --by random --heads 50% --mlp 25% -f "$T/big.txt" --tokens 512 --recover 60 \
  --lora-rank 4 --lr 3e-3 -q -o "$T/rec.gguf"
read -r a b < <(sed -n 's/^held-out loss \([0-9.]*\) -> \([0-9.]*\) .*/\1 \2/p' "$T/out")
/usr/bin/python3 -c "import sys; sys.exit(0 if float('$b') < float('$a') else 1)" 2>/dev/null &&
  ok "recovery lowers the pruned model's held-out loss ($a -> $b)" || fail "no recovery: $(cat "$T/out")"
expect_ok "recovered model loads" info "$T/rec.gguf"
expect_error "--recover-text without --recover" "needs --recover" "$T/x.gguf" prune "$M" --by random --heads 25% \
  --recover-text "$T/big.txt" -o "$T/x.gguf"

# bad input: one error line, nothing written
expect_error "lr 0" "learning rate" "$T/x.gguf" "${FT[@]}" --lora-rank 4 --steps 5 --lr 0 -o "$T/x.gguf"
expect_error "LoRA rank above the matrix" "larger than" "$T/x.gguf" "${FT[@]}" --lora-rank 100 --steps 5 -o "$T/x.gguf"
expect_error "--only naming a missing head" "no head 9.9" "$T/x.gguf" "${FT[@]}" --full --only heads:9.9 --steps 5 -o "$T/x.gguf"
expect_error "--only without --full" "needs full" "$T/x.gguf" "${FT[@]}" --lora-rank 2 --only mlp:1 --steps 5 -o "$T/x.gguf"
head -c 200 "$TEXT" > "$T/short.txt"
expect_error "text shorter than a window" "too short" "$T/x.gguf" finetune "$M" -f "$T/short.txt" --lora-rank 2 --steps 5 -o "$T/x.gguf"
expect_error "unwritable --out" "" "$T/nodir/x.gguf" "${FT[@]}" --lora-rank 2 --steps 5 -o "$T/nodir/x.gguf"
expect_error "neither LoRA nor --full" "lora-rank" "$T/x.gguf" "${FT[@]}" --steps 5 -o "$T/x.gguf"
printf 'HRTRAIN1 garbage' > "$T/bad.ckpt"
expect_error "corrupt checkpoint" "checkpoint" "$T/x.gguf" "${FT[@]}" --lora-rank 4 --steps 5 --resume "$T/bad.ckpt" -o "$T/x.gguf"
expect_error "checkpoint of another mode" "another model shape or training mode" "$T/x.gguf" "${FT[@]}" --lora-rank 2 --steps 400 --resume "$T/cut.ckpt" -o "$T/x.gguf"
expect_error "train: bad config" "multiple of heads" "$T/x.gguf" train --config "dim=30,layers=1,heads=4,hidden=8,vocab-from=$HR_SHARED_DIR/models/stories260K/tok512.bin" -f "$T/big.txt" --steps 2 -o "$T/x.gguf"

echo "$failures failures"
[ "$failures" -eq 0 ]
