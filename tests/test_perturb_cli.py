"""End to end on a tiny model: `mixlingual evaluate --perturb` and `mixlingual robustness`."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.set_num_threads(1)
    from helpers_models import make_tiny_model_dir
    from helpers_train import write_tiny_parallel

    from mixlingual.data.jsonl import read_parallel, write_collection
    from mixlingual.data.records import Candidate, Collection, Query

    root = tmp_path_factory.mktemp("robust")
    model = make_tiny_model_dir(root / "model")
    items = list(read_parallel(write_tiny_parallel(root / "train.jsonl", n_items=10)))
    queries = [Query(f"{it.id}-{x}", x, t, it.id) for it in items for x, t in it.queries.items()]
    cands = [Candidate(f"{it.id}-{x}-c", x, t, (it.id,)) for it in items for x, t in it.positives.items()]
    write_collection(Collection("dev", queries, cands), root / "dev.jsonl")
    return root, model


def test_evaluate_perturb_flag_and_comparison(tiny):
    from mixlingual.cli import main

    root, model = tiny
    base = ["evaluate", "--model", model, "--benchmark", "jsonl", "--data", str(root / "dev.jsonl")]
    assert main(base + ["--out", str(root / "clean")]) == 0
    assert main(base + ["--out", str(root / "typo"), "--perturb", "typo:0.3", "--perturb-seed", "1"]) == 0
    info = json.loads((root / "typo" / "perturbation.json").read_text())
    assert info["name"] == "typo" and info["queries_changed"] > 0
    assert main(["robustness", "--clean", str(root / "clean"), "--perturbed", str(root / "typo"),
                 "--out", str(root / "cmp")]) == 0
    report = json.loads((root / "cmp" / "robustness.json").read_text())["typo"]
    clean = json.loads((root / "clean" / "metrics.json").read_text())["settings"]["multi"]["map"]
    assert report["settings"]["multi"]["map"]["clean"] == pytest.approx(clean)
    assert report["top1_flips"]["per_setting"]["multi"]["all"]["n"] > 0
    assert "| typo |" in (root / "cmp" / "robustness.md").read_text()
    assert main(base + ["--out", str(root / "x"), "--perturb", "typo:2"]) == 2   # bad rate: clear error


def test_robustness_command_runs_all_perturbations(tiny):
    from mixlingual.cli import main

    root, model = tiny
    out = root / "rob"
    assert main(["robustness", "--model", model, "--benchmark", "jsonl", "--data", str(root / "dev.jsonl"),
                 "--out", str(out), "--perturb", "case:1", "--perturb", "word-dropout:0.5"]) == 0
    report = json.loads((out / "robustness.json").read_text())
    assert set(report) == {"case-1", "word-dropout-0.5"}
    # the tiny tokenizer lowercases: swapping case cannot change any ranking
    assert report["case-1"]["settings"]["multi"]["map"]["delta"] == pytest.approx(0.0, abs=1e-6)
    assert report["case-1"]["top1_flips"]["per_setting"]["multi"]["all"]["flipped_share"] == 0.0
    assert report["word-dropout-0.5"]["perturbation"]["realized_rate"] == pytest.approx(0.5, abs=0.1)
