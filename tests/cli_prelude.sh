# Shared start of the script tests (sourced, not a test itself):
#
#   . "$(dirname "$0")/cli_prelude.sh" [FILE...]
#
# checks the environment ctest passes; names the default model $M and text
# $TEXT; requires them and every FILE given (require_shared); makes a
# scratch folder $T (removed on exit, also when a test made parts of it
# read-only); defines ok / fail with a failure count, and run / no_crash /
# expect_ok / expect_error for running the CLI. $T/text.txt holds the
# first 6000 bytes of the text.
: "${HR_CLI:?HR_CLI must point at the headroom binary}"
: "${HR_SHARED_DIR:?HR_SHARED_DIR must point at the shared data folder}"

# require_shared FILE...: shared data the test needs. A missing file fails
# the test in CI (CI=true) and skips it locally with exit 77 (ctest's
# SKIP_RETURN_CODE) — never a silent pass.
require_shared() {
  local f
  for f in "$@"; do
    [ -r "$f" ] && continue
    case "${CI:-}" in
      "" | false | 0) echo "SKIP: shared data $f is missing"; exit 77 ;;
      *) echo "FAIL: shared data $f is missing (CI=$CI: required)"; exit 1 ;;
    esac
  done
}

M="$HR_SHARED_DIR/models/stories260K/stories260K.bin"
TEXT="$HR_SHARED_DIR/data/text/tinystories_val.txt"
require_shared "$M" "$TEXT" "$@"

unset HEADROOM_MODEL HEADROOM_VERBOSE
T=$(mktemp -d)
trap 'chmod -R u+w "$T"; rm -rf "$T"' EXIT
failures=0
fail() { echo "  FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok   $*"; }
head -c 6000 "$TEXT" > "$T/text.txt"

# Running the CLI: run ARGS... (stdout in $T/out, stderr in $T/err, exit in
# $rc); no_crash LABEL; expect_ok LABEL ARGS...; expect_error LABEL PATTERN
# OUTPUT ARGS... (exit 1, one "headroom: error:" line matching PATTERN, and
# OUTPUT not created). Scripts may define their own variants after sourcing.
run() { "$HR_CLI" "$@" >"$T/out" 2>"$T/err"; rc=$?; }
no_crash() {
  if [ "$rc" -ge 128 ] || grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$T/err"; then
    fail "$1: crash or sanitizer report (exit $rc)"; head -20 "$T/err"; return 1
  fi
}
expect_ok() { local label=$1; shift; run "$@"; no_crash "$label" || return 1
  [ "$rc" -eq 0 ] && ok "$label" || { fail "$label (exit $rc)"; cat "$T/err"; return 1; }; }
# expect_error LABEL PATTERN OUTPUT ARGS...: exit 1, one "headroom: error:"
# line matching PATTERN, and OUTPUT not written.
expect_error() {
  local label=$1 pat=$2 out=$3; shift 3
  run "$@"; no_crash "$label" || return 1
  if [ "$rc" -ne 1 ] || [ "$(wc -l <"$T/err")" -ne 1 ] || ! grep -q "^headroom: error: .*$pat" "$T/err" || [ -e "$out" ]; then
    fail "$label (exit $rc, want one error line with '$pat')"; cat "$T/err"; return 1
  fi
  ok "$label -> $(cut -c1-110 "$T/err")"
}
