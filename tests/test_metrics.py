"""Metrics against pytrec_eval (trec_eval) and ranx on random runs, plus the tie rule."""

from __future__ import annotations

import numpy as np
import pytest

from mixlingual.evaluation import metrics


def _random_problem(seed: int, nq: int = 40, nc: int = 150):
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((nq, nc))
    relevant = np.zeros((nq, nc), dtype=bool)
    for q in range(nq):
        n_rel = rng.integers(0, 12)  # includes queries with nothing relevant
        relevant[q, rng.choice(nc, size=n_rel, replace=False)] = True
    return scores, relevant


def _as_trec(scores, relevant):
    """Full runs (every candidate scored, so trec_eval's measures have no cut-off of their own)."""
    run = {f"q{q}": {f"d{c}": float(scores[q, c]) for c in range(scores.shape[1])} for q in range(len(scores))}
    qrels = {f"q{q}": {f"d{c}": 1 for c in np.flatnonzero(relevant[q])} for q in range(len(scores))}
    qrels = {q: d for q, d in qrels.items() if d}  # trec_eval only evaluates judged queries
    return run, qrels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_pytrec_eval(seed):
    pytrec_eval = pytest.importorskip("pytrec_eval")  # per test: the hand-computed tests need neither package
    scores, relevant = _random_problem(seed)
    ranks = metrics.relevant_ranks_dense(scores, relevant)
    ours = metrics.per_query_metrics(ranks)
    run, qrels = _as_trec(scores, relevant)
    measures = {"map", "ndcg_cut.10", "recall.100", "recip_rank", "success.1,10"}
    ref = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    judged = [q for q in range(len(scores)) if relevant[q].any()]
    assert len(judged) < len(scores)  # the fixture must contain unjudged queries
    for q in judged:
        r = ref[f"q{q}"]
        assert ours["map"][q] == pytest.approx(r["map"], abs=1e-4)  # trec_eval prints 4 decimals
        assert ours["ndcg@10"][q] == pytest.approx(r["ndcg_cut_10"], abs=1e-4)
        assert ours["recall@100"][q] == pytest.approx(r["recall_100"], abs=1e-4)
        assert ours["r@1"][q] == r["success_1"] and ours["r@10"][q] == r["success_10"]
        first = ranks[q, 0]
        expected_rr10 = r["recip_rank"] if first <= 10 else 0.0
        assert ours["mrr@10"][q] == pytest.approx(expected_rr10, abs=1e-4)
    unjudged = [q for q in range(len(scores)) if not relevant[q].any()]
    for name, values in ours.items():
        assert np.isnan(values[unjudged]).all(), name


@pytest.mark.slow  # ranx JIT-compiles its metrics with numba on first use (2-15 s)
def test_means_match_ranx():
    ranx = pytest.importorskip("ranx")
    scores, relevant = _random_problem(7)
    ranks = metrics.relevant_ranks_dense(scores, relevant)
    ours = metrics.per_query_metrics(ranks)
    run, qrels = _as_trec(scores, relevant)
    judged_run = {q: d for q, d in run.items() if q in qrels}
    report = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(judged_run),
                           ["map", "mrr@10", "ndcg@10", "hit_rate@1", "hit_rate@10", "recall@100"])
    assert metrics.mean_ignoring_nan(ours["map"]) == pytest.approx(report["map"], abs=1e-9)
    assert metrics.mean_ignoring_nan(ours["mrr@10"]) == pytest.approx(report["mrr@10"], abs=1e-9)
    assert metrics.mean_ignoring_nan(ours["ndcg@10"]) == pytest.approx(report["ndcg@10"], abs=1e-9)
    assert metrics.mean_ignoring_nan(ours["r@1"]) == pytest.approx(report["hit_rate@1"], abs=1e-9)
    assert metrics.mean_ignoring_nan(ours["r@10"]) == pytest.approx(report["hit_rate@10"], abs=1e-9)
    assert metrics.mean_ignoring_nan(ours["recall@100"]) == pytest.approx(report["recall@100"], abs=1e-9)


def test_hand_computed_values():
    # relevant at ranks 1, 3 and 6 of a query with 3 relevant candidates
    ranks = np.array([[1.0, 3.0, 6.0]])
    assert metrics.average_precision(ranks)[0] == pytest.approx((1 / 1 + 2 / 3 + 3 / 6) / 3)
    idcg = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    assert metrics.ndcg_at_k(ranks, 10)[0] == pytest.approx((1 + 1 / np.log2(4) + 1 / np.log2(7)) / idcg)
    assert metrics.recall_at_k(ranks, 3)[0] == pytest.approx(2 / 3)
    # one of 4 relevant candidates never ranked (e.g. outside a top-k search): it still counts
    assert metrics.average_precision(ranks, n_relevant=[4])[0] == pytest.approx((1 + 2 / 3 + 0.5) / 4)


def test_pessimistic_tie_rule():
    scores = np.array([[0.5, 0.5, 0.5, 0.1]])
    relevant = np.array([[False, True, True, False]])
    # non-relevant candidate 0 ties and goes first; relevant 1 and 2 keep index order
    assert metrics.relevant_ranks_dense(scores, relevant).tolist() == [[2.0, 3.0]]
    collapsed = metrics.relevant_ranks_dense(np.zeros((1, 5)), np.array([[True, False, False, False, False]]))
    assert collapsed.tolist() == [[5.0]]  # a constant model gets the worst rank, not the best


def test_rank_distance_and_bitext_accuracy():
    best = np.array([[1, 5, 3], [2, np.nan, np.nan], [4, 4, np.nan]], dtype=float)
    out = metrics.rank_distance(best)
    assert out[0] == 4 and np.isnan(out[1]) and out[2] == 0
    assert metrics.bitext_accuracy(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4])) == 0.75
    with pytest.raises(ValueError):
        metrics.bitext_accuracy(np.array([1]), np.array([1, 2]))


def test_pad_ranks_groups_and_sorts():
    out = metrics.pad_ranks(np.array([2, 0, 2, 2]), np.array([9.0, 4.0, 1.0, 5.0]), 4)
    assert out[0].tolist()[:1] == [4.0] and np.isinf(out[1]).all()
    assert out[2].tolist() == [1.0, 5.0, 9.0] and np.isinf(out[3]).all()
    assert metrics.macro_mean({"a": 0.5, "b": None, "c": 1.0}) == 0.75
