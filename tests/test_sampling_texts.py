"""No false in-batch negatives from identical texts: two pairs of a batch never have positives
with the same (normalized) text, and no hard negative of a batch is another pair's positive.

A tiny fixture shows the rule on every sampler (these tests fail without `BatchGuard`), and the
real MLQA loaders (skipped without ../shared/data) are checked over a full epoch of every kind.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_sampling import check_batch

from mixlingual.data.overlap import normalize_text
from mixlingual.data.records import PARALLEL_PARAGRAPH, ParallelItem
from mixlingual.errors import ConfigError
from mixlingual.training.sampling.batch import BatchGuard, ItemKeys, item_keys
from mixlingual.training.sampling.mixture import (CrossLingualBatchSampler, HybridBatchSampler, MixtureBatchSampler,
                                                  MonolingualBatchSampler)
from mixlingual.training.sampling.stream import StreamingBatchSampler

SHARED = Path(os.environ.get("MIXLINGUAL_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
MIXTURE = {"X-X": 0.3, "X-Y": 0.4, "mixed": 0.3}


def text_collisions(pairs, items) -> list[str]:
    """Every identical-text clash of one global batch: positive == positive of another pair, or
    hard negative (in the pair's passage language) == positive of another pair."""
    positives = [normalize_text(items[p.item_index].positives[p.passage_lang]) for p in pairs]
    clashes = []
    for i, pair in enumerate(pairs):
        item = items[pair.item_index]
        others = set(positives[:i] + positives[i + 1:])
        if positives[i] in others:
            clashes.append(f"positive of {item.id} repeated in the batch")
        for negative in item.negatives.get(pair.passage_lang, []):
            if normalize_text(negative) in others:
                clashes.append(f"hard negative of {item.id} is another pair's positive")
    return clashes


def fixture_items() -> list[ParallelItem]:
    """12 items in 12 groups, 8 clusters: 3 questions on one paragraph (written differently but
    equal once normalized, one of them Spanish-only on the de side), 2 on one paragraph's sentences
    whose hard negatives are each other's positives, 5 unrelated, and a one-sided pair: o2's hard
    negatives are o1's positives (in both languages, so every pair's language choice clashes), but
    o1 has none, so only the rule "a new item's hard negative may not equal a positive already in
    the batch" keeps o2 out of a batch that already holds o1."""
    def item(name, positives, negatives=None):
        return ParallelItem(id=name, queries={"de": f"Frage {name}?", "es": f"¿Pregunta {name}?"},
                            positives=positives, negatives=negatives or {})

    paragraph = {"de": "Der Absatz über Berlin.", "es": "El párrafo sobre Berlín."}
    items = [item("a1", paragraph), item("a2", {"de": "der absatz  über BERLIN", "es": paragraph["es"]}),
             item("a3", {"de": "Der Absatz über Berlin.", "es": "El párrafo sobre Berlín!"}),
             item("s1", {"de": "Satz eins.", "es": "Frase uno."},
                  {"de": ["Satz zwei.", "Satz drei."], "es": ["Frase dos.", "Frase tres."]}),
             item("s2", {"de": "Satz zwei.", "es": "Frase dos."},
                  {"de": ["Satz eins.", "Satz drei."], "es": ["Frase uno.", "Frase tres."]})]
    items += [item(f"u{i}", {"de": f"Einzeltext {i}.", "es": f"Texto único {i}."}) for i in range(5)]
    one_sided = {"de": "Der Fluss friert im Winter zu.", "es": "El río se congela en invierno."}
    items += [item("o1", one_sided),
              item("o2", {"de": "Die Brücke ist alt.", "es": "El puente es viejo."},
                   {lang: list(one_sided.values()) for lang in ("de", "es")})]
    return items


def test_guard_refuses_a_hard_negative_equal_to_a_positive_already_in_the_batch():
    """The one-sided case: the batch's item has no hard negatives, so the symmetric clause (a new
    positive equal to a hard negative already there) cannot refuse; only this rule does."""
    by_id = {item.id: item_keys(item) for item in fixture_items()}
    guard = BatchGuard()
    guard.add(by_id["o1"])
    assert not guard.admits(by_id["o2"])
    assert guard.admits(by_id["u0"])  # an unrelated item still joins: the guard is not refusing everything


@pytest.mark.parametrize("make", [
    lambda items: MonolingualBatchSampler(items, 5, seed=1),
    lambda items: CrossLingualBatchSampler(items, 5, seed=1),
    lambda items: HybridBatchSampler(items, 5, alpha=0.5, seed=1),
    lambda items: MixtureBatchSampler(items, 5, MIXTURE, seed=1),
    lambda items: MixtureBatchSampler(items, 3, MIXTURE, seed=1, rank=1, world_size=2),
], ids=["X-X", "X-Y", "hybrid", "mixture", "mixture-ddp"])
def test_in_memory_samplers_never_batch_identical_texts(make):
    items = fixture_items()
    sampler = make(items)
    ranks = [make(items)] if sampler.world_size == 1 else [
        MixtureBatchSampler(items, 3, MIXTURE, seed=1, rank=r, world_size=2) for r in range(2)]
    for epoch in range(30):
        for s in ranks:
            s.set_epoch(epoch)
        for step_batches in zip(*ranks):
            for batch in step_batches:
                check_batch(batch, items, sampler.batch_size)
            global_pairs = [p for b in step_batches for p in b.pairs]
            assert not text_collisions(global_pairs, items), (epoch, global_pairs)


def test_streaming_sampler_never_batches_identical_texts():
    items = fixture_items()
    for ratios in ({"X-X": 1.0}, {"X-Y": 1.0}, {"X-X": 0.5, "X-Y": 0.5}, MIXTURE):
        sampler = StreamingBatchSampler(lambda: iter(items), 2, ratios, buffer_size=10, seed=2)
        for epoch in range(30):
            sampler.set_epoch(epoch)
            for batch in sampler:
                check_batch(batch, items, 2)
                assert not text_collisions(batch.pairs, items), (ratios, epoch, batch)


def text_keys(item) -> ItemKeys:
    """The item's group and texts only: what the guard knew before the parallel-paragraph key."""
    keys = item_keys(item)
    return ItemKeys(keys.group, keys.positives, keys.negatives)


def chained_paragraph_items() -> list[ParallelItem]:
    """Three questions on one paragraph, each with a different pair of its translations: a (de, es)
    and b (vi, zh) share no text, c (de, vi) shares one with each. Plus 8 unrelated items."""
    paragraph = {"de": "Der Absatz über Wien.", "es": "El párrafo sobre Viena.",
                 "vi": "Đoạn văn về Viên.", "zh": "关于维也纳的段落。"}

    def item(name, langs, key):
        return ParallelItem(id=name, queries={x: f"{name} question {x}" for x in langs},
                            positives={x: paragraph[x] if key == "vienna" else f"{name} text {x}" for x in langs},
                            meta={PARALLEL_PARAGRAPH: key})

    items = [item("a", ["de", "es"], "vienna"), item("b", ["vi", "zh"], "vienna"), item("c", ["de", "vi"], "vienna")]
    return items + [item(f"u{i}", ["de", "es", "vi", "zh"], f"u{i}") for i in range(8)]


def test_the_text_rule_alone_lets_two_items_of_one_paragraph_meet():
    """Why the paragraph key exists: without it the guard admits b next to a (no shared text)."""
    a, b, _ = chained_paragraph_items()[:3]
    guard = BatchGuard()
    guard.add(text_keys(a))
    assert guard.admits(text_keys(b))


@pytest.mark.parametrize("make", [
    lambda items: CrossLingualBatchSampler(items, 4, seed=1),
    lambda items: HybridBatchSampler(items, 4, alpha=0.5, seed=1),
    lambda items: MixtureBatchSampler(items, 4, MIXTURE, seed=1),
    lambda items: StreamingBatchSampler(lambda: iter(items), 2, {"X-Y": 1.0}, buffer_size=8, seed=1),
    lambda items: StreamingBatchSampler(lambda: iter(items), 2, MIXTURE, buffer_size=8, seed=1),
], ids=["X-Y", "hybrid", "mixture", "stream-X-Y", "stream-mixture"])
def test_items_of_one_parallel_paragraph_never_share_a_batch(make):
    items = chained_paragraph_items()
    sampler = make(items)
    for epoch in range(40):
        sampler.set_epoch(epoch)
        for batch in sampler:
            check_batch(batch, items, sampler.batch_size)
            paragraphs = [items[p.item_index].meta[PARALLEL_PARAGRAPH] for p in batch.pairs]
            assert len(paragraphs) == len(set(paragraphs)), (epoch, batch)


def test_too_few_distinct_texts_for_a_batch_is_a_config_error():
    items = fixture_items()[:5]  # 2 clusters: the paragraph and the two sentences
    with pytest.raises(ConfigError, match="train.batch_size.*passage texts"):
        CrossLingualBatchSampler(items, 3)


# ----- the real MLQA data: a full epoch of every batch kind ------------------------------------

def _mlqa(**options):
    if not (SHARED / "mlqa" / "MLQA_V1").is_dir():
        pytest.skip(f"needs {SHARED / 'mlqa'}")
    import inspect

    from mixlingual.data import mlqa
    from mixlingual.data.registry import load_parallel

    unknown = set(options) - set(inspect.signature(mlqa.load_parallel).parameters)
    if unknown:
        pytest.skip(f"this mlqa loader has no option {sorted(unknown)}")
    return list(load_parallel("mlqa", SHARED / "mlqa", **options))


def _assert_epoch_clean(sampler, items) -> int:
    batches = list(sampler)
    assert len(batches) == len(sampler)
    for batch in batches:
        check_batch(batch, items, sampler.batch_size)
        assert not text_collisions(batch.pairs, items), batch
    return len(batches)


@pytest.mark.shared_data
@pytest.mark.slow
@pytest.mark.parametrize("options", [
    {"split": "test", "context": "paragraph"},
    {"split": "dev", "context": "sentence"},
    # German answer-sentence positives + in-paragraph negatives (the MLQA configs' setting)
    {"split": "test", "context": "sentence", "german_answers": "auto"},
], ids=["test-paragraph", "dev-sentence", "test-german-answers"])
def test_real_mlqa_full_epochs_have_no_identical_text_collisions(options):
    items = _mlqa(**options, langs=["ar", "de", "es", "hi", "vi", "zh"])
    positives = [normalize_text(t) for item in items for t in item.positives.values()]
    assert len(set(positives)) < len(positives)  # the data does repeat passages: the rule has work to do
    samplers = [MonolingualBatchSampler(items, 64, seed=0), CrossLingualBatchSampler(items, 64, seed=0),
                HybridBatchSampler(items, 64, alpha=0.5, seed=0), MixtureBatchSampler(items, 64, MIXTURE, seed=0)]
    for sampler in samplers:
        assert _assert_epoch_clean(sampler, items) > 10


@pytest.mark.shared_data
@pytest.mark.slow
def test_real_mlqa_stream_epoch_has_no_identical_text_collisions():
    items = _mlqa(split="dev", context="sentence", langs=["ar", "de", "es", "hi", "vi", "zh"])
    sampler = StreamingBatchSampler(lambda: iter(items), 32, MIXTURE, buffer_size=2000, seed=0)
    for batch in sampler:
        check_batch(batch, items, 32)
        assert not text_collisions(batch.pairs, items), batch


@pytest.mark.shared_data
@pytest.mark.slow
def test_real_mlqa_items_of_one_parallel_paragraph_never_share_a_batch():
    """MLQA test holds item pairs of one paragraph that share no text (linked only through other
    items: 16 with German answers); the guard keeps each of them apart, and no epoch batches them."""
    import itertools
    from collections import defaultdict

    items = _mlqa(split="test", german_answers="auto")
    by_paragraph = defaultdict(list)
    for index, item in enumerate(items):
        by_paragraph[item.meta[PARALLEL_PARAGRAPH]].append(index)
    keys = [item_keys(item) for item in items]

    def text_rule_admits(a: int, b: int) -> bool:
        guard = BatchGuard()
        guard.add(text_keys(items[a]))
        return guard.admits(text_keys(items[b]))

    linked_only_through_others = [(a, b) for members in by_paragraph.values()
                                  for a, b in itertools.combinations(members, 2)
                                  if text_rule_admits(a, b) and text_rule_admits(b, a)]
    assert len(linked_only_through_others) >= 10  # the data has such pairs: the key has work to do
    for a, b in linked_only_through_others:
        guard = BatchGuard()
        guard.add(keys[a])
        assert not guard.admits(keys[b]), (items[a].id, items[b].id)
    for sampler in (CrossLingualBatchSampler(items, 64, seed=0), HybridBatchSampler(items, 64, alpha=0.5, seed=0)):
        for batch in sampler:
            paragraphs = [items[p.item_index].meta[PARALLEL_PARAGRAPH] for p in batch.pairs]
            assert len(paragraphs) == len(set(paragraphs)), batch
