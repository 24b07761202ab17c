"""Applying a language debiasing fit where embeddings are made (evaluate, encode, robustness, attack).

`DebiasUse` bundles a loaded `LanguageDebias` with the user's choices (fall back to the
equal-weight mean for a language the fit lacks; refuse or only warn when the fit corpus overlaps
the evaluated collection) and checks, once per encoder, that the fit was made on its weights.
What was applied (file, method, corpus, fallback languages) comes back as a dict for metrics.json.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mixlingual.errors import ConfigError
from mixlingual.models.debias import LanguageDebias, side_of, weights_fingerprint

OVERLAP_POLICIES = ("refuse", "warn")
DEBIAS_FILE = "mixlingual_debias.safetensors"   # the fit inside a `debias export` folder


@dataclass
class DebiasUse:
    debias: LanguageDebias
    fallback: bool = False
    overlap: str = "refuse"
    _checked: set = field(default_factory=set, repr=False)

    @classmethod
    def load(cls, path, *, fallback: bool = False, overlap: str = "refuse") -> "DebiasUse":
        if overlap not in OVERLAP_POLICIES:
            raise ConfigError(f"debias overlap: expected one of {OVERLAP_POLICIES}, got {overlap!r}")
        return cls(LanguageDebias.load(path), fallback, overlap)

    def check_encoder(self, encoder) -> None:
        """Refuse an encoder whose weights differ from the fit's (checked once per encoder)."""
        if id(encoder) not in self._checked:
            self.debias.check_model(weights_fingerprint(encoder), getattr(encoder, "name", ""))
            self._checked.add(id(encoder))

    def _info(self, fallback_langs) -> dict:
        info = self.debias.describe()
        info["fallback"] = sorted(fallback_langs)
        if info["fallback"]:
            info["fallback_rule"] = "equal-weight mean of the fitted languages"
        return info

    def apply_texts(self, encoder, vectors: np.ndarray, langs, kind: str) -> tuple[np.ndarray, dict]:
        """Debias one kind's vectors (`langs`: one code or one per row; unused by `project`)."""
        self.check_encoder(encoder)
        fallback = []
        if self.debias.method == "center":
            _, fallback = self.debias.resolve_languages(langs, fallback=self.fallback)
        return self.debias.apply(vectors, langs, side_of(kind), fallback=self.fallback), self._info(fallback)

    def apply_collection(self, encoder, collection, queries, q_vecs, candidates, c_vecs):
        """(debiased q_vecs, debiased c_vecs, info) for the selected queries and candidates of
        `collection`, after the overlap check of the fit corpus against the collection."""
        from mixlingual.models.debias_corpus import check_overlap

        self.check_encoder(encoder)
        overlap = check_overlap(self.debias, collection, refuse=self.overlap == "refuse")
        q_out, q_info = self.apply_texts(encoder, q_vecs, [q.lang for q in queries], "query")
        c_out, c_info = self.apply_texts(encoder, c_vecs, [c.lang for c in candidates], "passage")
        info = {**q_info, "fallback": sorted(set(q_info["fallback"]) | set(c_info["fallback"])),
                "overlap": overlap}
        return q_out, c_out, info


def add_debias_arguments(parser, *, overlap: bool = True) -> None:
    """--debias FILE, --debias-fallback (and --debias-overlap): shared by every command that
    makes embeddings; read with `debias_from_args`."""
    parser.add_argument("--debias", metavar="FILE",
                        help="apply a language debiasing fit (`mixlingual debias fit`) to the embeddings")
    parser.add_argument("--debias-fallback", action="store_true",
                        help="a language the fit lacks takes the equal-weight mean of the fitted languages "
                             "(reported as a fallback) instead of stopping with an error")
    if overlap:
        parser.add_argument("--debias-overlap", choices=OVERLAP_POLICIES, default="refuse",
                            help="when the fit corpus shares texts with the evaluated collection: stop "
                                 "(default) or only warn")


def debias_from_args(args) -> DebiasUse | None:
    """The `DebiasUse` of --debias (None without it)."""
    path = getattr(args, "debias", None)
    if not path:
        return None
    return DebiasUse.load(path, fallback=bool(getattr(args, "debias_fallback", False)),
                          overlap=getattr(args, "debias_overlap", "refuse"))


def is_debias_export(folder) -> bool:
    """Whether `folder` is a `mixlingual debias export` folder."""
    return (Path(str(folder)) / DEBIAS_FILE).is_file()


class DebiasedEncoder:
    """An exported folder loaded for mixlingual commands: the base BiEncoder, with the fit applied
    to every `encode` (for `center`, `encode(..., language=)`)."""

    def __init__(self, encoder, debias):
        self.encoder, self.debias = encoder, debias
        self.name, self.config, self.tokenizer, self.model = encoder.name, encoder.config, encoder.tokenizer, encoder.model
        self.debias.check_model(weights_fingerprint(encoder), encoder.name)

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def prefix(self, kind: str) -> str:
        return self.encoder.prefix(kind)

    def max_length(self, kind: str) -> int:
        return self.encoder.max_length(kind)

    def fingerprint(self) -> str:
        """The base model's fingerprint with the fit folded in: the cache never mixes the two."""
        digest = hashlib.sha256(self.encoder.fingerprint().encode())
        digest.update(Path(self.debias.source).read_bytes())
        return digest.hexdigest()[:16]

    def encode(self, texts: list[str], kind: str = "passage", batch_size: int = 64, show_progress=None,
               language=None) -> np.ndarray:
        if self.debias.method == "center" and language is None:
            raise ConfigError(f"model {self.name} centers per language: encode(..., language=) is needed; "
                              "mixlingual evaluate / mine cannot pass one, use a 'project' export there")
        vectors = self.encoder.encode(texts, kind=kind, batch_size=batch_size, show_progress=show_progress)
        return self.debias.apply(vectors, language, side_of(kind))


def load_exported(folder, **overrides) -> DebiasedEncoder:
    """A `debias export` folder as a `DebiasedEncoder` (the base model without the ST head modules,
    which `DebiasedEncoder` applies itself)."""
    from mixlingual.models.backbones import load_backbone
    from mixlingual.models.backbones.st_layout import read_settings
    from mixlingual.models.encoder import BiEncoder, EncoderConfig

    folder = str(folder)
    backbone = load_backbone(folder)
    settings = {**read_settings(folder), **overrides}
    encoder = BiEncoder(backbone.model, backbone.tokenizer, EncoderConfig(**settings), name=backbone.name)
    return DebiasedEncoder(encoder, LanguageDebias.load(Path(folder) / DEBIAS_FILE))
