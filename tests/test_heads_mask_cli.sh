#!/usr/bin/env bash
# Heads masked without writing a model, end to end: --gates with "L.H 0"
# equals --mask-heads L.H (ppl to the last printed digit), masking and
# mean-ablation change the perplexity, eval of one model against itself
# with --random-heads is reproducible per seed and names the heads,
# --kv-random runs, and bad options fail with one "headroom: error:" line.
set -u

. "$(dirname "$0")/cli_prelude.sh"

ppl() { "$HR_CLI" ppl "$M" --text "$T/text.txt" --ctx 128 "$@" 2>"$T/err" | grep '^perplexity'; }
base=$(ppl)
masked=$(ppl --mask-heads 2.3,4.1)
printf '# two heads off\n2.3 0\n4.1 0   # comment\n' > "$T/gates.txt"
gated=$(ppl --gates "$T/gates.txt")
meaned=$(ppl --mean-heads 2.3,4.1)
if [ -n "$masked" ] && [ "$masked" = "$gated" ]; then ok "--gates 'L.H 0' equals --mask-heads ($masked)"
else fail "--gates '$gated' vs --mask-heads '$masked'"; cat "$T/err"; fi
if [ "$masked" != "$base" ] && [ -n "$meaned" ] && [ "$meaned" != "$masked" ]; then
  ok "masking and mean-ablation change the perplexity ($base / $masked / $meaned)"
else fail "base '$base', masked '$masked', mean '$meaned'"; fi

"$HR_CLI" generate "$M" --prompt "Once upon a time" -n 8 --temp 0 --mask-heads "4.*" >"$T/gen" 2>"$T/err" \
  && grep -q 'heads:      4.0=0 4.1=0' "$T/err" && ok "generate --mask-heads names the heads" \
  || { fail "generate --mask-heads"; cat "$T/err"; }

ev() { "$HR_CLI" eval "$M" --text "$T/text.txt" --windows 1 --fdtm-prompts 2 --no-speed "$@"; }
ev --random-heads 3 --seed 4 --json "$T/r1.json" >"$T/o1" 2>"$T/err" && ev --random-heads 3 --seed 4 --json "$T/r2.json" >"$T/o2" 2>&1
if cmp -s "$T/r1.json" "$T/r2.json" && grep -q '"candidate_heads":[[:space:]]*"[0-9]\.[0-9]=0 [0-9]\.[0-9]=0 [0-9]\.[0-9]=0"' "$T/r1.json"; then
  ok "eval of one model with --random-heads: same seed, same heads and numbers"
else fail "eval --random-heads"; cat "$T/err"; fi
sum=$(sha256sum "$M" | cut -c1-64)
if /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d['base']['sha256'] == d['candidate']['sha256'] == sys.argv[2] else 1)" "$T/r1.json" "$sum"; then
  ok "eval of one model names it twice with its sha256 (hashed once)"
else fail "eval of one model: sha256 of base / candidate"; fi
ev --random-heads 3 --seed 5 --json "$T/r3.json" >/dev/null 2>&1
cmp -s "$T/r1.json" "$T/r3.json" && fail "seeds 4 and 5 gave the same eval" || ok "another seed draws other heads"
if ev --kv-random 0.25 --seed 1 >"$T/o4" 2>"$T/err" && grep -q 'KV bytes allocated' "$T/o4"; then
  ok "eval --kv-random runs the random KV baseline"
else fail "eval --kv-random"; cat "$T/err"; fi

expect_error() { # label, pattern, command...
  local label=$1 pat=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ "$rc" -ne 0 ] && [ "$(grep -c 'headroom: error:' "$T/err")" -eq 1 ] && grep -q -- "$pat" "$T/err"; then ok "$label"
  else fail "$label: exit $rc, expected one error line matching '$pat'"; cat "$T/err"; fi
}
printf '2.3 0\n2.3 1\n' > "$T/twice.txt"
expect_error "a head set twice in --gates" "line 2: head 2.3 is set twice" "$HR_CLI" ppl "$M" --text "$T/text.txt" --gates "$T/twice.txt"
expect_error "--calib without --mean-heads" "is for --mean-heads" "$HR_CLI" ppl "$M" --text "$T/text.txt" --calib "$T/text.txt" --mask-heads 1.1
expect_error "--mean-heads in generate without --calib" "needs a calibration text" "$HR_CLI" generate "$M" --prompt hi --mean-heads 1.1
expect_error "a head in two options" "already set by another option" "$HR_CLI" ppl "$M" --text "$T/text.txt" --mask-heads 1.1 --mean-heads 1.1
expect_error "eval of one model without a change" "BASE and CANDIDATE" "$HR_CLI" eval "$M" --text "$T/text.txt"
expect_error "--kv-random with --kv" "choose one" "$HR_CLI" eval "$M" --text "$T/text.txt" --kv-random 0.5 --kv "$T/gates.txt"
expect_error "--random-heads beyond the heads" "40 heads are free" "$HR_CLI" eval "$M" --text "$T/text.txt" --random-heads 41

echo "$failures failures"
[ "$failures" -eq 0 ]
