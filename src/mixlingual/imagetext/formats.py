"""Loaders for public multilingual image-caption benchmarks, plus the canonical JSONL.

Captions come from the benchmark's own files; images from a local folder the user supplies
(`images=`), since none of these sets may be redistributed here. Every loader returns
`list[ImageCaptionItem]` and checks that the image files exist (one error lists the missing).

| name | caption files (layout of the public release) |
|---|---|
| `jsonl` | canonical `{"id", "image", "captions": {lang: [..]}}` lines (`data.py`) |
| `multi30k` | Multi30K task 1: `raw/{split}.{lang}[.gz]` aligned line by line with `image_splits/{split}.txt` |
| `xflickrco` | IGLUE xFlickr&CO: `{lang}/{split}.jsonl` lines `{"sentences": [..], "id", "img_path"}` |
| `xtd10` | XTD10: `test_1kcaptions_{lang}.txt` aligned with `test_image_names.txt` |
| `xm3600` | Crossmodal-3600: `captions.jsonl` lines `{"image/key": k, lang: {"caption": [..]}}`, images `{k}.jpg` |
| `synthetic` | the generated scenes (`synthetic.py`); `path` is ignored, options `n`, `seed`, `size` |
"""

from __future__ import annotations

import gzip
from pathlib import Path

from mixlingual.errors import DataError
from mixlingual.data.jsonl import read_json_records
from mixlingual.imagetext.data import ImageCaptionItem, check_image_files, read_image_captions

# XTD10 names Japanese "jp"; everything else in the package uses ISO 639-1 codes.
_LANG_ALIASES = {"jp": "ja"}


def _read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [line.rstrip("\n").rstrip("\r") for line in handle]


def _need_dir(path, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"expected a folder with {what}", path=str(path))
    return path


def _image_dir(images) -> Path:
    if images is None:
        raise DataError("this caption format needs the image folder: pass images=PATH (--images)")
    return _need_dir(images, "the benchmark's image files")


def _finish(items: list[ImageCaptionItem], source: str, check_images: bool) -> list[ImageCaptionItem]:
    if not items:
        raise DataError("no image-caption records found", path=source)
    if check_images:
        check_image_files(items, source=source)
    return items


def _merge(by_id: dict[str, ImageCaptionItem], image_id: str, image_path: Path, lang: str,
           captions: list[str]) -> None:
    item = by_id.setdefault(image_id, ImageCaptionItem(id=image_id, image=str(image_path), captions={}))
    item.captions.setdefault(_LANG_ALIASES.get(lang, lang), []).extend(c.strip() for c in captions if c.strip())


def load_multi30k(path, *, images=None, split: str = "test_2016_flickr", langs=None,
                  check_images: bool = True) -> list[ImageCaptionItem]:
    """Multi30K task 1. `path` is the task1 folder (holding `raw/` and `image_splits/`)."""
    root = _need_dir(path, "Multi30K task1 files (raw/, image_splits/)")
    if (root / "data" / "task1").is_dir():
        root = root / "data" / "task1"
    split_file = root / "image_splits" / f"{split}.txt"
    if not split_file.is_file():
        raise DataError(f"Multi30K image list for split '{split}' not found", path=str(split_file))
    names = [n.strip() for n in _read_lines(split_file) if n.strip()]
    found = sorted(p for p in (root / "raw").glob(f"{split}.*") if p.suffix != ".txt")
    files = {p.name[len(split) + 1:].removesuffix(".gz"): p for p in found}
    if langs:
        absent = [lang for lang in langs if lang not in files]
        if absent:
            raise DataError(f"no caption file for language(s) {absent}; found {sorted(files)}",
                            path=str(root / "raw"))
        files = {lang: files[lang] for lang in langs}
    image_root = _image_dir(images)
    by_id: dict[str, ImageCaptionItem] = {}
    for lang, file in files.items():
        lines = _read_lines(file)
        if len(lines) != len(names):
            raise DataError(f"{len(lines)} captions but {len(names)} images in {split_file.name}; "
                            f"the files must align line by line", path=str(file))
        for number, (name, caption) in enumerate(zip(names, lines), start=1):
            if not caption.strip():
                raise DataError("empty caption", path=str(file), line=number)
            _merge(by_id, Path(name).stem, image_root / name, lang, [caption])
    return _finish(list(by_id.values()), str(root), check_images)


def load_xflickrco(path, *, images=None, split: str = "test", langs=None,
                   check_images: bool = True) -> list[ImageCaptionItem]:
    """IGLUE xFlickr&CO. `path` is the `annotations/` folder ({lang}/{split}.jsonl) or one such file."""
    path = Path(path)
    if path.is_file():
        files = {path.parent.name: path}
    else:
        root = _need_dir(path, "IGLUE xFlickr&CO annotations ({lang}/{split}.jsonl)")
        files = {p.parent.name: p for p in sorted(root.glob(f"*/{split}.jsonl"))}
    if langs:
        files = {lang: f for lang, f in files.items() if lang in set(langs)}
    if not files:
        raise DataError(f"no {split}.jsonl caption files found", path=str(path))
    image_root = _image_dir(images)
    by_id: dict[str, ImageCaptionItem] = {}
    for lang, file in files.items():
        for number, obj in read_json_records(file):
            for key in ("sentences", "img_path"):
                if not isinstance(obj, dict) or key not in obj:
                    raise DataError("missing required field", path=str(file), line=number, field=key)
            sentences = obj["sentences"]
            if isinstance(sentences, str):
                sentences = [sentences]
            image_id = str(obj.get("id") or Path(obj["img_path"]).stem)
            _merge(by_id, image_id, image_root / obj["img_path"], lang, sentences)
    return _finish(list(by_id.values()), str(path), check_images)


def load_xtd10(path, *, images=None, langs=None, check_images: bool = True) -> list[ImageCaptionItem]:
    """XTD10: `test_1kcaptions_{lang}.txt` files aligned with `test_image_names.txt`."""
    root = _need_dir(path, "XTD10 files (test_image_names.txt, test_1kcaptions_{lang}.txt)")
    names_file = root / "test_image_names.txt"
    if not names_file.is_file():
        raise DataError("XTD10 image list not found", path=str(names_file))
    names = [n.strip() for n in _read_lines(names_file) if n.strip()]
    files = {p.stem.removeprefix("test_1kcaptions_"): p for p in sorted(root.glob("test_1kcaptions_*.txt"))}
    if langs:
        wanted = set(langs) | {k for k, v in _LANG_ALIASES.items() if v in set(langs)}
        files = {lang: f for lang, f in files.items() if lang in wanted}
    if not files:
        raise DataError("no test_1kcaptions_{lang}.txt files found", path=str(root))
    image_root = _image_dir(images)
    by_id: dict[str, ImageCaptionItem] = {}
    for lang, file in files.items():
        lines = _read_lines(file)
        lines = lines[:-1] if lines and not lines[-1].strip() else lines
        if len(lines) != len(names):
            raise DataError(f"{len(lines)} captions but {len(names)} names in test_image_names.txt",
                            path=str(file))
        for name, caption in zip(names, lines):
            _merge(by_id, Path(name).stem, image_root / name, lang, [caption])
    return _finish(list(by_id.values()), str(root), check_images)


def load_xm3600(path, *, images=None, langs=None, check_images: bool = True) -> list[ImageCaptionItem]:
    """Crossmodal-3600: `captions.jsonl` (or a folder holding it); images are `{images}/{key}.jpg`."""
    path = Path(path)
    file = path / "captions.jsonl" if path.is_dir() else path
    if not file.is_file():
        raise DataError("XM3600 captions.jsonl not found", path=str(file))
    image_root = _image_dir(images)
    wanted = set(langs) if langs else None
    by_id: dict[str, ImageCaptionItem] = {}
    for number, obj in read_json_records(file):
        key = obj.get("image/key") if isinstance(obj, dict) else None
        if not isinstance(key, str) or not key:
            raise DataError("missing image key", path=str(file), line=number, field="image/key")
        for lang, entry in obj.items():
            if lang == "image/key" or (wanted and lang not in wanted):
                continue
            if not isinstance(entry, dict) or not isinstance(entry.get("caption"), list):
                raise DataError("expected {\"caption\": [..]}", path=str(file), line=number, field=lang)
            _merge(by_id, key, image_root / f"{key}.jpg", lang, entry["caption"])
    return _finish(list(by_id.values()), str(file), check_images)


def load_synthetic(path=None, *, n: int = 1000, seed: int = 0, size: int = 64, langs=None,
                   exclude: dict | None = None) -> list[ImageCaptionItem]:
    """The generated scenes (in memory); `path` is ignored.

    `exclude={"n": N, "seed": S}` drops scenes whose content (the two object groups, hence every
    caption) also occurs among the N scenes of seed S - a held-out set for a training set built
    with those options. The number dropped is kept in each item's meta as `excluded_duplicates`.
    """
    from mixlingual.imagetext.captions import LANGUAGES
    from mixlingual.imagetext.synthetic import generate_scenes, scenes_to_items

    scenes = generate_scenes(n, seed=seed, size=size, languages=tuple(langs or LANGUAGES))
    dropped = 0
    if exclude:
        unknown = set(exclude) - {"n", "seed"}
        if unknown:
            raise DataError(f"synthetic option 'exclude' takes n and seed, got {sorted(unknown)}")
        seen = {frozenset(s.groups) for s in generate_scenes(int(exclude["n"]), seed=int(exclude["seed"]),
                                                             size=16, languages=("en",))}
        kept = [s for s in scenes if frozenset(s.groups) not in seen]
        dropped, scenes = len(scenes) - len(kept), kept
    items = scenes_to_items(scenes)
    for item in items:
        item.meta["excluded_duplicates"] = dropped
    return items


def load_jsonl(path, *, images=None, langs=None, check_images: bool = True) -> list[ImageCaptionItem]:
    """The canonical JSONL (`images` is not needed: paths are in the file); `langs` keeps only those
    caption languages, and images left with no caption are not returned."""
    items = read_image_captions(path, check_images=check_images)
    if langs:
        wanted = set(langs)
        for item in items:
            item.captions = {lang: caps for lang, caps in item.captions.items() if lang in wanted}
        items = [item for item in items if item.captions]
        if not items:
            raise DataError(f"no captions in languages {sorted(wanted)}", path=str(path))
    return items


LOADERS = {
    "jsonl": load_jsonl,
    "multi30k": load_multi30k,
    "xflickrco": load_xflickrco,
    "xtd10": load_xtd10,
    "xm3600": load_xm3600,
    "synthetic": load_synthetic,
}


def load_image_captions(name: str, path, **options) -> list[ImageCaptionItem]:
    """Load an image-caption set by format name (see the table in the module docstring)."""
    if name not in LOADERS:
        raise DataError(f"unknown image-caption format '{name}'; known: {', '.join(LOADERS)}")
    return LOADERS[name](path, **options)
