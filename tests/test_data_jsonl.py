"""Canonical JSONL formats: round trips, validation messages, strict / non-strict loading."""

from __future__ import annotations

import json

import jsonschema
import pytest

from mixlingual.data import jsonl
from mixlingual.data.records import Candidate, Collection, ParallelItem, Query
from mixlingual.data.registry import load_collection, load_parallel
from mixlingual.data.validation import load_schema
from mixlingual.errors import DataError

GOOD = {"id": "a", "queries": {"en": "Why?", "de": "Warum?"}, "positives": {"en": "Because.", "de": "Darum."},
        "negatives": {"de": ["Nein."]}}


def write_lines(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records),
                    encoding="utf-8")
    return path


def test_parallel_round_trip_keeps_every_field(tmp_path):
    items = [ParallelItem("a", {"en": "q"}, {"en": "p", "sw": "jibu"}, {"sw": ["hasi"]}, group="g", source="s",
                          meta={"k": 1}), ParallelItem("b", {"zh-Hans": "问"}, {"zh-Hans": "答"})]
    path = tmp_path / "items.jsonl.gz"
    assert jsonl.write_parallel(items, path) == 2
    back = jsonl.read_parallel(path)
    assert back == items
    assert back.report.loaded == 2 and back.report.total_skipped == 0


def test_collection_round_trip_and_header(tmp_path):
    col = Collection("c", [Query("q1", "en", "Why?", "g1")],
                     [Candidate("c1", "en", "Because.", ("g1",), "ctx"), Candidate("c2", "de", "Nein.", ())],
                     {"about": "x"})
    path = tmp_path / "col.jsonl"
    assert jsonl.write_collection(col, path) == 4  # header + 1 query + 2 candidates
    back = load_collection("jsonl", path)
    assert (back.name, back.queries, back.candidates, back.meta["about"]) == ("c", col.queries, col.candidates, "x")
    assert jsonl.detect_kind(path) == "collection"


@pytest.mark.parametrize("record, field, reason", [
    ({"id": "a", "queries": {"en": "q"}}, "positives", "missing_field"),
    ({**GOOD, "id": 3}, "id", "wrong_type"),
    ({**GOOD, "queries": {"en": "  "}}, "queries.en", "empty_text"),
    ({**GOOD, "queries": {"xx": "q"}}, "queries.xx", "bad_language"),
    ({**GOOD, "negatives": {"fr": ["n"]}}, "negatives.fr", "inconsistent_language"),
    ({**GOOD, "extra": 1}, "extra", "unknown_field"),
    ({**GOOD, "queries": {}}, "queries", "empty_field"),
    ({**GOOD, "negatives": {"de": "not a list"}}, "negatives.de", "wrong_type"),
])
def test_bad_record_names_file_line_and_field(tmp_path, record, field, reason):
    path = write_lines(tmp_path / "bad.jsonl", [GOOD | {"id": "first"}, record])
    with pytest.raises(DataError) as err:
        jsonl.read_parallel(path)
    assert (err.value.path, err.value.line, err.value.field) == (str(path), 2, field)
    assert f"{path}:2:" in str(err.value)
    items = jsonl.read_parallel(path, strict=False)
    assert [i.id for i in items] == ["first"]
    assert dict(items.report.skipped) == {reason: 1}


def test_non_strict_counts_every_reason_and_never_drops_silently(tmp_path):
    lines = [GOOD, GOOD, "{not json", b"\xff\xfe", {**GOOD, "id": "b", "queries": {"en": ""}}, "",
             '{"id": "c", "id": "d", "queries": {"en": "q"}, "positives": {"en": "p"}}', [1, 2]]
    path = tmp_path / "mixed.jsonl"
    with open(path, "wb") as handle:
        for line in lines:
            raw = line if isinstance(line, bytes) else (line if isinstance(line, str) else json.dumps(line)).encode()
            handle.write(raw + b"\n")
    items = jsonl.read_parallel(path, strict=False)
    report = items.report
    assert report.loaded == 1
    assert dict(report.skipped) == {"duplicate_id": 1, "bad_json": 1, "bad_encoding": 1, "empty_text": 1,
                                    "duplicate_key": 1, "wrong_type": 1}
    assert report.loaded + report.total_skipped == 7  # every non-blank line accounted for
    assert "mixed.jsonl:3" in report.examples["bad_json"]


def test_collection_validation(tmp_path):
    path = write_lines(tmp_path / "c.jsonl", [
        {"type": "query", "id": "q", "lang": "en", "text": "t", "group": "g"},
        {"type": "candidate", "id": "c", "lang": "en", "text": "t", "groups": ["g"]},
        {"type": "candidate", "id": "c", "lang": "en", "text": "u", "groups": []},
        {"type": "answer", "id": "z"},
        {"type": "query", "id": "q2", "lang": "english", "text": "t", "group": "g"},
        {"type": "collection", "name": "late header"},
    ])
    with pytest.raises(DataError, match="c.jsonl:3: field 'id'"):
        jsonl.read_collection(path)
    col = jsonl.read_collection(path, strict=False)
    assert [q.id for q in col.queries] == ["q"] and [c.id for c in col.candidates] == ["c"]
    assert col.meta["load_report"]["skipped"] == {"duplicate_id": 1, "bad_value": 2, "bad_language": 1}


def test_registry_jsonl_refuses_the_wrong_kind(tmp_path):
    path = write_lines(tmp_path / "p.jsonl", [GOOD])
    assert len(load_parallel("jsonl", path)) == 1
    with pytest.raises(DataError, match="parallel-item file"):
        load_collection("jsonl", path)


def test_atomic_write_leaves_nothing_when_interrupted(tmp_path):
    path = tmp_path / "out.jsonl"
    jsonl.write_parallel([ParallelItem("old", {"en": "q"}, {"en": "p"})], path)

    def broken():
        yield ParallelItem("new", {"en": "q"}, {"en": "p"})
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        jsonl.write_parallel(broken(), path)
    assert [i.id for i in jsonl.read_parallel(path)] == ["old"]  # old file intact
    assert list(tmp_path.iterdir()) == [path]  # no temp file left


def test_schema_files_are_valid_json_schema():
    for name in ("parallel_item", "collection"):
        schema = load_schema(name)
        jsonschema.validators.validator_for(schema).check_schema(schema)
    jsonschema.validate(GOOD, load_schema("parallel_item"))


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        jsonl.read_parallel(tmp_path / "none.jsonl")


def test_damaged_gzip_is_a_data_error(tmp_path):
    path = tmp_path / "items.jsonl.gz"
    jsonl.write_parallel([ParallelItem("a", {"en": "q"}, {"en": "p"})], path)
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(DataError, match="cannot read the file"):
        jsonl.read_parallel(path)
