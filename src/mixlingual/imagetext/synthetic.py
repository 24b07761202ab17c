"""A procedurally generated image-caption set for offline use and tests.

Each scene is a small RGB image with two groups of objects (1-3 objects of one shape and
colour in one quadrant), drawn with PIL on a dark, slightly noisy background. Captions come
from the templates in `captions.py` in six languages (en, de, es, ru, zh, hi), several variants
each. Everything is a pure function of the seed, so two runs build byte-identical sets.

    scenes = generate_scenes(2000, seed=0)           # list[Scene], images in memory
    write_synthetic(scenes, "out/")                   # out/images/*.png + out/captions.jsonl

The set is deliberately easy enough for a small convolutional tower trained from scratch on
CPU to learn something in minutes (colour and position are learned first, count last), while
being large and combinatorial enough (about 10^5 distinct scenes) that retrieval is not trivial.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mixlingual.imagetext.captions import (COLOURS, LANGUAGES, MAX_COUNT, QUADRANTS, SHAPES, Group,
                                           describe)
from mixlingual.imagetext.data import ImageCaptionItem
from mixlingual.io import atomic_open

_RGB = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (50, 90, 230), "yellow": (235, 215, 40),
        "purple": (160, 60, 200), "white": (235, 235, 235)}
# Captions per language and scene: the two templates x the two group orders.
CAPTION_VARIANTS = 4


@dataclass
class Scene:
    """One generated image with its groups and captions (`captions[lang]` = list of variants)."""

    id: str
    groups: tuple[Group, Group]
    image: np.ndarray  # uint8 (size, size, 3)
    captions: dict[str, list[str]] = field(default_factory=dict)


def sample_groups(rng: np.random.Generator) -> tuple[Group, Group]:
    """Two groups in different quadrants with different (shape, colour) so captions are unambiguous."""
    quad_a, quad_b = rng.choice(len(QUADRANTS), size=2, replace=False)
    while True:
        shape_a, shape_b = rng.integers(len(SHAPES), size=2)
        colour_a, colour_b = rng.integers(len(COLOURS), size=2)
        if (shape_a, colour_a) != (shape_b, colour_b):
            break
    counts = rng.integers(1, MAX_COUNT + 1, size=2)
    return (Group(int(counts[0]), SHAPES[shape_a], COLOURS[colour_a], QUADRANTS[quad_a]),
            Group(int(counts[1]), SHAPES[shape_b], COLOURS[colour_b], QUADRANTS[quad_b]))


def _shape_points(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]] | None:
    """Polygon vertices of a shape centred at (cx, cy) with radius r (None: drawn as ellipse)."""
    if shape == "circle":
        return None
    if shape == "square":
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "triangle":
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "diamond":
        return [(cx, cy - r * 1.2), (cx + r * 0.8, cy), (cx, cy + r * 1.2), (cx - r * 0.8, cy)]
    angles = np.pi / 2 + np.arange(10) * np.pi / 5  # star: ten points, alternating radii
    radii = np.where(np.arange(10) % 2 == 0, r * 1.25, r * 0.5)
    return [(cx + float(q * np.cos(a)), cy - float(q * np.sin(a))) for q, a in zip(radii, angles)]


def render(groups: tuple[Group, Group], size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw the groups: objects of a group sit in slots of its quadrant, jittered by the rng."""
    noise = rng.integers(0, 25, size=(size, size, 3), dtype=np.uint8)
    canvas = Image.fromarray(noise + np.uint8(20))
    draw = ImageDraw.Draw(canvas)
    half = size / 2
    radius = size / 14
    for group in groups:
        x0 = 0.0 if group.quadrant.endswith("left") else half
        y0 = 0.0 if group.quadrant.startswith("top") else half
        # up to three slots on the quadrant's diagonal grid keep objects from overlapping
        slots = [(0.3, 0.3), (0.7, 0.7), (0.7, 0.3), (0.3, 0.7)]
        order = rng.permutation(len(slots))[: group.count]
        for slot in order:
            sx, sy = slots[slot]
            cx = x0 + half * sx + rng.uniform(-1.5, 1.5)
            cy = y0 + half * sy + rng.uniform(-1.5, 1.5)
            r = radius * rng.uniform(0.85, 1.1)
            points = _shape_points(group.shape, cx, cy, r)
            if points is None:
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_RGB[group.colour])
            else:
                draw.polygon(points, fill=_RGB[group.colour])
    return np.asarray(canvas, dtype=np.uint8)


def generate_scenes(n: int, *, seed: int = 0, size: int = 64, languages=LANGUAGES,
                    variants: int = CAPTION_VARIANTS, id_prefix: str = "scene") -> list[Scene]:
    """`n` scenes with images of `size` x `size` and `variants` captions per language."""
    if n < 1 or size < 16:
        raise ValueError(f"need n >= 1 and size >= 16, got n={n}, size={size}")
    # separate streams: scene content does not depend on the image size (see formats' `exclude`)
    content_rng, render_rng = np.random.default_rng([seed, 0]), np.random.default_rng([seed, 1])
    scenes = []
    for i in range(n):
        groups = sample_groups(content_rng)
        image = render(groups, size, render_rng)
        captions = {lang: [describe(groups, lang, v) for v in range(variants)] for lang in languages}
        scenes.append(Scene(f"{id_prefix}-{seed}-{i:06d}", groups, image, captions))
    return scenes


def scenes_to_items(scenes: list[Scene]) -> list[ImageCaptionItem]:
    """Image-caption records whose images live in memory (no files needed)."""
    return [ImageCaptionItem(id=s.id, image=None, captions=s.captions, pixels=s.image,
                             meta={"groups": [g.__dict__ for g in s.groups]}) for s in scenes]


def write_synthetic(scenes: list[Scene], out_dir: str | os.PathLike) -> Path:
    """Write images/<id>.png and captions.jsonl (the canonical format) under `out_dir`.

    The JSONL is written to a temporary name and renamed, so an interrupted run leaves no
    half-written caption file behind. Returns the path of captions.jsonl.
    """
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    for scene in scenes:
        Image.fromarray(scene.image).save(out / "images" / f"{scene.id}.png")
    target = out / "captions.jsonl"
    with atomic_open(target, "w") as handle:
        for scene in scenes:
            record = {"id": scene.id, "image": f"images/{scene.id}.png", "captions": scene.captions}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return target
