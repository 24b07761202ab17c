"""Image-caption records, the canonical JSONL format and image loading.

Canonical format, one JSON object per line::

    {"id": "img-1", "image": "images/img-1.png", "captions": {"en": ["two red ..."], "de": ["..."]}}

`image` is a path relative to the JSONL file's folder (or absolute). Validation names the file,
line and field of every problem, and lists image files that do not exist in one error rather
than failing on the first one during training.

To train with the text samplers, each image becomes a `ParallelItem` (`to_parallel_items`):
group = image id (so one image appears at most once per batch), queries/positives = one caption
per language, and the image record itself rides along in `meta["image_item"]`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mixlingual.data.jsonl import read_json_records
from mixlingual.data.records import ParallelItem
from mixlingual.errors import DataError
from mixlingual.io import atomic_open

_MISSING_SHOWN = 5  # how many missing image paths an error message lists by name


@dataclass
class ImageCaptionItem:
    """One image and its captions per language.

    `image` is a file path (resolved), or None when the pixels are held in memory (`pixels`,
    uint8 HxWx3), as for the synthetic set.
    """

    id: str
    image: str | None
    captions: dict[str, list[str]]
    pixels: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def languages(self) -> list[str]:
        return sorted(lang for lang, caps in self.captions.items() if caps)


def _fail(message: str, path, line: int | None = None, field_name: str | None = None):
    raise DataError(message, path=str(path), line=line, field=field_name)


def _parse_record(obj, path, line: int, root: Path) -> ImageCaptionItem:
    if not isinstance(obj, dict):
        _fail(f"expected a JSON object, got {type(obj).__name__}", path, line)
    for key in ("id", "image", "captions"):
        if key not in obj:
            _fail("missing required field", path, line, key)
    if not isinstance(obj["id"], str) or not obj["id"]:
        _fail("expected a non-empty string", path, line, "id")
    if not isinstance(obj["image"], str) or not obj["image"]:
        _fail("expected a non-empty image path string", path, line, "image")
    captions = obj["captions"]
    if not isinstance(captions, dict) or not captions:
        _fail("expected an object {lang: [caption, ...]} with at least one language", path, line, "captions")
    clean: dict[str, list[str]] = {}
    for lang, caps in captions.items():
        if isinstance(caps, str):
            caps = [caps]
        if not isinstance(caps, list) or not caps or not all(isinstance(c, str) and c.strip() for c in caps):
            _fail("expected a non-empty list of non-empty strings", path, line, f"captions.{lang}")
        clean[lang] = [c.strip() for c in caps]
    image = Path(obj["image"])
    resolved = image if image.is_absolute() else root / image
    return ImageCaptionItem(id=obj["id"], image=os.path.normpath(resolved), captions=clean,
                            meta={k: v for k, v in obj.items() if k not in ("id", "image", "captions")})


def read_image_captions(path: str | os.PathLike, *, check_images: bool = True) -> list[ImageCaptionItem]:
    """Read and validate a canonical image-caption JSONL file.

    Raises DataError naming the file and line for malformed records and duplicate ids, and one
    DataError listing the missing image files (the first few by name, plus the count).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("image-caption file not found", path=str(path))
    items: list[ImageCaptionItem] = []
    seen: dict[str, int] = {}
    for number, obj in read_json_records(path):
        item = _parse_record(obj, path, number, path.parent)
        if item.id in seen:
            _fail(f"duplicate id '{item.id}' (first on line {seen[item.id]})", path, number, "id")
        seen[item.id] = number
        items.append(item)
    if not items:
        raise DataError("no records", path=str(path))
    if check_images:
        check_image_files(items, source=str(path))
    return items


def check_image_files(items: list[ImageCaptionItem], *, source: str) -> None:
    """Raise one DataError naming the missing image files of `items` (if any)."""
    missing = [it.image for it in items if it.pixels is None and not (it.image and os.path.isfile(it.image))]
    if missing:
        shown = ", ".join(missing[:_MISSING_SHOWN])
        more = f" and {len(missing) - _MISSING_SHOWN} more" if len(missing) > _MISSING_SHOWN else ""
        raise DataError(f"{len(missing)} of {len(items)} image files are missing: {shown}{more}",
                        path=source, field="image")


def write_image_captions(items: list[ImageCaptionItem], path: str | os.PathLike) -> None:
    """Write the canonical JSONL atomically; image paths are written relative to the file when possible."""
    path = Path(path)
    with atomic_open(path, "w") as handle:
        for item in items:
            if item.image is None:
                raise DataError(f"item '{item.id}' has in-memory pixels but no image file to point to",
                                path=str(path), field="image")
            try:
                image = os.path.relpath(item.image, path.parent)
            except ValueError:  # another drive on Windows
                image = item.image
            record = {"id": item.id, "image": image, "captions": item.captions, **item.meta}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def to_parallel_items(items: list[ImageCaptionItem], *, source: str = "image-text") -> list[ParallelItem]:
    """One `ParallelItem` per image, so the text batch samplers can be reused unchanged.

    group = image id: the samplers' group dedup then guarantees one image at most once per batch.
    queries / positives hold the first / last caption of each language (the same one when there
    is a single caption); the training task may pick other variants from `meta["image_item"]`.
    """
    out = []
    for item in items:
        queries = {lang: caps[0] for lang, caps in item.captions.items() if caps}
        positives = {lang: caps[-1] for lang, caps in item.captions.items() if caps}
        out.append(ParallelItem(id=item.id, queries=queries, positives=positives, group=item.id,
                                source=source, meta={"image_item": item}))
    return out


class ImageStore:
    """Loads images as uint8 arrays of one size, with an in-memory cache keyed by item id.

    Small sets (the synthetic one, evaluation sets of a few thousand images at 64-224 px) fit in
    memory; decoding JPEGs again every epoch would otherwise dominate CPU training time.
    """

    def __init__(self, size: int, cache: bool = True):
        self.size = size
        self.cache = cache
        self._arrays: dict[str, np.ndarray] = {}

    def load(self, item: ImageCaptionItem) -> np.ndarray:
        if item.id in self._arrays:
            return self._arrays[item.id]
        if item.pixels is not None:
            array = _resize(item.pixels, self.size)
        else:
            from PIL import Image

            try:
                with Image.open(item.image) as img:
                    array = _resize(np.asarray(img.convert("RGB")), self.size)
            except (OSError, ValueError) as err:
                raise DataError(f"cannot read image of item '{item.id}': {err}", path=item.image) from err
        if self.cache:
            self._arrays[item.id] = array
        return array

    def batch(self, items: list[ImageCaptionItem]) -> np.ndarray:
        """(n, size, size, 3) uint8 array of the items' images."""
        return np.stack([self.load(it) for it in items])


def _resize(array: np.ndarray, size: int) -> np.ndarray:
    """Resize (bicubic) to size x size unless already that size."""
    if array.shape[0] == size and array.shape[1] == size:
        return np.ascontiguousarray(array[..., :3])
    from PIL import Image

    return np.asarray(Image.fromarray(array[..., :3]).resize((size, size), Image.BICUBIC), dtype=np.uint8)
