"""BiEncoder on a tiny random BERT: shapes, order, windows, grad, errors, save/load, fingerprint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers_models import make_tiny_model_dir
from mixlingual.models.encoder import BiEncoder, EncoderConfig
from mixlingual.errors import ConfigError, MixlingualError, ModelError

TEXTS = ["what is the capital of france", "paris", "the river in the city is big and old",
         "a red bird in a green tree", "one two three", "tokyo is in japan"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    torch.set_num_threads(1)
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def enc(tiny_dir):
    return BiEncoder.from_pretrained(tiny_dir)


def test_defaults_and_limits(enc):
    assert enc.config.query_prefix == "query: " and enc.config.passage_prefix == "passage: "
    assert enc.config.max_length_query == 64
    assert enc.config.max_length_passage == 128  # default 256 lowered to the tiny model's limit
    assert enc.dim == 32


def test_encode_shape_norm_and_input_order(enc):
    full = enc.encode_passages(TEXTS, batch_size=2)
    assert full.shape == (len(TEXTS), 32) and full.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(full, axis=1), 1.0, atol=1e-5)
    for i, text in enumerate(TEXTS):  # length-sorted batching must not permute rows
        single = enc.encode_passages([text])[0]
        np.testing.assert_allclose(full[i], single, atol=1e-5)


def test_prefix_changes_embedding(enc):
    q = enc.encode_queries(TEXTS[:2])
    p = enc.encode_passages(TEXTS[:2])
    assert not np.allclose(q, p, atol=1e-3)


def test_matches_manual_mean_pooling(enc):
    batch = enc.tokenizer(["query: " + TEXTS[0]], return_tensors="pt")
    with torch.no_grad():
        hidden = enc.model(**batch).last_hidden_state[0]
    expected = torch.nn.functional.normalize(hidden.mean(0), dim=-1).numpy()
    np.testing.assert_allclose(enc.encode_queries([TEXTS[0]])[0], expected, atol=1e-5)


def test_embed_has_grad_and_matches_encode(enc):
    out = enc.embed(TEXTS[:3], "passage")
    assert out.requires_grad and out.shape == (3, 32)
    out.sum().backward()
    assert enc.model.embeddings.word_embeddings.weight.grad is not None
    enc.model.eval()
    np.testing.assert_allclose(enc.embed(TEXTS[:3], "passage").detach().numpy(),
                               enc.encode_passages(TEXTS[:3]), atol=1e-5)


def test_truncate_vs_window(tiny_dir):
    long_text = " ".join(["the cat and the dog"] * 30)  # ~150 word tokens
    trunc = BiEncoder.from_pretrained(tiny_dir, max_length_passage=16)
    window = BiEncoder.from_pretrained(tiny_dir, max_length_passage=16, long_input="window")
    sequences, owners = window._windows([long_text, "paris"], "passage")
    assert owners.count(0) > 1 and owners.count(1) == 1
    assert all(len(s) <= 16 for s in sequences)
    # the windows' content tokens, concatenated, are the whole prefixed text
    content = [t for s in sequences[:owners.count(0)] for t in s[1:-1]]
    assert content == window.tokenizer("passage: " + long_text, add_special_tokens=False)["input_ids"]
    a, b = trunc.encode_passages([long_text]), window.encode_passages([long_text])
    assert not np.allclose(a, b, atol=1e-3)
    # short texts are untouched by window mode
    np.testing.assert_allclose(trunc.encode_passages(["paris"]),
                               window.encode_passages(["paris"]), atol=1e-6)


def test_window_is_token_weighted_mean(tiny_dir):
    window = BiEncoder.from_pretrained(tiny_dir, max_length_passage=8, long_input="window",
                                       normalize=False)
    text = "one two three one two three one two three red"
    sequences, _ = window._windows([text], "passage")
    with torch.no_grad():
        pooled = [window._pool([s])[0] for s in sequences]
    weights = torch.tensor([float(len(s) - 2) for s in sequences])  # content tokens only
    expected = sum(w * p for w, p in zip(weights, pooled)) / weights.sum()
    np.testing.assert_allclose(window.encode_passages([text])[0], expected.numpy(), atol=1e-5)


def test_cls_pooling(tiny_dir):
    enc = BiEncoder.from_pretrained(tiny_dir, pooling="cls", normalize=False)
    batch = enc.tokenizer(["passage: paris"], return_tensors="pt")
    with torch.no_grad():
        first = enc.model(**batch).last_hidden_state[0, 0].numpy()
    np.testing.assert_allclose(enc.encode_passages(["paris"])[0], first, atol=1e-5)


@pytest.mark.parametrize("bad, message", [
    ([], "empty"), ("paris", "list of strings"), (["ok", 3], r"texts\[1\]"),
    (["ok", "fine", None], r"texts\[2\]"),
])
def test_bad_texts(enc, bad, message):
    with pytest.raises(MixlingualError, match=message):
        enc.encode_queries(bad)


def test_bad_settings(tiny_dir, enc):
    with pytest.raises(ConfigError, match="max_length_passage=4096 is above the model's limit of 128"):
        BiEncoder.from_pretrained(tiny_dir, max_length_passage=4096)
    with pytest.raises(ConfigError, match="encoder.pooling"):
        BiEncoder.from_pretrained(tiny_dir, pooling="max")
    with pytest.raises(ConfigError, match="unknown encoder setting"):
        BiEncoder.from_pretrained(tiny_dir, prefix="x")
    with pytest.raises(MixlingualError, match="kind must be one of"):
        enc.encode(["x"], kind="document")


def test_unknown_model_names(tmp_path):
    with pytest.raises(ModelError, match="unknown model 'nobody/no-such-model'.*not an embedded"):
        BiEncoder.from_pretrained("nobody/no-such-model")
    with pytest.raises(ModelError, match="unknown embedded model"):
        BiEncoder.from_pretrained("embedded:no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        BiEncoder.from_pretrained(str(tmp_path / "empty"))


def test_save_layout_and_reload(tmp_path, tiny_dir):
    enc = BiEncoder.from_pretrained(tiny_dir, query_prefix="q: ", passage_prefix="p: ",
                                    pooling="cls", max_length_query=20, max_length_passage=100)
    out = tmp_path / "saved"
    enc.save(str(out))
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"modules.json", "model.safetensors", "config.json", "tokenizer.json",
            "1_Pooling/config.json", "config_sentence_transformers.json",
            "sentence_bert_config.json"} <= files
    assert not any(f.endswith((".bin", ".pt")) for f in files)
    st_config = json.loads((out / "config_sentence_transformers.json").read_text())
    assert st_config["prompts"] == {"query": "q: ", "document": "p: ", "passage": "p: "}
    assert st_config["default_prompt_name"] is None
    assert json.loads((out / "sentence_bert_config.json").read_text())["max_seq_length"] == 100
    back = BiEncoder.from_pretrained(str(out))
    assert back.config == enc.config
    assert back.fingerprint() == enc.fingerprint()
    np.testing.assert_allclose(back.encode_queries(TEXTS), enc.encode_queries(TEXTS), atol=1e-6)
    # saving again over an existing folder replaces it
    enc.save(str(out))
    assert BiEncoder.from_pretrained(str(out)).config == enc.config


def test_sentence_transformers_loads_saved_folder(tmp_path, enc):
    from sentence_transformers import SentenceTransformer

    enc.save(str(tmp_path / "st"))
    st = SentenceTransformer(str(tmp_path / "st"), device="cpu")
    for ours, theirs in ((enc.encode_queries(TEXTS), st.encode_query(TEXTS)),
                         (enc.encode_passages(TEXTS), st.encode_document(TEXTS))):
        cosines = (ours * theirs).sum(1) / np.linalg.norm(theirs, axis=1)
        assert cosines.min() >= 0.9999


def test_fingerprint_follows_weights_and_config(tiny_dir):
    a = BiEncoder.from_pretrained(tiny_dir)
    b = BiEncoder.from_pretrained(tiny_dir)
    assert a.fingerprint() == b.fingerprint() and len(a.fingerprint()) == 16
    assert BiEncoder.from_pretrained(tiny_dir, pooling="cls").fingerprint() != a.fingerprint()
    with torch.no_grad():
        b.model.embeddings.word_embeddings.weight[5, 0] += 1.0
    assert a.fingerprint() != b.fingerprint()


def test_config_dataclass_defaults():
    config = EncoderConfig()
    assert (config.pooling, config.normalize, config.long_input, config.precision) == (
        "mean", True, "truncate", "auto")
    assert (config.max_length_query, config.max_length_passage) == (64, 256)


def test_bf16_precision_runs_close(tiny_dir):
    fp32 = BiEncoder.from_pretrained(tiny_dir, precision="fp32").encode_queries(TEXTS)
    bf16 = BiEncoder.from_pretrained(tiny_dir, precision="bf16").encode_queries(TEXTS)
    assert bf16.dtype == np.float32
    assert ((fp32 * bf16).sum(1)).min() > 0.99


def test_progress_bar_on_request(enc, capsys):
    enc.encode_passages(TEXTS, batch_size=2, show_progress=True)
    assert "encode" in capsys.readouterr().err
    enc.encode_passages(TEXTS, batch_size=2)  # few texts: no bar by default
    assert "encode" not in capsys.readouterr().err


def test_a_saved_folder_loads_in_sentence_transformers_without_a_load_report(tmp_path, enc, capfd, caplog):
    """No "pooler.dense.weight MISSING ... newly initialized" report: the folder says it has no pooler."""
    import logging
    import warnings

    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    enc.save(str(tmp_path / "st"))
    hf_logging.enable_propagation()
    try:
        with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO):
            warnings.simplefilter("always")
            st = SentenceTransformer(str(tmp_path / "st"), device="cpu")
    finally:
        hf_logging.disable_propagation()
    printed = capfd.readouterr()
    said = "\n".join([printed.out, printed.err, caplog.text, *(str(w.message) for w in caught)])
    for phrase in ("MISSING", "newly initialized", "pooler"):
        assert phrase not in said, said
    ours, theirs = enc.encode_passages(TEXTS), st.encode_document(TEXTS)
    assert np.allclose(ours, theirs, atol=1e-5)
