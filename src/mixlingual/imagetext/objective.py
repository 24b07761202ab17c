"""Image-text contrastive objectives, built on `mixlingual.training.loss.InfoNCELoss`.

* `itc_loss` - symmetric image-text InfoNCE (ITC): the package's InfoNCE image->text plus
  text->image, averaged (CLIP / ALIGN). In-batch negatives; gathered across DDP ranks.
* `caption_alignment_loss` - symmetric InfoNCE between captions of the same images in two
  languages (the X-Y batches: caption_X -> caption_Y and back).
* `MomentumDistillation` - the ALBEF recipe: momentum (EMA) copies of the trainable towers and
  heads, queues of their past features as extra negatives, and soft targets that mix the one-hot
  labels with the momentum model's own similarity distribution (weight `alpha`). Queue entries
  of the same image as a query count as positives (as in BLIP), so a repeated image is never a
  false negative.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mixlingual.training.loss import _distributed


def itc_loss(model, image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
    """Symmetric image-text InfoNCE with the model's (learnable) temperature."""
    return 0.5 * (model.itc(image_emb, text_emb) + model.itc(text_emb, image_emb))


def caption_alignment_loss(model, captions_x: torch.Tensor, captions_y: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE between parallel captions (row i of both describes the same image)."""
    return 0.5 * (model.itc(captions_x, captions_y) + model.itc(captions_y, captions_x))


@dataclass
class MomentumConfig:
    """ALBEF momentum distillation settings (`enabled: false` gives plain ITC)."""

    enabled: bool = False
    momentum: float = 0.995
    queue_size: int = 4096
    alpha: float = 0.4  # weight of the momentum model's soft targets


@torch.no_grad()
def _gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` from every DDP rank (no grad): what ALBEF enqueues."""
    _, world = _distributed()
    if world == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world)]
    torch.distributed.all_gather(parts, x.contiguous())
    return torch.cat(parts)


class MomentumDistillation(nn.Module):
    """EMA copies of the image tower, the projections (and a trainable text tower) + feature queues."""

    def __init__(self, model, config: MomentumConfig, embed_dim: int):
        super().__init__()
        if not 0 < config.momentum < 1 or not 0 <= config.alpha <= 1 or config.queue_size < 1:
            raise ValueError(f"momentum config out of range: {config}")
        self.config = config
        self.image_tower = copy.deepcopy(model.image_tower).requires_grad_(False)
        self.image_proj = copy.deepcopy(model.image_proj).requires_grad_(False)
        self.text_proj = copy.deepcopy(model.text_proj).requires_grad_(False)
        self.text_tower = None if model.config.freeze_text else \
            copy.deepcopy(model.text_tower).requires_grad_(False)
        q = config.queue_size
        self.register_buffer("image_queue", torch.zeros(q, embed_dim))
        self.register_buffer("text_queue", torch.zeros(q, embed_dim))
        self.register_buffer("id_queue", torch.full((q,), -1, dtype=torch.long))  # -1: empty slot
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    def _pairs(self, model):
        names = ["image_tower", "image_proj", "text_proj"] + ([] if self.text_tower is None else ["text_tower"])
        return [(getattr(model, n), getattr(self, n)) for n in names]

    @torch.no_grad()
    def update(self, model) -> None:
        """EMA step: momentum = m * momentum + (1 - m) * online; buffers (BN stats) are copied."""
        m = self.config.momentum
        for online, ema in self._pairs(model):
            for p, pm in zip(online.parameters(), ema.parameters()):
                pm.mul_(m).add_(p.detach(), alpha=1 - m)
            for b, bm in zip(online.buffers(), ema.buffers()):
                bm.copy_(b)

    @torch.no_grad()
    def momentum_features(self, model, pixels: torch.Tensor, texts: list[str]):
        self.image_tower.train(model.training)
        image = F.normalize(self.image_proj(self.image_tower(pixels)), dim=-1)
        if self.text_tower is None:
            feats = model.text_features(texts)
        else:
            feats = self.text_tower.embed(texts, model.config.caption_kind)
        text = F.normalize(self.text_proj(feats.float()), dim=-1)
        return image, text

    def forward(self, model, image_emb: torch.Tensor, text_emb: torch.Tensor, pixels: torch.Tensor,
                texts: list[str], ids: torch.Tensor) -> torch.Tensor:
        """Soft-target ITC against the batch's momentum features plus the queues; then enqueue."""
        self.update(model)
        image_m, text_m = self.momentum_features(model, pixels, texts)
        valid = self.id_queue >= 0
        image_all = torch.cat([image_m, self.image_queue[valid]])
        text_all = torch.cat([text_m, self.text_queue[valid]])
        ids_all = torch.cat([ids, self.id_queue[valid]])
        with torch.no_grad():
            hard = (ids[:, None] == ids_all[None, :]).float()
            hard = hard / hard.sum(dim=1, keepdim=True)
            alpha = self.config.alpha
            i2t_targets = alpha * model.itc.scores(image_m, text_all).softmax(1) + (1 - alpha) * hard
            t2i_targets = alpha * model.itc.scores(text_m, image_all).softmax(1) + (1 - alpha) * hard
        loss_i2t = -(model.itc.scores(image_emb, text_all).log_softmax(1) * i2t_targets).sum(1).mean()
        loss_t2i = -(model.itc.scores(text_emb, image_all).log_softmax(1) * t2i_targets).sum(1).mean()
        self._enqueue(_gather(image_m), _gather(text_m), _gather(ids))
        return 0.5 * (loss_i2t + loss_t2i)

    @torch.no_grad()
    def _enqueue(self, image: torch.Tensor, text: torch.Tensor, ids: torch.Tensor) -> None:
        size = self.image_queue.shape[0]
        n = min(image.shape[0], size)
        slots = (self.pointer + torch.arange(n, device=ids.device)) % size
        self.image_queue[slots] = image[:n].to(self.image_queue.dtype)
        self.text_queue[slots] = text[:n].to(self.text_queue.dtype)
        self.id_queue[slots] = ids[:n]
        self.pointer.copy_((self.pointer + n) % size)
