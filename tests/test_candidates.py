"""The candidates study of a sweep (every recipe in every variant): selection under the mono
condition on the select split, the verdict on the confirm split, effects and plots."""

import json

import pytest

from mixlingual.errors import ConfigError
from mixlingual.experiments.sweep import plan as sweep
from test_sweep import FakeRunner, _parse

CANDIDATE_EVALS = (
    "    - benchmark: plain-sel=xquad-r:/d\n      options: {articles: 0-1}\n      role: select\n"
    "    - benchmark: plain-conf=xquad-r:/d\n      options: {articles: 2-3}\n      role: confirm\n"
    "    - benchmark: center-sel=xquad-r:/d/c\n      options: {articles: 0-1}\n"
    "    - benchmark: center-conf=xquad-r:/d/c\n      options: {articles: 2-3}\n")


def _candidate_sweep(tmp_path, section: str) -> str:
    base = tmp_path / "base.yaml"
    base.write_text("train: {seed: 0}\n")
    spec = tmp_path / "sweep.yaml"
    spec.write_text(f"sweep:\n  base_config: {base}\n  seeds: 2\n  baseline: x-x\n  recipes:\n"
                    "    x-x: {sampling.alpha: 1.0}\n    x-y: {sampling.alpha: 0.0}\n"
                    f"  eval:\n{CANDIDATE_EVALS}{section}")
    return spec


SECTION = ("  candidates:\n    variants:\n      plain: {select: plain-sel, confirm: plain-conf}\n"
           "      center: {select: center-sel, confirm: center-conf}\n"
           "    references: [x-y/center]\n    mono_floor: {candidate: x-x/plain, max_drop: 0.005}\n")


def test_candidates_are_named_on_select_and_judged_on_confirm(tmp_path):
    spec = _candidate_sweep(tmp_path, SECTION)
    # FakeRunner: mono = .5 + .2 alpha, multi = .6 - .2 alpha; the "centred" evaluations (paths with /c)
    # turn multi to .4 + .2 alpha, so X-X + center is best on multi and keeps X-X's mono
    assert sweep.run_sweep(_parse([spec, "--out", tmp_path / "sw"]), FakeRunner(flip_on="/d/c")) == 0
    result = json.loads((tmp_path / "sw" / "summary.json").read_text())["candidates"]
    assert set(result["table"]) == {"x-x/plain", "x-x/center", "x-y/plain", "x-y/center"}
    selection = result["selection"]
    assert selection["best"] == "x-x/center"
    assert selection["excluded_by_mono"] == ["x-y/center", "x-y/plain"]     # mono .505 < .705 - .005
    assert selection["mono_threshold_select"] == pytest.approx(0.705 - 0.005)
    assert selection["confirm"]["keeps_mono"] is True
    verdict = result["verdict"]
    assert verdict["confirmed"] is True and verdict["effect"] == pytest.approx(0.2)  # .6 vs .4 on multi
    rows = {(c["candidate"], c["reference"], c["setting"], c["metric"]): c for c in result["comparisons"]}
    own = rows[("x-x/center", "x-x/plain", "multi", "map")]
    assert own["kind"] == "own plain" and own["mean_diff"] == pytest.approx(0.2) and own["ci_low"] > 0
    assert rows[("x-x/center", "x-x/plain", "mono", "map")]["mean_diff"] == pytest.approx(0.0)
    assert ("x-y/center", "x-y/center", "multi", "map") not in rows           # never against itself
    # the reference and its own plain model are compared once, as candidate minus reference
    assert ("x-y/plain", "x-y/center", "multi", "map") in rows and ("x-y/center", "x-y/plain", "multi", "map") not in rows
    assert all("p_holm" in c for c in result["comparisons"])
    report = (tmp_path / "sw" / "report.md").read_text()
    assert "## Candidates: every recipe in every variant" in report
    assert "Named on the select split: **x-x/center**" in report and "Confirmed on the confirm split: **yes**" in report
    assert "| x-x/center | 2 | .705 ± .007 | .400 ± .000 | .605 ± .007 | 10.0 ± 0.0 |" in report
    assert "| x-x/center | x-x/plain | +.000 [+.000, +.000] | - | +.200 [+.200, +.200]* | +0.0 [+0.0, +0.0] |" in report
    assert (tmp_path / "sw" / "plots" / "candidates-confirm.png").stat().st_size > 1000


def test_a_candidate_no_better_than_the_reference_is_not_confirmed(tmp_path):
    spec = _candidate_sweep(tmp_path, SECTION.replace("[x-y/center]", "[x-y/plain]"))
    # X-X + center (multi .6) is named again, but X-Y plain has the same multi mAP: interval around 0
    assert sweep.run_sweep(_parse([spec, "--out", tmp_path / "sw"]), FakeRunner(flip_on="/d/c")) == 0
    result = json.loads((tmp_path / "sw" / "summary.json").read_text())["candidates"]
    assert result["selection"]["best"] == "x-x/center"
    verdict = result["verdict"]
    assert verdict["keeps_mono"] is True and verdict["interval_excludes_0"] is False
    assert verdict["confirmed"] is False and verdict["effect"] == pytest.approx(0.0, abs=1e-9)
    assert "Confirmed on the confirm split: **no**" in (tmp_path / "sw" / "report.md").read_text()


@pytest.mark.parametrize("section, message", [
    (SECTION.replace("center-conf}", "nope}"), r"candidates.variants.center.confirm: no eval entry labelled 'nope'"),
    (SECTION.replace("[x-y/center]", "[hybrid/center]"), r"candidates.references: 'hybrid/center' is not a candidate"),
    (SECTION.replace("max_drop: 0.005", "max_drop: -1"), "max_drop: expected a number >= 0"),
    (SECTION + "    extra: 1\n", r"candidates: unknown key\(s\) \['extra'\]"),
])
def test_a_bad_candidates_section_fails_before_any_training(tmp_path, section, message):
    spec = _candidate_sweep(tmp_path, section)
    runner = FakeRunner()
    with pytest.raises(ConfigError, match=message):
        sweep.run_sweep(_parse([spec, "--out", tmp_path / "sw"]), runner)
    assert runner.calls == []
