"""Convergence report from fake training folders: steps to 95%, examples, language groups, real train output."""

import json

import pytest
import yaml

from mixlingual.errors import DataError
from mixlingual.experiments.convergence import report as convergence
from mixlingual.experiments.convergence.runs import load_run
from mixlingual.experiments.convergence.report import write_convergence_report
from mixlingual.experiments.convergence.summary import steps_to_fraction


def _fake_run(folder, curves, *, batch=8, accum=2, world=1, pairs=None, group=None):
    """curves: {lang: [(step, mrr)]} -> a `mixlingual train`-like output folder."""
    train = folder / "train" if group else folder
    train.mkdir(parents=True)
    steps = sorted({s for points in curves.values() for s, _ in points})
    records = [{"type": "train", "step": 1, "loss": 3.0}]
    for step in steps:
        per_lang = {lang: {"mrr@10": dict(points)[step], "map": dict(points)[step] / 2}
                    for lang, points in curves.items() if step in dict(points)}
        records.append({"type": "eval", "step": step, "settings": {}, "per_language": {"multi": per_lang}})
    (train / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (train / "config.yaml").write_text(yaml.safe_dump({"train": {"batch_size": batch, "grad_accum": accum}}))
    (train / "summary.json").write_text(json.dumps({"world_size": world}))
    (train / "batch_counts.json").write_text(json.dumps({"pairs": pairs or {"en->de": 50, "de->en": 50}}))
    if group:
        (folder / "cell.json").write_text(json.dumps({"group": group}))
    return folder


def test_steps_to_fraction():
    assert steps_to_fraction({0: 0.1, 10: 0.5, 20: 0.96, 30: 1.0}) == 20
    assert steps_to_fraction({0: 0.1, 10: 0.95, 20: 1.0}) == 10     # exactly 95% counts
    assert steps_to_fraction({0: 0.0, 10: 0.0}) is None
    assert steps_to_fraction({}) is None


def test_report_rows_examples_and_groups(tmp_path):
    fast = {"en": [(0, 0.2), (10, 0.8), (20, 0.9)], "de": [(0, 0.1), (10, 0.5), (20, 0.9)],
            "sw": [(0, 0.0), (10, 0.1), (20, 0.2)]}
    slow = {"en": [(0, 0.2), (10, 0.4), (20, 0.8)], "de": [(0, 0.1), (10, 0.2), (20, 0.8)],
            "sw": [(0, 0.0), (10, 0.05), (20, 0.1)]}
    runs = [_fake_run(tmp_path / "a0", fast, group="hybrid"), _fake_run(tmp_path / "a1", fast, group="hybrid"),
            _fake_run(tmp_path / "b", slow, batch=4, accum=1, world=2)]
    report = write_convergence_report(runs, tmp_path / "out", fraction=0.95)
    rows = {(r["strategy"], r["lang"], r["metric"]): r for r in report["languages"]}
    en = rows[("hybrid", "en", "mrr@10")]
    assert en["steps_to_target"]["n_seeds"] == 2 and en["final"]["mean"] == 0.9 and en["steps_on_mean_curve"] == 20
    assert en["steps_to_target"]["mean"] == 20 and en["steps_to_target"]["low"] == en["steps_to_target"]["high"] == 20
    assert rows[("hybrid", "en", "map")]["final"]["mean"] == pytest.approx(0.45)
    assert rows[("b", "en", "mrr@10")]["examples_to_target"]["mean"] == 20 * 4 * 2 * 1
    assert rows[("b", "en", "mrr@10")]["steps_to_target"]["low"] is None      # one seed: no interval
    assert en["examples_to_target"]["mean"] == 20 * 8 * 2
    # en and de are drawn as passages (en->de, de->en), sw never: groups from batch_counts.json, in that order
    assert report["language_groups"] == {"passages": ["de", "en"], "unseen": ["sw"]}
    assert [r["group"] for r in report["languages"][-4:]] == ["unseen"] * 4
    assert rows[("hybrid", "de", "mrr@10")]["train_share"] == pytest.approx(0.5)
    md = (tmp_path / "out" / "convergence.md").read_text()
    assert "| **unseen** (sw) |" in md and "| sw | 20 [20, 20] | 0.200 [0.200, 0.200] | 20 (1 seed) |" in md
    assert (tmp_path / "out" / "curves-multi-mrr@10.png").stat().st_size > 1000
    # the --low-resource shorthand: its languages first, the rest 'other'
    again = write_convergence_report(runs, tmp_path / "out2", low_resource=["de"])
    assert again["language_groups"] == {"low-resource": ["de"], "other": ["en", "sw"]}


def test_cli_and_errors(tmp_path, capsys):
    run = _fake_run(tmp_path / "r", {"en": [(0, 0.5), (5, 1.0)]})
    parser = __import__("argparse").ArgumentParser()
    convergence.add_arguments(parser)
    assert convergence.run(parser.parse_args([str(run), "--out", str(tmp_path / "o")])) == 0
    assert "wrote" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no metrics.jsonl"):
        load_run(tmp_path / "empty")
    (run / "metrics.jsonl").write_text("{bad\n")
    with pytest.raises(DataError, match="metrics.jsonl:1"):
        load_run(run)


@pytest.mark.filterwarnings("ignore:TRAIN/EVAL LEAK")   # the dev set is built from the training items on purpose
def test_reads_a_real_training_output(tmp_path):
    """Contract check against `mixlingual train`'s own metrics.jsonl / config.yaml / batch_counts.json."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from helpers_train import tiny_run_overrides

    from mixlingual.training.config import load_config
    from mixlingual.data.jsonl import read_parallel, write_collection
    from mixlingual.data.records import Candidate, Collection, Query
    from mixlingual.training.loop import train

    overrides = tiny_run_overrides(tmp_path, steps=4)
    items = list(read_parallel(tmp_path / "train.jsonl"))[:8]
    queries = [Query(f"{it.id}-{x}", x, t, it.id) for it in items for x, t in it.queries.items()]
    cands = [Candidate(f"{it.id}-{x}-c", x, t, (it.id,)) for it in items for x, t in it.positives.items()]
    write_collection(Collection("dev", queries, cands), tmp_path / "dev.jsonl")
    train(load_config(None, overrides + ["eval.data.name=jsonl", f"eval.data.path={tmp_path / 'dev.jsonl'}",
                                         "eval.every_steps=2"]))
    run = load_run(f"hybrid={tmp_path / 'run'}")
    assert run.label == "hybrid" and run.examples_per_step == 4
    assert sorted(run.curves[("multi", "en", "mrr@10")]) == [2, 4]
    assert set(run.pair_sides) == {"de", "en", "es"}
    assert run.finished and run.seed == 42           # summary.json written; train.seed (default) from config.yaml
    assert all("->" in pair for pair in run.pairs) and sum(run.pairs.values()) > 0
