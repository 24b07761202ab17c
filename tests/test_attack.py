"""Black-box typo attack with a fake deterministic encoder: budget, monotonicity, cost, seeding."""

import numpy as np
import pytest

from mixlingual.data.records import Candidate, Collection, Query
from mixlingual.errors import ConfigError
from mixlingual.experiments.robustness.attack import AttackConfig, attack_collection, rank_and_margin


class BagOfCharsEncoder:
    """Deterministic: a text is the normalized sum of fixed random vectors of its character bigrams."""

    def __init__(self, dim=24):
        self.dim, self.calls = dim, 0

    def _vec(self, gram):
        seed = sum(ord(c) * 31 ** i for i, c in enumerate(gram)) % (2 ** 32)
        return np.random.default_rng(seed).normal(size=self.dim)

    def encode(self, texts, kind="query", batch_size=64):
        if kind == "query":
            self.calls += len(texts)
        out = np.stack([sum((self._vec(t[i:i + 2]) for i in range(max(1, len(t) - 1))), np.zeros(self.dim))
                        for t in texts])
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


WORDS = ["river", "castle", "king", "battle", "north", "ocean", "winter", "harvest", "bridge", "market"]


def _collection():
    rng = np.random.default_rng(0)
    queries, cands = [], []
    for i in range(12):
        words = rng.choice(WORDS, 4, replace=False)
        queries.append(Query(f"q{i}", "en" if i % 2 else "de", " ".join(words[:3]), f"g{i}"))
        cands.append(Candidate(f"c{i}-en", "en", " ".join(words), (f"g{i}",)))
        cands.append(Candidate(f"c{i}-de", "de", " ".join(words[::-1]), (f"g{i}",)))
    return Collection("toy", queries, cands)


def damerau(a, b):
    d = np.zeros((len(a) + 1, len(b) + 1), int)
    d[:, 0], d[0, :] = range(len(a) + 1), range(len(b) + 1)
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i, j] = min(d[i, j], d[i - 2, j - 2] + 1)
    return d[-1, -1]


@pytest.mark.parametrize("budget", [0, 1, 3])
def test_budget_respected_and_rank_never_improves(budget):
    encoder = BagOfCharsEncoder()
    report = attack_collection(encoder, _collection(), AttackConfig(budget=budget, tries_per_step=8, seed=1))
    assert report["summary"]["n"] == 12
    for q in report["queries"]:
        assert q["edits"] <= budget and damerau(q["original"], q["adversarial"]) <= budget
        assert q["rank_after"] >= q["rank_before"]
        assert (q["edits"] == 0) == (q["adversarial"] == q["original"])
    # cost accounting: every query text the attack encoded is counted
    assert report["summary"]["model_queries"] == encoder.calls
    if budget == 0:
        assert report["summary"]["model_queries"] == 12 and report["summary"]["mean_rank_drop"] == 0


def test_attack_hurts_and_is_seeded():
    config = AttackConfig(budget=4, tries_per_step=16, seed=3)
    a = attack_collection(BagOfCharsEncoder(), _collection(), config)
    b = attack_collection(BagOfCharsEncoder(), _collection(), config)
    assert a["queries"] == b["queries"]
    s = a["summary"]
    assert s["mean_rank_after"] > s["mean_rank_before"] and s["mrr@10_after"] < s["mrr@10_before"]
    assert 0 <= s["top1_flipped_share"] <= s["r@1_before"]
    assert set(a["per_language"]) == {"en", "de"} and sum(v["n"] for v in a["per_language"].values()) == 12


def test_mono_pool_and_sampling():
    report = attack_collection(BagOfCharsEncoder(), _collection(),
                               AttackConfig(budget=1, pool="mono", max_queries=5, seed=0))
    assert report["summary"]["n"] == 5
    with pytest.raises(ConfigError, match="pool"):
        AttackConfig(pool="cross")


def test_rank_counts_ties_against_the_relevant_candidate():
    scores = np.array([[0.5, 0.9, 0.5, 0.1]])
    relevant = np.array([[True, False, False, False]])
    ranks, margins = rank_and_margin(scores, relevant)
    assert ranks[0] == 3 and margins[0] == pytest.approx(-0.4)


def test_per_query_rows_carry_group_and_the_metrics_the_summary_needs():
    report = attack_collection(BagOfCharsEncoder(), _collection(), AttackConfig(budget=3, tries_per_step=16, seed=3))
    groups = {q.id: q.group for q in _collection().queries}
    rows = report["queries"]
    assert any(r["rank_after"] > r["rank_before"] for r in rows)   # the attack did something to check
    for r in rows:
        assert r["group"] == groups[r["query_id"]]
        for when in ("before", "after"):
            rank = r[f"rank_{when}"]
            assert r[f"mrr@10_{when}"] == pytest.approx(1 / rank if rank <= 10 else 0.0)
            assert r[f"r@1_{when}"] == (1.0 if rank == 1 else 0.0)
    # the summary is the mean of the per-query values
    s = report["summary"]
    for name in ("mrr@10", "r@1"):
        for when in ("before", "after"):
            assert s[f"{name}_{when}"] == pytest.approx(np.mean([r[f"{name}_{when}"] for r in rows]))
