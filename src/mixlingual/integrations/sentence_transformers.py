"""Hybrid batch training inside sentence-transformers' `SentenceTransformerTrainer`.

Three pieces:

* `pair_dataset(items)` - a `datasets.Dataset` with one row per (item, query language, passage
  language): columns `anchor` (query text), `positive` (passage text) and `label` (an integer id
  of the item's parallel group; ST's collator hands it to the loss as `labels`). Plus a
  `PairIndex` mapping (item, qlang, plang) -> row.
* `mixlingual_batch_sampler(items, index, ...)` - what goes into
  `SentenceTransformerTrainingArguments(batch_sampler=...)`: a callable with ST's batch-sampler
  signature that builds a `MixlingualBatchSampler`, which runs one of our samplers
  (`HybridBatchSampler` by default, or any `MixtureBatchSampler` ratios) and turns each of its
  `Batch`es into row indices. The X-X / X-Y decision, language draws, group exclusion, seeds and
  epochs stay ours; ST only sees index lists.
* `GroupAwareMultipleNegativesRankingLoss` - InfoNCE over in-batch (+ hard) negatives that masks
  the positives of other rows of the same parallel group, so a translation of a row's positive
  is never scored as its negative even when batches come from ST's own samplers.

Design trade-off: the rows are materialized (items x |Lq| x |Lp| text pairs: 49 per item for
7 languages) so that ST's collator, prompts and column checks work unchanged. A lazy mapping
(rows = integers, texts looked up on access) would save memory but ST inspects column names and
reads the texts itself. For large data, restrict `languages` or the pair kinds (`kinds`).
Prefixes: use ST's `prompts={"anchor": "query: ", "positive": "passage: "}` training argument
rather than baking them into the texts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mixlingual.data.records import ParallelItem
from mixlingual.errors import ConfigError
from mixlingual.training.loss import fp32_cosine_logits, fp32_cross_entropy

PairKey = tuple[int, str, str]


class PairIndex(dict):
    """(item index, query lang, passage lang) -> dataset row; `.groups[row]` -> group string."""

    groups: list[str]


def pair_dataset(items: Sequence[ParallelItem], languages: Sequence[str] | None = None,
                 kinds: Sequence[str] = ("X-X", "X-Y")):
    """(`datasets.Dataset`, `PairIndex`) with a row for every language pair the items offer.

    `kinds` limits rows to monolingual ("X-X": same language) and/or cross-lingual ("X-Y") pairs.
    """
    from datasets import Dataset

    if not set(kinds) <= {"X-X", "X-Y"} or not kinds:
        raise ConfigError(f"kinds: expected a non-empty subset of ('X-X', 'X-Y'), got {tuple(kinds)}")
    wanted = set(languages) if languages else None
    group_ids: dict[str, int] = {}
    columns: dict[str, list] = {"anchor": [], "positive": [], "label": []}
    index = PairIndex()
    index.groups = []
    for i, item in enumerate(items):
        group_id = group_ids.setdefault(str(item.group), len(group_ids))
        for q in item.query_languages:
            for p in item.passage_languages:
                if wanted is not None and (q not in wanted or p not in wanted):
                    continue
                if ("X-X" if q == p else "X-Y") not in kinds:
                    continue
                index[(i, q, p)] = len(columns["anchor"])
                index.groups.append(str(item.group))
                columns["anchor"].append(item.queries[q])
                columns["positive"].append(item.positives[p])
                columns["label"].append(group_id)
    if not index:
        raise ConfigError("pair_dataset: no (query, passage) language pair left after filtering")
    return Dataset.from_dict(columns), index


class MixlingualBatchSampler(torch.utils.data.Sampler):
    """Row-index batches from one of our samplers; what ST's DataLoader uses as `batch_sampler`."""

    def __init__(self, sampler, index: PairIndex):
        super().__init__()
        self.sampler, self.index = sampler, index
        self.batch_size = sampler.batch_size
        self.drop_last = True       # our samplers only yield full batches
        self.history: list = []     # the `Batch`es yielded (kinds, languages) for logs and tests

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        for batch in self.sampler:
            missing = [p for p in batch.pairs if (p.item_index, p.query_lang, p.passage_lang) not in self.index]
            if missing:
                raise ConfigError(f"sampler drew pairs the dataset has no row for (e.g. {missing[0]}); build "
                                  "pair_dataset with the same languages and kinds as the sampler")
            self.history.append(batch)
            yield [self.index[(p.item_index, p.query_lang, p.passage_lang)] for p in batch.pairs]


def mixlingual_batch_sampler(items: Sequence[ParallelItem], index: PairIndex, *, alpha: float = 0.5,
                             ratios: dict | None = None, **sampler_options):
    """A callable for `SentenceTransformerTrainingArguments(batch_sampler=...)`.

    ST calls it as `f(dataset, batch_size=, drop_last=, valid_label_columns=, generator=, seed=)`;
    it builds `HybridBatchSampler(items, batch_size, alpha)` (or `MixtureBatchSampler` with
    `ratios`) seeded with ST's seed unless `seed` is given here. `.last` holds the sampler built.
    """
    from mixlingual.training.sampling.mixture import HybridBatchSampler, MixtureBatchSampler

    def build(dataset, batch_size: int, drop_last: bool = True, valid_label_columns=None,
              generator=None, seed: int = 0) -> MixlingualBatchSampler:
        if len(dataset) != len(index.groups):
            raise ConfigError(f"train_dataset has {len(dataset)} rows but the pair index {len(index.groups)}; "
                              "pass the dataset built by pair_dataset together with its index")
        options = {"seed": seed, **sampler_options}
        if ratios is not None:
            inner = MixtureBatchSampler(items, batch_size, ratios, **options)
        else:
            inner = HybridBatchSampler(items, batch_size, alpha, **options)
        build.last = MixlingualBatchSampler(inner, index)
        return build.last

    build.last = None
    return build


class GroupAwareMultipleNegativesRankingLoss(nn.Module):
    """InfoNCE (MultipleNegativesRankingLoss) that ignores in-batch positives of the same group.

    Columns: anchor, positive, then optional hard negatives. `labels` are the integer group ids
    of the rows (the `label` column of `pair_dataset`); rows i != j with equal labels do not
    score j's positive as a negative of i. Without labels it is the plain ST loss.
    """

    def __init__(self, model, scale: float = 20.0):
        super().__init__()
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.model, self.scale = model, scale

    def forward(self, sentence_features, labels: torch.Tensor | None = None) -> torch.Tensor:
        embeddings = [self.model(features)["sentence_embedding"] for features in sentence_features]
        return self.loss_from_embeddings(embeddings, labels)

    def loss_from_embeddings(self, embeddings: list[torch.Tensor], labels: torch.Tensor | None) -> torch.Tensor:
        if len(embeddings) < 2:
            raise ValueError(f"expected anchor and positive columns, got {len(embeddings)} column(s)")
        # float32 scores and cross-entropy even under the trainer's bf16 autocast (see mixlingual.training.loss)
        scores = fp32_cosine_logits(embeddings[0], torch.cat(embeddings[1:]), self.scale)
        n = embeddings[0].shape[0]
        if labels is not None and labels.numel() == n:
            labels = labels.to(scores.device)
            same_group = labels[:, None] == labels[None, :]
            same_group.fill_diagonal_(False)
            scores[:, :n] = scores[:, :n].masked_fill(same_group, float("-inf"))
        return fp32_cross_entropy(scores, torch.arange(n, device=scores.device))

    def get_config_dict(self) -> dict:
        return {"scale": self.scale}
