"""The in-memory batch samplers for hybrid batch training: X-X, X-Y, hybrid and mixture batches.

Each batch has a kind:

* ``X-X`` (monolingual): every pair of the batch uses one language X for both sides; X is drawn
  per batch (uniformly by default) among the languages that have enough items.
* ``X-Y`` (cross-lingual): every pair has query language != passage language, drawn per pair
  among the ordered language pairs that item offers.
* ``mixed``: each pair's query and passage languages are drawn independently, so one batch
  holds monolingual and cross-lingual pairs.

`MixtureBatchSampler` draws the kind of every batch from ratios (optionally scheduled over
training); `MonolingualBatchSampler`, `CrossLingualBatchSampler` and `HybridBatchSampler` are its
one- and two-kind special cases. The batch rules they keep (no parallel group or passage text
twice in a global batch) are in `batch`; full batches, determinism, exact resume and the DDP
slices come from their base, `epoch.EpochSampler`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from mixlingual.data.records import ParallelItem
from mixlingual.errors import ConfigError
from mixlingual.training.sampling.batch import conflict_clusters, item_keys
from mixlingual.training.sampling.epoch import (EpochSampler, GlobalBatch, PairLanguages, StepDraw, _EpochItems,
                                                language_weights, make_pair)
from mixlingual.training.sampling.schedule import RatioSchedule

__all__ = ["MixtureBatchSampler", "HybridBatchSampler", "MonolingualBatchSampler", "CrossLingualBatchSampler"]


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
