"""Settings logic on a tiny hand-made collection whose answers are computed by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mixlingual.data.records import Candidate, Collection, Query
from mixlingual.errors import ConfigError, DataError
from mixlingual.evaluation.evaluate import EvalOptions, evaluate_collection

# axes: group g1, group g2, "english-ness", "german-ness"
VECTORS = {
    "q en 1": [1, 0, .5, 0], "q en 2": [0, 1, .5, 0], "q en 3": [.2, .2, .5, 0],
    "q de 1": [1, 0, 0, .5], "q de 2": [0, 1, 0, .5],
    "c en 1": [1, 0, .6, 0], "c en 2": [0, 1, .6, 0], "c en 3": [.9, 0, .9, 0],
    "c de 1": [1, 0, 0, .6], "c de 2": [0, 1, 0, .6], "c de 4": [1.1, 0, 0, 0],
}


class TableEncoder:
    """Fake encoder: fixed vectors per text; records every call."""

    name, dim = "table", 4

    def __init__(self):
        self.calls = []

    def fingerprint(self):
        return "table-v1"

    def encode(self, texts, kind="passage", batch_size=64, show_progress=None):
        self.calls.append((kind, list(texts)))
        return np.array([VECTORS[t] for t in texts], np.float32)


def tiny_collection() -> Collection:
    queries = [Query("en-1", "en", "q en 1", "g1"), Query("en-2", "en", "q en 2", "g2"),
               Query("en-3", "en", "q en 3", "g3"),  # nothing answers g3: counted, not scored
               Query("de-1", "de", "q de 1", "g1"), Query("de-2", "de", "q de 2", "g2")]
    cands = [Candidate("c-en-1", "en", "c en 1", ("g1",)), Candidate("c-en-2", "en", "c en 2", ("g2",)),
             Candidate("c-en-3", "en", "c en 3"), Candidate("c-de-1", "de", "c de 1", ("g1",)),
             Candidate("c-de-2", "de", "c de 2", ("g2",)), Candidate("c-de-4", "de", "c de 4")]
    return Collection("tiny", queries, cands)


def test_settings_by_hand(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written without out_dir, not even here
    enc = TableEncoder()
    m = evaluate_collection(enc, tiny_collection())
    # en-1: mono rank 2 (c-en-3 scores higher); en->de rank 2 (c-de-4); multi ranks 2 and 4
    # de-1: multi ranks 1 and 3 (c-de-4 between); everything else is ranked first
    assert m["per_language"]["mono"]["en"]["map"] == pytest.approx(0.75)
    assert m["per_language"]["mono"]["de"]["map"] == pytest.approx(1.0)
    assert m["settings"]["mono"]["map"] == pytest.approx(0.875)
    assert m["settings"]["mono"]["r@1"] == pytest.approx(0.75)
    assert m["pairs"]["map"]["en"]["de"] == pytest.approx(0.75)
    assert m["pairs"]["map"]["de"]["en"] == pytest.approx(1.0)
    assert m["settings"]["cross"]["map"] == pytest.approx(0.875)
    assert m["per_language"]["multi"]["en"]["map"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["per_language"]["multi"]["de"]["map"] == pytest.approx(((1 + 2 / 3) / 2 + 1.0) / 2)
    assert m["settings"]["multi"]["map"] == pytest.approx((0.75 + 11 / 12) / 2)
    assert m["rank_distance"]["per_language"] == {"en": 1.5, "de": 1.5}
    assert m["rank_distance"]["mean"] == 1.5
    assert m["counts"]["no_relevant"]["mono"] == {"total": 1, "by_language": {"de": 0, "en": 1}}
    assert m["counts"]["no_relevant"]["cross"]["by_pair"] == {"de-en": 0, "en-de": 1}
    assert m["counts"]["no_relevant"]["multi"]["total"] == 1
    assert m["counts"]["queries"] == 5 and m["counts"]["candidates"] == 6
    assert (m["model"], m["collection"], m["langs"]) == ("table", "tiny", ["de", "en"])
    # every distinct text encoded once, queries as queries and candidates as passages
    assert [k for k, _ in enc.calls] == ["query", "passage"]
    assert sorted(enc.calls[1][1]) == sorted(t for t in VECTORS if t.startswith("c"))
    assert not list(tmp_path.iterdir())


def test_langs_restricts_queries_and_pool():
    m = evaluate_collection(TableEncoder(), tiny_collection(), langs=["en"])
    assert m["langs"] == ["en"] and m["settings"]["cross"] is None
    assert m["settings"]["mono"]["map"] == pytest.approx(0.75)
    assert m["settings"]["multi"]["map"] == pytest.approx(0.75)  # the pool is English only
    assert m["rank_distance"]["mean"] is None  # one language: no spread to measure
    only_multi = evaluate_collection(TableEncoder(), tiny_collection(), settings=["multi"])
    assert set(only_multi["settings"]) == {"multi"}


def test_options_as_a_dataclass_or_as_keywords_agree():
    def without_timing(m):
        return {k: v for k, v in m.items() if k != "timing_s"}

    by_keywords = evaluate_collection(TableEncoder(), tiny_collection(), langs=["en"], settings=["mono", "multi"])
    options = EvalOptions(langs=["en"], settings=("mono", "multi"))
    assert without_timing(evaluate_collection(TableEncoder(), tiny_collection(), options)) == without_timing(by_keywords)
    overridden = evaluate_collection(TableEncoder(), tiny_collection(), options, settings=["multi"])
    assert set(overridden["settings"]) == {"multi"}  # keywords win over the dataclass
    with pytest.raises(TypeError, match="run_dpeth"):
        evaluate_collection(TableEncoder(), tiny_collection(), run_dpeth=5)


def test_bad_input_is_named():
    with pytest.raises(ConfigError, match="langs: .* no fr"):
        evaluate_collection(TableEncoder(), tiny_collection(), langs=["en", "fr"])
    with pytest.raises(ConfigError, match="settings"):
        evaluate_collection(TableEncoder(), tiny_collection(), settings=["bilingual"])
    with pytest.raises(DataError, match="empty"):
        evaluate_collection(TableEncoder(), Collection("void", [], []))
    with pytest.raises(DataError, match="no candidate .* has a context"):
        evaluate_collection(TableEncoder(), tiny_collection(), candidate="sentence+context")
    coll = tiny_collection()
    coll.candidates.append(Candidate("c-en-1", "en", "c en 2"))
    with pytest.raises(DataError, match="duplicate candidate id 'c-en-1'"):
        evaluate_collection(TableEncoder(), coll)


def test_output_files_rescored_by_trec_eval(tmp_path):
    pytrec_eval = pytest.importorskip("pytrec_eval")
    m = evaluate_collection(TableEncoder(), tiny_collection(), out_dir=tmp_path, run_depth=100,
                            cross_run_depth=100)
    assert json.loads((tmp_path / "metrics.json").read_text())["settings"] == m["settings"]
    rows = [json.loads(line) for line in (tmp_path / "per_query.jsonl").read_text().splitlines()]
    assert len(rows) == 5 * 3  # every query in mono, in the one cross pair, and in multi
    # each row names its parallel question group: the unit the sweep's clustered tests resample
    assert {(r["query"], r["group"]) for r in rows} == {(q.id, q.group) for q in tiny_collection().queries}
    no_rel = [r for r in rows if r["query"] == "en-3"]
    assert all(r["map"] is None and r["n_relevant"] == 0 for r in no_rel)
    for setting in ("mono", "cross", "multi"):
        run, qrels = {}, {}
        for line in (tmp_path / "runs" / f"{setting}.trec").read_text().splitlines():
            qid, _, doc, _, score, _ = line.split()
            run.setdefault(qid, {})[doc] = float(score)
        for line in (tmp_path / "qrels" / f"{setting}.qrels").read_text().splitlines():
            qid, _, doc, rel = line.split()
            qrels.setdefault(qid, {})[doc] = int(rel)
        ref = pytrec_eval.RelevanceEvaluator(qrels, {"map"}).evaluate(run)
        ours = {r["query"] if r["setting"] != "cross" else f"{r['query']}@{r['clang']}": r["map"]
                for r in rows if r["setting"] == setting and r["map"] is not None}
        assert ours.keys() == ref.keys()
        for qid, ap in ours.items():
            assert ap == pytest.approx(ref[qid]["map"], abs=1e-4), (setting, qid)
    assert not [p for p in tmp_path.rglob("*.tmp")]


class RandomEncoder:
    """Fake encoder: an independent random vector per text (no exact score ties in practice)."""

    name, dim = "random", 6

    def __init__(self, seed):
        self.rng, self.vectors = np.random.default_rng(seed), {}

    def fingerprint(self):
        return "random"

    def encode(self, texts, kind="passage", batch_size=64, show_progress=None):
        for t in texts:
            self.vectors.setdefault(t, self.rng.standard_normal(self.dim).astype(np.float32))
        return np.array([self.vectors[t] for t in texts])


def full_ranking(query_vec, candidates, vectors) -> list[int]:
    """1-based rank of every candidate when all are sorted by score, best first."""
    scores = [float(np.dot(query_vec.astype(np.float64), vectors[c.text])) for c in candidates]
    order = sorted(range(len(candidates)), key=lambda i: -scores[i])
    ranks = [0] * len(candidates)
    for position, i in enumerate(order, start=1):
        ranks[i] = position
    return ranks


def brute_force_rank_distance(ranks, candidates, group):
    """Rank distance from a full multilingual ranking, written out the obvious way.

    In each language take the best (smallest) rank among the query's relevant candidates there;
    the distance is the largest minus the smallest of those per-language ranks (None with
    relevant candidates in fewer than two languages). So with relevant ranks en [1, 9] and
    de [4] the distance is 4 - 1 = 3, not 9 - 1 = 8.
    """
    best: dict[str, int] = {}
    for rank, c in zip(ranks, candidates):
        if group in c.groups:
            best[c.lang] = min(best.get(c.lang, rank), rank)
    return max(best.values()) - min(best.values()) if len(best) >= 2 else None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_distance_with_several_relevant_per_language_matches_brute_force(tmp_path, seed):
    rng = np.random.default_rng(seed)
    langs, queries, cands = ("de", "en", "es"), [], []
    for g in range(12):
        for lang in langs:
            queries.append(Query(f"q{g}{lang}", lang, f"q {g} {lang}", f"g{g}"))
            for k in range(rng.integers(0, 4)):  # 0-3 relevant candidates of this group in this language
                cands.append(Candidate(f"c{g}{lang}{k}", lang, f"c {g} {lang} {k}", (f"g{g}",)))
    cands += [Candidate(f"d{i}", langs[i % 3], f"distractor {i}") for i in range(20)]
    encoder = RandomEncoder(seed)
    m = evaluate_collection(encoder, Collection("random", queries, cands), out_dir=tmp_path, run_depth=1)
    vectors = encoder.vectors
    # the fixture is unambiguous: no two candidates score within 1e-5 (float32 error: ~1e-6)
    for q in queries:
        scores = np.sort([np.dot(vectors[q.text].astype(np.float64), vectors[c.text]) for c in cands])
        assert np.diff(scores).min() > 1e-5
    got = {r["query"]: r["rank_distance"] for line in (tmp_path / "per_query.jsonl").read_text().splitlines()
           if (r := json.loads(line))["setting"] == "multi"}
    ranks = {q.id: full_ranking(vectors[q.text], cands, vectors) for q in queries}
    expected = {q.id: brute_force_rank_distance(ranks[q.id], cands, q.group) for q in queries}
    assert got == pytest.approx(expected)
    by_lang = {x: np.mean([v for q, v in expected.items() if q.endswith(x) and v is not None]) for x in langs}
    assert m["rank_distance"]["per_language"] == pytest.approx(by_lang)
    assert m["rank_distance"]["mean"] == pytest.approx(np.mean(list(by_lang.values())))
    # the fixture tells "best rank per language" apart from "spread of all relevant ranks"
    spread_of_all = {q.id: np.ptp([r for r, c in zip(ranks[q.id], cands) if q.group in c.groups] or [0])
                     for q in queries}
    assert sum(expected[q] is not None and spread_of_all[q] != expected[q] for q in expected) >= 5
