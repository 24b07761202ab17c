"""A language debiasing fit as sentence-transformers modules (`mixlingual debias export`).

The exported folder is the model's own sentence-transformers folder (`BiEncoder.save`) with the
fit added after pooling:

* `project`: standard modules only. Transformer -> Pooling -> Router(query: Dense(I - U_q^T U_q),
  document: Dense(I - U_d^T U_d)) -> Normalize. The projection commutes with scaling, so applying
  it to the pooled vector before the one normalization gives what `encode --debias` gives
  (normalize, project, renormalize). `encode_query` / `encode_document` pick the side; a plain
  `encode` takes the query side, as `kind=sentence` does.
* `center`: Transformer -> Pooling -> Normalize -> `LanguageCentering` (this module), which
  subtracts the language's mean and renormalizes. The language is a forward keyword that
  sentence-transformers passes through from encode: ``model.encode_query(texts, language="de")``.

`DEBIAS_FILE` (+ .json) is copied into the folder, so `mixlingual evaluate --model DIR` applies the
same fit (`load_exported`); its fingerprint folds in the fit, so its embedding cache is its own.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from mixlingual.errors import ConfigError, ModelError

from mixlingual.models.debias_use import DEBIAS_FILE

try:  # sentence-transformers >= 5 moved the module base class; older releases had no module kwargs
    from sentence_transformers.base.modules import Module as _STModule
except ImportError:  # pragma: no cover - depends on the installed release
    from sentence_transformers.models import Module as _STModule


class LanguageCentering(_STModule):
    """Subtract the mean embedding of the text's language (per side), then renormalize.

    `language` is one code for the whole call or one per text (canonical or any code the
    language table knows); `task` "document" / "passage" picks the passage side, anything else
    the query side. A language without a mean is an error unless `fallback` was exported on.
    """

    config_keys = ["languages", "dim", "normalize", "fallback"]
    forward_kwargs = {"language", "task"}

    def __init__(self, languages: list[str], dim: int, normalize: bool = True, fallback: bool = False):
        super().__init__()
        self.languages, self.dim, self.normalize, self.fallback = list(languages), int(dim), normalize, fallback
        self.register_buffer("query_means", torch.zeros(len(languages), dim))
        self.register_buffer("passage_means", torch.zeros(len(languages), dim))

    def _rows(self, language, count: int) -> list[int]:
        from mixlingual.data.languages import canonical

        if language is None:
            raise ValueError("LanguageCentering needs the texts' language: encode(..., language='de')")
        codes = [language] * count if isinstance(language, str) else list(language)
        if len(codes) != count:
            raise ValueError(f"LanguageCentering: {count} texts but {len(codes)} languages")
        index = {code: i for i, code in enumerate(self.languages)}
        rows = [index.get(canonical(code), -1) for code in codes]
        missing = sorted({c for c, r in zip(codes, rows) if r < 0})
        if missing and not self.fallback:
            raise ValueError(f"LanguageCentering has no mean for language {', '.join(missing)} "
                             f"(fitted: {', '.join(self.languages)})")
        return rows

    def forward(self, features: dict, language=None, task=None, **kwargs) -> dict:
        embeddings = features["sentence_embedding"]
        means = self.passage_means if task in ("document", "passage") else self.query_means
        table = torch.cat([means, means.mean(0, keepdim=True)])   # last row: the fallback mean
        rows = torch.tensor(self._rows(language, embeddings.shape[0]), device=embeddings.device)
        centered = embeddings - table[rows].to(embeddings.dtype)
        if self.normalize:
            centered = torch.nn.functional.normalize(centered, p=2, dim=-1)
        features["sentence_embedding"] = centered
        return features

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", token=None, cache_folder=None, revision=None,
             local_files_only: bool = False, **kwargs) -> "LanguageCentering":
        hub = {"subfolder": subfolder, "token": token, "cache_folder": cache_folder, "revision": revision,
               "local_files_only": local_files_only}
        config = cls.load_config(model_name_or_path=model_name_or_path, **hub)
        module = cls(**{k: v for k, v in config.items() if k in cls.config_keys})
        return cls.load_torch_weights(model_name_or_path=model_name_or_path, model=module, **hub)


def _projection(basis: np.ndarray) -> torch.Tensor:
    """I - U^T U for an orthonormal basis U (rank x dim), computed in float64."""
    u = torch.from_numpy(basis.astype(np.float64))
    return (torch.eye(basis.shape[1], dtype=torch.float64) - u.T @ u).float()


def _dense(matrix: torch.Tensor):
    from sentence_transformers.base.modules import Dense

    layer = Dense(matrix.shape[1], matrix.shape[0], bias=False, activation_function=torch.nn.Identity())
    layer.linear.weight.data = matrix.clone()
    return layer


def _write_modules(folder: Path, debias) -> None:
    """Add the fit's modules after Pooling and rewrite modules.json (the last file written)."""
    modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    pooling = [m for m in modules if m["type"].endswith("Pooling")]
    normalize = [m for m in modules if m["type"].endswith("Normalize")]
    head = [m for m in modules if m not in normalize]
    if not pooling or head[-1] is not pooling[0]:
        raise ModelError(f"{folder}: expected Transformer -> Pooling [-> Normalize], got "
                         f"{[m['type'].rsplit('.', 1)[-1] for m in modules]}")
    for m in normalize:
        shutil.rmtree(folder / m["path"], ignore_errors=True)
    if debias.method == "project":
        from sentence_transformers.base.modules import Router

        router = Router({"query": [_dense(_projection(debias.sides["query"].basis))],
                         "document": [_dense(_projection(debias.sides["passage"].basis))]}, default_route="query")
        added = [("Router", router, "sentence_transformers.base.modules.router.Router"),
                 ("Normalize", None, "sentence_transformers.base.modules.normalize.Normalize")]
    else:
        centering = LanguageCentering(debias.languages, debias.sides["query"].means.shape[1], debias.normalize)
        centering.query_means.copy_(torch.from_numpy(debias.sides["query"].means))
        centering.passage_means.copy_(torch.from_numpy(debias.sides["passage"].means))
        added = [("Normalize", None, "sentence_transformers.base.modules.normalize.Normalize"),
                 ("LanguageCentering", centering, f"{__name__}.LanguageCentering")]
    for name, module, kind in added:
        idx = len(head)
        path = f"{idx}_{name}"
        (folder / path).mkdir()
        if module is not None:
            module.save(str(folder / path))
        head.append({"idx": idx, "name": str(idx), "path": path, "type": kind})
    (folder / "modules.json").write_text(json.dumps(head, indent=2) + "\n", encoding="utf-8")


def export_debiased(encoder, debias_path, out) -> None:
    """Write `encoder` + the fit at `debias_path` as a sentence-transformers folder `out`
    (replaced atomically). The fit must have been made on this encoder's weights."""
    from mixlingual.io import replace_folder
    from mixlingual.models.debias import LanguageDebias, weights_fingerprint

    debias = LanguageDebias.load(debias_path)
    debias.check_model(weights_fingerprint(encoder), getattr(encoder, "name", ""))
    if not getattr(encoder.config, "normalize", True):
        raise ConfigError("debias export: the model does not normalize its embeddings; export needs one that does")

    def build(tmp: Path) -> None:
        staging = tmp / ".base"
        encoder.save(str(staging))
        for item in staging.iterdir():
            os.replace(item, tmp / item.name)
        staging.rmdir()
        shutil.copyfile(debias_path, tmp / DEBIAS_FILE)
        shutil.copyfile(f"{debias_path}.json", tmp / f"{DEBIAS_FILE}.json")
        _write_modules(tmp, debias)

    replace_folder(build, str(out))
