"""Known multilingual backbones: the encoder settings each was trained with, keyed by HF id and alias.

A preset is a set of `EncoderConfig` overrides (pooling, prefixes, lengths) that makes a model
encode the way its authors used it, so zero-shot numbers are comparable with published ones:

| alias | Hugging Face id | pooling | prefixes | note |
|---|---|---|---|---|
| `labse` | sentence-transformers/LaBSE | CLS | none | + Dense(768, tanh) + normalize: needs the ST folder |
| `xlmr-base`, `xlmr-large` | xlm-roberta-base / -large | mean | none | no sentence training: a weak baseline |
| `mbert` | bert-base-multilingual-cased | mean | none | |
| `me5-small/-base/-large` | intfloat/multilingual-e5-* | mean | "query: " / "passage: " | 512 tokens |
| `laser` | (laser_encoders package) | BiLSTM max-pool | none | adapter: `integrations.laser` |

This module is data and lookups only (it imports no model code, so the encoder can import it):
`apply_preset(name)` is the one-line hook inside `BiEncoder.from_pretrained` (settings are
`{**preset, **stored_in_folder, **user_overrides}`); `mixlingual.models.load.load_encoder(name)`
is the preset-aware loader that also falls back to a sentence-transformers adapter for folders
with modules our BiEncoder does not implement, such as LaBSE's Dense layer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mixlingual.errors import ModelError

# sentence-transformers module types our BiEncoder reproduces exactly (transformer, pooling, L2 norm)
NATIVE_ST_MODULES = ("Transformer", "Pooling", "Normalize")


@dataclass(frozen=True)
class Preset:
    """Encoder settings of one published model."""

    hf_id: str
    aliases: tuple[str, ...]
    settings: dict = field(default_factory=dict)   # EncoderConfig overrides
    head: str | None = None                        # "dense": an ST Dense layer follows pooling
    pretraining: str | None = None                 # key of mixlingual.data.languages.PRETRAINING, if known
    note: str = ""


_NO_PREFIX = {"query_prefix": "", "passage_prefix": ""}
_E5 = {"query_prefix": "query: ", "passage_prefix": "passage: ", "pooling": "mean", "normalize": True,
       "max_length_query": 512, "max_length_passage": 512}

PRESETS: tuple[Preset, ...] = (
    Preset("sentence-transformers/LaBSE", ("labse",),
           {**_NO_PREFIX, "pooling": "cls", "normalize": True, "max_length_query": 256, "max_length_passage": 256},
           head="dense", note="LaBSE (Feng et al. 2022): CLS -> Dense(768, tanh) -> L2; load the ST folder"),
    Preset("xlm-roberta-base", ("xlmr-base", "xlmr"), {**_NO_PREFIX, "pooling": "mean", "normalize": True},
           pretraining="xlmr", note="masked-LM only; mean pooling as a baseline"),
    Preset("xlm-roberta-large", ("xlmr-large",), {**_NO_PREFIX, "pooling": "mean", "normalize": True},
           pretraining="xlmr"),
    Preset("bert-base-multilingual-cased", ("mbert",), {**_NO_PREFIX, "pooling": "mean", "normalize": True},
           note="mBERT, 104 Wikipedia languages"),
    Preset("intfloat/multilingual-e5-small", ("me5-small", "multilingual-e5-small"), dict(_E5), pretraining="me5"),
    Preset("intfloat/multilingual-e5-base", ("me5-base", "multilingual-e5-base"), dict(_E5), pretraining="me5"),
    Preset("intfloat/multilingual-e5-large", ("me5-large", "multilingual-e5-large"), dict(_E5), pretraining="me5"),
)

_BY_NAME = {key.lower(): p for p in PRESETS for key in (p.hf_id, *p.aliases)}


def get_preset(name: str) -> Preset | None:
    """The preset `name` (HF id or alias, any case) refers to, else None."""
    return _BY_NAME.get(str(name).strip().lower())


def apply_preset(name: str) -> tuple[str, dict]:
    """(name to load, preset settings): an alias becomes its HF id; unknown names pass through with {}."""
    preset = get_preset(name)
    if preset is None:
        return name, {}
    return preset.hf_id, dict(preset.settings)


def st_modules(folder) -> list[str]:
    """Class names of the sentence-transformers modules a folder declares ([] if not an ST folder)."""
    path = Path(folder) / "modules.json"
    if not path.is_file():
        return []
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        return [str(entry["type"]).rsplit(".", 1)[-1] for entry in entries]
    except (ValueError, KeyError, TypeError) as err:
        raise ModelError(f"{path}: not a valid sentence-transformers modules.json ({err})") from err


def unsupported_st_modules(folder) -> list[str]:
    """Modules of an ST folder that BiEncoder would silently skip (e.g. LaBSE's Dense)."""
    return [m for m in st_modules(folder) if m not in NATIVE_ST_MODULES]

