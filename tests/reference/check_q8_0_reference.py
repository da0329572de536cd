#!/usr/bin/python3
"""`headroom convert --dtype q8_0` against ggml's Q8_0 as specified.

Run by tests/test_q8_0_reference.sh. stories260K with crafted blocks in
layer 0's W_q (halfway values that C roundf and numpy's rint round
differently, an all-zero block, tiny values whose scale underflows f16,
large and negative maxima) is converted to a Q8_0 GGUF; the file is read
with q8_0_ref's GGUF reader and checked:
  - every Q8_0 tensor's bytes (f16 scale and 32 int8 per block) equal
    q8_0_ref.quantize_q8_0 of the f32 weights: exact, mismatching blocks
    counted;
  - matrices whose rows are not a multiple of 32 values (stories260K's
    ffn_down, rows of 172) are f16 equal to numpy's float16 rounding; norms
    are f32 and unchanged;
  - headroom's logits of the Q8_0 file (tests/tools/hr_logits, prefill and
    decode) vs the float64 PyTorch reference (llama_ref) run on the
    reference's dequantized weights: max abs diff <= 1e-4 (the tolerance of
    tests/reference/check_reference.py), so what headroom reads back is
    what the reference dequantizes.
Prints every count and max diff; exits 1 on any failure.
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
import llama_ref  # noqa: E402
import q8_0_ref  # noqa: E402

REF_TOL = 1e-4
failures = []


def check(label, ok, detail):
    print("  %-4s %-58s %s" % ("ok" if ok else "FAIL", label, detail))
    if not ok:
        failures.append(label)


def crafted_blocks():
    """(6, 32) float32 blocks exercising the rounding and scale rules."""
    a = np.zeros((6, 32), np.float32)
    a[0, 0] = 127.0  # d = 1, id = 1: q = x rounded, halfway cases away from zero
    a[0, 1:16] = [0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 126.5, -126.5, 0.49999997, -0.49999997, 3.5, 7.5, -9.5, 64.5, 0.0]
    a[1] = 0.0  # all zero: d = 0, q = 0
    a[2] = np.linspace(-1e-6, 1e-6, 32, dtype=np.float32)  # d ~ 7.9e-9 rounds to 0 in f16
    a[3] = np.linspace(-1000.0, 999.0, 32, dtype=np.float32)
    a[4] = np.linspace(-3.0, 0.25, 32, dtype=np.float32)  # the largest |x| is negative
    a[5] = np.float32(1e-3) * np.arange(32, dtype=np.float32) - np.float32(0.0155)
    return a


def write_llama2c(path, src, wq0):
    """Copy of the llama2.c file src with layer 0's W_q replaced."""
    c, w = llama_ref.load_llama2c(src)
    hdr = np.fromfile(src, dtype="<i4", count=llama_ref.HEADER_INTS)
    parts = [hdr.tobytes()]
    for name, shape in llama_ref._section_sizes(c):
        arr = w[name].numpy().astype(np.float32).copy()
        if name == "wq":
            arr[0] = wq0
        parts.append(arr.tobytes())
    with open(path, "wb") as f:
        f.write(b"".join(parts))


def gguf_names(c):
    """(GGUF name, llama2.c section, layer or None)."""
    out = [("token_embd.weight", "tok_emb", None), ("output_norm.weight", "rms_final", None)]
    per = [("attn_norm", "rms_att"), ("attn_q", "wq"), ("attn_k", "wk"), ("attn_v", "wv"), ("attn_output", "wo"),
           ("ffn_norm", "rms_ffn"), ("ffn_gate", "w1"), ("ffn_down", "w2"), ("ffn_up", "w3")]
    for layer in range(c.n_layers):
        out += [("blk.%d.%s.weight" % (layer, g), s, layer) for g, s in per]
    if not c.tied:
        out.append(("output.weight", "wcls", None))
    return out


def check_file(path, c, w):
    """Checks every tensor; returns {section: (layer -> float64 array)} as read."""
    r = q8_0_ref.Reader(path)
    check("general.file_type is MOSTLY_Q8_0 (7)", r.kv.get("general.file_type") == 7, str(r.kv.get("general.file_type")))
    read = {}
    n_q8 = n_blocks = n_bad = 0
    for name, sec, layer in gguf_names(c):
        want = w[sec].numpy() if layer is None else w[sec][layer].numpy()
        want = want.astype(np.float32)
        if name not in r.tensors:
            check(name + " present", False, "missing")
            continue
        ne, ty, b = r.raw(name)
        if want.ndim == 2 and want.shape[1] % 32 == 0:
            if ty != q8_0_ref.GGML_Q8_0:
                check(name + " is Q8_0", False, "type %d" % ty)
                continue
            d, q = q8_0_ref.split_q8_0(b)
            rd, rq = q8_0_ref.quantize_q8_0(want)
            bad = (d.view(np.uint16) != rd.view(np.uint16)) | np.any(q != rq, axis=1)
            n_q8 += 1
            n_blocks += len(d)
            n_bad += int(bad.sum())
            if bad.any():
                i = int(np.argmax(bad))
                print("    %s block %d: scale %r vs %r, q %s vs %s" % (name, i, d[i], rd[i], q[i][:8], rq[i][:8]))
        elif want.ndim == 2:
            ok = ty == q8_0_ref.GGML_F16 and np.array_equal(np.frombuffer(b, "<f2"), want.reshape(-1).astype(np.float16))
            check(name + " (rows of %d) is f16, numpy-rounded" % want.shape[1], ok, "type %d" % ty)
        else:
            ok = ty == q8_0_ref.GGML_F32 and np.array_equal(np.frombuffer(b, "<f4"), want.reshape(-1))
            check(name + " stays f32", ok, "type %d" % ty)
        read.setdefault(sec, {})[layer] = r.values(name)
    check("Q8_0 blocks equal the reference quantization", n_bad == 0 and n_blocks > 0,
          "%d tensors, %d blocks, %d differ" % (n_q8, n_blocks, n_bad))
    return read


def main():
    tools, shared, cli = (os.environ.get(k) for k in ("HR_TOOLS_DIR", "HR_SHARED_DIR", "HR_CLI"))
    if not tools or not shared or not cli:
        print("check_q8_0_reference: HR_TOOLS_DIR, HR_SHARED_DIR and HR_CLI must be set", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    src = os.path.join(shared, "models/stories260K/stories260K.bin")
    if not os.path.exists(src):
        print("SKIP: %s is missing" % src)
        return 77
    tmp = tempfile.mkdtemp(prefix="hr_q8_0_")
    try:
        c, w = llama_ref.load_llama2c(src)
        wq0 = w["wq"][0].numpy().astype(np.float32).copy()
        blocks = crafted_blocks()
        flat = wq0.reshape(-1)
        flat[:blocks.size] = blocks.reshape(-1)
        crafted = os.path.join(tmp, "crafted.bin")
        write_llama2c(crafted, src, flat.reshape(wq0.shape))
        out = os.path.join(tmp, "crafted-q8_0.gguf")
        r = subprocess.run([cli, "convert", crafted, out, "--to", "gguf", "--dtype", "q8_0", "--no-tokenizer"],
                           capture_output=True, text=True)
        check("headroom convert --dtype q8_0", r.returncode == 0, (r.stdout + r.stderr).strip().splitlines()[-1:])
        if r.returncode != 0:
            return 1
        c, w = llama_ref.load_llama2c(crafted)
        rd, rq = q8_0_ref.quantize_q8_0(blocks)
        check("crafted halfway values round away from zero", list(rq[0][:8]) == [127, 1, -1, 2, -2, 3, -3, 127],
              str(list(rq[0][:8])))
        read = check_file(out, c, w)

        ref = llama_ref.Llama(crafted, dtype=torch.float64)
        for sec, per in read.items():
            if None in per:
                ref.w[sec] = torch.from_numpy(per[None])
            else:
                ref.w[sec] = torch.from_numpy(np.stack([per[i] for i in range(c.n_layers)]))
        if c.tied:
            ref.w["wcls"] = ref.w["tok_emb"]
        rng = random.Random(8)
        logits = os.path.join(tmp, "logits.f32")
        for n in (1, 17, 64):
            tokens = [rng.randrange(c.vocab) for _ in range(n)]
            want = ref.logits(tokens, "full").numpy()
            for mode in ("prefill", "decode"):
                cmd = [os.path.join(tools, "hr_logits"), out, "--tokens", ",".join(map(str, tokens)), "--out", logits,
                       "--mode", mode]
                rr = subprocess.run(cmd, capture_output=True, text=True)
                got = np.fromfile(logits, dtype=np.float32) if rr.returncode == 0 else np.zeros(0)
                diff = float(np.max(np.abs(got.reshape(want.shape) - want))) if got.size == want.size else float("inf")
                check("n=%d %s logits vs reference on dequantized weights" % (n, mode), diff <= REF_TOL,
                      "max abs diff %.3g (tol %.0e)" % (diff, REF_TOL))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return refcheck.finish(failures, "Q8_0 reference checks")


if __name__ == "__main__":
    sys.exit(main())
