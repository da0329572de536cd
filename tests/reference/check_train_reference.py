#!/usr/bin/python3
"""headroom's training loop against float64 PyTorch: torch.optim.AdamW
(decoupled weight decay on 2-D tensors), the warm-up + cosine schedule
written here from its definition (headroom/train.h), and
torch.nn.utils.clip_grad_norm_, on gradients by autograd of grad_ref.Model
(written from the architecture, not from headroom's code).

tests/tools/hr_train_dump runs a few steps of hr_train_step and writes the
initial parameters, the window starts it drew, its per-step learning rate,
loss and gradient norm, and the final parameters. This script starts from
the same initial values, trains on the same windows and compares:
  - per-step learning rate (relative 1e-6), loss (relative LOSS_TOL) and
    global gradient norm before clipping (relative NORM_TOL);
  - final trainable tensors: max |headroom - torch| over every element
    <= W_TOL * (largest change any element made), i.e. the updates agree;
  - elements that must not train (outside --only, or non-trainable
    tensors) are bit-identical to their initial values.
Cases: LoRA on stories260K, full training of a random GQA model with an
untied classifier, and --only heads/MLP on stories260K. Clipping and weight
decay are active (the gradient norm exceeds the clip in the first steps).

Env: HR_TOOLS_DIR (hr_train_dump, hr_make_random), HR_SHARED_DIR.
"""

import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grad_ref  # noqa: E402

LOSS_TOL, NORM_TOL, W_TOL = 1e-5, 1e-4, 1e-3


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd[:3]), r.returncode, r.stderr.strip()))


def lr_at(c, s):
    """Linear warm-up to lr, then cosine down to lr * min_lr_ratio (train.h)."""
    lr, lo, w, n = c["lr"], c["lr"] * c["min_lr_ratio"], c["warmup"], c["steps"]
    if s < w:
        return lr * (s + 1) / w
    x = min(1.0, (s - w) / (n - w)) if n > w else 0.0
    return lo + (lr - lo) * 0.5 * (1 + math.cos(math.pi * x))


def only_masks(cfg, spec, shapes):
    """name -> 0/1 mask of the elements `--only spec` trains (train.h)."""
    hd, masks = cfg["head_dim"], {}
    for part in spec.split(";"):
        kind, items = part.split(":")
        for it in items.split(","):
            if kind == "mlp":
                l = int(it)
                for nm in ("ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"):
                    name = "blk.%d.%s" % (l, nm)
                    masks[name] = np.ones(shapes[name])
                continue
            l, h = map(int, it.split("."))
            g = h // (cfg["n_head"][l] // cfg["n_head_kv"][l])
            for nm, sl in (("attn_q", (slice(h * hd, (h + 1) * hd),)), ("attn_k", (slice(g * hd, (g + 1) * hd),)),
                           ("attn_v", (slice(g * hd, (g + 1) * hd),)),
                           ("attn_output", (slice(None), slice(h * hd, (h + 1) * hd)))):
                name = "blk.%d.%s.weight" % (l, nm)
                mk = masks.setdefault(name, np.zeros(shapes[name]))
                mk[sl] = 1
    return masks


def check_case(label, model, vocab, extra, tmp, tools, results):
    rng = np.random.default_rng(len(label) + 7)
    ids = [1] + [int(x) for x in rng.integers(2, vocab, 700)]
    prefix = os.path.join(tmp, label)
    run([os.path.join(tools, "hr_train_dump"), model, "--ids", ",".join(map(str, ids)), "--threads", "2",
         "--out", prefix] + extra)
    with open(prefix + ".json") as f:
        cfg = json.load(f)
    raw = np.fromfile(prefix + ".bin", dtype="<f4")
    W = cfg["window"]
    lora = cfg["lora_scale"] > 0
    shapes = {t["name"]: (t["rows"], t["cols"]) for t in cfg["tensors"]}
    masks = only_masks(cfg, cfg["only"], shapes) if cfg["only"] else None
    T, init, final, train = {}, {}, {}, []
    for t in cfg["tensors"]:
        n, shape = t["rows"] * t["cols"], (t["rows"], t["cols"])
        init[t["name"]] = raw[t["value"]:t["value"] + n].reshape(shape)
        final[t["name"]] = raw[t["final"]:t["final"] + n].reshape(shape)
        v = init[t["name"]].astype(np.float64)
        trains = (t["kind"] in ("lora_a", "lora_b")) if lora else \
            (t["kind"] not in ("head_gate", "neuron_gate") and (masks is None or t["name"] in masks))
        T[t["name"]] = torch.tensor(v.reshape(-1) if t["rows"] == 1 else v, requires_grad=trains)
        if trains:
            train.append(t["name"])
    ref = grad_ref.Model(cfg, T, gates=False, lora=lora)
    decay = [T[n] for n in train if shapes[n][0] > 1]
    nodecay = [T[n] for n in train if shapes[n][0] == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]},
                             {"params": nodecay, "weight_decay": 0.0}], lr=cfg["lr"],
                            betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"])

    def report(what, err, tol, detail=""):
        ok = err <= tol
        results.append(ok)
        print("%-4s %-22s %-38s %.2e (tolerance %g)%s" % ("ok" if ok else "FAIL", label, what, err, tol, detail))

    clipped, worst = 0, {"lr": 0.0, "loss": 0.0, "norm": 0.0}
    for s, st in enumerate(cfg["steps_done"]):
        lr = lr_at(cfg, s)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad()
        K = len(st["starts"])
        loss = sum(ref.loss(ids[a:a + W]) for a in st["starts"]) / K
        loss.backward()
        if masks:
            for n in train:
                T[n].grad *= torch.tensor(masks[n].reshape(T[n].shape))
        norm = float(torch.nn.utils.clip_grad_norm_([T[n] for n in train], cfg["clip"]))
        clipped += norm > cfg["clip"]
        opt.step()
        worst["lr"] = max(worst["lr"], abs(st["lr"] - lr) / lr)
        worst["loss"] = max(worst["loss"], abs(st["loss"] - float(loss)) / abs(float(loss)))
        worst["norm"] = max(worst["norm"], abs(st["grad_norm"] - norm) / norm)
    n_steps = len(cfg["steps_done"])
    report("learning rate, %d steps" % n_steps, worst["lr"], 1e-6)
    report("loss per step", worst["loss"], LOSS_TOL)
    report("gradient norm per step", worst["norm"], NORM_TOL, " (%d of %d steps clipped)" % (clipped, n_steps))
    diff, change, frozen = 0.0, 0.0, 0
    for n in shapes:
        got, want = final[n].astype(np.float64), T[n].detach().numpy().reshape(shapes[n])
        keep = np.ones(shapes[n], dtype=bool) if n not in train else \
            (masks[n] == 0 if masks else np.zeros(shapes[n], dtype=bool))
        frozen += int(np.sum(final[n][keep] != init[n][keep]))
        if n in train:
            diff = max(diff, float(np.max(np.abs(got - want))))
            change = max(change, float(np.max(np.abs(want - init[n]))))
    report("final weights (max |diff| / max change)", diff / change, W_TOL,
           " (max |diff| %.2e, max change %.2e)" % (diff, change))
    report("frozen elements changed (count)", frozen, 0)


def main():
    tools, shared = os.environ["HR_TOOLS_DIR"], os.environ["HR_SHARED_DIR"]
    stories = os.path.join(shared, "models/stories260K/stories260K.bin")
    common = ["--window", "32", "--steps", "6", "--batch", "2", "--accum", "2", "--warmup", "2", "--seed", "3"]
    results = []
    with tempfile.TemporaryDirectory(prefix="hr_train_ref.") as tmp:
        gqa = os.path.join(tmp, "llama-gqa-untied.bin")
        run([os.path.join(tools, "hr_make_random"), "--dim", "64", "--hidden", "96", "--layers", "2", "--heads", "8",
             "--kv-heads", "2", "--vocab", "97", "--seq", "64", "--seed", "4", "--untied", gqa])
        check_case("stories260K-lora", stories, 512, common + ["--lora-rank", "4", "--lora-alpha", "8", "--lr", "1e-2",
                                                              "--clip", "0.5", "--wd", "0.1"], tmp, tools, results)
        check_case("random-gqa-full", gqa, 97, common + ["--full", "--lr", "3e-3", "--clip", "1", "--wd", "0.1"], tmp,
                   tools, results)
        check_case("stories260K-only", stories, 512, common + ["--full", "--only", "heads:0.1,2.3;mlp:1", "--lr",
                                                              "3e-3", "--clip", "0.5", "--wd", "0"], tmp, tools, results)
    print("%d checks, %d failed" % (len(results), results.count(False)))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
