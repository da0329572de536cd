#!/usr/bin/env bash
# The include rule of docs/ARCHITECTURE.md, read from the #include lines:
# a file of layer N includes only headers of layers <= N (its own folder's
# internal headers and public headers alike); cli/, python and tests use
# only public headers (include/headroom/*.h) — tests and tools may also
# reach internal headers, the CLI never. Every public header belongs to a
# layer listed here, so a new header must be placed deliberately.
set -u
: "${HR_SOURCE_DIR:?HR_SOURCE_DIR must point at the source tree}"
cd "$HR_SOURCE_DIR" || exit 1

layers="core formats tokenizer model io engine study report"
rank() { # layer name -> its position (1-based), 0 when unknown
  local i=1
  for l in $layers; do [ "$l" = "$1" ] && { echo $i; return; }; i=$((i + 1)); done
  echo 0
}
# public header -> layer
pub_layer() {
  case "$1" in
    headroom.h) echo report ;; # the umbrella header includes everything
    common.h) echo core ;;
    gguf.h|safetensors.h) echo formats ;;
    tokenizer.h) echo tokenizer ;;
    model.h) echo model ;;
    save.h) echo io ;;
    context.h|kvcache.h|sample.h|grad.h) echo engine ;;
    heads.h|prune.h|gqa.h|evaluate.h|scores.h|study.h|train.h|circuits.h|quantize.h) echo study ;;
    report.h) echo report ;;
    *) echo "" ;;
  esac
}

failures=0
checked=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

for h in include/headroom/*.h; do
  [ -n "$(pub_layer "$(basename "$h")")" ] || fail "public header $h belongs to no layer (add it to tests/test_layers.sh and docs/ARCHITECTURE.md)"
done

while IFS= read -r f; do
  me=${f#src/}; me=${me%%/*}
  rm_=$(rank "$me")
  [ "$rm_" -gt 0 ] || { fail "$f: folder src/$me is not a layer"; continue; }
  while IFS=: read -r line inc; do
    checked=$((checked + 1))
    case "$inc" in
      headroom/*) t=$(pub_layer "${inc#headroom/}") ;;
      */*) t=${inc%%/*} ;;
      *) fail "$f:$line: include \"$inc\" must name its folder (\"layer/file.h\")"; continue ;;
    esac
    rt=$(rank "$t")
    if [ "$rt" -eq 0 ]; then fail "$f:$line: \"$inc\" is in no layer"
    elif [ "$rt" -gt "$rm_" ]; then fail "$f:$line: $me (layer $rm_) includes \"$inc\" of the higher layer $t ($rt)"; fi
  done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | sed -E 's/^([0-9]+):.*"([^"]+)".*/\1:\2/')
done < <(find src -name '*.[ch]' | sort)

# The CLI is a library user: public headers and its own files only.
while IFS=: read -r f line inc; do
  checked=$((checked + 1))
  case "$inc" in
    headroom/*) ;;
    */*) fail "$f:$line: the CLI includes the internal header \"$inc\"" ;;
    *) [ -f "cli/$inc" ] || fail "$f:$line: \"$inc\" is not a CLI file" ;;
  esac
done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' cli/*.[ch] | sed -E 's/^([^:]+):([0-9]+):.*"([^"]+)".*/\1:\2:\3/')

# Public headers include only public headers.
while IFS=: read -r f line inc; do
  checked=$((checked + 1))
  case "$inc" in headroom/*) ;; *) fail "$f:$line: public header includes \"$inc\"" ;; esac
done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' include/headroom/*.h | sed -E 's/^([^:]+):([0-9]+):.*"([^"]+)".*/\1:\2:\3/')

echo "$checked include lines checked, $failures violations"
[ "$checked" -gt 100 ] || fail "too few include lines found ($checked): is HR_SOURCE_DIR right?"
[ "$failures" -eq 0 ]
