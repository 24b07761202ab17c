"""sentence-transformers integration: pair rows, hybrid batches through SentenceTransformerTrainer, loss."""

import pytest
import torch

from mixlingual.data.records import ParallelItem
from mixlingual.errors import ConfigError
from mixlingual.integrations.sentence_transformers import (
    GroupAwareMultipleNegativesRankingLoss, mixlingual_batch_sampler, pair_dataset)

WORDS = {"en": ("city", "river", "book", "house", "water", "fire", "music", "sun", "moon", "day", "night", "tree"),
         "de": ("paris", "london", "berlin", "madrid", "rome", "tokyo", "france", "germany", "spain", "italy",
                "japan", "england"),
         "fr": ("red", "blue", "green", "big", "small", "old", "new", "first", "last", "one", "two", "three")}


def make_items(n=12):
    """n items in en/de/fr; items 0 and 1 share a parallel group (near-duplicates)."""
    items = []
    for i in range(n):
        queries = {lang: f"what {words[i]} is the {words[(i + 1) % n]}" for lang, words in WORDS.items()}
        positives = {lang: f"the {words[i]} and the {words[(i + 2) % n]}" for lang, words in WORDS.items()}
        items.append(ParallelItem(id=f"q{i}", queries=queries, positives=positives, group="g0" if i < 2 else None))
    return items


def test_pair_dataset_rows_and_filters():
    items = make_items(3)
    dataset, index = pair_dataset(items)
    assert len(dataset) == 3 * 9 and dataset.column_names == ["anchor", "positive", "label"]
    row = index[(2, "de", "fr")]
    assert dataset[row]["anchor"] == items[2].queries["de"] and dataset[row]["positive"] == items[2].positives["fr"]
    assert dataset[index[(0, "en", "en")]]["label"] == dataset[index[(1, "de", "fr")]]["label"]  # shared group
    mono, mono_index = pair_dataset(items, languages=["en", "de"], kinds=["X-X"])
    assert sorted(mono_index) == [(i, lang, lang) for i in range(3) for lang in ("de", "en")]
    with pytest.raises(ConfigError, match="kinds"):
        pair_dataset(items, kinds=["Y-Y"])


def test_group_aware_loss_masks_same_group_positives_only():
    torch.manual_seed(0)
    a, p, neg = torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 8)
    loss = GroupAwareMultipleNegativesRankingLoss(model=None, scale=20.0)
    scores = torch.nn.functional.normalize(a, dim=-1) @ torch.nn.functional.normalize(torch.cat([p, neg]), dim=-1).T * 20
    plain = torch.nn.functional.cross_entropy(scores, torch.arange(4))
    assert torch.allclose(loss.loss_from_embeddings([a, p, neg], torch.tensor([0, 1, 2, 3])), plain)
    assert torch.allclose(loss.loss_from_embeddings([a, p, neg], None), plain)
    masked = scores.clone()
    masked[0, 1] = masked[1, 0] = float("-inf")      # rows 0 and 1 share a group; hard negatives stay
    expected = torch.nn.functional.cross_entropy(masked, torch.arange(4))
    got = loss.loss_from_embeddings([a, p, neg], torch.tensor([5, 5, 6, 7]))
    assert torch.allclose(got, expected) and got < plain


def test_trainer_runs_hybrid_batches(tmp_path):
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    from helpers_models import make_tiny_model_dir

    torch.set_num_threads(1)
    transformer = Transformer(make_tiny_model_dir(tmp_path / "tiny"))
    model = SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension(), "mean"),
                                         Normalize()], device="cpu")
    before = [p.detach().clone() for p in model.parameters()]
    items = make_items()
    dataset, index = pair_dataset(items)
    sampler = mixlingual_batch_sampler(items, index, alpha=0.5)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=6, per_device_train_batch_size=4, learning_rate=1e-3,
        batch_sampler=sampler, prompts={"anchor": "query: ", "positive": "passage: "}, report_to="none",
        save_strategy="no", logging_strategy="no", use_cpu=True, seed=3, dataloader_num_workers=0)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset,
                                         loss=GroupAwareMultipleNegativesRankingLoss(model))
    trainer.train()
    seen = sampler.last.history
    assert len(seen) >= 6 and {b.kind for b in seen} == {"X-X", "X-Y"}   # both kinds at alpha 0.5
    for batch in seen:
        assert len(batch.pairs) == 4
        if batch.kind == "X-X":
            assert {(p.query_lang, p.passage_lang) for p in batch.pairs} == {(batch.language, batch.language)}
        else:
            assert all(p.query_lang != p.passage_lang for p in batch.pairs)
        groups = [items[p.item_index].group for p in batch.pairs]
        assert len(set(groups)) == len(groups)   # no two members of a parallel group in a batch
    assert any(not torch.equal(b, a) for b, a in zip(before, model.parameters()))
