#!/usr/bin/python3
"""Writers keep the input model's dtype: prune, gqa, finetune and quantize
of a bf16, f16 and Q8_0 stories260K, against an independent rounding.

Run by tests/test_writers_keep_dtype.sh. For each dtype D the input X is
stories260K converted by `headroom convert --dtype D`, and F the same
weights as f32 (`convert X --dtype f32`, exact). Then:
  - `prune X --by random --seed 3 --heads 50% --uniform` without --dtype
    writes pX.gguf and the HF folder pX-hf; the same on F gives pF (f32);
  - every tensor of pX.gguf has the type D gives it (matrices D; for Q8_0
    the matrices whose rows hold a multiple of 32 values, the others f16;
    vectors f32) and bytes equal to an independent rounding of pF's f32
    values: bf16 by torch's float32 -> bfloat16 cast (round to nearest
    even), f16 by numpy's float16 cast, Q8_0 by q8_0_ref.quantize_q8_0
    (ggml's Q8_0 from its specification) -- exact, mismatches counted;
  - the HF folder holds BF16 / F16 for a bf16 / f16 input and F32 for a Q8_0
    one (an HF folder has no Q8_0; f32 holds every Q8_0 value exactly), with
    bytes equal to the same rounding (Q/K rows taken back from HF's
    rotate-half order); a Q8_0 input is pruned in Q8_0 (rows copied,
    attn_output columns re-quantized, study/prune/build.c), so its HF
    folder holds the values of the pruned GGUF (the Q8_0 rounding);
  - headroom's logits of both outputs (tests/tools/hr_logits, prefill and
    decode) vs the float64 PyTorch reference (llama_ref) run on the rounded
    weights: max abs diff <= 1e-4 (the tolerance of check_reference.py);
  - --dtype overrides: the bf16 input pruned with --dtype f32 equals pF;
  - gqa, finetune (2 LoRA steps), prune --recover (2 steps) and quantize
    (--by random) of the bf16 input write bf16 matrices (quantize: the
    chosen ones Q8_0, the rest bf16; with --dtype f32 the rest f32); the
    bf16 input converted to an HF folder (bf16 kept) and pruned writes bf16.
Prints every count and max diff; exits 1 on any failure.
"""

import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refcheck  # noqa: E402
import llama_ref  # noqa: E402
import q8_0_ref  # noqa: E402
from check_q8_0_reference import gguf_names  # noqa: E402

REF_TOL = 1e-4
GGML = {"f32": q8_0_ref.GGML_F32, "f16": q8_0_ref.GGML_F16, "bf16": q8_0_ref.GGML_BF16, "q8_0": q8_0_ref.GGML_Q8_0}
failures = []


def check(label, ok, detail):
    print("  %-4s %-66s %s" % ("ok" if ok else "FAIL", label, detail))
    if not ok:
        failures.append(label)


def run(cli, *args):
    r = subprocess.run([cli] + list(args) + ["-q"], capture_output=True, text=True)
    if r.returncode != 0:
        print("    %s: %s" % (" ".join(args[:2]), (r.stdout + r.stderr).strip()[-400:]))
    return r.returncode == 0


def rounded(x, dtype, matrix):
    """(ggml type, bytes, float64 values) of float32 x stored as dtype; a
    GGUF keeps vectors f32 (matrix False)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if dtype == "f32" or not matrix:
        return q8_0_ref.GGML_F32, x.tobytes(), x.astype(np.float64)
    if dtype == "q8_0" and x.shape[-1] % q8_0_ref.QK8_0 != 0:
        dtype = "f16"  # the documented fallback of a Q8_0 file
    if dtype == "bf16":
        t = torch.from_numpy(x).to(torch.bfloat16)
        return q8_0_ref.GGML_BF16, t.view(torch.int16).numpy().tobytes(), t.to(torch.float64).numpy()
    if dtype == "f16":
        h = x.astype(np.float16)
        return q8_0_ref.GGML_F16, h.tobytes(), h.astype(np.float64)
    d, q = q8_0_ref.quantize_q8_0(x)
    blocks = np.concatenate([d.reshape(-1, 1).view(np.uint8), q.view(np.uint8)], axis=1)
    return q8_0_ref.GGML_Q8_0, blocks.tobytes(), q8_0_ref.dequantize_q8_0(d, q).astype(np.float64).reshape(x.shape)


def read_safetensors(path):
    """{name: (dtype, shape, bytes)}."""
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack_from("<Q", b)[0]
    hdr, base = json.loads(b[8:8 + n]), 8 + n
    return {k: (e["dtype"], e["shape"], b[base + e["data_offsets"][0]:base + e["data_offsets"][1]])
            for k, e in hdr.items() if k != "__metadata__"}


HF_NAME = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
           "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
           "ffn_gate": "mlp.gate_proj", "ffn_down": "mlp.down_proj", "ffn_up": "mlp.up_proj"}


def hf_name(name):
    if name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if name == "output_norm.weight":
        return "model.norm.weight"
    _, layer, part, _ = name.split(".")
    return "model.layers.%s.%s.weight" % (layer, HF_NAME[part])


def rotate_half(w, head_dim):
    """Interleaved-pair Q/K rows (GGUF llama) in HF's rotate-half order."""
    h = w.reshape(-1, head_dim, w.shape[-1])
    return np.concatenate([h[:, 0::2], h[:, 1::2]], axis=1).reshape(w.shape)


def reference_logits(src, c, heads, kv_heads, values, tokens):
    """llama_ref in float64 with the pruned shapes and the given weights."""
    ref = llama_ref.Llama(src, dtype=torch.float64)
    ref.cfg.n_heads, ref.cfg.n_kv_heads = heads, kv_heads
    per = {}
    for name, sec, layer in gguf_names(c):
        per.setdefault(sec, {})[layer] = values[name]
    for sec, v in per.items():
        ref.w[sec] = torch.from_numpy(v[None] if None in v else np.stack([v[i] for i in range(c.n_layers)]))
    ref.w["wcls"] = ref.w["tok_emb"]
    ref.reset()
    return ref.logits(tokens, "full").numpy()


def check_logits(label, tools, model, want, tokens, tmp):
    out = os.path.join(tmp, "logits.f32")
    worst = 0.0
    for mode in ("prefill", "decode"):
        r = subprocess.run([os.path.join(tools, "hr_logits"), model, "--tokens", ",".join(map(str, tokens)), "--out",
                            out, "--mode", mode], capture_output=True, text=True)
        got = np.fromfile(out, dtype=np.float32) if r.returncode == 0 else np.zeros(0)
        worst = max(worst, float(np.max(np.abs(got.reshape(want.shape) - want))) if got.size == want.size else np.inf)
    check(label, worst <= REF_TOL, "max abs diff %.3g (tol %.0e), prefill and decode" % (worst, REF_TOL))


def matrix_types(path):
    """{name: ggml type} of the 2-D tensors of a GGUF."""
    r = q8_0_ref.Reader(path)
    return {k: ty for k, (ne, ty, _) in r.tensors.items() if len(ne) == 2}


def check_pruned(cli, tools, src, c, tmp, dtype, tokens):
    x, f = os.path.join(tmp, "x-%s.gguf" % dtype), os.path.join(tmp, "f-%s.gguf" % dtype)
    px, pf, hf = (os.path.join(tmp, n % dtype) for n in ("px-%s.gguf", "pf-%s.gguf", "px-%s-hf"))
    prune = ["--by", "random", "--seed", "3", "--heads", "50%", "--uniform"]
    ok = (run(cli, "convert", src, x, "--to", "gguf", "--dtype", dtype) and
          run(cli, "convert", x, f, "--to", "gguf", "--dtype", "f32") and
          run(cli, "prune", x, *prune, "-o", px, "--hf", hf) and run(cli, "prune", f, *prune, "-o", pf))
    check("%s input: convert, prune (no --dtype), prune of its f32 copy" % dtype, ok, "")
    if not ok:
        return
    rp, rf = q8_0_ref.Reader(px), q8_0_ref.Reader(pf)
    heads, kv = rf.kv["llama.attention.head_count"], rf.kv["llama.attention.head_count_kv"]
    st = read_safetensors(os.path.join(hf, "model.safetensors"))
    hf_dtype = {"bf16": "BF16", "f16": "F16", "q8_0": "F32"}[dtype]
    n = bad_type = bad_bytes = hf_bad = 0
    gguf_vals, hf_vals = {}, {}
    for name, sec, layer in gguf_names(c):
        want32 = rf.values(name).astype(np.float32)
        matrix = want32.ndim == 2
        ty, want, gguf_vals[name] = rounded(want32, dtype, matrix)
        ne, got_ty, got = rp.raw(name)
        n += 1
        bad_type += got_ty != ty
        bad_bytes += got != want
        if got_ty != ty or got != want:
            print("    %s: type %d (want %d), bytes %s" % (name, got_ty, ty, "equal" if got == want else "differ"))
        # The HF folder: every tensor in one dtype, vectors too.
        hd = {"F32": "f32", "F16": "f16", "BF16": "bf16"}[hf_dtype]
        # A Q8_0 input is pruned in Q8_0 (rows copied, columns re-quantized):
        # the pruned model, so its HF folder, holds the pruned GGUF's values.
        hsrc = gguf_vals[name].astype(np.float32) if dtype == "q8_0" else want32
        _, hb, hf_vals[name] = rounded(hsrc, hd, True)
        if sec in ("wq", "wk"):
            _, hb, _ = rounded(rotate_half(hsrc, c.head_dim), hd, True)
        e = st.get(hf_name(name))
        if e is None or e[0] != hf_dtype or e[2] != hb:
            hf_bad += 1
            print("    HF %s: %s" % (hf_name(name), "missing" if e is None else "%s, bytes differ" % e[0]))
    check("%s input: pruned GGUF tensors have the input's types" % dtype, bad_type == 0 and n > 0,
          "%d tensors, %d with another type" % (n, bad_type))
    check("%s input: pruned GGUF bytes = independent rounding of the f32 prune" % dtype, bad_bytes == 0,
          "%d of %d differ" % (bad_bytes, n))
    check("%s input: HF folder is %s, bytes = the same rounding" % (dtype, hf_dtype),
          hf_bad == 0 and len(st) == n, "%d of %d differ (%d tensors)" % (hf_bad, n, len(st)))
    check_logits("%s input: pruned GGUF logits vs reference on rounded weights" % dtype, tools, px,
                 reference_logits(src, c, heads, kv, gguf_vals, tokens), tokens, tmp)
    check_logits("%s input: pruned HF folder logits vs reference" % dtype, tools, hf,
                 reference_logits(src, c, heads, kv, hf_vals, tokens), tokens, tmp)
    if dtype == "bf16":
        p32 = os.path.join(tmp, "px-f32.gguf")
        ok = run(cli, "prune", x, *prune, "-o", p32, "--dtype", "f32")
        r32 = q8_0_ref.Reader(p32) if ok else None
        same = ok and all(r32.raw(k)[1] == 0 and r32.raw(k)[2] == rf.raw(k)[2] for k in rf.tensors)
        check("bf16 input pruned with --dtype f32 equals the f32 prune", same, "")


def check_other_writers(cli, tmp, text):
    x = os.path.join(tmp, "x-bf16.gguf")
    g, ft, q, q32 = (os.path.join(tmp, n) for n in ("g.gguf", "ft.gguf", "q.gguf", "q32.gguf"))
    bf16 = q8_0_ref.GGML_BF16
    ok = run(cli, "gqa", x, "--kv-heads", "2", "-o", g)
    types = set(matrix_types(g).values()) if ok else None
    check("gqa of the bf16 input writes bf16 matrices", types == {bf16}, str(types))
    ok = run(cli, "finetune", x, "-f", text, "--window", "32", "--batch", "2", "--steps", "2", "--lora-rank", "2",
             "-o", ft)
    types = set(matrix_types(ft).values()) if ok else None
    check("finetune of the bf16 input writes bf16 matrices", types == {bf16}, str(types))
    rec = os.path.join(tmp, "rec.gguf")
    ok = run(cli, "prune", x, "--by", "random", "--heads", "50%", "--recover", "2", "--recover-text", text, "-o", rec)
    types = set(matrix_types(rec).values()) if ok else None
    check("prune --recover of the bf16 input writes bf16 matrices", types == {bf16}, str(types))
    hf, php = os.path.join(tmp, "x-bf16-hf"), os.path.join(tmp, "p-from-hf.gguf")
    ok = run(cli, "convert", x, hf, "--to", "hf") and run(cli, "prune", hf, "--by", "random", "--heads", "50%", "-o",
                                                          php)
    types = set(matrix_types(php).values()) if ok else None
    check("an HF folder kept bf16 by convert, pruned, writes bf16 matrices", types == {bf16}, str(types))
    for out, extra, rest in ((q, [], bf16), (q32, ["--dtype", "f32"], q8_0_ref.GGML_F32)):
        ok = run(cli, "quantize", x, "--by", "random", "--int8", "50%", "--seed", "1", "-o", out, *extra)
        if not ok:
            check("quantize %s" % " ".join(extra), False, "failed")
            continue
        with open(out + ".quantize.json") as f:
            comps = json.load(f)["components"]
        chosen = {c["name"] for c in comps if c["chosen"]}
        types = matrix_types(out)
        bad = [k for k, ty in types.items() if ty != (q8_0_ref.GGML_Q8_0 if k in chosen else rest)]
        check("quantize of the bf16 input %s: chosen Q8_0, the rest %s" % (" ".join(extra) or "(no --dtype)",
              "f32" if extra else "bf16"), not bad and chosen, "%d chosen, %d wrong: %s" % (len(chosen), len(bad),
                                                                                         bad[:3]))


def main():
    tools, shared, cli = (os.environ.get(k) for k in ("HR_TOOLS_DIR", "HR_SHARED_DIR", "HR_CLI"))
    if not tools or not shared or not cli:
        print("check_writers_keep_dtype: HR_TOOLS_DIR, HR_SHARED_DIR and HR_CLI must be set", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    src = os.path.join(shared, "models/stories260K/stories260K.bin")
    text = os.path.join(shared, "data/text/tinystories_val.txt")
    if not os.path.exists(src) or not os.path.exists(text):
        print("SKIP: %s or %s is missing" % (src, text))
        return 77
    c, _ = llama_ref.load_llama2c(src)
    rng = random.Random(14)
    tokens = [rng.randrange(c.vocab) for _ in range(40)]
    tmp = tempfile.mkdtemp(prefix="hr_keep_dtype_")
    try:
        small = os.path.join(tmp, "text.txt")
        with open(text, "rb") as f, open(small, "wb") as g:
            g.write(f.read(20000))
        for dtype in ("bf16", "f16", "q8_0"):
            check_pruned(cli, tools, src, c, tmp, dtype, tokens)
        check_other_writers(cli, tmp, small)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return refcheck.finish(failures, "keep-dtype checks")


if __name__ == "__main__":
    sys.exit(main())
