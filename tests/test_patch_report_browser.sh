#!/usr/bin/env bash
# Loads the report.html of `headroom patch` in headless Chromium, offline
# (file:// URL), and checks what a person would see: every heatmap of the
# run as an <img>, one token label per position column, a DLA bar for every
# part (heads, MLPs, embedding), one logit-lens row per layer, token text
# such as "<s>" shown as text (not markup), no script at all, and a
# screenshot that is not blank.
set -u

: "${HR_TOOLS_DIR:?HR_TOOLS_DIR must point at the build directory with hr_report_demo}"
. "$(dirname "$0")/cli_prelude.sh"
. "$(dirname "$0")/browser_prelude.sh"

# Two pairs of one length, so every position column is labelled by a token.
printf '%s\n' '{"clean": "Lily had a red ball. She gave the ball to", "corrupt": "Lily had a red cat. She gave the ball to", "answer": " Tom", "wrong": " Sue"}' \
  '{"clean": "Tom had a big dog. He gave the dog to", "corrupt": "Tom had a big cat. He gave the dog to", "answer": " Sue", "wrong": " Tom"}' \
  > "$T/pairs.jsonl"
if ! "$HR_CLI" patch "$M" --pairs "$T/pairs.jsonl" --what heads,layers,resid --path "* -> logits" \
     --knockout "0.0,1.1: -1 -> *" --out "$T/out" >"$T/log" 2>&1; then
  fail "headroom patch failed"; cat "$T/log"; exit 1
fi
REPORT="$T/out/report.html"
n_png=$(ls "$T/out"/*.png | wc -l)
n_pos=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["positions"]["count"])' "$T/out/patch.json")
if grep -qE 'https?://' "$REPORT"; then fail "report references the network"; else ok "report has no http(s) reference"; fi
if grep -q '<script>' "$REPORT" || grep -q '<script src' "$REPORT"; then fail "report carries a script"; else ok "no script (only inline JSON data)"; fi

chrome --dump-dom "file://$REPORT" >"$T/dom.html" 2>"$T/chrome.err"
rc=$?
if [ "$rc" -ne 0 ]; then
  fail "chromium --dump-dom exited $rc"; tail -5 "$T/chrome.err"
else
  imgs=$(grep -o '<img class="heatmap" alt="" src="data:image/png;base64,' "$T/dom.html" | wc -l)
  [ "$imgs" -eq "$n_png" ] && ok "all $imgs heatmaps embedded" || fail "$imgs heatmap <img>, $n_png PNG files"
  labels=$(grep -o '<span class="tok">' "$T/dom.html" | wc -l)
  want=$((2 * n_pos + 5 * 5)) # layers and resid maps: one label a column; lens: 5 layers x 5 tokens
  [ "$labels" -eq "$want" ] && ok "one token label per position column and lens token ($labels)" \
    || fail "$labels token labels, expected $want"
  dla=$(grep -o 'class="dla-row"' "$T/dom.html" | wc -l)
  [ "$dla" -eq 46 ] && ok "a DLA bar for each of 40 heads, 5 MLPs and the embedding" || fail "$dla DLA rows, expected 46"
  lens=$(grep -o 'class="lens-row"' "$T/dom.html" | wc -l)
  [ "$lens" -eq 5 ] && ok "one logit-lens row per layer" || fail "$lens lens rows, expected 5"
  grep -q 'id="path"' "$T/dom.html" && grep -q 'id="knockout-value"' "$T/dom.html" \
    && ok "path and knockout sections present" || fail "path / knockout sections missing"
  if grep -q '<s>' "$T/dom.html"; then fail "the BOS piece became markup"
  elif grep -q '&lt;s&gt;' "$T/dom.html"; then ok "the BOS piece <s> shown as text"
  else fail "the BOS label is missing"; fi
fi

screenshot_not_blank "$REPORT"

echo "$failures failures"
[ "$failures" -eq 0 ]
