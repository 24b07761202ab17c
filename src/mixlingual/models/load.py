"""`load_encoder(name)`: any known encoder, set up as its authors used it (preset-aware).

It sits apart from `presets` (data only) so that the encoder can import the presets and this
loader can import the encoder without an import cycle.
"""

from __future__ import annotations

from pathlib import Path

from mixlingual.errors import ModelError
from mixlingual.models.presets import PRESETS, Preset, apply_preset, get_preset, unsupported_st_modules


def load_encoder(name: str, *, preset: str | None = None, device: str = "cpu", **overrides):
    """An encoder with `encode(texts, kind=, batch_size=)`, set up as its authors used it.

    * `laser` / `laser:<lang>` -> `integrations.laser.LaserAdapter` (needs the laser_encoders package + weights);
    * a folder whose modules.json has modules beyond transformer/pooling/normalize (LaBSE's
      Dense) -> `integrations.st_encoder.SentenceTransformerAdapter` (frozen; prefixes from the preset);
    * anything else -> `BiEncoder.from_pretrained` with the preset's settings under `overrides`.

    `preset` applies a preset to another name (e.g. a local copy of multilingual-e5-small).
    """
    if str(name).split(":", 1)[0].lower() == "laser":
        from mixlingual.integrations.laser import LaserAdapter

        return LaserAdapter(lang=name.split(":", 1)[1] if ":" in name else None, **overrides)
    load_name, settings = apply_preset(name)
    if preset is not None:
        chosen = get_preset(preset)
        if chosen is None:
            known = ", ".join(sorted(a for p in PRESETS for a in p.aliases))
            raise ModelError(f"unknown preset {preset!r}; known: {known}")
        settings = dict(chosen.settings)
    folder = Path(load_name).expanduser()
    needs_st = unsupported_st_modules(folder) if folder.is_dir() else \
        (get_preset(preset or name) or Preset("", ())).head is not None
    if needs_st:
        from mixlingual.integrations.st_encoder import SentenceTransformerAdapter

        return SentenceTransformerAdapter(load_name, device=device, **{**settings, **overrides})
    from mixlingual.models.encoder import BiEncoder

    return BiEncoder.from_pretrained(load_name, **{**settings, **overrides})
