#!/usr/bin/python3
"""Malformed copies of model files for tests/test_bad_weights_cli.sh.

  craft_weights.py gguf-types IN.gguf OUTDIR TENSOR ID...
      OUTDIR/type-ID.gguf: IN with TENSOR's ggml type id replaced by ID
      (GGUF tensor info: u64 name length, name, u32 n_dims, u64 ne[n_dims],
      u32 type, u64 offset; ggml's docs/gguf.md)
  craft_weights.py gguf-dims IN.gguf OUT.gguf TENSOR NE0 NE1
      TENSOR's two dimensions replaced (its element count unchanged)
  craft_weights.py q8-scale IN.gguf OUT.gguf TENSOR BLOCK F16HEX
      the f16 scale of Q8_0 block BLOCK of TENSOR set to F16HEX (7c00: inf)
  craft_weights.py st-dtype IN_DIR OUT_DIR TENSOR DTYPE
      a copy of the Hugging Face folder whose model.safetensors stores TENSOR
      as 16 values of DTYPE (the first bytes of its data; safetensors: u64
      header length, JSON header, data)
"""

import json
import os
import shutil
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))

ST_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
            "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8, "F8_E8M0": 1, "C64": 8}


def tensor_info_at(buf, name):
    """Offset of TENSOR's n_dims field (tensor infos follow the key/values;
    the name is searched from the end of the header region)."""
    key = struct.pack("<Q", len(name)) + name.encode()
    at = buf.rfind(key)
    if at < 0:
        sys.exit("no tensor %s" % name)
    return at + len(key)


def type_offset(buf, name):
    at = tensor_info_at(buf, name)
    n_dims = struct.unpack_from("<I", buf, at)[0]
    return at + 4 + 8 * n_dims


def read(path):
    with open(path, "rb") as f:
        return bytearray(f.read())


def write(path, buf):
    with open(path, "wb") as f:
        f.write(buf)


def gguf_types(src, outdir, name, ids):
    buf = read(src)
    at = type_offset(buf, name)
    for i in ids:
        struct.pack_into("<I", buf, at, int(i))
        write(os.path.join(outdir, "type-%s.gguf" % i), buf)


def gguf_dims(src, dst, name, ne0, ne1):
    buf = read(src)
    at = tensor_info_at(buf, name)
    struct.pack_into("<QQ", buf, at + 4, int(ne0), int(ne1))
    write(dst, buf)


def q8_scale(src, dst, name, block, f16hex):
    import q8_0_ref
    r = q8_0_ref.Reader(src)
    ne, ty, off = r.tensors[name]
    if ty != q8_0_ref.GGML_Q8_0:
        sys.exit("%s is not Q8_0" % name)
    buf = read(src)
    struct.pack_into("<H", buf, r.data + off + 34 * int(block), int(f16hex, 16))
    write(dst, buf)


def st_dtype(src_dir, dst_dir, name, dtype):
    shutil.copytree(src_dir, dst_dir)
    path = os.path.join(dst_dir, "model.safetensors")
    buf = read(path)
    n = struct.unpack_from("<Q", buf)[0]
    hdr = json.loads(bytes(buf[8:8 + n]))
    e = hdr[name]
    begin = e["data_offsets"][0]
    hdr[name] = {"dtype": dtype, "shape": [16], "data_offsets": [begin, begin + 16 * ST_SIZES[dtype]]}
    text = json.dumps(hdr, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    write(path, struct.pack("<Q", len(text)) + text + buf[8 + n:])


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "gguf-types":
        gguf_types(args[0], args[1], args[2], args[3:])
    elif cmd == "gguf-dims":
        gguf_dims(*args)
    elif cmd == "q8-scale":
        q8_scale(*args)
    elif cmd == "st-dtype":
        st_dtype(*args)
    else:
        sys.exit("unknown command %s" % cmd)


if __name__ == "__main__":
    main(sys.argv)
