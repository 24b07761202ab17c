"""Registry entry `jsonl`: the canonical JSONL formats (parallel items or a collection).

Options: `strict` (default True: the first bad record raises `DataError`; False: skip and count
it, see `ItemList.report` / `Collection.meta["load_report"]`), `name` (collection name).
"""

from __future__ import annotations

from mixlingual.data import jsonl
from mixlingual.data.records import Collection
from mixlingual.data.report import ItemList
from mixlingual.errors import DataError

DESCRIPTION = "canonical JSONL: parallel items or a query/candidate collection (kind detected from content)"
KINDS = ("parallel", "collection")


def _require_path(path):
    if path is None:
        raise DataError("the jsonl dataset needs a file path")
    return path


def load_parallel(path, *, strict: bool = True) -> ItemList:
    path = _require_path(path)
    if jsonl.detect_kind(path) != "parallel":
        raise DataError("this is a collection file (records have 'type'), not parallel items", path=str(path))
    return jsonl.read_parallel(path, strict=strict)


def load_collection(path, *, strict: bool = True, name: str | None = None) -> Collection:
    path = _require_path(path)
    if jsonl.detect_kind(path) != "collection":
        raise DataError("this is a parallel-item file (no 'type' field), not a collection", path=str(path))
    return jsonl.read_collection(path, strict=strict, name=name)
