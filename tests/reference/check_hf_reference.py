#!/usr/bin/python3
"""headroom vs the independent PyTorch references on random-weight HF
folders (GPT-2, Qwen2, Llama with GQA + llama3 RoPE scaling), each read
directly and after conversion HF -> GGUF -> HF with `headroom convert`.

Env: HR_CLI (headroom), HR_TOOLS_DIR (hr_logits), HR_SOURCE_DIR.
Exit status 1 when any logits differ by more than TOL.
"""

import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refcheck  # noqa: E402
import gpt2_ref  # noqa: E402
import hf_folder  # noqa: E402
import make_hf_random  # noqa: E402
import qwen2_ref  # noqa: E402

TOL = 1e-4

CASES = [
    # name, arch, generator flags, reference
    ("gpt2-f32-noprefix", "gpt2", ["--no-prefix", "--dtype", "f32"], gpt2_ref),
    ("gpt2-f16-prefix", "gpt2", ["--dtype", "f16", "--seed", "7"], gpt2_ref),
    ("qwen2-bf16-sharded", "qwen2", ["--dtype", "bf16", "--shards", "2", "--seed", "3"], qwen2_ref),
    ("llama-gqa-llama3rope", "llama", ["--dtype", "f32", "--seed", "5"], qwen2_ref),
    # compressed-tensors per-channel int8 (llama: down_proj rows of 80 are read as f32)
    ("llama-int8-channel", "llama", ["--dtype", "int8", "--seed", "9"], qwen2_ref),
    ("qwen2-int8-sharded", "qwen2", ["--dtype", "int8", "--shards", "3", "--seed", "11"], qwen2_ref),
]


run = refcheck.run


def c_logits(tools, model, tokens, out, mode="prefill"):
    run([os.path.join(tools, "hr_logits"), model, "--tokens", tokens, "--out", out, "--mode", mode, "--threads", "1"])
    return np.fromfile(out, dtype=np.float32)


def main():
    cli, tools = os.environ["HR_CLI"], os.environ["HR_TOOLS_DIR"]
    failures = 0
    with tempfile.TemporaryDirectory(prefix="hr_hf_ref.") as tmp:
        for name, arch, flags, ref in CASES:
            folder = os.path.join(tmp, name)
            make_hf_random.main([arch, folder] + flags)
            rng = np.random.default_rng(len(name))
            vocab = {"gpt2": 101, "qwen2": 97, "llama": 89}[arch]
            ids = [int(x) for x in rng.integers(0, vocab, 20)]
            tokens = ",".join(str(x) for x in ids)
            cfg, t = hf_folder.load(folder)
            t = hf_folder.strip_prefix(t, "transformer." if arch == "gpt2" else "model.")
            want = ref.forward(cfg, t, ids).numpy().astype(np.float32).ravel()
            gguf = os.path.join(tmp, name + ".gguf")
            back = os.path.join(tmp, name + "-back")
            run([cli, "convert", folder, gguf, "--to", "gguf", "--no-tokenizer", "--dtype", "f32"])
            run([cli, "convert", gguf, back, "--to", "hf", "--no-tokenizer", "--dtype", "f32"])
            for label, model, mode in [("HF", folder, "prefill"), ("HF decode", folder, "decode"),
                                       ("GGUF", gguf, "prefill"), ("GGUF -> HF", back, "prefill")]:
                got = c_logits(tools, model, tokens, os.path.join(tmp, name + ".c"), mode)
                d = float(np.max(np.abs(got - want))) if got.shape == want.shape else float("inf")
                ok = d <= TOL
                failures += not ok
                print("%-4s %-22s %-10s max |diff| %.3g (logit range %.2f)" % ("ok" if ok else "FAIL", name, label, d,
                      float(np.max(np.abs(want)))))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
