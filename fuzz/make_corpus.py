#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets into fuzz/corpus/<target>/.

Every seed is a tiny, valid file built here from the format descriptions in
include/headroom/{gguf,safetensors,model}.h, so that fuzzing starts past the
first validation checks. Deterministic: rerunning rewrites identical files.
Standard library only.  Usage: python3 fuzz/make_corpus.py [OUT_DIR]
"""
import json
import os
import random
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(1234)


def floats(n):
    return [round(rng.uniform(-1, 1), 3) for _ in range(n)]


def f32(vals):
    return struct.pack("<%df" % len(vals), *vals)


def f16(vals):
    return struct.pack("<%de" % len(vals), *vals)


def bf16(vals):
    return b"".join(struct.pack("<I", struct.unpack("<I", struct.pack("<f", v))[0])[2:] for v in vals)


# ---- GGUF ----------------------------------------------------------------

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
GGML_F32, GGML_F16, GGML_Q8_0, GGML_BF16 = 0, 1, 8, 30
SCALAR_FMT = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "?",
              U64: "Q", I64: "q", F64: "d"}


def gguf_str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gguf_value(ty, v):
    if ty == STR:
        return gguf_str(v)
    if ty == ARR:
        ety, items = v
        return struct.pack("<IQ", ety, len(items)) + b"".join(gguf_value(ety, x) for x in items)
    return struct.pack("<" + SCALAR_FMT[ty], v)


def gguf(kvs, tensors, align=32):
    """kvs: [(key, type, value)]; tensors: [(name, ne, ggml_type, bytes)]."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for k, ty, v in kvs:
        out += gguf_str(k) + struct.pack("<I", ty) + gguf_value(ty, v)
    offset, data = 0, b""
    for name, ne, ty, raw in tensors:
        out += gguf_str(name) + struct.pack("<I", len(ne)) + struct.pack("<%dQ" % len(ne), *ne)
        out += struct.pack("<IQ", ty, offset)
        pad = (-len(raw)) % align
        data += raw + b"\0" * pad
        offset += len(raw) + pad
    out += b"\0" * ((-len(out)) % align)
    return out + data


# Tiny Llama: dim 8, 2 heads of 4 sharing 1 KV head, FFN 16, 1 layer, vocab 8.
DIM, HEADS, KV, HD, FF, VOCAB, SEQ = 8, 2, 1, 4, 16, 8, 16

SPM_TOKENS = ["<unk>", "<s>", "</s>", "<0x41>", "\u2581", "a", "b", "\u2581a"]
SPM_TYPES = [2, 3, 3, 6, 1, 1, 1, 1]


def llama_gguf():
    kvs = [
        ("general.architecture", STR, "llama"),
        ("general.alignment", U32, 32),
        ("llama.block_count", U32, 1),
        ("llama.embedding_length", U32, DIM),
        ("llama.feed_forward_length", U32, FF),
        ("llama.attention.head_count", U32, HEADS),
        ("llama.attention.head_count_kv", U32, KV),
        ("llama.context_length", U32, SEQ),
        ("llama.rope.freq_base", F32, 10000.0),
        ("llama.attention.layer_norm_rms_epsilon", F32, 1e-5),
        ("llama.rope.dimension_count", U32, HD),
        ("tokenizer.ggml.model", STR, "llama"),
        ("tokenizer.ggml.tokens", ARR, (STR, SPM_TOKENS)),
        ("tokenizer.ggml.scores", ARR, (F32, [0.0, 0.0, 0.0, 0.0, -1.0, -2.0, -3.0, -0.5])),
        ("tokenizer.ggml.token_type", ARR, (I32, SPM_TYPES)),
        ("tokenizer.ggml.bos_token_id", U32, 1),
        ("tokenizer.ggml.eos_token_id", U32, 2),
        ("tokenizer.ggml.add_bos_token", BOOL, True),
    ]
    q, kv = HEADS * HD, KV * HD
    t = [("token_embd.weight", [DIM, VOCAB], GGML_F32, f32(floats(DIM * VOCAB))),
         ("output_norm.weight", [DIM], GGML_F32, f32(floats(DIM))),
         ("blk.0.attn_norm.weight", [DIM], GGML_F32, f32(floats(DIM))),
         ("blk.0.attn_q.weight", [DIM, q], GGML_F32, f32(floats(DIM * q))),
         ("blk.0.attn_k.weight", [DIM, kv], GGML_F16, f16(floats(DIM * kv))),
         ("blk.0.attn_v.weight", [DIM, kv], GGML_BF16, bf16(floats(DIM * kv))),
         ("blk.0.attn_output.weight", [q, DIM], GGML_F32, f32(floats(q * DIM))),
         ("blk.0.ffn_norm.weight", [DIM], GGML_F32, f32(floats(DIM))),
         ("blk.0.ffn_gate.weight", [DIM, FF], GGML_F32, f32(floats(DIM * FF))),
         ("blk.0.ffn_up.weight", [DIM, FF], GGML_F16, f16(floats(DIM * FF))),
         ("blk.0.ffn_down.weight", [FF, DIM], GGML_F32, f32(floats(FF * DIM)))]
    return gguf(kvs, t)


def gpt2_vocab_gguf():
    tokens = ["<|endoftext|>", "H", "e", "l", "o", "\u0120", "w", "r", "d", "He", "ll", "\u0120w", "llo"]
    kvs = [
        ("tokenizer.ggml.model", STR, "gpt2"),
        ("tokenizer.ggml.pre", STR, "gpt-2"),
        ("tokenizer.ggml.tokens", ARR, (STR, tokens)),
        ("tokenizer.ggml.token_type", ARR, (I32, [3] + [1] * (len(tokens) - 1))),
        ("tokenizer.ggml.merges", ARR, (STR, ["H e", "l l", "\u0120 w", "ll o"])),
        ("tokenizer.ggml.bos_token_id", U32, 0),
        ("tokenizer.ggml.eos_token_id", U32, 0),
    ]
    return gguf(kvs, [])


def typed_gguf():
    """Every metadata type, nested arrays and each tensor type, alignment 64."""
    kvs = [
        ("general.alignment", U32, 64),
        ("t.u8", U8, 200), ("t.i8", I8, -5), ("t.u16", U16, 60000), ("t.i16", I16, -300),
        ("t.u32", U32, 4000000000), ("t.i32", I32, -7), ("t.f32", F32, 0.5), ("t.bool", BOOL, True),
        ("t.str", STR, "caf\u00e9"), ("t.u64", U64, 1 << 40), ("t.i64", I64, -(1 << 40)), ("t.f64", F64, 2.25),
        ("t.arr_i32", ARR, (I32, [1, -2, 3])),
        ("t.arr_str", ARR, (STR, ["x", "", "yz"])),
        ("t.nested", ARR, (ARR, [(U8, [1, 2]), (STR, ["a"]), (ARR, [(F64, [1.5])])])),
        ("t.empty", ARR, (F32, [])),
    ]
    q8 = struct.pack("<e", 0.25) + bytes(rng.randrange(256) for _ in range(32))
    t = [("q8", [32], GGML_Q8_0, q8),
         ("bf", [4, 2], GGML_BF16, bf16(floats(8))),
         ("h", [2, 2, 2, 2], GGML_F16, f16(floats(16))),
         ("f", [3], GGML_F32, f32(floats(3)))]
    return gguf(kvs, t, align=64)


# ---- safetensors ---------------------------------------------------------

def safetensors(entries, metadata=None):
    """entries: [(name, dtype, shape, raw bytes)]."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((-len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + data


def st_seeds():
    return {
        "mixed.safetensors": safetensors([
            ("model.embed_tokens.weight", "F32", [2, 3], f32(floats(6))),
            ("h", "F16", [4], f16(floats(4))),
            ("b", "BF16", [2, 2], bf16(floats(4))),
            ("d", "F64", [1], struct.pack("<d", 0.5)),
            ("i", "I8", [3], b"\x01\xff\x7f"),
            ("s", "F32", [], f32([1.0])),
            ("z", "F32", [0, 4], b""),
        ], {"format": "pt"}),
        "empty.safetensors": safetensors([]),
    }


# ---- config.json -----------------------------------------------------------

def configs():
    llama = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
             "intermediate_size": 172, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "max_position_embeddings": 256, "rms_norm_eps": 1e-5,
             "rope_theta": 500000.0, "vocab_size": 512, "tie_word_embeddings": True, "hidden_act": "silu",
             "bos_token_id": 1, "eos_token_id": [2, 3], "torch_dtype": "bfloat16",
             "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                              "high_freq_factor": 4.0, "original_max_position_embeddings": 128}}
    mistral = {"model_type": "mistral", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
               "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16, "max_position_embeddings": 64,
               "vocab_size": 100, "attention_bias": False, "eos_token_id": 2}
    qwen2 = {"model_type": "qwen2", "hidden_size": 16, "intermediate_size": 40, "num_hidden_layers": 1,
             "num_attention_heads": 2, "max_position_embeddings": 32, "vocab_size": 64, "rope_theta": 1e6,
             "rope_scaling": None, "tie_word_embeddings": False, "sliding_window": None}
    gpt2 = {"model_type": "gpt2", "n_embd": 24, "n_layer": 2, "n_head": 3, "n_positions": 32, "n_ctx": 32,
            "vocab_size": 50, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new", "n_inner": None}
    return {"llama.json": llama, "mistral.json": mistral, "qwen2.json": qwen2, "gpt2.json": gpt2}


# ---- tokenizer.json --------------------------------------------------------

def tokenizer_jsons():
    byte_level = {
        "version": "1.0",
        "added_tokens": [{"id": 13, "content": "<|endoftext|>", "special": True}],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+|\\s+"},
             "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}]},
        "post_processor": {"type": "ByteLevel"},
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "ignore_merges": False,
                  "vocab": {"H": 0, "e": 1, "l": 2, "o": 3, "\u0120": 4, "w": 5, "r": 6, "d": 7,
                            "He": 8, "ll": 9, "\u0120w": 10, "llo": 11, "1": 12, "<|endoftext|>": 13},
                  "merges": [["H", "e"], "l l", ["\u0120", "w"], "ll o"]},
    }
    spm = {
        "version": "1.0",
        "added_tokens": [{"id": 0, "content": "<unk>", "special": True},
                         {"id": 1, "content": "<s>", "special": True},
                         {"id": 2, "content": "</s>", "special": True}],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": True, "byte_fallback": True,
                  "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x0A>": 3, "<0xC3>": 4, "<0xA9>": 5,
                            "\u2581": 6, "a": 7, "b": 8, "\u2581a": 9, "ab": 10, "\u2581ab": 11},
                  "merges": ["\u2581 a", "a b", "\u2581a b"]},
    }
    return {"byte_level.json": byte_level, "spm_byte_fallback.json": spm}


# ---- SentencePiece .model (protobuf ModelProto) -----------------------------
# Field numbers from sentencepiece's sentencepiece_model.proto (see
# src/tokenizer/spm_model.c): pieces = 1 {piece 1, score 2, type 3},
# trainer_spec = 2 {model_type 3, byte_fallback 35, unk/bos/eos/pad_id 40..43},
# normalizer_spec = 3 {name 1, add_dummy_prefix 3, remove_extra_whitespaces 4}.

def pb_varint(v):
    v &= (1 << 64) - 1  # negative int32 values are sign-extended to 64 bits
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        out += bytes([b | (0x80 if v else 0)])
        if not v:
            return out


def pb_field(num, wire, payload):
    if wire == 2:
        payload = pb_varint(len(payload)) + payload
    return pb_varint(num << 3 | wire) + payload


def pb_int(num, v):
    return pb_field(num, 0, pb_varint(v))


def spm_model(byte_fallback):
    pieces = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3)]
    if byte_fallback:
        pieces += [("<0x%02X>" % i, 0.0, 6) for i in range(256)]
    words = ["\u2581t", "he", "\u2581the", "\u2581", "t", "h", "e", "a", "\u2581a", "o", "\u2581o", "n", "on"]
    pieces += [(w, -float(i + 1), 1) for i, w in enumerate(words)]
    out = b""
    for text, score, ty in pieces:
        msg = pb_field(1, 2, text.encode()) + pb_field(2, 5, struct.pack("<f", score))
        if ty != 1:
            msg += pb_int(3, ty)
        out += pb_field(1, 2, msg)
    trainer = pb_int(3, 2) + pb_int(35, 1 if byte_fallback else 0) + pb_int(40, 0) + pb_int(41, 1) + \
        pb_int(42, 2) + pb_int(43, -1)
    normalizer = pb_field(1, 2, b"identity") + pb_int(3, 1) + pb_int(4, 0) + pb_int(5, 1)
    return out + pb_field(2, 2, trainer) + pb_field(3, 2, normalizer)


# ---- llama2.c --------------------------------------------------------------

def tokenizer_bin():
    pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n"] + [b"<0x%02X>" % i for i in (0x0A, 0x41, 0xC3, 0xA9)]
    pieces += [b" ", b"a", b"b", b" a", b"ab", b" ab", b"e"]
    out = struct.pack("<i", max(len(p) for p in pieces))
    for i, p in enumerate(pieces):
        out += struct.pack("<fi", -float(i), len(p)) + p
    return out


def llama2c_v0(tied):
    L, q, kv = 1, HEADS * HD, KV * HD
    hdr = struct.pack("<7i", DIM, FF, L, HEADS, KV, VOCAB if tied else -VOCAB, SEQ)
    n = (VOCAB * DIM + L * DIM + L * q * DIM + 2 * L * kv * DIM + L * DIM * q + L * DIM + 3 * L * FF * DIM
         + DIM + SEQ * HD + (0 if tied else VOCAB * DIM))
    return hdr + f32(floats(n))


def llama2c_q8():
    L, q, kv, gs = 1, HEADS * HD, KV * HD, 4
    hdr = struct.pack("<Ii7iBi", 0x616B3432, 2, DIM, FF, L, HEADS, KV, VOCAB, SEQ, 1, gs)
    out = hdr + b"\0" * (256 - len(hdr))
    out += f32(floats(2 * L * DIM + DIM))

    def q8(n):
        return bytes(rng.randrange(256) for _ in range(n)) + f32([0.01] * (n // gs))

    out += q8(VOCAB * DIM)
    for n in (q * DIM, kv * DIM, kv * DIM, DIM * q, FF * DIM, DIM * FF, FF * DIM):
        for _ in range(L):
            out += q8(n)
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")
    seeds = {
        "fuzz_gguf": {"llama.gguf": llama_gguf(), "gpt2_vocab.gguf": gpt2_vocab_gguf(),
                      "typed.gguf": typed_gguf()},
        "fuzz_safetensors": st_seeds(),
        "fuzz_hf_config": {k: json.dumps(v, indent=1).encode() for k, v in configs().items()},
        "fuzz_tokenizer_json": {k: json.dumps(v, ensure_ascii=False).encode() for k, v in tokenizer_jsons().items()},
        "fuzz_tokenizer_bin": {"tiny.bin": tokenizer_bin()},
        "fuzz_tokenizer_model": {"bpe.model": spm_model(False), "bpe_bytes.model": spm_model(True)},
        "fuzz_llama2c": {"tied_v0.bin": llama2c_v0(True), "untied_v0.bin": llama2c_v0(False),
                         "q8_v2.bin": llama2c_q8()},
    }
    for target, files in seeds.items():
        d = os.path.join(root, target)
        os.makedirs(d, exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
