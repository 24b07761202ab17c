"""Every config shipped in configs/ resolves: training configs load and validate, sweep files
expand into cells whose configs all validate (no model or data is touched)."""

import argparse
from pathlib import Path

import pytest

from mixlingual.config import load_config
from mixlingual.experiments import sweep

ROOT = Path(__file__).resolve().parents[1]
TRAINING = sorted((ROOT / "configs").glob("*.yaml"))
SWEEPS = sorted((ROOT / "configs" / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", TRAINING + [p for p in SWEEPS if p.name.startswith("base-")], ids=lambda p: p.name)
def test_training_config_validates(path):
    config = load_config(path)
    assert config.train.batch_size >= 1


@pytest.mark.parametrize("path", [p for p in SWEEPS if not p.name.startswith("base-")], ids=lambda p: p.name)
def test_sweep_file_expands_and_every_cell_validates(path, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)   # sweep files name their base config relative to the repository root
    parser = argparse.ArgumentParser()
    sweep.add_arguments(parser)
    plan, cells, options = sweep.build_plan(parser.parse_args([str(path), "--out", str(tmp_path / "out")]))
    sweep.validate_cells(plan, cells)
    assert cells and plan.evals or path.name == "convergence.yaml"
