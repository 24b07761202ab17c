"""Text retrieval task: a BiEncoder trained with InfoNCE on (query, passage) pairs of parallel items.

A sampler pair (item, query language, passage language) becomes the item's query text in the
query language and its positive in the passage language; the encoder adds the "query: " /
"passage: " prefixes. With `data.hard_negatives = k`, up to k of the item's negatives in the
passage language are appended to the passage matrix (after all positives), so they are negatives
for every query of the batch. Every passage's text identity (`mixlingual.data.overlap.text_id`)
goes to the loss, which masks columns repeating a query's own positive text (false negatives
the sampler could not keep out of the batch).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mixlingual.training.config import Config
from mixlingual.errors import ConfigError
from mixlingual.training.loss import InfoNCELoss
from mixlingual.training.sampling.batch import Batch


def passage_text_ids(texts: list[str], device: torch.device) -> torch.Tensor:
    """int64 text identities of the batch's passages, the loss's false-negative mask input."""
    from mixlingual.data.overlap import text_id

    return torch.tensor([text_id(text) for text in texts], dtype=torch.int64, device=device)


@dataclass
class BatchTexts:
    """The texts of a batch (or of a chunk of it): one query, one positive and a list of hard
    negatives per pair. Negatives follow their pair, so chunks concatenated in order give the
    whole batch's passage matrix back (positives first, then every negative in pair order)."""

    queries: list[str]
    passages: list[str]
    negatives: list[list[str]]

    @property
    def flat_negatives(self) -> list[str]:
        return [text for texts in self.negatives for text in texts]

    def chunks(self, size: int) -> list["BatchTexts"]:
        """Consecutive chunks of `size` pairs (the last one may be shorter)."""
        return [BatchTexts(self.queries[i:i + size], self.passages[i:i + size], self.negatives[i:i + size])
                for i in range(0, len(self.queries), size)]


class TextRetrievalTask:
    """Parallel text items -> BiEncoder -> InfoNCE (see `mixlingual.training.tasks` for the interface)."""

    name = "text"

    def __init__(self, config: Config):
        self.config = config
        self.items = []
        self.eval_collection = None
        self.encoder = None
        self.criterion = None

    # ----- data -------------------------------------------------------------------------
    def load_data(self) -> None:
        from mixlingual.data.registry import load_collection, load_parallel

        train = self.config.data.train
        if self.config.data.stream:
            self.items = self._stream_factory()
            self.load_report = None
        else:
            items = load_parallel(train.name, train.path, **train.options)
            if self.config.data.max_items:
                items = items[: self.config.data.max_items]
            self.items = list(items)
            self.load_report = getattr(items, "report", None)  # loaders may attach skip counts
        ref = self.config.eval.data
        if ref.name:
            self.eval_collection = load_collection(ref.name, ref.path, **ref.options)

    def _stream_factory(self):
        """A function returning a fresh iterator over the training items (`data.stream`)."""
        import itertools

        from mixlingual.data import jsonl
        from mixlingual.data.registry import get_loader

        train = self.config.data.train
        loader = jsonl if train.name == "jsonl" else get_loader(train.name)
        if not hasattr(loader, "iter_parallel"):
            raise ConfigError(f"data.stream: dataset '{train.name}' has no streaming reader (iter_parallel); "
                              f"set data.stream=false or convert it to JSONL")
        limit = self.config.data.max_items
        return lambda: itertools.islice(loader.iter_parallel(train.path, **train.options), limit)

    def overlap_report(self) -> str | None:
        """Eval queries / candidates that also occur in the training items (exact or normalized)."""
        if self.eval_collection is None or self.config.data.stream:
            return None  # a stream is not read twice just for this check (see docs/training.md)
        from mixlingual.data.overlap import measure_overlap

        # measure only: the loop words the warning (or refuses) once, per output.overlap
        report = measure_overlap(self.items, self.eval_collection)
        if not report.any:
            return None
        examples = report.queries.examples[:2] + report.passages.examples[:2]
        return f"{report.summary()}; examples: {' | '.join(examples)}"

    # ----- model ------------------------------------------------------------------------
    def build_model(self, device: torch.device) -> nn.Module:
        m = self.config.model
        self.encoder = base_encoder(m)
        self.encoder.unpad = m.unpad
        if m.freeze_word_embeddings:
            # The word-embedding matrix (250k x 384 for XLM-R vocabularies) dominates the
            # optimizer's memory and time; freezing it is the usual quick-fine-tuning trade-off.
            self.encoder.model.get_input_embeddings().weight.requires_grad_(False)
        self.criterion = InfoNCELoss(self.config.loss.temperature, self.config.loss.learnable_temperature)
        module = nn.ModuleDict({"encoder": self.encoder, "loss": self.criterion}).to(device)
        module.train()
        return module

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict]:
        texts = self.batch_texts(batch)
        return self.loss_from_embeddings(self.embed(texts), texts)

    # ----- the pieces of `loss`, also used chunk-wise by train.mini_batch (mixlingual.training.gradcache) --
    def batch_texts(self, batch: Batch) -> BatchTexts:
        """The query, positive and (up to data.hard_negatives) negative texts of a batch's pairs."""
        items = batch.items or [self.items[pair.item_index] for pair in batch.pairs]
        k = self.config.data.hard_negatives
        return BatchTexts(
            queries=[item.queries[pair.query_lang] for item, pair in zip(items, batch.pairs)],
            passages=[item.positives[pair.passage_lang] for item, pair in zip(items, batch.pairs)],
            negatives=[list(item.negatives.get(pair.passage_lang, [])[:k]) if k else []
                       for item, pair in zip(items, batch.pairs)])

    def split_batch(self, batch: Batch, size: int) -> tuple[BatchTexts, list[BatchTexts]]:
        """The batch's texts and their chunks of `size` pairs (each pair with its negatives)."""
        texts = self.batch_texts(batch)
        return texts, texts.chunks(size)

    def embed(self, texts: BatchTexts) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(queries, positives, hard negatives) embeddings; with grad unless called under no_grad."""
        passages, negatives = texts.passages, texts.flat_negatives
        if self.encoder.unpad:   # one packed forward for both sides
            q, p = self.encoder.embed_groups([(texts.queries, "query"), (passages + negatives, "passage")])
        else:
            q = self._embed(texts.queries, "query")
            p = self._embed(passages + negatives, "passage")
        return q, p[: len(passages)], p[len(passages):]

    def loss_from_embeddings(self, embeddings: tuple[torch.Tensor, ...], texts: BatchTexts) -> tuple[torch.Tensor, dict]:
        """InfoNCE of the whole batch from its (queries, positives, negatives) embeddings."""
        q, p, n = embeddings
        text_ids = passage_text_ids(texts.passages + texts.flat_negatives, q.device)
        loss = self.criterion(q, p, n, passage_text_ids=text_ids)
        return loss, {"hard_negatives": len(texts.flat_negatives), "temperature": self.criterion.temperature}

    def loss_parameters(self) -> list[nn.Parameter]:
        """Parameters the loss itself owns (a learnable temperature): gradcache hands their gradient on."""
        return [p for p in self.criterion.parameters() if p.requires_grad]

    def _embed(self, texts: list[str], kind: str) -> torch.Tensor:
        """`encoder.embed`, optionally in `model.length_buckets` length-sorted chunks (padded
        forward only; `model.unpad` removes all padding instead).

        Each text's embedding does not depend on its batch-mates, so running short and long
        texts apart only removes padding (~30% of the tokens of a random batch of short
        texts), which is compute saved on a CPU; on a GPU one big call is usually faster.
        """
        buckets = min(self.config.model.length_buckets, len(texts))
        if buckets <= 1 or self.encoder.unpad:   # packed batches have no padding to save
            return self.encoder.embed(texts, kind)
        lengths = [len(ids) for ids in self.encoder.tokenizer(texts, add_special_tokens=False)["input_ids"]]
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        size = -(-len(order) // buckets)  # ceil: chunks of near-equal size
        parts = [self.encoder.embed([texts[i] for i in order[start:start + size]], kind)
                 for start in range(0, len(order), size)]
        inverse = torch.empty(len(order), dtype=torch.long)
        inverse[torch.tensor(order)] = torch.arange(len(order))
        return torch.cat(parts)[inverse.to(parts[0].device)]

    # ----- evaluation and export --------------------------------------------------------
    def evaluate(self) -> dict | None:
        if self.eval_collection is None:
            return None
        from mixlingual.evaluation.evaluate import evaluate_collection

        e = self.config.eval
        was_training = self.encoder.training
        try:
            return evaluate_collection(self.encoder, self.eval_collection, settings=tuple(e.settings), langs=e.langs)
        finally:
            self.encoder.train(was_training)

    def save_model(self, path) -> None:
        self.encoder.save(str(path))

    def save_merged_with_base(self, path, weight: float) -> None:
        """Save (1 - weight) * base + weight * trained (train.merge_with_base), where base is the
        model this run started from: model.name with the same encoder settings."""
        from mixlingual.models.merge import merge_encoders, save_merged

        base = base_encoder(self.config.model)
        result = merge_encoders([base, self.encoder], [1.0 - weight, weight],
                                [self.config.model.name, "fine-tuned"])
        save_merged(result, path)


def encoder_overrides(model_config) -> dict:
    """The BiEncoder settings a config's `model` section sets (lengths, and prefixes when given)."""
    m = model_config
    overrides = {"max_length_query": m.max_length_query, "max_length_passage": m.max_length_passage}
    if m.query_prefix is not None:
        overrides["query_prefix"] = m.query_prefix
    if m.passage_prefix is not None:
        overrides["passage_prefix"] = m.passage_prefix
    return overrides


def base_encoder(model_config):
    """The untrained model a run with this `model` section starts from (on the CPU)."""
    from mixlingual.models.encoder import BiEncoder

    return BiEncoder.from_pretrained(model_config.name, **encoder_overrides(model_config))
