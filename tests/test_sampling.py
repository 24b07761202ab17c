"""Batch samplers: every batch of every epoch is checked for kind, languages, groups and size."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from mixlingual.data.records import ParallelItem
from mixlingual.errors import ConfigError
from mixlingual.training.sampling.mixture import (
    CrossLingualBatchSampler,
    HybridBatchSampler,
    MixtureBatchSampler,
    MonolingualBatchSampler,
)
from mixlingual.training.sampling.schedule import RatioSchedule

LANGS = ["ar", "de", "en", "es", "zh"]


def make_items(n_groups: int = 120, per_group: int = 2, seed: int = 0) -> list[ParallelItem]:
    """Items with random language coverage; `per_group` items share each parallel group."""
    rnd = random.Random(seed)
    items = []
    for g in range(n_groups):
        for k in range(per_group):
            q = rnd.sample(LANGS, rnd.randint(1, len(LANGS)))
            p = rnd.sample(LANGS, rnd.randint(1, len(LANGS)))
            items.append(ParallelItem(id=f"{g}-{k}", queries={x: f"q {g} {x}" for x in q},
                                      positives={x: f"p {g} {x}" for x in p}, group=f"g{g}"))
    return items


def check_batch(batch, items, batch_size):
    """The invariants every batch must satisfy, whatever its kind."""
    assert len(batch.pairs) == batch_size
    groups = [items[p.item_index].group for p in batch.pairs]
    assert len(set(groups)) == len(groups), "a parallel group repeated inside one batch"
    for pair in batch.pairs:
        item = items[pair.item_index]
        assert pair.query_lang in item.queries and pair.passage_lang in item.positives
    if batch.kind == "X-X":
        assert {p.query_lang for p in batch.pairs} == {batch.language}
        assert all(p.query_lang == p.passage_lang for p in batch.pairs)
    elif batch.kind == "X-Y":
        assert all(p.query_lang != p.passage_lang for p in batch.pairs)
    else:
        assert batch.kind == "mixed" and batch.language is None


def binomial_bounds(n: int, p: float, sigmas: float = 4.0) -> tuple[float, float]:
    sd = math.sqrt(n * p * (1 - p))
    return n * p - sigmas * sd, n * p + sigmas * sd


def test_hybrid_every_batch_and_ratio():
    items = make_items()
    sampler = HybridBatchSampler(items, batch_size=8, alpha=0.3, seed=3)
    kinds = Counter()
    for epoch in range(8):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) > 0
        for batch in batches:
            check_batch(batch, items, 8)
            kinds[batch.kind] += 1
    n = sum(kinds.values())
    assert set(kinds) <= {"X-X", "X-Y"}
    lo, hi = binomial_bounds(n, 0.3)
    assert lo <= kinds["X-X"] <= hi, kinds


def test_mono_languages_uniform_and_cross_constraint():
    items = make_items(n_groups=200)
    mono = MonolingualBatchSampler(items, batch_size=4, seed=0)
    langs = Counter()
    for epoch in range(6):
        mono.set_epoch(epoch)
        for batch in mono:
            check_batch(batch, items, 4)
            assert batch.kind == "X-X"
            langs[batch.language] += 1
    n = sum(langs.values())
    for lang in LANGS:
        lo, hi = binomial_bounds(n, 1 / len(LANGS))
        assert lo <= langs[lang] <= hi, langs
    cross = CrossLingualBatchSampler(items, batch_size=4, seed=0)
    for batch in cross:
        check_batch(batch, items, 4)
        assert batch.kind == "X-Y"


def test_size_weighting_prefers_big_languages():
    items = make_items(n_groups=150)
    items += [ParallelItem(id=f"en{i}", queries={"en": "q"}, positives={"en": "p"}) for i in range(600)]
    sampler = MonolingualBatchSampler(items, batch_size=4, language_weighting="size", seed=0)
    weights = sampler.describe()["language_weights"]
    assert weights["en"] > 0.5 and abs(sum(weights.values()) - 1) < 1e-6
    langs = Counter(b.language for b in sampler)
    assert langs.most_common(1)[0][0] == "en"


def test_cross_excludes_items_without_a_cross_pair():
    items = make_items(n_groups=40)
    items += [ParallelItem(id=f"m{i}", queries={"en": "q"}, positives={"en": "p"}) for i in range(7)]
    sampler = CrossLingualBatchSampler(items, batch_size=4)
    assert sampler.excluded_from_cross >= 7
    used = {p.item_index for b in sampler for p in b.pairs}
    assert not used & set(range(len(items) - 7, len(items)))


def test_mixture_with_all_three_kinds_and_linear_schedule():
    items = make_items()
    schedule = RatioSchedule({"X-X": 1.0}, {"mixed": 0.5, "X-Y": 0.5}, shape="linear", total_steps=60)
    sampler = MixtureBatchSampler(items, batch_size=6, ratios=schedule, seed=1)
    seen = []
    for epoch in range(4):
        sampler.set_epoch(epoch)
        for batch in sampler:
            check_batch(batch, items, 6)
            seen.append(batch.kind)
    assert seen[0] == "X-X"  # ratio 1 at step 0
    assert "mixed" in seen[len(seen) // 2:] and "X-X" not in seen[60:]
    assert schedule.at(30) == pytest.approx({"X-X": 0.5, "mixed": 0.25, "X-Y": 0.25})


def test_step_schedule_switches():
    schedule = RatioSchedule.hybrid(1.0, alpha_end=0.0, shape="step", total_steps=100, switch_at=0.25)
    assert schedule.at(24)["X-X"] == 1.0 and schedule.at(25)["X-X"] == 0.0


def test_deterministic_and_epochs_differ():
    items = make_items()
    a = HybridBatchSampler(items, batch_size=8, seed=7)
    b = HybridBatchSampler(items, batch_size=8, seed=7)
    epoch0 = list(a)
    assert epoch0 and list(b) == epoch0
    a.set_epoch(0)
    assert list(a) == epoch0  # the same epoch again: the same batches
    b.set_epoch(1)
    epoch1 = list(b)
    assert len(epoch1) == len(epoch0)
    # compare what a batch holds (its step number is the same in every epoch)
    assert [(x.kind, x.language, x.pairs) for x in epoch1] != [(x.kind, x.language, x.pairs) for x in epoch0]


def test_resume_mid_epoch_gives_the_identical_remaining_sequence():
    items = make_items()
    full = HybridBatchSampler(items, batch_size=8, seed=5)
    full.set_epoch(2)
    expected = list(full)
    interrupted = HybridBatchSampler(items, batch_size=8, seed=5)
    interrupted.set_epoch(2)
    it = iter(interrupted)
    head = [next(it) for _ in range(7)]
    state = interrupted.state_dict()
    resumed = HybridBatchSampler(items, batch_size=8, seed=5)
    resumed.load_state_dict(state)
    assert head + list(resumed) == expected
    with pytest.raises(ConfigError, match="batch_size"):
        HybridBatchSampler(items, batch_size=4, seed=5).load_state_dict(state)


def test_ddp_ranks_agree_on_kind_and_language_and_are_disjoint():
    items = make_items(n_groups=160)
    world = 3
    ranks = [MixtureBatchSampler(items, 4, {"X-X": 0.4, "X-Y": 0.3, "mixed": 0.3}, seed=2, rank=r,
                                 world_size=world) for r in range(world)]
    per_rank = [list(s) for s in ranks]
    assert len({len(b) for b in per_rank}) == 1 and len(per_rank[0]) == len(ranks[0])
    for step_batches in zip(*per_rank):
        assert len({(b.kind, b.language) for b in step_batches}) == 1
        items_here = [p.item_index for b in step_batches for p in b.pairs]
        groups = [items[i].group for i in items_here]
        assert len(set(groups)) == len(groups) == 4 * world  # disjoint, no group twice globally
        for b in step_batches:
            check_batch(b, items, 4)


def test_no_short_batches_when_a_language_runs_dry():
    # 'fi' has only 9 groups: enough for batches of 8, but its pool empties quickly and refills
    items = make_items(n_groups=80)
    # (distinct positive texts: identical ones may not share a batch, see test_identical_texts_*)
    items += [ParallelItem(id=f"fi{i}", queries={"fi": "q"}, positives={"fi": f"p {i}"}) for i in range(9)]
    sampler = MonolingualBatchSampler(items, batch_size=8, seed=0)
    for epoch in range(5):
        sampler.set_epoch(epoch)
        for batch in sampler:
            check_batch(batch, items, 8)
    assert "fi" in sampler.mono_languages


def test_bad_settings_name_the_key():
    items = make_items(n_groups=10)
    with pytest.raises(ConfigError, match="train.batch_size"):
        CrossLingualBatchSampler(items, batch_size=11)
    with pytest.raises(ConfigError, match="sampling.alpha"):
        HybridBatchSampler(items, batch_size=2, alpha=1.5)
    with pytest.raises(ConfigError, match="sum to 1"):
        MixtureBatchSampler(items, 2, {"X-X": 0.5, "X-Y": 0.6})
    with pytest.raises(ConfigError, match="unknown batch kind"):
        MixtureBatchSampler(items, 2, {"XX": 1.0})
    small = MonolingualBatchSampler(items + [ParallelItem(id="x", queries={"fi": "q"}, positives={"fi": "p"})],
                                    batch_size=2)
    assert small.excluded_languages == {"fi": 1}
