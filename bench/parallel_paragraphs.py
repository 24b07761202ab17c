"""Items of one parallel paragraph in one batch, and what keeping them apart costs (MLQA test).

Measures on the real MLQA test items (loader `mlqa`, split=test, german_answers=auto, as
configs/sweeps/base-mlqa-e5.yaml loads them):

* the sizes of the conflict clusters (items linked by group or identical texts, transitively)
  and of the parallel paragraphs (`meta["parallel_paragraph"]`), and how many item pairs of one
  cluster / paragraph the pairwise text rule alone lets into one batch;
* per sampler and batch size, with the paragraph key ignored (the rule before) and used: the
  batches holding two items of one parallel paragraph, the guard's refusals (items deferred),
  the queues reshuffled before the epoch ended (`refills`) and the servable items an epoch left
  unserved. Streaming: the same, with items served again (`recycled`).

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python bench/parallel_paragraphs.py \
        --shared ../shared/data [--epochs 3] [--out bench/results/parallel_paragraphs.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
from collections import Counter, defaultdict
from pathlib import Path

from mixlingual.data.records import PARALLEL_PARAGRAPH
from mixlingual.data.registry import load_parallel
from mixlingual.training.sampling import epoch as epoch_module
from mixlingual.training.sampling import stream as stream_module
from mixlingual.training.sampling.batch import BatchGuard, conflict_clusters, item_keys
from mixlingual.training.sampling.mixture import HybridBatchSampler
from mixlingual.training.sampling.stream import StreamingBatchSampler


class CountingGuard(BatchGuard):
    """A `BatchGuard` that counts its refusals (all instances together)."""

    refused = 0

    def admits(self, keys) -> bool:
        ok = super().admits(keys)
        CountingGuard.refused += not ok
        return ok


def admitted_pairwise(members, keys) -> list[tuple[int, int]]:
    """Pairs of `members` that the guard lets into one batch when it holds only the two."""
    def clash(a: int, b: int) -> bool:
        guard = BatchGuard()
        guard.add(keys[a])
        return not guard.admits(keys[b])
    return [(a, b) for a, b in itertools.combinations(members, 2) if not clash(a, b) and not clash(b, a)]


def structure(items) -> dict:
    """Cluster and paragraph sizes, and the pairs only linked through other items."""
    text_keys = [dataclasses.replace(item_keys(item), paragraph=None) for item in items]
    clusters = conflict_clusters(text_keys)
    paragraphs = [item.meta[PARALLEL_PARAGRAPH] for item in items]
    out = {}
    for name, key in (("conflict_clusters", clusters), ("parallel_paragraphs", paragraphs)):
        members = defaultdict(list)
        for index, k in enumerate(key):
            members[k].append(index)
        pairs = [p for m in members.values() for p in admitted_pairwise(m, text_keys)]
        out[name] = {"sizes": dict(sorted(Counter(len(m) for m in members.values()).items())),
                     "pairs_admitted_by_the_text_rule": len(pairs),
                     "of_them_one_parallel_paragraph": sum(paragraphs[a] == paragraphs[b] for a, b in pairs)}
    return out


def epoch_stats(sampler, paragraph_of: list[str], epochs: int, servable: int) -> dict:
    """Per-epoch means of what `sampler` did (see the module docstring); `paragraph_of[i]` is the
    parallel paragraph of item i (streams are read in list order, so item_index is the index)."""
    together = refills = left = again = 0
    CountingGuard.refused = 0
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        served = Counter()
        for batch in sampler:
            indices = [p.item_index for p in batch.pairs]
            served.update(indices)
            keys = [paragraph_of[i] for i in indices]
            together += len(keys) != len(set(keys))
        refills += getattr(sampler, "refills", 0)
        again += getattr(sampler, "recycled", 0)
        left += servable - len(served)
    refused = CountingGuard.refused
    return {"batches_per_epoch": len(sampler), "batches_with_one_paragraph_twice": together / epochs,
            "guard_refusals": refused / epochs, "refills": refills / epochs,
            "servable_items_unserved": left / epochs, "items_served_again": again / epochs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default="../shared/data")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args()
    items = list(load_parallel("mlqa", Path(args.shared) / "mlqa", split="test", german_answers="auto"))
    paragraph_of = [item.meta[PARALLEL_PARAGRAPH] for item in items]
    without = [dataclasses.replace(item, meta={k: v for k, v in item.meta.items() if k != PARALLEL_PARAGRAPH})
               for item in items]   # the rule before: the samplers see no paragraph key
    epoch_module.BatchGuard = stream_module.BatchGuard = CountingGuard
    result = {"items": len(items), "structure": structure(items), "runs": []}
    for batch_size in (16, 64):
        for rule, data in (("text only (before)", without), ("with parallel paragraph", items)):
            memory = HybridBatchSampler(data, batch_size, alpha=0.5, seed=0)
            run = {"batch_size": batch_size, "rule": rule, "sampler": "hybrid in memory",
                   **epoch_stats(memory, paragraph_of, args.epochs, memory.num_servable)}
            result["runs"].append(run)
            print(json.dumps(run))
            streaming = StreamingBatchSampler(lambda data=data: iter(data), batch_size, {"X-X": 0.5, "X-Y": 0.5},
                                              buffer_size=2000, seed=0)
            run = {"batch_size": batch_size, "rule": rule, "sampler": "hybrid streaming, buffer 2000",
                   **epoch_stats(streaming, paragraph_of, args.epochs, len(data))}
            result["runs"].append(run)
            print(json.dumps(run))
    print(json.dumps(result["structure"], indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
