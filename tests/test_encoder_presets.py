"""BiEncoder.from_pretrained applies backbone presets and refuses folders it would encode wrongly."""

import json
from pathlib import Path

import pytest

from mixlingual.models import presets
from mixlingual.models.encoder import BiEncoder
from mixlingual.errors import ModelError
from helpers_models import make_tiny_model_dir


def test_preset_settings_apply_under_saved_settings_and_overrides(tmp_path, monkeypatch):
    folder = Path(make_tiny_model_dir(tmp_path / "tiny"))
    # A preset keyed by this folder: its settings must apply, capped at the model's limit.
    fake = presets.Preset(str(folder), ("tiny-alias",), {"pooling": "cls", "query_prefix": "",
                                                          "max_length_query": 10_000})
    monkeypatch.setattr(presets, "_BY_NAME", {**presets._BY_NAME, "tiny-alias": fake})
    enc = BiEncoder.from_pretrained("tiny-alias")
    assert enc.config.pooling == "cls"
    assert enc.config.query_prefix == ""
    assert enc.config.max_length_query < 10_000
    assert BiEncoder.from_pretrained("tiny-alias", pooling="mean").config.pooling == "mean"


def test_folder_with_dense_head_is_refused(tmp_path):
    folder = Path(make_tiny_model_dir(tmp_path / "tiny"))
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
    ]))
    with pytest.raises(ModelError, match="Dense"):
        BiEncoder.from_pretrained(str(folder))
