"""Training-free language debiasing of embeddings: per-language centering or a projection.

A multilingual encoder puts a language-specific offset into every embedding; in a pool of many
languages that offset ranks same-language candidates first (language bias). Two fixes that need
no training, fitted on the embeddings of any corpus with language codes:

* `center`  - per side (query / passage prefix) and language, subtract the language's mean
  embedding, then renormalize. Needs the language of every text at inference.
* `project` - per side, take the differences of the chosen languages' means from the equal-weight
  mean of those means, find their span by SVD (singular values above `tolerance` x the largest
  are kept: the rank), and remove that span with the orthogonal projection ``I - U^T U``, then
  renormalize. Needs no language at inference, and only removes ``rank`` of ``dim`` directions.

Languages are keyed by `languages.canonical()`, so a fit on SIB-200 (`eng_Latn`) serves a
collection coded `en`. The fit is tied to the encoder's weights (`weights_fingerprint`), not to
its precision: a bf16 fit applies to fp32 encodes of the same weights.

A fit is one file pair: ``FILE`` (safetensors: per side the means, the projection basis, the
normalized-text ids of the fit corpus for the overlap check) and ``FILE.json`` (method, model,
fingerprint, corpus, languages, counts, rank, tolerance).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mixlingual.data.languages import canonical
from mixlingual.errors import ConfigError, DataError, ModelError

METHODS = ("center", "project")
SIDES = ("query", "passage")
DEFAULT_TOLERANCE = 1e-6      # relative to the largest singular value of the mean differences
FORMAT_VERSION = 1
_MISSING_HINT = "use --debias-fallback to take the equal-weight mean of the fitted languages instead"


def side_of(kind: str) -> str:
    """The side an encoder kind is debiased with: `sentence` (symmetric tasks) takes the query side."""
    if kind in ("query", "sentence"):
        return "query"
    if kind == "passage":
        return "passage"
    raise ConfigError(f"kind: expected query, passage or sentence, got {kind!r}")


def weights_fingerprint(encoder) -> str:
    """SHA-256 (16 hex chars) of the encoder's weights and tokenizer, not of its settings.

    Floating tensors are hashed as float32 so that the autocast precision (bf16 / fp32), which
    never changes the stored weights, does not change the key either.
    """
    import torch

    module = getattr(encoder, "model", None)
    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"model '{getattr(encoder, 'name', encoder)}' exposes no weights to fingerprint; "
                         "language debiasing needs a BiEncoder or sentence-transformers model")
    digest = hashlib.sha256()
    tokenizer = getattr(encoder, "tokenizer", None)
    if hasattr(tokenizer, "backend_tokenizer"):
        digest.update(tokenizer.backend_tokenizer.to_str().encode())
    for key, tensor in sorted(module.state_dict().items()):
        data = tensor.detach().cpu()
        if data.is_floating_point():
            data = data.float()
        data = data.contiguous()
        digest.update(f"{key}:{tuple(data.shape)}".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy() if data.numel() else b"")
    return digest.hexdigest()[:16]


@dataclass
class SideFit:
    """One side's fit: the languages' mean embeddings (rows in `languages` order) and, for
    `project`, an orthonormal basis (rank x dim) of the span the projection removes."""

    means: np.ndarray
    counts: dict[str, int]
    basis: np.ndarray | None = None
    singular_values: list[float] = field(default_factory=list)
    text_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def rank(self) -> int:
        return 0 if self.basis is None else int(self.basis.shape[0])


@dataclass
class LanguageDebias:
    """A fitted debiasing transform; `apply(vectors, langs, side)` is its one job at inference."""

    method: str
    languages: list[str]              # canonical codes, the row order of every side's means
    sides: dict[str, SideFit]
    fingerprint: str                  # `weights_fingerprint` of the encoder it was fitted with
    model: str = ""
    corpus: dict = field(default_factory=dict)
    projection_languages: list[str] = field(default_factory=list)
    tolerance: float = DEFAULT_TOLERANCE
    normalize: bool = True            # renormalize after the transform (as the encoder does)
    source: str = ""                  # the file it was loaded from, for messages

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(cls, embeddings: dict[str, tuple[np.ndarray, list[str]]], *, method: str, fingerprint: str,
            languages: list[str] | None = None, tolerance: float = DEFAULT_TOLERANCE, model: str = "",
            corpus: dict | None = None, text_ids: dict[str, np.ndarray] | None = None,
            normalize: bool = True) -> "LanguageDebias":
        """Fit from `embeddings[side] = (vectors (n, dim), language of each row)` for both sides.

        `languages` restricts the fit (default: every language present on both sides); for
        `project` they are also the languages whose mean differences span the removed directions.
        """
        if method not in METHODS:
            raise ConfigError(f"method: expected one of {METHODS}, got {method!r}")
        if not tolerance > 0:
            raise ConfigError(f"tolerance: expected a number > 0, got {tolerance!r}")
        missing_sides = [s for s in SIDES if s not in embeddings]
        if missing_sides:
            raise ConfigError(f"fit needs embeddings for both sides; missing {missing_sides}")
        by_side = {s: (np.asarray(v, np.float32), [canonical(x) for x in ls]) for s, (v, ls) in embeddings.items()}
        present = sorted(set(by_side["query"][1]) & set(by_side["passage"][1]))
        chosen = sorted(dict.fromkeys(canonical(x) for x in languages)) if languages else present
        if not chosen:
            raise DataError("the fit corpus has no text: nothing to take language means of")
        absent = [x for x in chosen if x not in present]
        if absent:
            raise DataError(f"the fit corpus has no text in {', '.join(absent)} on both sides "
                            f"(it has: {', '.join(present) or 'none'})")
        sides = {}
        for side, (vectors, langs) in by_side.items():
            if len(vectors) != len(langs):
                raise ConfigError(f"{side}: {len(vectors)} vectors but {len(langs)} languages")
            labels = np.asarray(langs)
            means = np.stack([vectors[labels == x].astype(np.float64).mean(0) for x in chosen]).astype(np.float32)
            counts = {x: int((labels == x).sum()) for x in chosen}
            ids = np.asarray((text_ids or {}).get(side, np.zeros(0)), np.int64)
            sides[side] = SideFit(means, counts, text_ids=ids)
            if method == "project":
                sides[side].basis, sides[side].singular_values = _span(means, tolerance)
        return cls(method, chosen, sides, fingerprint, model, dict(corpus or {}),
                   chosen if method == "project" else [], tolerance, normalize)

    # ------------------------------------------------------------------ applying
    def check_model(self, fingerprint: str, model: str = "") -> None:
        """Refuse a fit made with other weights (the means would be another model's)."""
        if fingerprint != self.fingerprint:
            raise ModelError(f"debias file {self.source or '(in memory)'} was fitted on other weights "
                             f"(model '{self.model}', fingerprint {self.fingerprint}); '{model or 'this model'}' "
                             f"has fingerprint {fingerprint}: fit it again on this model")

    def resolve_languages(self, langs, *, fallback: bool = False) -> tuple[list[str], list[str]]:
        """(canonical code of each row, the given codes that take the fallback mean). `center` only."""
        given = [langs] if isinstance(langs, str) else list(langs)
        codes = [canonical(x) for x in given]
        missing = sorted({x for x, code in zip(given, codes) if code not in self.languages})
        if missing and not fallback:
            named = ", ".join(x if canonical(x) == x else f"{x} ({canonical(x)})" for x in missing)
            raise ConfigError(f"debias file {self.source or '(in memory)'} has no mean for language {named} "
                              f"(fitted: {', '.join(self.languages)}); {_MISSING_HINT}")
        return codes, missing

    def apply(self, vectors: np.ndarray, langs=None, side: str = "query", *, fallback: bool = False) -> np.ndarray:
        """Debiased copies of `vectors` (n, dim) of one side; `langs` (one code, or one per row)
        is needed for `center` only. A language without a fitted mean is an error unless
        `fallback`, which uses the equal-weight mean of the fitted languages' means."""
        side = side_of(side)
        fit = self.sides[side]
        vectors = np.asarray(vectors, np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != fit.means.shape[1]:
            raise ConfigError(f"debias: expected vectors of shape (n, {fit.means.shape[1]}), got {vectors.shape}")
        if self.method == "project":
            out = vectors - (vectors @ fit.basis.T) @ fit.basis
        else:
            if langs is None:
                raise ConfigError("debias method 'center' needs the language of the texts (e.g. --lang)")
            codes, _ = self.resolve_languages(langs, fallback=fallback)
            if len(codes) == 1 and len(vectors) != 1:
                codes = codes * len(vectors)
            if len(codes) != len(vectors):
                raise ConfigError(f"debias: {len(vectors)} vectors but {len(codes)} languages")
            table = np.vstack([fit.means, fit.means.mean(0, keepdims=True)])   # last row: the fallback
            row = {x: i for i, x in enumerate(self.languages)}
            out = vectors - table[[row.get(x, len(self.languages)) for x in codes]]
        if self.normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out = out / np.where(norms > 0, norms, 1.0)
        return out.astype(np.float32, copy=False)

    def describe(self) -> dict:
        """What metrics.json and reports record about the fit."""
        return {"file": self.source, "method": self.method, "model": self.model, "fingerprint": self.fingerprint,
                "corpus": self.corpus, "languages": self.languages,
                "rank": {s: f.rank for s, f in self.sides.items()} if self.method == "project" else None,
                "counts": {s: f.counts for s, f in self.sides.items()}}

    # ------------------------------------------------------------------ files
    def save(self, path) -> None:
        """Write `path` (safetensors) and `path`.json, each atomically."""
        from safetensors.numpy import save as to_bytes

        from mixlingual.io import write_atomic

        tensors = {}
        for side, fit in self.sides.items():
            tensors[f"{side}.means"] = np.ascontiguousarray(fit.means, np.float32)
            tensors[f"{side}.text_ids"] = np.ascontiguousarray(fit.text_ids, np.int64)
            if fit.basis is not None:
                tensors[f"{side}.basis"] = np.ascontiguousarray(fit.basis, np.float32)
        meta = {"format_version": FORMAT_VERSION, "method": self.method, "model": self.model,
                "fingerprint": self.fingerprint, "corpus": self.corpus, "languages": self.languages,
                "projection_languages": self.projection_languages, "tolerance": self.tolerance,
                "normalize": self.normalize, "dim": int(self.sides["query"].means.shape[1]),
                "counts": {s: f.counts for s, f in self.sides.items()},
                "rank": {s: f.rank for s, f in self.sides.items()},
                "singular_values": {s: f.singular_values for s, f in self.sides.items()}}
        path = Path(path)
        write_atomic(path, to_bytes(tensors, metadata={"mixlingual": "language-debias"}))
        write_atomic(Path(f"{path}.json"), json.dumps(meta, indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path) -> "LanguageDebias":
        """Read a fit written by `save`; a missing or malformed file is a DataError naming it."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        path = Path(path)
        sidecar = Path(f"{path}.json")
        for file in (path, sidecar):
            if not file.is_file():
                raise DataError("debias file not found (write it with `mixlingual debias fit`)", path=str(file))
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            tensors = load_file(str(path))
        except json.JSONDecodeError as err:
            raise DataError(f"not valid JSON: {err.msg}", path=str(sidecar), line=err.lineno) from None
        except (SafetensorError, OSError) as err:
            raise DataError(f"not a safetensors file ({err})", path=str(path)) from None
        for key in ("method", "fingerprint", "languages", "counts"):
            if key not in meta:
                raise DataError(f"missing key '{key}'", path=str(sidecar), field=key)
        if meta["method"] not in METHODS:
            raise DataError(f"expected one of {METHODS}, got {meta['method']!r}", path=str(sidecar), field="method")
        sides = {}
        for side in SIDES:
            if f"{side}.means" not in tensors:
                raise DataError(f"no tensor '{side}.means'", path=str(path))
            basis = tensors.get(f"{side}.basis")
            if meta["method"] == "project" and basis is None:
                raise DataError(f"method 'project' but no tensor '{side}.basis'", path=str(path))
            sides[side] = SideFit(tensors[f"{side}.means"], dict(meta["counts"][side]), basis,
                                  list((meta.get("singular_values") or {}).get(side, [])),
                                  tensors.get(f"{side}.text_ids", np.zeros(0, np.int64)))
        return cls(meta["method"], list(meta["languages"]), sides, meta["fingerprint"], meta.get("model", ""),
                   meta.get("corpus") or {}, list(meta.get("projection_languages") or []),
                   float(meta.get("tolerance", DEFAULT_TOLERANCE)), bool(meta.get("normalize", True)), str(path))


def _span(means: np.ndarray, tolerance: float) -> tuple[np.ndarray, list[float]]:
    """Orthonormal basis (rank x dim) of the differences of `means` from their equal-weight mean,
    keeping singular values above `tolerance` x the largest; and all the singular values."""
    differences = means.astype(np.float64) - means.astype(np.float64).mean(0, keepdims=True)
    _, singular, vt = np.linalg.svd(differences, full_matrices=False)
    keep = singular > tolerance * singular[0] if singular.size and singular[0] > 0 else np.zeros(0, bool)
    return vt[: int(keep.sum())].astype(np.float32), [float(s) for s in singular]
