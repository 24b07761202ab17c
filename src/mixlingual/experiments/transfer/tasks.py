"""Labelled data of the transfer probes: SIB-200 topics and XNLI pairs, split train (English) / eval.

Each task yields a `ProbeData`: English training examples and, per language, evaluation
examples. An example is one text (topic) or a (premise, hypothesis) pair (NLI).

* `sib200-topic`: train = the English `train` split (701 sentences); eval = the `dev` split
  (99 sentences) of every language. The splits share no FLORES sentence.
* `xnli`: XNLI 1.0 dev (2490 pairs per language, the same pairs in the same order in all 15
  languages). Pairs are split into probe-train / probe-eval by *English premise*: the three
  hypotheses of a premise, and every translation of them, fall on the same side, so no
  translation of a training pair (nor a pair sharing its premise) is evaluated.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mixlingual.data import sib200
from mixlingual.errors import ConfigError, DataError

XNLI_LABELS = ("entailment", "neutral", "contradiction")


@dataclass
class ProbeData:
    """English training examples and per-language evaluation examples with string labels."""

    task: str
    pivot: str
    train_x: list            # texts, or (premise, hypothesis) tuples
    train_y: list[str]
    eval_x: dict[str, list] = field(default_factory=dict)
    eval_y: dict[str, list[str]] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def pairs(self) -> bool:
        return bool(self.train_x) and isinstance(self.train_x[0], tuple)


def _lang_list(langs) -> list[str] | None:
    if langs is None:
        return None
    return [x for x in langs.split(",") if x] if isinstance(langs, str) else list(langs)


def load_sib200_topic(path, langs=None, pivot: str = "eng_Latn") -> ProbeData:
    """English `train` rows to train on; the `dev` rows of every language (or `langs`) to evaluate."""
    train = sib200.read_topic_split(path, pivot, "train")
    chosen = _lang_list(langs) or sib200.available_languages(path)
    data = ProbeData("sib200-topic", pivot, [r.text for r in train], [r.category for r in train],
                     meta={"train_split": "train", "eval_split": "dev"})
    for lang in chosen:
        rows = sib200.read_topic_split(path, lang, "dev")
        data.eval_x[lang] = [r.text for r in rows]
        data.eval_y[lang] = [r.category for r in rows]
    return data


def read_xnli(path, lang: str) -> list[tuple[str, str, str]]:
    """(premise, hypothesis, label) rows of `dev-{lang}.tsv` (CRLF line ends are stripped)."""
    file = Path(path) / f"dev-{lang}.tsv"
    if not file.is_file():
        raise DataError(f"missing XNLI file for language {lang!r}", path=str(file))
    rows = []
    with open(file, encoding="utf-8", newline="") as handle:
        for number, fields in enumerate(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            fields = [f.rstrip("\r") for f in fields]
            if len(fields) != 3:
                raise DataError(f"expected premise<TAB>hypothesis<TAB>label, got {len(fields)} fields",
                                path=str(file), line=number)
            if fields[2] not in XNLI_LABELS:
                raise DataError(f"label must be one of {XNLI_LABELS}, got {fields[2]!r}", path=str(file),
                                line=number, field="label")
            rows.append((fields[0], fields[1], fields[2]))
    return rows


def load_xnli(path, langs=None, pivot: str = "en", train_fraction: float = 0.5, seed: int = 0,
              max_eval_premises: int | None = None) -> ProbeData:
    """Split the parallel dev pairs by English premise into probe-train (English) and probe-eval (all).

    `max_eval_premises` keeps the pairs of only that many (randomly chosen, same in every
    language) evaluation premises, to bound encoding cost.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ConfigError(f"train_fraction: expected a value strictly between 0 and 1, got {train_fraction}")
    chosen = _lang_list(langs) or sorted(f.stem[len("dev-"):] for f in Path(path).glob("dev-*.tsv"))
    if not chosen:
        raise DataError("no dev-{lang}.tsv files (XNLI dev in XTREME format) in this folder", path=str(path))
    english = read_xnli(path, pivot)
    premises = sorted({p for p, _, _ in english})
    rng = np.random.default_rng(seed)
    train_premises = set(rng.choice(premises, int(round(train_fraction * len(premises))), replace=False).tolist())
    is_train = [p in train_premises for p, _, _ in english]
    eval_premises = [p for p in premises if p not in train_premises]
    if max_eval_premises is not None and max_eval_premises < len(eval_premises):
        if max_eval_premises < 1:
            raise ConfigError(f"max_eval_premises: expected a positive integer, got {max_eval_premises}")
        eval_premises = rng.choice(eval_premises, max_eval_premises, replace=False).tolist()
    is_eval = [p in set(eval_premises) for p, _, _ in english]
    data = ProbeData("xnli", pivot, [(p, h) for (p, h, _), t in zip(english, is_train) if t],
                     [y for (_, _, y), t in zip(english, is_train) if t],
                     meta={"train_fraction": train_fraction, "seed": seed, "train_pairs": sum(is_train),
                           "eval_pairs_per_language": sum(is_eval), "eval_premises": len(eval_premises),
                           "split_by": "English premise (all translations on the same side)"})
    for lang in chosen:
        rows = english if lang == pivot else read_xnli(path, lang)
        if len(rows) != len(english):
            raise DataError(f"has {len(rows)} rows but {pivot} has {len(english)}; XNLI rows must be parallel",
                            path=str(Path(path) / f"dev-{lang}.tsv"))
        if [y for *_, y in rows] != [y for *_, y in english]:
            raise DataError(f"labels differ from {pivot}'s: rows are not parallel", path=str(Path(path) / f"dev-{lang}.tsv"))
        data.eval_x[lang] = [(p, h) for (p, h, _), e in zip(rows, is_eval) if e]
        data.eval_y[lang] = [y for (_, _, y), e in zip(rows, is_eval) if e]
    return data


TASKS = {"sib200-topic": ("sib200", load_sib200_topic), "xnli": ("xnli-dev", load_xnli)}
