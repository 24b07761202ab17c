"""Paired significance tests on cases whose answer is known."""

import json

import numpy as np
import pytest
from scipy import stats

from mixlingual.errors import MixlingualError
from mixlingual.stats import (
    bootstrap_p, clustered_comparison, holm_adjust, pair_scores, paired_bootstrap_test, paired_randomization_test,
    same_seeds)


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


def _simulated_sweep(rng, sizes, *, n_seeds=1, seed_sd=0.0, effect=0.0):
    """Two systems on parallel questions (`sizes`: rows per question). Each row's score = question
    difficulty + a system-by-question effect shared by the question's rows (mean 0) + small
    per-row noise + a run-level offset per (system, seed) with sd `seed_sd` (a training run that
    happened to come out better or worse everywhere) + `effect` for system B only. The true
    effect - over questions and training runs - is `effect`."""
    codes = np.repeat(np.arange(len(sizes)), sizes)
    difficulty = rng.uniform(0.3, 0.9, len(sizes))[codes]

    def system(shift):
        shared = rng.normal(0, 0.05, len(sizes))[codes]
        runs = rng.normal(0, seed_sd, (n_seeds, 1))
        return difficulty + shared + shift + runs + rng.normal(0, 0.01, (n_seeds, codes.size))

    return system(0.0), system(effect), codes


N_SIMS, RESAMPLES = 1000, 199


def _coverage(make, *, effect=0.0, per_query=0):
    """Share of N_SIMS simulated sweeps whose 95% interval covers the true effect, share with
    p <= .05, and share of the first `per_query` sweeps where the per-query sign flip gives
    p <= .05 (it costs 10 ms a sweep). Every simulation also checks that p <= .05 comes only with
    an interval that excludes 0."""
    rng = np.random.default_rng(11)
    covered = rejected = per_query_rejected = 0
    for i in range(N_SIMS):
        a, b, groups = make(rng)
        seeds = list(range(a.shape[0]))
        res = clustered_comparison(a, b, groups, seeds_a=seeds, seeds_b=seeds, n_resamples=RESAMPLES, seed=i)
        covered += res.ci_low <= effect <= res.ci_high
        rejected += res.p_value <= 0.05
        assert res.p_value > 0.05 or not res.ci_low <= 0 <= res.ci_high, (i, res)
        if i < per_query:
            per_query_rejected += paired_randomization_test(a.mean(0), b.mean(0), n_resamples=RESAMPLES,
                                                            seed=i).p_value <= 0.05
    return covered / N_SIMS, rejected / N_SIMS, per_query_rejected / max(per_query, 1)


def _within_monte_carlo_error(observed: float, expected: float) -> bool:
    """|observed - expected| <= 3 Monte Carlo standard errors of a share over N_SIMS simulations:
    sqrt(.94 * .06 / 1000) = .0075 at 94% coverage (6% rejection), so the band is about +-.022
    (+-.03 at 85% coverage); today's .90-.98 was +-7 standard errors."""
    return abs(observed - expected) <= 3 * np.sqrt(expected * (1 - expected) / N_SIMS)


# Expected rates of each design: 20,000 simulations of the same design from another generator seed
# (Monte Carlo sd <= .003, docs/statistics.md lists them), 199 resamples per interval as here.
def _equal(n_groups, n_rows=11):
    return np.full(n_groups, n_rows)


def _mlqa_like(rng, n_groups=200):
    return rng.integers(2, 8, n_groups)    # 2-7 rows per question, as MLQA-R's language versions


NULL_DESIGNS = {
    # name: (make one sweep, expected coverage of 0, expected share of p <= .05)
    "1 seed": (lambda rng: _simulated_sweep(rng, _equal(100)), 0.936, 0.054),
    "3 seeds, no run-level variation": (lambda rng: _simulated_sweep(rng, _equal(100), n_seeds=3), 0.935, 0.055),
    "1 seed, 2-7 rows per question": (lambda rng: _simulated_sweep(rng, _mlqa_like(rng)), 0.939, 0.052),
}


@pytest.mark.parametrize("design", list(NULL_DESIGNS))
def test_interval_and_p_hold_their_level_where_the_per_query_test_does_not(design):
    # 1,000 simulated nulls: the interval covers 0, and p rejects, at the rates expected for the
    # design (nominal 95% / 5%; the percentile bootstrap over 100-200 groups with 199 resamples
    # covers about 1.5 points short, and p counts the observed effect in each tail: 5.2-5.5%);
    # the per-query sign flip, treating correlated rows as independent, rejects far above 5%
    make, coverage, rejection = NULL_DESIGNS[design]
    covered, rejected, per_query = _coverage(make, per_query=200 if design == "1 seed" else 0)
    assert _within_monte_carlo_error(covered, coverage), (covered, coverage)
    assert _within_monte_carlo_error(rejected, rejection), (rejected, rejection)
    if design == "1 seed":
        assert per_query > 0.30, per_query    # about .55: 15 binomial standard errors above .05


@pytest.mark.parametrize("n_seeds, expected", [(2, 0.752), (3, 0.839), (5, 0.893)])
def test_interval_widens_with_real_run_to_run_variation(n_seeds, expected):
    # Every training run is offset by N(0, .02) on all its queries, about as large as the
    # question-level noise of the effect. The interval must resample seeds to cover 0: with the
    # seed level replaced by fixed weights (every seed once) coverage falls to .54 / .65 / .71.
    # With 2-5 seeds even the two-level bootstrap falls short of 95% (a bootstrap over 2-5 values
    # underestimates their spread and has no t quantiles): docs/statistics.md says so.
    make = lambda rng: _simulated_sweep(rng, _equal(60), n_seeds=n_seeds, seed_sd=0.02)   # noqa: E731
    covered, _, _ = _coverage(make)
    assert _within_monte_carlo_error(covered, expected), (covered, expected)


def test_interval_of_a_real_effect_on_questions_of_unequal_size():
    # 2-7 rows per question and a true effect of +0.2: the effect is a ratio (the drawn groups'
    # differences over the drawn groups' rows); with the denominator held at the full row count, a
    # resample that draws more rows also draws more effect, and the interval covers 0.2 about 99%
    # of the time instead of 94%
    make = lambda rng: _simulated_sweep(rng, _mlqa_like(rng), effect=0.2)   # noqa: E731
    covered, rejected, _ = _coverage(make, effect=0.2)
    assert _within_monte_carlo_error(covered, 0.939), covered
    assert rejected == 1.0


def test_bootstrap_p_by_hand():
    # 9 draws, 2 at or below 0: p = 2 (2 + 1) / (9 + 1); none below: 2 / 10; all exactly 0: 1
    assert bootstrap_p(np.array([-1, 0, 1, 2, 3, 4, 5, 6, 7.0])) == pytest.approx(0.6)
    assert bootstrap_p(np.arange(1, 10.0)) == pytest.approx(0.2)
    assert bootstrap_p(np.zeros(9)) == 1.0


@pytest.mark.parametrize("n_resamples", [19, 40, 199, 200, 999, 2000])
def test_p_below_five_percent_only_with_an_interval_that_excludes_zero(n_resamples):
    # the rows: run-to-run noise that the interval resamples, different numbers of
    # resamples; p < .05 must never stand beside a 95% interval containing 0
    rng = np.random.default_rng(n_resamples)
    groups = np.repeat(np.arange(40), 5)
    for i in range(30):
        a = rng.uniform(0.4, 0.8, 200) + rng.normal(0, 0.01, (3, 200))
        b = a + rng.normal(0.01, 0.01) + rng.normal(0, 0.02, (3, 1)) + rng.normal(0, 0.02, 200)
        res = clustered_comparison(a, b, groups, seeds_a=[0, 1, 2], seeds_b=[0, 1, 2],
                                   n_resamples=n_resamples, seed=i)
        assert res.p_value >= 0.05 or not res.ci_low <= 0 <= res.ci_high, (i, res)


def test_interval_widens_with_seed_variation_and_p_follows_it():
    rng = np.random.default_rng(12)
    groups = np.repeat(np.arange(40), 5)
    a = rng.uniform(0.4, 0.8, 200) + rng.normal(0, 0.01, (3, 200))
    seeds = [0, 1, 2]
    steady = clustered_comparison(a, a + 0.02, groups, seeds_a=seeds, seeds_b=seeds, n_resamples=2000, seed=1)
    assert steady.seeds_paired and steady.mean_diff == pytest.approx(0.02)
    assert steady.ci_low == pytest.approx(0.02) and steady.ci_high == pytest.approx(0.02)
    assert steady.p_value == pytest.approx(2 / 2001)          # no draw at or below 0
    offsets = np.array([[-0.03], [0.0], [0.03]])        # run-to-run noise of system B only
    noisy = clustered_comparison(a, a + 0.02 + offsets, groups, seeds_a=seeds, seeds_b=seeds,
                                 n_resamples=2000, seed=1)
    # the old cluster sign flip held the runs fixed and gave p < .01 here, beside this interval
    assert noisy.ci_low < 0 < noisy.ci_high and noisy.p_value > 0.05
    unpaired = clustered_comparison(a, a[:2] + 0.02, groups, n_resamples=2000, seed=1)
    assert not unpaired.seeds_paired and unpaired.ci_low < 0.02 < unpaired.ci_high
    with pytest.raises(MixlingualError, match="equally many seeds"):
        clustered_comparison(a, a[:2], groups, paired_seeds=True)
    with pytest.raises(MixlingualError, match="cluster labels"):
        clustered_comparison(a, a, groups[:-1])
    with pytest.raises(MixlingualError, match="seeds_b: 2 seeds given for 3 rows"):
        clustered_comparison(a, a, groups, seeds_a=seeds, seeds_b=[0, 1])


def test_seeds_pair_only_when_both_ran_the_same_seed_list():
    # as many seeds a side is not enough: seeds 0-2 and 3-5 are different training runs
    rng = np.random.default_rng(13)
    groups = np.repeat(np.arange(20), 3)
    a, b = rng.random((3, 60)), rng.random((3, 60))
    assert not clustered_comparison(a, b, groups, n_resamples=50).seeds_paired          # seeds unknown
    assert not clustered_comparison(a, b, groups, seeds_a=[0, 1, 2], seeds_b=[3, 4, 5], n_resamples=50).seeds_paired
    assert not clustered_comparison(a, b, groups, seeds_a=[0, 1, 2], seeds_b=[0, 2, 1], n_resamples=50).seeds_paired
    assert clustered_comparison(a, b, groups, seeds_a=[0, 1, 2], seeds_b=[0, 1, 2], n_resamples=50).seeds_paired
    assert same_seeds([0, 1], [0, 1]) and not same_seeds([None, 1], [None, 1]) and not same_seeds([], [])


def _write_cell(cell, rows):
    path = cell / "eval" / "dev" / "per_query.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_sweep_comparison_resamples_question_groups(tmp_path):
    from mixlingual.experiments.sweep.aggregate import Group, compare_groups

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
    assert paired_randomization_test(np.zeros(88), np.repeat(shifts, 11)).p_value < 0.01   # 88 "independent" rows
    assert row["p_value"] > 0.2 and row["dropped_queries"] == 0
    assert row["ci_low"] < 0 < row["ci_high"] and row["p_holm"] == row["p_value"]


def test_question_group_of_a_row():
    from mixlingual.experiments.sweep.aggregate import question_group

    assert question_group({"query": "de:572", "qlang": "de", "group": "g9"}) == "g9"
    assert question_group({"query": "de:572", "qlang": "de", "clang": "en"}) == "572"   # no group field
    assert question_group({"query": "572", "qlang": "de"}) == "572"


def test_dropped_queries_count_what_either_side_lost(tmp_path):
    from mixlingual.experiments.sweep.aggregate import Group, compare_groups

    # mono: questions q0-q4 (one row each); the baseline's seed 1 lacks q1, the other group's
    # seed 0 lacks q2, and only the baseline has q5: 3 of the 6 rows seen cannot be compared.
    # multi: q0-q4 in every seed of both: nothing lost (the count is per setting).
    def rows(mono_questions):
        return ([{"setting": "mono", "query": f"en:q{q}", "qlang": "en", "clang": "en", "map": 0.5 + 0.01 * q}
                 for q in mono_questions] +
                [{"setting": "multi", "query": f"en:q{q}", "qlang": "en", "map": 0.4} for q in range(5)])

    layout = {"a": {0: rows([0, 1, 2, 3, 4, 5]), 1: rows([0, 2, 3, 4, 5])},
              "b": {0: rows([0, 1, 3, 4]), 1: rows([0, 1, 2, 3, 4])}}
    groups = []
    for name, seeds in layout.items():
        group = Group(name, name, {}, seeds=list(seeds))
        for seed, seed_rows in seeds.items():
            _write_cell(tmp_path / f"{name}-{seed}", seed_rows)
            group.cell_dirs.append(tmp_path / f"{name}-{seed}")
        groups.append(group)
    by_setting = {r["setting"]: r for r in compare_groups(groups, ["dev"], baseline="a", n_resamples=100)}
    assert by_setting["mono"]["n_queries"] == 3 and by_setting["mono"]["dropped_queries"] == 3
    assert by_setting["multi"]["n_queries"] == 5 and by_setting["multi"]["dropped_queries"] == 0
    assert by_setting["mono"]["seeds_paired"]
