#!/usr/bin/env bash
# End-to-end tests of `headroom prune`, `gqa` and `eval` on stories260K:
# outputs load back with their per-layer shapes, eval of a model against
# itself gives KL 0 / top-1 1 / full FDTM, and bad input fails with one
# "headroom: error:" line and nothing written.
set -u

. "$(dirname "$0")/cli_prelude.sh"

expect_ok "heads lab for scores" heads "$M" -f "$T/text.txt" -o "$T/lab" --methods ablation,entropy --window 48 --tokens 96 --top 0
expect_ok "prune 25% of heads by ablation" prune "$M" --scores "$T/lab/heads.json" --by ablation --heads 25% -o "$T/p.gguf"
# 25% of 40 heads is 10: the planner combines even group shapes to remove exactly 10
n=$(/usr/bin/python3 -c "import json; d=json.load(open('$T/p.gguf.prune.json')); r=d['heads_removed']; print(int(r == 10 and d['heads_requested_count'] == 10 and 'heads_reason' not in d and r == sum(len(l['removed_heads']) for l in d['layers'])))" 2>/dev/null)
[ "$n" = "1" ] && ok "prune 25% removes exactly 10 heads and prune.json lists each" || fail "prune.json missing or wrong: $(head -c 800 "$T/p.gguf.prune.json")"
grep -q '^heads removed: 10 (asked 10)' "$T/out" && ! [ -s "$T/err" ] && ok "no warning when the amount is met" || fail "prune 25% output: $(cat "$T/out" "$T/err")"
expect_ok "pruned model loads" info "$T/p.gguf"
grep -qE '^ +[0-9]+ +6 +3 +172|^ +[0-9]+ +4 +2 +172' "$T/out" && ok "per-layer shapes kept" || fail "no pruned layer shape in info"
expect_ok "prune neurons, a block and an attention sublayer" prune "$M" --mlp 20% --drop-blocks 1 --drop-attn 1 \
  --budget cfsp -f "$T/text.txt" --tokens 256 -o "$T/s.gguf"
expect_ok "layer-dropped model loads" info "$T/s.gguf"
grep -q '^n_layers: *4' "$T/out" && ok "a block is gone" || fail "layer count not 4"
expect_ok "prune neurons by taylor" prune "$M" --mlp 10% --by taylor -f "$T/text.txt" --tokens 256 -o "$T/tn.gguf"
n=$(/usr/bin/python3 -c "import json; d=json.load(open('$T/tn.gguf.prune.json')); print(int(d['mlp_method'].startswith('taylor:') and d['neurons_removed'] == 86 == sum(len(l['removed_neuron_ids']) for l in d['layers']) and d['head_method'] == ''))" 2>/dev/null)
[ "$n" = 1 ] && ok "prune.json names the taylor neuron method and lists the 86 neurons" || fail "taylor prune.json: $(head -c 600 "$T/tn.gguf.prune.json")"
expect_ok "uniform prune with HF folder" prune "$M" --by random --heads 40% --uniform -o "$T/u.gguf" --hf "$T/u-hf"
[ -s "$T/u-hf/config.json" ] && ok "HF folder written" || fail "HF folder missing"
# 40% = 16 heads; with --uniform every layer loses the same number in even groups: 10, 20, 25, ... — 20 is the nearest
grep -q "^headroom: warning: --heads 40% asks for 16; removed 20: every one of the 5 layers loses the same number and keeps its GQA groups even, so the total can be 0, 10, 20, 25, 30 or 35" "$T/err" &&
  grep -q '^heads removed: 20 (asked 16)' "$T/out" && ok "uniform 40% removes 20 and says why" || fail "uniform 40%: $(cat "$T/err" "$T/out")"
n=$(/usr/bin/python3 -c "import json; d=json.load(open('$T/u.gguf.prune.json')); print(int(d['heads_requested_count'] == 16 and d['heads_removed'] == 20 and 'every one of the 5 layers' in d['heads_reason'] and d['uniform']))" 2>/dev/null)
[ "$n" = 1 ] && ok "prune.json records requested vs removed and the reason" || fail "uniform prune.json: $(head -c 600 "$T/u.gguf.prune.json")"
expect_ok "prune 2.5% of the heads" prune "$M" --by random --heads 2.5% -o "$T/p1.gguf"
grep -q "asks for 1; removed 2: GQA groups stay even (2 query heads per KV head), so a layer of 8 heads can lose only 0, 2, 4, 5, 6 or 7 of them" "$T/err" &&
  grep -q '^heads removed: 2 (asked 1)' "$T/out" && ok "2.5% rounds to 1 head; even groups remove 2, with a warning" || fail "2.5%: $(cat "$T/err" "$T/out")"
expect_ok "--uneven duplicate removes exactly 1" prune "$M" --by random --heads 2.5% --uneven duplicate -o "$T/p1d.gguf"
grep -q '^heads removed: 1 (asked 1)' "$T/out" && ok "duplicate mode meets 1 exactly" || fail "duplicate 2.5%: $(cat "$T/out")"
expect_ok "gqa asym to 2 KV heads" gqa "$M" --kv-heads 2 --grouping asym -f "$T/text.txt" --tokens 256 -o "$T/g.gguf"
# gqa of a bf16 model reads its typed K / V one matrix at a time (no f32
# copy of the model): the same groups and bytes as from its f32 copy
expect_ok "stories260K as bf16 GGUF" convert "$M" "$T/b.gguf" --to gguf --dtype bf16
expect_ok "its f32 copy" convert "$T/b.gguf" "$T/bf.gguf" --to gguf --dtype f32
expect_ok "gqa asym of the bf16 model" gqa "$T/b.gguf" --kv-heads 2 --grouping asym -f "$T/text.txt" --tokens 256 \
  -o "$T/gb.gguf"
cp "$T/out" "$T/gb.out"
expect_ok "gqa asym of its f32 copy, written bf16" gqa "$T/bf.gguf" --kv-heads 2 --grouping asym -f "$T/text.txt" \
  --tokens 256 --dtype bf16 -o "$T/gf.gguf"
diff <(grep "^layer" "$T/gb.out") <(grep "^layer" "$T/out") >/dev/null && grep -q "^layer 0: {" "$T/out" && cmp -s "$T/gb.gguf" "$T/gf.gguf" &&
  ok "typed gqa asym: groups and GGUF bytes equal the f32 path's" || fail "typed gqa asym differs from the f32 path"
expect_ok "eval model against itself" eval "$M" "$M" -f "$T/text.txt" --windows 2 --fdtm-prompts 2 --fdtm-gen 8 \
  --no-speed --json "$T/self.json"
python_ok=$(/usr/bin/python3 -c "import json,sys; d=json.load(open('$T/self.json')); print(int(d['kl']<1e-9 and d['top1_agreement']==1 and d['fdtm']==8))" 2>/dev/null)
[ "$python_ok" = 1 ] && ok "self-eval: KL 0, top-1 1, FDTM = continuation" || fail "self-eval metrics wrong: $(cat "$T/self.json")"
# eval names what it compared: paths and SHA-256 (checked against sha256sum), tokens and windows scored
sum() { sha256sum "$1" | cut -c1-64; }
expect_ok "eval names both models and the text" eval "$M" "$T/p.gguf" -f "$T/text.txt" --no-speed --fdtm-prompts 2 \
  --fdtm-gen 8 --json "$T/named.json"
grep -q "^base       $M (sha256 $(sum "$M" | cut -c1-12))" "$T/out" &&
  grep -q "^candidate  $T/p.gguf (sha256 $(sum "$T/p.gguf" | cut -c1-12))" "$T/out" &&
  grep -q "^text       $T/text.txt (sha256 $(sum "$T/text.txt" | cut -c1-12))" "$T/out" &&
  ok "the table names base, candidate and text with sha256 prefixes" || fail "eval header: $(head -4 "$T/out")"
n=$(/usr/bin/python3 -c "
import json; d=json.load(open('$T/named.json'))
ok = d['base']['sha256'] == '$(sum "$M")' and d['candidate']['sha256'] == '$(sum "$T/p.gguf")' and d['text']['sha256'] == '$(sum "$T/text.txt")'
ok = ok and d['base']['path'] == '$M' and d['text']['budget_tokens'] == 16384 and d['scored_tokens'] == d['text']['tokens'] - 1
print(int(ok and d['windows'] >= 2 and 'warning' not in d))" 2>/dev/null)
[ "$n" = 1 ] && ok "eval.json: paths, sha256 and every token of a short text scored by default" || fail "eval.json: $(head -c 700 "$T/named.json")"
expect_ok "eval --windows 2" eval "$M" "$T/p.gguf" -f "$T/text.txt" --windows 2 --no-speed --fdtm-prompts 2 --fdtm-gen 8
grep -q "^scored     [0-9]* of [0-9]* text tokens in 2 windows of 256 (--windows 2)" "$T/out" && ok "--windows N scores N windows" ||
  fail "eval --windows 2: $(sed -n 4p "$T/out")"
expect_ok "prune 35 of 40 heads" prune "$M" --by random --heads 35 -o "$T/p35.gguf"
expect_ok "eval a crippled candidate" eval "$M" "$T/p35.gguf" -f "$T/text.txt" --no-speed --fdtm-prompts 2 --fdtm-gen 8 --json "$T/e35.json"
grep -q "^headroom: warning: the candidate's perplexity (.*) is .*x the base's (.*): it needs recovery fine-tuning" "$T/err" &&
  grep -q '"warning":.*needs recovery fine-tuning' "$T/e35.json" && ok "perplexity over 10x the base's is flagged" ||
  fail "no recovery warning: $(cat "$T/err")"
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
expect_error "--strict when the amount cannot be met" "cannot remove exactly 16 heads: every one of the 5 layers" "$T/x10.gguf" \
  prune "$M" --by random --heads 40% --uniform --strict -o "$T/x10.gguf"
expect_error "a share that rounds to 0 heads" "heads to remove: 1% of 40 rounds to 0; the smallest share that removes one is 1.25%" \
  "$T/x11.gguf" prune "$M" --by random --heads 1% -o "$T/x11.gguf"
expect_error "an amount of 0" "heads to remove: 0 removes nothing" "$T/x12.gguf" prune "$M" --by random --heads 0 -o "$T/x12.gguf"
/usr/bin/python3 -c "import json; d=json.load(open('$T/lab/heads.json')); d['heads'] = d['heads'][:30]; json.dump(d, open('$T/part.json', 'w'))"
expect_error "scores for 30 of 40 heads" "30 of 40 heads present; missing 3.6, 3.7, 4.0" "$T/x13.gguf" \
  prune "$M" --scores "$T/part.json" --by ablation --heads 2 -o "$T/x13.gguf"
/usr/bin/python3 -c "import json; d=json.load(open('$T/lab/heads.json')); d['heads'][9]['scores']['ablation'] = None; json.dump(d, open('$T/null.json', 'w'))"
expect_error "a null score of the method" "head 1.1 has no score for 'ablation' (null)" "$T/x14.gguf" \
  prune "$M" --scores "$T/null.json" --by ablation --heads 2 -o "$T/x14.gguf"
expect_ok "the other method of that file still prunes" prune "$M" --scores "$T/null.json" --by entropy --invert --heads 2 -o "$T/x15.gguf"
expect_error "budget emptying layers" "empty a layer" "$T/x3.gguf" prune "$M" --by random --heads 38 -o "$T/x3.gguf"
expect_error "unknown method" "no scores for method 'nosuch' (it has: ablation, entropy)" "$T/x4.gguf" prune "$M" --scores "$T/lab/heads.json" --by nosuch --heads 2 -o "$T/x4.gguf"
expect_error "dropping every block" "cannot drop 5 blocks" "$T/x5.gguf" prune "$M" --drop-blocks 5 -f "$T/text.txt" -o "$T/x5.gguf"
expect_error "FinerCut without text" "FinerCut's output criterion (iterative sublayer drops) needs calibration text" \
  "$T/x17.gguf" prune "$M" --drop-sublayers 2 --iterative -o "$T/x17.gguf"
expect_error "--iterative without --drop-sublayers" "need a number of sublayers to drop" "$T/x18.gguf" \
  prune "$M" --drop-attn 1 --iterative -f "$T/text.txt" -o "$T/x18.gguf"
expect_error "every sublayer in the pool" "cannot drop 10 sublayers: 10 remain and at least one must stay" "$T/x19.gguf" \
  prune "$M" --drop-sublayers 10 -f "$T/text.txt" -o "$T/x19.gguf"
expect_error "--by taylor on neurons without text" "--mlp needs calibration text: --text FILE (--by taylor takes the gradients" \
  "$T/x20.gguf" prune "$M" --mlp 25% --by taylor -o "$T/x20.gguf"
expect_error "neurons without text" "--mlp needs calibration text: --text FILE (AMP importance" "$T/x21.gguf" \
  prune "$M" --mlp 25% -o "$T/x21.gguf"
expect_error "unknown budget" "unknown budget" "$T/x6.gguf" prune "$M" --by random --heads 2 --budget best -o "$T/x6.gguf"
expect_error "non-uniform HF" "uniform" "$T/x7.gguf" prune "$M" --by random --heads 2 --uneven duplicate -o "$T/x7.gguf" --hf "$T/x7-hf"
expect_error "gqa count not dividing" "cannot be merged" "$T/x8.gguf" gqa "$M" --kv-heads 3 -o "$T/x8.gguf"
expect_error "--retrieval-fraction without --kv-from" "--retrieval-fraction has no effect without --kv-from" "$T/x16.json" \
  eval "$M" "$M" -f "$T/text.txt" --retrieval-fraction 0.5 --json "$T/x16.json"
printf '{"context": "a", "choices": [" b", " c"], "gold": 0}\n{"context": "a", "choices": [" b"], "gold": 0}\n' > "$T/bad.jsonl"
expect_error "malformed task line" "line 2" "$T/x9.json" eval "$M" "$M" -f "$T/text.txt" --tasks "$T/bad.jsonl" --json "$T/x9.json"

echo "$failures failures"
[ "$failures" -eq 0 ]
