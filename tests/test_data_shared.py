"""Loaders on the real data in ../shared/data (skipped cleanly when it is absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mixlingual.data.registry import load_collection, load_parallel
from mixlingual.data.sentences import icu_available

SHARED = Path(os.environ.get("MIXLINGUAL_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
pytestmark = pytest.mark.shared_data
LAREQA_MLQA_R = {"ar": (517, 2545), "de": (512, 2362), "en": (1148, 6264), "es": (500, 1787),
                 "hi": (507, 2426), "vi": (511, 2828), "zh": (504, 2322)}


def need(sub: str) -> Path:
    path = SHARED / sub
    if not path.exists():
        pytest.skip(f"shared data {path} not present")
    return path


def test_mlqa_test_files_give_parallel_training_items():
    items = load_parallel("mlqa", need("mlqa"))
    assert len(items) > 9000
    query_langs = {lang for i in items for lang in i.queries}
    passage_langs = {lang for i in items for lang in i.positives}
    assert query_langs == {"ar", "de", "es", "hi", "vi", "zh"} and passage_langs == {"de", "es", "vi", "zh"}
    assert sum(len(i.positives) > 1 for i in items) > 3000  # recovered both sides in several languages
    assert items.report.notes["answers_with_empty_text"] > 0  # XTREME's test copy has blank answers


def test_mlqa_dev_items_have_sentence_positives_inside_their_paragraph():
    items = load_parallel("mlqa", need("mlqa"), split="dev", context="sentence+paragraph")
    assert len(items) == 1148
    for item in items[:200]:
        for lang, sentence in item.positives.items():
            assert sentence in item.meta["contexts"][lang]


def test_xquad_r_dev_has_632_queries_in_each_of_11_languages():
    col = load_collection("xquad-r", need("xquad-r-dev"))
    counts = col.counts()
    assert sorted(counts) == ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]
    assert all(c["queries"] == 632 for c in counts.values())
    relevant = col.relevant_by_group()
    assert all(len(relevant[q.group]) == 11 for q in col.queries)


@pytest.mark.skipif(not icu_available(), reason="PyICU not installed: counts are tuned for ICU")
def test_mlqa_r_counts_within_two_percent_of_lareqa():
    col = load_collection("mlqa-r", need("mlqa"))
    for lang, counts in col.counts().items():
        queries, candidates = LAREQA_MLQA_R[lang]
        assert counts["queries"] == queries
        assert abs(counts["candidates"] - candidates) / candidates <= 0.02, (lang, counts["candidates"])


def test_tatoeba_pairs_load():
    col = load_collection("tatoeba", need("tatoeba"), langs=["swh", "deu"])
    assert {q.lang for q in col.queries} == {"swh", "deu"} and {c.lang for c in col.candidates} == {"eng"}
    assert col.meta["load_report"]["skipped"] == {}
