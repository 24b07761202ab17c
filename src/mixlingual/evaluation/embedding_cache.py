"""An on-disk embedding cache, so re-evaluating a model does not re-encode the same texts.

Layout: ``<cache_dir>/<model fingerprint>/<kind>/`` holds ``index.json`` and shard files
``shard-<n>.npy`` (float32, one row per text).  The index lists each shard with its row count,
SHA-256 and the text keys (BLAKE2b of the UTF-8 text) of its rows.  A run that encodes new texts
appends one shard and rewrites the index, each written to a temporary file and renamed into
place, under an exclusive file lock; an interrupted run therefore leaves at worst an unused
shard.  A shard whose checksum or shape does not match, or an unreadable index, is reported with
a warning and dropped, and its texts are simply encoded again: the cache never crashes a run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from mixlingual.io import atomic_open, write_atomic

INDEX_VERSION = 1


def text_key(text: str) -> str:
    """The cache key of one text (the encoder adds its prefixes; the kind is the folder)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class EmbeddingCache:
    """Embeddings of one (model fingerprint, kind) pair, looked up by text."""

    def __init__(self, cache_dir: Path | str, fingerprint: str, kind: str):
        self.folder = Path(cache_dir) / fingerprint / kind
        self.folder.mkdir(parents=True, exist_ok=True)
        self.index_path = self.folder / "index.json"

    @contextmanager
    def _locked(self):
        with open(self.folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read_index(self) -> dict:
        empty = {"version": INDEX_VERSION, "dim": None, "shards": []}
        if not self.index_path.exists():
            return empty
        try:
            index = json.loads(self.index_path.read_text(encoding="utf-8"))
            if index.get("version") != INDEX_VERSION or not isinstance(index.get("shards"), list):
                raise ValueError(f"expected version {INDEX_VERSION} with a 'shards' list")
            return index
        except (ValueError, OSError) as err:
            warnings.warn(f"embedding cache index {self.index_path} is unreadable ({err}); rebuilding it",
                          stacklevel=3)
            return empty

    def _load_shard(self, entry: dict, dim) -> np.ndarray | None:
        """A shard's matrix, or None (with a warning) when it is missing or corrupt."""
        path = self.folder / entry.get("file", "?")
        try:
            if _sha256(path) != entry["sha256"]:
                raise ValueError("checksum mismatch")
            matrix = np.load(path, allow_pickle=False)
            if matrix.dtype != np.float32 or matrix.shape != (len(entry["keys"]), dim):
                raise ValueError(f"shape {matrix.shape} {matrix.dtype}, expected ({len(entry['keys'])}, {dim})")
            return matrix
        except (OSError, ValueError, KeyError) as err:
            warnings.warn(f"embedding cache shard {path} is corrupt ({err}); its texts are encoded again",
                          stacklevel=3)
            return None

    def load(self) -> dict[str, np.ndarray]:
        """key -> embedding row for every valid cached text (corrupt shards are dropped)."""
        with self._locked():
            index = self._read_index()
            found: dict[str, np.ndarray] = {}
            for entry in index["shards"]:
                matrix = self._load_shard(entry, index["dim"])
                if matrix is not None:
                    found.update(zip(entry["keys"], matrix))
            return found

    def add(self, keys: list[str], matrix: np.ndarray) -> None:
        """Append one shard of new embeddings and record it in the index (drops corrupt shards)."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        if len(keys) == 0:
            return
        with self._locked():
            index = self._read_index()
            if index["dim"] not in (None, matrix.shape[1]):
                warnings.warn(f"embedding cache {self.folder} holds dim {index['dim']}, "
                              f"got {matrix.shape[1]}; starting it afresh", stacklevel=2)
                index = {"version": INDEX_VERSION, "dim": None, "shards": []}
            index["dim"] = int(matrix.shape[1])
            index["shards"] = [e for e in index["shards"] if self._load_shard(e, index["dim"]) is not None]
            number = 1 + max((int(e["file"][6:-4]) for e in index["shards"]), default=0)
            shard = self.folder / f"shard-{number}.npy"
            with atomic_open(shard, "wb") as handle:
                np.save(handle, matrix)
            index["shards"].append({"file": shard.name, "rows": len(keys), "sha256": _sha256(shard),
                                    "keys": list(keys)})
            write_atomic(self.index_path, json.dumps(index))


def encode_cached(encoder, texts: list[str], kind: str, *, cache_dir=None, batch_size: int = 64,
                  show_progress=None) -> np.ndarray:
    """`encoder.encode(texts, kind)` that reuses and fills an on-disk cache when `cache_dir` is set.

    Each distinct text is encoded once; the result has one row per input text, in order.
    """
    if not texts:
        return np.zeros((0, encoder.dim), np.float32)
    unique = list(dict.fromkeys(texts))
    position = {t: i for i, t in enumerate(unique)}
    keys = [text_key(t) for t in unique]
    cache = EmbeddingCache(cache_dir, encoder.fingerprint(), kind) if cache_dir else None
    known = cache.load() if cache else {}
    missing = [i for i, k in enumerate(keys) if k not in known]
    hits = [i for i, k in enumerate(keys) if k in known]
    table = np.zeros((len(unique), encoder.dim), np.float32)
    if missing:
        fresh = np.asarray(encoder.encode([unique[i] for i in missing], kind=kind, batch_size=batch_size,
                                          show_progress=show_progress), dtype=np.float32)
        if cache:
            cache.add([keys[i] for i in missing], fresh)
        table[missing] = fresh
    if hits:
        table[hits] = np.stack([known[keys[i]] for i in hits])
    return table[[position[t] for t in texts]]
