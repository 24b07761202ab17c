"""`mixlingual demo`: X-X only vs hybrid on the same steps, one table and one line reading it."""

from __future__ import annotations

import json

import pytest
import torch

from helpers_models import make_tiny_model_dir
from mixlingual.cli import main
from mixlingual.experiments.demo import format_table, reading_line


def _metrics(mono: float, cross: float, multi: float, rank_distance: float) -> dict:
    return {"settings": {"mono": {"map": mono}, "cross": {"map": cross}, "multi": {"map": multi}},
            "rank_distance": {"mean": rank_distance}}


def test_the_reading_line_says_what_hybrid_batches_did():
    before, x_x_only = _metrics(0.99, 0.93, 0.82, 17.6), _metrics(0.99, 0.90, 0.89, 16.8)
    line = reading_line(before, x_x_only, _metrics(0.98, 0.91, 0.91, 12.9), steps=20)
    assert line.startswith("reading: in the same 20 steps, hybrid batches")
    assert "rank distance 17.6 -> 12.9; X-X only 16.8" in line and "0.910 (X-X only 0.890)" in line
    assert "-0.010 / -0.020" in line  # mono / cross mAP change of the hybrid model
    worse = reading_line(before, x_x_only, _metrics(0.98, 0.91, 0.85, 17.0), steps=2)
    assert worse.startswith("reading: in these 2 steps hybrid batches did not beat X-X only") and "--steps" in worse


def test_the_table_has_a_column_per_run():
    table = format_table({"before": _metrics(0.9, 0.8, 0.7, 9.0), "X-X only": _metrics(0.9, 0.8, 0.75, 8.0),
                          "hybrid": _metrics(0.9, 0.8, 0.8, 5.0)})
    lines = table.splitlines()
    assert lines[0].split() == ["metric", "before", "X-X", "only", "hybrid"]
    assert lines[-1].split()[-3:] == ["9.0000", "8.0000", "5.0000"]


@pytest.mark.slow
def test_a_tiny_demo_trains_both_recipes_and_reads_the_table(tmp_path, capsys):
    torch.set_num_threads(1)
    tiny = make_tiny_model_dir(tmp_path / "tiny")
    out = tmp_path / "demo"
    args = ["demo", "--steps", "2", "--threads", "1", "--out", str(out), "--set", f"model.name={tiny}",
            "--set", "train.progress=false", "--set", "train.precision=fp32"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "X-X only" in printed and "hybrid" in printed
    assert sum(line.startswith("reading: ") for line in printed.splitlines()) == 1
    result = json.loads((out / "metrics.json").read_text())
    assert {"before", "after", "x_x_only"} <= set(result) and result["steps"] == 2
    assert (out / "model").is_dir() and (out / "x-x-only" / "model").is_dir()
    assert json.loads((out / "x-x-only" / "batch_counts.json").read_text())["kinds"] == {"X-X": 2}
    assert set(json.loads((out / "batch_counts.json").read_text())["kinds"]) <= {"X-X", "X-Y"}
    assert main(args) == 2  # no silent overwrite
