"""LASER (Artetxe & Schwenk 2019; LASER2/3, Heffernan et al. 2022) behind our `encode(texts, kind)`.

Uses Meta's PyPI package `laser_encoders` (`LaserEncoderPipeline`), which downloads its
encoder and sentencepiece files from dl.fbaipublicfiles.com on first use (or reads them from
`model_dir`). Not a declared dependency: laser_encoders requires fairseq>=0.12.2, which does not
resolve next to torch 2.13 / Python 3.11 (checked with `pip install --dry-run laser_encoders`),
and the older `laserembeddings` pins torch<2. Install it where it resolves; every failure to
import or to fetch weights becomes a ModelError that says what to do.
"""

from __future__ import annotations

import importlib

import numpy as np

from mixlingual.errors import ModelError

KINDS = ("query", "passage", "sentence")


class LaserAdapter:
    """LASER sentence embeddings; `kind` is accepted for API parity (LASER is symmetric)."""

    def __init__(self, lang: str | None = None, model_dir: str | None = None, normalize: bool = True, **ignored):
        try:
            module = importlib.import_module("laser_encoders")
        except ImportError as err:
            raise ModelError("LASER needs the 'laser_encoders' package (pip install laser_encoders; it requires "
                             f"fairseq>=0.12.2, which may not resolve with this torch/Python): {err}") from err
        try:
            self.pipeline = module.LaserEncoderPipeline(lang=lang, model_dir=model_dir)
        except Exception as err:  # download errors surface as URLError/HTTPError/OSError/ValueError
            where = model_dir or "the laser_encoders download cache"
            raise ModelError(f"cannot load LASER weights for lang={lang!r} from {where} (they are fetched from "
                             f"dl.fbaipublicfiles.com on first use): {str(err).splitlines()[0] if str(err) else err!r}"
                             ) from err
        self.name = f"laser:{lang}" if lang else "laser"
        self.normalize = normalize
        self.ignored_settings = dict(ignored)

    def encode(self, texts: list[str], kind: str = "passage", batch_size: int = 64,
               show_progress: bool | None = None) -> np.ndarray:
        if kind not in KINDS:
            raise ModelError(f"kind must be one of {KINDS}, got {kind!r}")
        vectors = np.asarray(self.pipeline.encode_sentences(list(texts)), dtype=np.float32)
        if self.normalize:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors
