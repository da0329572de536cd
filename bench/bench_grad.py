#!/usr/bin/python3
"""PyTorch autograd computation of the head lab's `grad` scores, for
comparison with headroom (same weights, token windows and threads).

Every head's attention output is multiplied by a gate (a float32 tensor of
ones that requires grad, the weights do not); per window one forward and
one backward (torch.autograd.grad of the window's mean next-token NLL
w.r.t. the gates); score = mean over windows of |dL/dgate|, the quantity
headroom's `grad` method reports. Windows are built as headroom builds them:
[BOS, ids[w*(W-1) : (w+1)*(W-1)]] for w < K. float32, as headroom.

usage:
  bench_grad.py MODEL.bin --ids FILE --window W --windows K [--bos 1]
                [--threads T] [--repeats R] [--csv OUT]   # OUT: layer,head,grad
Prints the best of R timed passes over the windows (after one warm-up) on a
"RESULT" line.
"""

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import llama_ref  # noqa: E402


def window_loss(m, tokens, gates):
    """Mean NLL of a fresh window with head outputs scaled by gates (L, H)."""
    c, w = m.cfg, m.w
    n, hd = len(tokens), c.head_dim
    m.reset(n)
    x = w["tok_emb"][torch.as_tensor(tokens, dtype=torch.long)]
    for l in range(c.n_layers):
        h = llama_ref.rmsnorm(x, w["rms_att"][l], c.norm_eps)
        q = (h @ w["wq"][l].t()).view(n, c.n_heads, hd)
        k = (h @ w["wk"][l].t()).view(n, c.n_kv_heads, hd)
        v = (h @ w["wv"][l].t()).view(n, c.n_kv_heads, hd)
        group = c.n_heads // c.n_kv_heads
        q, k = m.rope(q, 0), m.rope(k, 0)
        keys, vals = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        s = torch.einsum("qhd,khd->hqk", q, keys) / (hd ** 0.5)
        mask = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
        o = torch.einsum("hqk,khd->qhd", torch.softmax(s.masked_fill(mask, float("-inf")), -1), vals)
        o = o * gates[l].view(1, c.n_heads, 1)
        x = x + o.reshape(n, c.n_heads * hd) @ w["wo"][l].t()
        h = llama_ref.rmsnorm(x, w["rms_ffn"][l], c.norm_eps)
        x = x + (torch.nn.functional.silu(h @ w["w1"][l].t()) * (h @ w["w3"][l].t())) @ w["w2"][l].t()
    x = llama_ref.rmsnorm(x, w["rms_final"], c.norm_eps)
    logits = x @ w["wcls"].t()
    target = torch.as_tensor(tokens[1:], dtype=torch.long)
    return torch.nn.functional.cross_entropy(logits[:-1], target)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--ids", required=True)
    ap.add_argument("--window", type=int, required=True)
    ap.add_argument("--windows", type=int, default=1)
    ap.add_argument("--bos", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--csv")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    ids = [int(t) for t in open(a.ids).read().split()]
    per = a.window - 1
    if len(ids) < per * a.windows:
        print("bench_grad: need %d ids, have %d" % (per * a.windows, len(ids)), file=sys.stderr)
        return 2
    wins = [[a.bos] + ids[w * per:(w + 1) * per] for w in range(a.windows)]
    m = llama_ref.Llama(a.model)
    c = m.cfg
    gates = torch.ones(c.n_layers, c.n_heads, dtype=torch.float32, requires_grad=True)
    best, scores = float("inf"), None
    for r in range(a.repeats + 1):
        t0 = time.perf_counter()
        acc = torch.zeros(c.n_layers, c.n_heads, dtype=torch.float64)
        for win in wins:
            (g,) = torch.autograd.grad(window_loss(m, win, gates), gates)
            acc += g.abs().double()
        dt = time.perf_counter() - t0
        scores = acc / len(wins)
        if r > 0:
            best = min(best, dt)
    if a.csv:
        with open(a.csv, "w") as f:
            f.write("layer,head,grad\n")
            for l in range(c.n_layers):
                for h in range(c.n_heads):
                    f.write("%d,%d,%.9g\n" % (l, h, float(scores[l, h])))
    print("RESULT torch_grad_scores heads=%d tokens=%d threads=%d seconds=%.4f"
          % (c.n_layers * c.n_heads, a.window * a.windows, a.threads, best))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
