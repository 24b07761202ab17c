"""The padding-free forward gives the stock padded forward's embeddings and gradients."""

import pytest
import torch

from mixlingual.unpadded import supports_unpadded, unpadded_pool


def _models():
    from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

    common = dict(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, max_position_embeddings=40)
    torch.manual_seed(0)
    bert = BertModel(BertConfig(**common, pad_token_id=0), add_pooling_layer=False)
    # XLM-R numbers positions from pad id + 1: the packed forward must do the same.
    xlmr = XLMRobertaModel(XLMRobertaConfig(**common, pad_token_id=1), add_pooling_layer=False)
    return {"bert": (bert, 0), "xlm-r": (xlmr, 1)}


def _sequences(pad_id: int, seed: int = 1) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    lengths = [3, 17, 9, 30, 5, 12, 9, 9, 9]   # with bucket_size 2: a bucket of equal lengths too
    return [[2] + [int(x) for x in torch.randint(pad_id + 3, 60, (n - 2,), generator=generator)] + [3]
            for n in lengths]


def _padded_pool(model, sequences, pad_id, pooling):
    longest = max(map(len, sequences))
    ids = torch.full((len(sequences), longest), pad_id)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(sequences):
        ids[row, :len(seq)] = torch.tensor(seq)
        mask[row, :len(seq)] = 1
    hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    if pooling == "cls":
        return hidden[:, 0]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1)


@pytest.mark.parametrize("name", ["bert", "xlm-r"])
@pytest.mark.parametrize("pooling, bucket_size", [("mean", 8), ("cls", 8), ("mean", 2), ("mean", 100)])
def test_same_embeddings_and_gradients_as_the_padded_forward(name, pooling, bucket_size):
    model, pad_id = _models()[name]
    assert supports_unpadded(model)
    model.eval()   # no dropout: the two forwards must agree number for number
    sequences = _sequences(pad_id)
    target = torch.randn(len(sequences), 32, generator=torch.Generator().manual_seed(2))

    def run(fn):
        model.zero_grad()
        out = fn()
        (out * target).sum().backward()
        return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    stock, stock_grads = run(lambda: _padded_pool(model, sequences, pad_id, pooling))
    ours, our_grads = run(lambda: unpadded_pool(model, sequences, pooling, bucket_size=bucket_size))
    torch.testing.assert_close(ours, stock, atol=1e-5, rtol=1e-4)
    assert stock_grads.keys() == our_grads.keys() and len(our_grads) > 10
    for key in stock_grads:
        torch.testing.assert_close(our_grads[key], stock_grads[key], atol=1e-5, rtol=1e-4, msg=key)


def test_bf16_autocast_and_dropout_in_training_mode():
    model, pad_id = _models()["bert"]
    sequences = _sequences(pad_id, seed=3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model.eval()
        stock = _padded_pool(model, sequences, pad_id, "mean").float()
        ours = unpadded_pool(model, sequences, "mean").float()
        assert torch.nn.functional.cosine_similarity(ours, stock).min() > 0.995
        model.train()   # dropout is on: a different draw, but the same model
        torch.manual_seed(0)
        noisy = unpadded_pool(model, sequences, "mean").float()
    assert not torch.allclose(noisy, ours) and torch.nn.functional.cosine_similarity(noisy, stock).min() > 0.9


def test_unsupported_models_are_refused():
    from transformers import BertConfig, BertModel

    relative = BertModel(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                    intermediate_size=32, position_embedding_type="relative_key"))
    assert not supports_unpadded(relative)
    assert not supports_unpadded(torch.nn.Linear(2, 2))


def test_encoder_uses_it_in_embed_only_when_asked(tmp_path):
    from helpers_models import make_tiny_model_dir
    from mixlingual.encoder import BiEncoder

    encoder = BiEncoder.from_pretrained(make_tiny_model_dir(tmp_path / "tiny"))
    encoder.eval()
    texts = ["the cat", "what is the capital of france and of spain", "a dog in paris"]
    with torch.no_grad():
        padded = encoder.embed(texts, "passage")
        encoder.unpad = True
        packed = encoder.embed(texts, "passage")
    torch.testing.assert_close(packed, padded, atol=1e-5, rtol=1e-4)
    assert encoder._unpad_ok is True


def test_queries_and_passages_in_one_packed_pass_equal_separate_passes(tmp_path):
    from helpers_models import make_tiny_model_dir
    from mixlingual.encoder import BiEncoder

    encoder = BiEncoder.from_pretrained(make_tiny_model_dir(tmp_path / "tiny"), max_length_query=8)
    encoder.eval()
    queries = ["what is the capital of france and of spain and of italy", "the cat"]
    passages = ["paris is the capital of france", "a dog", "berlin is in germany"]
    with torch.no_grad():
        separate = [encoder.embed(queries, "query"), encoder.embed(passages, "passage")]
        encoder.unpad = True
        joint = encoder.embed_groups([(queries, "query"), (passages, "passage")])
    for a, b in zip(joint, separate):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert [t.shape[0] for t in joint] == [2, 3]
