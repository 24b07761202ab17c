"""Config: YAML + --set overrides, strict keys with suggestions, validation naming the key."""

from __future__ import annotations

import pytest
import yaml

from mixlingual.training.config import load_config, save_config, validate_against_data
from mixlingual.data.records import ParallelItem
from mixlingual.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_yaml_and_overrides_are_typed(tmp_path):
    path = write(tmp_path, "data:\n  train: {name: mlqa, path: x}\nsampling:\n  alpha: 0.25\n")
    cfg = load_config(path, ["train.max_steps=7", "sampling.alpha=1", "eval.langs=[de, en]",
                             "model.freeze_word_embeddings=true"])
    assert cfg.data.train.name == "mlqa" and cfg.sampling.alpha == 1.0 and isinstance(cfg.sampling.alpha, float)
    assert cfg.train.max_steps == 7 and cfg.eval.langs == ["de", "en"] and cfg.model.freeze_word_embeddings is True
    assert cfg.optim.lr == 3e-5 and cfg.optim.weight_decay == 0.01 and cfg.loss.temperature == 0.05
    save_config(cfg, tmp_path / "resolved.yaml")
    again = load_config(tmp_path / "resolved.yaml")
    assert again == cfg


@pytest.mark.parametrize("override, key", [
    ("sampling.alpah=0.3", "did you mean 'sampling.alpha'"),
    ("trian.max_steps=3", "did you mean 'train'"),
    ("sampling.alpha=1.5", "sampling.alpha"),
    ("sampling.alpha=abc", "sampling.alpha"),
    ("train.batch_size=0", "train.batch_size"),
    ("train.batch_size=2.5", "train.batch_size"),
    ("train.precision=fp8", "train.precision"),
    ("optim.scheduler=exp", "optim.scheduler"),
    ("sampling.kind=mixture", "sampling.ratios"),
    ("sampling.schedule=linear", "sampling.alpha_end"),
    ("eval.metric=map", "eval.metric"),
    ("output.overlap=ignore", "output.overlap"),
    ("loss.temperature=0", "loss.temperature"),
    ("train.max_steps", "KEY=VALUE"),
])
def test_bad_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.").replace("(", r"\(")):
        load_config(None, ["data.train.name=demo", override])


def test_mixture_ratios_must_sum_to_one():
    with pytest.raises(ConfigError, match="sum to 1"):
        load_config(None, ["sampling.kind=mixture", "sampling.ratios={X-X: 0.5, X-Y: 0.4}"])
    with pytest.raises(ConfigError, match="unknown batch kind 'XX'"):
        load_config(None, ["sampling.kind=mixture", "sampling.ratios={XX: 1.0}"])
    cfg = load_config(None, ["sampling.kind=mixture", "sampling.ratios={X-X: 0.5, X-Y: 0.3, mixed: 0.2}"])
    assert cfg.ratio_schedule(10).at(0) == {"X-X": 0.5, "X-Y": 0.3, "mixed": 0.2}


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(write(tmp_path, "a: [1,\n"))
    with pytest.raises(ConfigError, match="unknown config key 'sampling.alpah'"):
        load_config(write(tmp_path, yaml.safe_dump({"sampling": {"alpah": 0.1}})))


def test_checks_against_the_data():
    items = [ParallelItem(id=str(i), queries={"de": "q", "en": "q"}, positives={"de": "p"}) for i in range(5)]
    validate_against_data(load_config(None, ["train.batch_size=5"]), items)
    with pytest.raises(ConfigError, match="data.languages: no training data in 'fi'"):
        validate_against_data(load_config(None, ["train.batch_size=2", "data.languages=[de, fi]"]), items)
    with pytest.raises(ConfigError, match="train.batch_size: 3 x 2 rank"):
        validate_against_data(load_config(None, ["train.batch_size=3"]), items, world_size=2)


REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_demo_yaml_is_the_demo_settings():
    from mixlingual.training.config import config_from_dict
    from mixlingual.experiments.demo import DEMO_SETTINGS

    assert load_config(REPO / "configs" / "demo.yaml") == config_from_dict(DEMO_SETTINGS)


@pytest.mark.parametrize("name, kind", [("mlqa-hybrid", "hybrid"), ("mlqa-xx", "mono"), ("mlqa-xy", "cross")])
def test_mlqa_configs_differ_only_in_sampling(name, kind):
    cfg = load_config(REPO / "configs" / f"{name}.yaml")
    hybrid = load_config(REPO / "configs" / "mlqa-hybrid.yaml")
    assert cfg.sampling.kind == kind and cfg.train.max_steps == 300 and cfg.train.precision == "bf16"
    assert cfg.model == hybrid.model and cfg.data == hybrid.data and cfg.train == hybrid.train
    assert cfg.eval == hybrid.eval and cfg.optim == hybrid.optim
