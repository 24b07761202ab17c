"""`mixlingual evaluate --benchmark image-text` on a saved tiny model and a generated JSONL set."""

from __future__ import annotations

import json

import pytest
import torch

from helpers_models import make_tiny_model_dir
from mixlingual.cli import main
from mixlingual.imagetext.model import ImageTextConfig, ImageTextModel
from mixlingual.imagetext.synthetic import generate_scenes, write_synthetic
from mixlingual.imagetext.towers import TowerSpec


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("itcli")
    text = make_tiny_model_dir(root / "text")
    config = ImageTextConfig(text_model=text, freeze_text=False, embed_dim=16,
                             image_tower=TowerSpec(name="conv", image_size=32, widths=[8, 16]))
    ImageTextModel.build(config).save(str(root / "model"))
    captions = write_synthetic(generate_scenes(12, seed=5, size=32, languages=("en", "ru")), root / "data")
    return root, captions


def test_evaluate_image_text_writes_metrics_and_report(setup, capsys):
    root, captions = setup
    rc = main(["evaluate", "--benchmark", "image-text", "--data", str(captions), "--model", str(root / "model"),
               "--out", str(root / "eval"), "--langs", "en,ru"])
    assert rc == 0
    metrics = json.loads((root / "eval" / "metrics.json").read_text())
    assert metrics["n_images"] == 12 and metrics["languages"] == ["en", "ru"]
    assert 0.0 <= metrics["settings"]["t2i"]["r@1"] <= 1.0
    assert "| ru |" in capsys.readouterr().out


def test_missing_images_are_a_clean_error(setup, capsys):
    root, captions = setup
    next((root / "data" / "images").iterdir()).unlink()
    rc = main(["evaluate", "--benchmark", "image-text", "--data", str(captions), "--model", str(root / "model"),
               "--out", str(root / "eval2")])
    assert rc == 2
    assert "1 of 12 image files are missing" in capsys.readouterr().err


def test_demo_image_text_prints_before_and_after(tmp_path, capsys):
    out = tmp_path / "demo"
    small = ["--set", "data.train.options={n: 80, seed: 0, size: 32}",
             "--set", "eval.data.options={n: 30, seed: 1000, size: 32, exclude: {n: 80, seed: 0}}",
             "--set", "imagetext={image_size: 32, widths: [8, 16], text_tower: scratch, freeze_text: false,"
                      " scratch_hidden: 32, embed_dim: 16}",
             "--set", "train.batch_size=16", "--set", "train.progress=false"]
    assert main(["demo", "--task", "image-text", "--steps", "3", "--out", str(out), *small]) == 0
    printed = capsys.readouterr().out
    assert "before" in printed and "t2i r@1" in printed and "rank distance" in printed
    assert (out / "eval" / "report.md").is_file() and (out / "train" / "model" / "imagetext_config.json").is_file()
    assert main(["demo", "--task", "image-text", "--steps", "3", "--out", str(out), *small]) == 2  # no silent overwrite
