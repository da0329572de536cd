#!/usr/bin/env bash
# libheadroom installs like a library: `cmake --install` into a temporary
# prefix gives the public headers, libheadroom.a, libheadroom.so (SONAME
# from HR_VERSION, exporting exactly the HR_API functions the installed
# headers declare), the headroom CLI and headroom.pc. A program outside the
# tree (tests/install/consumer.c) is built through `pkg-config --cflags
# --libs headroom`, once against the shared and once (`--static`) against
# the static library, and must reproduce the in-tree build's logits (from
# tests/tools/hr_logits) bit for bit. The prefix is removed afterwards.
set -u

. "$(dirname "$0")/cli_prelude.sh"
: "${HR_BINARY_DIR:?}" "${HR_SOURCE_DIR:?}" "${HR_CMAKE:?}" "${HR_CC:?}"
P="$T/prefix"
TOKENS=1,403,407,261,1,17,300,511 # the tokens of consumer.c

if ! "$HR_CMAKE" --install "$HR_BINARY_DIR" --prefix "$P" >"$T/install.log" 2>&1; then
  fail "cmake --install: $(tail -3 "$T/install.log")"
  echo "$failures failures"; exit 1
fi
pc=$(find "$P" -name headroom.pc -path '*/pkgconfig/*' | head -1)
[ -n "$pc" ] || { fail "no headroom.pc installed"; echo "$failures failures"; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
export PKG_CONFIG_PATH="$(dirname "$pc")"

# ---------- what was installed ----------
version=$(sed -n 's/^#define HR_VERSION "\(.*\)"$/\1/p' "$HR_SOURCE_DIR/include/headroom/common.h")
major=${version%%.*}; minor=${version#*.}; minor=${minor%%.*}
soname=libheadroom.so.$major; [ "$major" = 0 ] && soname=libheadroom.so.$major.$minor
n_src=$(ls "$HR_SOURCE_DIR"/include/headroom/*.h | wc -l)
n_inst=$(ls "$P"/include/headroom/*.h 2>/dev/null | wc -l)
[ "$n_inst" -eq "$n_src" ] && ok "headers: $n_inst of $n_src" || fail "headers: $n_inst installed, $n_src in the tree"
[ -x "$P/bin/headroom" ] && "$P/bin/headroom" --help >/dev/null 2>&1 && ok "CLI installed and runs" ||
  fail "bin/headroom missing or failing"
[ -f "$libdir/libheadroom.a" ] && ok "libheadroom.a" || fail "libheadroom.a missing"
[ -f "$libdir/libheadroom.so.$version" ] && [ -L "$libdir/$soname" ] && [ -L "$libdir/libheadroom.so" ] &&
  ok "libheadroom.so.$version with links $soname and libheadroom.so" || fail "shared library files: $(ls "$libdir")"
got_soname=$(readelf -d "$libdir/libheadroom.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$got_soname" = "$soname" ] && ok "SONAME $got_soname" || fail "SONAME '$got_soname', want $soname"
mv=$(pkg-config --modversion headroom)
[ "$mv" = "$version" ] && ok "pkg-config version $mv" || fail "pkg-config --modversion '$mv', want $version"

# ---------- exports: exactly the HR_API functions of the installed headers ----------
cat "$P"/include/headroom/*.h | tr '\n' ' ' | grep -o 'HR_API[^;{]*(' | grep -o 'hr_[a-z0-9_]*[ ]*($' |
  tr -d ' (' | sort -u >"$T/declared"
nm -D --defined-only "$libdir/libheadroom.so" | awk '{ print $3 }' | sort -u >"$T/exported"
if cmp -s "$T/declared" "$T/exported"; then
  ok "exports: the $(wc -l <"$T/exported") HR_API functions and nothing else"
else
  fail "exports differ from the HR_API declarations (< declared only, > exported only):"
  diff "$T/declared" "$T/exported" | grep '^[<>]' | head -20
fi

# ---------- a program outside the tree, through pkg-config ----------
"$HR_TOOLS_DIR/hr_logits" "$M" --tokens "$TOKENS" --out "$T/ref.f32" --mode prefill --threads 1 ||
  fail "hr_logits (the in-tree reference) failed"
cflags=(-std=c11 -Wall -Wextra -Werror -pedantic)
# shellcheck disable=SC2086 # word splitting of flags is intended
build() { # name, pkg-config's link flags...
  local name=$1; shift
  $HR_CC "${cflags[@]}" $HR_SANITIZER_FLAGS $(pkg-config --cflags headroom) "$HR_SOURCE_DIR/tests/install/consumer.c" \
    -o "$T/$name" "$@" >"$T/$name.log" 2>&1 || { fail "$name: compile/link failed: $(head -5 "$T/$name.log")"; return 1; }
}
check_run() { # name, expect "shared" or "static"
  local name=$1 kind=$2 linked
  linked=$(LD_LIBRARY_PATH="$libdir" ldd "$T/$name" | grep -c 'libheadroom\.so')
  if [ "$kind" = shared ] && [ "$linked" -ne 1 ]; then fail "$name: not linked to libheadroom.so"; fi
  if [ "$kind" = static ] && [ "$linked" -ne 0 ]; then fail "$name: linked to libheadroom.so"; fi
  if LD_LIBRARY_PATH="$libdir" "$T/$name" "$M" "$T/ref.f32" >"$T/$name.out" 2>&1; then
    ok "$name ($kind): $(cat "$T/$name.out")"
  else
    fail "$name ($kind): $(cat "$T/$name.out")"
  fi
}
# shellcheck disable=SC2046
build consumer_shared $(pkg-config --libs headroom) && check_run consumer_shared shared
# --static adds the private dependencies; -l:libheadroom.a picks the archive
# although the shared library sits beside it.
static_libs=$(pkg-config --static --libs headroom)
# shellcheck disable=SC2086
build consumer_static ${static_libs/-lheadroom/-l:libheadroom.a} && check_run consumer_static static

rm -rf "$P"
[ ! -e "$P" ] || fail "prefix not removed"
echo "$failures failures"
[ "$failures" -eq 0 ]
