#!/usr/bin/python3
"""PyTorch training step of a llama2.c model, for comparison with
headroom's hr_train_step (same model shape, window, batch and threads):
forward of K windows of W tokens (bench_ablation.logits_gated, float32),
mean next-token cross-entropy, backward into every weight,
clip_grad_norm_(1.0), torch.optim.AdamW(lr 1e-3).

usage:
  bench_train.py MODEL.bin --ids FILE --window W --windows K [--bos 1]
                 [--threads T] [--repeats R]
Prints the best of R timed steps (after one warm-up), wall and process CPU
seconds, on a "RESULT" line.
"""

import sys
import time

import torch

import bench_ablation  # beside this script (on sys.path)


def main(argv):
    r = bench_ablation.lab_windows("bench_train", argv, __doc__,
                                   lambda ap: ap.add_argument("--repeats", type=int, default=3))
    if not r:
        return 2
    a, wins, m = r
    # One leaf tensor per layer and matrix, as a PyTorch model's nn.Linear
    # weights are: the reference stores each kind stacked (n_layers, ...),
    # and training slices of a stacked leaf makes autograd materialise a
    # gradient of the whole stack for every slice (n_layers x the work; a
    # SmolLM-135M-shape step took ~100 s instead of seconds).
    for k in ("rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3"):
        m.w[k] = [t.clone() for t in m.w[k].unbind(0)]
    leaves = [t for k, v in m.w.items() if not k.startswith("freq_cis") for t in (v if isinstance(v, list) else [v])]
    params = list({id(t): t for t in leaves}.values())  # the tied classifier once
    for t in params:
        t.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    best, best_cpu = float("inf"), float("inf")
    for r in range(a.repeats + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad()
        loss = sum(torch.nn.functional.cross_entropy(bench_ablation.logits_gated(m, w)[:-1],
                                                     torch.as_tensor(w[1:], dtype=torch.long)) for w in wins) / len(wins)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        if r > 0:
            best, best_cpu = min(best, dt), min(best_cpu, dc)
    print("RESULT torch_train_step tokens=%d threads=%d seconds=%.5f cpu_seconds=%.5f tokens_per_s=%.1f"
          % (a.window * a.windows, a.threads, best, best_cpu, a.window * a.windows / best))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
