#!/usr/bin/env bash
# End-to-end tests of `headroom patch` on stories260K: the outputs appear,
# the pairs file it writes reproduces the run (1 vs 2 threads), masked heads
# change the run, and every bad input (unequal lengths, multi-token answers
# under --single-token, unknown components in --path, a corpus without
# names, bad options) fails with one "headroom: error:" line before
# anything is written. PH3: --conflict writes ph3.json, prune --by
# ph3-memory reads it, the pruned model answers as gating does; a text
# without conflict pairs and bad --ph3 / --min-prob use are refused.
set -u

. "$(dirname "$0")/cli_prelude.sh"

run() { "$HR_CLI" patch "$M" "$@" >"$T/out" 2>"$T/err"; rc=$?; }
no_crash() {
  if [ "$rc" -ge 128 ] || grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$T/err"; then
    fail "$1: crash or sanitizer report (exit $rc)"; head -20 "$T/err"; return 1
  fi
}
expect_error() { # label, pattern, out dir, args...
  local label=$1 pat=$2 dir=$3 existed=0; shift 3
  [ -e "$dir" ] && existed=1
  run --out "$dir" "$@"
  no_crash "$label" || return
  if [ "$rc" -eq 0 ]; then fail "$label: exit 0"; return; fi
  if [ "$(grep -c 'headroom: error:' "$T/err")" -ne 1 ] || ! grep -q -- "$pat" "$T/err"; then
    fail "$label: expected one error line matching '$pat'"; cat "$T/err"; return
  fi
  if [ "$existed" -eq 0 ] && [ -e "$dir" ]; then fail "$label: $dir was created"; return; fi
  ok "$label"
}

run --name-recall "$TEXT" --n-pairs 3 --what heads,resid --path "* -> logits" --knockout "4.*: -1 -> 1..-2" \
  --out "$T/a" --threads 1
no_crash "name-recall run"
if [ "$rc" -eq 0 ]; then
  missing=""
  for f in patch.json pairs.jsonl report.html patch_heads.png patch_resid.png path_senders.png; do
    [ -s "$T/a/$f" ] || missing="$missing $f"
  done
  n_pairs=$(wc -l < "$T/a/pairs.jsonl")
  if [ -n "$missing" ]; then fail "name-recall run: missing$missing"
  elif [ "$n_pairs" -ne 3 ]; then fail "name-recall run: $n_pairs pairs written, expected 3"
  elif ls "$T/a" | grep -q '\.tmp\.'; then fail "name-recall run: temporary files left"
  else ok "name-recall run writes patch.json, pairs.jsonl, heatmaps and report.html"; fi
else
  fail "name-recall run: exit $rc"; cat "$T/err"
fi

# The pairs it wrote (ids) give the same numbers, with another thread count.
same_numbers() { # a.json b.json: every study's numbers agree exactly
  /usr/bin/python3 - "$1" "$2" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
keys = ["clean", "corrupt", "patching", "path", "knockout", "dla", "lens"]
sys.exit(0 if all(a.get(k) == b.get(k) for k in keys) else 1)
PY
}
run --pairs "$T/a/pairs.jsonl" --what heads,resid --path "* -> logits" --knockout "4.*: -1 -> 1..-2" \
  --out "$T/b" --threads 2
if [ "$rc" -eq 0 ] && same_numbers "$T/a/patch.json" "$T/b/patch.json"; then
  ok "the written pairs reproduce every number (1 vs 2 threads)"
else fail "rerun from pairs.jsonl differs (exit $rc)"; cat "$T/err"; fi

run --pairs "$T/a/pairs.jsonl" --what heads --mask-heads 4.4 --out "$T/c"
if [ "$rc" -eq 0 ] && ! same_numbers "$T/a/patch.json" "$T/c/patch.json" &&
   grep -q 'patch: 3 pairs' "$T/out"; then ok "--mask-heads changes the model studied"
else fail "--mask-heads (exit $rc)"; cat "$T/err"; fi

# bad input: one error line, no output folder
printf '%s\n' '{"clean_ids": [1, 5, 6], "corrupt_ids": [1, 5, 7], "answer_id": 3, "wrong_id": 4}' \
  '{"clean": "The cat sat on the mat", "corrupt": "The dog sat", "answer": " down", "wrong": " up"}' > "$T/uneq.jsonl"
expect_error "unequal clean / corrupt lengths" "line 2: clean and corrupt prompts have different lengths" "$T/d1" \
  --pairs "$T/uneq.jsonl"
printf '%s\n' '{"clean": "The cat sat", "corrupt": "The dog sat", "answer": " on the mat", "wrong": " up"}' > "$T/multi.jsonl"
expect_error "multi-token answer with --single-token" 'line 1: "answer" (" on the mat") is 4 tokens' "$T/d2" \
  --pairs "$T/multi.jsonl" --single-token
run --pairs "$T/multi.jsonl" --what heads --out "$T/d3"
if [ "$rc" -eq 0 ]; then ok "a multi-token answer is scored by its first token by default"
else fail "first-token rule (exit $rc)"; cat "$T/err"; fi
expect_error "unknown receiver in --path" "unknown receiver '2.1x'" "$T/d4" --pairs "$T/multi.jsonl" --path "* -> 2.1x"
expect_error "unknown sender in --path" "no head 9.1" "$T/d5" --pairs "$T/multi.jsonl" --path "9.1 -> logits"
expect_error "sender after its receiver" "sender 3.1 has no path" "$T/d6" --pairs "$T/multi.jsonl" --path "3.1 -> 2.0q"
printf 'the cat sat on the mat. the dog ran.\n' > "$T/nonames.txt"
expect_error "a corpus without names" "no name-recall pair" "$T/d7" --name-recall "$T/nonames.txt"
: > "$T/empty.jsonl"
expect_error "an empty pairs file" "empty" "$T/d8" --pairs "$T/empty.jsonl"
printf '\n\n' > "$T/blank.jsonl"
expect_error "a pairs file of blank lines" "holds no pair" "$T/d9" --pairs "$T/blank.jsonl"
expect_error "unknown --what" "unknown component kind 'heads2'" "$T/d10" --pairs "$T/multi.jsonl" --what heads2
expect_error "unknown --metric" "unknown metric 'acc'" "$T/d11" --pairs "$T/multi.jsonl" --metric acc
expect_error "two sources of pairs" "one source of pairs" "$T/d12" --pairs "$T/multi.jsonl" --name-recall "$TEXT"
expect_error "--path-mlps without --path" "is for --path" "$T/d13" --pairs "$T/multi.jsonl" --path-mlps recomputed
expect_error "bad --knockout" "expected positions" "$T/d14" --pairs "$T/multi.jsonl" --knockout "*: last -> 1"
expect_error "--mask-heads outside the model" "no head 9.9" "$T/d15" --pairs "$T/multi.jsonl" --mask-heads 9.9
# PH3: --conflict builds knowledge-conflict pairs and writes ph3.json, a
# score file the one score reader takes: prune --by ph3-memory --heads 2
# (--uneven duplicate: exactly those heads) removes the file's top 2 memory
# heads (ranked here from the file), and patching the pruned model gives
# what gating those heads gives (an independent path: the smaller model)
run --conflict "$TEXT" --n-pairs 20 --what none --no-lens --out "$T/ph3"
if [ "$rc" -eq 0 ] && [ -s "$T/ph3/ph3.json" ] && grep -q "^conflict: clean prompts answered with the context answer" "$T/out"
then ok "--conflict writes ph3.json and the answer shares"
else fail "--conflict (exit $rc)"; cat "$T/err"; fi
top2=$(/usr/bin/python3 -c '
import json, sys
h = json.load(open(sys.argv[1]))["heads"]
assert all(abs(r["scores"]["ph3-memory"] + r["scores"]["ph3-context"]) == 0 for r in h)
best = sorted(h, key=lambda r: (-r["scores"]["ph3-memory"], r["layer"], r["head"]))[:2]
print(",".join("%d.%d" % (r["layer"], r["head"]) for r in best))' "$T/ph3/ph3.json")
"$HR_CLI" prune "$M" --scores "$T/ph3/ph3.json" --by ph3-memory --heads 2 --uneven duplicate -o "$T/p2.gguf" \
  >/dev/null 2>"$T/err" || fail "prune --by ph3-memory"
removed=$(/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(",".join(sorted("%d.%d" % (l["layer"], h["head"]) for l in d["layers"] for h in l["removed_heads"])))' \
  "$T/p2.gguf.prune.json" 2>/dev/null)
[ "$removed" = "$(echo "$top2" | tr , '\n' | sort | paste -sd,)" ] && ok "prune --by ph3-memory removes the top 2 memory heads ($top2)" ||
  fail "prune --by ph3-memory removed '$removed', want '$top2'"
run --pairs "$T/ph3/pairs.jsonl" --what none --no-dla --no-lens --mask-heads "$top2" --out "$T/ph3g"
"$HR_CLI" patch "$T/p2.gguf" --pairs "$T/ph3/pairs.jsonl" --what none --no-dla --no-lens --out "$T/ph3p" >/dev/null 2>&1
/usr/bin/python3 -c '
import json, sys
a, b = (json.load(open(f))["pairs"] for f in sys.argv[1:3])
d = max(abs(x - y) for x, y in zip(a["clean_metric"], b["clean_metric"]))
print("    gated vs pruned: answers %d/%d vs %d/%d, max |diff| of the logit difference %.2g" % (
    a["clean_top_answer"], a["clean_top_wrong"], b["clean_top_answer"], b["clean_top_wrong"], d))
sys.exit(0 if d <= 1e-4 and a["clean_top_answer"] == b["clean_top_answer"] else 1)' "$T/ph3g/patch.json" \
  "$T/ph3p/patch.json" && ok "the pruned model answers the conflict pairs as gating does (tolerance 1e-4)" ||
  fail "pruned vs gated conflict answers"
printf 'ok. no. yes.\n' > "$T/noconflict.txt"
expect_error "a text without conflict pairs" "gives no conflict pair" "$T/d16" --conflict "$T/noconflict.txt"
expect_error "--ph3 with pairs of unequal lengths" "clean and corrupt prompts have different lengths" "$T/d17" \
  --pairs "$T/uneq.jsonl" --ph3
expect_error "--ph3 with another path" "leave --path out" "$T/d18" --pairs "$T/multi.jsonl" --ph3 --path "4.4 -> logits"
expect_error "--ph3 with another metric" "logit-diff only" "$T/d19" --pairs "$T/multi.jsonl" --ph3 --metric prob
expect_error "--ph3 without --pairs" "give --pairs" "$T/d20" --name-recall "$TEXT" --ph3
expect_error "--ph3 with noising" "denoise only" "$T/d23" --pairs "$T/multi.jsonl" --ph3 --direction noise
expect_error "--min-prob without --conflict" "is for --conflict" "$T/d21" --pairs "$T/multi.jsonl" --min-prob 0.4
expect_error "--min-prob outside (0, 1]" "min-prob" "$T/d22" --conflict "$TEXT" --min-prob 1.5

cp "$T/multi.jsonl" "$T/multi.copy"
expect_error "--out is an input" "input" "$T/multi.jsonl" --pairs "$T/multi.jsonl"
cmp -s "$T/multi.jsonl" "$T/multi.copy" || fail "--out is an input: the input changed"

echo "$failures failures"
[ "$failures" -eq 0 ]
