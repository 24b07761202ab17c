"""`mixlingual evaluate` and `mixlingual report` end to end with a tiny local model."""

from __future__ import annotations

import json

import pytest

from helpers_models import make_tiny_model_dir
from mixlingual import cli
from mixlingual.data import jsonl
from mixlingual.data.records import Candidate, Collection, Query
from mixlingual.models.encoder import BiEncoder

SENTENCES = {
    "g1": ("what is the capital of france", "paris is the capital of france"),
    "g2": ("where is the big river", "the big river is in germany"),
    "g3": ("who was the first dog", "the first dog was a small red dog"),
}


def _collection() -> Collection:
    queries, cands = [], []
    for lang, suffix in (("en", ""), ("de", " in berlin")):
        for g, (question, answer) in SENTENCES.items():
            queries.append(Query(f"{lang}-{g}", lang, question + suffix, g))
            cands.append(Candidate(f"{lang}-{g}-s", lang, answer + suffix, (g,)))
        cands.append(Candidate(f"{lang}-x", lang, "the sun and the moon" + suffix, ()))
    return Collection("tiny-cli", queries, cands)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalcli")
    model = make_tiny_model_dir(root / "model")
    data = root / "tiny.jsonl"
    jsonl.write_collection(_collection(), data)
    return root, model, data


def test_evaluate_writes_everything_and_reuses_the_cache(setup, capsys, monkeypatch):
    root, model, data = setup
    calls = []
    original = BiEncoder.encode

    def counting(self, texts, *args, **kwargs):
        calls.append(len(texts))
        return original(self, texts, *args, **kwargs)

    monkeypatch.setattr(BiEncoder, "encode", counting)
    out = root / "run1"
    argv = ["evaluate", "--model", model, "--benchmark", "jsonl", "--data", str(data),
            "--cache-dir", str(root / "cache"), "--fp32", "--batch-size", "4"]
    assert cli.main(argv + ["--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "multi" in printed and "rank distance" in printed and "language preference" in printed
    assert calls == [6, 8]  # distinct queries, then distinct candidates
    for name in ("metrics.json", "per_query.jsonl", "report.md", "pairs_map.png", "rank_distance.png",
                 "runs/mono.trec", "runs/cross.trec", "runs/multi.trec", "qrels/multi.qrels"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    for setting in ("mono", "cross", "multi"):
        assert set(metrics["settings"][setting]) >= {"map", "r@1", "r@10", "mrr@10", "ndcg@10"}
        assert 0 < metrics["settings"][setting]["map"] <= 1
    assert set(metrics["pairs"]["map"]) == {"de", "en"} and metrics["langs"] == ["de", "en"]
    assert metrics["counts"]["queries"] == 6 and metrics["counts"]["candidates"] == 8
    assert "| mono |" in (out / "report.md").read_text()
    assert "language preference |" in (out / "report.md").read_text()
    assert set(metrics["language_preference"]["per_language"]) == {"de", "en"}
    multi_run = (out / "runs" / "multi.trec").read_text().splitlines()
    assert len(multi_run) == 6 * 8  # run depth 100 > pool: every candidate listed for every query

    out2 = root / "run2"
    assert cli.main(argv + ["--out", str(out2)]) == 0
    assert calls == [6, 8]  # second evaluation: every embedding came from the cache
    assert json.loads((out2 / "metrics.json").read_text())["settings"] == metrics["settings"]

    capsys.readouterr()
    assert cli.main(["report", str(out), str(out2), "--names", "a", "b", "--out", str(root / "cmp")]) == 0
    assert (root / "cmp" / "compare.png").stat().st_size > 0
    table = (root / "cmp" / "compare.md").read_text()
    assert "| a |" in table and "| b |" in table and "language preference" in table


def test_evaluate_reports_bad_languages(setup, capsys):
    root, model, data = setup
    argv = ["evaluate", "--model", model, "--benchmark", "jsonl", "--data", str(data),
            "--out", str(root / "bad"), "--langs", "en,fr"]
    assert cli.main(argv) == 2
    assert "langs: collection 'tiny-cli' has no fr" in capsys.readouterr().err
    assert not (root / "bad" / "metrics.json").exists()
    assert cli.main(["report", str(root / "missing")]) == 2
    assert "no metrics.json" in capsys.readouterr().err


def test_data_options_reach_the_loader_and_bad_ones_are_named(setup, capsys, tmp_path):
    from pathlib import Path

    from mixlingual.errors import ConfigError
    from mixlingual.evaluation.cli import check_data_options, parse_data_options

    root, model, _ = setup
    xquad = Path(__file__).parent / "fixtures" / "data" / "xquad-r"
    argv = ["evaluate", "--model", model, "--benchmark", "xquad-r", "--data", str(xquad), "--fp32"]
    assert cli.main(argv + ["--out", str(tmp_path / "ok"), "--data-option", "articles=0"]) == 0
    assert cli.main(argv + ["--out", str(tmp_path / "past"), "--data-option", "articles=0-3"]) == 2
    assert "field 'articles': 1, 2, 3 out of range; this file has 1 articles" in capsys.readouterr().err
    assert cli.main(argv + ["--out", str(tmp_path / "bad"), "--data-option", "artcles=0"]) == 2
    err = capsys.readouterr().err
    assert "--data-option artcles: the xquad-r loader has no option 'artcles'" in err and "articles" in err
    assert parse_data_options(["articles=0-11", "paragraphs=40"]) == {"articles": "0-11", "paragraphs": 40}
    with pytest.raises(ConfigError, match="--data-option candidate: give it as --candidate"):
        check_data_options("xquad-r", {"candidate": "sentence"})
    with pytest.raises(ConfigError, match="must look like key=value"):
        parse_data_options(["articles"])
