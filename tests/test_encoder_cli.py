"""`mixlingual encode` and `mixlingual backbone` through mixlingual.cli.main on a tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers_models import make_tiny_model_dir
from mixlingual.cli import main
from mixlingual.models.encoder import BiEncoder

TEXTS = ["what is the capital of france", "paris is a big city", "the river is old"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    torch.set_num_threads(1)
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model")


def test_encode_lines(tmp_path, tiny_dir):
    src = tmp_path / "texts.txt"
    src.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    out = tmp_path / "out" / "vectors.npy"
    code = main(["encode", "--model", tiny_dir, "--kind", "query", "--input", str(src),
                 "--out", str(out), "--batch-size", "2", "--fp32"])
    assert code == 0
    vectors = np.load(out)
    expected = BiEncoder.from_pretrained(tiny_dir).encode_queries(TEXTS)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    sidecar = json.loads((tmp_path / "out" / "vectors.npy.json").read_text())
    assert sidecar["kind"] == "query" and sidecar["prefix"] == "query: "
    assert (sidecar["count"], sidecar["dim"], sidecar["dtype"]) == (3, 32, "float32")
    assert sidecar["model"] == tiny_dir and sidecar["precision"] == "fp32"
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_encode_jsonl_passages(tmp_path, tiny_dir):
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    out = tmp_path / "docs.npy"
    assert main(["encode", "--model", tiny_dir, "--kind", "passage", "--input", str(src),
                 "--out", str(out)]) == 0
    expected = BiEncoder.from_pretrained(tiny_dir).encode_passages(TEXTS)
    np.testing.assert_allclose(np.load(out), expected, atol=1e-5)
    assert json.loads((tmp_path / "docs.npy.json").read_text())["prefix"] == "passage: "


@pytest.mark.parametrize("content, message", [
    ('{"text": "paris"}\n{"title": "no text"}\n', "docs.jsonl:2: field 'text'"),
    ('{"text": "paris"}\nnot json\n', "docs.jsonl:2: not valid JSON"),
    ("", "no texts to encode"),
])
def test_encode_jsonl_errors(tmp_path, tiny_dir, capsys, content, message):
    src = tmp_path / "docs.jsonl"
    src.write_text(content)
    code = main(["encode", "--model", tiny_dir, "--kind", "passage", "--input", str(src),
                 "--out", str(tmp_path / "x.npy")])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.npy").exists()


def test_encode_empty_line_is_an_error(tmp_path, tiny_dir, capsys):
    src = tmp_path / "texts.txt"
    src.write_text("paris\n\nrome\n")
    assert main(["encode", "--model", tiny_dir, "--kind", "query", "--input", str(src),
                 "--out", str(tmp_path / "x.npy")]) == 2
    assert "texts.txt:2: empty line" in capsys.readouterr().err


def test_encode_unknown_model(tmp_path, capsys):
    src = tmp_path / "texts.txt"
    src.write_text("paris\n")
    assert main(["encode", "--model", "nobody/no-such-model", "--kind", "query",
                 "--input", str(src), "--out", str(tmp_path / "x.npy")]) == 2
    assert "unknown model 'nobody/no-such-model'" in capsys.readouterr().err


def test_backbone_describe_and_save(tmp_path, tiny_dir, capsys):
    assert main(["backbone", tiny_dir, "--json", "--save", str(tmp_path / "saved")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["dim"], info["layers"], info["max_length"]) == (32, 2, 128)
    assert info["query_prefix"] == "query: " and info["pooling"] == "mean"
    assert info["parameters"] == sum(
        p.numel() for p in BiEncoder.from_pretrained(tiny_dir).model.parameters())
    assert (tmp_path / "saved" / "modules.json").is_file()
    assert main(["backbone", tiny_dir]) == 0
    text = capsys.readouterr().out
    assert "passage_prefix" in text and "'passage: '" in text
