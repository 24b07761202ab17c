"""The padding-free forward gives the stock padded forward's embeddings and gradients."""

import pytest
import torch

from mixlingual.models.unpadded import supports_unpadded, unpadded_pool


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


def _outputs_and_grads(model, fn, target, training: bool | None = None):
    """fn()'s pooled output and every parameter gradient of (output * target).sum(), from zero;
    `training` sets the model's mode first (None: as it is)."""
    if training is not None:
        model.train(training)
    model.zero_grad()
    out = fn()
    (out * target).sum().backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", ["bert", "xlm-r"])
@pytest.mark.parametrize("pooling, bucket_size", [("mean", 8), ("cls", 8), ("mean", 2), ("mean", 100)])
def test_same_embeddings_and_gradients_as_the_padded_forward(name, pooling, bucket_size):
    model, pad_id = _models()[name]
    assert supports_unpadded(model)
    model.eval()   # no dropout: the two forwards must agree number for number
    sequences = _sequences(pad_id)
    target = torch.randn(len(sequences), 32, generator=torch.Generator().manual_seed(2))
    stock, stock_grads = _outputs_and_grads(model, lambda: _padded_pool(model, sequences, pad_id, pooling), target)
    ours, our_grads = _outputs_and_grads(
        model, lambda: unpadded_pool(model, sequences, pooling, bucket_size=bucket_size), target)
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
    from mixlingual.models.encoder import BiEncoder

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
    from mixlingual.models.encoder import BiEncoder

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


def _set_dropout(model, p):
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
    for layer in model.encoder.layer:   # SDPA reads its own rate, not only the module's
        layer.attention.self.dropout_prob = p


@pytest.mark.parametrize("name", ["bert", "xlm-r"])
def test_training_mode_dropout_path_has_the_padded_forwards_outputs_and_gradients(name):
    """Training mode takes the explicit attention and the `keep_mask` dropout; with a rate that
    rounds to no drop at all it must give the stock forward's numbers, gradients included."""
    model, pad_id = _models()[name]
    _set_dropout(model, 1e-9)       # > 0: the dropout code runs; rounds to 0/65536: nothing dropped
    sequences = _sequences(pad_id, seed=4)
    target = torch.randn(len(sequences), 32, generator=torch.Generator().manual_seed(5))
    stock, stock_grads = _outputs_and_grads(model, lambda: _padded_pool(model, sequences, pad_id, "mean"), target, False)
    ours, our_grads = _outputs_and_grads(model, lambda: unpadded_pool(model, sequences, "mean", bucket_size=4), target, True)
    torch.testing.assert_close(ours, stock, atol=1e-5, rtol=1e-4)
    assert stock_grads.keys() == our_grads.keys()
    for key in stock_grads:
        torch.testing.assert_close(our_grads[key], stock_grads[key], atol=1e-5, rtol=1e-4, msg=key)


def test_keep_mask_rate_scale_and_seed():
    from mixlingual.models.unpadded import keep_mask

    torch.manual_seed(0)
    keep, scale = keep_mask((64, 1000, 7), 0.1, torch.bfloat16)   # an odd count: a partial last word
    assert keep.dtype == torch.bfloat16 and set(keep.unique().tolist()) <= {0.0, 1.0}
    dropped = 1 - keep.float().mean().item()
    assert abs(dropped - 0.1) < 0.003
    assert scale == pytest.approx(1 / (1 - round(0.1 * 65536) / 65536))
    assert abs(keep.float().mean().item() * scale - 1) < 0.004     # unbiased
    torch.manual_seed(0)
    assert torch.equal(keep_mask((64, 1000, 7), 0.1, torch.bfloat16)[0], keep)
    assert keep_mask((3,), 0.0, torch.float32)[0].sum() == 3
    everything = keep_mask((3,), 1.0, torch.float32)
    assert everything[0].sum() == 0 and everything[1] == 0.0


def test_bucket_attention_with_dropout_draws_a_mask_per_call_and_keeps_the_expectation():
    from mixlingual.models.unpadded import bucket_attention

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 6, 4) for _ in range(3))
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])[:, None, None, :]
    exact = bucket_attention(q, k, v, mask, 0.0, None)
    draws = torch.stack([bucket_attention(q, k, v, mask, 0.3, None) for _ in range(3000)])
    assert not torch.equal(draws[0], draws[1])
    torch.testing.assert_close(draws.mean(0), exact, atol=0.06, rtol=0.05)


def test_bucket_plan_covers_every_text_in_order_and_cuts_at_length_jumps():
    from mixlingual.models.unpadded import plan_buckets

    lengths = [5] * 10 + [200, 210, 250, 256]
    plan = plan_buckets(lengths, most=16)
    assert [i for first, end in plan for i in range(first, end)] == list(range(len(lengths)))
    assert plan[:2] == [(0, 8), (8, 10)]         # the short texts apart, in power-of-two buckets
    assert all(end - first in (1, 2, 4, 8, 16) for first, end in plan)
    assert all(end - first in (1, 2, 3) for first, end in plan_buckets(lengths, most=3))
    assert plan_buckets([7], most=8) == [(0, 1)]
    assert plan_buckets([], most=8) == []


def test_encode_takes_the_packed_forward_and_matches_the_padded_one(tmp_path):
    from helpers_models import make_tiny_model_dir
    from mixlingual.models.encoder import BiEncoder

    encoder = BiEncoder.from_pretrained(make_tiny_model_dir(tmp_path / "tiny"), precision="fp32")
    texts = ["the cat", "what is the capital of france and of spain", "a dog in paris", "b"]
    packed = encoder.encode_passages(texts, batch_size=3)
    assert encoder._unpad_ok is True and encoder.unpad is False   # training's switch untouched
    encoder.encode_packed = False
    padded = encoder.encode_passages(texts, batch_size=3)
    torch.testing.assert_close(torch.from_numpy(packed), torch.from_numpy(padded), atol=1e-5, rtol=1e-4)


def test_size_classes_are_few_per_power_of_two_and_close_above():
    from mixlingual.models.unpadded import bucket_sizes, size_class

    for per_octave in (8, 16):
        classes = [size_class(n, per_octave) for n in range(1, 20000)]
        assert all(c >= n and c % 8 == 0 for n, c in enumerate(classes, 1))
        assert all(c - n <= max(7, n / per_octave) for n, c in enumerate(classes, 1))
        for k in range(3, 14):   # at most per_octave sizes in (2^k, 2^(k+1)]
            assert len({c for c in classes if 2 ** k < c <= 2 ** (k + 1)}) <= per_octave
    assert size_class(1000, 16) == 1024 and size_class(1025, 16) == 1088 and size_class(3, 16) == 8
    assert bucket_sizes(16) == [1, 2, 4, 8, 16] and bucket_sizes(12) == [1, 2, 4, 8, 12] and bucket_sizes(1) == [1]


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_padding_rows_and_padded_buckets_change_no_output_or_gradient(training, pooling):
    """Lengths that fill no shape class: padding rows after the real tokens, every bucket padded
    beyond its longest text. Embeddings and all gradients stay the stock forward's, and the
    padding rows' token id (0, used by no real token) gets an exactly zero gradient."""
    from mixlingual.models.unpadded import PackedBatch

    model, pad_id = _models()["xlm-r"]
    _set_dropout(model, 1e-9)       # training mode: the explicit attention and dropout path, nothing dropped
    generator = torch.Generator().manual_seed(6)
    sequences = [[2] + [int(x) for x in torch.randint(4, 60, (n - 2,), generator=generator)] + [3]
                 for n in (3, 5, 6, 7, 11, 13, 21, 22, 27, 35)]
    packed = PackedBatch(sequences, torch.device("cpu"), bucket_size=4)
    assert packed.rows > packed.tokens and all(b.mask is not None for b in packed.buckets)
    target = torch.randn(len(sequences), 32, generator=torch.Generator().manual_seed(7))
    stock, stock_grads = _outputs_and_grads(model, lambda: _padded_pool(model, sequences, pad_id, pooling), target, False)
    ours, our_grads = _outputs_and_grads(
        model, lambda: unpadded_pool(model, sequences, pooling, bucket_size=4), target, training)
    torch.testing.assert_close(ours, stock, atol=1e-5, rtol=1e-4)
    assert stock_grads.keys() == our_grads.keys()
    for key in stock_grads:
        torch.testing.assert_close(our_grads[key], stock_grads[key], atol=1e-5, rtol=1e-4, msg=key)
    assert torch.count_nonzero(our_grads["embeddings.word_embeddings.weight"][0]) == 0


class _MatmulShapes(torch.overrides.TorchFunctionMode):
    """Records the operand shapes of every matmul-like call: what oneDNN keys a primitive by."""

    OPS = {torch.nn.functional.linear, torch.matmul, torch.Tensor.matmul, torch.baddbmm, torch.bmm}

    def __init__(self):
        super().__init__()
        self.seen = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in self.OPS:
            self.seen.add((func.__name__, *(tuple(a.shape) for a in args if isinstance(a, torch.Tensor))))
        return func(*args, **(kwargs or {}))


def test_a_run_of_random_batches_reuses_a_bounded_set_of_matmul_shapes(monkeypatch):
    """Many batches of random lengths: the packed forward (training mode, the explicit attention)
    calls its matmuls with few distinct shapes - the backward's shapes follow the forward's - where
    exact token counts and bucket shapes would give new ones batch after batch."""
    import mixlingual.models.unpadded as unpadded

    model, _ = _models()["bert"]
    _set_dropout(model, 0.1)
    model.train()
    generator = torch.Generator().manual_seed(8)
    batches = [[[5] * int(n) for n in torch.randint(2, 41, (16,), generator=generator)] for _ in range(60)]

    def distinct_shapes() -> int:
        with torch.no_grad(), _MatmulShapes() as shapes:
            for sequences in batches:
                unpadded_pool(model, sequences)
        return len(shapes.seen)

    rounded = distinct_shapes()
    packs = [unpadded.PackedBatch(sequences, torch.device("cpu")) for sequences in batches]
    rows = {p.rows for p in packs}
    octaves = max(p.tokens for p in packs).bit_length() - (min(p.tokens for p in packs) - 1).bit_length() + 1
    buckets = {(b.texts, b.longest) for p in packs for b in p.buckets}
    assert len(rows) <= 16 * octaves and len(buckets) <= 5 * 5   # texts 1/2/4/8/16, lengths 8/16/../40
    # four linear layers a row count, two score matmuls (masked or not) and one value matmul a bucket
    assert rounded <= 4 * len(rows) + 3 * len(buckets)
    monkeypatch.setattr(unpadded, "size_class", lambda n, *args, **kwargs: n)
    monkeypatch.setattr(unpadded, "bucket_sizes", lambda most: list(range(1, most + 1)))
    exact = distinct_shapes()
    assert rounded < exact / 3, (rounded, exact)   # measured: 70 against 340
