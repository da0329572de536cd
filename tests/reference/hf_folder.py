"""Reads a Hugging Face folder (config.json + model.safetensors or shards
listed in model.safetensors.index.json) into float64 torch tensors.
safetensors is parsed by hand from its definition:
  u64 header length | JSON {name: {dtype, shape, data_offsets}} | data."""

import argparse
import json
import os
import struct

import numpy as np
import torch


def _decode(raw, dtype, shape):
    if dtype == "F32":
        a = np.frombuffer(raw, dtype="<f4")
    elif dtype == "F16":
        a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    elif dtype == "BF16":
        a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    elif dtype == "I8":
        a = np.frombuffer(raw, dtype="i1").astype(np.float32)
    else:
        raise ValueError("dtype %s not handled" % dtype)
    return torch.from_numpy(a.astype(np.float64).reshape(shape))


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        out[name] = _decode(data[8 + n + b:8 + n + end], e["dtype"], e["shape"])
    return out


def load(folder):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    idx = os.path.join(folder, "model.safetensors.index.json")
    tensors = {}
    if os.path.exists(idx):
        with open(idx) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    for fn in files:
        tensors.update(read_safetensors(os.path.join(folder, fn)))
    # compressed-tensors per-channel int8: weight = q * weight_scale (float64)
    for name in [k for k in tensors if k.endswith(".weight_scale")]:
        base = name[:-len("_scale")]
        tensors[base] = tensors[base] * tensors.pop(name).reshape(-1, 1)
    return cfg, tensors


def strip_prefix(tensors, prefix):
    """Names without an optional leading prefix ("model.", "transformer.")."""
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in tensors.items()}


def write_logits(path, logits):
    np.asarray(logits, dtype=np.float32).tofile(path)


def reference_main(forward, prefix):
    """Command line of the HF references: FOLDER --tokens 1,2,3 --out FILE;
    tensors named without `prefix` go to forward(cfg, tensors, tokens)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    cfg, t = load(a.folder)
    t = strip_prefix(t, prefix)
    tokens = [int(s) for s in a.tokens.split(",")]
    write_logits(a.out, forward(cfg, t, tokens).numpy())
    return 0
