"""Image towers: a small convolutional network for offline use, or any Hugging Face vision model.

Both map a float batch (n, 3, H, W), already normalized with the tower's `mean`/`std`, to
features (n, dim). `build_tower(spec)` makes one from a `TowerSpec`, which is what the model's
JSON config stores, so a saved model can rebuild its tower without guessing.

* ``conv`` - four conv-BN-ReLU stages with stride 2 and a global average pool; about 0.4M
  parameters at the default widths, trainable from scratch on CPU in minutes at 64 x 64.
* a Hugging Face id or folder (``openai/clip-vit-base-patch32``, ``google/siglip-base-patch16-224``,
  ``google/vit-base-patch16-224-in21k``, ...) - loaded with transformers' `AutoModel`; the vision
  half of CLIP/SigLIP checkpoints is taken (`vision_model`), features are its pooled output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from mixlingual.errors import ModelError

# ImageNet statistics; CLIP's differ slightly and are read from the checkpoint's processor.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class TowerSpec:
    """Which image tower to build. `name` is "conv" or a Hugging Face id / local folder."""

    name: str = "conv"
    image_size: int = 64
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 192])
    mean: list[float] = field(default_factory=lambda: list(_IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(_IMAGENET_STD))

    def to_dict(self) -> dict:
        return asdict(self)


class ConvTower(nn.Module):
    """Conv-BN-ReLU stages (stride 2 each) followed by a global average pool."""

    def __init__(self, spec: TowerSpec):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for width in spec.widths:
            layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                       nn.Conv2d(width, width, 3, padding=1, bias=False),
                       nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            channels = width
        self.body = nn.Sequential(*layers)
        self.dim = channels
        self.spec = spec

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.body(pixels).mean(dim=(2, 3))


class HFVisionTower(nn.Module):
    """A transformers vision model (or the vision half of CLIP/SigLIP) as an image tower."""

    def __init__(self, spec: TowerSpec, model: nn.Module | None = None):
        super().__init__()
        if model is None:
            model = _load_vision_model(spec.name)
        self.model = getattr(model, "vision_model", None) if hasattr(model, "text_model") else None
        self.model = self.model or model
        config = self.model.config
        self.dim = int(getattr(config, "hidden_size", 0) or getattr(config, "hidden_sizes", [0])[-1])
        self.spec = spec

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values=pixels)
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:  # ViT without pooler: mean over patch tokens
            pooled = out.last_hidden_state.mean(dim=1)
        return pooled.flatten(1)

    def save_pretrained(self, folder: str) -> None:
        self.model.save_pretrained(folder, safe_serialization=True)


def _load_vision_model(name: str) -> nn.Module:
    from transformers import AutoModel

    try:
        return AutoModel.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot load image tower '{name}': {str(err).splitlines()[0]} "
                         f"(this machine may be offline; use image_tower: conv)") from err


def hf_spec(name: str, image_size: int | None = None) -> TowerSpec:
    """A spec for a Hugging Face tower with its own image size and normalization (when known)."""
    mean, std, size = list(_IMAGENET_MEAN), list(_IMAGENET_STD), image_size
    try:
        from transformers import AutoImageProcessor

        processor = AutoImageProcessor.from_pretrained(name)
        mean, std = list(processor.image_mean), list(processor.image_std)
        crop = getattr(processor, "crop_size", None) or getattr(processor, "size", None) or {}
        size = size or int(crop.get("height") or crop.get("shortest_edge") or 224)
    except (OSError, ValueError, AttributeError, TypeError):
        size = size or 224
    return TowerSpec(name=name, image_size=size, widths=[], mean=mean, std=std)


def build_tower(spec: TowerSpec) -> nn.Module:
    """The tower a spec names."""
    if spec.name == "conv":
        if not spec.widths:
            raise ModelError("image tower 'conv' needs at least one width (image_tower_widths)")
        return ConvTower(spec)
    return HFVisionTower(spec)


def to_pixels(images, spec: TowerSpec, device=None) -> torch.Tensor:
    """uint8 (n, H, W, 3) array -> normalized float tensor (n, 3, H, W) for the tower."""
    x = torch.as_tensor(images, device=device).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(spec.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
