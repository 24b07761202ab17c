"""Streaming sampler: every batch checked; bounded memory; exact length; resume; DDP; training on a stream."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from helpers_train import tiny_run_overrides
from test_sampling import binomial_bounds, check_batch, make_items

from mixlingual.training.config import load_config
from mixlingual.data.records import ParallelItem
from mixlingual.errors import ConfigError
from mixlingual.training.sampling.stream import StreamingBatchSampler
from mixlingual.training.loop import train


class CountingStream:
    """A re-readable stream that records how many items were pulled."""

    def __init__(self, items):
        self.items, self.pulled = items, 0

    def __call__(self):
        for item in self.items:
            self.pulled += 1
            yield item


def test_every_batch_valid_memory_bounded_and_length_exact():
    items = make_items(n_groups=150)
    stream = CountingStream(items)
    sampler = StreamingBatchSampler(stream, 6, {"X-X": 0.4, "X-Y": 0.4, "mixed": 0.2}, buffer_size=40, seed=1)
    assert sampler.num_items == len(items) and len(sampler) == len(items) // 6
    kinds = Counter()
    for epoch in range(3):
        sampler.set_epoch(epoch)
        stream.pulled = 0
        yielded = 0
        for batch in sampler:
            check_batch(batch, items, 6)
            assert [items[p.item_index] for p in batch.pairs] == batch.items
            yielded += len(batch.pairs)
            assert stream.pulled - yielded <= 40  # never more than the buffer held in memory
            kinds[batch.kind] += 1
        assert yielded == len(sampler) * 6
    n = sum(kinds.values())
    lo, hi = binomial_bounds(n, 0.4)
    assert lo - 0.1 * n <= kinds["X-X"] <= hi  # a few X-X draws fall back to X-Y when no language fills


def test_resume_and_ddp():
    items = make_items(n_groups=120)
    make = lambda: iter(items)  # noqa: E731
    full = StreamingBatchSampler(make, 4, {"X-X": 0.5, "X-Y": 0.5}, buffer_size=32, seed=3)
    expected = list(full)
    part = StreamingBatchSampler(make, 4, {"X-X": 0.5, "X-Y": 0.5}, buffer_size=32, seed=3)
    it = iter(part)
    head = [next(it) for _ in range(9)]
    resumed = StreamingBatchSampler(make, 4, {"X-X": 0.5, "X-Y": 0.5}, buffer_size=32, seed=3)
    resumed.load_state_dict(part.state_dict())
    assert head + list(resumed) == expected
    ranks = [list(StreamingBatchSampler(make, 2, {"X-X": 0.5, "X-Y": 0.5}, buffer_size=32, seed=3, rank=r,
                                        world_size=2)) for r in range(2)]
    for a, b in zip(*ranks):
        assert (a.kind, a.language) == (b.kind, b.language)
        groups = [items[p.item_index].group for p in a.pairs + b.pairs]
        assert len(set(groups)) == 4


def conflict_free_items(n: int, langs=("de", "es", "zh")) -> list[ParallelItem]:
    """`n` items in `n` groups with distinct texts in every language: nothing keeps any two apart."""
    return [ParallelItem(id=f"i{k}", queries={x: f"q {k} {x}" for x in langs},
                         positives={x: f"p {k} {x}" for x in langs}, group=f"g{k}") for k in range(n)]


@pytest.mark.parametrize("ratios, batch_size, world_size", [
    ({"X-Y": 1.0}, 10, 1),                       # the case: 200 items, batch 10, buffer 50
    ({"X-X": 0.5, "X-Y": 0.5}, 10, 1),
    ({"X-X": 0.3, "X-Y": 0.4, "mixed": 0.3}, 5, 2),
], ids=["X-Y", "hybrid", "mixture-ddp"])
def test_an_epoch_over_conflict_free_data_serves_every_item_once_as_in_memory(ratios, batch_size, world_size):
    """No item is served again while an unserved one is buffered or still in the stream: on data
    without conflicts an epoch serves each of the 200 items exactly once, like the in-memory
    sampler on the same data."""
    from mixlingual.training.sampling.mixture import MixtureBatchSampler

    items = conflict_free_items(200)
    ids = {item.id: index for index, item in enumerate(items)}
    for epoch in range(3):
        served = {"stream": Counter(), "memory": Counter()}
        for rank in range(world_size):
            options = {"seed": 4, "rank": rank, "world_size": world_size}
            stream = StreamingBatchSampler(lambda: iter(items), batch_size, ratios, buffer_size=50, **options)
            memory = MixtureBatchSampler(items, batch_size, ratios, **options)
            for name, sampler in (("stream", stream), ("memory", memory)):
                sampler.set_epoch(epoch)
                for batch in sampler:
                    check_batch(batch, items, batch_size)
                    served[name].update(p.item_index for p in batch.pairs)
        assert served["memory"] == Counter(ids.values())  # the reference: all 200, once each
        again = sum(1 for count in served["stream"].values() if count > 1)
        assert served["stream"] == served["memory"], (f"epoch {epoch}: the stream served {len(served['stream'])} "
                                                      f"distinct items, {again} of them more than once")


def test_small_buffer_is_a_config_error():
    with pytest.raises(ConfigError, match="data.buffer_size"):
        StreamingBatchSampler(lambda: iter(make_items(10)), 8, {"X-Y": 1.0}, buffer_size=16)


def test_training_from_a_stream(tmp_path):
    torch.set_num_threads(1)
    summary = train(load_config(None, tiny_run_overrides(tmp_path, steps=3) + ["data.stream=true",
                                                                              "data.buffer_size=24"]))
    assert summary["steps"] == 3 and summary["sampler"]["streaming"]


# ----- the streaming sampler honours data.languages, language weighting and the data checks -------

def _stream_config(*overrides):
    return load_config(None, ["data.stream=true", "data.buffer_size=40", "train.batch_size=4", *overrides])


def test_stream_sampler_built_from_config_keeps_to_data_languages():
    from mixlingual.training.setup import Distributed, build_sampler

    items = make_items(n_groups=150)
    config = _stream_config("data.languages=[de, es]", "data.buffer_size=120", "sampling.kind=mixture",
                            "sampling.ratios={X-X: 0.4, X-Y: 0.4, mixed: 0.2}")
    sampler = build_sampler(config, lambda: iter(items), Distributed())
    seen = Counter()
    for batch in sampler:
        check_batch(batch, items, 4)
        seen.update(x for p in batch.pairs for x in (p.query_lang, p.passage_lang))
        assert batch.language in (None, "de", "es")
    assert set(seen) == {"de", "es"}


def test_stream_language_weights_are_the_in_memory_samplers():
    from mixlingual.training.sampling.mixture import MonolingualBatchSampler

    items = make_items(n_groups=150)
    items += [ParallelItem(id=f"en{i}", queries={"en": f"q {i}"}, positives={"en": f"p {i}"}) for i in range(600)]
    for weighting, temperature in (("size", 1.0), ("temperature", 3.0), ("uniform", 1.0)):
        options = {"language_weighting": weighting, "temperature": temperature, "languages": ["de", "en", "zh"]}
        memory = MonolingualBatchSampler(items, 4, seed=0, **options).describe()["language_weights"]
        stream = StreamingBatchSampler(lambda: iter(items), 4, {"X-X": 1.0}, buffer_size=200, seed=0, **options)
        assert stream.describe()["language_weights"] == memory
    sampler = StreamingBatchSampler(lambda: iter(items), 4, {"X-X": 1.0}, buffer_size=200, seed=0,
                                    language_weighting="size")
    drawn = Counter(batch.language for epoch in range(3) for batch in (sampler.set_epoch(epoch) or sampler))
    assert drawn.most_common(1)[0][0] == "en" and drawn["en"] > 0.5 * sum(drawn.values()), drawn
    with pytest.raises(ConfigError, match="sampling.temperature"):
        StreamingBatchSampler(lambda: iter(items), 4, {"X-X": 1.0}, buffer_size=200,
                              language_weighting="temperature", temperature=0)


def test_stream_runs_the_in_memory_data_checks():
    from mixlingual.training.config import validate_against_data

    items = make_items(n_groups=6)
    with pytest.raises(ConfigError, match="data.languages: no training data in 'fi'"):
        validate_against_data(_stream_config("data.languages=[de, fi]"), lambda: iter(items))
    with pytest.raises(ConfigError, match="train.batch_size: 8 x 1 rank"):
        validate_against_data(_stream_config("train.batch_size=8"), lambda: iter(items))
    with pytest.raises(ConfigError, match="has no items"):
        validate_against_data(_stream_config(), lambda: iter([]))
    validate_against_data(_stream_config(), lambda: iter(items))  # 6 groups fill a batch of 4


def test_an_x_x_draw_the_buffer_cannot_serve_is_counted_and_warned_not_silent():
    """X-X only, but each language sits in too few parallel groups of the buffer: the step
    becomes X-Y (the stream cannot be rewound), and the sampler says so instead of hiding it."""
    pairs = [("a", "b"), ("c", "d"), ("e", "f"), ("g", "h"), ("i", "j"), ("k", "l"), ("m", "n"), ("o", "p")]
    items = [ParallelItem(id=f"{g}", queries={x: f"q {g} {x}", y: f"q {g} {y}"},
                          positives={x: f"p {g} {x}", y: f"p {g} {y}"}, group=f"g{g}")
             for g, (x, y) in enumerate(pairs * 6)]   # each language in 1 of 8 items: ~3 of a buffer of 24
    sampler = StreamingBatchSampler(lambda: iter(items), 6, {"X-X": 1.0}, buffer_size=24, seed=0)
    with pytest.warns(UserWarning, match="could fill an X-X batch"):
        batches = list(sampler)
    served_as_x_y = sum(batch.kind == "X-Y" for batch in batches)
    assert served_as_x_y > 0 and sampler.x_x_served_as_x_y == served_as_x_y
