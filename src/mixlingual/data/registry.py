"""One registry of dataset loaders, in the manner of ir_datasets: one small module per dataset.

Each loader module exposes:

    DESCRIPTION: str                       # one line for `mixlingual data list`
    KINDS: tuple[str, ...]                 # "parallel" and/or "collection"
    load_parallel(path, **options) -> list[ParallelItem]       # if "parallel" in KINDS
    load_collection(path, **options) -> Collection             # if "collection" in KINDS

Modules are imported lazily so that listing datasets does not import every dependency.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from mixlingual.data.records import Collection, ParallelItem
from mixlingual.errors import MixlingualError

LOADERS: dict[str, str] = {
    "jsonl": "mixlingual.data.jsonl_loader",
    "demo": "mixlingual.data.demo",
    "mlqa": "mixlingual.data.mlqa",
    "mlqa-r": "mixlingual.data.mlqa_r",
    "xquad-r": "mixlingual.data.xquad_r",
    "mmarco": "mixlingual.data.mmarco",
    "tatoeba": "mixlingual.data.tatoeba",
    "trec": "mixlingual.data.trec",
    "sib200-bitext": "mixlingual.data.sib200",
    "ntrex-bitext": "mixlingual.data.ntrex",
}


def names() -> list[str]:
    return list(LOADERS)


def get_loader(name: str) -> ModuleType:
    if name not in LOADERS:
        raise MixlingualError(f"unknown dataset '{name}'; known: {', '.join(LOADERS)}")
    return importlib.import_module(LOADERS[name])


def load_parallel(name: str, path, **options) -> list[ParallelItem]:
    loader = get_loader(name)
    if "parallel" not in loader.KINDS:
        raise MixlingualError(f"dataset '{name}' is an evaluation collection, not parallel training data")
    return loader.load_parallel(path, **options)


def load_collection(name: str, path, **options) -> Collection:
    loader = get_loader(name)
    if "collection" not in loader.KINDS:
        raise MixlingualError(f"dataset '{name}' is parallel training data, not an evaluation collection")
    return loader.load_collection(path, **options)
