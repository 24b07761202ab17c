"""Backbone presets, the ST adapter (LaBSE-style Dense head) and the LASER adapter, all offline."""

import sys
import types

import numpy as np
import pytest

from mixlingual.models.load import load_encoder
from mixlingual.models.presets import apply_preset, get_preset, unsupported_st_modules
from mixlingual.errors import ModelError


def make_tiny_xlmr_dir(path):
    """A tiny random XLM-R (RoBERTa positions, <s>/</s> specials) with a word-level tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

    words = ["<s>", "<pad>", "</s>", "<unk>", "query:", "passage:", "the", "cat", "dog", "red", "house"]
    vocab = {w: i for i, w in enumerate(words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", cls_token="<s>", sep_token="</s>", model_max_length=512)
    config = XLMRobertaConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                              intermediate_size=32, max_position_embeddings=514, pad_token_id=1)
    import torch

    torch.manual_seed(0)
    XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(path)
    fast.save_pretrained(path)
    return str(path)


def make_tiny_labse_dir(tmp_path):
    """Tiny BERT -> CLS pooling -> Dense(tanh) -> Normalize, saved as a sentence-transformers folder."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling, Transformer

    from helpers_models import make_tiny_model_dir

    base = make_tiny_model_dir(tmp_path / "bert", max_length=512)
    torch.manual_seed(1)
    transformer = Transformer(base)
    dim = transformer.get_embedding_dimension()
    st = SentenceTransformer(modules=[transformer, Pooling(dim, pooling_mode="cls"), Dense(dim, 8), Normalize()],
                             device="cpu")
    st.save(str(tmp_path / "labse"))
    return str(tmp_path / "labse"), st


def test_aliases_and_ids_resolve_to_the_same_settings():
    assert apply_preset("me5-small") == apply_preset("intfloat/multilingual-e5-small")
    name, settings = apply_preset("LaBSE")
    assert name == "sentence-transformers/LaBSE" and settings["pooling"] == "cls" and settings["query_prefix"] == ""
    assert apply_preset("./my-folder") == ("./my-folder", {})
    assert get_preset("xlmr-large").pretraining == "xlmr" and get_preset("mbert").settings["pooling"] == "mean"


def test_preset_settings_reach_a_local_xlmr_like_model(tmp_path):
    folder = make_tiny_xlmr_dir(tmp_path / "xlmr")
    e5_like = load_encoder(folder, preset="me5-small")
    assert e5_like.config.query_prefix == "query: " and e5_like.config.max_length_passage == 512
    plain = load_encoder(folder, preset="xlmr-base")
    assert plain.config.query_prefix == "" and plain.config.pooling == "mean"
    # the prefix is really added: different vectors for the same text
    a, b = e5_like.encode(["the cat"], kind="query"), plain.encode(["the cat"], kind="query")
    assert a.shape == (1, 16) and not np.allclose(a, b)
    with pytest.raises(ModelError, match="unknown preset"):
        load_encoder(folder, preset="gpt-9")


def test_bert_like_model_with_mbert_preset(tmp_path):
    from helpers_models import make_tiny_model_dir

    enc = load_encoder(make_tiny_model_dir(tmp_path / "bert", max_length=512), preset="mbert",
                       max_length_query=32)
    assert enc.config.pooling == "mean" and enc.config.passage_prefix == "" and enc.config.max_length_query == 32


def test_dense_head_folder_goes_through_sentence_transformers(tmp_path):
    folder, st = make_tiny_labse_dir(tmp_path)
    assert unsupported_st_modules(folder) == ["Dense"]
    enc = load_encoder(folder, preset="labse")
    texts = ["the red house", "a small dog"]
    got = enc.encode(texts, kind="query")
    assert got.shape == (2, 8) and enc.dim == 8 and np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert np.allclose(got, st.encode(texts, normalize_embeddings=True), atol=1e-5)
    # BiEncoder would skip the Dense layer (other vectors altogether), so it refuses the folder
    from mixlingual.models.encoder import BiEncoder

    with pytest.raises(ModelError, match="Dense"):
        BiEncoder.from_pretrained(folder)


def test_hub_only_models_fail_with_a_model_error_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="LaBSE"):
        load_encoder("labse")


def test_laser_adapter_errors_and_real_code_path(monkeypatch):
    monkeypatch.setitem(sys.modules, "laser_encoders", None)   # import fails like an absent package
    with pytest.raises(ModelError, match="laser_encoders"):
        load_encoder("laser")

    class FakePipeline:  # stands in for laser_encoders.LaserEncoderPipeline
        def __init__(self, lang=None, model_dir=None):
            if model_dir is None:
                raise OSError("HTTP Error 403: Forbidden")
            self.lang = lang

        def encode_sentences(self, texts):
            return np.array([[len(t), 1.0, 0.0] for t in texts])

    monkeypatch.setitem(sys.modules, "laser_encoders", types.SimpleNamespace(LaserEncoderPipeline=FakePipeline))
    with pytest.raises(ModelError, match="cannot load LASER weights.*403"):
        load_encoder("laser:zul_Latn")
    enc = load_encoder("laser:zul_Latn", model_dir="/models/laser")
    vectors = enc.encode(["abc", "a"], kind="passage")
    assert enc.name == "laser:zul_Latn" and np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
