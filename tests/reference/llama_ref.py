#!/usr/bin/python3
"""Independent PyTorch reference of the Llama forward pass.

Written from the architecture definition, not from headroom's C code, so
that agreement between the two is evidence that both are right:

  x = token_embedding[t]
  per layer:
    h = x + Wo · attn(rope(Wq·n), rope(Wk·n), Wv·n),   n = rmsnorm(x, rms_att)
    x = h + W2 · (silu(W1·m) * (W3·m)),                m = rmsnorm(h, rms_ffn)
  logits = Wcls · rmsnorm(x, rms_final)

RoPE rotates interleaved pairs (x[2i], x[2i+1]) by pos * theta^(-2i/hd), the
layout llama2.c and GGUF store Q/K rows in. Grouped-query attention shares KV
head h // (n_heads / n_kv_heads) among query heads. For head-level studies a
model can carry per-head gates (multiplying each head's output before Wo;
gates[l][h] = 0 removes the head) and an observer that sees every layer's
attention probabilities and head outputs (tests/reference/heads_ref.py). Reads llama2.c v0 float32
files (layout documented in include/headroom/model.h); the stored freq_cis
tables are ignored on purpose: frequencies are recomputed from theta.

CLI:
  llama_ref.py info MODEL
  llama_ref.py logits MODEL --tokens 1,2,3 [--mode full|decode]
                      [--dtype f32|f64] --out FILE   # (n, vocab) float32 raw
"""

import argparse
import math
import os
import sys

import numpy as np
import torch

HEADER_INTS = 7


class Config:
    def __init__(self, dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len, tied):
        self.dim = dim
        self.hidden = hidden
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.n_kv_heads = n_kv_heads
        self.vocab = vocab
        self.seq_len = seq_len
        self.tied = tied
        self.head_dim = dim // n_heads
        self.rope_theta = 10000.0
        self.norm_eps = 1e-5

    def __repr__(self):
        return ("dim=%d hidden=%d layers=%d heads=%d kv_heads=%d vocab=%d seq=%d %s"
                % (self.dim, self.hidden, self.n_layers, self.n_heads, self.n_kv_heads,
                   self.vocab, self.seq_len, "tied" if self.tied else "untied"))


def _section_sizes(c):
    """(name, shape) of every f32 array after the header, in file order."""
    L, d, hd = c.n_layers, c.dim, c.head_dim
    qd, kvd = c.n_heads * hd, c.n_kv_heads * hd
    out = [
        ("tok_emb", (c.vocab, d)),
        ("rms_att", (L, d)),
        ("wq", (L, qd, d)),
        ("wk", (L, kvd, d)),
        ("wv", (L, kvd, d)),
        ("wo", (L, d, qd)),
        ("rms_ffn", (L, d)),
        ("w1", (L, c.hidden, d)),
        ("w2", (L, d, c.hidden)),
        ("w3", (L, c.hidden, d)),
        ("rms_final", (d,)),
        ("freq_cis_real", (c.seq_len, hd // 2)),
        ("freq_cis_imag", (c.seq_len, hd // 2)),
    ]
    if not c.tied:
        out.append(("wcls", (c.vocab, d)))
    return out


def load_llama2c(path, dtype=torch.float32):
    """Returns (Config, dict of torch tensors) from a llama2.c v0 file."""
    size = os.path.getsize(path)
    hdr = np.fromfile(path, dtype="<i4", count=HEADER_INTS)
    if len(hdr) != HEADER_INTS:
        raise ValueError("%s: too short for a llama2.c header" % path)
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq = (int(v) for v in hdr)
    if min(dim, hidden, n_layers, n_heads, n_kv, seq) <= 0 or vocab == 0:
        raise ValueError("%s: bad header %s" % (path, hdr.tolist()))
    if dim % n_heads or n_heads % n_kv or (dim // n_heads) % 2:
        raise ValueError("%s: inconsistent head counts %s" % (path, hdr.tolist()))
    c = Config(dim, hidden, n_layers, n_heads, n_kv, abs(vocab), seq, vocab > 0)
    sections = _section_sizes(c)
    n_floats = sum(int(np.prod(s)) for _, s in sections)
    if size != 4 * (HEADER_INTS + n_floats):
        raise ValueError("%s: size %d, expected %d for %r"
                         % (path, size, 4 * (HEADER_INTS + n_floats), c))
    raw = np.memmap(path, dtype="<f4", mode="r", offset=4 * HEADER_INTS, shape=(n_floats,))
    w, off = {}, 0
    for name, shape in sections:
        n = int(np.prod(shape))
        w[name] = torch.from_numpy(np.array(raw[off:off + n]).reshape(shape)).to(dtype)
        off += n
    if c.tied:
        w["wcls"] = w["tok_emb"]
    return c, w


def rmsnorm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def linear(x, weight, use_mv):
    """x (n, in) times weight (out, in)^T; a matrix-vector product for n == 1
    when use_mv (what a fair single-token decode would call)."""
    if use_mv and x.shape[0] == 1:
        return torch.mv(weight, x[0]).unsqueeze(0)
    return x @ weight.t()


class Llama:
    def __init__(self, path, dtype=torch.float32, use_mv=False):
        self.cfg, self.w = load_llama2c(path, dtype)
        self.dtype = dtype
        self.use_mv = use_mv
        c = self.cfg
        hd = c.head_dim
        # Angles in float64 so the reference is not limited by f32 pos*freq.
        inv_freq = c.rope_theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
        ang = torch.arange(c.seq_len, dtype=torch.float64)[:, None] * inv_freq[None, :]
        self.cos = torch.cos(ang).to(dtype)  # (seq, hd/2)
        self.sin = torch.sin(ang).to(dtype)  # (seq, hd/2)
        self.gates = None     # (n_layers, n_heads) multipliers of head outputs, or None
        self.observer = None  # fn(layer, pos0, probs (H, n, T), out (n, H, hd) before gates)
        self.reset()

    def reset(self, n_ctx=None):
        c = self.cfg
        n_ctx = n_ctx or c.seq_len
        shape = (c.n_layers, n_ctx, c.n_kv_heads, c.head_dim)
        self.k_cache = torch.zeros(shape, dtype=self.dtype)
        self.v_cache = torch.zeros(shape, dtype=self.dtype)
        self.n_past = 0

    def rope(self, x, pos0):
        """x (n, heads, hd): rotate pair (x[2i], x[2i+1]) at positions pos0.."""
        n = x.shape[0]
        cos = self.cos[pos0:pos0 + n][:, None, :]  # (n, 1, hd/2)
        sin = self.sin[pos0:pos0 + n][:, None, :]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        out = torch.empty_like(x)
        out[..., 0::2] = x0 * cos - x1 * sin
        out[..., 1::2] = x0 * sin + x1 * cos
        return out

    def attention(self, layer, q, k, v, pos0):
        """q (n, H, hd), k/v (n, KV, hd) of the new tokens; returns (n, H*hd)."""
        c, n = self.cfg, q.shape[0]
        end = pos0 + n
        self.k_cache[layer, pos0:end] = k
        self.v_cache[layer, pos0:end] = v
        group = c.n_heads // c.n_kv_heads
        keys = self.k_cache[layer, :end].repeat_interleave(group, dim=1)   # (T, H, hd)
        vals = self.v_cache[layer, :end].repeat_interleave(group, dim=1)   # (T, H, hd)
        scores = torch.einsum("qhd,khd->hqk", q, keys) / math.sqrt(c.head_dim)  # (H, n, T)
        if n > 1:
            qpos = torch.arange(pos0, end)[:, None]
            kpos = torch.arange(end)[None, :]
            scores = scores.masked_fill(kpos > qpos, float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        out = torch.einsum("hqk,khd->qhd", probs, vals)  # (n, H, hd)
        if self.observer is not None:
            self.observer(layer, pos0, probs, out)
        if self.gates is not None:
            out = out * self.gates[layer][None, :, None]
        return out.reshape(n, c.n_heads * c.head_dim)

    def forward(self, tokens, all_logits=True):
        """Appends tokens at position n_past; returns (n, vocab) logits, or
        (1, vocab) for the last token only."""
        c, w, mv = self.cfg, self.w, self.use_mv
        n = len(tokens)
        pos0 = self.n_past
        if pos0 + n > self.k_cache.shape[1]:
            raise ValueError("context overflow: %d + %d > %d" % (pos0, n, self.k_cache.shape[1]))
        hd = c.head_dim
        x = w["tok_emb"][torch.as_tensor(tokens, dtype=torch.long)]  # (n, dim)
        for l in range(c.n_layers):
            h = rmsnorm(x, w["rms_att"][l], c.norm_eps)
            q = linear(h, w["wq"][l], mv).view(n, c.n_heads, hd)
            k = linear(h, w["wk"][l], mv).view(n, c.n_kv_heads, hd)
            v = linear(h, w["wv"][l], mv).view(n, c.n_kv_heads, hd)
            att = self.attention(l, self.rope(q, pos0), self.rope(k, pos0), v, pos0)
            x = x + linear(att, w["wo"][l], mv)
            h = rmsnorm(x, w["rms_ffn"][l], c.norm_eps)
            gate = torch.nn.functional.silu(linear(h, w["w1"][l], mv))
            x = x + linear(gate * linear(h, w["w3"][l], mv), w["w2"][l], mv)
        self.n_past = pos0 + n
        if not all_logits:
            x = x[-1:]
        x = rmsnorm(x, w["rms_final"], c.norm_eps)
        return linear(x, w["wcls"], mv)

    def logits(self, tokens, mode="full"):
        """(n, vocab) logits of a fresh sequence: one causal pass over all
        tokens (full) or one token at a time through the KV cache (decode)."""
        self.reset()
        with torch.inference_mode():
            if mode == "full":
                return self.forward(tokens, all_logits=True)
            rows = [self.forward([t], all_logits=True) for t in tokens]
            return torch.cat(rows, dim=0)


def parse_tokens(text):
    return [int(t) for t in text.replace(" ", "").split(",") if t != ""]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_info = sub.add_parser("info", help="print the model configuration")
    p_info.add_argument("model")
    p_log = sub.add_parser("logits", help="write (n, vocab) float32 logits")
    p_log.add_argument("model")
    p_log.add_argument("--tokens", required=True, help="comma-separated token ids")
    p_log.add_argument("--mode", choices=["full", "decode"], default="full")
    p_log.add_argument("--dtype", choices=["f32", "f64"], default="f32")
    p_log.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    if args.cmd == "info":
        cfg, _ = load_llama2c(args.model)
        print(cfg)
        return 0
    dtype = torch.float64 if args.dtype == "f64" else torch.float32
    model = Llama(args.model, dtype=dtype)
    tokens = parse_tokens(args.tokens)
    if not tokens or min(tokens) < 0 or max(tokens) >= model.cfg.vocab:
        print("llama_ref: token ids must be in [0, %d)" % model.cfg.vocab, file=sys.stderr)
        return 2
    out = model.logits(tokens, args.mode).to(torch.float32).numpy()
    tmp = "%s.tmp.%d" % (args.out, os.getpid())
    out.tofile(tmp)
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
