#!/usr/bin/python3
"""Random-weight Hugging Face folders (config.json + safetensors) for tests.

Written independently of headroom: safetensors are produced by hand
(struct + json), following the format's definition:
  u64 header length | JSON {name: {dtype, shape, data_offsets}, "__metadata__"}
  | raw little-endian data
Tensor names and config fields follow transformers' GPT2 / Qwen2 / Llama
checkpoints (GPT-2 Conv1D weights stored (in, out)).

CLI:
  make_hf_random.py ARCH OUT [--seed N] [--dtype f32|f16|bf16|int8] [--shards N]
                    [--no-prefix] [--preset tiny|llama-3.2-1b|llama-3.1-8b]
  ARCH: gpt2, qwen2, llama (tiny llama: GQA + rope_scaling llama3)
The llama-3.2-1b preset has Llama-3.2-1B's shape (hidden 2048, 16 layers,
32 heads, 8 KV heads, intermediate 8192, vocab 128256, tied, rope llama3);
llama-3.1-8b Llama-3.1-8B's (hidden 4096, 32 layers, 32 heads, 8 KV heads,
intermediate 14336, vocab 128256, untied, rope llama3): 16 GB in bf16, for
the memory measurements of docs/RESULTS.md §5 (written in row blocks).
--dtype int8 (llama / qwen2): the attention and MLP projections as
compressed-tensors "int-quantized" per-channel int8, the way llm-compressor
writes W8A8 checkpoints: NAME.weight I8 (rows, cols), NAME.weight_scale
BF16 (rows, 1), scale = bf16(max |row| / 127.5) (at least float32 eps),
q = clip(rint(w / scale), -128, 127); quantization_config in config.json;
other tensors f32. Row 0 of layer 0's q_proj is zero (scale eps).
"""

import argparse
import json
import os
import struct
import sys

import numpy as np

ST_DTYPE = {"f32": "F32", "f16": "F16", "bf16": "BF16"}


def encode(a, dtype):
    """float32 array -> little-endian bytes of the dtype (bf16: round to nearest even)."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    if dtype == "f32":
        return a.tobytes()
    if dtype == "f16":
        return a.astype(np.float16).tobytes()
    u = a.view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return r.tobytes()


def dtype_size(dtype):
    return 4 if dtype in ("f32", "int8") else 2


class Gen:
    def __init__(self, seed, scale):
        self.rng = np.random.default_rng(seed)
        self.scale = scale

    def w(self, *shape):
        return (self.rng.standard_normal(shape, dtype=np.float32) * self.scale).astype(np.float32)

    def norm(self, n):
        return (1.0 + 0.1 * self.rng.standard_normal(n, dtype=np.float32)).astype(np.float32)

    def bias(self, n):
        return (0.1 * self.rng.standard_normal(n, dtype=np.float32)).astype(np.float32)


def gpt2_spec(cfg, prefix):
    d, L, ff, V, P = cfg["n_embd"], cfg["n_layer"], cfg.get("n_inner") or 4 * cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]
    p = "transformer." if prefix else ""
    out = [(p + "wte.weight", (V, d), "w"), (p + "wpe.weight", (P, d), "w")]
    for l in range(L):
        h = "%sh.%d." % (p, l)
        out += [(h + "ln_1.weight", (d,), "norm"), (h + "ln_1.bias", (d,), "bias"),
                (h + "attn.c_attn.weight", (d, 3 * d), "w"), (h + "attn.c_attn.bias", (3 * d,), "bias"),
                (h + "attn.c_proj.weight", (d, d), "w"), (h + "attn.c_proj.bias", (d,), "bias"),
                (h + "ln_2.weight", (d,), "norm"), (h + "ln_2.bias", (d,), "bias"),
                (h + "mlp.c_fc.weight", (d, ff), "w"), (h + "mlp.c_fc.bias", (ff,), "bias"),
                (h + "mlp.c_proj.weight", (ff, d), "w"), (h + "mlp.c_proj.bias", (d,), "bias")]
    out += [(p + "ln_f.weight", (d,), "norm"), (p + "ln_f.bias", (d,), "bias")]
    return out


def llama_spec(cfg, prefix, biases):
    d, L, ff, V = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"], cfg["vocab_size"]
    hd = cfg.get("head_dim") or d // cfg["num_attention_heads"]
    q, kv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    p = "model." if prefix else ""
    out = [(p + "embed_tokens.weight", (V, d), "w")]
    for l in range(L):
        h = "%slayers.%d." % (p, l)
        out += [(h + "input_layernorm.weight", (d,), "norm"),
                (h + "self_attn.q_proj.weight", (q, d), "w"), (h + "self_attn.k_proj.weight", (kv, d), "w"),
                (h + "self_attn.v_proj.weight", (kv, d), "w"), (h + "self_attn.o_proj.weight", (d, q), "w")]
        if biases:
            out += [(h + "self_attn.q_proj.bias", (q,), "bias"), (h + "self_attn.k_proj.bias", (kv,), "bias"),
                    (h + "self_attn.v_proj.bias", (kv,), "bias")]
        out += [(h + "post_attention_layernorm.weight", (d,), "norm"),
                (h + "mlp.gate_proj.weight", (ff, d), "w"), (h + "mlp.up_proj.weight", (ff, d), "w"),
                (h + "mlp.down_proj.weight", (d, ff), "w")]
    out += [(p + "norm.weight", (d,), "norm")]
    if not cfg.get("tie_word_embeddings", False):
        out += [("lm_head.weight", (V, d), "w")]
    return out


def configs(arch, preset):
    if arch == "gpt2":
        return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 64, "n_layer": 2,
                "n_head": 4, "n_positions": 64, "n_ctx": 64, "n_inner": None, "vocab_size": 101,
                "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new", "tie_word_embeddings": True}
    if arch == "qwen2":
        return {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 64,
                "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
                "num_key_value_heads": 2, "max_position_embeddings": 64, "rms_norm_eps": 1e-6,
                "rope_theta": 1000000.0, "vocab_size": 97, "tie_word_embeddings": True, "hidden_act": "silu"}
    if preset == "llama-3.2-1b":
        return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
                "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
                "num_key_value_heads": 8, "head_dim": 64, "max_position_embeddings": 131072,
                "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "vocab_size": 128256,
                "tie_word_embeddings": True, "hidden_act": "silu", "torch_dtype": "bfloat16",
                "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                 "original_max_position_embeddings": 8192, "rope_type": "llama3"}}
    if preset == "llama-3.1-8b":
        return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
                "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
                "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 131072,
                "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "vocab_size": 128256,
                "tie_word_embeddings": False, "hidden_act": "silu", "torch_dtype": "bfloat16",
                "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                 "original_max_position_embeddings": 8192, "rope_type": "llama3"}}
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
            "intermediate_size": 80, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0, "vocab_size": 89, "tie_word_embeddings": False, "hidden_act": "silu",
            "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                             "high_freq_factor": 4.0, "original_max_position_embeddings": 16}}


def int8_channel(w):
    """compressed-tensors' symmetric per-channel int8 of w (rows, cols): (q int8, scale bf16 bits (rows, 1))."""
    amax = np.max(np.abs(w), axis=1, keepdims=True).astype(np.float32)
    scale = np.maximum(amax / np.float32(127.5), np.finfo(np.float32).eps).astype(np.float32)
    sbits = np.frombuffer(encode(scale, "bf16"), dtype="<u2").reshape(scale.shape)
    s = (sbits.astype(np.uint32) << 16).view(np.float32)
    q = np.clip(np.rint(w / s), -128, 127).astype(np.int8)
    return q, sbits


def int8_spec(spec):
    """Projection weights -> (name, shape, "q8w") + (name_scale, (rows, 1), "q8s")."""
    out = []
    for name, shape, kind in spec:
        if kind == "w" and name.endswith("_proj.weight"):
            out += [(name, shape, "q8w"), (name + "_scale", (shape[0], 1), "q8s")]
        else:
            out.append((name, shape, kind))
    return out


QUANT_CONFIG = {"quant_method": "compressed-tensors", "format": "int-quantized", "quantization_status": "compressed",
                "ignore": ["lm_head"], "kv_cache_scheme": None,
                "config_groups": {"group_0": {"targets": ["Linear"], "output_activations": None,
                                              "input_activations": {"num_bits": 8, "type": "int", "symmetric": True,
                                                                    "strategy": "token", "dynamic": True},
                                              "weights": {"num_bits": 8, "type": "int", "symmetric": True,
                                                          "strategy": "channel", "group_size": None,
                                                          "dynamic": False, "observer": "minmax"}}}}


def write_shard(path, entries, dtype, gen):
    """entries: (name, shape, kind). Data generated tensor by tensor."""
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for name, shape, kind in entries:
        st, size = ST_DTYPE.get(dtype, "F32"), dtype_size(dtype)
        if kind == "q8w":
            st, size = "I8", 1
        elif kind == "q8s":
            st, size = "BF16", 2
        n = int(np.prod(shape)) * size
        header[name] = {"dtype": st, "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for name, shape, kind in entries:
            if kind == "q8w":
                w = gen.w(*shape)
                if ".layers.0.self_attn.q_proj" in "." + name:
                    w[0, :] = 0.0
                q, gen.pending_scale = int8_channel(w)
                f.write(q.tobytes())
            elif kind == "q8s":
                f.write(gen.pending_scale.astype("<u2").tobytes())
            elif kind == "w":
                # Row blocks keep peak memory low for the 1B preset.
                rows = shape[0]
                step = max(1, (1 << 24) // max(1, int(np.prod(shape[1:]))))
                for r in range(0, rows, step):
                    f.write(encode(gen.w(min(step, rows - r), *shape[1:]), "f32" if dtype == "int8" else dtype))
            elif kind == "norm":
                f.write(encode(gen.norm(shape[0]), "f32" if dtype == "int8" else dtype))
            else:
                f.write(encode(gen.bias(shape[0]), "f32" if dtype == "int8" else dtype))
    return off


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("arch", choices=["gpt2", "qwen2", "llama"])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dtype", choices=["f32", "f16", "bf16", "int8"], default="f32")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--no-prefix", action="store_true")
    ap.add_argument("--preset", choices=["tiny", "llama-3.2-1b", "llama-3.1-8b"], default="tiny")
    ap.add_argument("--scale", type=float, default=0.0)
    a = ap.parse_args(argv)
    cfg = configs(a.arch, a.preset)
    prefix = not a.no_prefix
    spec = gpt2_spec(cfg, prefix) if a.arch == "gpt2" else llama_spec(cfg, prefix, a.arch == "qwen2")
    if a.dtype == "int8":
        if a.arch == "gpt2":
            sys.exit("make_hf_random: --dtype int8 is for llama / qwen2")
        spec = int8_spec(spec)
        cfg["quantization_config"] = QUANT_CONFIG
    gen = Gen(a.seed, a.scale or (0.02 if a.preset != "tiny" else 0.15))
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    if a.shards <= 1:
        write_shard(os.path.join(a.out, "model.safetensors"), spec, a.dtype, gen)
        return
    per = (len(spec) + a.shards - 1) // a.shards
    weight_map, total = {}, 0
    for s in range(a.shards):
        part = spec[s * per:(s + 1) * per]
        fname = "model-%05d-of-%05d.safetensors" % (s + 1, a.shards)
        total += write_shard(os.path.join(a.out, fname), part, a.dtype, gen)
        for name, _, _ in part:
            weight_map[name] = fname
    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
