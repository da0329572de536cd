# Sourced by the browser tests after T, fail and ok exist: finds Debian's
# Chromium (HR_CHROMIUM overrides; missing = a failure, never a skip),
# chrome ARGS... runs it headless, offline and bounded (60 s at most, no
# network services, a fresh profile under $T), and screenshot_not_blank
# REPORT checks a 1280x2000 screenshot of REPORT through hr_report_demo.
: "${HR_TOOLS_DIR:?HR_TOOLS_DIR must point at the build directory with hr_report_demo}"
DEMO="$HR_TOOLS_DIR/hr_report_demo"
CHROME="${HR_CHROMIUM:-$(command -v chromium || echo /usr/bin/chromium)}"
if [ ! -x "$CHROME" ]; then
  echo "FAIL: chromium not found (looked for '$CHROME'); install it with scripts/setup.sh (apt-get install chromium)"
  exit 1
fi
[ -x "$DEMO" ] || { echo "FAIL: $DEMO not built"; exit 1; }

chrome() {
  timeout -k 5 60 "$CHROME" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --disable-dev-shm-usage \
    --disable-extensions --hide-scrollbars --user-data-dir="$(mktemp -d "$T/profile.XXXXXX")" "$@"
}

# Text, viridis and diverging heatmaps give hundreds of colours; a blank or
# unstyled page gives a handful.
screenshot_not_blank() {
  chrome --window-size=1280,2000 --screenshot="$T/shot.png" "file://$1" >/dev/null 2>"$T/chrome2.err"
  local rc=$? w h colours
  if [ "$rc" -ne 0 ] || [ ! -s "$T/shot.png" ]; then
    fail "chromium --screenshot exited $rc"; tail -5 "$T/chrome2.err"; return
  fi
  read -r w h colours < <("$DEMO" --png-stats "$T/shot.png")
  [ "${w:-0}" -eq 1280 ] && [ "${h:-0}" -eq 2000 ] && ok "screenshot ${w}x${h}" || fail "screenshot is ${w:-?}x${h:-?}"
  [ "${colours:-0}" -ge 100 ] && ok "screenshot has $colours distinct colours" || fail "screenshot looks blank ($colours colours)"
}
