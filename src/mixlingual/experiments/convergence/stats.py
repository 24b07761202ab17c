"""Means over seeds with 95% intervals, and differences between recipes, for convergence reports.

The unit is the training seed: each seed's curve gives one steps-to-target and one final value,
and the interval says how much those move from one training run to the next.

The interval is a **percentile bootstrap over seeds** (10,000 resamples of the seeds with
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
"""

from __future__ import annotations

import numpy as np

RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
LEVEL = 0.95


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


def group_per_seed(per_seed_by_lang: dict[str, dict]) -> dict:
    """{lang: {seed: value}} -> {seed: mean over the languages with a value for that seed (None if none)}."""
    seeds = sorted({s for values in per_seed_by_lang.values() for s in values}, key=str)
    out = {}
    for seed in seeds:
        present = [v[seed] for v in per_seed_by_lang.values() if v.get(seed) is not None]
        out[seed] = float(np.mean(present)) if present else None
    return out
