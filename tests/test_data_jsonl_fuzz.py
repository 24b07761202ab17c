"""Property: any corruption of a valid JSONL file gives a clean DataError or a clean load.

Corruptions: byte flips, truncation, deleted fields, wrong-typed values, duplicated lines. With
`strict=True` the reader either loads or raises `DataError` (never another exception); with
`strict=False` it never raises and loaded + skipped equals the number of non-blank lines, so
nothing is dropped silently.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixlingual.data import jsonl
from mixlingual.errors import DataError

LANGS = ["en", "de", "sw", "ru", "zh-Hans"]
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12).filter(str.strip)


@st.composite
def valid_records(draw):
    n = draw(st.integers(1, 5))
    records = []
    for i in range(n):
        langs = draw(st.lists(st.sampled_from(LANGS), min_size=1, max_size=3, unique=True))
        record = {"id": f"item{i}", "queries": {l: draw(texts) for l in langs},
                  "positives": {l: draw(texts) for l in langs}}
        if draw(st.booleans()):
            record["negatives"] = {langs[0]: [draw(texts)]}
        records.append(record)
    return records


@st.composite
def valid_collection_records(draw):
    records = []
    for i in range(draw(st.integers(1, 5))):
        lang = draw(st.sampled_from(LANGS))
        if draw(st.booleans()):
            records.append({"type": "query", "id": f"q{i}", "lang": lang, "text": draw(texts), "group": f"g{i}"})
        else:
            records.append({"type": "candidate", "id": f"c{i}", "lang": lang, "text": draw(texts),
                            "groups": [f"g{i}"] if draw(st.booleans()) else []})
    return records


def corrupt(data, lines: list[bytes], records: list[dict]) -> bytes:
    """Apply 1-3 random corruptions; returns the corrupted file content."""
    for _ in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.sampled_from(["flip", "truncate", "delete", "wrong_type", "duplicate"]))
        i = data.draw(st.integers(0, len(lines) - 1))
        if op == "flip" and any(lines):
            blob = b"\n".join(lines)
            pos = data.draw(st.integers(0, len(blob) - 1))
            blob = blob[:pos] + bytes([blob[pos] ^ data.draw(st.integers(1, 255))]) + blob[pos + 1:]
            lines = blob.split(b"\n")
        elif op == "truncate":
            blob = b"\n".join(lines)
            lines = blob[:data.draw(st.integers(0, len(blob)))].split(b"\n")
        elif op in ("delete", "wrong_type") and i < len(records):
            record = dict(records[i])
            key = data.draw(st.sampled_from(sorted(record)))
            if op == "delete":
                del record[key]
            else:
                record[key] = data.draw(st.sampled_from([1, None, [], "text", {"en": 5}]))
            lines[i] = json.dumps(record, ensure_ascii=False).encode()
        elif op == "duplicate":
            lines.insert(i, lines[i])
    return b"\n".join(lines) + b"\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), records=valid_records())
def test_corruption_gives_clean_error_or_clean_load(tmp_path, data, records):
    lines = [json.dumps(r, ensure_ascii=False).encode() for r in records]
    blob = corrupt(data, list(lines), records)
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(blob)
    non_blank = sum(1 for line in blob.split(b"\n") if line.strip())

    try:
        strict_items = jsonl.read_parallel(path)
    except DataError as err:
        assert err.path == str(path) and err.line is not None and 1 <= err.line <= len(blob.split(b"\n"))
        strict_items = None

    lenient = jsonl.read_parallel(path, strict=False)
    assert lenient.report.loaded == len(lenient)
    assert lenient.report.loaded + lenient.report.total_skipped == non_blank
    if strict_items is not None:
        assert strict_items == lenient and lenient.report.total_skipped == 0
    else:
        assert lenient.report.total_skipped >= 1


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), records=valid_collection_records())
def test_collection_corruption_gives_clean_error_or_clean_load(tmp_path, data, records):
    lines = [json.dumps(r, ensure_ascii=False).encode() for r in records]
    blob = corrupt(data, list(lines), records)
    path = tmp_path / "fuzz_collection.jsonl"
    path.write_bytes(blob)
    non_blank = sum(1 for line in blob.split(b"\n") if line.strip())
    try:
        strict = jsonl.read_collection(path)
    except DataError as err:
        assert err.path == str(path) and err.line is not None
        strict = None
    lenient = jsonl.read_collection(path, strict=False)
    report = lenient.meta["load_report"]
    assert report["loaded"] == len(lenient.queries) + len(lenient.candidates)
    assert report["loaded"] + sum(report["skipped"].values()) == non_blank
    if strict is not None:
        assert (strict.queries, strict.candidates) == (lenient.queries, lenient.candidates)
