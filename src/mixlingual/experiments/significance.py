"""Paired significance tests over per-query scores.

Two systems evaluated on the same queries give two score vectors `a` and `b` (one entry per
query, e.g. average precision). The question "is system B better than A, or is the difference
what the choice of queries alone would give?" is answered by two standard paired tests:

* `paired_randomization_test` - the sign-flip (Fisher-Pitman) randomization test: under the null
  hypothesis the two systems are exchangeable on every query, so each per-query difference is
  equally likely to carry either sign. The p-value is the share of random sign assignments whose
  mean difference is at least as extreme as the observed one (two-sided). When there are few
  queries (2^n <= `n_resamples`) every assignment is enumerated and the p-value is exact.
  This is the test the sweep report uses (Smucker et al., 2007, recommend it for IR).
* `paired_bootstrap_test` - resamples queries with replacement; returns a percentile confidence
  interval of the mean difference and the share of resamples whose mean difference falls on
  the other side of zero (the usual "bootstrap p-value", two-sided).

Both are seeded, so a report is reproducible bit for bit.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np

from mixlingual.errors import MixlingualError


@dataclass
class PairedTestResult:
    """Outcome of one paired test: B minus A."""

    test: str
    n: int                 # number of paired queries
    mean_a: float
    mean_b: float
    mean_diff: float       # mean(b - a)
    p_value: float         # two-sided
    n_resamples: int       # resamples drawn (or assignments enumerated when exact)
    exact: bool = False
    ci_low: float | None = None    # bootstrap only: percentile interval of mean(b - a)
    ci_high: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _as_pairs(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise MixlingualError(f"paired test needs equally many scores, got {a.size} and {b.size}")
    if a.size == 0:
        raise MixlingualError("paired test needs at least one query")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise MixlingualError("paired test got a non-finite score (NaN or inf)")
    return a, b


def paired_randomization_test(a, b, *, n_resamples: int = 10_000, seed: int = 0,
                              batch: int = 1000) -> PairedTestResult:
    """Two-sided sign-flip randomization test of mean(b - a) = 0.

    The p-value counts the observed assignment itself ((k + 1) / (R + 1)), so it is never 0
    and is a valid (slightly conservative) p-value for a Monte Carlo test.
    """
    a, b = _as_pairs(a, b)
    diff = b - a
    n = diff.size
    observed = abs(diff.mean())
    # Compare with a small tolerance so that float noise does not decide ties (identical
    # systems must give p = 1).
    tol = 1e-12 * max(1.0, float(np.abs(diff).max()))
    if 2 ** n <= n_resamples:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        stats = np.abs(signs @ diff) / n
        p = float(np.mean(stats >= observed - tol))
        return PairedTestResult("paired-randomization", n, float(a.mean()), float(b.mean()),
                                float(diff.mean()), p, len(signs), exact=True)
    rng = np.random.default_rng(seed)
    extreme = 0
    done = 0
    while done < n_resamples:
        size = min(batch, n_resamples - done)
        signs = rng.choice((-1.0, 1.0), size=(size, n))
        stats = np.abs(signs @ diff) / n
        extreme += int(np.sum(stats >= observed - tol))
        done += size
    p = (extreme + 1) / (n_resamples + 1)
    return PairedTestResult("paired-randomization", n, float(a.mean()), float(b.mean()),
                            float(diff.mean()), float(p), n_resamples)


def paired_bootstrap_test(a, b, *, n_resamples: int = 10_000, seed: int = 0,
                          confidence: float = 0.95, batch: int = 1000) -> PairedTestResult:
    """Paired bootstrap over queries: confidence interval and two-sided p-value of mean(b - a).

    p = 2 * min(P(mean* <= 0), P(mean* >= 0)) over the bootstrap means, capped at 1; with no
    difference at all (every per-query difference 0) p = 1.
    """
    a, b = _as_pairs(a, b)
    diff = b - a
    n = diff.size
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    done = 0
    while done < n_resamples:
        size = min(batch, n_resamples - done)
        idx = rng.integers(0, n, size=(size, n))
        means[done:done + size] = diff[idx].mean(axis=1)
        done += size
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    if np.all(diff == 0):
        p = 1.0
    else:
        p = min(1.0, 2 * min(float(np.mean(means <= 0)), float(np.mean(means >= 0))))
    return PairedTestResult("paired-bootstrap", n, float(a.mean()), float(b.mean()),
                            float(diff.mean()), p, n_resamples, ci_low=float(low), ci_high=float(high))


def holm_adjust(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given), for many comparisons at once."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def pair_scores(scores_a: dict, scores_b: dict) -> tuple[list, np.ndarray, np.ndarray]:
    """Align two {query key: score} maps on their common keys (sorted for determinism).

    Raises when the two share no query; the caller reports how many were unmatched.
    """
    common = sorted(set(scores_a) & set(scores_b), key=str)
    if not common:
        raise MixlingualError("the two systems share no query id; cannot pair their scores")
    return (common, np.array([scores_a[k] for k in common], dtype=np.float64),
            np.array([scores_b[k] for k in common], dtype=np.float64))
