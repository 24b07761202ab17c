"""The canonical in-memory records every step shares.

* `ParallelItem` - one training instance: the same question and its positive passage in several
  languages (plus optional hard negatives). Batch samplers choose which languages of an item
  form a (query, passage) pair.
* `Collection` - an evaluation collection: queries (id, lang, text, parallel group) and
  candidates (id, lang, text, the groups they answer). A candidate is relevant to a query when
  the query's group is among the candidate's groups, which is how LAReQA defines relevance
  (the answer sentence in *every* language is relevant).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field


PARALLEL_PARAGRAPH = "parallel_paragraph"  # the `ParallelItem.meta` key of its paragraph's id


@dataclass
class ParallelItem:
    """A parallel (query, positive passage) instance in several languages.

    `group` names the parallel group the item belongs to (defaults to `id`): two items of one
    group are translations or near-duplicates of each other and must never meet in a batch,
    or one would serve as a false in-batch negative for the other.

    `meta[PARALLEL_PARAGRAPH]` (optional, set by loaders that know it, e.g. `mlqa`) names the
    paragraph, across its translations, that the item's passages come from: different questions
    on one paragraph never meet in a batch either, even when their passages share no text (one
    item in German and Spanish, another in Vietnamese).
    """

    id: str
    queries: dict[str, str]
    positives: dict[str, str]
    negatives: dict[str, list[str]] = field(default_factory=dict)
    group: str | None = None
    source: str | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.group is None:
            self.group = self.id

    @property
    def query_languages(self) -> list[str]:
        return sorted(self.queries)

    @property
    def passage_languages(self) -> list[str]:
        return sorted(self.positives)

    @property
    def mono_languages(self) -> list[str]:
        """Languages with both a query and a positive: the ones an X-X pair can use."""
        return sorted(set(self.queries) & set(self.positives))


@dataclass
class Query:
    id: str
    lang: str
    text: str
    group: str


@dataclass
class Candidate:
    id: str
    lang: str
    text: str
    groups: tuple[str, ...] = ()
    context: str | None = None


@dataclass
class Collection:
    """An evaluation collection: queries and a candidate pool, grouped across languages."""

    name: str
    queries: list[Query]
    candidates: list[Candidate]
    meta: dict = field(default_factory=dict)

    @property
    def languages(self) -> list[str]:
        return sorted({q.lang for q in self.queries} | {c.lang for c in self.candidates})

    def relevant_by_group(self) -> dict[str, list[int]]:
        """group -> indices (into `candidates`) of the candidates that answer it."""
        out: dict[str, list[int]] = defaultdict(list)
        for i, cand in enumerate(self.candidates):
            for g in cand.groups:
                out[g].append(i)
        return dict(out)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per-language counts of queries and candidates."""
        q = Counter(x.lang for x in self.queries)
        c = Counter(x.lang for x in self.candidates)
        return {lang: {"queries": q.get(lang, 0), "candidates": c.get(lang, 0)} for lang in self.languages}
