"""scripts/findings_robustness.sh with fake sweep cells: the commands it runs (DRY_RUN=1, and a stub
`mixlingual` that records its calls), without any model."""

import os
import shlex
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "findings_robustness.sh"
PERTURBATIONS = ["typo:0.05", "typo:0.15", "diacritics:0.5", "diacritics:1", "word-dropout:0.1", "word-dropout:0.3",
                 "word-shuffle:0.3", "word-shuffle:1"]


@pytest.fixture
def cells(tmp_path):
    for cell in ("x-x__seed=0", "x-x__seed=3", "hybrid__seed=0", "mix__seed=1"):
        (tmp_path / "cells" / cell / "train" / "model").mkdir(parents=True)
    (tmp_path / "cells" / "x-y__seed=0" / "train").mkdir(parents=True)   # training without a model yet
    return tmp_path


def _run(tmp_path, **env):
    env = {**os.environ, "CELLS": str(tmp_path / "cells"), "OUT_ROOT": str(tmp_path / "out"), **env}
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def _commands(stdout: str) -> list[list[str]]:
    return [shlex.split(line[2:]) for line in stdout.splitlines() if line.startswith("+ ")]


def test_dry_run_lists_every_existing_model_and_the_summary(cells):
    done = _run(cells, DRY_RUN="1", MIXLINGUAL="mixlingual")
    assert done.returncode == 0, done.stderr
    commands = _commands(done.stdout)
    robustness = [c for c in commands if c[1] == "robustness" and "--model" in c]
    attacks = [c for c in commands if c[1] == "attack"]
    models = sorted(c[c.index("--model") + 1].split("/cells/")[1] for c in robustness)
    assert models == ["hybrid__seed=0/train/model", "x-x__seed=0/train/model", "x-x__seed=3/train/model"]
    assert len(attacks) == 3 and "skip x-y__seed=0: no model" in done.stderr
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


def test_recipes_are_overridable_and_a_failed_model_stops_before_the_summary(cells):
    stub = cells / "mixlingual"
    stub.write_text(f"#!/usr/bin/env bash\necho \"$*\" >> {cells}/calls\n"
                    "case \"$*\" in *attack*mix__seed=1*) exit 2;; esac\n")
    stub.chmod(0o755)
    done = _run(cells, MIXLINGUAL=str(stub), RECIPES="hybrid mix", JOBS="1")
    assert done.returncode == 1 and "no summary written" in done.stderr
    calls = (cells / "calls").read_text().splitlines()
    assert {c.split()[0] for c in calls} == {"robustness", "attack"} and len(calls) == 4
    assert not any("--summarize" in c for c in calls) and "x-x" not in "".join(calls)
    assert (cells / "out" / "mix__seed=1" / "run.log").read_text().startswith("+ ")


def test_summary_runs_after_every_model_and_skips_absent_baselines(cells):
    stub = cells / "mixlingual"
    stub.write_text(f"#!/usr/bin/env bash\necho \"$*\" >> {cells}/calls\n")
    stub.chmod(0o755)
    done = _run(cells, MIXLINGUAL=str(stub), RECIPES="hybrid mix", BASELINES="x-x mix")
    assert done.returncode == 0, done.stderr
    calls = (cells / "calls").read_text().splitlines()
    assert len(calls) == 5 and calls[-1].startswith("robustness --summarize")
    assert " --baseline mix --n-resamples 10000 " in calls[-1]
