#!/usr/bin/env bash
# The report of a real `headroom heads` run on stories260K, opened offline in
# headless Chromium: one table row per head, one heatmap per method, the
# attention-pattern pictures, no script error, a screenshot that is not blank.
set -u
cli=${HR_CLI:?}; tools=${HR_TOOLS_DIR:?}; shared=${HR_SHARED_DIR:?}
CHROME="${HR_CHROMIUM:-$(command -v chromium || echo /usr/bin/chromium)}"
[ -x "$CHROME" ] || { echo "FAIL: chromium not found; install it with scripts/setup.sh"; exit 1; }
. "$(dirname "$0")/cli_prelude.sh"
fails=0; passes=0
ok() { passes=$((passes + 1)); echo "ok   $*"; }
fail() { fails=$((fails + 1)); echo "FAIL $*"; }
chrome() {
  timeout -k 5 60 "$CHROME" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --disable-dev-shm-usage \
    --disable-extensions --hide-scrollbars --user-data-dir="$(mktemp -d "$T/profile.XXXXXX")" "$@"
}
head -c 40000 "$shared/data/text/tinystories_val.txt" > "$T/text.txt"
if ! "$cli" heads --text "$T/text.txt" --tokens 512 --top 3 --out "$T/out" > "$T/heads.log" 2>&1; then
  fail "headroom heads failed: $(tail -3 "$T/heads.log")"; echo "$passes passed, $fails failed"; exit 1
fi
n_heads=$(grep -c '"head":' "$T/out/heads.json")
n_methods=$(ls "$T/out"/heads_*.png | wc -l)
n_patterns=$(ls "$T/out"/pattern_*.png | wc -l)
[ "$n_heads" -eq 40 ] && ok "heads.json has the 40 heads of stories260K" || fail "heads.json has $n_heads heads"
# A loaded machine can make headless Chromium return before the page script
# ran; the dump is retried (up to 3 tries) before the checks judge it.
for try in 1 2 3; do
  chrome --dump-dom "file://$T/out/report.html" > "$T/dom.html" 2> "$T/chrome.err" || { echo "# dump-dom try $try failed"; continue; }
  grep -q 'class="head-row"' "$T/dom.html" && break
  echo "# dump-dom try $try: no table rows yet"
done
[ -s "$T/dom.html" ] || fail "chromium --dump-dom failed: $(tail -2 "$T/chrome.err")"
rows=$(grep -o 'class="head-row"' "$T/dom.html" | wc -l)
[ "$rows" -eq "$n_heads" ] && ok "DOM holds one row per head ($rows)" || fail "$rows rows for $n_heads heads"
imgs=$(grep -o '<img class="heatmap" src="data:image/png;base64,' "$T/dom.html" | wc -l)
[ "$imgs" -eq $((n_methods + n_patterns)) ] && ok "$imgs pictures rendered ($n_methods heatmaps, $n_patterns patterns)" \
  || fail "$imgs pictures, expected $((n_methods + n_patterns))"
grep -q 'class="report-error"' "$T/dom.html" && fail "the page script threw" || ok "no script error"
for try in 1 2 3; do
  chrome --window-size=1280,2000 --screenshot="$T/shot.png" "file://$T/out/report.html" > /dev/null 2>&1 && break
  echo "# screenshot try $try failed"
done
[ -s "$T/shot.png" ] || fail "screenshot failed"
read -r w h colours < <("$tools/hr_report_demo" --png-stats "$T/shot.png")
[ "${colours:-0}" -ge 100 ] && ok "screenshot ${w}x${h} has $colours colours" || fail "screenshot looks blank (${colours:-0} colours)"
echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
