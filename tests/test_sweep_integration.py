"""One real sweep cell: `mixlingual train` + `mixlingual evaluate` as subprocesses on a tiny model.

Opt-in (MIXLINGUAL_RUN_SLOW=1): the three subprocesses each import torch and transformers, which
takes 20-50 s on a shared 2-core machine. The fake-runner tests in test_sweep.py cover the logic.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
pytest.importorskip("torch")


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("MIXLINGUAL_RUN_SLOW") != "1", reason="set MIXLINGUAL_RUN_SLOW=1 to run")
def test_real_cell_trains_evaluates_and_is_not_redone(tmp_path, monkeypatch):
    from helpers_train import tiny_run_overrides

    from mixlingual.training.config import apply_override
    from mixlingual.data.jsonl import read_parallel, write_collection
    from mixlingual.data.records import Candidate, Collection, Query
    from mixlingual.experiments.sweep import plan as sweep

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    config: dict = {}
    for assignment in tiny_run_overrides(tmp_path, steps=2):
        apply_override(config, assignment)
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(config))
    items = list(read_parallel(tmp_path / "train.jsonl"))[:6]
    queries = [Query(f"{it.id}-{x}", x, t, it.id) for it in items for x, t in it.queries.items()]
    cands = [Candidate(f"{it.id}-{x}-c", x, t, (it.id,)) for it in items for x, t in it.positives.items()]
    write_collection(Collection("dev", queries, cands), tmp_path / "dev.jsonl")
    parser = argparse.ArgumentParser()
    sweep.add_arguments(parser)
    args = parser.parse_args([str(tmp_path / "base.yaml"), "--grid", "sampling.alpha=0.5", "--out",
                              str(tmp_path / "sw"), "--eval", f"jsonl:{tmp_path / 'dev.jsonl'}"])
    assert sweep.run_sweep(args) == 0
    cell = tmp_path / "sw" / "cells" / "sampling.alpha=0.5__seed=0"
    resolved = yaml.safe_load((cell / "train" / "config.yaml").read_text())
    assert resolved["sampling"]["alpha"] == 0.5 and resolved["train"]["seed"] == 0
    metrics = json.loads((cell / "eval" / "jsonl" / "metrics.json").read_text())
    summary = json.loads((tmp_path / "sw" / "summary.json").read_text())
    group = summary["metrics"]["sampling.alpha=0.5"]["jsonl"]
    assert group["settings.multi.map"]["mean"] == pytest.approx(metrics["settings"]["multi"]["map"])
    calls = []
    assert sweep.run_sweep(args, runner=lambda argv, log: calls.append(argv) or 0) == 0
    assert calls == []      # finished cell: nothing is run again
