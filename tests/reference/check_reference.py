#!/usr/bin/python3
"""Agreement of headroom's forward pass with the PyTorch reference.

Run by tests/test_reference.sh. For stories260K (.bin, and .gguf against
the .bin reference) and two generated random models (tied + GQA, untied +
single KV head), and prompts of 1 to 100 tokens, checks:
  - headroom logits (prefill, decode, chunked prefill, small n_batch) vs the
    float64 reference: max abs diff <= REF_TOL
  - headroom decode / chunked / batched vs headroom prefill:
    <= SELF_TOL
  - the reference's own KV-cache decode vs its full causal pass (guards the
    reference itself)
Prints every max diff; exits 1 on any failure.
"""

import os
import random
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refcheck  # noqa: E402
import llama_ref  # noqa: E402

REF_TOL = 1e-4
# headroom vs itself: 1e-5 absolute, as the acceptance criterion states. The
# kernels make batched prefill and one-token decode bit-identical (the GEMM
# accumulates every output exactly like the GEMV), so this holds with room;
# with kernels whose summation orders differ it would not (stories260K's
# logits reach ~22, where one float32 ulp is 1.9e-6).
SELF_TOL = 1e-5
SELF_REL = 0.0  # no magnitude-relative widening
REF_SELF_TOL = 1e-9  # float64 reference: full pass vs KV-cache decode

# name, hr_make_random flags (None = shared file)
RANDOM_MODELS = [
    ("random-tied-gqa", ["--dim", "48", "--hidden", "128", "--layers", "3", "--heads", "6",
                         "--kv-heads", "2", "--vocab", "300", "--seq", "128", "--seed", "7"]),
    ("random-untied-mqa", ["--dim", "64", "--hidden", "96", "--layers", "2", "--heads", "4",
                           "--kv-heads", "1", "--vocab", "257", "--seq", "160", "--seed", "11",
                           "--untied"]),
]
PROMPT_LENGTHS = [1, 2, 17, 100]

failures = []


def check(label, diff, tol):
    ok = diff <= tol  # NaN compares false: a NaN fails
    print("  %-4s %-62s max abs diff %.3g (tol %.2g)" % ("ok" if ok else "FAIL", label, diff, tol))
    if not ok:
        failures.append(label)


def maxdiff(a, b):
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def run_c(tools, model, tokens, out, extra):
    cmd = [os.path.join(tools, "hr_logits"), model, "--tokens", ",".join(map(str, tokens)),
           "--out", out] + extra
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print("  FAIL %s\n%s%s" % (" ".join(cmd), r.stdout, r.stderr))
        failures.append("hr_logits " + " ".join(extra))
        return None
    return np.fromfile(out, dtype=np.float32)


def check_prompt(tools, tmp, name, path, ref, tokens, full=True):
    vocab = ref.cfg.vocab
    n = len(tokens)
    tag = "%s n=%d" % (name, n)
    want = ref.logits(tokens, "full").numpy()  # (n, vocab) float64
    if n > 1 and full:
        check(tag + " reference decode vs full", maxdiff(ref.logits(tokens, "decode").numpy(), want),
              REF_SELF_TOL)
    out = os.path.join(tmp, "logits.f32")
    variants = [("prefill", ["--mode", "prefill"]), ("decode", ["--mode", "decode"])]
    if n >= 17 and full:
        variants.append(("chunked(7)", ["--mode", "chunked", "--chunk", "7"]))
        variants.append(("prefill n_batch=16", ["--mode", "prefill", "--batch", "16"]))
    got = {}
    for label, extra in variants:
        flat = run_c(tools, path, tokens, out, extra)
        if flat is None:
            continue
        if flat.size != n * vocab:
            check("%s %s output size %d != %d" % (tag, label, flat.size, n * vocab), float("inf"), 0)
            continue
        got[label] = flat.reshape(n, vocab)
        check("%s headroom %s vs reference" % (tag, label), maxdiff(got[label], want), REF_TOL)
    self_tol = max(SELF_TOL, SELF_REL * float(np.max(np.abs(want))))
    if "prefill" in got:
        for label in got:
            if label != "prefill":
                check("%s headroom %s vs prefill" % (tag, label), maxdiff(got[label], got["prefill"]),
                      self_tol)
    if np.std(want) < 0.1:
        check(tag + " reference logits are degenerate (std %.3g)" % np.std(want), float("inf"), 0)


def main():
    tools = os.environ.get("HR_TOOLS_DIR")
    shared = os.environ.get("HR_SHARED_DIR")
    if not tools or not shared:
        print("check_reference: HR_TOOLS_DIR and HR_SHARED_DIR must be set", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    tmp = tempfile.mkdtemp(prefix="hr_reference_")
    try:
        stories = os.path.join(shared, "models/stories260K/stories260K")
        # (name, file headroom loads, llama2.c file the reference reads, all variants)
        models = [("stories260K", stories + ".bin", stories + ".bin", True),
                  # Same weights through the GGUF loader: must match the .bin reference.
                  ("stories260K.gguf", stories + ".gguf", stories + ".bin", False)]
        for name, flags in RANDOM_MODELS:
            path = os.path.join(tmp, name + ".bin")
            subprocess.run([os.path.join(tools, "hr_make_random")] + flags + [path], check=True)
            models.append((name, path, path, True))
        refs = {}
        for name, path, ref_path, full in models:
            if ref_path not in refs:
                refs[ref_path] = llama_ref.Llama(ref_path, dtype=torch.float64)
            ref = refs[ref_path]
            print("%s: %r" % (name, ref.cfg))
            rng = random.Random(name.split(".")[0])  # same prompts for a model in any format
            for n in PROMPT_LENGTHS:
                tokens = [rng.randrange(ref.cfg.vocab) for _ in range(n)]
                check_prompt(tools, tmp, name, path, ref, tokens, full)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return refcheck.finish(failures, "reference checks")


if __name__ == "__main__":
    sys.exit(main())
