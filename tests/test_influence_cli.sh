#!/usr/bin/env bash
# headroom influence (AttentionInfluence) end to end on stories260K: each
# document's base and masked loss equal `headroom ppl`'s mean NLL of that
# document alone, without and with the same --mask-heads (an independent
# code path: hr_perplexity); an interrupted run (--max-docs, a torn last
# line) resumed with --resume gives the file of one uninterrupted run, byte
# for byte; a file of another run, a text without documents, no heads to
# mask, an output that is an input: one error line, the file untouched.
# --corpus (a folder of .txt, JSONL with "text") gives the records of the
# same documents as --text; --mask-top K --by retrieval masks the K heads
# ranked first in heads.json (ranked independently here), and without
# --scores computes the method on the fly to the same heads; empty corpora,
# a JSONL line without text and bad --mask-top are one error line each.
set -u

. "$(dirname "$0")/cli_prelude.sh"

docs=("Once upon a time, there was a girl named Lily. Lily liked to play with her ball. One day, Lily lost her ball." \
      "Tom had a big red car. He drove it to the park.
Then Tom saw his friend Sam, and Sam waved at Tom." \
      "The sun was hot. The cat slept under a tree all day.")
: > "$T/docs.txt"
for i in 0 1 2; do
  printf '%s' "${docs[$i]}" > "$T/doc$i.txt"
  printf '%s\n\n' "${docs[$i]}" >> "$T/docs.txt"
done
MASK=(--mask-heads 4.0,4.1,2.3)

run() { "$HR_CLI" influence "$M" --text "$T/docs.txt" "${MASK[@]}" "$@" >"$T/out" 2>"$T/err"; rc=$?; }
run -o "$T/full.jsonl"
if [ "$rc" -ne 0 ]; then fail "influence run (exit $rc)"; cat "$T/err"; exit 1; fi
[ "$(wc -l < "$T/full.jsonl")" -eq 4 ] && ok "a header and one line per document" || fail "$(wc -l < "$T/full.jsonl") lines"

nll() { "$HR_CLI" ppl "$M" --text "$1" "${@:2}" 2>/dev/null | sed -n 's/^mean NLL: *//p'; }
worst=$(for i in 0 1 2; do
  echo "$(nll "$T/doc$i.txt") $(nll "$T/doc$i.txt" "${MASK[@]}")"
done | /usr/bin/python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()[1:]]
worst = 0
for rec, line in zip(recs, sys.stdin):
    base, masked = (float(x) for x in line.split())
    worst = max(worst, abs(rec["loss_base"] - base), abs(rec["loss_masked"] - masked))
    assert abs(rec["influence"] - (rec["loss_masked"] - rec["loss_base"]) / rec["loss_base"]) < 1e-12
print(worst)' "$T/full.jsonl")
if /usr/bin/python3 -c "import sys; sys.exit(0 if float('$worst') <= 1e-6 else 1)" 2>/dev/null; then
  ok "base and masked losses equal ppl's mean NLL of each document (max |diff| $worst; ppl prints 6 decimals)"
else fail "losses differ from ppl by $worst"; fi

run -o "$T/part.jsonl" --max-docs 1
run -o "$T/part.jsonl" --resume
if [ "$rc" -eq 0 ] && cmp -s "$T/full.jsonl" "$T/part.jsonl" && grep -q "resuming after 1 documents" "$T/err"; then
  ok "--max-docs 1, then --resume: the same file as one run"
else fail "resume after --max-docs (exit $rc)"; cat "$T/err"; fi
head -c -40 "$T/full.jsonl" > "$T/torn.jsonl"
run -o "$T/torn.jsonl" --resume
cmp -s "$T/full.jsonl" "$T/torn.jsonl" && ok "a torn last line is scored again" || fail "resume after a torn line"

expect_error() { # label, pattern, file that must stay, command...
  local label=$1 pat=$2 keep=$3; shift 3
  local before=""; [ -e "$keep" ] && before=$(sha256sum < "$keep")
  "$@" >"$T/out" 2>"$T/err"; local r=$?
  local after=""; [ -e "$keep" ] && after=$(sha256sum < "$keep")
  if [ "$r" -ne 0 ] && [ "$(grep -c 'headroom: error:' "$T/err")" -eq 1 ] && grep -q -- "$pat" "$T/err" && [ "$before" = "$after" ]; then
    ok "$label"
  else fail "$label: exit $r, expected one error line matching '$pat' and $keep unchanged"; cat "$T/err"; fi
}
expect_error "--resume of another run's file" "written by another run" "$T/full.jsonl" \
  "$HR_CLI" influence "$M" --text "$T/docs.txt" --mask-heads 1.1 -o "$T/full.jsonl" --resume
printf '\n   \n\n' > "$T/blank.txt"
expect_error "a text without documents" "holds no document" "$T/none.jsonl" \
  "$HR_CLI" influence "$M" --text "$T/blank.txt" "${MASK[@]}" -o "$T/none.jsonl"
[ -e "$T/none.jsonl" ] && fail "a failed run wrote $T/none.jsonl"
expect_error "no heads to mask" "give the heads to mask" "$T/none.jsonl" \
  "$HR_CLI" influence "$M" --text "$T/docs.txt" -o "$T/none.jsonl"
expect_error "--out is the text" "input" "$T/docs.txt" \
  "$HR_CLI" influence "$M" --text "$T/docs.txt" "${MASK[@]}" -o "$T/docs.txt"

# --corpus: a folder of .txt files and a JSONL file holding the same three
# documents give the records of --text (whose losses ppl checked above)
mkdir -p "$T/corpus"
for i in 0 1 2; do cp "$T/doc$i.txt" "$T/corpus/d$i.txt"; done
printf 'not a document' > "$T/corpus/notes.md"
/usr/bin/python3 -c '
import json, sys
for i, p in enumerate(sys.argv[1:]):
    print(json.dumps({"text": open(p).read(), "id": i}))
    print()' "$T/doc0.txt" "$T/doc1.txt" "$T/doc2.txt" > "$T/corpus.jsonl"
for c in "$T/corpus" "$T/corpus.jsonl"; do
  "$HR_CLI" influence "$M" --corpus "$c" "${MASK[@]}" -o "$T/c.jsonl" --force >"$T/out" 2>"$T/err"
  if [ $? -eq 0 ] && cmp -s <(tail -n +2 "$T/full.jsonl") <(tail -n +2 "$T/c.jsonl") &&
     head -1 "$T/c.jsonl" | grep -q '"corpus_sha256"' && grep -q "documents/s" "$T/out" &&
     grep -q "^rank 1: document " "$T/out"; then
    ok "--corpus ${c##*/}: the records of --text, a documents/s throughput and a ranking"
  else fail "--corpus ${c##*/}"; cat "$T/err" "$T/out"; fi
done

# --mask-top K --by retrieval: the K heads with the highest retrieval scores
# of heads.json (ranked here from the file), as --mask-heads would mask them
"$HR_CLI" heads "$M" -f "$T/text.txt" -o "$T/lab" -m retrieval --needles natural -n 512 -q >/dev/null 2>&1 ||
  fail "head lab for --mask-top"
top=$(/usr/bin/python3 -c '
import json, sys
h = json.load(open(sys.argv[1]))["heads"]
best = sorted(h, key=lambda r: (-r["scores"]["retrieval"], r["layer"], r["head"]))[:3]
print(",".join("%d.%d" % (r["layer"], r["head"]) for r in best))' "$T/lab/heads.json")
"$HR_CLI" influence "$M" --text "$T/docs.txt" --mask-heads "$top" -o "$T/by_list.jsonl" >/dev/null 2>&1
"$HR_CLI" influence "$M" --text "$T/docs.txt" --mask-top 3 --by retrieval --scores "$T/lab/heads.json" \
  -o "$T/by_top.jsonl" >"$T/out" 2>"$T/err"
if [ $? -eq 0 ] && cmp -s "$T/by_list.jsonl" "$T/by_top.jsonl"; then
  ok "--mask-top 3 --by retrieval masks the file's top 3 ($top)"
else fail "--mask-top 3 (want $top)"; cat "$T/err"; fi

# --mask-top without --scores: the head lab computes the method on the fly
# (same calibration text and defaults as `headroom heads`): the same heads
# as heads + --scores, and the same file
"$HR_CLI" heads "$M" -f "$T/text.txt" -o "$T/lab2" -m retrieval --needles natural -q >/dev/null 2>&1 ||
  fail "head lab (defaults) for --mask-top"
"$HR_CLI" influence "$M" --text "$T/docs.txt" --mask-top 3 --by retrieval --scores "$T/lab2/heads.json" \
  -o "$T/by_file.jsonl" >"$T/out" 2>"$T/err.file" || fail "--mask-top --scores lab2"
"$HR_CLI" influence "$M" --text "$T/docs.txt" --mask-top 3 --by retrieval --needles natural --calib "$T/text.txt" \
  -o "$T/by_fly.jsonl" >"$T/out" 2>"$T/err" || true
want=$(sed -n 's/^influence: masking the top 3 heads by retrieval: //p' "$T/err.file")
if [ -n "$want" ] && grep -q "no --scores: computing 'retrieval' with the head lab" "$T/err" &&
  grep -q "masking the top 3 heads by retrieval: $want\$" "$T/err" && cmp -s "$T/by_file.jsonl" "$T/by_fly.jsonl"; then
  ok "--mask-top 3 --by retrieval without --scores computes the heads of heads + --scores ($want) and the same file"
else fail "--mask-top computed on the fly (want '$want')"; cat "$T/err"; fi

: > "$T/empty.jsonl"
mkdir -p "$T/emptydir"
printf '{"text": "Once upon a time."}\n{"title": "no text"}\n' > "$T/notext.jsonl"
expect_error "an empty JSONL corpus" "the corpus .*empty.jsonl holds no document" "$T/none.jsonl" \
  "$HR_CLI" influence "$M" --corpus "$T/empty.jsonl" "${MASK[@]}" -o "$T/none.jsonl"
expect_error "a corpus folder without .txt" "holds no .txt document" "$T/none.jsonl" \
  "$HR_CLI" influence "$M" --corpus "$T/emptydir" "${MASK[@]}" -o "$T/none.jsonl"
expect_error "a JSONL line without text" "notext.jsonl line 2: a corpus line is an object with a string \"text\"" \
  "$T/none.jsonl" "$HR_CLI" influence "$M" --corpus "$T/notext.jsonl" "${MASK[@]}" -o "$T/none.jsonl"
expect_error "--text and --corpus together" "--text FILE or --corpus" "$T/none.jsonl" \
  "$HR_CLI" influence "$M" --text "$T/docs.txt" --corpus "$T/corpus" "${MASK[@]}" -o "$T/none.jsonl"
expect_error "--mask-top without --by" "--mask-top needs --by METHOD" "$T/none.jsonl" \
  "$HR_CLI" influence "$M" --corpus "$T/corpus" --mask-top 2 -o "$T/none.jsonl"
expect_error "--mask-top computed over a corpus without --calib" "runs the head lab on a text: give --calib" \
  "$T/none.jsonl" "$HR_CLI" influence "$M" --corpus "$T/corpus" --mask-top 2 --by retrieval -o "$T/none.jsonl"
expect_error "--mask-top by an unknown method, computed" "--by 'nosuch' is not a head-lab method: give the file" "$T/none.jsonl" \
  "$HR_CLI" influence "$M" --text "$T/docs.txt" --mask-top 2 --by nosuch -o "$T/none.jsonl"
expect_error "--needles with --scores" "--needles is for the head lab run on the fly" "$T/none.jsonl" \
  "$HR_CLI" influence "$M" --text "$T/docs.txt" --mask-top 2 --by retrieval --scores "$T/lab/heads.json" \
  --needles natural -o "$T/none.jsonl"
expect_error "--mask-top beyond the heads" "top 41 heads by 'retrieval': the table scores 40 heads" "$T/none.jsonl" \
  "$HR_CLI" influence "$M" --corpus "$T/corpus" --mask-top 41 --by retrieval --scores "$T/lab/heads.json" -o "$T/none.jsonl"
[ -e "$T/none.jsonl" ] && fail "a failed run wrote $T/none.jsonl"

echo "$failures failures"
[ "$failures" -eq 0 ]
