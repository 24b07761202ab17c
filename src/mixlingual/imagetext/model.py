"""The image-text dual encoder: image tower + multilingual text tower, projected to one space.

    model = ImageTextModel.build(ImageTextConfig(text_model="embedded:multilingual-e5-small"))
    img = model.embed_images(pixels)        # (n, D), L2-normalized, with grad
    txt = model.embed_texts(["zwei rote Kreise ..."])
    model.save("runs/it/final"); model = ImageTextModel.load("runs/it/final")

The text tower is a `mixlingual.models.encoder.BiEncoder`, so after image-text training its folder
(`text_tower/`, sentence-transformers layout) still works as a plain text retriever. When it is
frozen, caption features are computed once (no grad) and cached by text, so training costs only
the image tower and the projections; the folder then stores a reference to the unchanged tower
instead of a copy. The learnable temperature is the `InfoNCELoss` module's own parameter.

Folder layout::

    imagetext_config.json   ImageTextConfig + format version
    model.safetensors       image tower (conv), projection heads, temperature
    image_tower/            Hugging Face image towers only (save_pretrained)
    text_tower/             the BiEncoder (absent when frozen and saved by reference)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mixlingual.errors import ConfigError, ModelError
from mixlingual.imagetext.towers import HFVisionTower, TowerSpec, build_tower, to_pixels
from mixlingual.training.loss import InfoNCELoss

CONFIG_FILE = "imagetext_config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT = "mixlingual-imagetext"
FORMAT_VERSION = 1


@dataclass
class ImageTextConfig:
    """Everything needed to rebuild the model (stored as JSON in the model folder)."""

    text_model: str = "embedded:multilingual-e5-small"
    freeze_text: bool = True
    caption_kind: str = "query"  # which BiEncoder prefix captions get ("query: " for e5)
    image_tower: TowerSpec = field(default_factory=TowerSpec)
    embed_dim: int = 128
    text_head: str = "mlp"  # "linear" | "mlp" (one hidden layer: more room when the tower is frozen)
    temperature: float = 0.07
    learnable_temperature: bool = True

    def validate(self) -> None:
        if self.text_head not in ("linear", "mlp"):
            raise ConfigError(f"model.text_head: expected linear | mlp, got '{self.text_head}'")
        if self.caption_kind not in ("query", "passage"):
            raise ConfigError(f"model.caption_kind: expected query | passage, got '{self.caption_kind}'")
        if self.embed_dim < 1:
            raise ConfigError(f"model.embed_dim: must be >= 1, got {self.embed_dim}")
        if not 0 < self.temperature < 1:
            raise ConfigError(f"model.temperature: expected 0 < t < 1, got {self.temperature}")

    @classmethod
    def from_dict(cls, data: dict) -> "ImageTextConfig":
        data = dict(data)
        tower = TowerSpec(**data.pop("image_tower", {}))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown image-text model setting(s) {unknown}")
        return cls(image_tower=tower, **data)


def _head(in_dim: int, out_dim: int, kind: str) -> nn.Module:
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    return nn.Sequential(nn.Linear(in_dim, in_dim), nn.GELU(), nn.Linear(in_dim, out_dim))


class ImageTextModel(nn.Module):
    """Image tower + text tower (BiEncoder) + projection heads + learnable temperature."""

    def __init__(self, config: ImageTextConfig, image_tower: nn.Module, text_tower: nn.Module):
        super().__init__()
        config.validate()
        self.config = config
        self.image_tower = image_tower
        self.text_tower = text_tower
        self.image_proj = nn.Linear(image_tower.dim, config.embed_dim)
        self.text_proj = _head(text_tower.dim, config.embed_dim, config.text_head)
        self.itc = InfoNCELoss(config.temperature, learnable_temperature=config.learnable_temperature)
        self._text_cache: dict[str, torch.Tensor] = {}  # frozen tower: text -> raw feature
        if config.freeze_text:
            text_tower.requires_grad_(False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(cls, config: ImageTextConfig, text_tower: nn.Module | None = None) -> "ImageTextModel":
        """A fresh model; the text tower is loaded from `config.text_model` unless given."""
        from mixlingual.models.encoder import BiEncoder

        if text_tower is None:
            text_tower = BiEncoder.from_pretrained(config.text_model)
        return cls(config, build_tower(config.image_tower), text_tower)

    def train(self, mode: bool = True) -> "ImageTextModel":
        super().train(mode)
        if self.config.freeze_text:
            self.text_tower.eval()  # a frozen tower stays in eval mode (no dropout)
        return self

    # ------------------------------------------------------------------ embedding (with grad)
    def embed_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalized image embeddings (n, D) from normalized pixels (n, 3, H, W)."""
        return F.normalize(self.image_proj(self.image_tower(pixels)), dim=-1)

    def text_features(self, texts: list[str]) -> torch.Tensor:
        """Raw text-tower features (n, d_text); cached and gradient-free when the tower is frozen."""
        kind = self.config.caption_kind
        if not self.config.freeze_text:
            return self.text_tower.embed(texts, kind)
        missing = list(dict.fromkeys(t for t in texts if t not in self._text_cache))
        if missing:
            feats = torch.from_numpy(self.text_tower.encode(missing, kind=kind, show_progress=False))
            self._text_cache.update(zip(missing, feats))
        device = self.image_proj.weight.device
        return torch.stack([self._text_cache[t] for t in texts]).to(device)

    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        """Normalized caption embeddings (n, D), with grad through the projection (and tower if trained)."""
        return F.normalize(self.text_proj(self.text_features(texts).float()), dim=-1)

    def precompute_text_features(self, texts: list[str], batch_size: int = 128, cache_dir=None) -> int:
        """Fill the frozen tower's cache for `texts` in large batches; returns how many were new.

        With `cache_dir`, features also go through the on-disk embedding cache (keyed by the
        tower's fingerprint), so repeated runs with the same frozen tower encode captions once.
        """
        if not self.config.freeze_text:
            return 0
        missing = list(dict.fromkeys(t for t in texts if t not in self._text_cache))
        if missing:
            from mixlingual.evaluation.embedding_cache import encode_cached

            feats = encode_cached(self.text_tower, missing, self.config.caption_kind, cache_dir=cache_dir,
                                  batch_size=batch_size)
            self._text_cache.update(zip(missing, torch.from_numpy(feats)))
        return len(missing)

    # ------------------------------------------------------------------ inference (numpy)
    @torch.inference_mode()
    def encode_images(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """uint8 (n, H, W, 3) images -> float32 (n, D) normalized embeddings."""
        was_training = self.training
        self.eval()
        try:
            device = self.image_proj.weight.device
            out = [self.embed_images(to_pixels(images[i:i + batch_size], self.config.image_tower, device))
                   .float().cpu() for i in range(0, len(images), batch_size)]
        finally:
            self.train(was_training)
        return torch.cat(out).numpy()

    @torch.inference_mode()
    def encode_texts(self, texts: list[str], batch_size: int = 256) -> np.ndarray:
        """Captions -> float32 (n, D) normalized embeddings in the shared space."""
        was_training = self.training
        self.eval()
        try:
            out = [self.embed_texts(texts[i:i + batch_size]).float().cpu()
                   for i in range(0, len(texts), batch_size)]
        finally:
            self.train(was_training)
        return torch.cat(out).numpy()

    # ------------------------------------------------------------------ save / load
    def own_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights stored in model.safetensors: everything but the text tower (and HF image towers)."""
        skip = ("text_tower.",) + (("image_tower.",) if isinstance(self.image_tower, HFVisionTower) else ())
        return {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items() if not k.startswith(skip)}

    def save(self, path: str, *, copy_frozen_text: bool = False) -> None:
        """Write the model folder atomically (see the module docstring for the layout).

        A frozen text tower is stored by reference (its name) unless `copy_frozen_text`.
        """
        from safetensors.torch import save_file

        from mixlingual.io import replace_folder

        copy_text = copy_frozen_text or not self.config.freeze_text

        def build(tmp: Path) -> None:
            save_file(self.own_state_dict(), str(tmp / WEIGHTS_FILE))
            if isinstance(self.image_tower, HFVisionTower):
                self.image_tower.save_pretrained(str(tmp / "image_tower"))
            if copy_text:
                self.text_tower.save(str(tmp / "text_tower"))
            meta = {"format": FORMAT, "version": FORMAT_VERSION, "text_tower_saved": copy_text,
                    "config": dataclasses.asdict(self.config)}
            (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n",
                                           encoding="utf-8")

        replace_folder(build, path)

    @classmethod
    def load(cls, path: str, text_tower: nn.Module | None = None) -> "ImageTextModel":
        """Rebuild a saved model; raises ModelError when the folder is not an image-text model."""
        from safetensors.torch import load_file

        from mixlingual.models.encoder import BiEncoder

        folder = Path(path)
        meta_file = folder / CONFIG_FILE
        if not meta_file.is_file():
            raise ModelError(f"'{path}' is not an image-text model folder (no {CONFIG_FILE})")
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT or meta.get("version", 0) > FORMAT_VERSION:
            raise ModelError(f"{meta_file}: unsupported format {meta.get('format')} v{meta.get('version')}")
        config = ImageTextConfig.from_dict(meta["config"])
        if text_tower is None:
            source = folder / "text_tower" if meta.get("text_tower_saved") else config.text_model
            text_tower = BiEncoder.from_pretrained(str(source))
        if config.image_tower.name == "conv":
            image_tower = build_tower(config.image_tower)
        else:
            image_tower = HFVisionTower(config.image_tower,
                                        model=_load_hf_folder(folder / "image_tower"))
        model = cls(config, image_tower, text_tower)
        missing, unexpected = model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=False)
        missing = [k for k in missing if not k.startswith(("text_tower.", "image_tower.model."))]
        if missing or unexpected:
            raise ModelError(f"{folder / WEIGHTS_FILE}: weights do not match the config "
                             f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
        return model

    def text_retriever(self):
        """The text tower alone: a `BiEncoder` usable for text-text retrieval."""
        return self.text_tower


def _load_hf_folder(folder: Path) -> nn.Module:
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(folder))
