#!/usr/bin/python3
"""A random-weight Llama GGUF of a given shape, for memory measurements
(docs/RESULTS.md §5): written independently of headroom from the GGUF v3
definition (header, key/values, tensor infos, 32-byte aligned data).
Matrices are bf16 with random sign and mantissa and exponents of 2^-7
(|w| in [0.0078, 0.0156)), streamed in row blocks; norms are f32 ones.
No tokenizer is embedded (pass --tokenizer to headroom).

  make_random_gguf.py OUT [--preset llama-3.1-8b|tiny] [--seed N]
"""
import argparse
import struct
import sys

import numpy as np

PRESETS = {
    # Llama-3.1-8B: hidden 4096, 32 layers, 32 heads, 8 KV heads, FFN 14336, vocab 128256, untied
    "llama-3.1-8b": dict(dim=4096, layers=32, heads=32, kv=8, ff=14336, vocab=128256, ctx=131072),
    "tiny": dict(dim=128, layers=2, heads=4, kv=2, ff=320, vocab=512, ctx=256),
}
F32, BF16 = 0, 30
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


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    p = PRESETS[a.preset]
    d, hd = p["dim"], p["dim"] // p["heads"]
    kvd = p["kv"] * hd
    tensors = [("token_embd.weight", (p["vocab"], d), BF16)]
    for l in range(p["layers"]):
        b = "blk.%d." % l
        tensors += [(b + "attn_norm.weight", (1, d), F32), (b + "attn_q.weight", (d, d), BF16),
                    (b + "attn_k.weight", (kvd, d), BF16), (b + "attn_v.weight", (kvd, d), BF16),
                    (b + "attn_output.weight", (d, d), BF16), (b + "ffn_norm.weight", (1, d), F32),
                    (b + "ffn_gate.weight", (p["ff"], d), BF16), (b + "ffn_up.weight", (p["ff"], d), BF16),
                    (b + "ffn_down.weight", (d, p["ff"]), BF16)]
    tensors += [("output_norm.weight", (1, d), F32), ("output.weight", (p["vocab"], d), BF16)]
    kvs = [kv_str("general.architecture", "llama"), kv_str("general.name", "random " + a.preset),
           kv_u32("llama.block_count", p["layers"]), kv_u32("llama.embedding_length", d),
           kv_u32("llama.context_length", p["ctx"]), kv_u32("llama.attention.head_count", p["heads"]),
           kv_u32("llama.attention.head_count_kv", p["kv"]), kv_u32("llama.feed_forward_length", p["ff"]),
           kv_f32("llama.rope.freq_base", 500000.0), kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5),
           kv_u32("llama.rope.dimension_count", hd)]
    infos, off = b"", 0
    for name, (rows, cols), ty in tensors:
        nd = 1 if rows == 1 else 2
        infos += s(name) + struct.pack("<I", nd) + struct.pack("<Q", cols)
        if nd == 2:
            infos += struct.pack("<Q", rows)
        infos += struct.pack("<IQ", ty, off)
        off += rows * cols * (4 if ty == F32 else 2)
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
                    k = min(step, rows - r) * cols
                    bits = rng.integers(0, 1 << 16, size=k, dtype=np.uint16)
                    f.write(((bits & 0x807F) | 0x3C00).astype(np.uint16).tobytes())  # sign, 2^-7, mantissa
            pad = -(n * (4 if ty == F32 else 2)) % ALIGN
            f.write(b"\0" * pad)


if __name__ == "__main__":
    sys.exit(main())
