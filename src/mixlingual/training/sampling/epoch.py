"""What every batch sampler shares: `EpochSampler`, the per-step draws and the epoch's item queues.

`EpochSampler` is the base of the in-memory samplers (`mixture`) and the streaming one
(`stream`); a subclass only plans each epoch's global batches. The base gives them:

* Full batches: an epoch is `len(sampler)` batches (about one pass over the items).
  Items are drawn without replacement from a per-epoch shuffle; when the items able to serve
  a kind (or an X-X language) run out before the epoch ends, that pool is reshuffled and reused
  (counted in `refills`, `_EpochItems`) rather than yielding a short or degenerate batch.
* Determinism from (seed, epoch, step): the kind and languages of a step come from a random
  stream seeded by (seed, epoch, step); item order comes from a stream seeded by (seed, epoch).
* Exact resume: `state_dict()` is (epoch, step); `load_state_dict` replays the epoch's plan up
  to that step (cheap: no model work), so the remaining batches are identical.
* DDP: every rank computes the same global batch of ``batch_size * world_size`` pairs and takes
  its own contiguous slice, so all ranks share the kind and the X-X language of a step, hold
  disjoint items, and the negatives gathered across ranks stay homogeneous.

The draws (`draw_kind`, `language_weights`, `PairLanguages`, `StepDraw`, `make_pair`) are shared
by both sampler families, so the same configuration draws the same way in memory and streaming.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from mixlingual.errors import ConfigError
from mixlingual.training.sampling.batch import Batch, BatchGuard, ItemKeys, Pair
from mixlingual.training.sampling.schedule import KINDS, RatioSchedule

__all__ = ["EpochSampler", "GlobalBatch", "PairLanguages", "StepDraw", "language_weights", "draw_kind", "make_pair"]


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
