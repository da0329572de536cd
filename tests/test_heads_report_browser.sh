#!/usr/bin/env bash
# The report of a real `headroom heads` run on stories260K, opened offline in
# headless Chromium at 1400 x 900: the key findings open the page (their
# block starts in the first 900 pixels), the page stays short (< 8000 px)
# and never wider than the window, no picture is shown larger than 800 px,
# every figure names its axes in the DOM and in its PNG's text chunks, a
# method whose scores are all equal says so instead of drawing, the head
# table sorts and filters by class, one table row per head, no script
# error, and the screenshot is not blank.
set -u
cli=${HR_CLI:?}; tools=${HR_TOOLS_DIR:?}; shared=${HR_SHARED_DIR:?}
. "$(dirname "$0")/cli_prelude.sh"
fails=0; passes=0
ok() { passes=$((passes + 1)); echo "ok   $*"; }
fail() { fails=$((fails + 1)); echo "FAIL $*"; }
. "$(dirname "$0")/browser_prelude.sh"
head -c 40000 "$shared/data/text/tinystories_val.txt" > "$T/text.txt"
PROMPT="Once upon a time, there was a little girl named Lily. She loved to play outside."
if ! "$cli" heads --text "$T/text.txt" --tokens 512 --top 3 --out "$T/out" --pattern-prompt "$PROMPT" -q \
    > "$T/heads.log" 2>&1; then
  fail "headroom heads failed: $(tail -3 "$T/heads.log")"; echo "$passes passed, $fails failed"; exit 1
fi
n_heads=$(grep -c '"head":' "$T/out/heads.json")
n_methods=$(ls "$T/out"/heads_*.png | wc -l)
n_patterns=$(ls "$T/out"/pattern_*.png | wc -l)
[ "$n_heads" -eq 40 ] && ok "heads.json has the 40 heads of stories260K" || fail "heads.json has $n_heads heads"
# methods whose every head has the same score, from heads.json
flat=$(/usr/bin/python3 - "$T/out/heads.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for m in d["methods"]:
    v = [h["scores"].get(m["id"]) for h in d["heads"]]
    v = [x for x in v if x is not None]
    if len(v) > 1 and min(v) == max(v): print(m["id"])
PY
)
n_flat=$(grep -c . <<<"$flat")

# The page with a probe that measures the layout once it is drawn, and
# drives the filters (a script after </html> still runs, in the body).
cat "$T/out/report.html" - >"$T/out/probe.html" <<'JS'
<script>(function () {
  var b = document.body;
  function set(k, v) { b.setAttribute('data-' + k, String(v)); }
  function measure() {
    var f = document.getElementById('findings').getBoundingClientRect();
    set('findings-top', Math.round(f.top + window.scrollY));
    set('page-height', document.documentElement.scrollHeight);
    set('page-width', document.documentElement.scrollWidth);
    var w = document.querySelector('#heads .table-wrap');
    set('table-overflow', w.scrollWidth - w.clientWidth);
    var big = 0, imgs = document.querySelectorAll('img.heatmap');
    for (var i = 0; i < imgs.length; i++) {
      var r = imgs[i].getBoundingClientRect();
      big = Math.max(big, Math.round(r.width), Math.round(r.height));
    }
    set('largest-image', big);
    set('axes', document.querySelectorAll('figure .axes').length);
    var sel = document.getElementById('heads-class'), rows = document.querySelectorAll('#heads-table tbody tr');
    sel.value = 'prev_token';
    sel.dispatchEvent(new Event('change'));
    var shown = 0, wrong = 0;
    for (var j = 0; j < rows.length; j++) {
      if (rows[j].hidden) continue;
      shown++;
      if (rows[j].cells[rows[j].cells.length - 1].textContent.indexOf('prev_token') < 0) wrong++;
    }
    set('class-shown', shown);
    set('class-wrong', wrong);
    set('measured', 1);
  }
  if (document.readyState === 'complete') measure(); else window.addEventListener('load', measure);
})();</script>
JS
# A loaded machine can make headless Chromium return before the page script
# ran; the dump is retried (up to 3 tries) before the checks judge it.
for try in 1 2 3; do
  chrome --window-size=1400,900 --dump-dom "file://$T/out/probe.html" > "$T/dom.html" 2> "$T/chrome.err" ||
    { echo "# dump-dom try $try failed"; continue; }
  grep -q 'data-measured="1"' "$T/dom.html" && break
  echo "# dump-dom try $try: not measured yet"
done
[ -s "$T/dom.html" ] || fail "chromium --dump-dom failed: $(tail -2 "$T/chrome.err")"
attr() { grep -o "data-$1=\"[^\"]*\"" "$T/dom.html" | head -1 | cut -d'"' -f2; }
rows=$(grep -o 'class="head-row"' "$T/dom.html" | wc -l)
[ "$rows" -eq "$n_heads" ] && ok "DOM holds one row per head ($rows)" || fail "$rows rows for $n_heads heads"
imgs=$(grep -o '<img class="heatmap" src="data:image/png;base64,' "$T/dom.html" | wc -l)
flats=$(grep -o 'class="flat"' "$T/dom.html" | wc -l)
[ "$imgs" -eq $((n_methods - n_flat + n_patterns)) ] && [ "$flats" -eq "$n_flat" ] &&
  ok "$imgs pictures drawn ($n_methods heatmaps, $n_patterns patterns); $flats method(s) with equal scores said in words: $(tr '\n' ' ' <<<"$flat")" ||
  fail "$imgs pictures and $flats flat notes, expected $((n_methods - n_flat + n_patterns)) and $n_flat"
grep -q 'class="report-error"' "$T/dom.html" && fail "the page script threw" || ok "no script error"
top=$(attr findings-top); height=$(attr page-height); width=$(attr page-width)
[ -n "$top" ] && [ "$top" -lt 900 ] && ok "the key findings start at y = $top px, within the first screen" ||
  fail "findings at y = '$top'"
grep -q 'Most important heads' "$T/dom.html" && grep -q 'Head classes found' "$T/dom.html" &&
  grep -q 'Layers and sublayers to drop' "$T/dom.html" && grep -q 'prev_token &gt;= 0.4' "$T/dom.html" &&
  ok "the findings name the important heads, the classes with their thresholds and the layers to drop" ||
  fail "findings incomplete"
[ -n "$height" ] && [ "$height" -lt 8000 ] && ok "page height $height px (< 8000)" || fail "page height '$height'"
[ "$width" = 1400 ] && [ "$(attr table-overflow)" = 0 ] && ok "nothing wider than the 1400 px window (the head table fits)" ||
  fail "page width $width, head table overflow $(attr table-overflow)"
big=$(attr largest-image)
[ -n "$big" ] && [ "$big" -le 800 ] && ok "largest picture shown: $big px (<= 800)" || fail "a picture is shown at $big px"
[ "$(attr axes)" -eq "$imgs" ] && ok "every figure names its axes in the DOM" || fail "$(attr axes) axis lines for $imgs figures"
grep -q 'rows: layer 0–4 · columns: head 0–7' "$T/dom.html" && grep -q 'tokens (rows: queries, columns: keys): &lt;s&gt; ·Once' "$T/dom.html" &&
  ok "axis labels in the DOM: layers and heads; the pattern prompt's tokens" || fail "axis labels missing from the DOM"
want=$(grep -c '"classes": \[[^]]*"prev_token"' "$T/out/heads.json")
[ "$(attr class-shown)" = "$want" ] && [ "$(attr class-wrong)" = 0 ] &&
  ok "the class filter shows the $want prev_token heads" || fail "class filter: $(attr class-shown) shown, $(attr class-wrong) wrong, want $want"

# The PNGs read on their own: labels in their text chunks, shapes bounded
/usr/bin/python3 - "$T/out" <<'PY' && ok "PNG text chunks hold the title, axis labels and tick labels; patterns show <= 64 tokens" || fail "PNG text chunks"
import glob, struct, sys, zlib
def chunks(path):
    d = open(path, "rb").read()
    assert d[:8] == b"\x89PNG\r\n\x1a\n"
    i, out, w, h = 8, {}, 0, 0
    while i < len(d):
        n, t = struct.unpack(">I4s", d[i:i + 8]); body = d[i + 8:i + 8 + n]; i += 12 + n
        if t == b"IHDR": w, h = struct.unpack(">II", body[:8])
        if t == b"tEXt": k, v = body.split(b"\0", 1); out[k.decode()] = v.decode("latin-1")
        if t == b"iTXt":
            k, rest = body.split(b"\0", 1); rest = rest[2:]
            lang, rest = rest.split(b"\0", 1); tk, v = rest.split(b"\0", 1); out[k.decode()] = v.decode("utf-8")
    return out, w, h
bad = 0
for p in glob.glob(sys.argv[1] + "/heads_*.png"):
    c, w, h = chunks(p)
    if c.get("headroom:xlabel") != "head" or c.get("headroom:ylabel") != "layer" or not c.get("headroom:title") \
       or c.get("headroom:yticks", "").split("\n") != [str(i) for i in range(5)] or max(w, h) > 800:
        print("  bad heatmap", p, c, w, h); bad += 1
for p in glob.glob(sys.argv[1] + "/pattern_*.png"):
    c, w, h = chunks(p)
    toks = c.get("headroom:xticks", "").split("\n")
    if c.get("headroom:yticks") != c.get("headroom:xticks") or toks[0] != "<s>" or toks[1] != "·Once" \
       or not (1 < len(toks) <= 64) or int(c["headroom:rows"]) != len(toks) or max(w, h) > 800:
        print("  bad pattern", p, toks[:4], w, h); bad += 1
sys.exit(bad)
PY

for try in 1 2 3; do
  chrome --window-size=1400,900 --screenshot="$T/shot.png" "file://$T/out/report.html" > /dev/null 2>&1 && break
  echo "# screenshot try $try failed"
done
[ -s "$T/shot.png" ] || fail "screenshot failed"
read -r w h colours < <("$tools/hr_report_demo" --png-stats "$T/shot.png")
[ "${w:-0}" -eq 1400 ] && [ "${colours:-0}" -ge 100 ] && ok "screenshot ${w}x${h} has $colours colours" ||
  fail "screenshot ${w:-?}x${h:-?} looks blank (${colours:-0} colours)"
[ -n "${HR_KEEP_SCREENSHOT:-}" ] && cp "$T/shot.png" "$HR_KEEP_SCREENSHOT"
echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
