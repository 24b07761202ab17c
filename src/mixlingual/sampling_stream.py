"""Hybrid / mixture batches over a stream of items too large for memory (mMARCO, HF datasets).

`StreamingBatchSampler` reads items from `make_stream()` (a function returning a fresh
iterator, e.g. ``lambda: jsonl.iter_parallel(path)`` or a Hugging Face streaming dataset mapped
to `ParallelItem`s) into a buffer of `buffer_size` items and builds each batch from it:

* the kind and X-X language of a step are drawn exactly as `MixtureBatchSampler` draws them
  (same ratios / schedules; X-X languages: those of the buffer able to fill a batch);
* the batch takes the buffered items that can serve that kind, in a random order, skipping
  parallel groups already in the batch; taken items leave the buffer, which refills from the
  stream, so memory stays at about `buffer_size` items and order is shuffled within that window;
* once the stream is exhausted, recently used items (a window of `buffer_size`) are recycled
  to fill the last batches, so an epoch is always exactly `len(sampler)` full batches
  (`recycled` counts them). `len` is `num_items // (batch_size * world_size)`; without
  `num_items` the stream is counted once (a cheap streaming pass).

Batches carry their records in `Batch.items` (their `item_index` numbers items read from the
stream). DDP, determinism and resume work as for `MixtureBatchSampler`: every rank reads the
same stream and takes its own slice of the global batch; `state_dict` is (epoch, step) and
resuming replays the epoch's stream up to that step (exact, at the price of re-reading).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from mixlingual.errors import ConfigError
from mixlingual.sampling import Batch, draw_kind, make_pair
from mixlingual.sampling_schedule import RatioSchedule


class StreamingBatchSampler:
    """Mixture batches from a buffered stream (see the module docstring).

    Args:
        make_stream: returns a new iterator over the items each time it is called (once per epoch).
        batch_size, ratios, seed, rank, world_size: as for `MixtureBatchSampler`.
        buffer_size: items held in memory; must be well above batch_size x world_size.
        num_items: the stream's length if known (else counted once).
    """

    def __init__(self, make_stream: Callable[[], Iterable], batch_size: int,
                 ratios: dict[str, float] | RatioSchedule, *, buffer_size: int = 10_000,
                 num_items: int | None = None, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.global_batch = batch_size * world_size
        if buffer_size < 4 * self.global_batch:
            raise ConfigError(f"data.buffer_size: {buffer_size} is too small for batches of {self.global_batch} "
                              f"(use at least 4 x batch_size x world_size)")
        self.make_stream, self.batch_size, self.buffer_size = make_stream, batch_size, buffer_size
        self.schedule = ratios if isinstance(ratios, RatioSchedule) else RatioSchedule(dict(ratios))
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.num_items = num_items if num_items is not None else sum(1 for _ in make_stream())
        self.epoch, self.step, self.recycled = 0, 0, 0

    def __len__(self) -> int:
        return max(1, self.num_items // self.global_batch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.step = epoch, 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "step": self.step, "seed": self.seed, "batch_size": self.batch_size,
                "world_size": self.world_size, "num_items": self.num_items}

    def load_state_dict(self, state: dict) -> None:
        for key in ("seed", "batch_size", "world_size", "num_items"):
            if state[key] != getattr(self, key):
                raise ConfigError(f"cannot resume: sampler {key} was {state[key]}, now {getattr(self, key)}")
        self.epoch, self.step = int(state["epoch"]), int(state["step"])

    def __iter__(self) -> Iterator[Batch]:
        start = self.step
        for step, (kind, language, pairs, items) in enumerate(self._global_batches(self.epoch)):
            if step < start:
                continue
            self.step = step + 1
            lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
            yield Batch(kind, pairs[lo:hi], language, step, items[lo:hi])

    # ----- one epoch ----------------------------------------------------------------------
    def _global_batches(self, epoch: int):
        order_rng = np.random.default_rng([self.seed, epoch, 0])
        stream = enumerate(self.make_stream())
        buffer: list[tuple[int, object]] = []
        used: deque = deque(maxlen=self.buffer_size)  # recycled once the stream runs dry
        self.recycled = 0
        for step in range(len(self)):
            self._fill(buffer, stream, used)
            rng = np.random.default_rng([self.seed, epoch, step + 1])
            kind = draw_kind(self.schedule.at(epoch * len(self) + step), rng)
            language = None
            if kind == "X-X":
                language = self._draw_language(buffer, rng)
                if language is None:  # no language can fill an X-X batch from this buffer
                    kind = "X-Y"
            chosen = self._take(buffer, kind, language, order_rng)
            used.extend(chosen)
            pairs = [self._pair(kind, language, index, item, rng) for index, item in chosen]
            yield kind, language, pairs, [item for _, item in chosen]

    def _fill(self, buffer: list, stream, used: deque) -> None:
        for entry in stream:
            buffer.append(entry)
            if len(buffer) >= self.buffer_size:
                return
        while len(buffer) < self.buffer_size and used:  # stream exhausted: recycle
            buffer.append(used.popleft())
            self.recycled += 1

    def _draw_language(self, buffer: list, rng: np.random.Generator) -> str | None:
        groups: dict[str, set] = {}
        for _, item in buffer:
            for lang in item.mono_languages:
                groups.setdefault(lang, set()).add(item.group)
        able = sorted(lang for lang, g in groups.items() if len(g) >= self.global_batch)
        return able[rng.integers(len(able))] if able else None

    @staticmethod
    def _serves(item, kind: str, language: str | None) -> bool:
        if kind == "X-X":
            return language in item.queries and language in item.positives
        if kind == "X-Y":
            return any(q != p for q in item.queries for p in item.positives)
        return bool(item.queries and item.positives)

    def _take(self, buffer: list, kind: str, language: str | None, rng: np.random.Generator) -> list:
        chosen, groups, taken = [], set(), []
        for position in rng.permutation(len(buffer)):
            index, item = buffer[position]
            if item.group in groups or not self._serves(item, kind, language):
                continue
            groups.add(item.group)
            chosen.append((index, item))
            taken.append(position)
            if len(chosen) == self.global_batch:
                break
        if len(chosen) < self.global_batch:
            raise ConfigError(f"data.buffer_size: the buffer holds only {len(chosen)} distinct groups able to "
                              f"serve a {kind} batch of {self.global_batch}; raise the buffer size")
        for position in sorted(taken, reverse=True):
            buffer.pop(position)
        return chosen

    @staticmethod
    def _pair(kind, language, index, item, rng):
        q_langs, p_langs = sorted(item.queries), sorted(item.positives)
        cross = [(q, p) for q in q_langs for p in p_langs if q != p]
        return make_pair(kind, language, index, cross, q_langs, p_langs, rng)

    def describe(self) -> dict:
        return {"batches_per_epoch": len(self), "global_batch": self.global_batch, "streaming": True,
                "buffer_size": self.buffer_size, "items": self.num_items, "recycled_last_epoch": self.recycled}
