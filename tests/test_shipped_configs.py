"""Every config shipped in configs/ resolves: training configs load and validate, sweep files
expand into cells whose configs all validate (no model or data is touched)."""

import argparse
from pathlib import Path

import pytest

from mixlingual.training.config import load_config
from mixlingual.experiments.sweep import plan as sweep

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
    assert cells and plan.evals      # convergence.yaml: evaluated on its eval.data (no eval: list)


@pytest.mark.parametrize("name", ["paper-recipes.yaml", "recipe-search.yaml"])
def test_recipe_sweeps_select_on_one_half_of_the_dev_articles_and_confirm_on_the_other(name, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    parser = argparse.ArgumentParser()
    sweep.add_arguments(parser)
    plan, _, options = sweep.build_plan(parser.parse_args([f"configs/sweeps/{name}", "--out", str(tmp_path)]))
    roles = {e.role: e for e in plan.evals if e.role}
    assert roles["select"].options == {"articles": "0-11"} and roles["confirm"].options == {"articles": "12-23"}
    assert roles["select"].path == roles["confirm"].path == "../shared/data/xquad-r-dev"
    assert options["select_metric"] == "settings.multi.map"
    data = ROOT.parent / "shared" / "data" / "xquad-r-dev"
    if not data.exists():
        pytest.skip("needs ../shared/data/xquad-r-dev")
    from mixlingual.data.registry import load_collection

    halves = [load_collection("xquad-r", data, langs=["en"], **e.options) for e in (roles["select"], roles["confirm"])]
    whole = load_collection("xquad-r", data, langs=["en"])
    groups = [{q.group for q in h.queries} for h in halves]
    assert not groups[0] & groups[1] and groups[0] | groups[1] == {q.group for q in whole.queries}
