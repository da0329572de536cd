#!/usr/bin/python3
"""Independent float64 PyTorch reference of headroom's training loss, for
gradients by autograd. Written from the architectures' definitions (the same
formulas as llama_ref.py, qwen2_ref.py, gpt2_ref.py, whose helpers it uses),
not from headroom's C code:

  x = tok_embd[t] (+ pos_embd[pos], GPT-2)
  per layer:
    a = norm(x)                         RMSNorm (Llama, Qwen2) or LayerNorm (GPT-2)
    q, k, v = lin_q(a), lin_k(a), lin_v(a)
    q, k = rope(q), rope(k)             interleaved pairs (x[2i], x[2i+1]) rotated by
                                        pos * inv_freq[i] (Llama-3 scaling rescales inv_freq);
                                        not for GPT-2 (learned positions)
    o_h = causal_softmax(q_h k_g^T / sqrt(hd)) v_g,  g = h // (H / H_kv)   (GQA)
    x = x + lin_o(concat_h(gate_h * o_h))
    m = norm(x)
    u = silu(lin_gate(m)) * lin_up(m)   (SwiGLU)   or   gelu_tanh(lin_up(m))   (GPT-2)
    x = x + lin_down(neuron_gate * u)
  logits = norm(x) W_cls^T              W_cls = tok_embd when tied
  loss = mean over t < n-1 of -log softmax(logits_t)[tokens[t+1]]
with lin(x) = x W^T + b + s (x A^T) B^T (bias and LoRA adapter when present,
s = alpha / r). Weights are taken in headroom's layout (Q/K rows
interleaved), as the dump tool writes them, so the interleaved RoPE applies.
"""

import math

import torch

import gpt2_ref
import qwen2_ref


def rope_interleaved(x, cos, sin):
    """x (n, heads, hd): rotate pairs (x[2i], x[2i+1]) by the angles of cos/sin (n, 1, hd/2)."""
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)
    return out.flatten(-2)


class Model:
    """cfg: the dump's JSON; T: name -> float64 tensor (leaf tensors that
    require grad). gates/lora False: gates at 1 and no adapters."""

    def __init__(self, cfg, T, gates=True, lora=True):
        self.cfg, self.T, self.gates, self.lora = cfg, T, gates, lora
        hd = cfg["head_dim"]
        hf = {"rope_theta": cfg["rope_theta"], "rope_scaling": cfg["rope_scaling"]}
        self.inv_freq = qwen2_ref.inv_freqs(hf, hd)

    def norm(self, x, prefix):
        c, T = self.cfg, self.T
        if c["norm"] == "layer":
            return gpt2_ref.layer_norm(x, T[prefix + ".weight"], T[prefix + ".bias"], c["norm_eps"])
        return qwen2_ref.rms_norm(x, T[prefix + ".weight"], c["norm_eps"])

    def lin(self, x, prefix):
        T = self.T
        y = x @ T[prefix + ".weight"].T
        if prefix + ".bias" in T:
            y = y + T[prefix + ".bias"]
        if self.lora and prefix + ".lora_a" in T:
            y = y + self.cfg["lora_scale"] * ((x @ T[prefix + ".lora_a"].T) @ T[prefix + ".lora_b"].T)
        return y

    def loss(self, tokens, x0_hook=None):
        c, T = self.cfg, self.T
        n, hd = len(tokens), c["head_dim"]
        x = T["token_embd.weight"][torch.as_tensor(tokens)]
        if c["pos"] == "learned":
            x = x + T["position_embd.weight"][:n]
        if x0_hook:
            x = x0_hook(x)
        ang = torch.arange(n, dtype=torch.float64)[:, None] * self.inv_freq[None, :]
        cos, sin = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
        mask = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
        for l in range(c["n_layers"]):
            p = "blk.%d." % l
            H, Hkv, ff = c["n_head"][l], c["n_head_kv"][l], c["n_ff"][l]
            if H > 0:
                a = self.norm(x, p + "attn_norm")
                q = self.lin(a, p + "attn_q").reshape(n, H, hd)
                k = self.lin(a, p + "attn_k").reshape(n, Hkv, hd)
                v = self.lin(a, p + "attn_v").reshape(n, Hkv, hd)
                if c["pos"] == "rope":
                    q, k = rope_interleaved(q, cos, sin), rope_interleaved(k, cos, sin)
                rep = H // Hkv
                k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
                s = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(hd)
                o = torch.einsum("hqk,khd->qhd", torch.softmax(s.masked_fill(mask, float("-inf")), -1), v)
                if self.gates:
                    o = o * T[p + "head_gate"].reshape(1, H, 1)
                x = x + self.lin(o.reshape(n, H * hd), p + "attn_output")
            if ff > 0:
                m = self.norm(x, p + "ffn_norm")
                if c["mlp"] == "swiglu":
                    u = torch.nn.functional.silu(self.lin(m, p + "ffn_gate")) * self.lin(m, p + "ffn_up")
                else:
                    u = gpt2_ref.gelu_tanh(self.lin(m, p + "ffn_up"))
                if self.gates:
                    u = u * T[p + "neuron_gate"].reshape(1, ff)
                x = x + self.lin(u, p + "ffn_down")
        x = self.norm(x, "output_norm")
        cls = T["token_embd.weight"] if c["tied"] else T["output.weight"]
        logits = x @ cls.T
        target = torch.as_tensor(tokens[1:])
        return torch.nn.functional.cross_entropy(logits[:-1], target)
