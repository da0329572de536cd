#!/usr/bin/python3
"""A random-weight Llama GGUF of a given shape, for memory and speed
measurements (docs/RESULTS.md §5, bench/bench_llamacpp.sh): written
independently of headroom from the GGUF v3 definition (header, key/values,
tensor infos, 32-byte aligned data) and ggml's block formats.
Matrices (and the token embedding) have random signs and mantissas and
|w| in [0.0078, 0.0156) (exponent 2^-7), streamed in row blocks, in the
chosen dtype: bf16, f16, f32, or q8_0 (blocks of 32: an f16 scale
0.0156/127 and 32 random int8 in [-127, 127]); norms are f32 ones.
Tied presets (smollm-135m) have no output.weight.

Without --vocab no tokenizer is embedded (pass --tokenizer to headroom).
--vocab dummy embeds an SPM ("llama") vocabulary of the preset's size:
<unk> <s> </s>, the 256 byte pieces <0x00>..<0xFF>, then filler pieces
"t<i>" — enough for llama.cpp to load the file (its llama-bench draws
random ids) and for both engines to run the same file.

  make_random_gguf.py OUT [--preset NAME] [--dtype bf16|f16|f32|q8_0]
                          [--vocab dummy] [--seed N]
"""
import argparse
import struct
import sys

import numpy as np

PRESETS = {
    # Llama-3.1-8B: hidden 4096, 32 layers, 32 heads, 8 KV heads, FFN 14336, vocab 128256, untied
    "llama-3.1-8b": dict(dim=4096, layers=32, heads=32, kv=8, ff=14336, vocab=128256, ctx=131072),
    # SmolLM-135M: hidden 576, 30 layers, 9 heads, 3 KV heads, FFN 1536, vocab 49152, tied
    "smollm-135m": dict(dim=576, layers=30, heads=9, kv=3, ff=1536, vocab=49152, ctx=2048, tied=True,
                        rope=10000.0),
    # TinyLlama-1.1B: hidden 2048, 22 layers, 32 heads, 4 KV heads, FFN 5632, vocab 32000, untied
    "tinyllama-1.1b": dict(dim=2048, layers=22, heads=32, kv=4, ff=5632, vocab=32000, ctx=2048, rope=10000.0),
    "tiny": dict(dim=128, layers=2, heads=4, kv=2, ff=320, vocab=512, ctx=256),
}
F32, F16, Q8_0, BF16 = 0, 1, 8, 30
DTYPES = {"f32": F32, "f16": F16, "q8_0": Q8_0, "bf16": BF16}
ALIGN = 32


def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def kv_str(k, v):
    return s(k) + struct.pack("<I", 8) + s(v)


def kv_u32(k, v):
    return s(k) + struct.pack("<I", 4) + struct.pack("<I", v)


def kv_f32(k, v):
    return s(k) + struct.pack("<I", 6) + struct.pack("<f", v)


def kv_arr(k, elem_type, items):
    """An array key/value: elem_type 8 (strings), 6 (f32) or 5 (i32)."""
    if elem_type == 8:
        body = b"".join(s(x) for x in items)
    else:
        body = np.asarray(items, dtype=np.float32 if elem_type == 6 else np.int32).tobytes()
    return s(k) + struct.pack("<IIQ", 9, elem_type, len(items)) + body


def dummy_vocab(n):
    """An SPM vocabulary of n pieces (types: 2 unknown, 3 control, 6 byte, 1 normal)."""
    toks = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    toks += ["t%d" % i for i in range(n - len(toks))]
    types += [1] * (n - len(types))
    return [kv_str("tokenizer.ggml.model", "llama"), kv_arr("tokenizer.ggml.tokens", 8, toks),
            kv_arr("tokenizer.ggml.scores", 6, [-float(i) for i in range(n)]),
            kv_arr("tokenizer.ggml.token_type", 5, types), kv_u32("tokenizer.ggml.unknown_token_id", 0),
            kv_u32("tokenizer.ggml.bos_token_id", 1), kv_u32("tokenizer.ggml.eos_token_id", 2)]


def nbytes(ty, rows, cols):
    n = rows * cols
    return {F32: 4 * n, F16: 2 * n, BF16: 2 * n, Q8_0: n // 32 * 34}[ty]


def random_rows(rng, ty, k):
    """k random values of dtype ty as bytes (k a multiple of 32 for q8_0)."""
    if ty == Q8_0:
        q = rng.integers(-127, 128, size=(k // 32, 32), dtype=np.int8)
        d = np.full((k // 32, 1), 0.0156 / 127, dtype=np.float16)
        return np.concatenate([d.view(np.uint8), q.view(np.uint8)], axis=1).tobytes()
    bits = rng.integers(0, 1 << 16, size=k, dtype=np.uint16)
    if ty == BF16:
        return ((bits & 0x807F) | 0x3C00).astype(np.uint16).tobytes()  # sign, 2^-7, 7 mantissa bits
    h = ((bits & 0x83FF) | 0x2000).astype(np.uint16)  # f16: sign, 2^-7, 10 mantissa bits
    return h.tobytes() if ty == F16 else h.view(np.float16).astype(np.float32).tobytes()


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    ap.add_argument("--vocab", choices=["dummy"])
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    p = PRESETS[a.preset]
    BF16_ = DTYPES[a.dtype]
    d, hd = p["dim"], p["dim"] // p["heads"]
    kvd = p["kv"] * hd
    tensors = [("token_embd.weight", (p["vocab"], d), BF16_)]
    for l in range(p["layers"]):
        b = "blk.%d." % l
        tensors += [(b + "attn_norm.weight", (1, d), F32), (b + "attn_q.weight", (d, d), BF16_),
                    (b + "attn_k.weight", (kvd, d), BF16_), (b + "attn_v.weight", (kvd, d), BF16_),
                    (b + "attn_output.weight", (d, d), BF16_), (b + "ffn_norm.weight", (1, d), F32),
                    (b + "ffn_gate.weight", (p["ff"], d), BF16_), (b + "ffn_up.weight", (p["ff"], d), BF16_),
                    (b + "ffn_down.weight", (d, p["ff"]), BF16_)]
    tensors += [("output_norm.weight", (1, d), F32)]
    if not p.get("tied"):
        tensors += [("output.weight", (p["vocab"], d), BF16_)]
    kvs = [kv_str("general.architecture", "llama"), kv_str("general.name", "random " + a.preset),
           kv_u32("llama.block_count", p["layers"]), kv_u32("llama.embedding_length", d),
           kv_u32("llama.context_length", p["ctx"]), kv_u32("llama.attention.head_count", p["heads"]),
           kv_u32("llama.attention.head_count_kv", p["kv"]), kv_u32("llama.feed_forward_length", p["ff"]),
           kv_f32("llama.rope.freq_base", p.get("rope", 500000.0)), kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5),
           kv_u32("llama.rope.dimension_count", hd), kv_u32("general.alignment", ALIGN)]
    if a.vocab:
        kvs += dummy_vocab(p["vocab"])
    infos, off = b"", 0
    for name, (rows, cols), ty in tensors:
        nd = 1 if rows == 1 else 2
        infos += s(name) + struct.pack("<I", nd) + struct.pack("<Q", cols)
        if nd == 2:
            infos += struct.pack("<Q", rows)
        infos += struct.pack("<IQ", ty, off)
        off += nbytes(ty, rows, cols)
        off += -off % ALIGN
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs) + infos
    rng = np.random.default_rng(a.seed)
    with open(a.out, "wb") as f:
        f.write(head + b"\0" * (-len(head) % ALIGN))
        for name, (rows, cols), ty in tensors:
            n = rows * cols
            if ty == F32:
                f.write(np.ones(n, dtype=np.float32).tobytes())
            else:
                step = max(1, (1 << 25) // cols)
                for r in range(0, rows, step):
                    f.write(random_rows(rng, ty, min(step, rows - r) * cols))
            pad = -nbytes(ty, rows, cols) % ALIGN
            f.write(b"\0" * pad)


if __name__ == "__main__":
    sys.exit(main())
