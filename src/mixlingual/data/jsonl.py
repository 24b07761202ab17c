"""The canonical JSONL formats: streaming readers, atomic writers, validation with line numbers.

Two kinds of file (schemas in `mixlingual/schemas/`):

* parallel items - one `ParallelItem` per line:
  `{"id", "queries": {lang: text}, "positives": {lang: text}, "negatives"?: {lang: [text]},
  "group"?, "source"?, "meta"?}`
* collections - an optional header `{"type": "collection", "name", "meta"}` then lines
  `{"type": "query", "id", "lang", "text", "group"}` and
  `{"type": "candidate", "id", "lang", "text", "groups": [...], "context"?}`.

Readers stream (generators) and check every line: bad UTF-8, bad JSON, duplicate JSON keys,
schema errors, unknown language codes, inconsistent languages, duplicate ids. With
`strict=True` (default) the first problem raises `DataError(path, line, field)`; with
`strict=False` the record is skipped and counted in the `LoadReport` under its reason, so
loaded + skipped always equals the number of non-blank lines. `.gz` files are read and written
transparently. Writers go through a temp file and `os.replace`, so an interrupted write never
leaves a half-written file behind.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from mixlingual.data.records import Candidate, Collection, ParallelItem, Query
from mixlingual.data.report import ItemList, LoadReport
from mixlingual.data.validation import RecordProblem, check_collection_record, check_parallel
from mixlingual.errors import DataError
from mixlingual.io import atomic_open


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _no_duplicate_keys(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:  # json.loads would keep the last value silently
            raise RecordProblem("duplicate_key", "key appears twice in one object", key)
        obj[key] = value
    return obj


def iter_json_lines(path) -> Iterator[tuple[int, object | RecordProblem]]:
    """Yield (1-based line number, parsed object or the `RecordProblem` that stopped parsing).

    Blank lines are not records and are passed over; every other line yields exactly once.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path=str(path))
    try:
        yield from _parse_lines(path)
    except (OSError, EOFError) as err:  # a damaged .gz file fails while it is being read
        raise DataError(f"cannot read the file: {err}", path=str(path)) from None


def read_json_records(path) -> Iterator[tuple[int, object]]:
    """(1-based line, parsed JSON) of a JSONL file, failing on the first bad line.

    For files that are read whole or not at all (our own run outputs, auxiliary formats): any
    line `iter_json_lines` cannot parse is a `DataError` naming the file, line and field.
    """
    for number, obj in iter_json_lines(path):
        if isinstance(obj, RecordProblem):
            raise DataError(obj.message, path=str(path), line=number, field=obj.field)
        yield number, obj


def _parse_lines(path: Path) -> Iterator[tuple[int, object | RecordProblem]]:
    with _open_binary(path) as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                yield number, RecordProblem("bad_encoding", f"not UTF-8 ({err.reason} at byte {err.start})")
                continue
            if number == 1:
                text = text.lstrip("\ufeff")
            try:
                yield number, json.loads(text, object_pairs_hook=_no_duplicate_keys)
            except RecordProblem as problem:
                yield number, problem
            except (json.JSONDecodeError, RecursionError, ValueError) as err:
                yield number, RecordProblem("bad_json", f"invalid JSON: {err}")


def _fail_or_skip(problem: RecordProblem, path, number: int, strict: bool, report: LoadReport) -> None:
    if strict:
        raise DataError(problem.message, path=str(path), line=number, field=problem.field)
    where = f"{path}:{number}" + (f" field '{problem.field}'" if problem.field else "")
    report.skip(problem.reason, f"{where}: {problem.message}")


def item_from_dict(obj: dict) -> ParallelItem:
    return ParallelItem(id=obj["id"], queries=dict(obj["queries"]), positives=dict(obj["positives"]),
                        negatives={k: list(v) for k, v in obj.get("negatives", {}).items()},
                        group=obj.get("group"), source=obj.get("source"), meta=dict(obj.get("meta", {})))


def item_to_dict(item: ParallelItem) -> dict:
    out = {"id": item.id, "queries": item.queries, "positives": item.positives}
    if item.negatives:
        out["negatives"] = item.negatives
    if item.group is not None and item.group != item.id:
        out["group"] = item.group
    if item.source is not None:
        out["source"] = item.source
    if item.meta:
        out["meta"] = item.meta
    return out


def iter_parallel(path, *, strict: bool = True, report: LoadReport | None = None) -> Iterator[ParallelItem]:
    """Stream the valid `ParallelItem`s of a parallel JSONL file (see the module doc for `strict`)."""
    report = report if report is not None else LoadReport(source=str(path))
    seen: set[str] = set()
    for number, obj in iter_json_lines(path):
        try:
            if isinstance(obj, RecordProblem):
                raise obj
            check_parallel(obj)
            if obj["id"] in seen:
                raise RecordProblem("duplicate_id", f"id {obj['id']!r} appears earlier in the file", "id")
        except RecordProblem as problem:
            _fail_or_skip(problem, path, number, strict, report)
            continue
        seen.add(obj["id"])
        report.loaded += 1
        yield item_from_dict(obj)


def read_parallel(path, *, strict: bool = True) -> ItemList:
    """All parallel items of `path` as an `ItemList` (its `.report` holds the skip counts)."""
    report = LoadReport(source=str(path))
    items = ItemList(iter_parallel(path, strict=strict, report=report), report=report)
    report.log()
    return items


def read_collection(path, *, strict: bool = True, name: str | None = None) -> Collection:
    """A collection JSONL file as a `Collection`; the load report is in `meta["load_report"]`."""
    report = LoadReport(source=str(path))
    header, queries, candidates = {}, [], []
    seen = {"query": set(), "candidate": set()}
    for number, obj in iter_json_lines(path):
        try:
            if isinstance(obj, RecordProblem):
                raise obj
            kind = check_collection_record(obj)
            if kind == "collection":
                if header or queries or candidates:
                    raise RecordProblem("bad_value", "the collection header must be the first record", "type")
                header = obj
                continue
            if obj["id"] in seen[kind]:
                raise RecordProblem("duplicate_id", f"{kind} id {obj['id']!r} appears earlier", "id")
        except RecordProblem as problem:
            _fail_or_skip(problem, path, number, strict, report)
            continue
        seen[kind].add(obj["id"])
        report.loaded += 1
        if kind == "query":
            queries.append(Query(obj["id"], obj["lang"], obj["text"], obj["group"]))
        else:
            candidates.append(Candidate(obj["id"], obj["lang"], obj["text"], tuple(obj["groups"]),
                                        obj.get("context")))
    answered = {g for c in candidates for g in c.groups}
    unanswered = sum(q.group not in answered for q in queries)
    if unanswered:
        report.note("queries_without_relevant_candidate", unanswered)
    report.log()
    meta = dict(header.get("meta", {}), load_report=report.to_dict())
    return Collection(name or header.get("name") or Path(path).stem, queries, candidates, meta)


def detect_kind(path) -> str:
    """'collection' when the first parseable record has a "type" field, else 'parallel'."""
    for _, obj in iter_json_lines(path):
        if isinstance(obj, dict):
            return "collection" if "type" in obj else "parallel"
    raise DataError("no JSON object found: cannot tell a parallel file from a collection", path=str(path))


def write_jsonl(records: Iterable[dict], path) -> int:
    """Write dicts one per line, atomically (temp file in the same folder + os.replace)."""
    path = Path(path)
    count = 0
    with atomic_open(path, "wb", fsync=True) as raw:
        handle = gzip.GzipFile(fileobj=raw, mode="wb") if path.suffix == ".gz" else raw
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
            count += 1
        if handle is not raw:
            handle.close()
    return count


def write_parallel(items: Iterable[ParallelItem], path) -> int:
    """Write parallel items in the canonical format; returns how many were written."""
    return write_jsonl((item_to_dict(i) for i in items), path)


def collection_records(collection: Collection) -> Iterator[dict]:
    """The canonical JSONL records of a collection: header, queries, candidates."""
    meta = {k: v for k, v in collection.meta.items() if k != "load_report"}
    yield {"type": "collection", "name": collection.name, "meta": meta}
    for q in collection.queries:
        yield {"type": "query", "id": q.id, "lang": q.lang, "text": q.text, "group": q.group}
    for c in collection.candidates:
        record = {"type": "candidate", "id": c.id, "lang": c.lang, "text": c.text, "groups": list(c.groups)}
        if c.context is not None:
            record["context"] = c.context
        yield record


def write_collection(collection: Collection, path) -> int:
    """Write a collection in the canonical format; returns the number of lines written."""
    return write_jsonl(collection_records(collection), path)
