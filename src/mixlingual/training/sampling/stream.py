"""Hybrid / mixture batches over a stream of items too large for memory (mMARCO, HF datasets).

`StreamingBatchSampler` reads items from `make_stream()` (a function returning a fresh
iterator, e.g. ``lambda: jsonl.iter_parallel(path)`` or a Hugging Face streaming dataset mapped
to `ParallelItem`s) into a buffer of `buffer_size` items and builds each batch from it:

* the kind and X-X language of a step are drawn as `MixtureBatchSampler` draws them (same
  ratios / schedules, same `languages` restriction, same `language_weighting` / `temperature`
  weights from `epoch.language_weights`, item counts per language taken from one
  counting pass over the stream; X-X draws among the languages of the buffer able to fill a
  batch, their weights renormalized);
* the batch takes the buffered items that can serve that kind, in a random order, skipping
  items the batch's `BatchGuard` refuses (a parallel group already in the batch, a positive
  text already a positive or hard negative there: the in-memory sampler's rule); taken items
  leave the buffer, which refills from the
  stream, so memory stays at about `buffer_size` items and order is shuffled within that window;
* once the stream is exhausted, recently used items (a window of `buffer_size`) are recycled
  into the buffer so an epoch is always exactly `len(sampler)` full batches. A batch takes
  unserved buffered items first and a recycled one only when no unserved item can join it, so
  no item is served twice while an unserved one is buffered or still in the stream: on data
  without conflicts an epoch serves every item once, as the in-memory samplers do (`recycled`
  counts the items served again). `len` is `num_items // (batch_size * world_size)`; without
  `num_items` the stream is counted once (a cheap streaming pass).

Batches carry their records in `Batch.items` (their `item_index` numbers items read from the
stream). DDP, determinism and resume work as for `MixtureBatchSampler`: every rank reads the
same stream and takes its own slice of the global batch; `state_dict` is (epoch, step) and
resuming replays the epoch's stream up to that step (exact, at the price of re-reading).
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

import numpy as np

from mixlingual.errors import ConfigError
from mixlingual.training.sampling.batch import BatchGuard, ItemKeys, item_keys
from mixlingual.training.sampling.epoch import (EpochSampler, GlobalBatch, PairLanguages, StepDraw, language_weights,
                                                make_pair)
from mixlingual.training.sampling.schedule import RatioSchedule


class _Buffered(NamedTuple):
    """One buffered item: its position in the stream, the record, its `ItemKeys`, and whether it
    was already served this epoch (put back into the buffer once the stream ran dry)."""

    index: int
    item: object
    keys: ItemKeys
    served: bool = False


class StreamingBatchSampler(EpochSampler):
    """Mixture batches from a buffered stream (see the module docstring).

    Args:
        make_stream: returns a new iterator over the items each time it is called (once per epoch).
        batch_size, ratios, languages, language_weighting, temperature, seed, rank, world_size:
            as for `MixtureBatchSampler`.
        buffer_size: items held in memory; must be well above batch_size x world_size.
        num_items: the stream's length if known (else counted once; the pass also counts the
            items per language that "size" / "temperature" weighting needs).
    """

    def __init__(self, make_stream: Callable[[], Iterable], batch_size: int,
                 ratios: dict[str, float] | RatioSchedule, *, buffer_size: int = 10_000,
                 num_items: int | None = None, languages: Iterable[str] | None = None,
                 language_weighting: str = "uniform", temperature: float = 1.0, seed: int = 0,
                 rank: int = 0, world_size: int = 1):
        super().__init__(batch_size, seed=seed, rank=rank, world_size=world_size)
        if buffer_size < 4 * self.global_batch:
            raise ConfigError(f"data.buffer_size: {buffer_size} is too small for batches of {self.global_batch} "
                              f"(use at least 4 x batch_size x world_size)")
        self.make_stream, self.buffer_size = make_stream, buffer_size
        self.schedule = ratios if isinstance(ratios, RatioSchedule) else RatioSchedule(dict(ratios))
        self.wanted = set(languages) if languages else None
        language_weights([], language_weighting, temperature)  # the same key checks, before the pass
        counted, sizes = self._count(make_stream, self.wanted) if (
            num_items is None or language_weighting != "uniform") else (num_items, {})
        self.num_items = num_items if num_items is not None else counted
        self.mono_languages = sorted(sizes) if sizes else sorted(self.wanted or [])
        weights = language_weights([sizes.get(x, 0) for x in self.mono_languages], language_weighting, temperature)
        self.language_weights = dict(zip(self.mono_languages, weights))  # empty: uniform over the buffer's
        self.recycled = 0
        self.x_x_served_as_x_y = 0   # X-X draws of this epoch the buffer could not serve

    @staticmethod
    def _count(make_stream, wanted: set[str] | None) -> tuple[int, dict[str, int]]:
        """(items, {X-X language: items offering it}) from one pass over the stream."""
        total, sizes = 0, {}
        for item in make_stream():
            total += 1
            for lang in item.mono_languages:
                if wanted is None or lang in wanted:
                    sizes[lang] = sizes.get(lang, 0) + 1
        return total, sizes

    def _languages(self, langs: Iterable[str]) -> list[str]:
        """`langs` restricted to `languages` (all when unrestricted), sorted."""
        return sorted(x for x in langs if self.wanted is None or x in self.wanted)

    # ----- one epoch ----------------------------------------------------------------------
    def _global_batches(self, epoch: int) -> Iterator[GlobalBatch]:
        order_rng = np.random.default_rng([self.seed, epoch, 0])
        stream = enumerate(self.make_stream())
        buffer: list[_Buffered] = []
        used: deque[_Buffered] = deque(maxlen=self.buffer_size)  # recycled once the stream runs dry
        self.recycled = 0
        self.x_x_served_as_x_y = 0
        for step in range(len(self)):
            self._fill(buffer, stream, used)
            draw = self._draw_step(epoch, step, buffer)
            chosen = self._take(buffer, draw.kind, draw.language, order_rng)
            used.extend(chosen)
            self.recycled += sum(entry.served for entry in chosen)
            pairs = [make_pair(draw, entry.index, self._pair_languages(entry.item)) for entry in chosen]
            yield GlobalBatch(draw.kind, draw.language, pairs, [entry.item for entry in chosen])

    def _draw_step(self, epoch: int, step: int, buffer: list) -> StepDraw:
        kind, rng = self._draw_kind(epoch, step)
        language = None
        if kind == "X-X":
            language = self._draw_language(buffer, rng)
            if language is None:  # no language can fill an X-X batch from this buffer
                kind = "X-Y"
                self._note_x_x_fallback(step)
        return StepDraw(kind, language, rng)

    def _note_x_x_fallback(self, step: int) -> None:
        """Count (and warn once per epoch about) an X-X draw served as X-Y: the buffer is a window
        of the stream, and a window may hold too few parallel groups in any one language."""
        self.x_x_served_as_x_y += 1
        if self.x_x_served_as_x_y == 1:
            warnings.warn(f"streaming sampler: at step {step} no language of the buffer could fill an X-X batch "
                          f"of {self.global_batch}; that batch (and any later such one, counted in "
                          f"x_x_served_as_x_y) is X-Y. A larger data.buffer_size keeps X-X batches X-X.",
                          stacklevel=2)

    def _fill(self, buffer: list, stream, used: deque) -> None:
        for index, item in stream:
            buffer.append(_Buffered(index, item, item_keys(item, self.wanted)))
            if len(buffer) >= self.buffer_size:
                return
        while len(buffer) < self.buffer_size and used:  # stream exhausted: recycle
            buffer.append(used.popleft()._replace(served=True))

    def _draw_language(self, buffer: list, rng: np.random.Generator) -> str | None:
        """An X-X language among those the buffer can fill a batch in, by the configured weights."""
        groups: dict[str, set] = {}
        for entry in buffer:
            for lang in self._languages(entry.item.mono_languages):
                groups.setdefault(lang, set()).add(entry.item.group)
        able = sorted(lang for lang, g in groups.items() if len(g) >= self.global_batch)
        if not able:
            return None
        weights = np.array([self.language_weights.get(x, 1.0) for x in able])
        if weights.sum() <= 0:
            return None
        return able[rng.choice(len(able), p=weights / weights.sum())]

    def _serves(self, item, kind: str, language: str | None) -> bool:
        languages = self._pair_languages(item)
        if kind == "X-X":
            return language in languages.queries and language in languages.passages
        if kind == "X-Y":
            return bool(languages.cross)
        return bool(languages.queries and languages.passages)

    def _take(self, buffer: list[_Buffered], kind: str, language: str | None,
              rng: np.random.Generator) -> list[_Buffered]:
        """A global batch of buffered items that can serve `kind` and share one batch, in random
        order, unserved items before served ones (a stable sort keeps each part's random order)."""
        chosen, guard, taken = [], BatchGuard(), []
        order = sorted(rng.permutation(len(buffer)).tolist(), key=lambda position: buffer[position].served)
        for position in order:
            entry = buffer[position]
            if not self._serves(entry.item, kind, language) or not guard.admits(entry.keys):
                continue
            guard.add(entry.keys)
            chosen.append(entry)
            taken.append(position)
            if len(chosen) == self.global_batch:
                break
        if len(chosen) < self.global_batch:
            raise ConfigError(f"data.buffer_size: the buffer holds only {len(chosen)} items able to share a "
                              f"{kind} batch of {self.global_batch} (distinct parallel groups and passage "
                              f"texts); raise the buffer size")
        for position in sorted(taken, reverse=True):
            buffer.pop(position)
        return chosen

    def _pair_languages(self, item) -> PairLanguages:
        return PairLanguages.of(item, self._languages)

    def describe(self) -> dict:
        return {"batches_per_epoch": len(self), "global_batch": self.global_batch, "streaming": True,
                "buffer_size": self.buffer_size, "items": self.num_items, "recycled_last_epoch": self.recycled,
                "languages": sorted(self.wanted) if self.wanted else None,
                "language_weights": {k: round(float(v), 4) for k, v in self.language_weights.items()}}
