#!/usr/bin/python3
"""headroom's int8 dot (kernels.h) against numpy's computation of its definition,
for Q8_0 and per-channel int8 weights.

Run by tests/test_int8dot_reference.sh. tests/tools/hr_int8dot_dump writes
random activations, a random matrix as GGUF Q8_0 rows and headroom's
product of the two by the int8 dot, for GEMV (1 token) and GEMM (13, 70
tokens) shapes, d_in = 32 x odd and even, with VPDPBUSD (where the CPU has
VNNI) and with the exact emulation (HEADROOM_INT8_HW=0). numpy computes
the definition independently: each token's 32-blocks quantized in float32
as llama.cpp's quantize_row_q8_0 (amax, d = amax / 127 kept in float32,
id = 1 / d, q = x * id rounded half away from zero), then in float64
y = sum over blocks of (sum_k q_w q_x) * (d_w * d_x), d_w the f16 scale (per-
channel int8: the row's f32 scale, the same for every block; rows of very
different sizes) and d_w * d_x rounded to float32 as the definition's one
f32 multiply.
Checked: the activations' q equal headroom's rounding rule exactly (by
construction of the same float32 ops), and |y - y_numpy| <= 1e-5 * sum over
blocks |s d_w d_x| per output (headroom's f32 chain vs float64). Prints
the max relative difference; exits 1 on any failure.
"""

import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refcheck  # noqa: E402
import q8_0_ref  # noqa: E402

TOL = 1e-5
failures = []


def quantize_acts(x):
    """float32 (n, d_in) -> (q int64 (n, nb, 32), d float32 (n, nb))."""
    b = x.reshape(x.shape[0], -1, 32).astype(np.float32)
    amax = np.max(np.abs(b), axis=2)
    d = (amax / np.float32(127)).astype(np.float32)
    d = np.where(d < np.finfo(np.float32).tiny, np.float32(0), d).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d > 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    r = (b * idv[:, :, None]).astype(np.float32)
    q = np.sign(r) * np.floor(np.abs(r).astype(np.float64) + 0.5)  # halfway away from zero, exact in float64
    return q.astype(np.int64), d


def check(tool, n, d_in, d_out, seed, env_extra, label, channel):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dump.bin")
        env = dict(os.environ, **env_extra)
        r = subprocess.run([tool, "--n", str(n), "--d-in", str(d_in), "--d-out", str(d_out), "--seed", str(seed),
                            "--out", path, "--channel", str(channel)], env=env, capture_output=True, text=True)
        if r.returncode != 0:
            failures.append(label)
            print("  FAIL %s: %s" % (label, r.stderr.strip()))
            return
        buf = open(path, "rb").read()
    hdr = np.frombuffer(buf[:16], "<i4")
    assert tuple(hdr) == (n, d_in, d_out, channel)
    off = 16
    x = np.frombuffer(buf[off:off + 4 * n * d_in], "<f4").reshape(n, d_in)
    off += 4 * n * d_in
    nb = d_in // 32
    if channel:
        qw = np.frombuffer(buf[off:off + d_out * d_in], "i1").astype(np.int64).reshape(d_out, nb, 32)
        off += d_out * d_in
        dw = np.repeat(np.frombuffer(buf[off:off + 4 * d_out], "<f4").reshape(d_out, 1), nb, axis=1)
        off += 4 * d_out
    else:
        dw, qw = q8_0_ref.split_q8_0(buf[off:off + 34 * nb * d_out])
        off += 34 * nb * d_out
        dw = dw.astype(np.float32).reshape(d_out, nb)
        qw = qw.astype(np.int64).reshape(d_out, nb, 32)
    y = np.frombuffer(buf[off:off + 4 * n * d_out], "<f4").reshape(n, d_out).astype(np.float64)
    qx, dx = quantize_acts(x)
    s = np.einsum("rbk,tbk->trb", qw, qx)  # exact integer block sums (n, d_out, nb)
    sc = (dw[None, :, :] * dx[:, None, :]).astype(np.float32).astype(np.float64)  # one f32 multiply
    terms = s.astype(np.float64) * sc
    ref = terms.sum(axis=2)
    mag = np.abs(terms).sum(axis=2)
    rel = np.abs(y - ref) / np.maximum(mag, 1e-300)
    rel = np.where(mag > 0, rel, np.abs(y - ref))
    worst = float(rel.max())
    ok = worst <= TOL and np.all(np.isfinite(y))
    print("  %-4s %-44s max |diff| / sum |terms| %.3g (tolerance %g)" % ("ok" if ok else "FAIL", label, worst, TOL))
    if not ok:
        failures.append(label)


def main():
    tools = os.environ.get("HR_TOOLS_DIR")
    if not tools:
        print("check_int8dot_reference: HR_TOOLS_DIR must be set", file=sys.stderr)
        return 1
    tool = os.path.join(tools, "hr_int8dot_dump")
    for channel in (0, 1):
        for n, d_in, d_out in [(1, 96, 45), (13, 288, 70), (70, 320, 33)]:
            for hw in ("1", "0"):
                check(tool, n, d_in, d_out, n + d_in, {"HEADROOM_INT8_HW": hw},
                      "%s %d x %d x %d, %s" % ("int8" if channel else "Q8_0", n, d_in, d_out,
                                               "VPDPBUSD if the CPU has it" if hw == "1" else "emulated"), channel)
    return refcheck.finish(failures, "int8 dot reference checks")


if __name__ == "__main__":
    sys.exit(main())
