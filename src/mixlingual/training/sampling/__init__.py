"""Batch sampling: which items and languages form each training batch.

* `batch`: `Batch`, `Pair` (what a sampler yields) and the batch rules (`BatchGuard`);
* `epoch`: `EpochSampler`, the base every sampler shares (epoch position, exact resume, DDP
  slices, the per-step draws of kind and languages, the epoch's item queues);
* `mixture`: the in-memory samplers (`MixtureBatchSampler` and its special cases
  `MonolingualBatchSampler` (X-X), `CrossLingualBatchSampler` (X-Y) and `HybridBatchSampler`);
* `stream`: `StreamingBatchSampler`, the same batches over a stream too large for memory;
* `schedule`: `RatioSchedule`, batch-kind ratios over training (constant, linear, step).

The public names are importable from here: ``from mixlingual.training.sampling import HybridBatchSampler``.
"""

from mixlingual.training.sampling.batch import Batch, Pair, batch_counts
from mixlingual.training.sampling.mixture import (CrossLingualBatchSampler, HybridBatchSampler, MixtureBatchSampler,
                                                  MonolingualBatchSampler)
from mixlingual.training.sampling.schedule import KINDS, RatioSchedule
from mixlingual.training.sampling.stream import StreamingBatchSampler

__all__ = ["Batch", "Pair", "MixtureBatchSampler", "HybridBatchSampler", "MonolingualBatchSampler",
           "CrossLingualBatchSampler", "StreamingBatchSampler", "RatioSchedule", "KINDS", "batch_counts"]
