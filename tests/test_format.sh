#!/usr/bin/env bash
# Every C source and header of the tree follows .clang-format (Debian 12's
# clang-format 14): `clang-format --dry-run --Werror` over the files git
# tracks (or, outside a git checkout, every *.c / *.h under src, include,
# cli, tests, fuzz). A file that does not is named with the first lines
# clang-format would change; fix with `clang-format -i FILE`.
# clang-format missing fails in CI (CI=true) and skips locally (exit 77).
set -u
: "${HR_SOURCE_DIR:?}"
cf=$(command -v clang-format || command -v clang-format-14 || true)
if [ -z "$cf" ]; then
  case "${CI:-}" in
    "" | false | 0) echo "SKIP: clang-format is missing (scripts/setup.sh --tests)"; exit 77 ;;
    *) echo "FAIL: clang-format is missing (CI=$CI: required; scripts/setup.sh --tests)"; exit 1 ;;
  esac
fi
cd "$HR_SOURCE_DIR" || exit 1
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.c' '*.h')
else
  mapfile -t files < <(find src include cli tests fuzz -name '*.c' -o -name '*.h' | sort)
fi
[ "${#files[@]}" -gt 50 ] || { echo "FAIL: only ${#files[@]} C files found under $HR_SOURCE_DIR"; exit 1; }
bad=0
for f in "${files[@]}"; do
  if ! "$cf" --style=file --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "  FAIL: $f does not follow .clang-format:"
    "$cf" --style=file "$f" | diff "$f" - | head -6
    bad=$((bad + 1))
  fi
done
if [ "$bad" -ne 0 ]; then echo "$bad of ${#files[@]} files do not follow .clang-format"; exit 1; fi
echo "ok   all ${#files[@]} C files follow .clang-format ($("$cf" --version | head -1))"
