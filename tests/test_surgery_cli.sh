#!/usr/bin/env bash
# End-to-end tests of `headroom prune`, `gqa` and `eval` on stories260K:
# outputs load back with their per-layer shapes, eval of a model against
# itself gives KL 0 / top-1 1 / full FDTM, and bad input fails with one
# "headroom: error:" line and nothing written.
set -u

. "$(dirname "$0")/cli_prelude.sh"

run() { "$HR_CLI" "$@" >"$T/out" 2>"$T/err"; rc=$?; }
no_crash() {
  if [ "$rc" -ge 128 ] || grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$T/err"; then
    fail "$1: crash or sanitizer report (exit $rc)"; head -20 "$T/err"; return 1
  fi
}
expect_ok() { local label=$1; shift; run "$@"; no_crash "$label" || return 1
  [ "$rc" -eq 0 ] && ok "$label" || { fail "$label (exit $rc)"; cat "$T/err"; }; }
expect_error() { # label, pattern, output that must not exist, args...
  local label=$1 pat=$2 out=$3; shift 3
  run "$@"; no_crash "$label" || return 1
  if [ "$rc" -ne 1 ] || ! grep -q "^headroom: error: .*$pat" "$T/err" || [ -e "$out" ]; then
    fail "$label (exit $rc)"; cat "$T/err"; return 1
  fi
  ok "$label"
}

expect_ok "heads lab for scores" heads "$M" -f "$T/text.txt" -o "$T/lab" --methods ablation,entropy --window 48 --tokens 96 --top 0
expect_ok "prune 25% of heads by ablation" prune "$M" --scores "$T/lab/heads.json" --by ablation --heads 25% -o "$T/p.gguf"
n=$(/usr/bin/python3 -c "import json; d=json.load(open('$T/p.gguf.prune.json')); r=d['heads_removed']; print(int(r == sum(len(l['removed_heads']) for l in d['layers']) and 6 <= r <= 10))" 2>/dev/null)
# 25% of 40 heads is 10; keeping GQA groups even may round a layer's share
[ "$n" = "1" ] && ok "prune.json lists every removed head" || fail "prune.json missing or wrong"
expect_ok "pruned model loads" info "$T/p.gguf"
grep -qE '^ +[0-9]+ +6 +3 +172|^ +[0-9]+ +4 +2 +172' "$T/out" && ok "per-layer shapes kept" || fail "no pruned layer shape in info"
expect_ok "prune neurons, a block and an attention sublayer" prune "$M" --mlp 20% --drop-blocks 1 --drop-attn 1 \
  --budget cfsp -f "$T/text.txt" --tokens 256 -o "$T/s.gguf"
expect_ok "layer-dropped model loads" info "$T/s.gguf"
grep -q '^n_layers: *4' "$T/out" && ok "a block is gone" || fail "layer count not 4"
expect_ok "uniform prune with HF folder" prune "$M" --by random --heads 40% --uniform -o "$T/u.gguf" --hf "$T/u-hf"
[ -s "$T/u-hf/config.json" ] && ok "HF folder written" || fail "HF folder missing"
expect_ok "gqa asym to 2 KV heads" gqa "$M" --kv-heads 2 --grouping asym -f "$T/text.txt" --tokens 256 -o "$T/g.gguf"
expect_ok "eval model against itself" eval "$M" "$M" -f "$T/text.txt" --windows 2 --fdtm-prompts 2 --fdtm-gen 8 \
  --no-speed --json "$T/self.json"
python_ok=$(/usr/bin/python3 -c "import json,sys; d=json.load(open('$T/self.json')); print(int(d['kl']<1e-9 and d['top1_agreement']==1 and d['fdtm']==8))" 2>/dev/null)
[ "$python_ok" = 1 ] && ok "self-eval: KL 0, top-1 1, FDTM = continuation" || fail "self-eval metrics wrong: $(cat "$T/self.json")"
printf '{"context": "Once upon a time", "choices": [" there", " qz"], "gold": 0}\n' > "$T/tasks.jsonl"
expect_ok "eval pruned with passkey and tasks" eval "$M" "$T/p.gguf" -f "$T/text.txt" --windows 2 --passkey \
  --passkey-trials 2 --tasks "$T/tasks.jsonl" --json "$T/e.json"
grep -q 'KV bytes / token' "$T/out" && [ -s "$T/e.json" ] && ok "eval table and JSON" || fail "eval output incomplete"

# bad input: clear error, nothing written
/usr/bin/python3 - "$T/lab/heads.json" "$T/bad_heads.json" <<'PY' 2>/dev/null || cp "$T/lab/heads.json" "$T/bad_heads.json"
import json, sys
d = json.load(open(sys.argv[1])); d["model"]["n_heads"][0] = 4; json.dump(d, open(sys.argv[2], "w"))
PY
expect_error "scores of another shape" "different shape" "$T/x1.gguf" prune "$M" --scores "$T/bad_heads.json" --by ablation --heads 2 -o "$T/x1.gguf"
expect_error "budget over 100%" "below 100%" "$T/x2.gguf" prune "$M" --by random --heads 120% -o "$T/x2.gguf"
expect_error "budget emptying layers" "empty a layer" "$T/x3.gguf" prune "$M" --by random --heads 38 -o "$T/x3.gguf"
expect_error "unknown method" "no scores for method" "$T/x4.gguf" prune "$M" --scores "$T/lab/heads.json" --by nosuch --heads 2 -o "$T/x4.gguf"
expect_error "dropping every block" "cannot drop 5 blocks" "$T/x5.gguf" prune "$M" --drop-blocks 5 -f "$T/text.txt" -o "$T/x5.gguf"
expect_error "unknown budget" "unknown budget" "$T/x6.gguf" prune "$M" --by random --heads 2 --budget best -o "$T/x6.gguf"
expect_error "non-uniform HF" "uniform" "$T/x7.gguf" prune "$M" --by random --heads 2 --uneven duplicate -o "$T/x7.gguf" --hf "$T/x7-hf"
expect_error "gqa count not dividing" "cannot be merged" "$T/x8.gguf" gqa "$M" --kv-heads 3 -o "$T/x8.gguf"
printf '{"context": "a", "choices": [" b", " c"], "gold": 0}\n{"context": "a", "choices": [" b"], "gold": 0}\n' > "$T/bad.jsonl"
expect_error "malformed task line" "line 2" "$T/x9.json" eval "$M" "$M" -f "$T/text.txt" --tasks "$T/bad.jsonl" --json "$T/x9.json"

echo "$failures failures"
[ "$failures" -eq 0 ]
