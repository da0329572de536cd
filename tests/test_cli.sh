#!/usr/bin/env bash
# End-to-end tests of the headroom CLI: info / generate / ppl on the real
# stories260K files, --help everywhere, and hostile or wrong inputs, each of
# which must fail with exactly one "headroom: error:" line and no crash.
set -u

D="${HR_SHARED_DIR:?HR_SHARED_DIR must point at the shared data folder}/models/stories260K"
. "$(dirname "$0")/cli_prelude.sh" "$D/stories260K.gguf" "$D/tok512.bin"
BIN="$M"
GGUF="$D/stories260K.gguf"

# run NAME ARGS...: runs the CLI, leaving $T/out, $T/err and $rc.
run() {
  "$HR_CLI" "$@" >"$T/out" 2>"$T/err"
  rc=$?
}

no_crash() { # $1 = label
  if [ "$rc" -ge 128 ]; then fail "$1: killed by a signal (exit $rc)"; return 1; fi
  if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$T/err"; then
    fail "$1: sanitizer report"; sed 's/^/    /' "$T/err" | head -20; return 1
  fi
  return 0
}

expect_ok() { # label, args...
  local label=$1; shift
  run "$@"
  no_crash "$label" || return 1
  if [ "$rc" -ne 0 ]; then fail "$label: exit $rc: $(head -c 300 "$T/err")"; return 1; fi
  return 0
}

# The failure contract: non-zero exit below 128, stderr exactly one line,
# and that line is "headroom: error: <message>" where the message matches
# PATTERN (extended regex): the case fails for the reason it names, not
# for another one (a missing model, a typo in an option).
expect_error() { # label, pattern, args...
  local label=$1 pat=$2; shift 2
  run "$@"
  no_crash "$label" || return 1
  if [ "$rc" -eq 0 ]; then fail "$label: succeeded but should fail"; return 1; fi
  local lines; lines=$(wc -l <"$T/err")
  if [ "$lines" -ne 1 ] || ! grep -qE '^headroom: error: .+' "$T/err"; then
    fail "$label: stderr is not one 'headroom: error:' line:"; sed 's/^/    /' "$T/err" | head -5; return 1
  fi
  if ! grep -qE -- "$pat" "$T/err"; then
    fail "$label: message does not match '$pat': $(cat "$T/err")"; return 1
  fi
  ok "$label -> $(cut -c1-110 "$T/err")"
}

# ---------- info ----------
read -r dim hidden layers heads kv vocab seq < <(od -An -t d4 -N 28 "$BIN" | tr -s " \n" "  ")
if expect_ok "info .bin" info "$BIN"; then
  grep -q "^dim: *$dim\$" "$T/out" || fail "info .bin: dim $dim not reported"
  grep -q "^n_layers: *$layers\$" "$T/out" || fail "info .bin: n_layers $layers not reported"
  grep -q "^seq_len: *$seq\$" "$T/out" || fail "info .bin: seq_len $seq not reported"
  grep -q "^vocab_size: *${vocab#-}\$" "$T/out" || fail "info .bin: vocab ${vocab#-} not reported"
  n_layer_rows=$(grep -cE "^ +[0-9]+ +$heads +$kv +$hidden\$" "$T/out")
  [ "$n_layer_rows" -eq "$layers" ] || fail "info .bin: $n_layer_rows per-layer rows with $heads/$kv/$hidden, want $layers"
  grep -qE "blk\.0\.attn_k\.weight +\($((kv * dim / heads)), $dim\)" "$T/out" || fail "info .bin: attn_k shape"
  grep -qE "blk\.0\.attn_norm\.weight +\($dim\)$" "$T/out" && grep -qE "^  output_norm\.weight +\($dim\)$" "$T/out" ||
    fail "info .bin: vectors not printed as 1-D: $(grep norm.weight "$T/out" | head -2)"
  grep -qE "^tensors \(" "$T/out" && grep -q "^parameters:" "$T/out" && grep -q "^source dtype: *f32" "$T/out" ||
    fail "info .bin: tensors / parameters / dtype missing"
  ok "info .bin"
fi
if expect_ok "info .gguf" info "$GGUF"; then
  grep -q "^format: *GGUF" "$T/out" || fail "info .gguf: format"
  grep -q "^n_layers: *$layers\$" "$T/out" || fail "info .gguf: n_layers"
  grep -q "token_embd.weight" "$T/out" || fail "info .gguf: tensor list"
  ok "info .gguf"
fi

# ---------- generate ----------
PROMPT="Once upon a time"
if expect_ok "generate .bin greedy" generate "$BIN" --prompt "$PROMPT" -n 48 --temp 0; then
  cp "$T/out" "$T/gen_bin"
  grep -q "tokens/s" "$T/err" || fail "generate: no speed report on stderr"
  if expect_ok "generate .gguf greedy" generate "$GGUF" --prompt "$PROMPT" -n 48 --temp 0; then
    cmp -s "$T/out" "$T/gen_bin" || { fail "greedy text differs between .bin and .gguf"; diff "$T/gen_bin" "$T/out" | head; }
  fi
  head -c ${#PROMPT} "$T/gen_bin" | grep -qF "$PROMPT" || fail "generate: output does not start with the prompt"
  [ "$(wc -c <"$T/gen_bin")" -gt $((${#PROMPT} + 20)) ] || fail "generate: too little text generated"
  ok "generate greedy .bin == .gguf"
fi
expect_ok "generate sampled 1" generate "$BIN" -p "Lily" -n 32 --temp 0.9 --top-p 0.95 --seed 11 && cp "$T/out" "$T/s1"
expect_ok "generate sampled 2" generate "$BIN" -p "Lily" -n 32 --temp 0.9 --top-p 0.95 --seed 11 &&
  { cmp -s "$T/out" "$T/s1" || fail "same seed gave different text"; }
expect_ok "generate at the context limit" generate "$GGUF" -p "Lily" -n 1000 --temp 0 &&
  { grep -qE "context limit|end of sequence|BOS" "$T/err" || fail "generate: no stop reason"; }

# ---------- ppl ----------
head -c 6000 "$TEXT" >"$T/slice.txt"
if expect_ok "ppl sliding" ppl "$BIN" --text "$T/slice.txt" --ctx 128; then
  n_tok=$(sed -n 's/.*(\([0-9]*\) tokens with BOS).*/\1/p' "$T/out")
  scored=$(sed -n 's/^scored: *\([0-9]*\) tokens/\1/p' "$T/out")
  [ -n "$n_tok" ] && [ "$scored" = "$((n_tok - 1))" ] || fail "ppl sliding: scored '$scored' of '$n_tok' tokens"
  awk '/^perplexity:/ { exit !($2 > 1 && $2 < 100 && $3 == "+/-" && $4 > 0) }' "$T/out" || fail "ppl sliding: perplexity line: $(grep perplexity "$T/out")"
  grep -q "^mean NLL:" "$T/out" && grep -q "tokens/s" "$T/out" || fail "ppl sliding: NLL / speed missing"
  grep -qE "^kv cache: +[0-9]+ bytes allocated$" "$T/out" || fail "ppl without a plan: $(grep '^kv cache' "$T/out")"
  ok "ppl sliding ($scored tokens; no plan named without --kv)"
  if expect_ok "ppl llama.cpp" ppl "$BIN" --text "$T/slice.txt" --ctx 128 --protocol llama.cpp; then
    scored=$(sed -n 's/^scored: *\([0-9]*\) tokens/\1/p' "$T/out")
    [ "$scored" = "$(( n_tok / 128 * (128 - 1 - 64) ))" ] || fail "ppl llama.cpp: scored $scored"
    awk '/^perplexity:/ { exit !($2 > 1 && $2 < 100) }' "$T/out" || fail "ppl llama.cpp: perplexity line"
    ok "ppl llama.cpp ($scored tokens)"
  fi
  expect_ok "ppl .gguf" ppl "$GGUF" --text "$T/slice.txt" --ctx 128 --protocol llama.cpp &&
    { grep "^mean NLL:" "$T/out" >"$T/nll_gguf"; }
  # same weights in both files: the NLLs agree to float rounding
  if expect_ok "ppl .bin llama.cpp" ppl "$BIN" --text "$T/slice.txt" --ctx 128 --protocol llama.cpp; then
    paste <(grep "^mean NLL:" "$T/out") "$T/nll_gguf" |
      awk '{ d = $3 - $6; if (d < 0) d = -d; exit !(d < 1e-4) }' || fail "ppl: .bin and .gguf NLL differ"
  fi
fi
# --bf16-dot: a bf16 file's NLL moves only by the activations' bf16 rounding
# (|diff| < 1e-3; RESULTS §5: 2e-5 on the whole text); a model without bf16
# weights is unaffected, to the printed digit
if expect_ok "convert to bf16" convert "$BIN" "$T/s-bf16.gguf" --to gguf --dtype bf16; then
  expect_ok "ppl bf16" ppl "$T/s-bf16.gguf" --text "$T/slice.txt" --ctx 128 && grep "^mean NLL:" "$T/out" >"$T/nll_exact"
  if expect_ok "ppl bf16 --bf16-dot" ppl "$T/s-bf16.gguf" --text "$T/slice.txt" --ctx 128 --bf16-dot; then
    paste "$T/nll_exact" <(grep "^mean NLL:" "$T/out") |
      awk '{ d = $3 - $6; if (d < 0) d = -d; print "    bf16 NLL exact " $3 ", bf16 dot " $6; exit !(d < 1e-3) }' ||
      fail "ppl --bf16-dot: NLL far from the exact products"
  fi
  expect_ok "ppl .bin" ppl "$BIN" --text "$T/slice.txt" --ctx 128 && grep "^mean NLL:" "$T/out" >"$T/nll_f32"
  expect_ok "ppl .bin --bf16-dot" ppl "$BIN" --text "$T/slice.txt" --ctx 128 --bf16-dot &&
    { grep "^mean NLL:" "$T/out" | cmp -s - "$T/nll_f32" || fail "ppl --bf16-dot changed an f32 model"; }
  expect_ok "generate bf16 --bf16-dot" generate "$T/s-bf16.gguf" --tokenizer "$(dirname "$BIN")/tok512.bin" \
    -p "Lily" -n 16 --temp 0 --bf16-dot
fi

# ---------- help ----------
for cmd in "" info generate ppl; do
  # shellcheck disable=SC2086
  if expect_ok "--help $cmd" $cmd --help; then
    grep -q "usage:" "$T/out" && grep -q "example" "$T/out" || fail "--help $cmd: usage/example missing"
  fi
done
expect_ok "-h generate" generate -h

# ---------- hostile model files ----------
: >"$T/empty.bin"
expect_error "empty model file" "'$T/empty.bin' is empty" info "$T/empty.bin"
# shorter than the 28-byte header: not recognised; longer: the size check
not_a_model="is not a model headroom can read"
for off in 3 27 28 100 4096 $(($(stat -c %s "$BIN") - 1)); do
  head -c "$off" "$BIN" >"$T/trunc.bin"
  pat="llama2.c file size $off does not match its header .*truncated"
  [ "$off" -lt 28 ] && pat=$not_a_model
  expect_error "llama2.c truncated at $off" "$pat" info "$T/trunc.bin"
done
gguf_size=$(stat -c %s "$GGUF")
for off in 3 8 23 40 300 2000 $((gguf_size - 4096)) $((gguf_size - 1)); do
  head -c "$off" "$GGUF" >"$T/trunc.gguf"
  case $off in
    3) pat=$not_a_model ;;                      # too short to show the magic
    8 | 23) pat="GGUF header truncated: file has $off bytes" ;;
    40) pat="GGUF claims [0-9]+ metadata entries, more than the [0-9]+ bytes left" ;;
    300) pat="GGUF claims [0-9]+ tensors, more than the [0-9]+ bytes left" ;;
    2000) pat="GGUF key 'tokenizer.ggml.tokens': array of [0-9]+ strings cannot fit" ;;
    *) pat="GGUF tensor '[^']+' .* extends past the end of the file" ;;
  esac
  expect_error "GGUF truncated at $off" "$pat" info "$T/trunc.gguf"
done
{ printf 'NOPE'; head -c 5000 /dev/zero; } >"$T/magic.bin"
expect_error "wrong magic" "$not_a_model .*first bytes 4e 4f 50 45" info "$T/magic.bin"

write_header() { # out, seven int32s
  local out=$1; shift
  /usr/bin/python3 -c 'import struct,sys; sys.stdout.buffer.write(struct.pack("<7i", *map(int, sys.argv[1:])) + bytes(4096))' "$@" >"$out"
}
write_header "$T/huge.bin" $((1 << 30)) $((1 << 30)) $((1 << 30)) $((1 << 30)) $((1 << 30)) 512 $((1 << 30))
# format detection already refuses headers no llama2.c file can have
expect_error "llama2.c absurd dims (2^30)" "$not_a_model .*not llama2.c" info "$T/huge.bin"
write_header "$T/neg.bin" -64 172 5 8 4 512 512
expect_error "llama2.c negative dim" "$not_a_model .*not llama2.c" info "$T/neg.bin"
write_header "$T/zero.bin" 64 172 0 8 4 512 512
expect_error "llama2.c zero layers" "llama2.c header has invalid dimensions .*layers 0" info "$T/zero.bin"
write_header "$T/heads.bin" 64 172 5 7 4 512 512
expect_error "llama2.c heads not dividing dim" "dim 64 is not a multiple of the head count 7" info "$T/heads.bin"

# GGUF surgery: the script walks the header and patches one field.
gguf_patch() { # in out mode
  /usr/bin/python3 - "$@" <<'PY'
import struct, sys
src, dst, mode = sys.argv[1:4]
b = bytearray(open(src, "rb").read())
pos = 24
n_tensors, n_kv = struct.unpack_from("<QQ", b, 8)
SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
def skip_str(p):
    (n,) = struct.unpack_from("<Q", b, p)
    return p + 8 + n
def skip_val(p, t):
    if t in SIZES: return p + SIZES[t]
    if t == 8: return skip_str(p)
    et, n = struct.unpack_from("<IQ", b, p)
    p += 12
    for _ in range(n): p = skip_val(p, et)
    return p
first_type_at = None
for _ in range(n_kv):
    pos = skip_str(pos)
    if first_type_at is None: first_type_at = pos
    (t,) = struct.unpack_from("<I", b, pos)
    pos = skip_val(pos + 4, t)
offsets = []
for _ in range(n_tensors):
    pos = skip_str(pos)
    (nd,) = struct.unpack_from("<I", b, pos)
    pos += 4 + 8 * nd + 4
    offsets.append(pos)
    pos += 8
if mode == "offset_past_end":
    struct.pack_into("<Q", b, offsets[-1], len(b))
elif mode == "offset_huge":
    struct.pack_into("<Q", b, offsets[0], (1 << 63) - 32)
elif mode == "value_type":
    struct.pack_into("<I", b, first_type_at, 99)
elif mode == "n_tensors_huge":
    struct.pack_into("<Q", b, 8, 1 << 62)
elif mode == "n_kv_huge":
    struct.pack_into("<Q", b, 16, 1 << 62)
open(dst, "wb").write(b)
PY
}
for mode in offset_past_end offset_huge value_type n_tensors_huge n_kv_huge; do
  case $mode in
    offset_past_end | offset_huge) pat="GGUF tensor '[^']+' offset [0-9]+ " ;;
    value_type) pat="unknown value type 99" ;;
    n_tensors_huge) pat="GGUF claims [0-9]+ tensors, more than" ;;
    n_kv_huge) pat="GGUF claims [0-9]+ metadata entries, more than" ;;
  esac
  if gguf_patch "$GGUF" "$T/patched.gguf" "$mode"; then
    expect_error "GGUF $mode" "$pat" info "$T/patched.gguf"
  else
    fail "could not build the $mode GGUF"
  fi
done
# the data-section cut: the header is intact, tensors run past the end
head -c $(($(stat -c %s "$GGUF") / 2)) "$GGUF" >"$T/half.gguf"
expect_error "GGUF tensor data past the end" "GGUF tensor '[^']+' .* extends past the end of the file" \
  generate "$T/half.gguf" -p "hi"

# ---------- bad text and options ----------
printf 'Once upon a time \xc3\x28 broken' >"$T/bad_utf8.txt"
expect_error "invalid UTF-8 text" "is not valid UTF-8 \(byte offset 17\)" ppl "$BIN" --text "$T/bad_utf8.txt"
: >"$T/empty.txt"
expect_error "empty text" "text is empty" ppl "$BIN" --text "$T/empty.txt"
expect_error "missing text file" "cannot open '$T/nope.txt'" ppl "$BIN" --text "$T/nope.txt"
expect_error "--ctx beyond the model's context" "--ctx 100000 exceeds the model's context length 512" \
  ppl "$BIN" --text "$T/slice.txt" --ctx 100000
expect_error "--ctx not a number" "invalid value 'abc' for --ctx" ppl "$BIN" --text "$T/slice.txt" --ctx abc
head -c 1500 "$TEXT" >"$T/short.txt" # under 2 * 512 tokens
expect_error "llama.cpp protocol with too little text" "llama.cpp protocol needs at least 2\*n_ctx" \
  ppl "$BIN" --text "$T/short.txt" --protocol llama.cpp
expect_error "unknown protocol" "unknown --protocol 'hf'" ppl "$BIN" --text "$T/slice.txt" --protocol hf
expect_error "ppl without --text" "--text FILE is required" ppl "$BIN"
mkdir "$T/alone" && cp "$BIN" "$T/alone/"
expect_error "missing tokenizer" "no tokenizer for model '$T/alone/stories260K.bin': looked for $T/alone" \
  generate "$T/alone/stories260K.bin" -p "hi"
expect_error "missing tokenizer (ppl)" "no tokenizer for model '$T/alone/stories260K.bin'" \
  ppl "$T/alone/stories260K.bin" --text "$T/slice.txt"
expect_error "explicit tokenizer missing" "tokenizer '$T/none.bin': No such file" \
  generate "$BIN" -p "hi" --tokenizer "$T/none.bin"
printf 'hi \xff' >"$T/p.txt"
expect_error "invalid UTF-8 prompt" "--prompt is not valid UTF-8 \(byte offset 3\)" generate "$BIN" -p "$(cat "$T/p.txt")"
expect_error "empty prompt" "--prompt needs at least one character" generate "$BIN" -p ""
expect_error "negative temperature" "--temp -1 is out of range" generate "$BIN" -p "hi" --temp -1
expect_error "top-p zero" "--top-p must be greater than 0" generate "$BIN" -p "hi" --top-p 0
expect_error "option without value" "option --prompt needs a value" generate "$BIN" -p
expect_error "unknown subcommand" "unknown command 'frobnicate'" frobnicate
expect_error "unknown option" "unknown option '--frobnicate' for 'headroom info'" info "$BIN" --frobnicate
expect_error "unknown top-level option" "unknown option '--frobnicate' \(see 'headroom --help'\)" --frobnicate
expect_error "too many positionals" "unexpected argument '$BIN' for 'headroom info'" info "$BIN" "$BIN"
expect_error "missing model" "cannot open '$T/does-not-exist.bin': No such file" info "$T/does-not-exist.bin"
HEADROOM_MODEL="$T/empty.bin" expect_error "HEADROOM_MODEL pointing at an empty file" "'$T/empty.bin' is empty" info

# ---------- default model ----------
# found beside the executable (<repo>/build*/headroom) or as ./../shared
cd "${HR_SOURCE_DIR:-.}" || fail "cannot cd to HR_SOURCE_DIR"
expect_ok "default model" info --no-tensors && { grep -q "stories260K.bin" "$T/out" || fail "default model is not stories260K.bin"; }
cd - >/dev/null || true
mkdir -p "$T/elsewhere/bin" && cp "$HR_CLI" "$T/elsewhere/bin/headroom"
cd "$T/elsewhere" || fail "cannot cd"
HR_CLI_SAVED=$HR_CLI HR_CLI="$T/elsewhere/bin/headroom"
expect_error "default model absent" "no MODEL given and the default model was not found" info
grep -q "karpathy/tinyllamas" "$T/err" || fail "absent default model: message should say where to get it"
HR_CLI=$HR_CLI_SAVED
cd - >/dev/null || true
HEADROOM_MODEL="$GGUF" expect_ok "HEADROOM_MODEL override" info --no-tensors &&
  { grep -q "^format: *GGUF" "$T/out" || fail "HEADROOM_MODEL did not select the GGUF"; }

echo "$failures failures"
[ "$failures" -eq 0 ]
