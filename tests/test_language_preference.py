"""Language preference: the pure metric on hand-made rankings, and through evaluate_collection
against a brute-force full ranking with the pessimistic tie rule (many exact ties)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mixlingual.data.records import Candidate, Collection, Query
from mixlingual.evaluation.evaluate import evaluate_collection
from mixlingual.evaluation.metrics import language_preference


def test_pure_metric_on_hand_made_rankings():
    all_mine = np.ones((1, 10), bool)
    assert language_preference(all_mine, [1], [11]) == pytest.approx([1 - 1 / 11])
    # the top 10 in the query's language as often as its relevant candidates are: no preference
    half = np.array([[True, False] * 5])
    assert language_preference(half, [2], [4]) == pytest.approx([0.0])
    # none of the top 10 in its language although all relevant candidates are: -1
    assert language_preference(np.zeros((1, 10), bool), [3], [3]) == pytest.approx([-1.0])
    # a query with nothing relevant is undefined; rows are independent
    got = language_preference(np.vstack([all_mine, half]), [0, 1], [0, 2])
    assert np.isnan(got[0]) and got[1] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="top_in_language"):
        language_preference(np.ones((2, 0), bool), [1, 1], [1, 1])


class DictEncoder:
    """Fake encoder: a fixed vector per text."""

    name = "dict"

    def __init__(self, vectors):
        self.vectors = vectors
        self.dim = len(next(iter(vectors.values())))

    def fingerprint(self):
        return "dict"

    def encode(self, texts, kind="passage", batch_size=64, show_progress=None):
        return np.array([self.vectors[t] for t in texts], np.float32)


def test_a_query_whose_top_10_is_all_its_language():
    """One English query; its group has one relevant candidate in each of 11 languages, all below
    ten English distractors: preference 1 - 1/11."""
    langs = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]
    vectors = {"q": [1, 0]}
    cands = []
    for lang in langs:
        cands.append(Candidate(f"rel-{lang}", lang, f"rel {lang}", ("g",)))
        vectors[f"rel {lang}"] = [0.5, 0]
    for i in range(10):
        cands.append(Candidate(f"en-{i}", "en", f"distractor {i}"))
        vectors[f"distractor {i}"] = [1, 0]
    m = evaluate_collection(DictEncoder(vectors), Collection("c", [Query("q", "en", "q", "g")], cands),
                            settings=["multi"])
    assert m["language_preference"]["per_language"] == {"en": pytest.approx(1 - 1 / 11)}
    assert m["language_preference"]["mean"] == pytest.approx(1 - 1 / 11)
    assert m["language_preference"]["queries"] == 1


def brute_force_preference(query, qvec, pool, vectors) -> float | None:
    """Share of the top 10 in the query's language minus share of its relevant candidates there,
    from the whole pool sorted the pessimistic way: score descending, a relevant candidate after
    the non-relevant ones it ties with, then pool order."""
    relevant = [query.group in c.groups for c in pool]
    if not any(relevant):
        return None
    scores = [float(np.dot(qvec, vectors[c.text])) for c in pool]
    order = sorted(range(len(pool)), key=lambda i: (-scores[i], relevant[i], i))
    top = order[:min(10, len(pool))]
    in_top = sum(pool[i].lang == query.lang for i in top) / len(top)
    in_relevant = sum(r and c.lang == query.lang for r, c in zip(relevant, pool)) / sum(relevant)
    return in_top - in_relevant


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_a_brute_force_ranking_with_ties(tmp_path, seed):
    rng = np.random.default_rng(seed)
    langs, queries, cands, vectors = ("de", "en", "es"), [], [], {}

    def vector(text):   # small integers: scores are exact in float32 and tie often
        vectors[text] = rng.integers(0, 3, 4).astype(float)

    for g in range(12):
        for lang in langs:
            queries.append(Query(f"q{g}{lang}", lang, f"q {g} {lang}", f"g{g}"))
            vector(f"q {g} {lang}")
            for k in range(rng.integers(0, 4)):   # 0-3 relevant candidates of this group in this language
                cands.append(Candidate(f"c{g}{lang}{k}", lang, f"c {g} {lang} {k}", (f"g{g}",)))
                vector(f"c {g} {lang} {k}")
    for i in range(20):
        cands.append(Candidate(f"d{i}", langs[i % 3], f"distractor {i}"))
        vector(f"distractor {i}")
    m = evaluate_collection(DictEncoder(vectors), Collection("ties", queries, cands), out_dir=tmp_path, run_depth=3)
    pool = sorted(cands, key=lambda c: c.lang)   # the evaluation's pool order (stable by language)
    expected = {q.id: brute_force_preference(q, vectors[q.text], pool, vectors) for q in queries}
    rows = [json.loads(line) for line in (tmp_path / "per_query.jsonl").read_text().splitlines()]
    got = {r["query"]: r["language_preference"] for r in rows if r["setting"] == "multi"}
    assert got == pytest.approx(expected)
    by_lang = {x: np.mean([v for q, v in expected.items() if q.endswith(x) and v is not None]) for x in langs}
    assert m["language_preference"]["per_language"] == pytest.approx(by_lang)
    assert m["language_preference"]["mean"] == pytest.approx(np.mean(list(by_lang.values())))
    assert json.loads((tmp_path / "metrics.json").read_text())["language_preference"] == m["language_preference"]
    # the run file keeps its own depth although the search went deeper for the top 10
    run = (tmp_path / "runs" / "multi.trec").read_text().splitlines()
    assert len(run) == 3 * len(queries)
    assert all(r["setting"] != "mono" or "language_preference" not in r for r in rows)
