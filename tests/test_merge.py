"""Model merging on tiny random BERTs: bit-exact self-merge, lerp arithmetic, refusals, ST loading, CLI, training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers_models import make_tiny_model_dir
from mixlingual.cli import main
from mixlingual.errors import ConfigError, ModelError
from mixlingual.models.encoder import BiEncoder
from mixlingual.models.merge import MERGE_FILE, merge_encoders, merge_models

TEXTS = ["what is the capital of france", "paris", "a red bird in a green tree", "tokyo is in japan"]


@pytest.fixture(scope="module")
def parents(tmp_path_factory):
    """Two saved ST folders of one architecture with different weights (seeds 0 and 1)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("parents")
    folders = []
    for seed in (0, 1):
        enc = BiEncoder.from_pretrained(make_tiny_model_dir(root / f"raw{seed}", seed=seed))
        enc.save(str(root / f"m{seed}"))
        folders.append(str(root / f"m{seed}"))
    return folders


def _state(folder):
    from safetensors.torch import load_file

    return load_file(f"{folder}/model.safetensors")


def test_merging_a_model_with_itself_gives_it_back_bit_for_bit(tmp_path, parents):
    m = parents[0]
    result = merge_models([m, m], [0.7, 0.3], tmp_path / "self")
    before, after = _state(m), _state(tmp_path / "self")
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]) and before[key].dtype == after[key].dtype, key
    assert (tmp_path / "self" / "model.safetensors").read_bytes() == (Path(m) / "model.safetensors").read_bytes()
    assert result.merged_tensors == 0 and result.copied_tensors == len(before)
    # three parents: the weighted sum 0.2 a + 0.3 a + 0.5 a is not a in float32; copying keeps it exact
    merge_models([m, m, m], [0.2, 0.3, 0.5], tmp_path / "self3")
    assert (tmp_path / "self3" / "model.safetensors").read_bytes() == (Path(m) / "model.safetensors").read_bytes()
    assert BiEncoder.from_pretrained(str(tmp_path / "self")).fingerprint() == BiEncoder.from_pretrained(m).fingerprint()


def test_two_parents_are_lerped_in_float32_and_equal_tensors_copied(parents):
    a, b = (BiEncoder.from_pretrained(p) for p in parents)
    with torch.no_grad():  # a "frozen" tensor: equal in both parents, must come out untouched
        b.model.embeddings.word_embeddings.weight.copy_(a.model.embeddings.word_embeddings.weight)
    state_a = {k: v.clone() for k, v in a.model.state_dict().items()}
    state_b = b.model.state_dict()
    result = merge_encoders([a, b], [0.75, 0.25], ["A", "B"])
    merged = result.encoder.model.state_dict()
    key = "encoder.layer.0.attention.self.query.weight"
    assert torch.equal(merged[key], torch.lerp(state_a[key], state_b[key], 0.25))
    assert not torch.equal(merged[key], state_a[key])
    frozen = "embeddings.word_embeddings.weight"
    assert torch.equal(merged[frozen], state_a[frozen])
    assert result.copied_tensors >= 1 and result.merged_tensors >= 1
    assert [p["weight"] for p in result.parents] == [0.75, 0.25]


def test_three_parents_take_the_weighted_sum(tmp_path, parents):
    third = BiEncoder.from_pretrained(make_tiny_model_dir(tmp_path / "raw2", seed=2))
    encoders = [BiEncoder.from_pretrained(p) for p in parents] + [third]
    states = [{k: v.clone() for k, v in e.model.state_dict().items()} for e in encoders]
    result = merge_encoders(encoders, [0.2, 0.3, 0.5])
    key = "encoder.layer.1.output.dense.weight"
    expected = 0.2 * states[0][key] + 0.3 * states[1][key] + 0.5 * states[2][key]
    assert torch.allclose(result.encoder.model.state_dict()[key], expected, atol=1e-7)


@pytest.mark.parametrize("weights, message", [([0.5, 0.6], "must sum to 1"), ([1.2, -0.2], r"in \[0, 1\]"),
                                              ([1.0], "one per parent")])
def test_bad_weights_are_refused(parents, weights, message):
    with pytest.raises(ConfigError, match=message):
        merge_encoders([BiEncoder.from_pretrained(p) for p in parents], weights)


def _refusal(first, other) -> str:
    with pytest.raises(ModelError) as caught:
        merge_encoders([first, other], [0.5, 0.5], ["A", "B"])
    message = str(caught.value)
    assert "\n" not in message and message.startswith("cannot merge 'A' and 'B': ")
    return message


def test_mismatched_parents_are_refused_naming_the_difference(tmp_path, parents):
    base = lambda **kw: BiEncoder.from_pretrained(parents[0], **kw)
    wider = BiEncoder.from_pretrained(make_tiny_model_dir(tmp_path / "wide", hidden_size=48))
    assert "architecture (hidden_size) differs (32 vs 48)" in _refusal(base(), wider)
    deeper = BiEncoder.from_pretrained(make_tiny_model_dir(tmp_path / "deep", layers=3))
    assert "architecture (num_hidden_layers)" in _refusal(base(), deeper)
    assert "pooling differs ('mean' vs 'cls')" in _refusal(base(), base(pooling="cls"))
    assert "query_prefix differs ('query: ' vs 'q: ')" in _refusal(base(), base(query_prefix="q: "))
    assert "normalize differs" in _refusal(base(), base(normalize=False))
    other_tokens = base()
    other_tokens.tokenizer.add_tokens(["zebra"])
    assert "tokenizer (added_tokens) differs" in _refusal(base(), other_tokens)


def test_merged_folder_loads_in_sentence_transformers_and_records_its_parents(tmp_path, parents):
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "merged"
    result = merge_models(parents, [0.6, 0.4], out)
    record = json.loads((out / MERGE_FILE).read_text())
    assert [p["name"] for p in record["parents"]] == parents and record["weights"] == [0.6, 0.4]
    assert [p["fingerprint"] for p in record["parents"]] == [BiEncoder.from_pretrained(p).fingerprint()
                                                             for p in parents]
    ours = BiEncoder.from_pretrained(str(out))
    assert record["fingerprint"] == ours.fingerprint() == result.encoder.fingerprint()
    st = SentenceTransformer(str(out), device="cpu")
    theirs = st.encode_document(TEXTS)
    assert np.allclose(ours.encode_passages(TEXTS), theirs, atol=1e-5)
    # a real merge: neither parent's vectors
    for parent in parents:
        assert not np.allclose(BiEncoder.from_pretrained(parent).encode_passages(TEXTS), theirs, atol=1e-3)


def test_cli_merges_and_refuses_in_one_line(tmp_path, parents, capsys):
    out = tmp_path / "cli"
    assert main(["merge", *parents, "--weight", "0.3", "--out", str(out)]) == 0
    assert json.loads((out / MERGE_FILE).read_text())["weights"] == [0.7, 0.3]
    wide = make_tiny_model_dir(tmp_path / "wide", hidden_size=48)
    capsys.readouterr()
    assert main(["merge", parents[0], wide, "--weight", "0.3", "--out", str(tmp_path / "no")]) == 2
    # (transformers' loading progress bars may come before it)
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mixlingual merge: error:")]
    assert len(errors) == 1 and "architecture (hidden_size) differs (32 vs 48)" in errors[0]
    assert not (tmp_path / "no").exists()
    assert main(["merge", *parents, parents[0], "--weight", "0.3", "--out", str(tmp_path / "x")]) == 2
    assert "--weights for more" in capsys.readouterr().err
    assert main(["merge", *parents, parents[0], "--weights", "0.2,0.3,0.5", "--out", str(tmp_path / "three")]) == 0


def test_training_merges_the_final_model_with_its_base(tmp_path):
    from helpers_train import tiny_run_overrides
    from mixlingual.training.config import load_config
    from mixlingual.training.loop import train

    torch.set_num_threads(1)
    overrides = tiny_run_overrides(tmp_path, steps=3) + ["train.merge_with_base=0.5"]
    train(load_config(None, overrides))
    run = tmp_path / "run"
    base = BiEncoder.from_pretrained(str(tmp_path / "tiny-model"), max_length_query=16, max_length_passage=24)
    tuned = BiEncoder.from_pretrained(str(run / "model-unmerged"))
    merged = BiEncoder.from_pretrained(str(run / "model"))
    record = json.loads((run / "model" / MERGE_FILE).read_text())
    assert record["weights"] == [0.5, 0.5] and record["fingerprint"] == merged.fingerprint()
    assert [p["fingerprint"] for p in record["parents"]] == [base.fingerprint(), tuned.fingerprint()]
    key = "encoder.layer.0.attention.self.query.weight"
    expected = torch.lerp(base.model.state_dict()[key], tuned.model.state_dict()[key], 0.5)
    assert torch.equal(merged.model.state_dict()[key], expected)
    assert merged.config == tuned.config
    # what a sweep entry `merge_with_base: 0.5` runs: the same merge, from the run's config
    again = tmp_path / "again"
    assert main(["merge", "--base-from-config", str(run / "config.yaml"), str(run / "model-unmerged"),
                 "--weight", "0.5", "--out", str(again)]) == 0
    assert BiEncoder.from_pretrained(str(again)).fingerprint() == merged.fingerprint()


@pytest.mark.parametrize("value, message", [("1.5", r"train.merge_with_base: must be in \[0, 1\]"),
                                            ("-0.1", r"train.merge_with_base: must be in \[0, 1\]")])
def test_merge_with_base_is_validated(tmp_path, value, message):
    from helpers_train import tiny_run_overrides
    from mixlingual.training.config import load_config

    with pytest.raises(ConfigError, match=message):
        load_config(None, tiny_run_overrides(tmp_path) + [f"train.merge_with_base={value}"])
    with pytest.raises(ConfigError, match="only the text task"):
        load_config(None, tiny_run_overrides(tmp_path) + ["train.merge_with_base=0.5", "train.task=image-text"])
