"""The statistics every study uses: paired tests over queries, the clustered two-level bootstrap
of the sweeps and robustness summaries, Holm's adjustment, and intervals over training seeds.

Paired significance tests over per-query scores.

Two systems evaluated on the same queries give two score vectors `a` and `b` (one entry per
query, e.g. average precision). The question "is system B better than A, or is the difference
what the choice of queries alone would give?" is answered by two standard paired tests:

* `paired_randomization_test` - the sign-flip (Fisher-Pitman) randomization test: under the null
  hypothesis the two systems are exchangeable on every query, so each per-query difference is
  equally likely to carry either sign. The p-value is the share of random sign assignments whose
  mean difference is at least as extreme as the observed one (two-sided). When there are few
  queries (2^n <= `n_resamples`) every assignment is enumerated and the p-value is exact.
  Smucker et al. (2007) recommend it for IR; the image-text report uses it (no question groups).
* `paired_bootstrap_test` - resamples queries with replacement; returns a percentile confidence
  interval of the mean difference and the share of resamples whose mean difference falls on
  the other side of zero (the usual "bootstrap p-value", two-sided).

Both treat every query as an independent sample. That is wrong for parallel benchmarks: the 11
language versions of one XQuAD-R question (and its 110 cross-lingual (query, target language)
rows) share the question's difficulty, so they count as far fewer than 11 or 110 samples, and
the per-query tests reject far above their nominal rate when two systems do not differ (see
tests/test_significance.py). `clustered_comparison` is the design-matched analysis the sweep
report uses (docs/statistics.md):

* the unit of resampling is the parallel question group (`clusters`);
* effect = mean per-row difference of the seed-averaged scores (B minus A);
* one set of two-level bootstrap draws - resample each system's seeds (jointly when both ran the
  same seeds), then question groups - gives both numbers:
  - 95% interval: the percentile interval of the drawn effects;
  - p-value: twice the smaller share of draws on either side of 0 (`bootstrap_p`).
  Both therefore answer the same question ("would other questions and other training runs give
  an effect of the other sign?"), and p < 1 - confidence only when the interval excludes 0.

An earlier version took p from a sign flip over question groups on the seed-averaged scores; it
held the trained models fixed while the interval resampled them, so a row could read p < .001
beside an interval containing 0. A seed-level exact sign flip is no remedy: with 5 seeds it
cannot go below 2/32 = .0625.

All are seeded, so a report is reproducible bit for bit.

**Over seeds only** (`seed_summary`, `seed_difference`; the convergence reports): a number that
exists once per training run (steps to 95% of the final value, the final value) has no question
groups to resample. Its interval is a **percentile bootstrap over seeds** (10,000 resamples of the seeds with
replacement, numpy generator seeded with 0, so reports are reproducible), not a t-interval,
because:

* steps-to-target is discrete (multiples of the evaluation interval, e.g. 0/25/50/75/100) and
  bounded by the first and last evaluated step; a t-interval assumes a normal mean and with 3
  seeds (t = 4.30) easily runs below step 0 or past the last step, while the bootstrap stays
  within what was observed;
* it is the seed level of the sweep comparisons (docs/statistics.md), so the two reports agree.

The price: with 3-5 seeds it draws from only 3-5 values and is too narrow (docs/statistics.md
simulates the sweeps' two-level interval: 84% coverage for a nominal 95% with 3 seeds when
run-to-run variation dominates); when all seeds agree it is [x, x]. With one
seed there is no interval (low = high = None). Per-seed values are kept so readers can see them.

Differences between recipes are paired by seed (seed i of one with seed i of the other, one
resample of seed indices for both) when both recipes ran exactly the same seeds; otherwise each
recipe's seeds are resampled independently.

Sweeps (`experiments/sweep`), robustness summaries (`experiments/robustness`), convergence
(`experiments/convergence`) and the image-text report all import this one module; the defaults
(RESAMPLES draws, BOOTSTRAP_SEED, LEVEL) are shared, so their intervals read alike.
One module on purpose: the tests compare the clustered analysis with the per-query tests on the
same simulated data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from mixlingual.errors import MixlingualError

RESAMPLES = 10_000     # bootstrap draws (and randomization resamples) unless a caller asks otherwise
BOOTSTRAP_SEED = 0     # numpy generator seed: every interval and p is reproducible bit for bit
LEVEL = 0.95           # confidence of the intervals


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


def _abs_mean(diff: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.abs(np.mean(diff, axis=axis))


def paired_randomization_test(a, b, *, n_resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED,
                              batch: int = 1000) -> PairedTestResult:
    """Two-sided sign-flip randomization test of mean(b - a) = 0.

    `scipy.stats.permutation_test` on the per-query differences with
    ``permutation_type="samples"`` (one sample: each difference's sign flipped independently)
    and the statistic |mean|, so "at least as extreme" is two-sided. With 2^n <= `n_resamples`
    every assignment is enumerated and p is exact; otherwise p counts the observed assignment
    itself ((k + 1) / (R + 1)), so it is never 0 and is a valid (slightly conservative) p-value
    for a Monte Carlo test. scipy compares with a relative tolerance, so float noise does not
    decide ties (identical systems give p = 1).
    """
    a, b = _as_pairs(a, b)
    diff = b - a
    result = stats.permutation_test((diff,), _abs_mean, permutation_type="samples", vectorized=True,
                                    n_resamples=n_resamples, batch=batch, alternative="greater",
                                    rng=np.random.default_rng(seed))
    enumerated = len(result.null_distribution)
    return PairedTestResult("paired-randomization", diff.size, float(a.mean()), float(b.mean()),
                            float(diff.mean()), float(result.pvalue), enumerated,
                            exact=enumerated == 2 ** diff.size)


def paired_bootstrap_test(a, b, *, n_resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED,
                          confidence: float = LEVEL, batch: int = 1000) -> PairedTestResult:
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


def same_seeds(seeds_a, seeds_b) -> bool:
    """Whether two systems' seed lists pair: both known (no None), in the same order, identical.

    Equal counts are not enough: seeds 0-2 of one recipe and seeds 3-5 of another are different
    training runs, and pairing them would treat unrelated run-to-run noise as shared."""
    if seeds_a is None or seeds_b is None:
        return False
    seeds_a, seeds_b = list(seeds_a), list(seeds_b)
    return bool(seeds_a) and None not in seeds_a and seeds_a == seeds_b


@dataclass
class ClusteredComparison:
    """Effect of B minus A with its two-level bootstrap interval and p-value (one set of draws)."""

    test: str
    n: int                 # paired rows (queries, or (query, target language) pairs)
    n_clusters: int        # parallel question groups: the unit of resampling
    n_seeds_a: int
    n_seeds_b: int
    seeds_paired: bool     # seeds resampled jointly (the two systems ran the same seeds)
    mean_a: float
    mean_b: float
    mean_diff: float       # the effect: mean over rows of the seed-averaged b - a
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float         # two-sided, from the same bootstrap draws as the interval
    n_resamples: int

    def to_dict(self) -> dict:
        return asdict(self)


def _as_runs(runs, name: str) -> np.ndarray:
    """(seeds, rows) float matrix; a 1-D vector is one seed."""
    arr = np.asarray(runs, dtype=np.float64)
    arr = arr[None, :] if arr.ndim == 1 else arr
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise MixlingualError(f"{name}: expected a (seeds, queries) matrix with at least one of each, "
                              f"got shape {np.shape(runs)}")
    if not np.isfinite(arr).all():
        raise MixlingualError(f"{name}: non-finite score (NaN or inf)")
    return arr


def cluster_totals(runs: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """(seeds, clusters) sums of each seed's row scores per cluster (`codes`: 0..n_clusters-1)."""
    return np.stack([np.bincount(codes, weights=row, minlength=n_clusters) for row in runs])


def _resample_counts(rng: np.random.Generator, size: int, n: int) -> np.ndarray:
    """(size, n) how often each of n units is drawn in each of `size` resamples of n with replacement."""
    draws = rng.integers(0, n, size=(size, n)) + np.arange(size)[:, None] * n
    return np.bincount(draws.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)


def two_level_bootstrap(totals_a: np.ndarray, totals_b: np.ndarray, sizes: np.ndarray, *,
                        paired_seeds: bool, n_resamples: int, rng: np.random.Generator,
                        batch: int = 500) -> np.ndarray:
    """Bootstrap distribution of the effect, resampling seeds and then question groups.

    Each resample draws each system's seeds with replacement (the same seed indices for both
    when `paired_seeds`), then draws the question groups with replacement, and returns
    sum_g c_g (mean_b*_g - mean_a*_g) / sum_g c_g n_g - the per-row mean difference on the
    resampled groups, with mean*_g a group's total averaged over the resampled seeds. With one
    seed a side the seed level is a no-op and this is the plain cluster bootstrap.
    """
    seeds_a, n_groups = totals_a.shape
    seeds_b = totals_b.shape[0]
    effects = np.empty(n_resamples)
    done = 0
    while done < n_resamples:
        size = min(batch, n_resamples - done)
        w_a = _resample_counts(rng, size, seeds_a) / seeds_a
        w_b = w_a if paired_seeds else _resample_counts(rng, size, seeds_b) / seeds_b
        groups = _resample_counts(rng, size, n_groups)
        per_group = w_b @ totals_b - w_a @ totals_a                     # (size, groups)
        effects[done:done + size] = (per_group * groups).sum(axis=1) / (groups @ sizes)
        done += size
    return effects


def bootstrap_p(effects: np.ndarray) -> float:
    """Two-sided p of "effect = 0" from bootstrap draws of the effect: twice the smaller share of
    draws at or beyond 0 on either side, counting the observed effect as one draw of each tail
    ((k + 1) / (R + 1), Davison & Hinkley 1997, so p is never 0), capped at 1.

    Why it agrees with the percentile interval of the same draws: with R draws and numpy's
    default (linear) quantiles, an interval at level 1 - alpha that contains 0 has at least
    alpha/2 * R draws on each side of 0 (the quantile lies between two order statistics), so
    p >= alpha; p < alpha therefore means the interval excludes 0 (tests/test_significance.py
    checks it over many R)."""
    draws = np.asarray(effects, dtype=np.float64)
    below, above = int(np.sum(draws <= 0)), int(np.sum(draws >= 0))
    return min(1.0, 2.0 * (min(below, above) + 1) / (draws.size + 1))


def clustered_comparison(runs_a, runs_b, clusters, *, seeds_a=None, seeds_b=None, paired_seeds: bool | None = None,
                         n_resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED, confidence: float = LEVEL) -> ClusteredComparison:
    """Compare B with A on paired rows grouped into parallel question groups, over seeds.

    `runs_a` / `runs_b`: (seeds, rows) scores of each system (a 1-D vector is one seed), the rows
    aligned between the two; `clusters`: the question group of each row. `seeds_a` / `seeds_b`:
    the training seed of each row of `runs_a` / `runs_b`. `paired_seeds`: resample seed i of A and
    seed i of B together; None = paired only when both seed lists are given and identical
    (`same_seeds`), never merely because both have as many seeds. Returns the effect (mean over
    rows of the seed-averaged difference), its two-level bootstrap percentile interval and the
    two-sided bootstrap p from the same draws (see the module docstring).
    """
    a, b = _as_runs(runs_a, "runs_a"), _as_runs(runs_b, "runs_b")
    labels = np.asarray(clusters).ravel()
    if a.shape[1] != b.shape[1] or labels.size != a.shape[1]:
        raise MixlingualError(f"clustered comparison needs equally many rows and cluster labels, got "
                              f"{a.shape[1]}, {b.shape[1]} and {labels.size}")
    for name, seeds, runs in (("seeds_a", seeds_a, a), ("seeds_b", seeds_b, b)):
        if seeds is not None and len(seeds) != runs.shape[0]:
            raise MixlingualError(f"{name}: {len(seeds)} seeds given for {runs.shape[0]} rows of scores")
    _, codes = np.unique(labels, return_inverse=True)
    n_clusters = int(codes.max()) + 1
    sizes = np.bincount(codes, minlength=n_clusters).astype(np.float64)
    totals_a, totals_b = cluster_totals(a, codes, n_clusters), cluster_totals(b, codes, n_clusters)
    paired = same_seeds(seeds_a, seeds_b) if paired_seeds is None else paired_seeds
    if paired and a.shape[0] != b.shape[0]:
        raise MixlingualError(f"paired seeds need equally many seeds a side, got {a.shape[0]} and {b.shape[0]}")
    # seed + 1: the stream the interval has always used, so intervals stay what they were
    effects = two_level_bootstrap(totals_a, totals_b, sizes, paired_seeds=paired, n_resamples=n_resamples,
                                  rng=np.random.default_rng(seed + 1))
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(effects, [tail, 1.0 - tail])
    mean_a, mean_b = float(a.mean()), float(b.mean())
    return ClusteredComparison("two-level-bootstrap", a.shape[1], n_clusters, a.shape[0], b.shape[0], paired,
                               mean_a, mean_b, mean_b - mean_a, float(low), float(high), confidence,
                               bootstrap_p(effects), n_resamples)


# ----- intervals over training seeds (convergence) --------------------------------------------
def _bootstrap_means(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """RESAMPLES means of `values` resampled with replacement."""
    return values[rng.integers(0, values.size, size=(RESAMPLES, values.size))].mean(axis=1)


def _percentiles(draws: np.ndarray) -> tuple[float, float]:
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)


def seed_summary(per_seed: dict) -> dict:
    """{seed: value or None} -> mean, 95% bootstrap interval over seeds (None with < 2), n, per-seed values.

    Seeds whose value is None (no target: the final value was not positive) are left out of the
    mean and counted in `n_missing`.
    """
    kept = {str(k): float(v) for k, v in per_seed.items() if v is not None}
    values = np.array(list(kept.values()), dtype=float)
    out = {"mean": float(values.mean()) if values.size else None, "low": None, "high": None,
           "n_seeds": int(values.size), "n_missing": len(per_seed) - len(kept), "per_seed": kept}
    if values.size >= 2:
        out["low"], out["high"] = _percentiles(_bootstrap_means(values, np.random.default_rng(BOOTSTRAP_SEED)))
    return out


def seed_difference(per_seed_a: dict, per_seed_b: dict) -> dict:
    """A - B over seeds: mean difference and its 95% bootstrap interval (paired when the seeds match).

    Paired: both have the same seed keys (all values present); the per-seed differences are
    resampled. Unpaired: each side's seeds are resampled independently and the means subtracted.
    No interval when either side has fewer than 2 seeds (paired: fewer than 2 pairs).
    """
    a = {str(k): float(v) for k, v in per_seed_a.items() if v is not None}
    b = {str(k): float(v) for k, v in per_seed_b.items() if v is not None}
    paired = bool(a) and set(a) == set(b) and len(a) == len(per_seed_a) == len(per_seed_b)
    out = {"mean": None, "low": None, "high": None, "paired": paired, "n_seeds_a": len(a), "n_seeds_b": len(b)}
    if not a or not b:
        return out
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    if paired:
        diffs = np.array([a[k] - b[k] for k in sorted(a)])
        out["mean"] = float(diffs.mean())
        if diffs.size >= 2:
            out["low"], out["high"] = _percentiles(_bootstrap_means(diffs, rng))
        return out
    va, vb = np.array(list(a.values())), np.array(list(b.values()))
    out["mean"] = float(va.mean() - vb.mean())
    if va.size >= 2 and vb.size >= 2:
        draws_a = _bootstrap_means(va, rng)
        out["low"], out["high"] = _percentiles(draws_a - _bootstrap_means(vb, rng))
    return out
