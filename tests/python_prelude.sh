# Sourced by the tests/test_*_reference.sh wrappers (not a test itself):
# need_python "torch numpy" fails the test (exit 1, one line naming the
# Debian packages) unless /usr/bin/python3 imports every module named; a
# missing module is a failure, not a skip. $python is that interpreter.
python=/usr/bin/python3
need_python() {
  local m
  for m in $1; do
    if ! "$python" -c "import $m" 2>/dev/null; then
      echo "$(basename "$0" .sh): $python cannot import $m (apt install python3-$m)" >&2
      exit 1
    fi
  done
}
