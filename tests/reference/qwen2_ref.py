#!/usr/bin/python3
"""Independent PyTorch reference of the Qwen2 / Llama forward pass (float64),
written from the architectures' definitions and transformers' checkpoint
layout, not from headroom's C code:

  x = embed_tokens[t]
  per layer:
    a = RMSNorm(x; input_layernorm)
    q = a Wq^T (+ bq), k = a Wk^T (+ bk), v = a Wv^T (+ bv)   (biases: qwen2)
    q, k = rope(q), rope(k)     rotate-half: pairs (i, i + hd/2) per head,
                                angle pos * inv_freq[i], inv_freq = theta^(-2i/hd)
                                (llama3 rope_scaling rescales inv_freq)
    grouped-query attention: query head h reads KV head h // (H / H_kv)
    x = x + causal_softmax(q k^T / sqrt(hd)) v Wo^T
    x = x + Wdown (silu(Wgate m) * Wup m),  m = RMSNorm(x; post_attention_layernorm)
  logits = RMSNorm(x; norm) lm_head^T (embed_tokens when tied)
RMSNorm(x) = x / sqrt(mean(x^2) + eps) * w.

CLI: qwen2_ref.py FOLDER --tokens 1,2,3 --out FILE   # (n, vocab) float32 raw
"""

import math
import sys

import torch

import hf_folder


def rms_norm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def inv_freqs(cfg, hd):
    theta = cfg.get("rope_theta", 10000.0)
    f = theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type", rs.get("type")) == "llama3":
        # Llama 3.1: keep high frequencies, divide low ones by factor,
        # interpolate smoothly in between (by wavelength vs original context).
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        orig = rs["original_max_position_embeddings"]
        out = []
        for fi in f.tolist():
            wl = 2 * math.pi / fi
            if wl < orig / hi:
                out.append(fi)
            elif wl > orig / lo:
                out.append(fi / factor)
            else:
                s = (orig / wl - lo) / (hi - lo)
                out.append((1 - s) * fi / factor + s * fi)
        f = torch.tensor(out, dtype=torch.float64)
    return f


def rope(x, cos, sin):
    # x: (H, n, hd); rotate_half pairs element i with i + hd/2.
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    rot = torch.cat((-x2, x1), -1)
    return x * cos + rot * sin


def forward(cfg, t, tokens):
    d, H, L = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    Hkv = cfg.get("num_key_value_heads", H)
    hd = cfg.get("head_dim") or d // H
    eps = cfg.get("rms_norm_eps", 1e-6)
    n = len(tokens)
    f = inv_freqs(cfg, hd)
    ang = torch.arange(n, dtype=torch.float64)[:, None] * f[None, :]
    ang = torch.cat((ang, ang), -1)
    cos, sin = torch.cos(ang), torch.sin(ang)
    mask = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
    x = t["embed_tokens.weight"][tokens]
    for l in range(L):
        p = "layers.%d." % l
        a = rms_norm(x, t[p + "input_layernorm.weight"], eps)

        def proj(name):
            y = a @ t[p + "self_attn.%s.weight" % name].T
            b = t.get(p + "self_attn.%s.bias" % name)
            return y + b if b is not None else y

        q = proj("q_proj").reshape(n, H, hd).transpose(0, 1)
        k = proj("k_proj").reshape(n, Hkv, hd).transpose(0, 1)
        v = proj("v_proj").reshape(n, Hkv, hd).transpose(0, 1)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        rep = H // Hkv
        k, v = k.repeat_interleave(rep, 0), v.repeat_interleave(rep, 0)
        s = (q @ k.transpose(1, 2) / math.sqrt(hd)).masked_fill(mask, float("-inf"))
        o = (torch.softmax(s, -1) @ v).transpose(0, 1).reshape(n, H * hd)
        x = x + o @ t[p + "self_attn.o_proj.weight"].T
        m = rms_norm(x, t[p + "post_attention_layernorm.weight"], eps)
        g = m @ t[p + "mlp.gate_proj.weight"].T
        u = m @ t[p + "mlp.up_proj.weight"].T
        x = x + (g * torch.sigmoid(g) * u) @ t[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, t["norm.weight"], eps)
    head = t["embed_tokens.weight"] if cfg.get("tie_word_embeddings", False) else t["lm_head.weight"]
    return x @ head.T


def main():
    return hf_folder.reference_main(forward, "model.")


if __name__ == "__main__":
    sys.exit(main())
