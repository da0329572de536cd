#!/usr/bin/env bash
# End-to-end tests of 'headroom tokenize': llama.cpp's tokenizer test
# vectors through every way of naming a tokenizer (GGUF vocabularies, the
# GPT-2 encoder.json + vocab.bpe folder, Llama-2's tokenizer.model and
# tokenizer.bin), decode round trips, empty texts, the default model's
# tokenizer when none is named, --help against README, and one-line errors
# for wrong input.
set -u

: "${HR_SHARED_DIR:?HR_SHARED_DIR must point at the shared data folder}"
: "${HR_SOURCE_DIR:?HR_SOURCE_DIR must point at the source tree}"
unset HEADROOM_MODEL
V="$HR_SHARED_DIR/data/tokenizer-vectors"
GPT2_GGUF="$HR_SHARED_DIR/models/gguf-vocab/ggml-vocab-gpt-2.gguf"
SPM_GGUF="$HR_SHARED_DIR/models/gguf-vocab/ggml-vocab-llama-spm.gguf"
GPT2_DIR="$HR_SHARED_DIR/data/tokenizers/gpt2"
QWEN3="$HR_SHARED_DIR/data/tokenizers/qwen3/tokenizer.json"
LLAMA2="$HR_SHARED_DIR/data/tokenizers/llama2"
MODEL="$HR_SHARED_DIR/models/stories260K/stories260K.bin"
MARK=__ggml_vocab_test__
. "$(dirname "$0")/cli_prelude.sh" "$V"/ggml-vocab-{gpt-2,llama-spm}.gguf.{inp,out} "$GPT2_GGUF" "$SPM_GGUF" \
  "$GPT2_DIR/encoder.json" "$GPT2_DIR/vocab.bpe" "$QWEN3" \
  "$LLAMA2/tokenizer.model" "$LLAMA2/tokenizer.bin" "$MODEL"

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
vectors "Llama-2 tokenizer.model" "$LLAMA2/tokenizer.model" ggml-vocab-llama-spm.gguf
vectors "Llama-2 tokenizer.bin" "$LLAMA2/tokenizer.bin" ggml-vocab-llama-spm.gguf

# decode(encode(x)) gives the .inp back byte for byte
for pair in "gpt-2:$GPT2_GGUF" "llama-spm:$SPM_GGUF" "qwen3:$QWEN3" "tokenizer.model:$LLAMA2/tokenizer.model"; do
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

# an empty text is an empty line of ids: a file, an argument, standard input
: >"$T/empty.txt"
for how in "--text $T/empty.txt" "''" "stdin"; do
  case $how in
    stdin) "$HR_CLI" tokenize "$SPM_GGUF" </dev/null >"$T/out" 2>"$T/err"; rc=$? ;;
    "''") run tokenize "$SPM_GGUF" "" ;;
    *) run tokenize "$SPM_GGUF" $how ;;
  esac
  [ "$rc" -eq 0 ] && [ "$(od -An -c "$T/out" | tr -d ' ')" = '\n' ] && ok "empty text ($how): one empty line" ||
    fail "empty text ($how): exit $rc, output '$(cat "$T/out")' $(cat "$T/err")"
done

# no tokenizer named: the default model's (stories260K, tok512.bin)
run tokenize "$MODEL" "Once upon a time"
want=$(cat "$T/out")
run tokenize "Once upon a time"
[ "$rc" -eq 0 ] && [ -n "$want" ] && [ "$(cat "$T/out")" = "$want" ] &&
  ok "TEXT alone uses the default model's tokenizer: $want" || fail "TEXT alone: exit $rc, '$(cat "$T/out")' vs '$want'"
printf 'Once upon a time' >"$T/once.txt"
run tokenize --text "$T/once.txt"
[ "$rc" -eq 0 ] && [ "$(cat "$T/out")" = "$want" ] && ok "--text alone uses the default model's tokenizer" ||
  fail "--text alone: exit $rc, '$(cat "$T/out")' $(cat "$T/err")"
run tokenize --tokenizer "$LLAMA2/tokenizer.model" "$T/once.txt"
[ "$rc" -eq 0 ] && [ "$(printf '%s' "$T/once.txt" | "$HR_CLI" tokenize "$LLAMA2/tokenizer.model")" = "$(cat "$T/out")" ] &&
  ok "--tokenizer makes every argument TEXT, also one naming a file" ||
  fail "--tokenizer: exit $rc, '$(cat "$T/out")'"
"$HR_CLI" tokenize "$T/once.txt" </dev/null >"$T/out" 2>"$T/err"
[ $? -eq 1 ] && grep -q "loading tokenizer" "$T/err" && ok "a single argument naming a file is the tokenizer" ||
  fail "existing path as the only argument: $(cat "$T/err")"

# --help and README's command table name the same arguments and options
run tokenize --help
[ "$rc" -eq 0 ] && grep -q -- "--parse-special" "$T/out" && ok "--help" || fail "--help (exit $rc)"
usage=$(sed -n 's/^usage: \(.*\) \[options\]$/\1/p' "$T/out")
row=$(grep -m1 '^| `headroom tokenize ' "$HR_SOURCE_DIR/README.md" | cut -d'`' -f2 | sed 's/\\|/|/g')
help_opts=$(grep -oE '^ +(-[a-z], )?--[a-z-]+' "$T/out" | grep -oE -- '--[a-z-]+' | grep -vx -- --help | sort -u | tr '\n' ' ')
row_opts=$(grep -oE -- '--[a-z-]+' <<<"$row" | sort -u | tr '\n' ' ')
case "$row" in
  "$usage "*) ok "README synopsis starts as --help's usage: $usage" ;;
  *) fail "README row '$row' does not start with --help's usage '$usage'" ;;
esac
[ -n "$help_opts" ] && [ "$help_opts" = "$row_opts" ] && ok "README and --help list the same options: $help_opts" ||
  fail "options differ: --help '$help_opts', README '$row_opts'"

# errors: exactly one "headroom: error:" line, exit 1, no crash
printf 'ok \xC3\x28 bad\n' >"$T/bad.txt"
printf '{"model":{"type":"Unigram","vocab":[]}}' >"$T/tokenizer.json"
# a SentencePiece .model of type UNIGRAM: one piece "<unk>" (type UNKNOWN),
# trainer_spec {model_type: 1}, normalizer_spec {remove_extra_whitespaces: 0}
printf '\x0a\x09\x0a\x05<unk>\x18\x02\x12\x02\x18\x01\x1a\x02\x20\x00' >"$T/unigram.model"
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
expect_error "--tokenizer and a tokenizer argument" "not both" tokenize --tokenizer "$SPM_GGUF" "$GPT2_GGUF" "hi"
expect_error "a unigram .model" "UNIGRAM" tokenize "$T/unigram.model" "hi"
expect_error "unsupported model type" "Unigram" tokenize "$T/tokenizer.json" "hi"
expect_error "invalid UTF-8 text" "UTF-8" tokenize "$GPT2_GGUF" --text "$T/bad.txt"
expect_error "id outside the vocabulary" "outside the vocabulary" tokenize "$GPT2_GGUF" --decode "15496 99999"
expect_error "non-numeric id" "not a token id" tokenize "$GPT2_GGUF" --decode "15496 x"
expect_error "unknown option" "unknown option" tokenize "$GPT2_GGUF" --frobnicate

echo "$failures failures"
[ "$failures" -eq 0 ]
