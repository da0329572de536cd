#!/usr/bin/python3
"""Straightforward PyTorch activation patching of every head's output, for
comparison with `headroom patch --what heads` (same weights, pairs,
threads, float32).

All pairs (equal lengths) go through the model as one batch, as a
TransformerLens user would run them: one clean and one corrupt forward
recording every head's output (before W_o), then for every (layer, head)
one full forward of the corrupt batch with that head's output replaced by
the clean one; the metric is the logit difference (answer - wrong) at the
last position, normalised as headroom does: (mean patched - mean corrupt)
/ (mean clean - mean corrupt). The classifier runs on the last position
only (what the metric reads).

usage: bench_patch.py MODEL.bin --pairs FILE.jsonl (clean_ids, corrupt_ids,
       answer_id, wrong_id) [--threads T] [--batch B] [--every K] [--out OUT.json]
Prints the time in seconds on a "RESULT" line; OUT.json holds the
(layers, heads) matrix (cells not run: null) for checking against
headroom's. --every K patches only every K-th head (in layer-major order)
and reports the measured time and the time of all heads, scaled from the
patched forwards it ran (each costs the same: one full forward of the
batch); the clean and corrupt forwards are counted once.
"""

import argparse
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import llama_ref  # noqa: E402


class Batched:
    def __init__(self, path):
        self.c, self.w = llama_ref.load_llama2c(path, torch.float32)
        c = self.c
        inv = c.rope_theta ** (-torch.arange(0, c.head_dim, 2, dtype=torch.float64) / c.head_dim)
        ang = torch.arange(c.seq_len, dtype=torch.float64)[:, None] * inv[None, :]
        self.cos, self.sin = torch.cos(ang).float(), torch.sin(ang).float()

    def rope(self, x):
        """x (B, T, heads, hd), interleaved pairs (llama2.c layout)."""
        T = x.shape[1]
        cos, sin = self.cos[:T][None, :, None, :], self.sin[:T][None, :, None, :]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        out = torch.empty_like(x)
        out[..., 0::2] = x0 * cos - x1 * sin
        out[..., 1::2] = x0 * sin + x1 * cos
        return out

    def forward(self, tokens, record=None, patch=None):
        """tokens (B, T); record: list to append each layer's head outputs
        (B, T, H, hd); patch: (layer, head, values (B, T, hd)). Returns the
        last position's logits (B, vocab)."""
        c, w = self.c, self.w
        B, T = tokens.shape
        H, KV, hd = c.n_heads, c.n_kv_heads, c.head_dim
        x = w["tok_emb"][tokens]
        mask = torch.triu(torch.full((T, T), float("-inf")), 1)
        for l in range(c.n_layers):
            h = llama_ref.rmsnorm(x, w["rms_att"][l], c.norm_eps)
            q = self.rope((h @ w["wq"][l].t()).view(B, T, H, hd))
            k = self.rope((h @ w["wk"][l].t()).view(B, T, KV, hd))
            v = (h @ w["wv"][l].t()).view(B, T, KV, hd)
            k, v = k.repeat_interleave(H // KV, dim=2), v.repeat_interleave(H // KV, dim=2)
            s = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hd) + mask
            o = torch.einsum("bhqk,bkhd->bqhd", torch.softmax(s, -1), v)  # (B, T, H, hd)
            if record is not None:
                record.append(o.clone())
            if patch is not None and patch[0] == l:
                o[:, :, patch[1]] = patch[2]
            x = x + o.reshape(B, T, H * hd) @ w["wo"][l].t()
            h = llama_ref.rmsnorm(x, w["rms_ffn"][l], c.norm_eps)
            x = x + (torch.nn.functional.silu(h @ w["w1"][l].t()) * (h @ w["w3"][l].t())) @ w["w2"][l].t()
        x = llama_ref.rmsnorm(x[:, -1], w["rms_final"], c.norm_eps)
        return x @ w["wcls"].t()


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=0, help="pairs per forward (0 = all)")
    ap.add_argument("--every", type=int, default=1, help="patch every K-th head only (time scaled to all)")
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    pairs = [json.loads(line) for line in open(a.pairs) if line.strip()]
    m = Batched(a.model)
    c = m.c
    bs = a.batch or len(pairs)
    sums = torch.zeros(c.n_layers, c.n_heads, dtype=torch.float64)
    clean_sum = corrupt_sum = 0.0
    cells = [(l, h) for l in range(c.n_layers) for h in range(c.n_heads)][::a.every]
    base_s = base_c = 0.0
    with torch.inference_mode():
        t0, c0 = time.perf_counter(), time.process_time()
        for b0 in range(0, len(pairs), bs):
            chunk = pairs[b0:b0 + bs]
            clean = torch.tensor([p["clean_ids"] for p in chunk])
            corrupt = torch.tensor([p["corrupt_ids"] for p in chunk])
            ans = torch.tensor([p["answer_id"] for p in chunk])
            wrong = torch.tensor([p["wrong_id"] for p in chunk])
            rows = torch.arange(len(chunk))

            def ld(z):
                return (z[rows, ans] - z[rows, wrong]).double().sum().item()
            cache = []
            tb, cb = time.perf_counter(), time.process_time()
            clean_sum += ld(m.forward(clean, record=cache))
            corrupt_sum += ld(m.forward(corrupt))
            base_s += time.perf_counter() - tb
            base_c += time.process_time() - cb
            for l, h in cells:
                sums[l, h] += ld(m.forward(corrupt, patch=(l, h, cache[l][:, :, h])))
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
    n = len(pairs)
    cm, rm = clean_sum / n, corrupt_sum / n
    vals = [[None] * c.n_heads for _ in range(c.n_layers)]
    for l, h in cells:
        vals[l][h] = float((sums[l, h] / n - rm) / (cm - rm))
    scale = (c.n_layers * c.n_heads) / len(cells)
    full, full_c = base_s + (dt - base_s) * scale, base_c + (dc - base_c) * scale
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"clean": cm, "corrupt": rm, "heads": vals}, f)
    print("RESULT torch_patch_heads pairs=%d tokens=%d threads=%d batch=%d heads_run=%d seconds=%.3f "
          "seconds_all_heads=%.3f cpu=%.3f cpu_all_heads=%.3f"
          % (n, len(pairs[0]["clean_ids"]), a.threads, bs, len(cells), dt, full, dc, full_c))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
