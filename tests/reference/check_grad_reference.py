#!/usr/bin/python3
"""headroom's gradients against float64 PyTorch autograd (grad_ref.py) on
stories260K and tiny random models of every architecture: a llama2.c GQA
model with an untied classifier (hr_make_random), and Hugging Face folders
(make_hf_random.py) of GPT-2 (LayerNorm, learned positions, GELU, biases,
tied), Qwen2 (Q/K/V biases, GQA, tied) and Llama (GQA, Llama-3 RoPE
scaling, untied).

For each model, tests/tools/hr_grad_dump writes every parameter tensor
(with LoRA adapters of rank 4 on all seven matrices, B != 0, and head and
neuron gates away from 1) and headroom's gradient of the mean loss over two
windows; this script rebuilds the model from those values and compares
every gradient tensor (weights, gates, LoRA A and B, the last window's input
embeddings): relative error = max |headroom - torch| / scale <= TOL, scale =
max |torch| of the tensor, but at least FLOOR times the largest gradient of
the model — a tensor whose exact gradient vanishes (GPT-2's key bias: adding
q.b_k to a whole row of scores leaves the softmax unchanged) is held to float
rounding of the model's gradients, not to 1e-4 of zero.
It recomputes LoRAPrune's importance (hr_loraprune_importance) of every
head and neuron from the float64 autograd gradients of the LoRA matrices
and the dumped values, written from the paper's criterion: per adapted
matrix W, G = s (G_B A + B G_A - G_B G_A), W' = W + s B A, element
importance (G W')^2, summed over a head's Wq rows and Wo columns (and K/V
rows when it is alone in its KV group) and over a neuron's W_gate / W_up
rows and W_down column (same tolerance, relative to the largest score).
It also recomputes, on the unmodified model, the head lab's `grad` scores
(mean over windows of |dL/dgate|), its `taylor` scores (|sum over the head's
weight group of w dL/dw|) and hr_taylor_neuron_scores, with the same
tolerance relative to the largest score.

Env: HR_TOOLS_DIR (hr_grad_dump, hr_make_random), HR_SHARED_DIR.
Exit status 1 when anything differs by more than TOL.
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
import make_hf_random  # noqa: E402

TOL = 1e-4
FLOOR = 1e-3
WINDOW, WINDOWS, RANK, ALPHA = 20, 2, 4, 8.0


run = refcheck.run


def load_dump(prefix):
    with open(prefix + ".grad.json") as f:
        cfg = json.load(f)
    raw = np.fromfile(prefix + ".grad.bin", dtype="<f4")
    values, grads = {}, {}
    for t in cfg["tensors"]:
        shape, n = (t["rows"], t["cols"]), t["rows"] * t["cols"]
        values[t["name"]] = raw[t["value"]:t["value"] + n].reshape(shape).astype(np.float64)
        if t["grad"] >= 0:
            grads[t["name"]] = raw[t["grad"]:t["grad"] + n].reshape(shape)
    n_in = WINDOW * cfg["dim"]
    input_grad = raw[cfg["input_grad"]:cfg["input_grad"] + n_in].reshape(WINDOW, cfg["dim"])
    return cfg, values, grads, input_grad


def leaves(cfg, values, gates_one=False):
    T = {}
    for t in cfg["tensors"]:
        v = values[t["name"]]
        if t["rows"] == 1:
            v = v.reshape(-1)
        if gates_one and t["kind"] in ("head_gate", "neuron_gate"):
            v = np.ones_like(v)
        T[t["name"]] = torch.tensor(v, dtype=torch.float64, requires_grad=True)
    return T


def rel_err(got, want, floor=0.0):
    got, want = np.asarray(got, dtype=np.float64).ravel(), np.asarray(want, dtype=np.float64).ravel()
    scale = max(float(np.max(np.abs(want))) if want.size else 0.0, floor)
    d = float(np.max(np.abs(got - want))) if want.size else 0.0
    return (d / scale if scale > 0 else d), d, scale


def head_group_sum(cfg, T, G, l, h):
    """sum over head h's weight group of w * dL/dw (see hr_grad_taylor_heads)."""
    p, hd = "blk.%d." % l, cfg["head_dim"]
    rows = slice(h * hd, (h + 1) * hd)
    s = (T[p + "attn_q.weight"][rows] * G[p + "attn_q.weight"][rows]).sum()
    s = s + (T[p + "attn_output.weight"][:, rows] * G[p + "attn_output.weight"][:, rows]).sum()
    names = ["attn_q.bias"]
    if cfg["n_head"][l] == cfg["n_head_kv"][l]:
        names += ["attn_k.weight", "attn_v.weight", "attn_k.bias", "attn_v.bias"]
    for nm in names:
        if p + nm in T:
            s = s + (T[p + nm][rows] * G[p + nm][rows]).sum()
    return abs(float(s))


def loraprune_scores(cfg, values, G, heads):
    """LoRAPrune's group importance (Zhang et al. 2023), float64, flattened
    (layer, max_heads) or (layer, max_ff)."""
    L, hd, s = cfg["n_layers"], cfg["head_dim"], cfg["lora_scale"]
    width = cfg["max_heads"] if heads else cfg["max_ff"]
    out = np.zeros((L, width))
    for l in range(L):
        p = "blk.%d." % l
        for m in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"):
            if p + m + ".lora_a" not in values:
                continue
            W, A, B = values[p + m + ".weight"], values[p + m + ".lora_a"], values[p + m + ".lora_b"]
            GA, GB = G[p + m + ".lora_a"], G[p + m + ".lora_b"]
            Ghat = s * (GB @ A + B @ GA - GB @ GA)
            imp = (Ghat * (W + s * B @ A)) ** 2
            rows, cols = imp.sum(1), imp.sum(0)
            if heads and m == "attn_q":
                out[l, :len(rows) // hd] += rows.reshape(-1, hd).sum(1)
            elif heads and m == "attn_output":
                out[l, :len(cols) // hd] += cols.reshape(-1, hd).sum(1)
            elif heads and m in ("attn_k", "attn_v") and cfg["n_head"][l] == cfg["n_head_kv"][l]:
                out[l, :len(rows) // hd] += rows.reshape(-1, hd).sum(1)
            elif not heads and m in ("ffn_gate", "ffn_up"):
                out[l, :len(rows)] += rows
            elif not heads and m == "ffn_down":
                out[l, :len(cols)] += cols
    return out.ravel()


def check_case(label, model, vocab, tmp, tools, failures, worst):
    rng = np.random.default_rng(len(label))
    ids = [int(x) for x in rng.integers(2, vocab, WINDOWS * (WINDOW - 1))]
    prefix = os.path.join(tmp, label)
    run([os.path.join(tools, "hr_grad_dump"), model, "--ids", ",".join(map(str, ids)), "--bos", "1", "--window",
         str(WINDOW), "--windows", str(WINDOWS), "--lora-rank", str(RANK), "--lora-alpha", str(ALPHA), "--threads",
         "2", "--out", prefix])
    cfg, values, grads, input_grad = load_dump(prefix)
    windows = cfg["windows"]

    def report(what, got, want, floor=0.0):
        r, d, scale = rel_err(got, want, floor)
        ok = r <= TOL
        failures.append(not ok)
        worst.append(r)
        print("%-4s %-18s %-34s rel %.2e (max |diff| %.2e, scale %.2e)" % ("ok" if ok else "FAIL", label, what, r,
                                                                                 d, scale))

    # every gradient of the perturbed, adapted model
    T = leaves(cfg, values)
    ref = grad_ref.Model(cfg, T)
    total = sum(ref.loss(w) for w in windows) / len(windows)
    names = [n for n in grads]
    g_ref = [g.detach().numpy().reshape(grads[n].shape) for n, g in
             zip(names, torch.autograd.grad(total, [T[n] for n in names]))]
    floor = FLOOR * max(float(np.max(np.abs(g))) for g in g_ref)
    for n, g in zip(names, g_ref):
        report(n, grads[n], g, floor)
    report("LoRAPrune head importance", np.array(cfg["loraprune_heads"]),
           loraprune_scores(cfg, values, dict(zip(names, g_ref)), True))
    report("LoRAPrune neuron importance", np.array(cfg["loraprune_neurons"]),
           loraprune_scores(cfg, values, dict(zip(names, g_ref)), False))
    losses = [float(ref.loss(w)) for w in windows]
    report("window losses", cfg["losses"], losses)
    box = {}

    def hook(x):
        box["x0"] = x.detach().requires_grad_(True)
        return box["x0"]

    last = ref.loss(windows[-1], x0_hook=hook) / len(windows)
    report("input embeddings (last window)", input_grad, torch.autograd.grad(last, box["x0"])[0].numpy())

    # gradient scores of the unmodified model (gates 1, no adapters)
    T1 = leaves(cfg, values, gates_one=True)
    plain = grad_ref.Model(cfg, T1, gates=True, lora=False)
    L = cfg["n_layers"]
    gates = ["blk.%d.head_gate" % l for l in range(L) if cfg["n_head"][l] > 0]
    per_window = [torch.autograd.grad(plain.loss(w), [T1[g] for g in gates]) for w in windows]
    grad_scores = np.concatenate([np.mean([np.abs(pw[i].numpy()) for pw in per_window], axis=0)
                                  for i in range(len(gates))])
    report("head lab `grad` scores", cfg["grad_scores"], grad_scores)
    total1 = sum(plain.loss(w) for w in windows) / len(windows)
    wnames = [n for n in T1 if n.endswith((".weight", ".bias")) and n.startswith("blk.")]
    G = dict(zip(wnames, torch.autograd.grad(total1, [T1[n] for n in wnames], allow_unused=True)))
    taylor = [head_group_sum(cfg, T1, G, l, h) for l in range(L) for h in range(cfg["n_head"][l])]
    report("head lab `taylor` scores", cfg["taylor_scores"], taylor)
    ffm = max(cfg["n_ff"])
    neurons = np.zeros((L, ffm))
    for l in range(L):
        p = "blk.%d." % l
        for j in range(cfg["n_ff"][l]):
            s = (T1[p + "ffn_up.weight"][j] * G[p + "ffn_up.weight"][j]).sum()
            s = s + (T1[p + "ffn_down.weight"][:, j] * G[p + "ffn_down.weight"][:, j]).sum()
            if p + "ffn_gate.weight" in T1:
                s = s + (T1[p + "ffn_gate.weight"][j] * G[p + "ffn_gate.weight"][j]).sum()
            if p + "ffn_up.bias" in T1:
                s = s + T1[p + "ffn_up.bias"][j] * G[p + "ffn_up.bias"][j]
            neurons[l, j] = abs(float(s))
    report("hr_taylor_neuron_scores", np.array(cfg["neuron_taylor"]).reshape(L, ffm), neurons)


def main():
    tools, shared = os.environ["HR_TOOLS_DIR"], os.environ["HR_SHARED_DIR"]
    failures, worst = [], []
    with tempfile.TemporaryDirectory(prefix="hr_grad_ref.") as tmp:
        gqa = os.path.join(tmp, "llama-gqa-untied.bin")
        run([os.path.join(tools, "hr_make_random"), "--dim", "64", "--hidden", "96", "--layers", "2", "--heads", "8",
             "--kv-heads", "2", "--vocab", "97", "--seq", "64", "--seed", "4", "--untied", gqa])
        cases = [("stories260K", os.path.join(shared, "models/stories260K/stories260K.bin"), 512),
                 ("llama-gqa-untied", gqa, 97)]
        for arch, vocab, seed in (("gpt2", 101, 2), ("qwen2", 97, 3), ("llama", 89, 5)):
            folder = os.path.join(tmp, "hf-" + arch)
            make_hf_random.main([arch, folder, "--seed", str(seed)])
            cases.append(("hf-" + arch, folder, vocab))
        for label, model, vocab in cases:
            check_case(label, model, vocab, tmp, tools, failures, worst)
    print("%d checks, %d failed; largest relative error %.2e (tolerance %g)" % (len(failures), sum(failures),
                                                                              max(worst), TOL))
    return 1 if any(failures) else 0


if __name__ == "__main__":
    sys.exit(main())
