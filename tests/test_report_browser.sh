#!/usr/bin/env bash
# Loads a generated report.html in headless Chromium, offline (file:// URL),
# and checks what a person would see: one table row per head of heads.json,
# every heatmap <img> with its legend, markup in the data shown as text (not
# run), no script error, and a screenshot that is not blank.
set -u

: "${HR_TOOLS_DIR:?HR_TOOLS_DIR must point at the build directory with hr_report_demo}"

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
failures=0
fail() { echo "  FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok   $*"; }

. "$(dirname "$0")/browser_prelude.sh"

mkdir -p "$T/out"
if ! "$DEMO" "$T/out" 5 8 >"$T/demo.log" 2>&1; then
  fail "hr_report_demo failed"; cat "$T/demo.log"; exit 1
fi
REPORT="$T/out/report.html"
n_heads=$(grep -c '"head":' "$T/out/heads.json")
n_images=$(ls "$T/out"/*.png | wc -l)
[ "$n_heads" -gt 0 ] && [ "$n_images" -gt 0 ] || { fail "demo wrote $n_heads heads, $n_images images"; exit 1; }

if grep -qE 'https?://' "$REPORT"; then fail "report references the network"; else ok "report has no http(s) reference"; fi

chrome --dump-dom "file://$REPORT" >"$T/dom.html" 2>"$T/chrome.err"
rc=$?
if [ "$rc" -ne 0 ]; then
  fail "chromium --dump-dom exited $rc"; tail -5 "$T/chrome.err"
else
  rows=$(grep -o 'class="head-row"' "$T/dom.html" | wc -l)
  [ "$rows" -eq "$n_heads" ] && ok "DOM has one .head-row per head ($rows)" || fail "$rows .head-row elements, heads.json has $n_heads"
  grep -q 'id="heads-table"' "$T/dom.html" && ok "heads table present" || fail "no #heads-table"
  imgs=$(grep -o '<img class="heatmap" src="data:image/png;base64,' "$T/dom.html" | wc -l)
  [ "$imgs" -eq "$n_images" ] && ok "all $imgs heatmap images present" || fail "$imgs heatmap <img>, expected $n_images"
  legends=$(grep -o 'class="legend"' "$T/dom.html" | wc -l)
  [ "$legends" -eq "$n_images" ] && ok "every heatmap has a legend" || fail "$legends legends for $n_images images"
  grep -q 'layer-row' "$T/dom.html" && ok "layer table rendered" || fail "no layer rows"
  # The model path holds "<img src=x onerror=...>": it must appear as text.
  if grep -q '<img src="x"' "$T/dom.html"; then fail "markup from the JSON became an element"; else ok "no injected element"; fi
  grep -q '&lt;img src=x onerror=alert(1)&gt;' "$T/dom.html" && ok "hostile path shown as text" || fail "hostile path not rendered as text"
  if grep -q 'class="report-error"' "$T/dom.html"; then fail "the page script threw: $(grep -o 'class="report-error">[^<]*' "$T/dom.html")"; else ok "no script error"; fi
fi

# Sorting: a probe script appended to a copy of the page clicks the first
# method's score header twice and records the first and last rows; the
# expected heads come from heads.json.
PROBE="$T/out/probe.html"
# (a script after </html> still runs, parsed into the body)
cat "$REPORT" - >"$PROBE" <<'JS'
<script>(function () {
  var th = document.querySelectorAll('#heads-table th'), b = document.body;
  function rows() { return document.querySelectorAll('#heads-table tbody tr'); }
  function at(i) { var r = rows()[i]; return r.cells[0].textContent + ',' + r.cells[1].textContent; }
  th[2].click();
  b.setAttribute('data-desc-first', at(0));
  b.setAttribute('data-desc-last', at(rows().length - 1));
  th[2].click();
  b.setAttribute('data-asc-first', at(0));
})();</script>
JS
expected=$(/usr/bin/python3 - "$T/out/heads.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
mid = d["methods"][0]["id"]
have = [h for h in d["heads"] if h["scores"].get(mid) is not None]
none = [h for h in d["heads"] if h["scores"].get(mid) is None]
key = lambda h: "%d,%d" % (h["layer"], h["head"])
hi = max(have, key=lambda h: h["scores"][mid]); lo = min(have, key=lambda h: h["scores"][mid])
print('data-desc-first="%s" data-desc-last="%s" data-asc-first="%s"' % (key(hi), key(none[-1] if none else lo), key(lo)))
PY
)
chrome --dump-dom "file://$PROBE" >"$T/probe_dom.html" 2>/dev/null
got=$(grep -o 'data-desc-first="[^"]*" data-desc-last="[^"]*" data-asc-first="[^"]*"' "$T/probe_dom.html")
[ -n "$expected" ] && [ "$got" = "$expected" ] && ok "clicking a header sorts (desc, then asc; missing scores last)" \
  || fail "sorting: got '$got', expected '$expected'"

screenshot_not_blank "$REPORT"

echo "$failures failures"
[ "$failures" -eq 0 ]
