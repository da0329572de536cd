#!/usr/bin/env bash
# Outputs never destroy inputs: every command that writes refuses an output
# path that is one of its inputs (directly, through a symbolic link, through
# a hard link, inside an input folder), refuses to replace a file that is
# not an earlier headroom output of the same kind unless --force, and finds
# an unwritable output before doing any work. The inputs are checked
# byte for byte afterwards.
set -u

. "$(dirname "$0")/cli_prelude.sh"

# label, pattern the one error line must contain, args...
expect_refusal() {
  local label=$1 pat=$2; shift 2
  run "$@"; no_crash "$label" || return 1
  if [ "$rc" -ne 1 ] || [ "$(wc -l <"$T/err")" -ne 1 ] || ! grep -q "^headroom: error: .*$pat" "$T/err"; then
    fail "$label (exit $rc, want one error line with '$pat')"; cat "$T/err"; return 1
  fi
  ok "$label -> $(cut -c1-120 "$T/err")"
}

# Private copies of the model and tokenizer: the tests try to destroy them.
D="$T/model"
mkdir -p "$D"
cp "$M" "$D/stories260K.bin"
cp "$(dirname "$M")/tok512.bin" "$D/tok512.bin"
MB="$D/stories260K.bin"
sums() { sha256sum "$MB" "$D/tok512.bin" "$T/text.txt"; }
sums >"$T/sums.before"

# ---- an output that is an input ----
expect_refusal "convert onto its own input" "is the input" convert "$MB" "$MB" --to gguf --dtype f16
expect_refusal "convert with --force onto its own input" "is the input" convert "$MB" "$MB" --to gguf --force
ln -s "$MB" "$T/link.gguf"
expect_refusal "convert onto a symbolic link to the input" "is the input" convert "$MB" "$T/link.gguf" --to gguf
ln "$MB" "$T/hard.gguf"
expect_refusal "convert onto a hard link to the input" "is the input" convert "$MB" "$T/hard.gguf" --to gguf --force
expect_refusal "convert onto the model's tokenizer" "is the input" convert "$MB" "$D/tok512.bin" --to gguf --force
expect_refusal "convert onto itself through ./ and .." "is the input" convert "$MB" "$D/../model/./stories260K.bin" --to gguf
expect_ok "convert to an HF folder" convert "$MB" "$T/hf" --to hf
expect_refusal "convert into the input HF folder" "inside the input folder" convert "$T/hf" "$T/hf/model.gguf" --to gguf
expect_refusal "convert an HF folder onto its safetensors" "inside the input folder" convert "$T/hf" "$T/hf/model.safetensors" --to gguf --force
expect_refusal "HF output over a non-empty folder" "not empty" convert "$MB" "$T/hf" --to hf

expect_ok "head scores for prune" heads "$MB" -f "$T/text.txt" -o "$T/lab" --methods entropy --window 48 --tokens 96 --top 0
sha256sum "$T/lab/heads.json" >"$T/lab.sum"
expect_refusal "prune --out onto the model" "is the input" prune "$MB" --by random --heads 10% -o "$MB"
expect_refusal "prune --report onto the scores" "is the input" prune "$MB" --scores "$T/lab/heads.json" --by entropy \
  --heads 10% -o "$T/p.gguf" --report "$T/lab/heads.json"
[ -e "$T/p.gguf" ] && fail "prune wrote its model although the report path was refused" || ok "prune wrote nothing"
expect_refusal "prune --hf into a folder holding the model" "holds the input" prune "$MB" --by random --heads 10% \
  -o "$T/p2.gguf" --hf "$D"
expect_refusal "gqa --out onto the model" "is the input" gqa "$MB" --kv-heads 2 -o "$MB"
expect_refusal "gqa --out onto the text" "is the input" gqa "$MB" --kv-heads 2 --grouping asym -f "$T/text.txt" -o "$T/text.txt"
expect_refusal "eval --json onto the candidate" "is the input" eval "$MB" "$T/hf" -f "$T/text.txt" --json "$T/hf"
expect_refusal "eval --json onto the text" "is the input" eval "$MB" "$MB" -f "$T/text.txt" --json "$T/text.txt" --force
expect_refusal "heads --out the model folder" "holds the input" heads "$MB" -f "$T/text.txt" -o "$D" --force

# ---- a file that is not headroom's ----
echo "my notes" >"$T/notes.gguf"
expect_refusal "convert over a foreign file" "give --force" convert "$MB" "$T/notes.gguf" --to gguf
grep -qx "my notes" "$T/notes.gguf" && ok "foreign file untouched" || fail "foreign file changed"
expect_ok "convert over a foreign file with --force" convert "$MB" "$T/notes.gguf" --to gguf --force
expect_ok "convert over its own earlier output" convert "$MB" "$T/notes.gguf" --to gguf --dtype f16
echo '{"results": 1}' >"$T/other.json"
expect_refusal "eval --json over a foreign JSON" "give --force" eval "$MB" "$MB" -f "$T/text.txt" --json "$T/other.json"
expect_ok "prune writes its report" prune "$MB" --by random --heads 10% -o "$T/p.gguf"
expect_ok "prune again over its own outputs" prune "$MB" --by random --heads 10% -o "$T/p.gguf" --seed 3
expect_refusal "prune --report over eval-style JSON" "give --force" prune "$MB" --by random --heads 10% -o "$T/p.gguf" \
  --report "$T/other.json"
mkdir -p "$T/full" && echo x >"$T/full/mine.txt"
expect_refusal "heads into a foreign non-empty folder" "give --force" heads "$MB" -f "$T/text.txt" -o "$T/full" \
  --methods entropy --tokens 96 --window 48 --top 0
expect_ok "heads again into its own folder" heads "$MB" -f "$T/text.txt" -o "$T/lab" --methods entropy --window 48 \
  --tokens 96 --top 0
mkdir -p "$T/adir"
expect_refusal "a folder where an output file is expected" "is a folder" convert "$MB" "$T/adir" --to gguf --force

# ---- unwritable outputs are found before the work ----
expect_refusal "output folder missing" "does not exist" convert "$MB" "$T/no/such/dir/x.gguf" --to gguf
expect_refusal "eval --json in an unwritable folder" "not writable" eval "$MB" "$MB" -f "$T/text.txt" --json /proc/eval.json
[ -s "$T/out" ] && fail "eval printed results before refusing its output" || ok "eval refused before any work"
expect_refusal "prune --out in an unwritable folder" "not writable" prune "$MB" --by random --heads 10% -o /proc/p.gguf

# ---- a folder where a text is expected ----
expect_refusal "ppl --text a folder" "is a folder" ppl "$MB" --text "$T/adir"

sums | diff - "$T/sums.before" >/dev/null && ok "model, tokenizer and text unchanged" || fail "an input changed"
sha256sum -c --quiet "$T/lab.sum" 2>/dev/null || true
echo "$failures failures"
[ "$failures" -eq 0 ]
