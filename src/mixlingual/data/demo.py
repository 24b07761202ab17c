"""Registry entry `demo`: the small parallel QA set that ships with mixlingual.

82 questions with a one- or two-sentence answer passage, each written for this project in six
languages (en, de, es, fr, ru, sw: Latin and Cyrillic scripts, one lower-resource language).
`resources/demo/train.jsonl` holds 60 of them as parallel items; `resources/demo/eval.jsonl` is
a collection built from the other 22 (queries and answer passages per language plus three
distractor passages per language). PATH is optional: None uses the packaged files, a folder
holding `train.jsonl` / `eval.jsonl` uses that folder instead.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from mixlingual.data import jsonl
from mixlingual.data.records import Collection
from mixlingual.data.report import ItemList

DESCRIPTION = "built-in demo: 82 original QA pairs in en/de/es/fr/ru/sw (60 train items, 22-question eval collection)"
KINDS = ("parallel", "collection")
LANGUAGES = ("en", "de", "es", "fr", "ru", "sw")


def demo_file(name: str, path=None) -> Path:
    """Path of the demo file `name` (train.jsonl / eval.jsonl) in `path` or in the package."""
    if path is not None:
        return Path(path) / name if Path(path).is_dir() else Path(path)
    return Path(str(resources.files("mixlingual.resources").joinpath("demo", name)))


def load_parallel(path=None, *, strict: bool = True) -> ItemList:
    """The 60 demo training items."""
    return jsonl.read_parallel(demo_file("train.jsonl", path), strict=strict)


def load_collection(path=None, *, strict: bool = True) -> Collection:
    """The demo evaluation collection (22 questions x 6 languages, 3 distractors per language)."""
    return jsonl.read_collection(demo_file("eval.jsonl", path), strict=strict, name="demo-eval")
