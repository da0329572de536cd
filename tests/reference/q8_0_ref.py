#!/usr/bin/python3
"""GGUF reading and ggml's Q8_0, written from the specifications.

GGUF (ggml's docs/gguf.md): "GGUF", uint32 version, uint64 tensor count,
uint64 key/value count; key/value pairs (string key, uint32 type, value);
tensor infos (string name, uint32 n_dims, uint64 ne[n_dims], uint32 type,
uint64 offset into the data section); the data section starts at the next
multiple of general.alignment (default 32). Little-endian throughout.

Q8_0 (ggml type 8): blocks of 32 values, each an f16 scale d followed by
32 int8 q. Quantizing a block (ggml's quantize_row_q8_0_ref): amax =
max |x|, d = amax / 127, id = 1 / d (0 when d == 0), q = round(x * id)
rounding halfway cases away from zero (C roundf), all in float32; d is
stored as IEEE half (round to nearest even). A value reads back as
float(d) * q.
"""

import struct

import numpy as np

GGML_F32, GGML_F16, GGML_Q8_0, GGML_BF16 = 0, 1, 8, 30
QK8_0 = 32
_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class Reader:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.buf = f.read()
        self.pos = 0
        if self.buf[:4] != b"GGUF":
            raise ValueError("%s: not a GGUF file" % path)
        self.pos = 4
        self.version, n_tensors, n_kv = self._u("<I"), self._u("<Q"), self._u("<Q")
        self.kv = {}
        for _ in range(n_kv):
            key = self._str()
            self.kv[key] = self._value(self._u("<I"))
        self.tensors = {}
        for _ in range(n_tensors):
            name = self._str()
            nd = self._u("<I")
            ne = [self._u("<Q") for _ in range(nd)]
            ty, off = self._u("<I"), self._u("<Q")
            self.tensors[name] = (ne, ty, off)
        align = int(self.kv.get("general.alignment", 32))
        self.data = (self.pos + align - 1) // align * align

    def _u(self, fmt):
        v = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def _str(self):
        n = self._u("<Q")
        s = self.buf[self.pos:self.pos + n]
        self.pos += n
        return s.decode("utf-8", "replace")

    def _value(self, ty):
        if ty == 8:
            return self._str()
        if ty == 9:
            et, n = self._u("<I"), self._u("<Q")
            return [self._value(et) for _ in range(n)]
        return self._u(_SCALAR[ty])

    def raw(self, name):
        """(ne, type, bytes) of a tensor."""
        ne, ty, off = self.tensors[name]
        n = int(np.prod(ne))
        size = {GGML_F32: 4 * n, GGML_F16: 2 * n, GGML_BF16: 2 * n, GGML_Q8_0: n // QK8_0 * 34}[ty]
        start = self.data + off
        return ne, ty, self.buf[start:start + size]

    def values(self, name):
        """The tensor as float64, shape (ne[1], ne[0]) for matrices."""
        ne, ty, b = self.raw(name)
        if ty == GGML_F32:
            v = np.frombuffer(b, "<f4").astype(np.float64)
        elif ty == GGML_F16:
            v = np.frombuffer(b, "<f2").astype(np.float64)
        elif ty == GGML_BF16:  # the upper 16 bits of a float32
            v = (np.frombuffer(b, "<u2").astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        elif ty == GGML_Q8_0:
            d, q = split_q8_0(b)
            v = (d.astype(np.float32)[:, None] * q.astype(np.float32)).astype(np.float64).reshape(-1)
        else:
            raise ValueError("type %d not handled" % ty)
        return v.reshape(list(reversed(ne)))


def split_q8_0(b):
    """Q8_0 bytes -> (scales as float16 (n_blocks,), int8 (n_blocks, 32))."""
    blocks = np.frombuffer(b, np.uint8).reshape(-1, 34)
    d = blocks[:, :2].copy().view("<f2").reshape(-1)
    q = blocks[:, 2:].copy().view(np.int8)
    return d, q


def quantize_q8_0(x):
    """float32 values (a multiple of 32) -> (float16 scales, int8 (n/32, 32))."""
    x = np.asarray(x, dtype=np.float32).reshape(-1, QK8_0)
    amax = np.max(np.abs(x), axis=1)
    d = amax / np.float32(127)
    with np.errstate(divide="ignore"):
        iid = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    y = (x * iid[:, None]).astype(np.float32)
    # C roundf: halfway away from zero; float64 holds |y| + 0.5 exactly.
    q = np.sign(y) * np.floor(np.abs(y).astype(np.float64) + 0.5)
    return d.astype(np.float16), q.astype(np.int8)


def dequantize_q8_0(d, q):
    return (d.astype(np.float32)[:, None] * q.astype(np.float32)).reshape(-1)
