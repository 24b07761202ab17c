"""Convergence over seeds: per-seed steps, intervals over seeds, language groups, recipe differences."""

import argparse
import json

import pytest
from convergence_fixtures import ramp, write_cell

from mixlingual.errors import ConfigError
from mixlingual.experiments.convergence import report as convergence
from mixlingual.experiments.convergence.runs import derive_language_groups, parse_language_groups
from mixlingual.stats import seed_difference, seed_summary
from mixlingual.experiments.convergence.report import write_convergence_report


def _rows(report, key="languages", metric="mrr@10"):
    name = "lang" if key == "languages" else "group"
    return {(r["strategy"], r[name]): r for r in report[key] if r["metric"] == metric and r["setting"] == "multi"}


def _sweep(tmp_path):
    """hybrid: 3 seeds; x-x: the same 3 seeds; x-y: one seed. Languages as in PAIRS plus unseen el, en."""
    cells = tmp_path / "cells"
    reach = {"hybrid": {"de": (25, 25, 50), "ar": (25, 50, 75), "el": (25, 50, 50)},
             "x-x": {"de": (50, 75, 100), "ar": (50, 75, 100), "el": (50, 75, 75)}}
    final = {"de": (.8, .7, .6), "ar": (.5, .6, .4), "el": (.6, .6, .6)}
    dirs = []
    for recipe, by_lang in reach.items():
        for seed in range(3):
            curves = {lang: ramp(final[lang][seed], by_lang[lang][seed]) for lang in by_lang}
            dirs.append(write_cell(cells, recipe, seed, curves))
    dirs.append(write_cell(cells, "x-y", 0, {lang: ramp(.5, 75) for lang in ("de", "ar", "el")}, batch=4, accum=2))
    return dirs


def test_per_seed_steps_match_hand_computation(tmp_path):
    report = write_convergence_report(_sweep(tmp_path), tmp_path / "out")
    rows = _rows(report)
    ar = rows[("hybrid", "ar")]
    assert ar["steps_to_target"]["per_seed"] == {"0": 25, "1": 50, "2": 75}
    assert ar["steps_to_target"]["mean"] == pytest.approx(50)
    assert ar["examples_to_target"]["per_seed"] == {"0": 25 * 16, "1": 50 * 16, "2": 75 * 16}
    assert ar["final"]["mean"] == pytest.approx(0.5) and ar["final"]["per_seed"]["2"] == pytest.approx(0.4)
    # the seed-averaged curve (.25, .33, .43, .5, .5) reaches 95% of its end only at 75, not at the mean 50
    assert ar["steps_on_mean_curve"] == 75 and ar["examples_on_mean_curve"] == 75 * 16
    assert rows[("x-y", "ar")]["examples_to_target"]["per_seed"] == {"0": 75 * 4 * 2}
    assert rows[("hybrid", "de")]["steps_to_target"]["mean"] == pytest.approx(100 / 3)
    assert report["unfinished_runs"] == []


def test_interval_present_with_seeds_absent_with_one(tmp_path):
    report = write_convergence_report(_sweep(tmp_path), tmp_path / "out")
    rows = _rows(report)
    ar = rows[("hybrid", "ar")]["steps_to_target"]
    assert ar["n_seeds"] == 3 and 25 <= ar["low"] < ar["mean"] < ar["high"] <= 75
    el = rows[("hybrid", "el")]["final"]                # every seed ends at .6: a zero-width interval
    assert el["low"] == pytest.approx(0.6) and el["high"] == pytest.approx(0.6)
    one = rows[("x-y", "ar")]
    assert one["steps_to_target"]["n_seeds"] == 1
    assert one["steps_to_target"]["low"] is None and one["final"]["high"] is None
    md = (tmp_path / "out" / "convergence.md").read_text()
    assert "| ar | 50 [" in md and "| 75 (1 seed) | 0.500 (1 seed) |" in md
    assert seed_summary({"0": 25.0, "1": 50.0, "2": 75.0}) == seed_summary({"0": 25.0, "1": 50.0, "2": 75.0})


def test_groups_from_batch_counts(tmp_path):
    report = write_convergence_report(_sweep(tmp_path), tmp_path / "out")
    assert report["language_groups_source"] == "batch_counts.json"
    assert report["language_groups"] == {"passages": ["de"], "queries-only": ["ar"], "unseen": ["el"]}
    assert derive_language_groups([{"ar->de": 3, "de->de": 1}, {"hi->es": 2}], ["ar", "de", "en", "es", "hi"]) == \
        {"passages": ["de", "es"], "queries-only": ["ar", "hi"], "unseen": ["en"]}
    assert derive_language_groups([{}], ["de", "en"]) == {"all": ["de", "en"]}
    # a group's value per seed is the mean over its languages, then the mean over seeds
    given = write_convergence_report(_sweep(tmp_path / "again"), tmp_path / "out2",
                                     language_groups="trained=de,ar; unseen=el")
    trained = _rows(given, "groups")[("hybrid", "trained")]
    assert trained["langs"] == ["ar", "de"]
    assert trained["steps_to_target"]["per_seed"] == {"0": 25, "1": 37.5, "2": 62.5}
    assert trained["final"]["mean"] == pytest.approx((.65 + .65 + .5) / 3)
    md = (tmp_path / "out2" / "convergence.md").read_text()
    assert "| **trained** (ar, de) | 41.7 [" in md and md.index("**trained**") < md.index("**unseen**")
    # unnamed languages go to 'other'; --low-resource is a shorthand
    short = write_convergence_report(_sweep(tmp_path / "third"), tmp_path / "out3", low_resource=["ar"])
    assert short["language_groups"] == {"low-resource": ["ar"], "other": ["de", "el"]}


@pytest.mark.parametrize("spec, message", [
    ("passages de,es", "has no '='"), ("=de", "bad group name"), ("a=de;a=es", "given twice"),
    ("a=", "lists no languages"), ("a=de;b=de", "'de' is in both 'a' and 'b'"), (" ; ", "empty")])
def test_group_syntax_errors_name_the_option(spec, message):
    with pytest.raises(ConfigError, match=f"^--language-groups: .*{message}"):
        parse_language_groups(spec)


def test_cli_group_error_and_reference(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    convergence.add_arguments(parser)
    dirs = [str(d) for d in _sweep(tmp_path)]
    with pytest.raises(ConfigError, match="--language-groups"):
        convergence.run(parser.parse_args(dirs + ["--out", str(tmp_path / "o"), "--language-groups", "x"]))
    with pytest.raises(ConfigError, match="--reference: no recipe 'nope'"):
        convergence.run(parser.parse_args(dirs + ["--out", str(tmp_path / "o"), "--reference", "nope"]))
    with pytest.raises(ConfigError, match="--fraction: expected a share"):
        convergence.run(parser.parse_args(dirs + ["--out", str(tmp_path / "o"), "--fraction", "95"]))
    assert convergence.run(parser.parse_args(dirs + ["--out", str(tmp_path / "o"), "--reference", "x-x"])) == 0
    assert "groups (passages: de; queries-only: ar; unseen: el)" in capsys.readouterr().out
    report = json.loads((tmp_path / "o" / "convergence.json").read_text())
    assert {(d["recipe"], d["minus"]) for d in report["differences"]} == {("x-x", "hybrid"), ("x-x", "x-y")}


def test_recipe_difference_paired_by_seed(tmp_path):
    report = write_convergence_report(_sweep(tmp_path), tmp_path / "out")
    assert report["reference"] == "hybrid"
    diffs = {(d["level"], d["name"], d["minus"]): d for d in report["differences"]
             if d["metric"] == "mrr@10" and d["setting"] == "multi"}
    de = diffs[("language", "de", "x-x")]["steps_to_target"]
    # hybrid 25/25/50 vs x-x 50/75/100 on seeds 0/1/2: differences -25/-50/-50
    assert de["paired"] and de["mean"] == pytest.approx(-125 / 3) and -50 <= de["low"] <= de["high"] <= -25
    el = diffs[("group", "unseen", "x-x")]["steps_to_target"]   # -25 on every seed: paired, zero width
    assert el["paired"] and el["low"] == el["high"] == pytest.approx(-25)
    versus_one = diffs[("group", "queries-only", "x-y")]
    assert not versus_one["final"]["paired"] and versus_one["final"]["low"] is None
    assert versus_one["final"]["mean"] == pytest.approx(0.0)
    md = (tmp_path / "out" / "convergence.md").read_text()
    assert "| hybrid - x-x steps | hybrid - x-x final |" in md and "| unseen | -25 [-25, -25] |" in md
    # unpaired seeds (different seed numbers) are resampled independently: the same offset gets a width
    unpaired = seed_difference({"0": 25, "1": 50, "2": 75}, {"3": 50, "4": 75, "5": 100})
    assert not unpaired["paired"] and unpaired["mean"] == pytest.approx(-25)
    assert unpaired["low"] < -25 < unpaired["high"]
    paired = seed_difference({"0": 25, "1": 50, "2": 75}, {"0": 50, "1": 75, "2": 100})
    assert paired["paired"] and paired["low"] == paired["high"] == pytest.approx(-25)


def test_a_seed_whose_curve_falls_is_marked(tmp_path):
    falling = {0: 0.6, 25: 0.5, 50: 0.4}                   # reaches 95% of its end (.38) at step 0
    dirs = [write_cell(tmp_path, "x-x", 0, {"de": falling, "ar": ramp(.5, 25, (0, 25, 50))}),
            write_cell(tmp_path, "x-x", 1, {"de": ramp(.5, 25, (0, 25, 50)), "ar": ramp(.5, 50, (0, 25, 50))})]
    report = write_convergence_report(dirs, tmp_path / "out")
    rows = _rows(report)
    assert rows[("x-x", "de")]["seeds_ending_below_start"] == ["0"]
    assert rows[("x-x", "ar")]["seeds_ending_below_start"] == []
    assert rows[("x-x", "de")]["steps_to_target"]["per_seed"] == {"0": 0, "1": 25}
    md = (tmp_path / "out" / "convergence.md").read_text()
    assert "| de | 12.5 [0, 25] ↓ |" in md and "| ar | 37.5 [25, 50] |" in md
    assert "| **passages** (de) | 12.5 [0, 25] ↓ |" in md and "ended below its first evaluated value" in md


def test_unfinished_and_curveless_runs_are_flagged(tmp_path):
    dirs = [write_cell(tmp_path, "hybrid", 0, {"de": ramp(.5, 25)}, finished=False),
            write_cell(tmp_path, "hybrid", 1, {"de": ramp(.5, 50)})]
    side = tmp_path / "hybrid-0.25__seed=0" / "train"
    side.mkdir(parents=True)
    (side / "metrics.jsonl").write_text(json.dumps({"type": "train", "step": 1, "loss": 2.0}) + "\n")
    report = write_convergence_report(dirs + [side.parent], tmp_path / "out")
    assert [r["name"] for r in report["recipes"]] == ["hybrid"]
    assert report["runs_without_curves"] == [str(side.parent)]
    assert report["unfinished_runs"] == [str(dirs[0])]
    assert "**Unfinished**" in (tmp_path / "out" / "convergence.md").read_text()
