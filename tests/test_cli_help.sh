#!/usr/bin/env bash
# What the help says: `headroom` alone and --help list every command of the
# command table in cli/main.c, the formats and every architecture row of
# src/model/arch.c; --version / -V print HR_VERSION; every one-letter option
# means one long option across all commands, the one cli/common.h's table
# gives it; README's command table is one table (no blank line inside) with
# a row per command.
set -u
: "${HR_CLI:?HR_CLI must point at the headroom binary}"
: "${HR_SOURCE_DIR:?HR_SOURCE_DIR must point at the source tree}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
failures=0
fail() { echo "  FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok   $*"; }

# the command table: {"name", "summary", cmd_name},
mapfile -t commands < <(sed -n 's/^ *{"\([a-z]*\)", ".*", cmd_[a-z]*},$/\1/p' "$HR_SOURCE_DIR/cli/main.c")
[ "${#commands[@]}" -ge 9 ] && ok "cli/main.c's table has ${#commands[@]} commands: ${commands[*]}" ||
  fail "read ${#commands[@]} commands from cli/main.c"
mapfile -t archs < <(sed -n 's/^ *\.name = "\([a-z0-9_]*\)",.*/\1/p' "$HR_SOURCE_DIR/src/model/arch.c")

"$HR_CLI" >"$T/none.out" 2>"$T/none.err"
rc=$?
[ "$rc" -eq 1 ] && [ "$(wc -l <"$T/none.err")" -eq 1 ] && ok "no arguments: exit 1 and one error line" ||
  fail "no arguments: exit $rc, stderr $(cat "$T/none.err")"
"$HR_CLI" --help >"$T/help.out" 2>&1 || fail "--help exited non-zero"
for c in "${commands[@]}"; do
  grep -qE "^  $c +[a-z]" "$T/none.out" || fail "'headroom' alone does not list $c"
  grep -qE "^  $c +[a-z]" "$T/help.out" || fail "--help does not list $c"
  grep -q "[ ,]$c[,)]" "$T/none.err" || fail "the no-command error does not name $c: $(cat "$T/none.err")"
done
ok "usage lists every command (with and without --help)"
for a in "${archs[@]}"; do grep -qw "$a" "$T/help.out" || fail "--help does not name the architecture $a"; done
[ "${#archs[@]}" -ge 3 ] && ok "--help names the architectures ${archs[*]}" || fail "read ${#archs[@]} architectures"
for f in "llama2.c" "int8" "GGUF" "Hugging Face"; do grep -q "$f" "$T/help.out" || fail "--help does not name $f"; done
ok "--help names the formats"
"$HR_CLI" frobnicate >/dev/null 2>"$T/err"
grep -q "unknown command 'frobnicate' (expected one of: ${commands[0]}," "$T/err" && ok "an unknown command lists the commands" ||
  fail "unknown command: $(cat "$T/err")"

# --version / -V print HR_VERSION
version=$(sed -n 's/^#define HR_VERSION "\(.*\)"$/\1/p' "$HR_SOURCE_DIR/include/headroom/common.h")
for flag in --version -V; do
  out=$("$HR_CLI" $flag 2>&1)
  [ $? -eq 0 ] && [ "$(head -1 <<<"$out")" = "headroom $version" ] && grep -qE "^kernels: (avx512|avx2|scalar)$" <<<"$out" &&
    ok "$flag prints 'headroom $version' and the kernel path" || fail "$flag printed '$out'"
done
# HEADROOM_CPU forces the plain-C path; an unknown path is one clear error
out=$(HEADROOM_CPU=scalar "$HR_CLI" --version 2>&1)
[ $? -eq 0 ] && grep -q "^kernels: scalar$" <<<"$out" && ok "HEADROOM_CPU=scalar is the path --version names" ||
  fail "HEADROOM_CPU=scalar: '$out'"
out=$(HEADROOM_CPU=sse9 "$HR_CLI" info 2>&1)
rc=$?
[ $rc -ne 0 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && grep -q "^headroom: error: HEADROOM_CPU=sse9 is not a kernel path" <<<"$out" &&
  ok "HEADROOM_CPU=sse9 is refused with one error line" || fail "HEADROOM_CPU=sse9: rc $rc, '$out'"

# One-letter options: cli/common.h's table, X('f', "text"), ...
declare -A table
while read -r letter name; do table[$letter]=$name; done < <(sed -n "s/^ *X('\(.\)', \"\([a-z-]*\)\").*/\1 \2/p" "$HR_SOURCE_DIR/cli/common.h")
[ "${#table[@]}" -ge 10 ] && ok "cli/common.h's short-option table has ${#table[@]} letters" || fail "read ${#table[@]} letters"
declare -A seen_letter
for c in "${commands[@]}"; do
  if ! "$HR_CLI" "$c" --help >"$T/$c.help" 2>"$T/$c.err"; then fail "$c --help: $(head -2 "$T/$c.err")"; continue; fi
  grep -q "^usage: headroom $c " "$T/$c.help" || fail "$c --help has no usage line"
  # every option line: "  -x, --name ARG  help" or "      --name ARG  help"
  while IFS=: read -r letter name; do
    if [ -n "$letter" ]; then
      [ "${table[$letter]:-}" = "$name" ] || fail "$c: -$letter is --$name, the table says --${table[$letter]:-nothing}"
      seen_letter[$letter]="${seen_letter[$letter]:-} $c"
    fi
    for l in "${!table[@]}"; do
      [ "${table[$l]}" = "$name" ] && [ "$letter" != "$l" ] && fail "$c: --$name has no -$l (the table gives it one)"
    done
  done < <(awk '/^options:$/ {on = 1; next} /^example:$/ {on = 0} on' "$T/$c.help" |
           sed -n 's/^  \(-\(.\), \|    \)--\([a-z-]*\).*/\2:\3/p')
  grep -qE '^  -q, --quiet ' "$T/$c.help" && grep -qE '^  -h, --help ' "$T/$c.help" || fail "$c: no -q / -h"
done
for l in "${!seen_letter[@]}"; do ok "-$l means --${table[$l]} in:${seen_letter[$l]}"; done
# a letter used in some command's table must mean its long option: the parser says so too
"$HR_CLI" ppl -s 3 >/dev/null 2>"$T/err"
grep -q "unknown option '-s' for 'headroom ppl'" "$T/err" && ok "ppl has no -s (it is --seed elsewhere)" || fail "ppl -s: $(cat "$T/err")"

# README: the command table is one table, a row per command
readme="$HR_SOURCE_DIR/README.md"
awk '/^\| command \| what it does \|$/ {on = 1; next} on && /^$/ {exit} on {print}' "$readme" >"$T/table"
rows=$(grep -c '^| `headroom ' "$T/table")
section_rows=$(awk '/^## Commands/ {on = 1; next} /^## / {on = 0} on' "$readme" | grep -c '^| `headroom ')
[ "$rows" -gt 0 ] && [ "$rows" -eq "$section_rows" ] &&
  ok "README's command table holds all $rows command rows without a blank line" ||
  fail "README's command table: $rows rows before the first blank line, $section_rows in the section"
for c in "${commands[@]}"; do grep -q "^| \`headroom $c " "$T/table" || fail "README's command table has no row for $c"; done
grep -E '^    headroom |^headroom [a-z]' "$readme" && fail "README examples call 'headroom' (use build/headroom)" ||
  ok "README examples call build/headroom"

if [ "$failures" -ne 0 ]; then echo "$failures failures"; exit 1; fi
echo "all help tests passed"
