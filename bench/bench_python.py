#!/usr/bin/python3
"""Python side of bench/bench_python.sh.

  headroom MODEL : headroom.Model.logits(ids) ((n, vocab) float32, a fresh
                   array per call) and Model.run_with_cache(ids,
                   names=["pattern"]) on the benchmark's n tokens
  torch MODEL    : the same attention-pattern cache, TransformerLens-style,
                   in PyTorch on the same weights (tests/reference/llama_ref.py's
                   forward; a hook on every layer stores the (heads, n, n)
                   probabilities it computes, as HookedTransformer.run_with_cache
                   stores hook_pattern), all logits returned, inference_mode

Tokens are hr_bench_logits' ((i * 2654435761 + 12345) mod vocab). One
untimed warm-up, then --repeats timed calls; prints RESULT lines with the
best and median seconds.
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def bench_tokens(n, vocab):
    return [(i * 2654435761 + 12345) % vocab for i in range(n)]


def timed(fn, repeats):
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), statistics.median(ts)


def report(impl, what, n, threads, best_med):
    print("RESULT impl=%s what=%s n=%d threads=%s best_s=%.6f median_s=%.6f" % ((impl, what, n, threads) + best_med),
          flush=True)


def run_headroom(a):
    sys.path.insert(0, os.path.join(HERE, "..", "python"))
    import headroom
    m = headroom.Model.load(a.model, threads=a.threads)
    ids = bench_tokens(a.n, m.config.vocab_size)
    a_ids = m._ids(ids)
    report("python", "logits", a.n, a.threads, timed(lambda: m.logits(a_ids), a.repeats))
    report("headroom", "cache_pattern", a.n, a.threads,
           timed(lambda: m.run_with_cache(a_ids, names=["pattern"]), a.repeats))
    m.close()


def run_torch(a):
    import torch
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
    import llama_ref
    torch.set_num_threads(a.torch_threads)
    model = llama_ref.Llama(a.model, dtype=torch.float32)
    ids = bench_tokens(a.n, model.cfg.vocab)

    def run_with_cache():
        cache = {}
        model.observer = lambda layer, pos0, probs, out: cache.__setitem__(f"blocks.{layer}.attn.hook_pattern", probs)
        model.reset(n_ctx=a.n)
        with torch.inference_mode():
            logits = model.forward(ids, all_logits=True)
        return logits, cache

    report("torch-t%d-blas%s" % (a.torch_threads, os.environ.get("OPENBLAS_NUM_THREADS", "?")), "cache_pattern", a.n,
           a.torch_threads, timed(run_with_cache, a.repeats))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("side", choices=["headroom", "torch"])
    ap.add_argument("model")
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--torch-threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=20)
    a = ap.parse_args()
    (run_headroom if a.side == "headroom" else run_torch)(a)


if __name__ == "__main__":
    main()
