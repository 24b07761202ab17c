"""The image-text training task for the one training loop (`train.task: image-text`).

Images become `ParallelItem`s (group = image id), so the loop's `MixtureBatchSampler` builds the
batches unchanged, with the same determinism, group dedup (one image at most once per global
batch), DDP sharding and exact resume as text training. A sampler batch maps to a loss as:

| sampler kind | pairs (item, q_lang, p_lang) | image-text loss |
|---|---|---|
| ``X-X``   | all captions in one language X | ITC(image, caption_X) |
| ``mixed`` | caption languages drawn per pair | ITC(image, caption_q) |
| ``X-Y``   | q_lang != p_lang per pair | xy_weight * InfoNCE(caption_q, caption_p) [+ xy_image_weight * ITC] |

The `imagetext:` config section holds the options below (`ImageTextOptions`); the text tower is
`model.name`, the temperature comes from `loss.temperature` / `loss.learnable_temperature`.
Training data: `data.train.name` is an image-caption format of `imagetext.formats` (synthetic,
jsonl, multi30k, xflickrco, xtd10, xm3600) with its options (e.g. `images: PATH`).
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from mixlingual.errors import ConfigError
from mixlingual.imagetext.data import ImageStore, to_parallel_items
from mixlingual.imagetext.formats import load_image_captions
from mixlingual.imagetext.model import ImageTextConfig, ImageTextModel
from mixlingual.imagetext.objective import (MomentumConfig, MomentumDistillation, caption_alignment_loss,
                                            itc_loss)
from mixlingual.imagetext.towers import TowerSpec, hf_spec, to_pixels


@dataclass
class ImageTextOptions:
    """The `imagetext:` config section."""

    image_tower: str = "conv"          # "conv" or a Hugging Face vision model id / folder
    image_size: int = 64
    widths: list = field(default_factory=lambda: [32, 64, 128, 192])  # conv tower stage widths
    embed_dim: int = 128
    text_tower: str = "pretrained"     # pretrained (model.name) | scratch (small BERT built from the captions)
    scratch_hidden: int = 64           # scratch text tower: hidden size and layers
    scratch_layers: int = 2
    freeze_text: bool = True
    text_head: str = "mlp"             # linear | mlp
    caption_kind: str = "query"        # text-tower prefix for captions
    xy_weight: float = 1.0             # caption-caption loss on X-Y batches
    xy_image_weight: float = 0.0       # also ITC(image, caption_q) on X-Y batches
    caption_variants: str = "random"   # random (per step, deterministic) | first
    eval_captions_per_image: int = 1
    text_cache_dir: str | None = None  # on-disk cache of frozen caption features (reused across runs)
    momentum: dict = field(default_factory=dict)  # MomentumConfig fields (ALBEF distillation)

    @classmethod
    def from_config(cls, config) -> "ImageTextOptions":
        raw = dict(getattr(config, "imagetext", None) or {})
        names = {f.name for f in dataclasses.fields(cls)}
        for key in raw:
            if key not in names:
                raise ConfigError(f"unknown config key 'imagetext.{key}'; known: {', '.join(sorted(names))}")
        options = cls(**raw)
        for key in raw.get("momentum", {}) or {}:
            if key not in {f.name for f in dataclasses.fields(MomentumConfig)}:
                raise ConfigError(f"unknown config key 'imagetext.momentum.{key}'")
        if options.text_tower not in ("pretrained", "scratch"):
            raise ConfigError(f"imagetext.text_tower: expected pretrained | scratch, got '{options.text_tower}'")
        if options.text_tower == "scratch" and options.freeze_text:
            raise ConfigError("imagetext.freeze_text: a scratch text tower must be trained (set freeze_text: false)")
        if options.caption_variants not in ("random", "first"):
            raise ConfigError(f"imagetext.caption_variants: expected random | first, got '{options.caption_variants}'")
        if options.xy_weight < 0 or options.xy_image_weight < 0:
            raise ConfigError("imagetext.xy_weight / xy_image_weight: must be >= 0")
        return options

    def model_config(self, text_model: str, temperature: float, learnable: bool) -> ImageTextConfig:
        tower = (TowerSpec(name="conv", image_size=self.image_size, widths=list(self.widths))
                 if self.image_tower == "conv" else hf_spec(self.image_tower, self.image_size))
        return ImageTextConfig(text_model=text_model, freeze_text=self.freeze_text, caption_kind=self.caption_kind,
                               image_tower=tower, embed_dim=self.embed_dim, text_head=self.text_head,
                               temperature=temperature, learnable_temperature=learnable)


class ImageTextTask:
    """Image-caption items -> ImageTextModel -> ITC / caption alignment (see `mixlingual.training.tasks`)."""

    name = "image-text"

    def __init__(self, config):
        self.config = config
        self.options = ImageTextOptions.from_config(config)
        self.momentum_config = MomentumConfig(**(self.options.momentum or {}))
        self.image_items, self.items, self.eval_items = [], [], None
        self.model: ImageTextModel | None = None
        self.distill: MomentumDistillation | None = None
        self.store = ImageStore(self.options.image_size)

    # ----- data -------------------------------------------------------------------------
    def load_data(self) -> None:
        train = self.config.data.train
        items = load_image_captions(train.name, train.path, **train.options)
        if self.config.data.max_items:
            items = items[: self.config.data.max_items]
        self.image_items = items
        self.items = to_parallel_items(items)
        ref = self.config.eval.data
        if ref.name:
            self.eval_items = load_image_captions(ref.name, ref.path, **ref.options)

    def overlap_report(self) -> str | None:
        """Eval images whose id or whose captions also occur in the training data."""
        if not self.eval_items:
            return None
        train_ids = {it.id for it in self.image_items}
        train_captions = {c for it in self.image_items for caps in it.captions.values() for c in caps}
        ids = sum(it.id in train_ids for it in self.eval_items)
        captions = sum(any(c in train_captions for caps in it.captions.values() for c in caps)
                       for it in self.eval_items)
        if not ids and not captions:
            return None
        return (f"{ids} of {len(self.eval_items)} eval images share an id with training images and "
                f"{captions} have a caption that also occurs in the training data")

    # ----- model ------------------------------------------------------------------------
    def build_model(self, device: torch.device) -> nn.Module:
        loss = self.config.loss
        config = self.options.model_config(self._text_model_name(), loss.temperature, loss.learnable_temperature)
        self.model = ImageTextModel.build(config).to(device)
        parts = {"model": self.model}
        if self.momentum_config.enabled:
            self.distill = MomentumDistillation(self.model, self.momentum_config, config.embed_dim).to(device)
            # EMA weights keep requires_grad so checkpoints hold them; they never get a gradient
            # (computed under no_grad), so AdamW leaves them alone.
            self.distill.requires_grad_(True)
            parts["momentum"] = self.distill
        if config.freeze_text:
            texts = [c for it in self.image_items for caps in it.captions.values() for c in caps]
            self.model.precompute_text_features(texts, cache_dir=self.options.text_cache_dir)
        module = nn.ModuleDict(parts)
        _broadcast_initial_weights(module)
        module.train()
        return module

    def _text_model_name(self) -> str:
        """model.name, or a scratch caption tower written under output.dir (same seed, same weights)."""
        if self.options.text_tower == "pretrained":
            return self.config.model.name
        from pathlib import Path

        from mixlingual.imagetext.text_tower import make_caption_text_tower

        texts = [c for it in self.image_items for caps in it.captions.values() for c in caps]
        folder = Path(self.config.output.dir) / "caption_tower_init"
        # under DDP rank 0 writes (atomically) and the others wait, then every rank reads it
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if not distributed or torch.distributed.get_rank() == 0:
            make_caption_text_tower(folder, texts, hidden_size=self.options.scratch_hidden,
                                    layers=self.options.scratch_layers, seed=self.config.train.seed)
        if distributed:
            torch.distributed.barrier()
        return str(folder)

    def _caption(self, item_index: int, item, lang: str, step: int, side: int) -> str:
        captions = item.captions[lang]
        if self.options.caption_variants == "first" or len(captions) == 1:
            return captions[0]
        # deterministic in (seed, step, item, language, side): resume replays the same captions
        rng = np.random.default_rng([self.config.train.seed, step, item_index, zlib.crc32(lang.encode()), side])
        return captions[int(rng.integers(len(captions)))]

    def loss(self, batch) -> tuple[torch.Tensor, dict]:
        items = [self.image_items[p.item_index] for p in batch.pairs]
        caps_q = [self._caption(p.item_index, it, p.query_lang, batch.step, 0) for p, it in zip(batch.pairs, items)]
        device = self.model.image_proj.weight.device
        text_q = self.model.embed_texts(caps_q)
        info = {"temperature": self.model.itc.temperature}
        total = text_q.new_zeros(())
        need_images = batch.kind != "X-Y" or self.options.xy_image_weight > 0
        if batch.kind == "X-Y":
            caps_p = [self._caption(p.item_index, it, p.passage_lang, batch.step, 1)
                      for p, it in zip(batch.pairs, items)]
            align = caption_alignment_loss(self.model, text_q, self.model.embed_texts(caps_p))
            total = total + self.options.xy_weight * align
            info["align_loss"] = float(align.detach())
        if need_images:
            pixels = to_pixels(self.store.batch(items), self.model.config.image_tower, device)
            images = self.model.embed_images(pixels)
            if self.distill is not None:
                ids = torch.tensor([p.item_index for p in batch.pairs], device=device)
                itc = self.distill(self.model, images, text_q, pixels, caps_q, ids)
            else:
                itc = itc_loss(self.model, images, text_q)
            weight = self.options.xy_image_weight if batch.kind == "X-Y" else 1.0
            total = total + weight * itc
            info["itc_loss"] = float(itc.detach())
        return total, info

    # ----- evaluation and export --------------------------------------------------------
    def evaluate(self) -> dict | None:
        if not self.eval_items:
            return None
        from mixlingual.imagetext.evaluate import evaluate_image_text

        metrics = evaluate_image_text(self.model, self.eval_items, langs=self.config.eval.langs,
                                      captions_per_image=self.options.eval_captions_per_image,
                                      store=ImageStore(self.options.image_size))
        metrics.pop("per_query", None)
        return metrics

    def save_model(self, path) -> None:
        self.model.save(str(path))


def _broadcast_initial_weights(module: nn.Module) -> None:
    """Under DDP, give every rank rank 0's initial weights, as DistributedDataParallel does.

    The loop seeds each rank differently (so dropout differs), which would otherwise give the
    randomly initialized image tower and heads a different start on every rank. Frozen
    parameters (a pretrained text tower) are identical everywhere and are skipped.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    with torch.no_grad():
        for param in module.parameters():
            if param.requires_grad:
                torch.distributed.broadcast(param.data, src=0)
        for buffer in module.buffers():
            torch.distributed.broadcast(buffer, src=0)
