#!/usr/bin/env bash
# Progress on stderr for the long commands (heads, ppl, eval): every line
# names the command, the phase and its step, items done / total, and a rate
# with an ETA (or "done in"); on a terminal one line is redrawn in place;
# elsewhere a line at most every HEADROOM_PROGRESS_INTERVAL seconds (0 here,
# so every update shows; an hour prints none for a short run);
# --quiet silences progress and the head lab's cost estimate.
set -u
. "$(dirname "$0")/cli_prelude.sh"

# "heads [3/6] layer metrics: 4/10 layers x windows (40%), 12.5/s, ETA 480 ms"
LINE='^(heads|ppl|eval) \[[0-9]+/[0-9]+\] [A-Za-z0-9 /-]+: [0-9]+/[0-9]+ [a-z x/-]+ \([0-9]+%\), '
LINE+='(ETA \?|[0-9.e+]+/s, ETA [0-9hms .]+|[0-9.e+]+ s each, ETA [0-9hms .]+|done in [0-9hms .]+)$'
FAST_HEADS=(-f "$T/text.txt" --window 48 --tokens 96 --top 1)

# run LABEL INTERVAL ARGS...: stderr (not a terminal) into $T/err
run() {
  local label=$1 interval=$2; shift 2
  HEADROOM_PROGRESS_INTERVAL=$interval "$HR_CLI" "$@" >"$T/out" 2>"$T/err"
  rc=$?
  [ "$rc" -eq 0 ] || { fail "$label: exit $rc: $(tail -3 "$T/err")"; return 1; }
}

# progress_ok LABEL COMMAND PHASE...: every progress line matches LINE, the
# phases named appear, and each phase ends with a "done in" line.
progress_ok() {
  local label=$1 cmd=$2; shift 2
  grep "^$cmd \[" "$T/err" >"$T/lines"
  local n bad; n=$(wc -l <"$T/lines"); bad=$(grep -cvE "$LINE" "$T/lines")
  [ "$n" -ge 3 ] || { fail "$label: $n progress lines"; cat "$T/err"; return 1; }
  [ "$bad" -eq 0 ] || { fail "$label: $bad lines do not match the format:"; grep -vE "$LINE" "$T/lines" | head -3; return 1; }
  local phase
  for phase in "$@"; do
    grep -q "] $phase: " "$T/lines" || { fail "$label: no '$phase' phase"; return 1; }
    grep -qE "] $phase: ([0-9]+)/\1 .*done in " "$T/lines" || { fail "$label: '$phase' has no end line"; return 1; }
  done
  grep -qE ', [0-9.e+]+(/s| s each), ETA ' "$T/lines" || { fail "$label: no rate and ETA"; return 1; }
  ok "$label: $n progress lines with phase, done/total, rate and ETA ($(cut -c1-70 "$T/lines" | sed -n 3p)...)"
}

if run "ppl" 0 ppl "$M" -f "$T/text.txt" --ctx 64; then progress_ok "ppl" ppl perplexity; fi
if run "heads" 0 heads "$M" "${FAST_HEADS[@]}" -o "$T/h1"; then
  progress_ok "heads" heads "attention statistics" "repeated sequences" "layer metrics"
  # steps count 1..n of n
  last=$(grep -oE '^heads \[[0-9]+/[0-9]+\]' "$T/lines" | tail -1 | tr -d '[]' | cut -d' ' -f2)
  [ "${last%/*}" = "${last#*/}" ] && ok "heads: the last phase is step $last" || fail "heads: last step $last"
  # the cost estimate comes first and names what the default leaves out
  head -1 "$T/err" | grep -q '^heads: cost estimate: 2 windows of 48 tokens' &&
    grep -qE '^  total +~[0-9.]+ +~' "$T/err" &&
    grep -qE '^not run by default: ablation, ablation_kl \(~[0-9.]+ forward passes, ~[^)]+\), ablation_greedy \(~' "$T/err" &&
    ok "heads prints its cost estimate before it starts: $(grep '^  total' "$T/err" | tr -s ' ')" ||
    { fail "heads: no cost estimate"; head -12 "$T/err"; }
fi
if run "eval" 0 eval "$M" "$M" -f "$T/text.txt" --ctx 64 --windows 3 --fdtm-prompts 2; then
  progress_ok "eval" eval "hashing inputs" "KL and top-1" "FDTM" "speed"
fi

# --quiet: no progress, no estimate; the results are still printed
if run "ppl -q" 0 ppl "$M" -f "$T/text.txt" --ctx 64 -q; then
  [ ! -s "$T/err" ] && grep -q '^perplexity:' "$T/out" && ok "ppl -q: stderr is empty" || fail "ppl -q: $(head -3 "$T/err")"
fi
if run "heads --quiet" 0 heads "$M" "${FAST_HEADS[@]}" -o "$T/h2" --quiet; then
  [ ! -s "$T/err" ] && [ -s "$T/h2/heads.json" ] && ok "heads --quiet: stderr is empty" || fail "heads --quiet: $(head -3 "$T/err")"
fi
if run "eval -q" 0 eval "$M" "$M" -f "$T/text.txt" --ctx 64 --windows 2 --fdtm-prompts 2 -q; then
  [ ! -s "$T/err" ] && ok "eval -q: stderr is empty" || fail "eval -q: $(head -3 "$T/err")"
fi

# not per item: a run shorter than the interval prints no progress line (an
# hour here, so that no machine is slow enough to see one)
if run "ppl, interval 3600" 3600 ppl "$M" -f "$T/text.txt" --ctx 64; then
  ! grep -q '^ppl \[' "$T/err" && ok "a run shorter than the interval prints no progress line" ||
    fail "interval 3600: $(grep -c '^ppl \[' "$T/err") lines"
fi

# a terminal (script gives the command a pseudo-terminal): one line redrawn
# with carriage returns, left behind with "done in" when its phase ends
if command -v script >/dev/null; then
  script -qec "'$HR_CLI' ppl '$M' -f '$T/text.txt' --ctx 64" "$T/tty.log" >/dev/null 2>&1
  if grep -q $'\r\033\\[Kppl \\[1/1\\] perplexity: ' "$T/tty.log" && grep -q 'perplexity: [0-9]*/[0-9]* windows (100%), done in' "$T/tty.log"; then
    ok "on a terminal the line is redrawn in place and ends with the phase's duration"
  else
    fail "terminal: no redrawn line"; tr '\r' '\n' <"$T/tty.log" | head -5
  fi
else
  fail "script (util-linux) is missing"
fi

if [ "$failures" -ne 0 ]; then echo "$failures failures"; exit 1; fi
echo "all progress tests passed"
