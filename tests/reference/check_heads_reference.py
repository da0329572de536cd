#!/usr/bin/python3
"""headroom's head-lab scores vs the independent reference (heads_ref.py)
for ten methods: confidence, distance, entropy, influence, pattern,
streaming, amp (calibration windows), duplicate (repeated sequences),
retrieval (needle prompts), fdtm (greedy continuations).

Run by tests/test_heads_reference.sh. For each model -- stories260K, a random
GQA model, and the planted model of planted_heads.py (a copy head and a
duplicate-token head with known scores) -- hr_heads_dump runs the head lab
once per group of methods that share their inputs and records every
sequence the lab ran. The reference then
  - derives the calibration windows from the text ids as heads.h documents
    them and checks that they are the ones headroom ran;
  - takes the repeated sequences, needle prompts and FDTM prompts headroom
    drew (inputs), checks they have the documented form, and recomputes the
    scores on them with its own float64 forward passes (outputs);
  - compares every head's score, printing the max |difference| per method.
Tolerances (headroom runs in float32, the reference in float64; headroom's
attention probabilities and logits agree with the reference to ~1e-6 and
< 2e-5, test_reference):
  confidence, streaming, influence, pattern, duplicate (means of
  probabilities, in [0, 1] or [-1, 1]): 1e-5 absolute;
  entropy (nats, up to ln W): 1e-5 absolute; distance (tokens, up to 32):
  1e-4 absolute; amp (L1 norms): 1e-5 relative to the largest score;
  retrieval, fdtm (ratios of counts): exact, 1e-12 -- for fdtm, greedy
  steps whose two candidate tokens are within 1e-4 of a tie may go either
  way and the reference accepts either outcome.
On the planted model the scores are also known analytically: the copy head
1.0 scores retrieval exactly 1 and every other head 0; the duplicate head
1.1 scores duplicate > 0.999 and ranks first.
Exits 1 on any failure.
"""

import os
import random
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refcheck  # noqa: E402
import heads_ref  # noqa: E402
import llama_ref  # noqa: E402
import planted_heads  # noqa: E402

METHODS = ["confidence", "distance", "entropy", "influence", "pattern", "streaming", "amp",
           "duplicate", "retrieval", "fdtm"]
# hr_heads_dump runs: the six attention statistics share one pass over the
# calibration windows, so they run together.
GROUPS = ["confidence,distance,entropy,influence,pattern,streaming", "amp", "duplicate", "retrieval", "fdtm"]
# (absolute tolerance, relative to the largest |score|)
TOL = {"confidence": (1e-5, 0), "streaming": (1e-5, 0), "influence": (1e-5, 0), "pattern": (1e-5, 0),
       "duplicate": (1e-5, 0), "entropy": (1e-5, 0), "distance": (1e-4, 0), "amp": (0, 1e-5),
       "retrieval": (1e-12, 0), "fdtm": (1e-12, 0)}
PATTERN_GAP = 1e-4  # pattern: 4th and 5th column sums closer than this may swap under float32 rounding

failures = []


def check(label, ok, detail):
    print("  %-4s %-44s %s" % ("ok" if ok else "FAIL", label, detail))
    if not ok:
        failures.append(label)


def run_dump(tools, model, ids, out, args, groups=GROUPS):
    ids_path = out + ".ids"
    with open(ids_path, "w") as f:
        f.write(" ".join(map(str, ids)) + "\n")
    cmd = [os.path.join(tools, "hr_heads_dump"), model, "--ids", ids_path, "--out", out,
           "--methods", ";".join(groups)] + [str(a) for a in args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s\n%s%s" % (" ".join(cmd), r.stdout, r.stderr))
    runs, scores, notes, cur = {}, {}, {}, None
    with open(out) as f:
        for line in f:
            p = line.split()
            if p[0] == "M":
                cur = []
                for m in p[1].split(","):
                    runs[m] = cur
            elif p[0] == "F":
                cur.append((int(p[1]), [int(t) for t in p[3:3 + int(p[2])]]))
            elif p[0] == "S":
                scores.setdefault(p[1], {})[(int(p[2]), int(p[3]))] = float(p[4])
            elif p[0] == "N":
                notes[p[1]] = " ".join(p[2:])
    return runs, scores, notes


def as_matrix(d, L, H):
    m = np.full((L, H), np.nan)
    for (l, h), v in d.items():
        m[l, h] = v
    return m


def fresh_inputs(forwards, count):
    """The first `count` sequences run from an empty cache, in order."""
    return [toks for n_past, toks in forwards if n_past == 0][:count]


def compare(name, method, got, want_lo, want_hi=None):
    want_hi = want_lo if want_hi is None else want_hi
    a, r = TOL[method]
    tol = a + r * float(np.nanmax(np.abs(want_lo)))
    below = np.maximum(want_lo - got, 0)
    above = np.maximum(got - want_hi, 0)
    diff = np.where(np.isnan(got) | np.isnan(want_lo), np.inf, np.maximum(below, above))
    d = float(diff.max())
    check("%s %s" % (name, method), d <= tol,
          "max |diff| %.3g (tol %.2g; scores %.4g..%.4g)" % (d, tol, np.nanmin(want_lo), np.nanmax(want_hi)))


def locate_needle(prompt, text, k, prefix=2):
    """(needle, position of its first token) of a prompt documented as
    [BOS, hay[0:ins], needle, hay[ins:], needle[0:prefix]], hay consecutive
    text tokens: every (offset, ins) that reproduces the prompt."""
    hay = len(prompt) - 1 - k - prefix
    found = set()
    for ins in range(0, hay + 1):
        head = prompt[1:1 + ins]
        tail = prompt[1 + ins + k:1 + hay + k]
        needle = tuple(prompt[1 + ins:1 + ins + k])
        if list(needle[:prefix]) != prompt[-prefix:]:
            continue
        for off in range(0, len(text) - hay + 1):
            if text[off:off + ins] == head and text[off + ins:off + hay] == tail:
                found.add((needle, 1 + ins))
                break
    return found


def check_model(name, tools, tmp, path, ids, args, bos, planted=False):
    model = llama_ref.Llama(path, dtype=torch.float64)
    c = model.cfg
    L, H = c.n_layers, c.n_heads
    print("%s: %r" % (name, c))
    opt = dict(zip(args[::2], args[1::2]))
    runs, scores, notes = run_dump(tools, path, ids, os.path.join(tmp, name + ".dump"), args)
    for m in METHODS:
        if m in notes:
            check("%s %s ran" % (name, m), False, "skipped: " + notes[m])
    got = {m: as_matrix(scores.get(m, {}), L, H) for m in METHODS}

    # Calibration windows exactly as heads.h documents them.
    W = int(opt["--window"])
    max_tokens = int(opt.get("--tokens", 1024))
    n_win = min(len(ids) // (W - 1), max(1, max_tokens // W))
    windows = [[bos] + ids[w * (W - 1):(w + 1) * (W - 1)] for w in range(n_win)]
    for m in heads_ref.CALIB_METHODS:
        ran = fresh_inputs(runs[m], n_win)
        check("%s %s windows" % (name, m), ran == windows,
              "%d windows of %d tokens derived from the text" % (n_win, W))
    want, (pat_lo, pat_hi), n_ties = heads_ref.calib_scores(model, windows, PATTERN_GAP)
    for m in heads_ref.CALIB_METHODS:
        if m == "pattern":
            if n_ties:
                print("       pattern: near-tied top-4 columns in %d (window, head) pairs; any choice accepted"
                      % n_ties)
            compare(name, m, got[m], pat_lo, pat_hi)
            continue
        compare(name, m, got[m], want[m])

    # duplicate: the repeated sequences headroom drew.
    k = int(opt["--rep-len"]) if "--rep-len" in opt else min(48, (c.seq_len - 1) // 2)
    seqs = fresh_inputs(runs["duplicate"], int(opt.get("--rep-seqs", 4)))
    form = all(len(s) == 2 * k + 1 and s[0] == bos and s[1:k + 1] == s[k + 1:] and
               len(set(s[1:k + 1])) == k and bos not in s[1:] for s in seqs)
    check("%s duplicate inputs" % name, form and len(seqs) == int(opt.get("--rep-seqs", 4)),
          "%d sequences [BOS, r1..r%d, r1..r%d], r distinct" % (len(seqs), k, k))
    dup = heads_ref.duplicate_scores(model, seqs)
    compare(name, "duplicate", got["duplicate"], dup)

    # retrieval: the needle prompts headroom drew.
    nk = int(opt.get("--needle-len", 8))
    prompts = fresh_inputs(runs["retrieval"], int(opt.get("--needles", 4)))
    needles, ats, ok = [], [], len(prompts) == int(opt.get("--needles", 4))
    for pr in prompts:
        loc = locate_needle(pr, ids, nk)
        ok &= len(loc) == 1 and pr[0] == bos
        if len(loc) == 1:
            needle, at = next(iter(loc))
            hay = len(pr) - 1 - nk - 2
            ok &= len(set(needle)) == nk and bos not in needle and hay // 4 <= at - 1 <= hay // 4 + hay // 2
            needles.append(list(needle))
            ats.append(at)
    check("%s retrieval inputs" % name, ok, "%d prompts: text haystack, %d-token needle in its middle half, "
          "ending with the needle's first 2 tokens" % (len(prompts), nk))
    if ok:
        ret, gens, amb = heads_ref.retrieval_scores(model, prompts, needles, ats)
        check("%s retrieval decided" % name, not amb, "; ".join(amb[:3]) or "no near-ties")
        compare(name, "retrieval", got["retrieval"], ret)

    # fdtm: the prompts headroom drew.
    plen, gen = int(opt.get("--fdtm-len", 16)), int(opt.get("--fdtm-gen", 16))
    fprompts = fresh_inputs(runs["fdtm"], int(opt.get("--fdtm-prompts", 4)))
    ok = len(fprompts) == int(opt.get("--fdtm-prompts", 4))
    for pr in fprompts:
        body = pr[1:]
        ok &= len(pr) == plen and pr[0] == bos and any(ids[o:o + plen - 1] == body
                                                       for o in range(len(ids) - plen + 2))
    check("%s fdtm inputs" % name, ok, "%d prompts: BOS + %d consecutive text tokens" % (len(fprompts), plen - 1))
    lo, hi, bases, margin = heads_ref.fdtm_scores(model, fprompts, gen)
    check("%s fdtm base continuations decided" % name, margin > 1e-4, "smallest top-2 logit margin %.3g" % margin)
    n_amb = int((hi > lo).sum())
    if n_amb:
        print("       fdtm: %d heads have a near-tied step; either outcome accepted" % n_amb)
    compare(name, "fdtm", got["fdtm"], lo, hi)

    if planted:
        cl, ch = planted_heads.COPY_HEAD
        dl, dh = planted_heads.DUP_HEAD
        expect = np.zeros((L, H))
        expect[cl, ch] = 1.0
        d = float(np.abs(got["retrieval"] - expect).max())
        check("%s copy head retrieval = 1, others 0" % name, d == 0.0,
              "head %d.%d: %.9g; max |diff| from analytic %.3g" % (cl, ch, got["retrieval"][cl, ch], d))
        best = np.unravel_index(np.nanargmax(got["duplicate"]), got["duplicate"].shape)
        check("%s duplicate head ranks first" % name, best == (dl, dh) and got["duplicate"][dl, dh] > 0.999,
              "top head %d.%d, head %d.%d scores %.9g (analytic: > 0.999)"
              % (best[0], best[1], dl, dh, got["duplicate"][dl, dh]))


def check_natural(name, tools, tmp, path, ids, args, bos, k=4, gap=16, prefix=2):
    """retrieval on natural needles (heads.h): spans of k window tokens
    that recur, the only earlier copy starting >= gap tokens before; the
    prompt is the window up to `prefix` tokens into the recurrence. The
    candidates are found here by brute force, the prompts headroom ran must
    be among them (as many as asked, or all), and the scores must equal the
    reference's on those prompts."""
    model = llama_ref.Llama(path, dtype=torch.float64)
    opt = dict(zip(args[::2], args[1::2]))
    runs, scores, notes = run_dump(tools, path, ids, os.path.join(tmp, name + ".natural.dump"),
                                   args + ["--natural-needles", 1], groups=["retrieval"])
    W, max_tokens = int(opt["--window"]), int(opt.get("--tokens", 1024))
    n_win = min(len(ids) // (W - 1), max(1, max_tokens // W))
    windows = [[bos] + ids[w * (W - 1):(w + 1) * (W - 1)] for w in range(n_win)]
    cands = {}
    for win in windows:
        for t in range(1 + gap, W - k + 1):
            span = win[t:t + k]
            if bos in span:
                continue
            ss = [s0 for s0 in range(1, t - gap + 1) if win[s0:s0 + k] == span]
            if len(ss) == 1:
                cands.setdefault(tuple(win[:t + prefix]), (win[ss[0]:ss[0] + k], ss[0]))
    n = min(int(opt.get("--needles", 64)), len(cands))
    prompts = fresh_inputs(runs["retrieval"], n)
    ok = len(prompts) == n and n > 0 and all(tuple(p) in cands for p in prompts)
    check("%s natural retrieval inputs" % name, ok,
          "%d prompts among %d recurring %d-token spans (brute force)" % (len(prompts), len(cands), k))
    if not ok:
        return
    needles = [cands[tuple(p)][0] for p in prompts]
    ats = [cands[tuple(p)][1] for p in prompts]
    ret, gens, amb = heads_ref.retrieval_scores(model, prompts, needles, ats)
    check("%s natural retrieval decided" % name, not amb, "; ".join(amb[:3]) or "no near-ties")
    got = as_matrix(scores.get("retrieval", {}), model.cfg.n_layers, model.cfg.n_heads)
    compare(name + " natural", "retrieval", got, ret)
    check("%s natural retrieval finds heads" % name, float(np.nanmax(got)) > 0,
          "best head scores %.4g (random needles give 0 everywhere on this model)" % float(np.nanmax(got)))


def main():
    tools, shared = os.environ.get("HR_TOOLS_DIR"), os.environ.get("HR_SHARED_DIR")
    cli = os.environ.get("HR_CLI")
    if not tools or not shared or not cli:
        print("check_heads_reference: HR_TOOLS_DIR, HR_SHARED_DIR and HR_CLI must be set", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    tmp = tempfile.mkdtemp(prefix="hr_heads_reference_")
    try:
        # stories260K on TinyStories text (ids from headroom's tokenizer: the
        # token ids are an input here, not what is tested).
        stories = os.path.join(shared, "models/stories260K/stories260K.bin")
        text = os.path.join(tmp, "text.txt")
        with open(os.path.join(shared, "data/text/tinystories_val.txt"), encoding="utf-8") as f:
            snippet = f.read(8000)
        with open(text, "w", encoding="utf-8") as f:
            f.write(snippet)
        r = subprocess.run([cli, "tokenize", stories, "--text", text], capture_output=True, text=True, check=True)
        ids = [int(t) for t in r.stdout.split()]
        check_model("stories260K", tools, tmp, stories, ids,
                    ["--window", 64, "--tokens", 512, "--seed", 7], bos=1)
        check_natural("stories260K", tools, tmp, stories, ids, ["--window", 128, "--tokens", 1024, "--seed", 7], bos=1)

        # A random GQA model; windows of 33 tokens: distance's rows t >= 32
        # are then one row per window.
        rnd = os.path.join(tmp, "random.bin")
        subprocess.run([os.path.join(tools, "hr_make_random"), "--dim", "64", "--hidden", "96", "--layers", "2",
                        "--heads", "4", "--kv-heads", "2", "--vocab", "256", "--seq", "80", "--seed", "3", rnd],
                       check=True)
        rng = random.Random(5)
        ids = [rng.randrange(2, 256) for _ in range(400)]
        check_model("random-gqa", tools, tmp, rnd, ids, ["--window", 33, "--tokens", 264, "--seed", 3], bos=1)

        # The planted model: text alternating BOS with other tokens, so no
        # needle bigram ever occurs in a haystack.
        planted = os.path.join(tmp, "planted.bin")
        planted_heads.write(planted)
        rng = random.Random(11)
        others = [t for t in range(planted_heads.VOCAB) if t != planted_heads.BOS]
        ids = []
        for _ in range(200):
            ids += [rng.choice(others), planted_heads.BOS]
        check_model("planted", tools, tmp, planted, ids,
                    ["--window", 32, "--tokens", 256, "--seed", 5, "--bos", planted_heads.BOS, "--rep-len", 12,
                     "--needle-len", 6], bos=planted_heads.BOS, planted=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return refcheck.finish(failures, "head-lab reference checks")


if __name__ == "__main__":
    sys.exit(main())
