#!/usr/bin/python3
"""Independent PyTorch reference (float64) of headroom's circuit studies,
written from the definitions in include/headroom/circuits.h, not from the
C code, and computed the plain way: every intervention is a whole forward
pass from the first token with the intervened activations overwritten
(no reuse of earlier layers, no position tricks).

Model: a component-level forward of the GPT-2, Qwen2 and Llama
architectures read from Hugging Face folders (hf_folder.py), with the
layer pieces of gpt2_ref.py / qwen2_ref.py:
  x = embed (+ learned position)
  per layer l:
    q, k, v = projections of norm1(x) (+ biases)           hook points q / k / v (before RoPE)
    o_h = softmax(q_h k^T / sqrt(hd) [knockout: -inf]) v    hook point head (per head, before W_o)
    a = W_o concat(o_h) (+ b_o)                             hook point attn
    x = x + a                                               (resid[l] = x before this layer: hook resid)
    m = MLP(norm2(x))                                       hook point mlp
    x = x + m
  logits = W_U norm_f(x)
An intervention maps (point, layer, head) -> a function of the activation
(rows = positions).

Studies (the definitions of circuits.h):
  metric: logit-diff z[a] - z[w], prob softmax(z)[a], kl -KL(p_clean || p)
  normalised: (mean patched - mean corrupt) / (mean clean - mean corrupt)
  positions aligned at the end: column c of npos holds position
  c - (npos - n) of a pair of n tokens
  path: step 1 = base run with senders from the source, every other head
  (and MLP) frozen at the base; record receivers' q / k / v (query head,
  KV head) or MLP output (then frozen); step 2 = base run with the
  receivers' inputs replaced ("logits": step 1's logits)
  knockout: clean run, blocked scores -inf, a row with every key blocked -> 0
  DLA: frozen final-norm scale; lens: residual after each block through
  the final norm and W_U.

CLI: circuits_ref.py FOLDER PAIRS.jsonl OUT.json [--what ...] [--metric M]
     [--direction D] [--path SPEC] [--path-mlps frozen|recomputed]
     [--knockout SPEC]
writes the same structure as headroom's patch.json (the parts compared).
"""

import argparse
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_ref  # noqa: E402
import hf_folder  # noqa: E402
import qwen2_ref  # noqa: E402

NAN = float("nan")


class Model:
    def __init__(self, folder):
        cfg, t = hf_folder.load(folder)
        self.gpt2 = cfg["model_type"] == "gpt2"
        self.t = hf_folder.strip_prefix(t, "transformer." if self.gpt2 else "model.")
        self.cfg = cfg
        if self.gpt2:
            self.d, self.H, self.L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
            self.Hkv, self.hd = self.H, self.d // self.H
            self.eps = cfg.get("layer_norm_epsilon", 1e-5)
            self.WU = self.t["wte.weight"] if cfg.get("tie_word_embeddings", True) else self.t["lm_head.weight"]
        else:
            self.d, self.H, self.L = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
            self.Hkv = cfg.get("num_key_value_heads", self.H)
            self.hd = cfg.get("head_dim") or self.d // self.H
            self.eps = cfg.get("rms_norm_eps", 1e-6)
            tied = cfg.get("tie_word_embeddings", False)
            self.WU = self.t["embed_tokens.weight"] if tied else self.t["lm_head.weight"]
        self.V = self.WU.shape[0]

    # -- pieces --
    def norm(self, x, which, l=None):
        t = self.t
        if self.gpt2:
            name = "ln_f" if which == "final" else "h.%d.%s" % (l, "ln_1" if which == "attn" else "ln_2")
            return gpt2_ref.layer_norm(x, t[name + ".weight"], t[name + ".bias"], self.eps)
        name = "norm" if which == "final" else "layers.%d.%s" % (
            l, "input_layernorm" if which == "attn" else "post_attention_layernorm")
        return qwen2_ref.rms_norm(x, t[name + ".weight"], self.eps)

    def qkv(self, a, l):
        """(n, H, hd), (n, Hkv, hd), (n, Hkv, hd) before RoPE."""
        n, t = a.shape[0], self.t
        if self.gpt2:
            p = "h.%d.attn." % l
            qkv = a @ t[p + "c_attn.weight"] + t[p + "c_attn.bias"]
            q, k, v = qkv.split(self.d, dim=-1)
        else:
            p = "layers.%d.self_attn." % l

            def proj(name):
                y = a @ t[p + name + ".weight"].T
                b = t.get(p + name + ".bias")
                return y + b if b is not None else y
            q, k, v = proj("q_proj"), proj("k_proj"), proj("v_proj")
        return (q.reshape(n, self.H, self.hd), k.reshape(n, self.Hkv, self.hd), v.reshape(n, self.Hkv, self.hd))

    def rope(self, x):
        """x (n, heads, hd) -> rotated (HF rotate-half layout)."""
        if self.gpt2:
            return x
        n = x.shape[0]
        f = qwen2_ref.inv_freqs(self.cfg, self.hd)
        ang = torch.arange(n, dtype=torch.float64)[:, None] * f[None, :]
        ang = torch.cat((ang, ang), -1)
        cos, sin = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
        half = self.hd // 2
        rot = torch.cat((-x[..., half:], x[..., :half]), -1)
        return x * cos + rot * sin

    def wo(self, l):
        """(d, H*hd) and bias or None."""
        t = self.t
        if self.gpt2:
            return t["h.%d.attn.c_proj.weight" % l].T, t["h.%d.attn.c_proj.bias" % l]
        return t["layers.%d.self_attn.o_proj.weight" % l], None

    def mlp(self, m, l):
        t = self.t
        if self.gpt2:
            p = "h.%d.mlp." % l
            return gpt2_ref.gelu_tanh(m @ t[p + "c_fc.weight"] + t[p + "c_fc.bias"]) @ t[p + "c_proj.weight"] + t[p + "c_proj.bias"]
        p = "layers.%d.mlp." % l
        g, u = m @ t[p + "gate_proj.weight"].T, m @ t[p + "up_proj.weight"].T
        return (g * torch.sigmoid(g) * u) @ t[p + "down_proj.weight"].T

    def embed(self, tokens):
        ids = torch.tensor(tokens)
        if self.gpt2:
            return self.t["wte.weight"][ids] + self.t["wpe.weight"][: len(tokens)]
        return self.t["embed_tokens.weight"][ids]

    # -- the forward with interventions --
    def run(self, tokens, iv=None, knock=None):
        """iv: {(point, l, h): fn(activation) -> activation}; knock: {(l, h): bool (n, n)}.
        Returns logits (n, V) and the cache {(point, l, h): activation}."""
        iv, knock = iv or {}, knock or {}
        n = len(tokens)
        cache = {}

        def at(point, l, h, x):
            f = iv.get((point, l, h))
            y = f(x.clone()) if f else x
            cache[(point, l, h)] = y.clone()
            return y

        x = self.embed(tokens)
        causal = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
        group = self.H // self.Hkv
        for l in range(self.L):
            x = at("resid", l, -1, x)
            q, k, v = self.qkv(self.norm(x, "attn", l), l)
            q = torch.stack([at("q", l, h, q[:, h]) for h in range(self.H)], 1)
            k = torch.stack([at("k", l, g, k[:, g]) for g in range(self.Hkv)], 1)
            v = torch.stack([at("v", l, g, v[:, g]) for g in range(self.Hkv)], 1)
            q, k = self.rope(q), self.rope(k)
            outs = []
            for h in range(self.H):
                s = (q[:, h] @ k[:, h // group].T) / math.sqrt(self.hd)
                s = s.masked_fill(causal, float("-inf"))
                blocked = knock.get((l, h))
                if blocked is not None:
                    s = s.masked_fill(blocked, float("-inf"))
                full = torch.isinf(s).all(-1)
                p = torch.softmax(s.masked_fill(full[:, None], 0.0), -1).masked_fill(full[:, None], 0.0)
                outs.append(at("head", l, h, p @ v[:, h // group]))
            W, b = self.wo(l)
            a = torch.cat(outs, -1) @ W.T
            if b is not None:
                a = a + b
            a = at("attn", l, -1, a)
            x = x + a
            m = at("mlp", l, -1, self.mlp(self.norm(x, "mlp", l), l))
            x = x + m
        cache[("final", -1, -1)] = x.clone()
        return self.norm(x, "final") @ self.WU.T, cache


def metric(kind, z, a, w, logp_clean):
    if kind == "prob":
        return float(torch.softmax(z, -1)[a])
    if kind == "kl":
        lp = torch.log_softmax(z, -1)
        return -float((logp_clean.exp() * (logp_clean - lp)).sum())
    return float(z[a] - z[w])


def norm_value(m, c, r):
    return (m - r) / (c - r) if c != r else NAN


def parse_heads(s, L, H):
    if s.strip() == "*":
        return None
    out = set()
    for item in s.replace(",", " ").split():
        l, h = item.split(".")
        out |= {(int(l), k) for k in range(H)} if h == "*" else {(int(l), int(h))}
    return out


def parse_receivers(s, H, Hkv):
    out = []
    for w in s.replace(",", " ").split():
        if w == "logits":
            out.append(("logits",))
            continue
        l, rest = w.split(".")
        if rest == "mlp":
            out.append(("mlp", int(l), -1))
            continue
        digits = "".join(ch for ch in rest if ch.isdigit())
        suf = rest[len(digits):] or "qkv"
        h = int(digits)
        for ch in suf:
            r = (ch, int(l), h if ch == "q" else h // (H // Hkv))
            if r not in out:
                out.append(r)
    return out


def parse_positions(s):
    if s.strip() == "*":
        return None
    items = []
    for it in s.replace(",", " ").split():
        if ".." in it:
            a, b = it.split("..")
            items.append((int(a), int(b)))
        else:
            items.append((int(it), int(it)))
    return items


def pos_in(items, p, n):
    if items is None:
        return True
    for a, b in items:
        a, b = (n + a if a < 0 else a), (n + b if b < 0 else b)
        if a <= p <= b:
            return True
    return False


def setter(src):
    return lambda x: src.clone()


def row_setter(src, t):
    def f(x):
        x[t] = src[t]
        return x
    return f


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("pairs")
    ap.add_argument("out")
    ap.add_argument("--what", default="heads")
    ap.add_argument("--metric", default="logit-diff")
    ap.add_argument("--direction", default="denoise")
    ap.add_argument("--path")
    ap.add_argument("--path-mlps", default="frozen")
    ap.add_argument("--knockout")
    a = ap.parse_args(argv)
    M = Model(a.folder)
    L, H, Hkv = M.L, M.H, M.Hkv
    pairs = [json.loads(line) for line in open(a.pairs) if line.strip()]
    what = set(a.what.split(","))
    if "all" in what:
        what = {"heads", "layers", "mlp", "resid", "positions"}
    npos = max(len(p["clean_ids"]) for p in pairs)
    noise = a.direction == "noise"
    S = {k: torch.zeros(L, H) for k in ("heads", "path", "knock", "dla")}
    P = {k: torch.zeros(L * (H if k == "positions" else 1), npos) for k in ("layers", "mlp", "resid", "positions")}
    col_clean, col_corrupt, col_n = torch.zeros(npos), torch.zeros(npos), torch.zeros(npos)
    tot = {"clean": 0.0, "corrupt": 0.0, "dla_total": 0.0, "dla_sum": 0.0, "embed": 0.0, "norm_bias": 0.0}
    dla_mlp, dla_bias = torch.zeros(L), torch.zeros(L)
    lens = {"logit_diff": torch.zeros(L), "prob": torch.zeros(L), "rank": torch.zeros(L)}
    paths = None
    if a.path:
        senders, recv = a.path.split("->")
        sender_set = parse_heads(senders, L, H)
        receivers = parse_receivers(recv, H, Hkv)
    path_single = 0.0
    knock_single = 0.0
    if a.knockout:
        kh, rest = a.knockout.split(":")
        kq, kk = rest.split("->")
        knock_heads, kq, kk = parse_heads(kh, L, H), parse_positions(kq), parse_positions(kk)

    for pr in pairs:
        clean, corrupt = pr["clean_ids"], pr["corrupt_ids"]
        ans, wrong = pr["answer_id"], pr["wrong_id"]
        n = len(clean)
        with torch.no_grad():
            zc, cc = M.run(clean)
            zr, cr = M.run(corrupt)
            logp_clean = torch.log_softmax(zc[-1], -1)

            def met(z):
                return metric(a.metric, z[-1], ans, wrong, logp_clean)
            mc, mr = met(zc), met(zr)
            tot["clean"] += mc
            tot["corrupt"] += mr
            base_tok, bc, sc = (clean, cc, cr) if noise else (corrupt, cr, cc)

            if "heads" in what:
                for l in range(L):
                    for h in range(H):
                        z, _ = M.run(base_tok, {("head", l, h): setter(sc[("head", l, h)])})
                        S["heads"][l, h] += met(z)
            for t in range(n):
                col = npos - n + t
                for l in range(L):
                    for key, point in (("layers", "attn"), ("mlp", "mlp"), ("resid", "resid")):
                        if key in what:
                            z, _ = M.run(base_tok, {(point, l, -1): row_setter(sc[(point, l, -1)], t)})
                            P[key][l, col] += met(z)
                    if "positions" in what:
                        for h in range(H):
                            z, _ = M.run(base_tok, {("head", l, h): row_setter(sc[("head", l, h)], t)})
                            P["positions"][l * H + h, col] += met(z)
                col_clean[col] += mc
                col_corrupt[col] += mr
                col_n[col] += 1

            if a.path:
                def path_run(sel):
                    iv = {}
                    for l in range(L):
                        for h in range(H):
                            iv[("head", l, h)] = setter((sc if (l, h) in sel else bc)[("head", l, h)])
                        if a.path_mlps == "frozen":
                            iv[("mlp", l, -1)] = setter(bc[("mlp", l, -1)])
                    seen = {}  # what an MLP receiver computes from its input, before it is frozen

                    def record_then(key, after):
                        def f(x):
                            seen[key] = x.clone()
                            return after(x) if after else x
                        return f
                    for r in receivers:
                        if r[0] == "mlp":
                            key = ("mlp", r[1], -1)
                            iv[key] = record_then(key, iv.get(key))
                    z, c1 = M.run(base_tok, iv)
                    if receivers[0][0] == "logits":
                        return met(z)
                    iv2 = {}
                    for r in receivers:
                        key = ("mlp", r[1], -1) if r[0] == "mlp" else (r[0], r[1], r[2])
                        iv2[key] = setter(seen[key] if key in seen else c1[key])
                    z2, _ = M.run(base_tok, iv2)
                    return met(z2)

                def reaches(ls):
                    return any(r[0] == "logits" or (ls <= r[1] if r[0] == "mlp" else ls < r[1]) for r in receivers)
                if sender_set is None:
                    for l in range(L):
                        for h in range(H):
                            if reaches(l):
                                S["path"][l, h] += path_run({(l, h)})
                else:
                    path_single += path_run(sender_set)

            if a.knockout:
                def knock_run(sel):
                    blocked = torch.zeros(n, n, dtype=torch.bool)
                    for q in range(n):
                        for k in range(q + 1):
                            blocked[q, k] = pos_in(kq, q, n) and pos_in(kk, k, n)
                    z, _ = M.run(clean, knock={lh: blocked for lh in sel})
                    return met(z)
                if knock_heads is None:
                    for l in range(L):
                        for h in range(H):
                            S["knock"][l, h] += knock_run({(l, h)})
                else:
                    knock_single += knock_run(knock_heads)

            # DLA on the clean run, frozen final-norm scale
            x = cc[("final", -1, -1)][-1]
            u = M.WU[ans] - M.WU[wrong]
            if M.gpt2:
                g, b = M.t["ln_f.weight"], M.t["ln_f.bias"]
                scale = 1 / torch.sqrt(((x - x.mean()) ** 2).mean() + M.eps)

                def contrib(v):
                    return float(((v - v.mean()) * scale * g * u).sum())
                nb = float((b * u).sum())
            else:
                g = M.t["norm.weight"]
                scale = 1 / torch.sqrt((x * x).mean() + M.eps)

                def contrib(v):
                    return float((v * scale * g * u).sum())
                nb = 0.0
            parts = contrib(M.embed(clean)[-1]) + nb
            tot["embed"] += contrib(M.embed(clean)[-1])
            tot["norm_bias"] += nb
            for l in range(L):
                W, bo = M.wo(l)
                for h in range(H):
                    o = cc[("head", l, h)][-1]
                    c = contrib(W[:, h * M.hd:(h + 1) * M.hd] @ o)
                    S["dla"][l, h] += c
                    parts += c
                if bo is not None:
                    c = contrib(bo)
                    dla_bias[l] += c
                    parts += c
                c = contrib(cc[("mlp", l, -1)][-1])
                dla_mlp[l] += c
                parts += c
            tot["dla_sum"] += parts
            tot["dla_total"] += float(zc[-1][ans] - zc[-1][wrong])
            for l in range(L):
                r = cc[("resid", l + 1, -1)][-1] if l + 1 < L else cc[("final", -1, -1)][-1]
                z = M.norm(r, "final") @ M.WU.T
                lens["logit_diff"][l] += float(z[ans] - z[wrong])
                lens["prob"][l] += float(torch.softmax(z, -1)[ans])
                lens["rank"][l] += 1 + int((z > z[ans]).sum())

    N = len(pairs)
    c, r = tot["clean"] / N, tot["corrupt"] / N
    out = {"clean": c, "corrupt": r, "patching": {}}
    if "heads" in what:
        out["patching"]["heads"] = [[norm_value(float(S["heads"][l, h]) / N, c, r) for h in range(H)] for l in range(L)]
    for key in ("layers", "mlp", "resid", "positions"):
        if key in what:
            out["patching"][key] = [[norm_value(float(P[key][i, j] / col_n[j]), float(col_clean[j] / col_n[j]),
                                                float(col_corrupt[j] / col_n[j])) if col_n[j] else NAN
                                     for j in range(npos)] for i in range(P[key].shape[0])]
    if a.path:
        if sender_set is None:
            out["path"] = {"senders": [[norm_value(float(S["path"][l, h]) / N, c, r) if reaches(l) else NAN
                                        for h in range(H)] for l in range(L)]}
        else:
            out["path"] = {"value": norm_value(path_single / N, c, r)}
    if a.knockout:
        if knock_heads is None:
            out["knockout"] = {"heads": [[norm_value(float(S["knock"][l, h]) / N, c, r) for h in range(H)]
                                         for l in range(L)]}
        else:
            out["knockout"] = {"value": norm_value(knock_single / N, c, r)}
    out["dla"] = {"logit_diff": tot["dla_total"] / N, "sum_of_parts": tot["dla_sum"] / N, "embed": tot["embed"] / N,
                  "heads": (S["dla"] / N).tolist(), "mlp": (dla_mlp / N).tolist()}
    if M.gpt2:
        out["dla"]["final_norm_bias"] = tot["norm_bias"] / N
        out["dla"]["attn_bias"] = (dla_bias / N).tolist()
    out["lens"] = {k: (v / N).tolist() for k, v in lens.items()}
    with open(a.out, "w") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
