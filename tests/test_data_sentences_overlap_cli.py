"""Sentence spans, the train/eval overlap check and the `mixlingual data` command."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from mixlingual.cli import main
from mixlingual.data.overlap import find_overlap, measure_overlap, normalize_text
from mixlingual.data.records import Candidate, Collection, ParallelItem, Query
from mixlingual.data import sentences
from mixlingual.data.sentences import SPLITTERS, icu_available, sentence_index_at, sentence_spans, split_sentences
from mixlingual.errors import DataError

FIX = Path(__file__).parent / "fixtures" / "data"


def _installed(splitter: str) -> bool:
    """ICU is a dependency; sentencex and pysbd come with the `splitters` extra."""
    if splitter == "icu":
        return icu_available()
    return importlib.util.find_spec(splitter) is not None


splitters = [pytest.param(s, marks=pytest.mark.skipif(not _installed(s), reason=f"{s} not installed"))
             for s in SPLITTERS]


@pytest.mark.parametrize("splitter", splitters)
def test_spans_index_the_original_text(splitter):
    text = "Er kam am 14. Februar an. Dann ging er.\u200b  Sie blieb. "
    spans = sentence_spans(text, "de", splitter)
    assert [text[a:b] for a, b in spans] == ["Er kam am 14. Februar an.", "Dann ging er.", "Sie blieb."]
    assert sentence_index_at(spans, text.index("Februar")) == 0
    assert sentence_index_at(spans, text.index("\u200b")) == 1  # trailing marks belong to the sentence before
    assert sentence_index_at(spans, len(text) + 3) is None


@pytest.mark.skipif(not icu_available(), reason="PyICU not installed")
def test_icu_keeps_citation_marks_with_their_sentence_as_lareqa():
    text = "Poco después.[71]\u200b Federico llegó. Fin de la historia.[74]\u200b[75]\u200b"
    assert split_sentences(text, "es") == ["Poco después.[71]\u200b Federico llegó.", "Fin de la historia.[74]\u200b[75]"]


@pytest.mark.parametrize("splitter", ["sentencex", "pysbd"])
def test_an_optional_splitter_missing_names_the_extra(splitter, monkeypatch):
    monkeypatch.setitem(sys.modules, splitter, None)  # `import splitter` fails, as where it is not installed
    sentences._pysbd_segmenter.cache_clear()
    with pytest.raises(ImportError, match=re.escape("pip install 'mixlingual[splitters]'")):
        split_sentences("One. Two.", "en", splitter)
    sentences._pysbd_segmenter.cache_clear()


def test_thai_splits_at_spaces_and_chinese_keeps_digit_led_clauses():
    assert split_sentences("ฉันกินข้าว เขาไปโรงเรียน", "th") == ["ฉันกินข้าว", "เขาไปโรงเรียน"]
    if icu_available():
        assert split_sentences("他出生于北京。1990年他去了上海。", "zh") == ["他出生于北京。1990年他去了上海。"]


def test_normalization_and_overlap_counts():
    assert normalize_text("  Hello,\u00a0WORLD!! ") == normalize_text("hello world") == "hello world"
    items = [ParallelItem("a", {"en": "What is X?"}, {"en": "X is a letter."}, {"en": ["Y is not."]})]
    col = Collection("c", [Query("q1", "en", "what is x", "g"), Query("q2", "de", "Was ist X?", "g")],
                     [Candidate("c1", "en", "X is a letter.", ("g",)), Candidate("c2", "en", "Y is not!", ())])
    report = measure_overlap(items, col)
    assert (report.queries.exact, report.queries.normalized, report.queries.evaluated) == (0, 1, 2)
    assert (report.passages.exact, report.passages.normalized) == (1, 2)
    assert report.queries.per_language == {"en": 1} and report.queries.examples == ["[en] what is x"]
    with pytest.warns(UserWarning, match="TRAIN/EVAL LEAK"):
        assert find_overlap(items, col).passages.exact == 1
    with pytest.raises(DataError, match="refusing"):
        find_overlap(items, col, refuse=True)


def test_cli_list_inspect_convert_overlap(tmp_path, capsys):
    assert main(["data", "list"]) == 0
    assert "xquad-r" in capsys.readouterr().out
    assert main(["data", "inspect", "xquad-r", str(FIX / "xquad-r"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"languages": {"de": {"queries": 2, "candidates": 2},
                                                                 "en": {"queries": 2, "candidates": 2}}}
    out = tmp_path / "mlqa.jsonl"
    assert main(["data", "convert", "mlqa", str(FIX / "mlqa"), "-o", "split=dev", "--out", str(out)]) == 0
    assert main(["data", "inspect", "jsonl", str(out), "--json"]) == 0
    counts = json.loads(capsys.readouterr().out.splitlines()[-1])["languages"]
    assert counts["de"] == {"items": 2, "item_positives": 2, "item_queries": 2}
    assert main(["data", "overlap", f"jsonl:{out}", f"mlqa-r:{FIX / 'mlqa'}", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["queries"]["exact"] == 4 and report["passages"]["exact"] == 6  # dev vs dev: every sentence leaks
    assert main(["data", "overlap", str(out), f"mlqa-r:{FIX / 'mlqa'}", "--refuse"]) == 1
    assert main(["data", "inspect", "jsonl", str(tmp_path / "missing.jsonl")]) == 2  # clean one-line error
    assert "file not found" in capsys.readouterr().err
