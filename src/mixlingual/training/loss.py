"""InfoNCE over in-batch and hard negatives, with cosine scores and a temperature.

For queries q_1..q_B and the passage matrix P = [positives p_1..p_B ; hard negatives n_1..n_H],
the loss of query i is the cross-entropy of softmax(cos(q_i, P) / tau) against column i:
every other positive of the batch and every hard negative is a negative for q_i.

Under DDP (torch.distributed initialized, world size > 1) the passages of every rank are
gathered with an all_gather whose backward sums the gradients of every rank's loss and hands
each rank the part for its own passages (what `torch.distributed.nn.functional.all_gather`
does, written out because that function is deprecated), so each query competes against the global batch; the labels
are offset by this rank's position. Each rank averages over its own queries; averaging the
gradients across ranks (DistributedDataParallel does, see training.setup.wrap_for_training) then gives the mean over the global batch.

Precision: scores and cross-entropy are computed in float32 even inside a bf16 autocast region
(`fp32_cosine_logits`). At temperature 0.05 a bf16 logit steps by ~0.1 near 20, which is
coarser than the score differences the loss learns from.

False negatives: with `passage_text_ids` (an integer identity of each passage's normalized text,
see `mixlingual.data.overlap.text_id`), a column whose text equals the query's own positive but
is not its own column (another pair on the same paragraph, a hard negative equal to the
positive) gets a -inf logit, so it is neither a negative nor a second target. The samplers
already keep such pairs apart; the mask covers what they cannot see (other samplers, data whose
hard negatives repeat the item's own positive).
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn


def _distributed() -> tuple[int, int]:
    """(rank, world_size), or (0, 1) when not running under torch.distributed."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums every rank's gradient for this rank's slice (a reduce-scatter)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        rank, world = _distributed()
        parts = [torch.empty_like(x) for _ in range(world)]
        torch.distributed.all_gather(parts, x.contiguous())
        ctx.rank, ctx.rows = rank, x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        torch.distributed.all_reduce(grad)  # every rank's loss depends on this rank's rows
        return grad[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """All ranks' `x` (same shape on every rank) concatenated, with gradients back to each owner."""
    return _GatherWithGrad.apply(x)


def gather_ragged_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's rows of `x`, whose row counts may differ (e.g. hard negatives).

    Rows are padded to the largest count for the collective, then the padding is cut away.
    """
    count = torch.tensor([x.shape[0]], device=x.device)
    counts = [torch.zeros_like(count) for _ in range(_distributed()[1])]
    torch.distributed.all_gather(counts, count)
    counts = [int(c) for c in counts]
    if max(counts) == 0:
        return x
    padded = F.pad(x, (0, 0, 0, max(counts) - x.shape[0]))
    parts = gather_with_grad(padded).split(max(counts))
    return torch.cat([part[:n] for part, n in zip(parts, counts)])


@contextmanager
def autocast_disabled(device: torch.device):
    """Leave any autocast region for the block, so float32 inputs stay float32 in matmuls."""
    with torch.autocast(device_type=device.type, enabled=False):
        yield


def fp32_cosine_logits(queries: torch.Tensor, passages: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """scale * cos(q_i, p_j) in float32 whatever the surrounding autocast state."""
    with autocast_disabled(queries.device):
        q = F.normalize(queries.float(), dim=-1)
        p = F.normalize(passages.float(), dim=-1)
        return q @ p.T * scale


def fp32_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy computed in float32 outside autocast."""
    with autocast_disabled(logits.device):
        return F.cross_entropy(logits.float(), labels)


def same_text_mask(own_ids: torch.Tensor, column_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, N) True where column j holds the same text as query i's own positive but j != labels[i].

    `own_ids` (B,) are the text ids of the queries' positives, `column_ids` (N,) those of every
    passage column (all ranks' positives, then all hard negatives), `labels` (B,) each query's
    own column.
    """
    mask = own_ids[:, None] == column_ids[None, :]
    mask[torch.arange(len(labels), device=labels.device), labels] = False
    return mask


class InfoNCELoss(nn.Module):
    """Contrastive loss over in-batch + hard negatives with cosine scores.

    Args:
        temperature: tau in softmax(cos / tau); the paper default is 0.05.
        learnable_temperature: learn log(1 / tau) (initialized from `temperature`, clamped so
            that tau >= 0.01) instead of keeping it fixed; the parameter then belongs in the
            optimizer.
        gather: under DDP, score each query against the passages of all ranks.
    """

    def __init__(self, temperature: float = 0.05, learnable_temperature: bool = False, gather: bool = True):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        log_scale = torch.tensor(math.log(1.0 / temperature))
        if learnable_temperature:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale, persistent=False)
        self.gather = gather

    @property
    def temperature(self) -> float:
        return float(torch.exp(-self.log_scale.detach()))

    def scores(self, queries: torch.Tensor, passages: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of every query with every passage, divided by the temperature (float32)."""
        scale = self.log_scale.float().clamp(max=math.log(100.0)).exp()
        return fp32_cosine_logits(queries, passages, scale)

    def forward(self, queries: torch.Tensor, positives: torch.Tensor,
                hard_negatives: torch.Tensor | None = None,
                passage_text_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Mean InfoNCE loss of `queries` (B, d) against `positives` (B, d) + `hard_negatives` (H, d).

        `passage_text_ids` (B + H,) int64, optional: the text identity of this rank's positives
        then hard negatives; columns equal to a query's own positive text are masked for it
        (see `same_text_mask`), across every rank's columns under DDP.
        """
        if queries.shape != positives.shape:
            raise ValueError(f"queries {tuple(queries.shape)} and positives {tuple(positives.shape)} differ")
        if hard_negatives is None:
            hard_negatives = positives.new_zeros((0, positives.shape[-1]))
        rank, world = _distributed()
        if self.gather and world > 1:
            all_positives = gather_with_grad(positives)
            all_negatives = gather_ragged_with_grad(hard_negatives)
            offset = rank * queries.shape[0]
        else:
            all_positives, all_negatives, offset = positives, hard_negatives, 0
        passages = torch.cat([all_positives, all_negatives])
        logits = self.scores(queries, passages)
        labels = torch.arange(queries.shape[0], device=queries.device) + offset
        if passage_text_ids is not None:
            logits = self._mask_same_text(logits, labels, passage_text_ids, len(positives), world)
        return fp32_cross_entropy(logits, labels)

    def _mask_same_text(self, logits: torch.Tensor, labels: torch.Tensor, text_ids: torch.Tensor,
                        num_positives: int, world: int) -> torch.Tensor:
        """`logits` with -inf where a column repeats the query's own positive text (not its own column)."""
        text_ids = text_ids.to(logits.device, torch.int64).reshape(-1, 1)
        positive_ids, negative_ids = text_ids[:num_positives], text_ids[num_positives:]
        if self.gather and world > 1:  # the same layout as the gathered passage columns
            positive_ids, negative_ids = gather_with_grad(positive_ids), gather_ragged_with_grad(negative_ids)
        column_ids = torch.cat([positive_ids, negative_ids])[:, 0]
        if column_ids.shape[0] != logits.shape[1]:
            raise ValueError(f"passage_text_ids name {column_ids.shape[0]} passages, the batch has {logits.shape[1]}")
        mask = same_text_mask(text_ids[:num_positives, 0], column_ids, labels)
        return logits.masked_fill(mask, float("-inf"))
