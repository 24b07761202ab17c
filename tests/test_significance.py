"""Paired significance tests on cases whose answer is known."""

import json

import numpy as np
import pytest
from scipy import stats

from mixlingual.errors import MixlingualError
from mixlingual.experiments.significance import (
    clustered_comparison, holm_adjust, pair_scores, paired_bootstrap_test, paired_randomization_test)


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


def _null_sweep(rng, n_groups=30, n_langs=11, n_seeds=1, seed_sd=0.0):
    """Two systems with no true difference on parallel questions: each row's score = question
    difficulty + a system-by-question effect shared by the question's language versions (mean 0)
    + small per-row noise (+ a run-level offset per seed when `seed_sd`)."""
    difficulty = rng.uniform(0.3, 0.9, (n_groups, 1))

    def system():
        shared = rng.normal(0, 0.05, (n_groups, 1))
        noise = rng.normal(0, 0.01, (n_seeds, n_groups, n_langs)) + rng.normal(0, seed_sd, (n_seeds, 1, 1))
        return (difficulty + shared + noise).reshape(n_seeds, n_groups * n_langs)

    return system(), system(), np.repeat(np.arange(n_groups), n_langs)


@pytest.mark.parametrize("n_seeds", [1, 3])
def test_clustered_test_holds_its_level_where_the_per_query_test_does_not(n_seeds):
    # 1,000 simulated nulls with 11 correlated language versions per question: the cluster
    # sign-flip rejects at its nominal 5% (+- 2%), the per-query sign-flip far more often, and
    # the 95% interval covers the true effect 0 about 95% of the time (a percentile bootstrap over
    # 30 groups runs slightly short: 92-93% here).
    rng = np.random.default_rng(11)
    clustered, per_query, covered, n_sims = 0, 0, 0, 1000
    for i in range(n_sims):
        a, b, groups = _null_sweep(rng, n_seeds=n_seeds)
        res = clustered_comparison(a, b, groups, n_resamples=199, seed=i)
        clustered += res.p_value <= 0.05
        covered += res.ci_low <= 0 <= res.ci_high
        per_query += paired_randomization_test(a.mean(0), b.mean(0), n_resamples=199, seed=i).p_value <= 0.05
    assert 0.03 <= clustered / n_sims <= 0.07
    assert per_query / n_sims > 0.10
    assert 0.90 <= covered / n_sims <= 0.98


def test_clustered_sign_flip_by_hand():
    # three questions of two rows each; per-question total differences (1, 2, 3): exact p = 2/8,
    # effect = mean row difference = 12 / 6.
    a = np.zeros(6)
    b = np.array([0.5, 0.5, 1.0, 1.0, 1.5, 1.5])
    res = clustered_comparison(a, b, ["q1", "q1", "q2", "q2", "q3", "q3"], n_resamples=1000)
    assert res.exact and res.n_clusters == 3 and res.n == 6
    assert res.p_value == pytest.approx(2 / 8) and res.mean_diff == pytest.approx(1.0)
    # the per-query test counts the 6 rows as independent: 2^6 assignments, p = 2/64
    assert paired_randomization_test(a, b).p_value == pytest.approx(2 / 64)


def test_interval_widens_with_seed_variation_and_seeds_pair():
    rng = np.random.default_rng(12)
    groups = np.repeat(np.arange(40), 5)
    a = rng.uniform(0.4, 0.8, 200) + rng.normal(0, 0.01, (3, 200))
    steady = clustered_comparison(a, a + 0.02, groups, n_resamples=2000, seed=1)
    assert steady.seeds_paired and steady.mean_diff == pytest.approx(0.02)
    assert steady.ci_low == pytest.approx(0.02) and steady.ci_high == pytest.approx(0.02)
    offsets = np.array([[-0.03], [0.0], [0.03]])        # run-to-run noise of system B only
    noisy = clustered_comparison(a, a + 0.02 + offsets, groups, n_resamples=2000, seed=1)
    assert noisy.ci_low < 0 < noisy.ci_high and noisy.p_value < 0.01   # p conditions on the runs
    unpaired = clustered_comparison(a, a[:2] + 0.02, groups, n_resamples=2000, seed=1)
    assert not unpaired.seeds_paired and unpaired.ci_low < 0.02 < unpaired.ci_high
    with pytest.raises(MixlingualError, match="equally many seeds"):
        clustered_comparison(a, a[:2], groups, paired_seeds=True)
    with pytest.raises(MixlingualError, match="cluster labels"):
        clustered_comparison(a, a, groups[:-1])


def _write_cell(cell, rows):
    path = cell / "eval" / "dev" / "per_query.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_sweep_comparison_resamples_question_groups(tmp_path):
    from mixlingual.experiments.aggregate import Group, compare_groups

    # 8 questions x 11 languages; B differs from A by a per-question shift that every language
    # version shares: 88 rows that look decisive one by one, but only 8 independent questions.
    shifts = [0.05] * 5 + [-0.04] * 3
    langs = [f"l{i}" for i in range(11)]

    def rows(shift_of, seed, with_group):
        out = []
        for q, shift in enumerate(shift_of):
            for lang in langs:
                row = {"setting": "mono", "query": f"{lang}:q{q}", "qlang": lang, "clang": lang,
                       "map": 0.5 + shift + 0.001 * seed + 0.0001 * langs.index(lang)}
                out.append({**row, "group": f"q{q}"} if with_group else row)   # older files: no group
        return out

    groups = []
    for name, shift_of in (("a", [0.0] * 8), ("b", shifts)):
        group = Group(name, name, {}, seeds=[0, 1])
        for seed in (0, 1):
            cell = tmp_path / f"{name}-{seed}"
            _write_cell(cell, rows(shift_of, seed, with_group=seed == 0))
            group.cell_dirs.append(cell)
        groups.append(group)
    (row,) = compare_groups(groups, ["dev"], baseline="a", n_resamples=1000)
    assert row["n_queries"] == 88 and row["n_clusters"] == 8 and row["seeds_paired"]
    assert row["mean_diff"] == pytest.approx(np.mean(shifts))
    assert row["p_per_query"] < 0.01                  # 88 "independent" queries
    assert row["p_value"] > 0.2 and row["exact"]      # 8 questions: 2^8 sign flips enumerated
    assert row["ci_low"] < 0 < row["ci_high"] and row["p_holm"] == row["p_value"]


def test_question_group_of_a_row():
    from mixlingual.experiments.aggregate import question_group

    assert question_group({"query": "de:572", "qlang": "de", "group": "g9"}) == "g9"
    assert question_group({"query": "de:572", "qlang": "de", "clang": "en"}) == "572"   # no group field
    assert question_group({"query": "572", "qlang": "de"}) == "572"


def test_sign_flip_normal_limit_matches_the_monte_carlo_test():
    from mixlingual.experiments.significance import paired_randomization_test, sign_flip_normal_p

    rng = np.random.default_rng(3)
    for shift in (0.0, 0.01, 0.03):
        a = rng.random(2000)
        b = a + rng.normal(shift, 0.2, 2000)
        exact = paired_randomization_test(a, b, n_resamples=20_000, seed=1).p_value
        assert sign_flip_normal_p(a, b) == pytest.approx(exact, abs=0.01)
    assert sign_flip_normal_p(a, a) == 1.0
