#!/usr/bin/python3
"""headroom patch vs the independent PyTorch reference (circuits_ref.py) on
random-weight Hugging Face folders of each architecture (GPT-2, Qwen2,
Llama with GQA): activation patching of every component, path patching
(sender sweeps and lists, to logits, queries, keys, values and MLPs, MLPs
frozen and recomputed), attention knockout, every metric and direction,
DLA and the logit lens. Pairs have two lengths, so the end alignment of
positions is checked too.

Env: HR_CLI (headroom), HR_SOURCE_DIR. Exit 1 when a value differs by
more than TOL (or NaN / non-NaN cells disagree)."""

import json
import math
import os
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refcheck  # noqa: E402
import circuits_ref  # noqa: E402
import make_hf_random  # noqa: E402

TOL = 1e-4

RUNS = [
    # (label, headroom / reference options)
    ("all components, path * -> logits, knockout sweep",
     ["--what", "all", "--path", "* -> logits", "--knockout", "*: -1 -> 0..-2"]),
    ("kl, noising, path * -> q/k/mlp receivers, knockout list",
     ["--what", "heads,resid", "--metric", "kl", "--direction", "noise", "--path", "* -> 1.0q,1.1k,0.mlp",
      "--knockout", "0.1,1.2 : * -> 0"]),
    ("prob, path list -> v/mlp with MLPs recomputed",
     ["--what", "layers,mlp", "--metric", "prob", "--path", "0.0,0.2 -> 1.3v,1.mlp", "--path-mlps", "recomputed"]),
]


run = refcheck.run


def make_pairs(model, path, seed):
    """Random prompts (two of 10 tokens, one of 7); corrupt = clean with
    three tokens changed; answer / wrong = the clean / corrupt top tokens."""
    rng = np.random.default_rng(seed)
    lines = []
    for n in (10, 7, 10):
        clean = [int(x) for x in rng.integers(0, model.V, n)]
        corrupt = list(clean)
        for t in rng.choice(n, 3, replace=False):
            corrupt[t] = int(rng.integers(0, model.V))
        with torch.no_grad():
            zc = model.run(clean)[0][-1]
            zr = model.run(corrupt)[0][-1]
        a = int(torch.argmax(zc))
        order = torch.argsort(zr, descending=True).tolist()
        w = order[0] if order[0] != a else order[1]
        lines.append(json.dumps({"clean_ids": clean, "corrupt_ids": corrupt, "answer_id": a, "wrong_id": w}))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def compare(label, got, want, worst):
    """Recursively compares numbers / lists; returns the failures."""
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            print("  FAIL %s: shape %s vs %s" % (label, np.shape(got), np.shape(want)))
            return 1
        return sum(compare("%s[%d]" % (label, i), g, w, worst) for i, (g, w) in enumerate(zip(got, want)))
    wn = want is None or (isinstance(want, float) and math.isnan(want))
    gn = got is None or (isinstance(got, float) and math.isnan(got))
    if wn or gn:
        if wn != gn:
            print("  FAIL %s: %r vs %r (NaN cells differ)" % (label, got, want))
            return 1
        return 0
    d = abs(got - want)
    worst[0] = max(worst[0], d)
    if d > TOL:
        print("  FAIL %s: headroom %.9g, reference %.9g (diff %.3g)" % (label, got, want, d))
        return 1
    return 0


def check(case, c, r):
    """c: patch.json, r: reference output; returns failures."""
    fails, worst = 0, [0.0]
    fails += compare("clean", c["clean"], r["clean"], worst)
    fails += compare("corrupt", c["corrupt"], r["corrupt"], worst)
    for k, v in r["patching"].items():
        fails += compare("patching." + k, c["patching"][k]["values"], v, worst)
    if "path" in r:
        if "senders" in r["path"]:
            fails += compare("path.senders", c["path"]["senders"]["values"], r["path"]["senders"], worst)
        else:
            fails += compare("path.value", c["path"]["value"], r["path"]["value"], worst)
    if "knockout" in r:
        if "heads" in r["knockout"]:
            fails += compare("knockout.heads", c["knockout"]["heads"]["values"], r["knockout"]["heads"], worst)
        else:
            fails += compare("knockout.value", c["knockout"]["value"], r["knockout"]["value"], worst)
    for k, v in r["dla"].items():
        fails += compare("dla." + k, c["dla"][k], v, worst)
    fails += compare("dla parts vs logit diff", c["dla"]["sum_of_parts"], c["dla"]["logit_diff"], worst)
    for k, v in r["lens"].items():
        fails += compare("lens." + k, c["lens"][k], v, worst)
    print("%-4s %-8s %-58s max |diff| %.3g" % ("ok" if not fails else "FAIL", case[0], case[1], worst[0]))
    return fails


def main():
    cli = os.environ["HR_CLI"]
    failures = 0
    with tempfile.TemporaryDirectory(prefix="hr_circuits_ref.") as tmp:
        for arch, seed in (("gpt2", 3), ("qwen2", 4), ("llama", 5)):
            folder = os.path.join(tmp, arch)
            make_hf_random.main([arch, folder, "--seed", str(seed)])
            model = circuits_ref.Model(folder)
            pairs = os.path.join(tmp, arch + ".jsonl")
            make_pairs(model, pairs, seed)
            for i, (label, opts) in enumerate(RUNS):
                out = os.path.join(tmp, "%s-%d" % (arch, i))
                run([cli, "patch", folder, "--pairs", pairs, "--out", out, "--threads", "2"] + opts)
                ref_out = os.path.join(tmp, "%s-%d.ref.json" % (arch, i))
                circuits_ref.main([folder, pairs, ref_out] + opts)
                with open(os.path.join(out, "patch.json")) as f:
                    c = json.load(f)
                with open(ref_out) as f:
                    r = json.load(f)
                failures += check((arch, label), c, r)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
