#!/usr/bin/python3
"""Per-channel int8 (compressed-tensors "int-quantized") end to end on
stories260K, against independent computations:

1. `convert --to hf --dtype int8`: every attention / MLP projection is I8
   with an F32 (rows, 1) weight_scale equal to numpy's float32 symmetric
   per-row quantization of the f32 weights (scale = max |row| / 127,
   q = rint(w / scale), ties to even) exactly; config.json's
   quantization_config says compressed-tensors, int-quantized, channel.
2. Its logits (prefill and decode) vs the float64 PyTorch reference on
   the dequantized weights (qwen2_ref: q * scale): <= 1e-4; and equal, bit
   for bit, to the same model written as f32 GGUF (the int8 kernels are the
   f32 products over scale * q rounded to f32).
3. Written again as HF (dtype kept): every tensor byte-identical.
4. `prune --heads 50% --uniform --hf`: the pruned folder stays int8; each
   kept Q/K/V/gate/up row is an original row (bytes and scale), each kept
   o_proj column an original column with the row scales unchanged; its
   logits equal the pruned f32 GGUF's bit for bit and the PyTorch
   reference within 1e-4.

Env: HR_CLI, HR_TOOLS_DIR, HR_SHARED_DIR (missing stories260K is a failure).
"""

import json
import os
import struct
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refcheck  # noqa: E402
import hf_folder  # noqa: E402
import qwen2_ref  # noqa: E402

TOL = 1e-4
failures = []


def check(ok, label, detail=""):
    print("%-4s %s%s" % ("ok" if ok else "FAIL", label, (": " + detail) if detail else ""))
    if not ok:
        failures.append(label)


run = refcheck.run


def raw_tensors(folder):
    """name -> (dtype, shape, bytes) of model.safetensors, parsed by hand."""
    data = open(os.path.join(folder, "model.safetensors"), "rb").read()
    (n,) = struct.unpack_from("<Q", data, 0)
    h = json.loads(data[8:8 + n])
    return {k: (v["dtype"], v["shape"], data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in h.items() if k != "__metadata__"}


def logits(tools, model, ids, out, mode, tok):
    run([os.path.join(tools, "hr_logits"), model, "--tokens", ",".join(map(str, ids)), "--out", out, "--mode", mode,
         "--threads", "1"])
    return np.fromfile(out, dtype=np.float32)


def reference(folder, ids):
    cfg, t = hf_folder.load(folder)
    t = hf_folder.strip_prefix(t, "model.")
    return qwen2_ref.forward(cfg, t, ids).numpy().astype(np.float32).ravel()


def int8_of(raw, name):
    dt, shape, b = raw[name]
    sdt, sshape, sb = raw[name + "_scale"]
    assert dt == "I8" and sdt == "F32" and sshape == [shape[0], 1], (name, dt, sdt, sshape)
    return np.frombuffer(b, "i1").reshape(shape), np.frombuffer(sb, "<f4")


def main():
    cli, tools = os.environ["HR_CLI"], os.environ["HR_TOOLS_DIR"]
    shared = os.environ["HR_SHARED_DIR"]
    model = os.path.join(shared, "models", "stories260K", "stories260K.bin")
    tok = os.path.join(shared, "models", "stories260K", "tok512.bin")
    if not (os.path.exists(model) and os.path.exists(tok)):
        print("check_int8_channel: %s or %s is missing" % (model, tok))
        return 1
    rng = np.random.default_rng(5)
    ids = [1] + [int(x) for x in rng.integers(3, 512, 40)]
    with tempfile.TemporaryDirectory(prefix="hr_int8ch.") as tmp:
        f32, s8, s8b = (os.path.join(tmp, n) for n in ("f32", "s8", "s8b"))
        run([cli, "convert", model, f32, "--to", "hf", "--dtype", "f32", "--no-tokenizer"])
        run([cli, "convert", model, s8, "--to", "hf", "--dtype", "int8", "--no-tokenizer"])
        a, q8 = raw_tensors(f32), raw_tensors(s8)
        cfg = json.load(open(os.path.join(s8, "config.json")))
        qc = cfg.get("quantization_config", {})
        w = qc.get("config_groups", {}).get("group_0", {}).get("weights", {})
        check(qc.get("quant_method") == "compressed-tensors" and qc.get("format") == "int-quantized" and
              w.get("strategy") == "channel" and w.get("num_bits") == 8 and w.get("symmetric") is True,
              "config.json quantization_config describes per-channel int8")
        projs = [k for k in a if k.endswith("_proj.weight")]
        bad = []
        for k in projs:
            wf = np.frombuffer(a[k][2], "<f4").reshape(a[k][1])
            amax = np.max(np.abs(wf), axis=1).astype(np.float32)
            scale = (amax / np.float32(127)).astype(np.float32)
            want = np.rint((wf / scale[:, None]).astype(np.float32)).astype(np.int8)
            q, s = int8_of(q8, k)
            if not (np.array_equal(q, want) and np.array_equal(s, scale)):
                bad.append(k)
        check(len(projs) == 35 and not bad, "%d projections are numpy's per-row int8 of the f32 weights" % len(projs),
              ", ".join(bad[:3]))
        others = [k for k in q8 if not k.endswith("_proj.weight") and not k.endswith("_scale")]
        check(all(q8[k] == a[k] for k in others), "the %d other tensors are the f32 ones" % len(others))
        want = reference(s8, ids)
        for mode in ("prefill", "decode"):
            got = logits(tools, s8, ids, os.path.join(tmp, "l"), mode, tok)
            d = float(np.max(np.abs(got - want)))
            check(d <= TOL, "int8 folder %s logits vs PyTorch on q * scale" % mode, "max |diff| %.3g" % d)
        g = os.path.join(tmp, "s8.gguf")
        run([cli, "convert", s8, g, "--to", "gguf", "--dtype", "f32", "--no-tokenizer"])
        li, lf = logits(tools, s8, ids, os.path.join(tmp, "l1"), "prefill", tok), logits(
            tools, g, ids, os.path.join(tmp, "l2"), "prefill", tok)
        check(np.array_equal(li.view(np.uint32), lf.view(np.uint32)),
              "int8 kernels equal the f32 GGUF of the same weights bit for bit")
        run([cli, "convert", s8, s8b, "--to", "hf", "--no-tokenizer"])
        b = raw_tensors(s8b)
        check(b == q8, "HF -> HF keeps int8: %d tensors byte-identical" % len(q8))
        ph, pg = os.path.join(tmp, "p8h"), os.path.join(tmp, "p8.gguf")
        run([cli, "prune", s8, "--by", "random", "--seed", "3", "--heads", "50%", "--uniform", "--hf", ph, "-o", pg,
             "--tokenizer", tok])
        p = raw_tensors(ph)
        sub_bad = []
        for k in projs:
            q0, s0 = int8_of(q8, k)
            q1, s1 = int8_of(p, k)
            if "o_proj" in k:  # columns cut, rows (and their scales) kept
                ok = np.array_equal(s0, s1) and q1.shape[0] == q0.shape[0]
                j = 0
                for c in range(q1.shape[1]):
                    while ok and j < q0.shape[1] and not np.array_equal(q0[:, j], q1[:, c]):
                        j += 1
                    ok = ok and j < q0.shape[1]
                    j += 1
            else:  # rows cut (or nothing): each kept row with its scale, in order
                ok, j = q1.shape[1] == q0.shape[1], 0
                for r in range(q1.shape[0]):
                    while ok and j < q0.shape[0] and not (np.array_equal(q0[j], q1[r]) and s0[j] == s1[r]):
                        j += 1
                    ok = ok and j < q0.shape[0]
                    j += 1
            if not ok:
                sub_bad.append(k)
        nh = sum(1 for k in projs if "q_proj" in k and p[k][1][0] < a[k][1][0])
        check(nh > 0 and not sub_bad, "pruned int8 folder: rows / columns cut from the original with their scales "
              "(%d layers lost heads)" % nh, ", ".join(sub_bad[:3]))
        lp = logits(tools, ph, ids, os.path.join(tmp, "l3"), "prefill", tok)
        lg = logits(tools, pg, ids, os.path.join(tmp, "l4"), "prefill", tok)
        check(np.array_equal(lp.view(np.uint32), lg.view(np.uint32)),
              "pruned int8 folder equals the pruned f32 GGUF bit for bit")
        d = float(np.max(np.abs(lp - reference(ph, ids))))
        check(d <= TOL, "pruned int8 folder vs PyTorch on q * scale", "max |diff| %.3g" % d)
    return refcheck.finish(failures, "per-channel int8 checks")


if __name__ == "__main__":
    sys.exit(main())
