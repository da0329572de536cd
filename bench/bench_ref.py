#!/usr/bin/python3
"""PyTorch side of bench/bench_forward.sh: the same phases as
tests/tools/hr_bench.c on the same weights and token ids.

  prefill N : one causal forward over N fresh tokens, last position's logits
  decode  M : after an untimed P-token prompt, M single-token forwards through
              the KV cache (torch.mv for the matrix-vector products)

Fairness: torch.inference_mode(), preallocated KV cache, intra-op threads set
by --torch-threads (the matrix products run in OpenBLAS, whose own thread
count comes from OPENBLAS_NUM_THREADS, set by the caller; bench_forward.sh
tries intra-op 1 and 2 and keeps the faster).
Prints "RESULT" lines in hr_bench's format.
"""

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import llama_ref  # noqa: E402


def bench_token(i, vocab):
    return (i * 2654435761 + 12345) % vocab


def report(phase, n, times):
    best, med = min(times), statistics.median(times)
    print("RESULT impl=torch-t%d phase=%s n=%d best_s=%.6f median_s=%.6f tok_s=%.2f"
          % (torch.get_num_threads(), phase, n, best, med, n / best), flush=True)


def time_prefill(model, tok, n):
    model.n_past = 0
    t0 = time.perf_counter()
    model.forward(tok[:n], all_logits=False)
    return time.perf_counter() - t0


def time_decode(model, tok, prompt, m):
    model.n_past = 0
    model.forward(tok[:prompt], all_logits=False)
    t0 = time.perf_counter()
    for i in range(m):
        model.forward(tok[prompt + i:prompt + i + 1], all_logits=False)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--torch-threads", type=int, default=1)
    ap.add_argument("--prefill", default="128,512")
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--decode", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    torch.set_num_threads(args.torch_threads)
    prefill = [int(v) for v in args.prefill.split(",") if v]
    model = llama_ref.Llama(args.model, dtype=torch.float32, use_mv=True)
    n_tok = max(prefill + [args.prompt + args.decode])
    if n_tok > model.cfg.seq_len:
        sys.exit("bench_ref: needs %d positions, model has %d" % (n_tok, model.cfg.seq_len))
    model.reset(n_ctx=n_tok)
    tok = [bench_token(i, model.cfg.vocab) for i in range(n_tok)]
    print("# torch %s: %s, intra-op threads %d, OPENBLAS_NUM_THREADS=%s"
          % (torch.__version__, args.model, torch.get_num_threads(),
             os.environ.get("OPENBLAS_NUM_THREADS", "(unset)")))
    with torch.inference_mode():
        for n in prefill:
            time_prefill(model, tok, n)
            report("prefill", n, [time_prefill(model, tok, n) for _ in range(args.repeats)])
        if args.decode > 0:
            time_decode(model, tok, args.prompt, args.decode)
            report("decode", args.decode,
                   [time_decode(model, tok, args.prompt, args.decode) for _ in range(args.repeats)])


if __name__ == "__main__":
    main()
