"""Paired significance tests on cases whose answer is known."""

import numpy as np
import pytest
from scipy import stats

from mixlingual.errors import MixlingualError
from mixlingual.experiments.significance import (
    holm_adjust, pair_scores, paired_bootstrap_test, paired_randomization_test)


def test_identical_systems_give_p_one():
    a = np.random.default_rng(1).random(200)
    assert paired_randomization_test(a, a.copy(), n_resamples=2000).p_value == pytest.approx(1.0)
    assert paired_bootstrap_test(a, a.copy(), n_resamples=2000).p_value == pytest.approx(1.0)


def test_clearly_different_systems_give_small_p():
    rng = np.random.default_rng(2)
    a = rng.random(300) * 0.5
    b = a + 0.1 + rng.normal(0, 0.02, 300)
    rand = paired_randomization_test(a, b, n_resamples=5000, seed=3)
    boot = paired_bootstrap_test(a, b, n_resamples=5000, seed=3)
    assert rand.p_value < 0.01 and boot.p_value < 0.01
    assert rand.mean_diff == pytest.approx(np.mean(b - a))
    assert boot.ci_low > 0.05 and boot.ci_high < 0.15


def test_exact_small_case_by_hand():
    # diffs = (1, 2, 3): of the 8 sign assignments, |mean| >= 2 for (+,+,+) and (-,-,-) only.
    res = paired_randomization_test([0, 0, 0], [1, 2, 3])
    assert res.exact and res.n_resamples == 8
    assert res.p_value == pytest.approx(2 / 8)


def test_matches_scipy_permutation_test():
    rng = np.random.default_rng(4)
    a = rng.random(40)
    b = a + rng.normal(0.05, 0.2, 40)
    ours = paired_randomization_test(a, b, n_resamples=20000, seed=5)
    ref = stats.permutation_test((a, b), lambda x, y: np.mean(y - x), permutation_type="samples",
                                 n_resamples=20000, random_state=5, alternative="two-sided")
    assert ours.p_value == pytest.approx(ref.pvalue, abs=0.02)


def test_seeded_reproducible():
    rng = np.random.default_rng(6)
    a, b = rng.random(50), rng.random(50)
    assert paired_randomization_test(a, b, seed=7).p_value == paired_randomization_test(a, b, seed=7).p_value
    assert paired_bootstrap_test(a, b, seed=7).ci_low == paired_bootstrap_test(a, b, seed=7).ci_low


def test_bad_input_is_rejected():
    with pytest.raises(MixlingualError, match="equally many"):
        paired_randomization_test([1, 2], [1])
    with pytest.raises(MixlingualError, match="non-finite"):
        paired_bootstrap_test([1, float("nan")], [1, 2])
    with pytest.raises(MixlingualError, match="share no query"):
        pair_scores({"q1": 1.0}, {"q2": 1.0})


def test_pairing_and_holm():
    keys, a, b = pair_scores({"q1": 0.1, "q2": 0.2, "x": 9}, {"q2": 0.5, "q1": 0.3})
    assert keys == ["q1", "q2"] and list(a) == [0.1, 0.2] and list(b) == [0.3, 0.5]
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_welch_over_seeds_known_case():
    from scipy.stats import ttest_ind

    from mixlingual.experiments.aggregate import welch_p

    a, b = [0.60, 0.61, 0.62], [0.64, 0.66, 0.65]
    assert welch_p(a, b) == pytest.approx(ttest_ind(a, b, equal_var=False).pvalue)
    assert welch_p(a, b) < 0.05
    assert welch_p([0.6], b) is None and welch_p([0.6, 0.6], [0.6, 0.6]) is None
