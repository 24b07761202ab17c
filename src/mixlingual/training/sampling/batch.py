"""What a sampler yields and which items may share a batch: the batch records and rules.

A sampler walks over a list of `ParallelItem`s and yields `Batch(kind, pairs)`; each `Pair`
names an item and the languages of its query and its positive passage. The samplers themselves
live in `mixture` (in memory) and `stream` (over a stream), on the shared base of `epoch`.

The batch rules (`BatchGuard`, checked on every batch by the tests):

* No two items of one parallel group share a *global* batch (all ranks together): a
  translation of the positive must never act as an in-batch negative.
* No two pairs of a global batch have positives with the same text, and no item's hard
  negative is the text of another batch item's positive (texts compared after
  `mixlingual.data.overlap.normalize_text`, across languages). Different
  questions on one paragraph (2,157 of MLQA test's 9,677 items with paragraph positives) or on
  one answer sentence would otherwise be each other's false negatives. Such items are *kept
  apart* (deferred to a later batch, as for a repeated group) rather than their hard negatives
  dropped: batches stay full, no negative is thrown away, and the loss's shape never depends
  on what a batch happened to hold. The check is per item over every language it offers (the
  pair's passage language is drawn afterwards), so it is conservative.
* No two items of one parallel paragraph (`item.meta["parallel_paragraph"]`, set by loaders that
  know it) share a global batch. The text rule is pairwise, so items whose passages are
  translations of one paragraph but share no text (MLQA test: one item in de+es, another in
  vi+zh, linked only through a third in de+vi) could still meet; 16 such pairs in MLQA test.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from mixlingual.data.overlap import text_id
from mixlingual.data.records import PARALLEL_PARAGRAPH

__all__ = ["Pair", "Batch", "BatchGuard", "ItemKeys", "item_keys", "conflict_clusters", "batch_counts"]


@dataclass(frozen=True)
class Pair:
    """One training pair: item `item_index` with its query in `query_lang`, positive in `passage_lang`."""

    item_index: int
    query_lang: str
    passage_lang: str


@dataclass
class Batch:
    """What a sampler yields: the batch kind ("X-X" | "X-Y" | "mixed") and this rank's pairs.

    `language` is the shared language of an X-X batch (None otherwise); `step` is the index of
    the batch within its epoch. `items` is set by streaming samplers only: the records of the
    pairs, in order (their `item_index` then counts items read from the stream).
    """

    kind: str
    pairs: list[Pair]
    language: str | None = None
    step: int = 0
    items: list | None = None


@dataclass(frozen=True)
class ItemKeys:
    """What decides whether an item may join a batch: its group, its parallel paragraph and the
    ids of its texts."""

    group: str
    positives: frozenset[int]   # text ids of its positives (every usable language)
    negatives: frozenset[int]   # text ids of its hard negatives
    paragraph: str | None = None  # its parallel paragraph, when the loader knows it


def item_keys(item, languages: set[str] | None = None) -> ItemKeys:
    """The `ItemKeys` of `item`, counting only `languages` (None: all) on the passage side."""
    def kept(lang: str) -> bool:
        return languages is None or lang in languages

    positives = frozenset(text_id(text) for lang, text in item.positives.items() if kept(lang))
    negatives = frozenset(text_id(text) for lang, texts in item.negatives.items() if kept(lang) for text in texts)
    paragraph = item.meta.get(PARALLEL_PARAGRAPH)
    return ItemKeys(str(item.group), positives, negatives, None if paragraph is None else str(paragraph))


class BatchGuard:
    """The groups, positive texts and hard-negative texts one global batch already holds.

    An item is admitted when its group and its parallel paragraph (if any) are new, none of its
    positives is a positive or a hard negative already in the batch, and none of its hard
    negatives is a positive already there.
    """

    def __init__(self):
        self.groups: set[str] = set()
        self.paragraphs: set[str] = set()
        self.positives: set[int] = set()
        self.negatives: set[int] = set()

    def admits(self, keys: ItemKeys) -> bool:
        return (keys.group not in self.groups and keys.paragraph not in self.paragraphs
                and self.positives.isdisjoint(keys.positives)
                and self.negatives.isdisjoint(keys.positives) and self.positives.isdisjoint(keys.negatives))

    def add(self, keys: ItemKeys) -> None:
        self.groups.add(keys.group)
        if keys.paragraph is not None:
            self.paragraphs.add(keys.paragraph)
        self.positives |= keys.positives
        self.negatives |= keys.negatives


def conflict_clusters(keys: Sequence[ItemKeys]) -> list[int]:
    """A cluster id per item: items sharing a group, a parallel paragraph or a text
    (transitively) share a cluster.

    Items of different clusters can always share a batch, so a pool with `n` distinct clusters
    always fills a batch of `n` greedily; hard negatives link items only when they equal some
    item's positive. Union-find over items.
    """
    parent = list(range(len(keys)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    all_positives = set().union(*(k.positives for k in keys)) if keys else set()
    owner: dict = {}
    for index, item in enumerate(keys):
        links = [("group", item.group), *item.positives, *(item.negatives & all_positives)]
        if item.paragraph is not None:
            links.append(("paragraph", item.paragraph))
        for link in links:
            other = owner.setdefault(link, index)
            parent[root(index)] = root(other)
    return [root(i) for i in range(len(keys))]


def batch_counts(batches: Sequence[Batch]) -> dict[str, Counter]:
    """Kind counts and X-X language counts of `batches` (for summaries and tests)."""
    return {"kinds": Counter(b.kind for b in batches),
            "languages": Counter(b.language for b in batches if b.language)}
