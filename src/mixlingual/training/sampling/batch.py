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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from mixlingual.data.overlap import text_id
from mixlingual.data.records import ParallelItem
from mixlingual.errors import ConfigError
from mixlingual.training.sampling.schedule import KINDS, RatioSchedule

__all__ = ["Pair", "Batch", "RatioSchedule", "KINDS", "MixtureBatchSampler", "HybridBatchSampler",
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


def make_pair(kind: str, language: str | None, index: int, cross_options: Sequence[tuple[str, str]],
              query_langs: Sequence[str], passage_langs: Sequence[str], rng: np.random.Generator) -> Pair:
    """The languages of one pair: X-X uses the batch language, X-Y an ordered pair with q != p,
    mixed an independent draw of each side."""
    if kind == "X-X":
        return Pair(index, language, language)
    if kind == "X-Y":
        q, p = cross_options[rng.integers(len(cross_options))]
        return Pair(index, q, p)
    return Pair(index, query_langs[rng.integers(len(query_langs))], passage_langs[rng.integers(len(passage_langs))])


class _Pool:
    """A per-epoch shuffled queue of the item indices able to serve one kind (or one X-X language).

    Items consumed by another pool this epoch are skipped; once the queue runs dry the pool is
    reshuffled and reused for the rest of the epoch (`refills` counts how often).
    """

    def __init__(self, indices: Sequence[int], rng: np.random.Generator):
        self.indices = np.asarray(indices, dtype=np.int64)
        self.queue = deque(rng.permutation(self.indices).tolist())
        self.reusing = False
        self.refills = 0

    def take(self, n: int, used: set[int], guard: BatchGuard, keys: Sequence[ItemKeys],
             rng: np.random.Generator) -> list[int]:
        out: list[int] = []
        deferred: list[int] = []  # the batch's guard refuses it: keep for a later batch, in order
        fresh_queues = 0
        while len(out) < n:
            if not self.queue:
                fresh_queues += 1
                if fresh_queues > 1:  # a whole fresh pass could not complete the batch
                    raise ConfigError(f"train.batch_size: only {len(out)} of the {len(self.indices)} items able "
                                      f"to serve this batch can share one (parallel groups or identical "
                                      f"passage texts repeat); use a smaller batch")
                self.queue = deque(rng.permutation(self.indices).tolist())
                self.reusing, deferred = True, []  # the fresh queue holds the deferred items again
                self.refills += 1
            index = self.queue.popleft()
            if index in used and not self.reusing:
                continue
            if not guard.admits(keys[index]):
                deferred.append(index)
                continue
            guard.add(keys[index])
            used.add(index)
            out.append(index)
        self.queue.extendleft(reversed(deferred))
        return out


class MixtureBatchSampler:
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
        if batch_size < 1:
            raise ConfigError(f"train.batch_size: must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} outside [0, world_size={world_size})")
        self.items = items
        self.batch_size, self.rank, self.world_size, self.seed = batch_size, rank, world_size, seed
        self.global_batch = batch_size * world_size
        self.schedule = ratios if isinstance(ratios, RatioSchedule) else RatioSchedule(dict(ratios))
        wanted = set(languages) if languages else None
        self.keys = [item_keys(item, wanted) for item in items]
        self.cluster_of = conflict_clusters(self.keys)
        self._index_items(wanted)
        self._check_pools()
        self.language_weights = language_weights([len(self.mono_pool[x]) for x in self.mono_languages],
                                                 language_weighting, temperature)
        self.epoch, self.step = 0, 0
        self.refills = 0

    # ----- set-up -------------------------------------------------------------------------
    def _index_items(self, wanted: set[str] | None) -> None:
        """Which items can serve each kind, and the language choices each item offers."""
        keep = (lambda langs: [x for x in langs if x in wanted]) if wanted else list
        self.mono_pool: dict[str, list[int]] = {}
        self.cross_options: list[list[tuple[str, str]]] = []
        self.mixed_options: list[tuple[list[str], list[str]]] = []
        for index, item in enumerate(self.items):
            for lang in keep(item.mono_languages):
                self.mono_pool.setdefault(lang, []).append(index)
            q_langs, p_langs = keep(item.query_languages), keep(item.passage_languages)
            self.cross_options.append([(q, p) for q in q_langs for p in p_langs if q != p])
            self.mixed_options.append((q_langs, p_langs))
        self.cross_pool = [i for i, opts in enumerate(self.cross_options) if opts]
        self.mixed_pool = [i for i, (q, p) in enumerate(self.mixed_options) if q and p]
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

    # ----- the sampler interface ---------------------------------------------------------
    def __len__(self) -> int:
        """Batches per epoch: one pass over the items that can serve the configured kinds."""
        return max(1, self.num_servable // self.global_batch)

    def set_epoch(self, epoch: int) -> None:
        """Start `epoch` from its first batch (call before iterating, as with DistributedSampler)."""
        self.epoch, self.step = epoch, 0

    def state_dict(self) -> dict:
        """JSON-able position: resuming from it yields exactly the batches not yet yielded."""
        return {"epoch": self.epoch, "step": self.step, "seed": self.seed, "batch_size": self.batch_size,
                "world_size": self.world_size, "num_items": len(self.items)}

    def load_state_dict(self, state: dict) -> None:
        for key in ("seed", "batch_size", "world_size", "num_items"):
            mine = {"seed": self.seed, "batch_size": self.batch_size, "world_size": self.world_size,
                    "num_items": len(self.items)}[key]
            if state.get(key, mine) != mine:
                raise ConfigError(f"cannot resume: sampler {key} was {state[key]}, now {mine} "
                                  f"(resume needs the same data, seed, batch size and number of ranks)")
        self.epoch, self.step = int(state["epoch"]), int(state["step"])

    def __iter__(self) -> Iterator[Batch]:
        start = self.step
        for step, (kind, language, pairs) in enumerate(self._global_batches(self.epoch)):
            if step < start:
                continue  # replayed only to rebuild the pools' state: resume is exact
            self.step = step + 1
            lo = self.rank * self.batch_size
            yield Batch(kind, pairs[lo:lo + self.batch_size], language, step)

    # ----- the plan of one epoch ----------------------------------------------------------
    def _global_batches(self, epoch: int) -> Iterator[tuple[str, str | None, list[Pair]]]:
        """Yield (kind, X-X language, global pairs) for every step of `epoch`, identical on all ranks."""
        order_rng = np.random.default_rng([self.seed, epoch, 0])
        pools: dict[str, _Pool] = {}
        used: set[int] = set()
        self.refills = 0
        for step in range(len(self)):
            rng = np.random.default_rng([self.seed, epoch, step + 1])
            kind = draw_kind(self.schedule.at(epoch * len(self) + step), rng)
            language = None
            if kind == "X-X":
                language = self.mono_languages[rng.choice(len(self.mono_languages), p=self.language_weights)]
                key, indices = f"X-X:{language}", self.mono_pool[language]
            else:
                key, indices = kind, self.cross_pool if kind == "X-Y" else self.mixed_pool
            if key not in pools:
                pools[key] = _Pool(indices, order_rng)
            before = pools[key].refills
            chosen = pools[key].take(self.global_batch, used, BatchGuard(), self.keys, order_rng)
            self.refills += pools[key].refills - before
            yield kind, language, [self._pair(kind, language, i, rng) for i in chosen]

    def _pair(self, kind: str, language: str | None, index: int, rng: np.random.Generator) -> Pair:
        q_langs, p_langs = self.mixed_options[index]
        return make_pair(kind, language, index, self.cross_options[index], q_langs, p_langs, rng)

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
