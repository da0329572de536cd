#!/usr/bin/python3
"""Independent PyTorch reference of the GPT-2 forward pass (float64),
written from the architecture's definition (Radford et al. 2019 and
transformers' GPT2 checkpoint layout), not from headroom's C code:

  x = wte[t] + wpe[pos]
  per layer:
    a = LayerNorm(x; ln_1)
    q, k, v = split(a @ c_attn.W + c_attn.b)        Conv1D: W is (in, out)
    x = x + (causal_softmax(q k^T / sqrt(hd)) v) @ c_proj.W + c_proj.b
    m = LayerNorm(x; ln_2)
    x = x + gelu_tanh(m @ c_fc.W + c_fc.b) @ mlp.c_proj.W + mlp.c_proj.b
  logits = LayerNorm(x; ln_f) @ wte^T   (lm_head when untied)
gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  ("gelu_new")

CLI: gpt2_ref.py FOLDER --tokens 1,2,3 --out FILE   # (n, vocab) float32 raw
"""

import math
import sys

import torch

import hf_folder


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def forward(cfg, t, tokens):
    d, H, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    hd = d // H
    n = len(tokens)
    x = t["wte.weight"][tokens] + t["wpe.weight"][:n]
    mask = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
    for l in range(L):
        p = "h.%d." % l
        a = layer_norm(x, t[p + "ln_1.weight"], t[p + "ln_1.bias"], eps)
        qkv = a @ t[p + "attn.c_attn.weight"] + t[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(d, dim=-1)
        q, k, v = (z.reshape(n, H, hd).transpose(0, 1) for z in (q, k, v))
        s = q @ k.transpose(1, 2) / math.sqrt(hd)
        s = s.masked_fill(mask, float("-inf"))
        o = (torch.softmax(s, -1) @ v).transpose(0, 1).reshape(n, d)
        x = x + o @ t[p + "attn.c_proj.weight"] + t[p + "attn.c_proj.bias"]
        m = layer_norm(x, t[p + "ln_2.weight"], t[p + "ln_2.bias"], eps)
        h = gelu_tanh(m @ t[p + "mlp.c_fc.weight"] + t[p + "mlp.c_fc.bias"])
        x = x + h @ t[p + "mlp.c_proj.weight"] + t[p + "mlp.c_proj.bias"]
    x = layer_norm(x, t["ln_f.weight"], t["ln_f.bias"], eps)
    head = t["wte.weight"] if cfg.get("tie_word_embeddings", True) else t["lm_head.weight"]
    return x @ head.T


def main():
    return hf_folder.reference_main(forward, "transformer.")


if __name__ == "__main__":
    sys.exit(main())
