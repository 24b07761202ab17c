"""Atomic file writes: the one place where mixlingual puts a file on disk.

Every file is written to a temporary file in the same folder and moved into place with
`os.replace`, so a reader, or a run killed mid-write, never sees half a file; the folder is
created when missing and the temporary file is removed when the write fails.

    write_atomic(path, "text")              # str (UTF-8) or bytes
    write_json_atomic(path, data)           # indent 2, UTF-8, numpy scalars made JSON-safe (see json_safe)
    with atomic_open(path, "wb") as handle: # anything that writes to a handle (np.save, savefig)
        ...
    replace_folder(build, folder)           # build(tmp_folder) beside it, then swapped in
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_open(path, mode: str = "w", *, fsync: bool = False):
    """Open a temporary file beside `path` ("w" text UTF-8, or "wb"); on success move it to `path`."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # one name per process and thread: concurrent writers of one path never share a temp file
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        with open(tmp, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as handle:
            yield handle
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path, data: str | bytes) -> Path:
    """Write `data` (str as UTF-8, or bytes) to `path` atomically; return the path."""
    with atomic_open(path, "wb") as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def json_safe(value):
    """JSON-safe scalar: NaN / inf -> None, numpy numbers -> Python numbers.

    As the `default` of `json.dumps` (what `write_json_atomic` passes) it only sees what JSON
    cannot encode: numpy scalars other than float64. A Python float (or np.float64) NaN is
    written as NaN there; call `json_safe` on such values first to write null.
    """
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json_atomic(path, data, *, indent: int | None = 2) -> Path:
    """Write `data` as JSON (UTF-8, `indent`, one final newline) to `path` atomically."""
    return write_atomic(path, json.dumps(data, indent=indent, ensure_ascii=False, default=json_safe) + "\n")


def round_floats(value, digits: int):
    """`value` with every float inside (dicts, lists, tuples) rounded to `digits` decimals."""
    if isinstance(value, float):
        return round(value, digits) if math.isfinite(value) else value
    if isinstance(value, dict):
        return {key: round_floats(item, digits) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [round_floats(item, digits) for item in value]
    return value


def write_json_table_atomic(path, data: dict, *, digits: int = 6) -> Path:
    """Write a dict whose lists of dicts are long tables as JSON, one table row per line.

    Result summaries with thousands of rows (per condition, language, metric) are several MB with
    `indent=2`, most of it indentation and float digits no interval needs: floats are rounded to
    `digits` decimals and each row of a list of dicts stands compact on its own line, so the file
    stays readable and diffable line by line. Any JSON reader loads it unchanged.
    """
    data = round_floats(data, digits)
    dump = lambda value: json.dumps(value, ensure_ascii=False, default=json_safe, separators=(",", ":"))
    parts = []
    for key, value in data.items():
        if isinstance(value, list) and value and all(isinstance(row, dict) for row in value):
            body = "[\n" + ",\n".join("    " + dump(row) for row in value) + "\n  ]"
        else:
            body = json.dumps(value, ensure_ascii=False, default=json_safe)
        parts.append(f"  {json.dumps(key)}: {body}")
    return write_atomic(path, "{\n" + ",\n".join(parts) + "\n}\n")


def replace_folder(build, target: str) -> None:
    """Build a folder with ``build(tmp_path)`` beside ``target``, then swap it in atomically.

    An interrupted build leaves only a hidden temp folder, never a half-written ``target``.
    """
    target_path = Path(target).resolve()
    target_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target_path.name}.tmp-", dir=target_path.parent))
    try:
        build(tmp)
        if target_path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target_path.name}.old-", dir=target_path.parent))
            os.replace(target_path, old / "content")
            os.replace(tmp, target_path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target_path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
