#!/usr/bin/python3
"""Python side of bench/bench_python.sh. Each mode alternates the two
things it compares call by call in one process, so that load from other
processes on the shared machine hits both alike; one untimed warm-up each,
then --repeats timed pairs; RESULT lines give best and median seconds, and
the medians of the per-pair ratios and differences (wall time; for the
overhead also process CPU time, which other processes' load disturbs less).

  overhead MODEL : headroom.Model.logits(ids) ((n, vocab) float32, a fresh
                   array per call, ids checked) vs the same hr_forward called
                   straight through ctypes on the model's own context with a
                   reused buffer (the C library alone; one foreign call)
  fixed MODEL    : the fixed per-call part of Model.logits' overhead, timed
                   alone (robust to load, unlike a ratio of two forward
                   passes): checking the ids, and a fresh (n, vocab) array
                   written vs a reused one (best of --repeats)
  cache MODEL    : Model.run_with_cache(ids, names=["pattern"]) vs the same
                   attention-pattern cache TransformerLens-style in PyTorch on
                   the same weights (tests/reference/llama_ref.py's forward; a
                   hook per layer stores the (heads, n, n) probabilities it
                   computes, as HookedTransformer.run_with_cache stores
                   hook_pattern), all logits returned, inference_mode,
                   --torch-threads intra-op threads (OPENBLAS_NUM_THREADS from
                   the caller)

Tokens are hr_bench_logits' ((i * 2654435761 + 12345) mod vocab).
"""
import argparse
import ctypes
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
import headroom  # noqa: E402
from headroom._lib import lib  # noqa: E402


def bench_tokens(n, vocab):
    return [(i * 2654435761 + 12345) % vocab for i in range(n)]


def pairs(a, b, repeats):
    """Alternates a() and b(); returns their wall times and their process CPU
    times (all threads; less sensitive to other processes' load), seconds."""
    a(), b()
    ta, tb, ca, cb = [], [], [], []
    for _ in range(repeats):
        for fn, ts, cs in ((a, ta, ca), (b, tb, cb)):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
            cs.append(time.process_time() - c0)
    return ta, tb, ca, cb


def report(impl, what, n, threads, ts, ref=None, cpu=None, cpu_ref=None):
    extra = ""
    if ref is not None:
        extra = " ratio_median=%.4f diff_median_us=%.1f" % (statistics.median(t / r for t, r in zip(ts, ref)),
                                                            1e6 * statistics.median(t - r for t, r in zip(ts, ref)))
    if cpu_ref is not None:
        extra += " cpu_ratio_median=%.4f cpu_diff_median_us=%.1f" % (
            statistics.median(t / r for t, r in zip(cpu, cpu_ref)), 1e6 * statistics.median(t - r for t, r in zip(cpu, cpu_ref)))
    print("RESULT impl=%s what=%s n=%d threads=%s best_s=%.6f median_s=%.6f%s"
          % (impl, what, n, threads, min(ts), statistics.median(ts), extra), flush=True)


def overhead(a):
    m = headroom.Model.load(a.model, threads=a.threads)
    ids = np.array(bench_tokens(a.n, m.config.vocab_size), dtype=np.int32)
    out = np.empty((a.n, m.config.vocab_size), dtype=np.float32)  # (n, vocab), reused by the C call
    ctx = m._context()
    ip = ids.ctypes.data_as(ctypes.POINTER(ctypes.c_int32))
    op = out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))

    def c_call():
        lib.hr_context_truncate(ctx, 0)
        lib.hr_forward(ctx, ip, a.n, op, True)

    tc, tp, cc, cp = pairs(c_call, lambda: m.logits(ids), a.repeats)
    assert (m.logits(ids) == out).all()
    report("c-via-ctypes", "logits", a.n, a.threads, tc)
    report("python", "logits", a.n, a.threads, tp, tc, cp, cc)
    m.close()


def fixed(a):
    m = headroom.Model.load(a.model, threads=a.threads)
    V = m.config.vocab_size
    ids = np.array(bench_tokens(a.n, V), dtype=np.int32)
    buf = np.zeros((a.n, V), dtype=np.float32)  # (n, vocab), reused

    def fresh():
        np.empty((a.n, V), dtype=np.float32).fill(0)

    def best(fn, k):
        ts = []
        for _ in range(k):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return min(ts)

    t_fresh, t_reuse = best(fresh, a.repeats), best(lambda: buf.fill(0), a.repeats)
    t_ids = best(lambda: m._ids(ids), 2000)
    print("RESULT impl=python-fixed what=logits n=%d vocab=%d fresh_array_extra_us=%.1f ids_check_us=%.1f"
          % (a.n, V, 1e6 * (t_fresh - t_reuse), 1e6 * t_ids), flush=True)
    m.close()


def cache(a):
    import torch
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
    import llama_ref
    torch.set_num_threads(a.torch_threads)
    m = headroom.Model.load(a.model, threads=a.threads)
    ref = llama_ref.Llama(a.model, dtype=torch.float32)
    ids = bench_tokens(a.n, m.config.vocab_size)
    hids = m._ids(ids)

    def tl_run_with_cache():
        store = {}
        ref.observer = lambda layer, pos0, probs, out: store.__setitem__(f"blocks.{layer}.attn.hook_pattern", probs)
        ref.reset(n_ctx=a.n)
        with torch.inference_mode():
            logits = ref.forward(ids, all_logits=True)
        return logits, store

    th, tt, _, _ = pairs(lambda: m.run_with_cache(hids, names=["pattern"]), tl_run_with_cache, a.repeats)
    cfg = "torch-t%d-blas%s" % (a.torch_threads, os.environ.get("OPENBLAS_NUM_THREADS", "?"))
    report("headroom-vs-" + cfg, "cache_pattern", a.n, a.threads, th)
    report(cfg, "cache_pattern", a.n, a.torch_threads, tt, th)
    m.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["overhead", "fixed", "cache"])
    ap.add_argument("model")
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--torch-threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=20)
    a = ap.parse_args()
    {"overhead": overhead, "fixed": fixed, "cache": cache}[a.mode](a)


if __name__ == "__main__":
    main()
