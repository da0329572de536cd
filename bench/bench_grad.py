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
Prints the best of R timed passes over the windows (after one warm-up), wall
and process CPU seconds (all threads: OpenBLAS threads that spin count), on
a "RESULT" line, and the warm-up pass itself (cold_seconds: the first
computation of the scores in a process that has loaded the model, as
headroom's lab method is timed with its setup).
"""

import sys
import time

import torch

import bench_ablation  # beside this script (on sys.path)


def window_loss(m, tokens, gates):
    """Mean NLL of a fresh window with head outputs scaled by gates (L, H)."""
    logits = bench_ablation.logits_gated(m, tokens, gates)
    return torch.nn.functional.cross_entropy(logits[:-1], torch.as_tensor(tokens[1:], dtype=torch.long))


def main(argv):
    r = bench_ablation.lab_windows("bench_grad", argv, __doc__,
                                   lambda ap: ap.add_argument("--repeats", type=int, default=3))
    if not r:
        return 2
    a, wins, m = r
    c = m.cfg
    gates = torch.ones(c.n_layers, c.n_heads, dtype=torch.float32, requires_grad=True)
    best, best_cpu, scores = float("inf"), float("inf"), None
    for r in range(a.repeats + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        acc = torch.zeros(c.n_layers, c.n_heads, dtype=torch.float64)
        for win in wins:
            (g,) = torch.autograd.grad(window_loss(m, win, gates), gates)
            acc += g.abs().double()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        scores = acc / len(wins)
        if r > 0:
            best, best_cpu = min(best, dt), min(best_cpu, dc)
        else:
            cold, cold_cpu = dt, dc
    if a.csv:
        with open(a.csv, "w") as f:
            f.write("layer,head,grad\n")
            for l in range(c.n_layers):
                for h in range(c.n_heads):
                    f.write("%d,%d,%.9g\n" % (l, h, float(scores[l, h])))
    print("RESULT torch_grad_scores heads=%d tokens=%d threads=%d cold_seconds=%.4f cold_cpu_seconds=%.4f "
          "seconds=%.4f cpu_seconds=%.4f"
          % (c.n_layers * c.n_heads, a.window * a.windows, a.threads, cold, cold_cpu, best, best_cpu))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
