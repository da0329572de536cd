#!/usr/bin/python3
"""Straightforward PyTorch single-head ablation sweep, for comparison with
`headroom heads --methods ablation` (same weights, token windows, threads).

For every (layer, head): one full causal forward over each calibration
window with that head's attention output multiplied by 0, then
mean NLL(ablated) - mean NLL(base) — the quantity headroom's `ablation`
method reports. Windows are built as headroom builds them:
[BOS, ids[w*(W-1) : (w+1)*(W-1)]] for w < n_windows.

usage:
  bench_ablation.py MODEL.bin --ids FILE (whitespace-separated text token ids,
        no BOS, e.g. from `headroom tokenize`) --window W --windows K
        [--bos 1] [--threads T] [--csv OUT]   # OUT: layer,head,ablation
Prints the sweep time in seconds on a "RESULT" line.
"""

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import llama_ref  # noqa: E402


def logits_gated(m, tokens, gates=None):
    """(n, vocab) logits of a fresh sequence with each head's attention
    output multiplied by its gate (gates: (n_layers, n_heads); None = all 1)."""
    c, w = m.cfg, m.w
    n, hd = len(tokens), c.head_dim
    m.reset(n)
    x = w["tok_emb"][torch.as_tensor(tokens, dtype=torch.long)]
    for l in range(c.n_layers):
        h = llama_ref.rmsnorm(x, w["rms_att"][l], c.norm_eps)
        q = (h @ w["wq"][l].t()).view(n, c.n_heads, hd)
        k = (h @ w["wk"][l].t()).view(n, c.n_kv_heads, hd)
        v = (h @ w["wv"][l].t()).view(n, c.n_kv_heads, hd)
        att = m.attention(l, m.rope(q, 0), m.rope(k, 0), v, 0)  # (n, H*hd)
        if gates is not None:
            att = att * gates[l].repeat_interleave(hd)
        x = x + att @ w["wo"][l].t()
        h = llama_ref.rmsnorm(x, w["rms_ffn"][l], c.norm_eps)
        x = x + (torch.nn.functional.silu(h @ w["w1"][l].t()) * (h @ w["w3"][l].t())) @ w["w2"][l].t()
    x = llama_ref.rmsnorm(x, w["rms_final"], c.norm_eps)
    return x @ w["wcls"].t()


def forward_gated(m, tokens, gate_layer, gate_head):
    """(n, vocab) logits of a fresh sequence with one head's output zeroed
    (none when gate_layer < 0)."""
    gates = None
    if gate_layer >= 0:
        gates = torch.ones(m.cfg.n_layers, m.cfg.n_heads)
        gates[gate_layer, gate_head] = 0
    return logits_gated(m, tokens, gates)


def mean_nll(logits, tokens):
    target = torch.as_tensor(tokens[1:], dtype=torch.long)
    return torch.nn.functional.cross_entropy(logits[:-1].double(), target).item()


def lab_windows(prog, argv, doc, extra=None):
    """The command line the head-lab benchmarks share (MODEL --ids --window
    --windows [--bos] [--threads] [--csv], plus what extra(parser) adds):
    returns (args, windows built as headroom builds them, the model), or
    None after an error message."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--ids", required=True)
    ap.add_argument("--window", type=int, required=True)
    ap.add_argument("--windows", type=int, default=1)
    ap.add_argument("--bos", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--csv")
    if extra:
        extra(ap)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    ids = [int(t) for t in open(a.ids).read().split()]
    per = a.window - 1
    if len(ids) < per * a.windows:
        print("%s: need %d ids, have %d" % (prog, per * a.windows, len(ids)), file=sys.stderr)
        return None
    wins = [[a.bos] + ids[w * per:(w + 1) * per] for w in range(a.windows)]
    return a, wins, llama_ref.Llama(a.model)


def main(argv):
    r = lab_windows("bench_ablation", argv, __doc__)
    if not r:
        return 2
    a, wins, m = r
    c = m.cfg
    rows = []
    with torch.inference_mode():
        t0 = time.perf_counter()
        base = sum(mean_nll(forward_gated(m, win, -1, -1), win) for win in wins) / len(wins)
        for l in range(c.n_layers):
            for h in range(c.n_heads):
                nll = sum(mean_nll(forward_gated(m, win, l, h), win) for win in wins) / len(wins)
                rows.append((l, h, nll - base))
        dt = time.perf_counter() - t0
    if a.csv:
        with open(a.csv, "w") as f:
            f.write("layer,head,ablation\n")
            for l, h, s in rows:
                f.write("%d,%d,%.9g\n" % (l, h, s))
    print("RESULT torch_ablation_sweep heads=%d tokens=%d threads=%d seconds=%.3f"
          % (len(rows), a.window * a.windows, a.threads, dt))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
