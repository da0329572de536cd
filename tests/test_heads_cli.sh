#!/usr/bin/env bash
# End-to-end tests of `headroom heads` on stories260K: outputs written and
# deterministic (byte-identical JSON across runs and thread counts), and
# hostile inputs fail with one "headroom: error:" line and nothing written.
set -u

. "$(dirname "$0")/cli_prelude.sh"
FAST=(--window 48 --tokens 96 --top 2)

run() { "$HR_CLI" heads "$M" "$@" >"$T/out" 2>"$T/err"; rc=$?; }
no_crash() {
  if [ "$rc" -ge 128 ] || grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$T/err"; then
    fail "$1: crash or sanitizer report (exit $rc)"; head -20 "$T/err"; return 1
  fi
}
expect_error() { # label, pattern, args...
  local label=$1 pat=$2; shift 2
  run "$@"
  no_crash "$label" || return
  if [ "$rc" -eq 0 ]; then fail "$label: exit 0"; return; fi
  if [ "$(grep -c 'headroom: error:' "$T/err")" -ne 1 ] || ! grep -q -- "$pat" "$T/err"; then
    fail "$label: expected one error line matching '$pat'"; cat "$T/err"; return
  fi
  ok "$label"
}

run --text "$T/text.txt" --out "$T/a" --threads 1 --methods all "${FAST[@]}"
no_crash "full run"
if [ "$rc" -eq 0 ]; then
  missing=""
  for f in heads.json heads.csv layers.json report.html heads_ablation.png heads_sink.png heads_induction.png; do
    [ -s "$T/a/$f" ] || missing="$missing $f"
  done
  n_patterns=$(ls "$T/a"/pattern_L*_H*.png 2>/dev/null | wc -l)
  n_rows=$(($(wc -l < "$T/a/heads.csv") - 1))
  if [ -n "$missing" ]; then fail "full run: missing$missing"
  elif [ "$n_patterns" -ne 2 ]; then fail "full run: $n_patterns pattern pictures, expected 2"
  elif [ "$n_rows" -ne 40 ]; then fail "full run: $n_rows csv rows, expected 40 heads"
  elif ls "$T/a" | grep -q '\.tmp\.'; then fail "full run: temporary files left"
  else ok "full run writes every output"; fi
else
  fail "full run: exit $rc"; cat "$T/err"
fi

run --text "$T/text.txt" --out "$T/b" --threads 2 --methods all "${FAST[@]}"
if [ "$rc" -eq 0 ] && cmp -s "$T/a/heads.json" "$T/b/heads.json" && cmp -s "$T/a/layers.json" "$T/b/layers.json"; then
  ok "same inputs and seed give byte-identical JSON (1 vs 2 threads)"
else fail "JSON differs between runs"; fi

run --text "$T/text.txt" --out "$T/c" --seed 5 --methods induction,retrieval "${FAST[@]}"
if [ "$rc" -eq 0 ] && ! cmp -s "$T/a/heads.json" "$T/c/heads.json" && ! grep -q '"ablation"' "$T/c/heads.json"; then
  ok "--methods restricts the methods"
else fail "--methods induction,retrieval"; fi

cp "$T/c/heads.json" "$T/c_heads.json"
run --text "$T/text.txt" --out "$T/c" --seed 5 --methods induction,retrieval --no-layer-metrics "${FAST[@]}"
if [ "$rc" -eq 0 ] && cmp -s "$T/c_heads.json" "$T/c/heads.json" && [ ! -e "$T/c/layers.json" ] &&
   [ -s "$T/c/report.html" ] && ! grep -q "^heads \[.*layer metrics" "$T/err" && grep -q "layer metrics skipped" "$T/err" && ! grep -q "layers.json" "$T/out"; then
  ok "--no-layer-metrics gives the same heads.json, no layer phase, and removes the earlier layers.json"
else fail "--no-layer-metrics"; cat "$T/err"; fi

printf 'Once upon a time.\n' > "$T/short.txt"
expect_error "text shorter than one window" "shorter than one window" --text "$T/short.txt" --out "$T/d" "${FAST[@]}"
[ -e "$T/d/heads.json" ] && fail "short text left heads.json"
expect_error "unknown method" "unknown method 'bogus'" --text "$T/text.txt" --out "$T/e" --methods sink,bogus
[ -e "$T/e" ] && fail "unknown method created the output directory"
mkdir -p "$T/ro" && chmod a-w "$T/ro"
if [ "$(id -u)" -ne 0 ]; then
  expect_error "unwritable --out" "not writable\|cannot create" --text "$T/text.txt" --out "$T/ro" "${FAST[@]}"
fi
expect_error "--out below a file" "cannot create\|not a directory" --text "$T/text.txt" --out "$T/text.txt/x" "${FAST[@]}"
expect_error "missing --out" "--out DIR is required" --text "$T/text.txt"
expect_error "fewer tokens than one window" "10 calibration tokens are fewer than one window of 48" --text "$T/text.txt" --out "$T/g" --window 48 --tokens 10
[ -e "$T/g/heads.json" ] && fail "--tokens 10 left heads.json"
run --text "$T/text.txt" --out "$T/h" --window 48 --tokens 100 --methods sink --top 0
[ "$rc" -eq 0 ] && grep -q "warning: head lab: using 96 calibration tokens (2 windows of 48), not the 100 asked: only whole windows are used" "$T/err" &&
  ok "--tokens that are not whole windows: a warning states the tokens used" || { fail "--tokens 100 (exit $rc)"; cat "$T/err"; }
grep -q '"format": "headroom.heads",' "$T/a/heads.json" && grep -q '"format_version": 1,' "$T/a/layers.json" &&
  ok "heads.json and layers.json carry format and format_version" || fail "no format fields"
expect_error "window beyond the context" "exceeds the model's context" --text "$T/text.txt" --out "$T/f" --window 100000

# headroom successor: the mod-10 probe (its values are checked in test_heads)
"$HR_CLI" successor "$M" --max 1000 >"$T/succ" 2>"$T/err"
if [ $? -eq 0 ] && grep -q "^numbers: 10 of 0..1000 are single tokens: 0 1 2 3 4 5 6 7 8 9$" "$T/succ" &&
   grep -q "leave-one-out; chance 0.100" "$T/succ"; then ok "successor: the digits, the probe's accuracy and chance"
else fail "successor"; cat "$T/succ" "$T/err"; fi
"$HR_CLI" successor "$M" --ridge 0 >/dev/null 2>"$T/err"
[ $? -ne 0 ] && [ "$(grep -c 'headroom: error:' "$T/err")" -eq 1 ] && ok "successor --ridge 0: one error line" ||
  fail "successor --ridge 0"

if [ "$failures" -ne 0 ]; then echo "$failures failures"; exit 1; fi
echo "all heads CLI tests passed"
