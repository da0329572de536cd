#!/usr/bin/python3
"""`headroom prune --mlp P% --by taylor` against float64 PyTorch autograd.

For each model (a random llama2.c GQA model from hr_make_random, and
stories260K) the script runs `headroom prune MODEL --mlp 25% --by taylor
--text TEXT --tokens N` and rebuilds what the removed neurons must be,
independently of headroom's C code:

  - the model is read from its llama2.c file (llama_ref.load_llama2c) in
    float64 and run by grad_ref.Model (the architecture written from its
    definition);
  - the calibration tokens are BOS + the text's ids (`headroom tokenize
    --bos`; the tokenizer has its own tests), the first N of them, cut into
    consecutive whole windows of min(seq_len, 256) tokens (a partial last
    window is left out, as prune.h documents);
  - loss = mean over the windows of the mean next-token cross-entropy;
    autograd gives dL/dW of W_gate (w1), W_up (w3), W_down (w2);
  - neuron j of layer l scores |sum over row j of w1 and w3 and column j of
    w2 of w * dL/dw| (LLM-Pruner's vector-wise first-order Taylor score);
  - the round(25 % of all neurons) lowest-scored neurons of the whole model
    go (global budget).

The removed sets (prune.json, removed_neuron_ids per layer) must be equal.
headroom computes in float32, so a neuron whose reference score lies within
TOL (relative to the largest score) of the cut may change sides; any other
difference fails. The largest |reference score - cut| of a disagreement and
the margin of the cut are printed.

Env: HR_CLI, HR_TOOLS_DIR (hr_make_random), HR_SHARED_DIR.
"""

import json
import os
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refcheck  # noqa: E402
import grad_ref  # noqa: E402
import llama_ref  # noqa: E402

TOL = 1e-4
SHARE = 0.25


run = refcheck.run


def reference_scores(model_path, ids):
    c, w = llama_ref.load_llama2c(model_path, dtype=torch.float64)
    L = c.n_layers
    T = {"token_embd.weight": w["tok_emb"], "output_norm.weight": w["rms_final"]}
    if not c.tied:
        T["output.weight"] = w["wcls"]
    names = {"attn_norm.weight": "rms_att", "attn_q.weight": "wq", "attn_k.weight": "wk", "attn_v.weight": "wv",
             "attn_output.weight": "wo", "ffn_norm.weight": "rms_ffn", "ffn_gate.weight": "w1",
             "ffn_up.weight": "w3", "ffn_down.weight": "w2"}
    for l in range(L):
        for gg, ll in names.items():
            T["blk.%d.%s" % (l, gg)] = w[ll][l].clone().requires_grad_(True)
    cfg = {"head_dim": c.head_dim, "rope_theta": c.rope_theta, "rope_scaling": None, "pos": "rope", "norm": "rms",
           "norm_eps": c.norm_eps, "n_layers": L, "n_head": [c.n_heads] * L, "n_head_kv": [c.n_kv_heads] * L,
           "n_ff": [c.hidden] * L, "mlp": "swiglu", "tied": c.tied}
    model = grad_ref.Model(cfg, T, gates=False, lora=False)
    W = min(c.seq_len, 256)
    n_win = len(ids) // W
    assert n_win >= 1, "fewer calibration tokens than one window"
    loss = sum(model.loss(ids[k * W:(k + 1) * W]) for k in range(n_win)) / n_win
    leaves = [T["blk.%d.%s" % (l, n)] for l in range(L) for n in ("ffn_gate.weight", "ffn_up.weight",
                                                                   "ffn_down.weight")]
    grads = torch.autograd.grad(loss, leaves)
    scores = np.zeros((L, c.hidden))
    for l in range(L):
        (wg, gg), (wu, gu), (wd, gd) = [(leaves[3 * l + i], grads[3 * l + i]) for i in range(3)]
        s = (wg * gg).sum(1) + (wu * gu).sum(1) + (wd * gd).sum(0)
        scores[l] = np.abs(s.detach().numpy())
    return scores, n_win, W


def check(label, model, n_tokens, tok, text, tmp, cli):
    out = os.path.join(tmp, label + ".gguf")
    run([cli, "prune", model, "--tokenizer", tok, "-f", text, "--tokens", str(n_tokens), "--mlp", "%d%%" % (SHARE * 100),
         "--by", "taylor", "--threads", "2", "-o", out])
    with open(out + ".prune.json") as f:
        rep = json.load(f)
    ids = [int(x) for x in run([cli, "tokenize", "--tokenizer", tok, "--bos", "-f", text]).split()][:n_tokens]
    scores, n_win, W = reference_scores(model, ids)
    L, ff = scores.shape
    k = int(round(SHARE * L * ff))
    flat = scores.ravel()
    order = np.argsort(flat, kind="stable")
    want = set(int(i) for i in order[:k])
    got = set(l * ff + int(j) for l, lay in enumerate(rep["layers"]) for j in lay["removed_neuron_ids"])
    cut = 0.5 * (flat[order[k - 1]] + flat[order[k]])
    tol = TOL * float(flat.max())
    diff = got ^ want
    worst = max((abs(flat[i] - cut) for i in diff), default=0.0)
    failures = []
    if rep["neurons_removed"] != k or len(got) != k:
        failures.append("removed %d neurons (%d listed), want %d" % (rep["neurons_removed"], len(got), k))
    if worst > tol:
        failures.append("%d neurons differ, one %.3g from the cut (tolerance %.3g)" % (len(diff), worst, tol))
    if not rep["mlp_method"].startswith("taylor:") or "%d windows of %d" % (n_win, W) not in rep["mlp_method"]:
        failures.append("prune.json mlp_method '%s' does not name taylor over %d windows of %d" % (rep["mlp_method"],
                                                                                               n_win, W))
    print("%-4s %-12s %d of %d neurons removed by Taylor over %d windows of %d tokens: %d differ from float64 "
          "torch (max |score - cut| of a difference %.2e, tolerance %.2e; cut margin %.2e)"
          % ("ok" if not failures else "FAIL", label, len(got), L * ff, n_win, W, len(diff), worst, tol,
             flat[order[k]] - flat[order[k - 1]]))
    for f in failures:
        print("     " + f)
    return not failures


def main():
    cli, tools, shared = os.environ["HR_CLI"], os.environ["HR_TOOLS_DIR"], os.environ["HR_SHARED_DIR"]
    tok = os.path.join(shared, "models/stories260K/tok512.bin")
    ok = True
    with tempfile.TemporaryDirectory(prefix="hr_prune_taylor.") as tmp:
        text = os.path.join(tmp, "text.txt")
        with open(os.path.join(shared, "data/text/tinystories_val.txt"), "rb") as f:
            data = f.read(8000)
        with open(text, "wb") as f:
            f.write(data[:data.rfind(b" ")])
        rnd = os.path.join(tmp, "random-gqa.bin")
        run([os.path.join(tools, "hr_make_random"), "--dim", "48", "--hidden", "64", "--layers", "3", "--heads", "4",
             "--kv-heads", "2", "--vocab", "512", "--seq", "64", "--seed", "11", "--untied", rnd])
        # random model: 4 whole windows of 64; stories260K: 2 whole windows of 256, a partial one left out
        ok &= check("random-gqa", rnd, 256, tok, text, tmp, cli)
        ok &= check("stories260K", os.path.join(shared, "models/stories260K/stories260K.bin"), 600, tok, text, tmp,
                    cli)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
