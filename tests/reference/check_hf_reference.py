#!/usr/bin/python3
"""headroom vs the independent PyTorch references on random-weight HF
folders (GPT-2, Qwen2, Llama with GQA + llama3 RoPE scaling), each read
directly and after conversion HF -> GGUF -> HF with `headroom convert`.
The folder's logits must also equal those of its f32 GGUF (the weights
dequantized by the converter) bit for bit: bf16 / f16 / int8 matrices are
computed in their dtype (GPT-2's Conv1D ones transposed in it), each
weight converted exactly on the fly.

Also `headroom gqa` of Qwen2 folders (K / V / their biases) in f32 and
bf16: the reference merges the weights itself as the GQA paper defines
it (each group of consecutive KV heads replaced by the mean of its K and V
rows and biases; for bf16 the mean of the bf16 values taken in f32, as
headroom sums, then rounded to bf16 by torch; the merged biases too in
the HF folder, while a GGUF holds vectors as f32) and runs qwen2_ref with
the merged KV head count; the GGUF and the --hf folder gqa writes must
give its logits.

Env: HR_CLI (headroom), HR_TOOLS_DIR (hr_logits), HR_SOURCE_DIR.
Exit status 1 when any logits differ by more than TOL.
"""

import os
import sys
import tempfile

import numpy as np
import torch

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
    ("gpt2-bf16-prefix", "gpt2", ["--dtype", "bf16", "--seed", "19"], gpt2_ref),
    ("qwen2-bf16-sharded", "qwen2", ["--dtype", "bf16", "--shards", "2", "--seed", "3"], qwen2_ref),
    ("llama-gqa-llama3rope", "llama", ["--dtype", "f32", "--seed", "5"], qwen2_ref),
    # compressed-tensors per-channel int8 (llama: down_proj rows of 80 are read as f32)
    ("llama-int8-channel", "llama", ["--dtype", "int8", "--seed", "9"], qwen2_ref),
    ("qwen2-int8-sharded", "qwen2", ["--dtype", "int8", "--shards", "3", "--seed", "11"], qwen2_ref),
]


GQA_CASES = [
    # name, generator flags, KV heads after
    ("qwen2-gqa-f32", ["--dtype", "f32", "--seed", "13"], 1),
    ("qwen2-gqa-bf16", ["--dtype", "bf16", "--seed", "17"], 1),
]

run = refcheck.run


def merged_kv(cfg, t, n_kv, bf16, bias_bf16):
    """t with each layer's k/v_proj weight and bias merged to n_kv heads:
    group j = KV heads [j*g, (j+1)*g); rows (and bias entries) averaged
    head by head (the rotate-half order inside a head is the same for
    every head, so row i of the mean head is the mean of the heads' row i).
    bias_bf16: the merged biases rounded to bf16 too (an HF folder holds
    them in the weights' dtype; a GGUF holds every vector as f32)."""
    H, kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    hd = cfg.get("head_dim") or cfg["hidden_size"] // H
    g = kv // n_kv
    out = dict(t)
    for name, a in t.items():
        if not (".k_proj." in name or ".v_proj." in name):
            continue
        x = a.reshape(n_kv, g, hd, -1)
        if bf16:  # f32 sum in head order of value * (n_kv / kv), then bf16 (vectors: bias_bf16)
            acc = torch.zeros(n_kv, hd, x.shape[-1], dtype=torch.float32)
            for i in range(g):
                acc = acc + x[:, i].to(torch.float32) * torch.tensor(n_kv / kv, dtype=torch.float32)
            m = acc.to(torch.bfloat16 if a.dim() == 2 or bias_bf16 else torch.float32).to(torch.float64)
        else:
            m = x.mean(1)
        out[name] = m.reshape(n_kv * hd, *a.shape[1:]) if a.dim() == 2 else m.reshape(n_kv * hd)
    return out


def check_gqa(cli, tools, tmp):
    failures = 0
    for name, flags, n_kv in GQA_CASES:
        folder = os.path.join(tmp, name)
        make_hf_random.main(["qwen2", folder] + flags)
        cfg, t = hf_folder.load(folder)
        t = hf_folder.strip_prefix(t, "model.")
        biases = sum(1 for k in t if k.endswith("k_proj.bias") or k.endswith("v_proj.bias"))
        cfg2 = dict(cfg, num_key_value_heads=n_kv)
        ids = [int(x) for x in np.random.default_rng(len(name)).integers(0, 97, 20)]
        tokens = ",".join(str(x) for x in ids)
        gguf, hf = os.path.join(tmp, name + ".gguf"), os.path.join(tmp, name + "-hf")
        run([cli, "gqa", folder, "--kv-heads", str(n_kv), "-o", gguf, "--hf", hf, "-q"])
        _, th = hf_folder.load(hf)
        hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        nkv = th["model.layers.0.self_attn.k_proj.weight"].shape[0] // hd
        for label, model, bias_bf16 in [("GGUF", gguf, False), ("--hf folder", hf, True)]:
            merged = merged_kv(cfg, t, n_kv, "bf16" in flags, bias_bf16)
            want = qwen2_ref.forward(cfg2, merged, ids).numpy().astype(np.float32).ravel()
            got = c_logits(tools, model, tokens, os.path.join(tmp, name + ".c"))
            d = float(np.max(np.abs(got - want))) if got.shape == want.shape else float("inf")
            ok = d <= TOL and biases > 0 and nkv == n_kv
            failures += not ok
            print("%-4s %-22s gqa %-11s %d K/V biases, %d KV heads written; max |diff| %.3g (logit range %.2f)"
                  % ("ok" if ok else "FAIL", name, label, biases, nkv, d, float(np.max(np.abs(want)))))
    return failures


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
            got_by = {}
            for label, model, mode in [("HF", folder, "prefill"), ("HF decode", folder, "decode"),
                                       ("GGUF", gguf, "prefill"), ("GGUF -> HF", back, "prefill")]:
                got = got_by[label] = c_logits(tools, model, tokens, os.path.join(tmp, name + ".c"), mode)
                d = float(np.max(np.abs(got - want))) if got.shape == want.shape else float("inf")
                ok = d <= TOL
                failures += not ok
                print("%-4s %-22s %-10s max |diff| %.3g (logit range %.2f)" % ("ok" if ok else "FAIL", name, label, d,
                      float(np.max(np.abs(want)))))
            same = got_by["HF"].tobytes() == got_by["GGUF"].tobytes()
            failures += not same
            print("%-4s %-22s HF = its f32 GGUF bit for bit: %d of %d logits differ" % (
                "ok" if same else "FAIL", name, int(np.sum(got_by["HF"] != got_by["GGUF"])), got_by["HF"].size))
        failures += check_gqa(cli, tools, tmp)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
