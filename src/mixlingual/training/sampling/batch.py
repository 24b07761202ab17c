"""Batch samplers for hybrid batch training: X-X, X-Y, hybrid and mixture batches.

A sampler walks over a list of `ParallelItem`s and yields `Batch(kind, pairs)`; each `Pair`
names an item and the languages of its query and its positive passage:

* ``X-X`` (monolingual): every pair of the batch uses one language X for both sides; X is drawn
  per batch (uniformly by default) among the languages that have enough items.
* ``X-Y`` (cross-lingual): every pair has query language != passage language, drawn per pair
  among the ordered language pairs that item offers.
* ``mixed``: each pair's query and passage languages are drawn independently, so one batch
  holds monolingual and cross-lingual pairs.

`MixtureBatchSampler` draws the kind of every batch from ratios (optionally scheduled over
training); `MonolingualBatchSampler`, `CrossLingualBatchSampler` and `HybridBatchSampler` are its
one- and two-kind special cases.

Guarantees (tested on every batch):

* No two items of one parallel group share a *global* batch (all ranks together): a
  translation of the positive must never act as an in-batch negative.
* No two pairs of a global batch have positives with the same text, and no item's hard
  negative is the text of another batch item's positive (texts compared after
  `mixlingual.data.overlap.normalize_text`, across languages: `BatchGuard`). Different
  questions on one paragraph (2,157 of MLQA test's 9,677 items with paragraph positives) or on
  one answer sentence would otherwise be each other's false negatives. Such items are *kept
  apart* (deferred to a later batch, as for a repeated group) rather than their hard negatives
  dropped: batches stay full, no negative is thrown away, and the loss's shape never depends
  on what a batch happened to hold. The check is per item over every language it offers (the
  pair's passage language is drawn afterwards), so it is conservative.
* Every batch is full: an epoch is `len(sampler)` batches (about one pass over the items).
  Items are drawn without replacement from a per-epoch shuffle; when the items able to serve
  a kind (or an X-X language) run out before the epoch ends, that pool is reshuffled and reused
  (counted in `refills`) rather than yielding a short or degenerate batch.
* Deterministic from (seed, epoch, step): the kind and languages of a step come from a random
  stream seeded by (seed, epoch, step); item order comes from a stream seeded by (seed, epoch).
* Exact resume: `state_dict()` is (epoch, step); `load_state_dict` replays the epoch's plan up
  to that step (cheap: no model work), so the remaining batches are identical.
* DDP: every rank computes the same global batch of ``batch_size * world_size`` pairs and takes
  its own contiguous slice, so all ranks share the kind and the X-X language of a step, hold
  disjoint items, and the negatives gathered across ranks stay homogeneous.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from mixlingual.data.overlap import text_id
from mixlingual.data.records import ParallelItem
from mixlingual.errors import ConfigError
from mixlingual.training.sampling.schedule import KINDS, RatioSchedule

__all__ = ["Pair", "Batch", "PairLanguages", "StepDraw", "EpochSampler", "RatioSchedule", "KINDS", "MixtureBatchSampler", "HybridBatchSampler",
           "MonolingualBatchSampler", "CrossLingualBatchSampler", "BatchGuard", "ItemKeys", "item_keys"]


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
    """What decides whether an item may join a batch: its group and the ids of its texts."""

    group: str
    positives: frozenset[int]   # text ids of its positives (every usable language)
    negatives: frozenset[int]   # text ids of its hard negatives


def item_keys(item, languages: set[str] | None = None) -> ItemKeys:
    """The `ItemKeys` of `item`, counting only `languages` (None: all) on the passage side."""
    def kept(lang: str) -> bool:
        return languages is None or lang in languages

    positives = frozenset(text_id(text) for lang, text in item.positives.items() if kept(lang))
    negatives = frozenset(text_id(text) for lang, texts in item.negatives.items() if kept(lang) for text in texts)
    return ItemKeys(str(item.group), positives, negatives)


class BatchGuard:
    """The groups, positive texts and hard-negative texts one global batch already holds.

    An item is admitted when its group is new, none of its positives is a positive or a hard
    negative already in the batch, and none of its hard negatives is a positive already there.
    """

    def __init__(self):
        self.groups: set[str] = set()
        self.positives: set[int] = set()
        self.negatives: set[int] = set()

    def admits(self, keys: ItemKeys) -> bool:
        return (keys.group not in self.groups and self.positives.isdisjoint(keys.positives)
                and self.negatives.isdisjoint(keys.positives) and self.positives.isdisjoint(keys.negatives))

    def add(self, keys: ItemKeys) -> None:
        self.groups.add(keys.group)
        self.positives |= keys.positives
        self.negatives |= keys.negatives


def conflict_clusters(keys: Sequence[ItemKeys]) -> list[int]:
    """A cluster id per item: items sharing a group or a text (transitively) share a cluster.

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
        for link in links:
            other = owner.setdefault(link, index)
            parent[root(index)] = root(other)
    return [root(i) for i in range(len(keys))]


def language_weights(sizes: Sequence[float], weighting: str, temperature: float) -> np.ndarray:
    """Probabilities of drawing each X-X language from its item count: "uniform", "size" or
    "temperature" (size ** (1 / temperature)); shared by the in-memory and streaming samplers."""
    if weighting not in ("uniform", "size", "temperature"):
        raise ConfigError(f"sampling.language_weighting: expected uniform | size | temperature, got '{weighting}'")
    if weighting == "temperature" and temperature <= 0:
        raise ConfigError(f"sampling.temperature: must be > 0, got {temperature}")
    sizes = np.asarray(sizes, dtype=np.float64)
    if weighting == "uniform" or not len(sizes):
        weights = np.ones_like(sizes)
    elif weighting == "size":
        weights = sizes
    else:
        weights = sizes ** (1.0 / temperature)
    return weights / weights.sum() if len(weights) else weights


def draw_kind(ratios: dict[str, float], rng: np.random.Generator) -> str:
    """One batch kind drawn with probabilities `ratios` (kinds with probability 0 never come up)."""
    kinds = [k for k in KINDS if ratios.get(k, 0) > 0]
    weights = np.array([ratios[k] for k in kinds])
    return kinds[rng.choice(len(kinds), p=weights / weights.sum())]


@dataclass(frozen=True)
class PairLanguages:
    """The languages an item offers its pairs: query sides, passage sides, and the ordered
    (query, passage) pairs with different languages (query-major order)."""

    queries: tuple[str, ...]
    passages: tuple[str, ...]

    @classmethod
    def of(cls, item, keep: Callable[[Iterable[str]], list[str]]) -> PairLanguages:
        return cls(tuple(keep(item.query_languages)), tuple(keep(item.passage_languages)))

    @property
    def cross(self) -> list[tuple[str, str]]:
        return [(q, p) for q in self.queries for p in self.passages if q != p]


@dataclass
class StepDraw:
    """What one step drew: the batch kind, the X-X language (None otherwise), and the step's random
    stream, from which each pair's languages are drawn next."""

    kind: str
    language: str | None
    rng: np.random.Generator


def make_pair(step: StepDraw, index: int, languages: PairLanguages) -> Pair:
    """The languages of one pair: X-X uses the batch language, X-Y an ordered pair with q != p,
    mixed an independent draw of each side."""
    if step.kind == "X-X":
        return Pair(index, step.language, step.language)
    rng = step.rng
    if step.kind == "X-Y":
        cross = languages.cross
        q, p = cross[rng.integers(len(cross))]
        return Pair(index, q, p)
    queries, passages = languages.queries, languages.passages
    return Pair(index, queries[rng.integers(len(queries))], passages[rng.integers(len(passages))])


class _ItemQueue:
    """A per-epoch shuffled queue of the item indices able to serve one kind (or one X-X language).

    Once it runs dry it is reshuffled and reused for the rest of the epoch (`reusing`).
    """

    def __init__(self, indices: Sequence[int], rng: np.random.Generator):
        self.indices = np.asarray(indices, dtype=np.int64)
        self.pending = deque(rng.permutation(self.indices).tolist())
        self.reusing = False

    def reshuffle(self, rng: np.random.Generator) -> None:
        self.pending = deque(rng.permutation(self.indices).tolist())
        self.reusing = True


class _EpochItems:
    """The items one epoch hands out: a queue per kind / X-X language, and the items used so far.

    An item used by one queue is skipped by the others until they are reused; `refills` counts
    the queues reshuffled this epoch.
    """

    def __init__(self, keys: Sequence[ItemKeys], rng: np.random.Generator):
        self.keys, self.rng = keys, rng
        self.queues: dict[str, _ItemQueue] = {}
        self.used: set[int] = set()
        self.refills = 0

    def take(self, queue_name: str, indices: Sequence[int], n: int) -> list[int]:
        """`n` items of `indices` (the queue `queue_name`) that can share one batch."""
        if queue_name not in self.queues:
            self.queues[queue_name] = _ItemQueue(indices, self.rng)
        queue, guard = self.queues[queue_name], BatchGuard()
        chosen: list[int] = []
        deferred: list[int] = []  # the batch's guard refuses it: keep for a later batch, in order
        fresh_queues = 0
        while len(chosen) < n:
            if not queue.pending:
                fresh_queues += 1
                if fresh_queues > 1:  # a whole fresh pass could not complete the batch
                    raise ConfigError(f"train.batch_size: only {len(chosen)} of the {len(queue.indices)} items able "
                                      f"to serve this batch can share one (parallel groups or identical "
                                      f"passage texts repeat); use a smaller batch")
                queue.reshuffle(self.rng)
                deferred = []  # the fresh queue holds the deferred items again
                self.refills += 1
            index = queue.pending.popleft()
            if index in self.used and not queue.reusing:
                continue
            if not guard.admits(self.keys[index]):
                deferred.append(index)
                continue
            guard.add(self.keys[index])
            self.used.add(index)
            chosen.append(index)
        queue.pending.extendleft(reversed(deferred))
        return chosen


@dataclass
class GlobalBatch:
    """One step's batch over all ranks, before each rank takes its slice."""

    kind: str
    language: str | None
    pairs: list[Pair]
    items: list | None = None   # the pairs' records (streaming samplers)


class EpochSampler:
    """What every sampler shares: its size and seed, the (epoch, step) position and its resume, the
    per-step draw of the batch kind, and each rank's slice of the global batch.

    A subclass sets `num_items` (what one epoch serves) and `schedule` and implements
    `_global_batches(epoch)`, yielding a `GlobalBatch` for every step of the epoch, identical
    on all ranks.
    """

    num_items: int
    schedule: RatioSchedule

    def __init__(self, batch_size: int, *, seed: int, rank: int, world_size: int):
        if batch_size < 1:
            raise ConfigError(f"train.batch_size: must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} outside [0, world_size={world_size})")
        self.batch_size, self.rank, self.world_size, self.seed = batch_size, rank, world_size, seed
        self.global_batch = batch_size * world_size
        self.epoch, self.step = 0, 0

    def _items_per_epoch(self) -> int:
        return self.num_items

    def __len__(self) -> int:
        """Batches per epoch: about one pass over the items the configured kinds can use."""
        return max(1, self._items_per_epoch() // self.global_batch)

    def set_epoch(self, epoch: int) -> None:
        """Start `epoch` from its first batch (call before iterating, as with DistributedSampler)."""
        self.epoch, self.step = epoch, 0

    def state_dict(self) -> dict:
        """JSON-able position: resuming from it yields exactly the batches not yet yielded."""
        return {"epoch": self.epoch, "step": self.step, "seed": self.seed, "batch_size": self.batch_size,
                "world_size": self.world_size, "num_items": self.num_items}

    def load_state_dict(self, state: dict) -> None:
        for key in ("seed", "batch_size", "world_size", "num_items"):
            mine = getattr(self, key)
            if state.get(key, mine) != mine:
                raise ConfigError(f"cannot resume: sampler {key} was {state[key]}, now {mine} "
                                  f"(resume needs the same data, seed, batch size and number of ranks)")
        self.epoch, self.step = int(state["epoch"]), int(state["step"])

    def __iter__(self) -> Iterator[Batch]:
        start = self.step
        for step, batch in enumerate(self._global_batches(self.epoch)):
            if step < start:
                continue  # replayed only to rebuild the epoch's state: resume is exact
            self.step = step + 1
            lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
            items = batch.items[lo:hi] if batch.items is not None else None
            yield Batch(batch.kind, batch.pairs[lo:hi], batch.language, step, items)

    def _draw_kind(self, epoch: int, step: int) -> tuple[str, np.random.Generator]:
        """The batch kind of (epoch, step) and the step's random stream (seeded by seed, epoch, step)."""
        rng = np.random.default_rng([self.seed, epoch, step + 1])
        return draw_kind(self.schedule.at(epoch * len(self) + step), rng), rng

    def _global_batches(self, epoch: int) -> Iterator[GlobalBatch]:
        raise NotImplementedError


class MixtureBatchSampler(EpochSampler):
    """Batches whose kind is drawn per step from ratios over {"X-X", "X-Y", "mixed"}.

    Args:
        items: the training items (pairs refer to them by index).
        batch_size: pairs per batch on each rank.
        ratios: kind -> probability (sums to 1), or a `RatioSchedule` that varies them over training.
        languages: restrict pairs to these languages (default: every language of the items).
        language_weighting: how X-X draws its language: "uniform" (default), "size" (proportional
            to the number of items with that language) or "temperature" (size ** (1 / temperature)).
        temperature: the exponent's temperature for "temperature" weighting.
        seed: base seed; batches are a function of (seed, epoch, step).
        rank, world_size: this process's DDP rank and the number of ranks.

    Raises `ConfigError` (naming the key) when a kind has no item able to serve it or fewer
    items that can share a batch (distinct groups and passage texts) than one global batch needs.
    """

    def __init__(self, items: Sequence[ParallelItem], batch_size: int,
                 ratios: dict[str, float] | RatioSchedule, *, languages: Sequence[str] | None = None,
                 language_weighting: str = "uniform", temperature: float = 1.0, seed: int = 0,
                 rank: int = 0, world_size: int = 1):
        super().__init__(batch_size, seed=seed, rank=rank, world_size=world_size)
        self.items, self.num_items = items, len(items)
        self.schedule = ratios if isinstance(ratios, RatioSchedule) else RatioSchedule(dict(ratios))
        wanted = set(languages) if languages else None
        self.keys = [item_keys(item, wanted) for item in items]
        self.cluster_of = conflict_clusters(self.keys)
        self._index_items(wanted)
        self._check_pools()
        self.language_weights = language_weights([len(self.mono_pool[x]) for x in self.mono_languages],
                                                 language_weighting, temperature)
        self.refills = 0

    # ----- set-up -------------------------------------------------------------------------
    def _index_items(self, wanted: set[str] | None) -> None:
        """Which items can serve each kind, and the language choices each item offers."""
        keep = (lambda langs: [x for x in langs if x in wanted]) if wanted else list
        self.mono_pool: dict[str, list[int]] = {}
        self.pair_languages: list[PairLanguages] = []
        for index, item in enumerate(self.items):
            for lang in keep(item.mono_languages):
                self.mono_pool.setdefault(lang, []).append(index)
            self.pair_languages.append(PairLanguages.of(item, keep))
        self.cross_pool = [i for i, langs in enumerate(self.pair_languages) if langs.cross]
        self.mixed_pool = [i for i, langs in enumerate(self.pair_languages) if langs.queries and langs.passages]
        self.excluded_from_cross = len(self.items) - len(self.cross_pool)

    def _distinct_groups(self, indices: Sequence[int]) -> int:
        """How many of `indices` can surely share one batch: distinct groups-and-texts clusters."""
        return len({self.cluster_of[i] for i in indices})

    def _check_pools(self) -> None:
        kinds = self.schedule.kinds_used()
        need = self.global_batch
        # An X-X language too small for one batch is left out (reported), not fatal.
        self.excluded_languages = {lang: self._distinct_groups(ix) for lang, ix in self.mono_pool.items()
                                   if self._distinct_groups(ix) < need}
        self.mono_languages = sorted(set(self.mono_pool) - set(self.excluded_languages))
        if "X-X" in kinds and not self.mono_languages:
            raise ConfigError(f"train.batch_size: X-X batches need one language with >= {need} groups (distinct "
                              f"passage texts) "
                              f"holding both a query and a positive; per language: "
                              f"{ {k: self._distinct_groups(v) for k, v in self.mono_pool.items()} }")
        for kind, pool in (("X-Y", self.cross_pool), ("mixed", self.mixed_pool)):
            if kind in kinds and self._distinct_groups(pool) < need:
                raise ConfigError(f"train.batch_size: {kind} batches need >= {need} parallel groups with distinct "
                                  f"passage texts (batch_size x world_size), the data has "
                                  f"{self._distinct_groups(pool)}")
        servable = set()
        if "X-X" in kinds:
            for lang in self.mono_languages:
                servable.update(self.mono_pool[lang])
        if "X-Y" in kinds:
            servable.update(self.cross_pool)
        if "mixed" in kinds:
            servable.update(self.mixed_pool)
        self.num_servable = len(servable)

    def _items_per_epoch(self) -> int:
        """One pass over the items that can serve the configured kinds."""
        return self.num_servable

    # ----- the plan of one epoch ----------------------------------------------------------
    def _global_batches(self, epoch: int) -> Iterator[GlobalBatch]:
        """A `GlobalBatch` for every step of `epoch`, identical on all ranks."""
        epoch_items = _EpochItems(self.keys, np.random.default_rng([self.seed, epoch, 0]))
        self.refills = 0
        for step in range(len(self)):
            draw = self._draw_step(epoch, step)
            queue_name, indices = self._serving(draw)
            chosen = epoch_items.take(queue_name, indices, self.global_batch)
            self.refills = epoch_items.refills
            yield GlobalBatch(draw.kind, draw.language, [make_pair(draw, i, self.pair_languages[i]) for i in chosen])

    def _draw_step(self, epoch: int, step: int) -> StepDraw:
        kind, rng = self._draw_kind(epoch, step)
        language = None
        if kind == "X-X":
            language = self.mono_languages[rng.choice(len(self.mono_languages), p=self.language_weights)]
        return StepDraw(kind, language, rng)

    def _serving(self, draw: StepDraw) -> tuple[str, list[int]]:
        """The queue's name and the items able to serve the step's kind (and X-X language)."""
        if draw.kind == "X-X":
            return f"X-X:{draw.language}", self.mono_pool[draw.language]
        return draw.kind, self.cross_pool if draw.kind == "X-Y" else self.mixed_pool

    def describe(self) -> dict:
        """What the sampler will draw from: for logs and the run's summary."""
        return {"batches_per_epoch": len(self), "global_batch": self.global_batch,
                "mono_languages": self.mono_languages, "excluded_languages": self.excluded_languages,
                "items": len(self.items), "items_without_cross_pair": self.excluded_from_cross,
                "language_weights": dict(zip(self.mono_languages, self.language_weights.round(4).tolist()))}


class HybridBatchSampler(MixtureBatchSampler):
    """X-X batches with probability `alpha` (paper default 0.5), X-Y batches otherwise.

    `alpha` may be a float or a `RatioSchedule` over the two kinds (see `RatioSchedule.hybrid`).
    Other arguments as for `MixtureBatchSampler`.
    """

    def __init__(self, items: Sequence[ParallelItem], batch_size: int, alpha: float | RatioSchedule = 0.5,
                 **kwargs):
        schedule = alpha if isinstance(alpha, RatioSchedule) else RatioSchedule.hybrid(alpha)
        super().__init__(items, batch_size, schedule, **kwargs)


class MonolingualBatchSampler(MixtureBatchSampler):
    """Only X-X batches: the whole batch in one language, drawn per batch.

    The language is drawn uniformly among the languages with both queries and positives, or by
    data size / temperature (`language_weighting`). Other arguments as for `MixtureBatchSampler`.
    """

    def __init__(self, items: Sequence[ParallelItem], batch_size: int, **kwargs):
        super().__init__(items, batch_size, {"X-X": 1.0}, **kwargs)


class CrossLingualBatchSampler(MixtureBatchSampler):
    """Only X-Y batches: every pair has query language != passage language.

    Items offering no such pair are excluded (their count is `excluded_from_cross`). Other
    arguments as for `MixtureBatchSampler`.
    """

    def __init__(self, items: Sequence[ParallelItem], batch_size: int, **kwargs):
        super().__init__(items, batch_size, {"X-Y": 1.0}, **kwargs)


def batch_counts(batches: Sequence[Batch]) -> dict[str, Counter]:
    """Kind counts and X-X language counts of `batches` (for summaries and tests)."""
    return {"kinds": Counter(b.kind for b in batches),
            "languages": Counter(b.language for b in batches if b.language)}
