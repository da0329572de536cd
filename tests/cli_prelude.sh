# Shared start of the CLI test scripts (sourced, not a test itself):
# checks the environment ctest passes, names the default model and text,
# skips when they are missing, makes a scratch folder $T (removed on exit,
# also when a test made parts of it read-only), and defines ok / fail with
# a failure count. $T/text.txt holds the first 6000 bytes of the text.
: "${HR_CLI:?HR_CLI must point at the headroom binary}"
: "${HR_SHARED_DIR:?HR_SHARED_DIR must point at the shared data folder}"
M="$HR_SHARED_DIR/models/stories260K/stories260K.bin"
TEXT="$HR_SHARED_DIR/data/text/tinystories_val.txt"
for f in "$M" "$TEXT"; do [ -r "$f" ] || { echo "SKIP: $f missing"; exit 0; }; done

unset HEADROOM_MODEL HEADROOM_VERBOSE
T=$(mktemp -d)
trap 'chmod -R u+w "$T"; rm -rf "$T"' EXIT
failures=0
fail() { echo "  FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok   $*"; }
head -c 6000 "$TEXT" > "$T/text.txt"
