"""`mixlingual robustness --study FILE` with fake sweep cells: the commands it runs (--dry-run, and a
fake runner that records its calls), without any model; and the shipped study file."""

import json
import shlex
from pathlib import Path

import pytest
import yaml

from mixlingual.cli import main
from mixlingual.errors import ConfigError
from mixlingual.experiments.robustness import study

SHIPPED = Path(__file__).resolve().parents[1] / "configs" / "studies" / "findings-robustness.yaml"
PERTURBATIONS = ["typo:0.05", "typo:0.15", "diacritics:0.5", "diacritics:1", "word-dropout:0.1", "word-dropout:0.3",
                 "word-shuffle:0.3", "word-shuffle:1"]


@pytest.fixture
def cells(tmp_path):
    for cell in ("x-x__seed=0", "x-x__seed=3", "hybrid__seed=0", "mix__seed=1"):
        (tmp_path / "cells" / cell / "train" / "model").mkdir(parents=True)
    (tmp_path / "cells" / "x-y__seed=0" / "train").mkdir(parents=True)   # training without a model yet
    return tmp_path


def _study(root: Path, **changes) -> Path:
    """The shipped study file, pointed at the fake cells (and `changes` applied)."""
    data = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    data["robustness_study"].update({"cells": str(root / "cells"), "out": str(root / "out"), **changes})
    path = root / "study.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _commands(stdout: str) -> list[list[str]]:
    return [shlex.split(line[2:]) for line in stdout.splitlines() if line.startswith("+ ")]


class Recorder:
    """A runner that records each call's mixlingual arguments and fails the ones `fail` picks."""

    def __init__(self, fail=lambda args: False):
        self.calls, self.fail = [], fail

    def __call__(self, args, log_path):
        self.calls.append(list(args))
        return 2 if self.fail(args) else 0


def test_the_shipped_study_is_readme_question_3():
    loaded = study.Study.load(SHIPPED)
    assert loaded.recipes == ["x-x", "x-y", "hybrid", "hybrid-0.25"] and loaded.baselines == ["x-x", "x-y", "hybrid"]
    assert loaded.seeds == [0, 1, 2, 3, 4] and loaded.data_options == {"articles": "12-17"}
    assert loaded.perturbations == PERTURBATIONS and loaded.n_resamples == 2000 and loaded.jobs == 2
    assert loaded.attack == {"budget": 3, "max_queries": 150, "seed": 0}
    assert "Strengths, read against" in SHIPPED.read_text(encoding="utf-8")   # the strength notes stay with it


def test_dry_run_lists_every_existing_model_and_the_summary(cells, capsys):
    path = _study(cells, recipes="x-x x-y hybrid", baselines="x-x x-y", data_options={"articles": "12-23"},
                  attack={"budget": 3, "max_queries": 300, "seed": 0})
    assert main(["robustness", "--study", str(path), "--dry-run"]) == 0
    out, err = capsys.readouterr()
    commands = _commands(out)
    assert all(c[0] == "mixlingual" for c in commands)
    robustness = [c for c in commands if c[1] == "robustness" and "--model" in c]
    attacks = [c for c in commands if c[1] == "attack"]
    models = sorted(c[c.index("--model") + 1].split("/cells/")[1] for c in robustness)
    assert models == ["hybrid__seed=0/train/model", "x-x__seed=0/train/model", "x-x__seed=3/train/model"]
    assert len(attacks) == 3 and "skip x-y__seed=0: no model" in err
    for c in robustness + attacks:
        assert c[c.index("--data-option") + 1] == "articles=12-23" and c[c.index("--benchmark") + 1] == "xquad-r"
        assert "--bf16" in c and c[c.index("--threads") + 1] == "1"
    assert [robustness[0][i + 1] for i, a in enumerate(robustness[0]) if a == "--perturb"] == PERTURBATIONS
    assert all(c[c.index("--budget") + 1] == "3" and c[c.index("--max-queries") + 1] == "300" for c in attacks)
    assert all(c[c.index("--out") + 1].endswith("/attack") for c in attacks)
    summary = commands[-1]
    assert summary[1:3] == ["robustness", "--summarize"] and summary[summary.index("--out") + 1].endswith("out/summary")
    labels = summary[3:summary.index("--baseline")]
    assert sorted(labels) == sorted(f"{cell.split('__')[0]}={cells}/out/{cell}"
                                    for cell in ("x-x__seed=0", "x-x__seed=3", "hybrid__seed=0"))
    assert summary[summary.index("--baseline") + 1:summary.index("--n-resamples")] == ["x-x"]   # x-y has no model
    assert not (cells / "out").exists()   # a dry run writes nothing


def test_recipes_are_the_files_and_a_failed_model_stops_before_the_summary(cells, capsys):
    runner = Recorder(fail=lambda args: args[0] == "attack" and "mix__seed=1" in " ".join(args))
    assert study.run_study(_study(cells, recipes=["hybrid", "mix"]), jobs=1, runner=runner) == 1
    assert "no summary written" in capsys.readouterr().err
    assert [c[0] for c in runner.calls] == ["robustness", "attack", "robustness", "attack"]
    assert not any("--summarize" in c for c in runner.calls) and "x-x" not in str(runner.calls)
    assert (cells / "out" / "mix__seed=1" / "run.log").read_text().startswith("+ mixlingual robustness ")


def test_a_failed_evaluation_skips_that_models_attack(cells, capsys):
    runner = Recorder(fail=lambda args: args[0] == "robustness" and "hybrid__seed=0" in " ".join(args))
    assert study.run_study(_study(cells, recipes=["hybrid"]), runner=runner) == 1
    assert [c[0] for c in runner.calls] == ["robustness"]


def test_summary_runs_after_every_model_and_skips_absent_baselines(cells, capsys):
    runner = Recorder()
    assert study.run_study(_study(cells, recipes="hybrid mix", baselines="x-x mix", n_resamples=10000),
                           runner=runner) == 0
    assert len(runner.calls) == 5 and runner.calls[-1][:2] == ["robustness", "--summarize"]
    assert " --baseline mix --n-resamples 10000 " in " ".join(runner.calls[-1]) + " "
    assert (cells / "out" / "summary" / "run.log").read_text().startswith("+ mixlingual robustness --summarize")


def test_a_rerun_skips_finished_evaluations_and_attacks(cells, capsys):
    path = _study(cells, recipes=["x-x"])
    done = cells / "out" / "x-x__seed=0"
    for folder in ["clean"] + [p.replace(":", "-") for p in PERTURBATIONS]:
        (done / folder).mkdir(parents=True)
        (done / folder / "metrics.json").write_text("{}")
    (done / "robustness.json").write_text("{}")
    (cells / "out" / "x-x__seed=3" / "attack").mkdir(parents=True)
    (cells / "out" / "x-x__seed=3" / "attack" / "attack.json").write_text(json.dumps({}))
    runner = Recorder()
    assert study.run_study(path, jobs=1, runner=runner) == 0   # one model at a time: the order of calls is fixed
    ran = [(c[0], c[c.index("--out") + 1].split("/out/")[1]) for c in runner.calls if "--model" in c]
    assert ran == [("attack", "x-x__seed=0/attack"), ("robustness", "x-x__seed=3")]
    assert "x-x__seed=0: robustness finished, skipped" in capsys.readouterr().out
    (done / "word-shuffle-1" / "metrics.json").unlink()        # one evaluation unfinished: run it again
    runner = Recorder()
    assert study.run_study(path, runner=runner) == 0
    assert ("robustness", "x-x__seed=0") in [(c[0], c[c.index("--out") + 1].split("/out/")[1])
                                             for c in runner.calls if "--model" in c]


def test_bad_study_files_and_mixed_options_are_refused(cells, capsys):
    with pytest.raises(ConfigError, match="typo"):
        study.Study.load(_study(cells, perturbations=["typoo:0.1"]))
    with pytest.raises(ConfigError, match="unknown key"):
        study.Study.load(_study(cells, artcles="12-17"))
    with pytest.raises(ConfigError, match="no trained model"):
        study.run_study(_study(cells, recipes=["x-y"]), dry_run=True)
    assert main(["robustness", "--study", str(_study(cells)), "--model", "m"]) == 2
    assert main(["robustness", "--dry-run", "--out", str(cells / "o"), "--clean", str(cells)]) == 2
    assert "--study takes its settings from the file" in capsys.readouterr().err
