"""Train/eval leak check: which evaluation texts also occur in the training data.

Two levels: exact (identical strings) and normalized (NFKC, casefold, punctuation and symbols
removed, whitespace collapsed: "Hello, World!" == "hello world"). Queries are compared with
training queries, candidates with training passages (positives and negatives). The training
loop calls `find_overlap`, which warns loudly or, with `refuse=True`, raises `DataError`;
`measure_overlap` only measures.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from mixlingual.data.records import Collection, ParallelItem
from mixlingual.errors import DataError

logger = logging.getLogger("mixlingual.data")
MAX_EXAMPLES = 5


def normalize_text(text: str) -> str:
    """NFKC + casefold, punctuation/symbols dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(" " if unicodedata.category(ch)[0] in "PSZC" else ch for ch in text)
    return " ".join(kept.split())


@lru_cache(maxsize=1 << 16)  # paragraphs recur: in several items, and every epoch in the loss
def text_id(text: str) -> int:
    """A signed 64-bit identity of `normalize_text(text)`, the one text identity training uses.

    Two passages with the same id are the same text for the samplers' "no identical positives in
    a batch" rule and the loss's false-negative mask, across languages too. 64 bits keep the
    per-item sets small (paragraphs are kilobytes) and fit an int64 tensor for DDP gathers.
    """
    digest = hashlib.blake2b(normalize_text(text).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


@dataclass
class KindOverlap:
    """Overlap of one kind of text (queries or passages)."""

    evaluated: int = 0
    exact: int = 0
    normalized: int = 0  # includes the exact matches
    per_language: Counter = field(default_factory=Counter)  # eval language -> normalized matches
    examples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"evaluated": self.evaluated, "exact": self.exact, "normalized": self.normalized,
                "per_language": dict(self.per_language), "examples": self.examples}


@dataclass
class OverlapReport:
    queries: KindOverlap
    passages: KindOverlap

    @property
    def any(self) -> bool:
        return bool(self.queries.normalized or self.passages.normalized)

    def summary(self) -> str:
        return (f"overlap train/eval: queries exact {self.queries.exact}, normalized {self.queries.normalized} "
                f"of {self.queries.evaluated}; passages exact {self.passages.exact}, normalized "
                f"{self.passages.normalized} of {self.passages.evaluated}")

    def to_dict(self) -> dict:
        return {"queries": self.queries.to_dict(), "passages": self.passages.to_dict()}


def _compare(train_texts: Iterable[str], eval_texts: Iterable[tuple[str, str]]) -> KindOverlap:
    exact_set, normal_set = set(), set()
    for text in train_texts:
        exact_set.add(text)
        normal_set.add(normalize_text(text))
    normal_set.discard("")
    result = KindOverlap()
    for lang, text in eval_texts:
        result.evaluated += 1
        if text in exact_set:
            result.exact += 1
        if normalize_text(text) in normal_set:
            result.normalized += 1
            result.per_language[lang] += 1
            if len(result.examples) < MAX_EXAMPLES:
                result.examples.append(f"[{lang}] {text[:120]}")
    return result


def measure_overlap(items: Iterable[ParallelItem], collection: Collection) -> OverlapReport:
    """Exact and normalized overlap between training items and an evaluation collection (silent)."""
    items = list(items)
    train_queries = (t for i in items for t in i.queries.values())
    train_passages = (t for i in items for t in [*i.positives.values(), *(n for v in i.negatives.values() for n in v)])
    return OverlapReport(
        queries=_compare(train_queries, ((q.lang, q.text) for q in collection.queries)),
        passages=_compare(train_passages, ((c.lang, c.text) for c in collection.candidates)))


def find_overlap(items: Iterable[ParallelItem], collection: Collection, *, refuse: bool = False,
                 warn: bool = True) -> OverlapReport:
    """`measure_overlap`, then, on any leak, warn loudly (log + `UserWarning`) or, with
    `refuse=True`, raise `DataError`. This is what the training loop calls."""
    report = measure_overlap(items, collection)
    if report.any and (warn or refuse):
        message = f"TRAIN/EVAL LEAK in '{collection.name}': {report.summary()}; examples: " + \
            " | ".join(report.queries.examples[:2] + report.passages.examples[:2])
        if refuse:
            raise DataError(message + " (refusing to go on; refuse=False only warns)")
        logger.warning(message)
        warnings.warn(message, stacklevel=2)
    return report
