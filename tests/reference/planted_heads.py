#!/usr/bin/python3
"""A 2-layer Llama (llama2.c v0 .bin) with analytically planted heads for
the head lab's retrieval and duplicate methods.

Written from the architecture (RMSNorm, interleaved RoPE with theta 10000,
softmax attention, tied classifier), not from headroom. All MLPs are zero.

Residual layout (dim 256): [0] bias = 1, [1+v] one-hot of the token v,
[17+v] one-hot of the previous token (written by head 0.0), [33+v] one-hot
of the token two back (written by head 0.1). The embedding row of v is
e_0 + e_{1+v}; the classifier is tied, so logit(v) = xn[0] + xn[1+v].

  head 0.0  previous-token head: q and k read the bias only; in the 8
            fastest RoPE pairs q is pre-rotated by -theta_i, so
            score(t, s) ~ sum_i cos((t-s-1) theta_i), peaked at s = t-1.
            V/O copy the token one-hot into the previous-token slot.
  head 0.1  the same with the peak at s = t-2, into the two-back slot.
  head 1.0  copy head (a bigram induction head): the query holds (token t,
            previous token of t), the key (previous token of s, two-back
            token of s), matched channel by channel in slow RoPE pairs
            (component 0 only, so rotation never mixes tokens). It attends
            to the key whose two preceding tokens are the query's last two
            tokens and V/O write that key's token into the token slot with
            weight 4, which makes it the greedy next token.
            On a needle prompt [.. needle .. needle[0:2]] it therefore
            attends to needle[j] exactly while the model copies needle[j]:
            retrieval score 1 when the haystack never contains a needle
            bigram (the text alternates BOS with other tokens, and needles
            never contain BOS).
  head 1.1  duplicate-token head: q and k both hold the token (slow
            pairs), plus a self-penalty -sum_i cos((t-s) theta_i) in the 6
            fastest pairs; it attends to the earlier copy of its own token.
            W_o = 0 (it only shows its pattern).

CLI: planted_heads.py OUT.bin   writes the model (vocab 16, BOS = 1, seq 64)
"""

import math
import os
import sys

import numpy as np

DIM, HIDDEN, LAYERS, HEADS, VOCAB, SEQ = 256, 8, 2, 2, 16, 64
HD = DIM // HEADS            # 128: 64 RoPE pairs per head
BOS = 1
B, TOK, P1, P2 = 0, 1, 17, 33  # residual slots
COPY_HEAD = (1, 0)
DUP_HEAD = (1, 1)


def theta(i):
    """Angle per position of RoPE pair i (llama: 10000^(-2i/hd))."""
    return 10000.0 ** (-2.0 * i / HD)


def build():
    """Returns the weights, each shaped as the llama2.c file stores it."""
    D, L, V = DIM, LAYERS, VOCAB
    w = {
        "tok_emb": np.zeros((V, D)), "rms_att": np.ones((L, D)),
        "wq": np.zeros((L, D, D)), "wk": np.zeros((L, D, D)),
        "wv": np.zeros((L, D, D)), "wo": np.zeros((L, D, D)),
        "rms_ffn": np.ones((L, D)), "w1": np.zeros((L, HIDDEN, D)),
        "w2": np.zeros((L, D, HIDDEN)), "w3": np.zeros((L, HIDDEN, D)),
        "rms_final": np.ones(D),
    }
    for v in range(V):
        w["tok_emb"][v, B] = 1
        w["tok_emb"][v, TOK + v] = 1
    # Rows of wq/wk/wv are (head, component) = head * HD + c; columns are
    # residual slots. The normed residual is ~sqrt(dim / #ones) per slot:
    # sqrt(128) in layer 0 (bias + token), 8 in layer 1 (+ two slots).
    n0, n1 = math.sqrt(DIM / 2), math.sqrt(DIM / 4)
    # Layer 0: previous-token (d = 1) and two-back (d = 2) heads.
    for h, d, slot in ((0, 1, P1), (1, 2, P2)):
        a = 1.0
        for i in range(8):
            r = h * HD + 2 * i
            w["wq"][0, r, B] = a * math.cos(d * theta(i))
            w["wq"][0, r + 1, B] = -a * math.sin(d * theta(i))
            w["wk"][0, r, B] = a
        for v in range(V):
            w["wv"][0, h * HD + v, TOK + v] = 1.0 / n0
            w["wo"][0, slot + v, h * HD + v] = 1.0
    # Layer 1, head 0: bigram copy head in pairs 32..47 (token t vs previous
    # token of s) and 48..63 (previous token of t vs two-back token of s).
    b = 2.0
    for v in range(V):
        w["wq"][1, 2 * (32 + v), TOK + v] = b
        w["wk"][1, 2 * (32 + v), P1 + v] = b
        w["wq"][1, 2 * (48 + v), P1 + v] = b
        w["wk"][1, 2 * (48 + v), P2 + v] = b
        w["wv"][1, v, TOK + v] = 4.0 / n1
        w["wo"][1, TOK + v, v] = 1.0
    # Layer 1, head 1: duplicate-token head (no output).
    m, p = 4.0, 1.0
    for v in range(V):
        w["wq"][1, HD + 2 * (32 + v), TOK + v] = m
        w["wk"][1, HD + 2 * (32 + v), TOK + v] = m
    for i in range(6):
        w["wq"][1, HD + 2 * i, B] = -p
        w["wk"][1, HD + 2 * i, B] = p
    return w


def write(path):
    w = build()
    hdr = np.array([DIM, HIDDEN, LAYERS, HEADS, HEADS, VOCAB, SEQ], dtype="<i4")
    pos = np.arange(SEQ)[:, None] * np.array([theta(i) for i in range(HD // 2)])[None, :]
    order = ["tok_emb", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3", "rms_final"]
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(hdr.tobytes())
        for name in order:
            f.write(w[name].astype("<f4").tobytes())
        f.write(np.cos(pos).astype("<f4").tobytes())
        f.write(np.sin(pos).astype("<f4").tobytes())
    os.replace(tmp, path)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: planted_heads.py OUT.bin", file=sys.stderr)
        sys.exit(2)
    write(sys.argv[1])
