#!/usr/bin/env bash
# End-to-end tests of 'headroom tokenize': llama.cpp's tokenizer test
# vectors through every way of naming a tokenizer (GGUF vocabularies, the
# GPT-2 encoder.json + vocab.bpe folder), decode round trips, and one-line
# errors for wrong input.
set -u

: "${HR_SHARED_DIR:?HR_SHARED_DIR must point at the shared data folder}"
V="$HR_SHARED_DIR/data/tokenizer-vectors"
GPT2_GGUF="$HR_SHARED_DIR/models/gguf-vocab/ggml-vocab-gpt-2.gguf"
SPM_GGUF="$HR_SHARED_DIR/models/gguf-vocab/ggml-vocab-llama-spm.gguf"
GPT2_DIR="$HR_SHARED_DIR/data/tokenizers/gpt2"
QWEN3="$HR_SHARED_DIR/data/tokenizers/qwen3/tokenizer.json"
MARK=__ggml_vocab_test__
. "$(dirname "$0")/cli_prelude.sh" "$V"/ggml-vocab-{gpt-2,llama-spm}.gguf.{inp,out} "$GPT2_GGUF" "$SPM_GGUF" \
  "$GPT2_DIR/encoder.json" "$GPT2_DIR/vocab.bpe" "$QWEN3"

run() {
  "$HR_CLI" "$@" >"$T/out" 2>"$T/err"
  rc=$?
}

no_crash() {
  if [ "$rc" -ge 128 ]; then fail "$1: killed by a signal (exit $rc)"; return 1; fi
  if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$T/err"; then
    fail "$1: sanitizer report"; sed 's/^/    /' "$T/err" | head -20; return 1
  fi
  return 0
}

# vectors LABEL VOCAB NAME: ids of every text of NAME.inp equal NAME.out
# (llama.cpp writes a space before each id; we separate ids by spaces)
vectors() {
  local label=$1 vocab=$2 name=$3
  run tokenize "$vocab" --text "$V/$name.inp" --split "$MARK"
  no_crash "$label" || return
  if [ "$rc" -ne 0 ]; then fail "$label: exit $rc: $(cat "$T/err")"; return; fi
  sed 's/^ //' "$V/$name.out" >"$T/want"
  if cmp -s "$T/want" "$T/out"; then
    ok "$label: $(wc -l <"$T/out") texts match $name.out"
  else
    fail "$label: output differs from $name.out"; diff "$T/want" "$T/out" | head -10
  fi
}

vectors "gpt-2 GGUF vocabulary" "$GPT2_GGUF" ggml-vocab-gpt-2.gguf
vectors "gpt-2 encoder.json + vocab.bpe folder" "$GPT2_DIR" ggml-vocab-gpt-2.gguf
vectors "gpt-2 vocab.bpe file" "$GPT2_DIR/vocab.bpe" ggml-vocab-gpt-2.gguf
vectors "llama-spm GGUF vocabulary" "$SPM_GGUF" ggml-vocab-llama-spm.gguf

# decode(encode(x)) gives the .inp back byte for byte
for pair in "gpt-2:$GPT2_GGUF" "llama-spm:$SPM_GGUF" "qwen3:$QWEN3"; do
  label=${pair%%:*} vocab=${pair#*:}
  run tokenize "$vocab" --text "$V/ggml-vocab-gpt-2.gguf.inp" --split "$MARK"
  cp "$T/out" "$T/ids"
  run tokenize "$vocab" --decode --text "$T/ids" --split "$MARK"
  no_crash "$label decode" || continue
  if [ "$rc" -eq 0 ] && cmp -s "$T/out" "$V/ggml-vocab-gpt-2.gguf.inp"; then
    ok "$label: decode of the ids reproduces the vector texts"
  else
    fail "$label: decode round trip differs (exit $rc)"; cmp "$T/out" "$V/ggml-vocab-gpt-2.gguf.inp" | head -3
  fi
done

# special tokens only with --parse-special; --bos adds the vocabulary's BOS
run tokenize "$GPT2_DIR" "<|endoftext|>"
[ "$rc" -eq 0 ] && [ "$(cat "$T/out")" != "50256" ] && ok "special text is plain by default" ||
  fail "special text without --parse-special gave '$(cat "$T/out")'"
run tokenize "$GPT2_DIR" --parse-special "<|endoftext|>"
[ "$rc" -eq 0 ] && [ "$(cat "$T/out")" = "50256" ] && ok "--parse-special gives the special id" ||
  fail "--parse-special gave '$(cat "$T/out")'"
run tokenize "$SPM_GGUF" --bos "Hello"
[ "$rc" -eq 0 ] && [ "$(cut -d' ' -f1 "$T/out")" = "1" ] && ok "--bos prepends id 1" || fail "--bos gave '$(cat "$T/out")'"

run tokenize --help
[ "$rc" -eq 0 ] && grep -q -- "--parse-special" "$T/out" && ok "--help" || fail "--help (exit $rc)"

# errors: exactly one "headroom: error:" line, exit 1, no crash
printf 'ok \xC3\x28 bad\n' >"$T/bad.txt"
printf '{"model":{"type":"Unigram","vocab":[]}}' >"$T/tokenizer.json"
expect_error() { # label, pattern, args...
  local label=$1 pattern=$2; shift 2
  run "$@"
  no_crash "$label" || return
  local lines; lines=$(grep -c '^headroom: error:' "$T/err")
  if [ "$rc" -eq 1 ] && [ "$lines" -eq 1 ] && grep -q -- "$pattern" "$T/err"; then
    ok "$label: $(head -1 "$T/err")"
  else
    fail "$label: exit $rc, $lines error lines: $(head -3 "$T/err")"
  fi
}
expect_error "missing tokenizer" "nonexistent" tokenize /nonexistent/tok.bin "hi"
expect_error "no tokenizer argument" "no tokenizer" tokenize
expect_error "unsupported model type" "Unigram" tokenize "$T/tokenizer.json" "hi"
expect_error "invalid UTF-8 text" "UTF-8" tokenize "$GPT2_GGUF" --text "$T/bad.txt"
expect_error "id outside the vocabulary" "outside the vocabulary" tokenize "$GPT2_GGUF" --decode "15496 99999"
expect_error "non-numeric id" "not a token id" tokenize "$GPT2_GGUF" --decode "15496 x"
expect_error "unknown option" "unknown option" tokenize "$GPT2_GGUF" --frobnicate

echo "$failures failures"
[ "$failures" -eq 0 ]
