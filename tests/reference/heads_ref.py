#!/usr/bin/python3
"""Independent reference of ten head-lab methods (headroom heads), written
from each method's definition in README.md "Head lab" (the registry rows
quote the same formulas) on top of the PyTorch Llama of llama_ref.py. It
never calls headroom: it reads the weights itself, runs its own float64
forward passes and derives every statistic from its own attention
probabilities, head outputs and greedy decoding.

Notation: p(t, s) is a head's attention probability from query row t to key
s (s <= t) of one sequence; windows are the calibration windows
[BOS, next W-1 text tokens].

  entropy     mean over rows t >= 1 of -sum_s p ln p
  confidence  mean over rows t >= 1 of max_s p(t, s)
  distance    mean over rows t >= 32 of sum_s p(t,s) * min(t-s, 32)
              (rows t >= 1 when a window has no row 32)
  streaming   mean over rows t >= 20 of the mass on s < 4 and s > t-16
  influence   per window FAI(s) = mean_{t>s} p(t,s), 1 <= s < n-8;
              mean over windows of max_s FAI(s)
  pattern     mean over rows t >= 8 of [mass on s in (t-3, t]] - [mass on the
              window's 4 key columns receiving most off-band attention,
              sum_{t >= s+3} p(t,s), counted where they are off-band, s <= t-3]
  amp         mean over calibration tokens of || W_o[:, h] o_h ||_1
  duplicate   on [BOS, r1..rk, r1..rk]: mean over t in [k+1, 2k] of p(t, t-k)
  retrieval   needle prompts: greedy continuation of the needle; at step j
              (2 <= j < k) a head hits when the generated token is needle[j]
              and its argmax attention from the newest query is on needle[j];
              hits / (prompts * (k-2))
  fdtm        greedy continuation of `gen` tokens with the head's output
              zeroed vs the base model; mean over prompts of the first
              position where they differ (gen = never)

Ties: argmax means the first maximum (lowest index), as "attention on that
token" needs one answer; decisions closer than a stated margin to a tie are
reported so the caller can tell float rounding from disagreement.
"""

import numpy as np
import torch

CALIB_METHODS = ("entropy", "confidence", "distance", "streaming", "influence", "pattern", "amp")


def forward_record(model, tokens):
    """Runs tokens from an empty cache; returns (probs, outs): per layer the
    attention probabilities (H, n, n) and head outputs before W_o (n, H, hd),
    both float64."""
    probs, outs = {}, {}

    def observe(layer, pos0, p, out):
        probs[layer] = p.to(torch.float64).clone()
        outs[layer] = out.to(torch.float64).clone()

    model.observer = observe
    model.reset()
    try:
        with torch.inference_mode():
            model.forward(list(tokens))
    finally:
        model.observer = None
    c = model.cfg
    return [probs[l] for l in range(c.n_layers)], [outs[l] for l in range(c.n_layers)]


class Mean:
    """Accumulates per-head (L, H) sums and counts."""

    def __init__(self, L, H):
        self.sum = np.zeros((L, H))
        self.n = np.zeros((L, H))

    def add(self, l, values, count):
        self.sum[l] += values
        self.n[l] += count

    def value(self):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, self.sum / np.maximum(self.n, 1), np.nan)


def calib_scores(model, windows, gap=1e-4):
    """The seven calibration-window methods; returns ({id: (L, H)}, (lo, hi),
    n_ties). Where pattern's 4th most-attended column is within `gap` of
    another column outside or inside the top 4, the top-4 choice depends on
    rounding: lo and hi (L, H) bound pattern over every choice among those
    near-tied columns (equal to the score when there is none), and n_ties
    counts the (window, head) pairs where that happened."""
    c = model.cfg
    L, H, hd = c.n_layers, c.n_heads, c.head_dim
    acc = {m: Mean(L, H) for m in CALIB_METHODS}
    pat_lo, pat_hi = Mean(L, H), Mean(L, H)
    n_ties = 0
    for win in windows:
        n = len(win)
        probs, outs = forward_record(model, win)
        t_idx = torch.arange(n)[:, None]
        s_idx = torch.arange(n)[None, :]
        causal = s_idx <= t_idx                                   # (n, n)
        for l in range(L):
            P = probs[l]                                          # (H, n, n)
            rows = slice(1, n)
            plogp = torch.where(P > 0, P * torch.log(torch.where(P > 0, P, torch.ones_like(P))),
                                torch.zeros_like(P))
            acc["entropy"].add(l, (-plogp[:, rows].sum(-1)).sum(-1).numpy(), n - 1)
            acc["confidence"].add(l, P[:, rows].max(-1).values.sum(-1).numpy(), n - 1)
            # distance: tokens back, capped at 32
            t0 = 32 if n > 32 else 1
            dist = torch.clamp(t_idx - s_idx, min=0, max=32).to(torch.float64) * causal
            acc["distance"].add(l, (P * dist)[:, t0:].sum(-1).sum(-1).numpy(), max(n - t0, 0))
            # streaming: first 4 keys + the last 16 positions
            keep = (s_idx < 4) | ((s_idx > t_idx - 16) & causal)
            if n > 20:
                acc["streaming"].add(l, (P * keep)[:, 20:].sum(-1).sum(-1).numpy(), n - 20)
            # influence: the strongest non-BOS anchor of the window
            if n > 9:
                fai = torch.stack([P[:, s + 1:, s].mean(-1) for s in range(1, n - 8)], dim=1)
                acc["influence"].add(l, fai.max(-1).values.numpy(), 1)
            # pattern: diagonal band minus the top-4 off-band columns
            if n > 8:
                offband = s_idx <= t_idx - 3                       # (n, n): s <= t-3
                band = (s_idx > t_idx - 3) & causal                # (n, n): s in (t-3, t]
                col = (P * offband).sum(1)                          # (H, n): off-band attention each key gets
                # what column s takes from rows t >= 8 where it is off-band
                take = (P * offband)[:, 8:, :].sum(1)               # (H, n)
                diag = (P * band)[:, 8:, :].sum(-1).sum(-1)         # (H,)
                vals, lo, hi = np.zeros(H), np.zeros(H), np.zeros(H)
                for h in range(H):
                    order = sorted(range(n), key=lambda s: (-float(col[h, s]), s))
                    vals[h] = float(diag[h] - sum(take[h, s] for s in order[:4]))
                    c4 = float(col[h, order[min(3, n - 1)]])
                    tied = [s for s in range(n) if abs(float(col[h, s]) - c4) < gap]
                    sure = [s for s in order[:4] if s not in tied]
                    need = len(order[:4]) - len(sure)
                    opts = sorted(float(take[h, s]) for s in tied)
                    base = float(diag[h] - sum(take[h, s] for s in sure))
                    lo[h] = base - sum(opts[len(opts) - need:]) if need else base
                    hi[h] = base - sum(opts[:need])
                    n_ties += len(tied) > need
                acc["pattern"].add(l, vals, n - 8)
                pat_lo.add(l, lo, n - 8)
                pat_hi.add(l, hi, n - 8)
            # amp: L1 norm of each head's write into the residual stream
            wo = model.w["wo"][l].to(torch.float64)                # (dim, H*hd)
            o = outs[l]                                            # (n, H, hd)
            amp = [float((o[:, h, :] @ wo[:, h * hd:(h + 1) * hd].t()).abs().sum()) for h in range(H)]
            acc["amp"].add(l, np.array(amp), n)
    return {m: acc[m].value() for m in CALIB_METHODS}, (pat_lo.value(), pat_hi.value()), n_ties


def duplicate_scores(model, seqs):
    """seqs: [BOS, r1..rk, r1..rk] lists; mean p(t, t-k) over second halves."""
    c = model.cfg
    acc = Mean(c.n_layers, c.n_heads)
    for seq in seqs:
        k = (len(seq) - 1) // 2
        probs, _ = forward_record(model, seq)
        for l in range(c.n_layers):
            acc.add(l, sum(probs[l][:, t, t - k] for t in range(k + 1, 2 * k + 1)).numpy(), k)
    return acc.value()


def top2_margin(x):
    """x (V,): (argmax, best - second best)."""
    v = torch.topk(x, 2)
    return int(torch.argmax(x)), float(v.values[0] - v.values[1])


def retrieval_scores(model, prompts, needles, ats, prefix=2, tie=1e-4, att_tie=1e-6):
    """Returns (scores (L, H), generated tokens per prompt, ambiguities).
    prompts[i] ends with needles[i][:prefix]; needle token j sits at
    ats[i] + j. An ambiguity is a greedy step whose top-2 logits are within
    `tie`, or a credited step where the needle token's attention is within
    `att_tie` of another key's."""
    c = model.cfg
    L, H = c.n_layers, c.n_heads
    hits = np.zeros((L, H))
    last = {}

    def observe(layer, pos0, p, out):
        last[layer] = p[:, -1, :].to(torch.float64).clone()   # (H, T): newest query row

    gens, amb = [], []
    steps = 0
    for pr, needle, at in zip(prompts, needles, ats):
        k = len(needle)
        model.observer = observe
        model.reset()
        gen = []
        with torch.inference_mode():
            logits = model.forward(list(pr), all_logits=False)[-1]
            for j in range(prefix, k):
                tok, margin = top2_margin(logits)
                if margin < tie:
                    amb.append("prompt %d step %d: top-2 logits %.3g apart" % (len(gens), j, margin))
                gen.append(tok)
                steps += 1
                if tok == needle[j]:
                    target = at + j
                    for l in range(L):
                        row = last[l]                                    # (H, T)
                        for h in range(H):
                            best = int(torch.argmax(row[h]))
                            other = torch.cat([row[h, :target], row[h, target + 1:]]).max()
                            if abs(float(row[h, target] - other)) < att_tie:
                                amb.append("prompt %d step %d head %d.%d: attention tie" % (len(gens), j, l, h))
                            if best == target:
                                hits[l, h] += 1
                if j + 1 < k:
                    logits = model.forward([tok], all_logits=False)[-1]
        model.observer = None
        gens.append(gen)
    return hits / max(steps, 1), gens, amb


def greedy(model, prompt, gen, ref=None, tie=1e-4):
    """Greedy continuation of gen tokens. With ref (the base continuation)
    it stops at the first token that differs and returns the set of possible
    first-divergence positions: a step where ref's token is within `tie` of
    the best other logit may go either way (float rounding), so both outcomes
    are kept. Without ref returns (tokens, smallest top-2 margin)."""
    model.reset()
    out, possible, min_margin = [], set(), np.inf
    with torch.inference_mode():
        logits = model.forward(list(prompt), all_logits=False)[-1]
        for i in range(gen):
            if ref is None:
                tok, margin = top2_margin(logits)
                min_margin = min(min_margin, margin)
            else:
                others = torch.cat([logits[:ref[i]], logits[ref[i] + 1:]]).max()
                d = float(logits[ref[i]] - others)
                if d < -tie:
                    possible.add(i)
                    return possible
                if d <= tie:
                    possible.add(i)  # may diverge here or continue with ref's token
                tok = ref[i]
            out.append(tok)
            if i + 1 < gen:
                logits = model.forward([tok], all_logits=False)[-1]
    if ref is None:
        return out, min_margin
    possible.add(gen)
    return possible


def fdtm_scores(model, prompts, gen, tie=1e-4):
    """Returns (lo (L, H), hi (L, H), base continuations, smallest base
    margin): the lowest and highest mean first-divergence position that
    float rounding at near-tied steps allows (equal when no step is near a
    tie)."""
    c = model.cfg
    L, H = c.n_layers, c.n_heads
    bases, base_margin = [], np.inf
    for pr in prompts:
        toks, m = greedy(model, pr, gen)
        bases.append(toks)
        base_margin = min(base_margin, m)
    lo, hi = np.zeros((L, H)), np.zeros((L, H))
    for l in range(L):
        for h in range(H):
            g = torch.ones(L, H, dtype=model.dtype)
            g[l, h] = 0
            model.gates = g
            for pr, base in zip(prompts, bases):
                pos = greedy(model, pr, gen, ref=base, tie=tie)
                lo[l, h] += min(pos) / len(prompts)
                hi[l, h] += max(pos) / len(prompts)
            model.gates = None
    return lo, hi, bases, base_margin
