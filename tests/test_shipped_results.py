"""The summaries shipped under docs/results/ never show p < .05 beside a 95% interval that contains 0.

Every dict in a summary.json that carries an interval (`ci_low`, `ci_high`) is a row; every
numeric field of that row named `p_value` or `p_<something>` is a p shown beside the interval
(issue 21: the clustered p once came from another design than the interval and disagreed with it
in 96 rows of findings/ and 42 of findings-batch-neg/)."""

import json
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
SUMMARIES = sorted(RESULTS.glob("**/summary.json"))


def interval_rows(tree, where=""):
    """(location, row) of every dict with an interval, depth first."""
    if isinstance(tree, dict):
        if tree.get("ci_low") is not None and tree.get("ci_high") is not None:
            yield where, tree
        for key, value in tree.items():
            yield from interval_rows(value, f"{where}/{key}")
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from interval_rows(value, f"{where}[{i}]")


def contradictions(summary: dict, confidence_level: float = 0.95) -> list[str]:
    """'location: field = p beside [low, high]' for each p below 1 - level with 0 in the interval."""
    found = []
    for where, row in interval_rows(summary):
        if row.get("confidence", confidence_level) != confidence_level or not row["ci_low"] <= 0 <= row["ci_high"]:
            continue
        for name, value in row.items():
            is_p = name == "p_value" or name.startswith("p_")
            if is_p and isinstance(value, (int, float)) and value < 1 - confidence_level:
                found.append(f"{where}: {name} = {value:.4g} beside [{row['ci_low']:+.4g}, {row['ci_high']:+.4g}]")
    return found


def test_the_results_folder_has_summaries():
    assert len(SUMMARIES) >= 5, SUMMARIES      # the scan below must not pass by finding nothing


@pytest.mark.parametrize("path", SUMMARIES, ids=lambda p: str(p.relative_to(RESULTS)))
def test_no_p_below_five_percent_beside_an_interval_containing_zero(path):
    bad = contradictions(json.loads(path.read_text(encoding="utf-8")))
    assert not bad, f"{path}: {len(bad)} rows, e.g. " + "; ".join(bad[:3])


def test_the_scan_finds_a_contradiction():
    row = {"ci_low": -0.0156, "ci_high": 0.0007, "p_value": 0.0005, "p_holm": 0.2, "mean_diff": -0.0059}
    assert contradictions({"comparisons": [row]}) == ["/comparisons[0]: p_value = 0.0005 beside [-0.0156, +0.0007]"]
    assert contradictions({"drops": [{**row, "ci_high": -0.001}]}) == []
