"""Cached large batches (`train.mini_batch`, mixlingual.training.gradcache).

The parameter gradients of a cached step must equal those of one graph over the whole batch
(fp32, 1e-5 relative): with dropout on (the re-forward replays the recorded RNG states), with
hard negatives and a learnable temperature, with the padding-free forward on and off, and with
a chunk size that does not divide the batch. The encoder's graph must grow with the chunk, not
the batch; runs with and without chunks must train alike; resume stays exact.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from helpers_train import tiny_run_overrides
from safetensors.torch import load_file

from mixlingual.training.checkpoint import list_checkpoints
from mixlingual.training.config import load_config
from mixlingual.errors import ConfigError
from mixlingual.training.gradcache import RngState, cached_forward_backward, supports_cache
from mixlingual.training.tasks import make_task
from mixlingual.training.loop import train
from mixlingual.training.setup import Distributed, StepRunner, build_sampler

BATCH = 8


def _setup(tmp_path, *extra: str):
    """A text task with its tiny model (dropout 0.1) in training mode, and a batch of 8 pairs."""
    overrides = tiny_run_overrides(tmp_path, batch_size=BATCH) + ["data.hard_negatives=2",
                                                                  "loss.learnable_temperature=true", *extra]
    config = load_config(None, overrides)
    task = make_task(config)
    task.load_data()
    module = task.build_model(torch.device("cpu"))
    batch = next(iter(build_sampler(config, task.items, Distributed())))
    return task, module, batch


def _grads(module) -> dict[str, torch.Tensor]:
    grads = {name: p.grad.clone() for name, p in module.named_parameters() if p.grad is not None}
    module.zero_grad(set_to_none=True)
    return grads


def _assert_same_grads(got: dict, expected: dict, rel: float = 1e-5, per_parameter: float = 1e-5) -> None:
    """The whole gradient within `rel` of the reference (relative, in norm) and each parameter's
    within `per_parameter`; gradients that are zero in exact arithmetic (attention key biases:
    softmax ignores them) compare against 1e-4 of the whole gradient's norm, not their own noise."""
    assert got.keys() == expected.keys() and len(expected) > 10
    whole = torch.cat([g.flatten() for g in expected.values()])
    assert float((torch.cat([got[k].flatten() for k in expected]) - whole).norm()) <= rel * float(whole.norm())
    for name, value in expected.items():
        error, scale = float((got[name] - value).norm()), max(float(value.norm()), 1e-4 * float(whole.norm()))
        assert error <= per_parameter * scale, f"{name}: |diff| {error:.3g} vs |grad| {float(value.norm()):.3g}"


def _one_graph_chunkwise(task, batch, size: int) -> torch.Tensor:
    """The reference: the whole batch's loss in one graph, embedded chunk after chunk (so dropout
    draws the masks a cached step draws), backward once."""
    context, chunks = task.split_batch(batch, size)
    parts = list(zip(*[task.embed(chunk) for chunk in chunks]))
    loss, _ = task.loss_from_embeddings(tuple(torch.cat(p) for p in parts), context)
    loss.backward()
    return loss.detach()


@pytest.mark.parametrize("unpad", [True, False])
@pytest.mark.parametrize("size", [3, 1, BATCH])
def test_cached_gradients_equal_one_graph_with_dropout(tmp_path, unpad, size):
    torch.set_num_threads(1)
    task, module, batch = _setup(tmp_path, f"model.unpad={str(unpad).lower()}")
    assert task.encoder.model.config.hidden_dropout_prob > 0 and module.training

    torch.manual_seed(7)
    expected_loss = _one_graph_chunkwise(task, batch, size)
    expected, rng_after = _grads(module), torch.get_rng_state()
    torch.manual_seed(8)
    _one_graph_chunkwise(task, batch, size)
    other_masks = _grads(module)

    torch.manual_seed(7)
    loss, info = cached_forward_backward(task, batch, size, engine=StepRunner(module))
    got = _grads(module)
    assert info["hard_negatives"] > 0 and "loss.log_scale" in got  # negatives and temperature are in
    assert float(loss) == pytest.approx(float(expected_loss), rel=1e-6)
    _assert_same_grads(got, expected)
    # The stream continues where one chunk-wise forward leaves it (resume and DDP stay in step).
    assert torch.equal(torch.get_rng_state(), rng_after)
    # Dropout really is on: other masks give other gradients, so replaying the RNG is what matched.
    name = "encoder.model.encoder.layer.0.output.dense.weight"
    assert float((other_masks[name] - expected[name]).norm()) > 1e-3 * float(expected[name].norm())


@pytest.mark.parametrize("unpad", [True, False])
def test_without_dropout_cached_gradients_equal_the_plain_full_batch_loss(tmp_path, unpad):
    torch.set_num_threads(1)
    task, module, batch = _setup(tmp_path, f"model.unpad={str(unpad).lower()}")
    module.eval()  # no dropout: the task's own one-pass loss(batch) is the reference
    loss, _ = task.loss(batch)
    (loss / 2).backward()
    expected = _grads(module)
    cached_loss, _ = cached_forward_backward(task, batch, 3, engine=StepRunner(module), accum=2)
    # 1e-6 measured for the whole gradient; a chunk's matmuls have other shapes than the whole
    # batch's, so single parameters differ by fp32 rounding up to ~1.2e-5 (padded or packed alike).
    _assert_same_grads(_grads(module), expected, rel=1e-5, per_parameter=5e-5)
    assert float(cached_loss) == pytest.approx(float(loss.detach()), rel=1e-6)


def test_rng_state_round_trip():
    state = RngState.capture(torch.device("cpu"))
    first = torch.rand(3)
    state.restore()
    assert torch.equal(torch.rand(3), first)


class _SavedTensorMeter:
    """Peak bytes of activations held by autograd graphs (parameters and their views excluded)."""

    def __init__(self, module):
        self.params = {p.untyped_storage().data_ptr() for p in module.parameters()}
        self.live = self.peak = 0

    def pack(self, tensor):
        size = 0 if tensor.untyped_storage().data_ptr() in self.params else tensor.numel() * tensor.element_size()
        self.live += size
        self.peak = max(self.peak, self.live)
        return _Held(tensor, size, self)

    @staticmethod
    def unpack(held):
        return held.tensor


class _Held:
    def __init__(self, tensor, size, meter):
        self.tensor, self.size, self.meter = tensor, size, meter

    def __del__(self):
        self.meter.live -= self.size


def _peak_graph_bytes(module, run) -> int:
    meter = _SavedTensorMeter(module)
    with torch.autograd.graph.saved_tensors_hooks(meter.pack, meter.unpack):
        run()
    module.zero_grad(set_to_none=True)
    return meter.peak


def test_graph_memory_grows_with_the_chunk_not_the_batch(tmp_path):
    torch.set_num_threads(1)
    task, module, batch = _setup(tmp_path)
    full = _peak_graph_bytes(module, lambda: task.loss(batch)[0].backward())
    peaks = {size: _peak_graph_bytes(module, lambda s=size: cached_forward_backward(task, batch, s,
                                                                                     engine=StepRunner(module)))
             for size in (2, 4)}
    assert peaks[2] < 0.45 * full and peaks[4] < 0.75 * full
    assert peaks[2] < 0.7 * peaks[4]


@pytest.mark.parametrize("override, message", [
    ("train.mini_batch=0", "train.mini_batch: must be >= 1"),
    ("train.mini_batch=9", r"train.mini_batch: must be <= train.batch_size \(8"),
])
def test_mini_batch_is_checked_and_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, ["data.train.name=demo", "train.batch_size=8", override])
    load_config(None, ["data.train.name=demo", "train.batch_size=8", "train.mini_batch=8"])  # equal is fine


def test_tasks_without_chunked_embeddings_are_refused(tmp_path, monkeypatch):
    from mixlingual.training.tasks.text import TextRetrievalTask

    assert supports_cache(TextRetrievalTask(load_config(None, ["data.train.name=demo"])))
    monkeypatch.delattr(TextRetrievalTask, "split_batch")
    config = load_config(None, tiny_run_overrides(tmp_path) + ["train.mini_batch=2"])
    with pytest.raises(ConfigError, match="train.mini_batch: task 'text'"):
        train(config)
    assert not (tmp_path / "run").exists()  # refused before any model work


def _weights(run) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model" / "model.safetensors"))


def _losses(run) -> list[float]:
    return [json.loads(x)["loss"] for x in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_training_with_mini_batch_follows_the_full_batch_run(tmp_path):
    """Dropout off, grad_accum 2, hard negatives: the loop with chunks of 3 trains like without."""
    from test_ddp import _no_dropout_model

    _no_dropout_model(tmp_path / "tiny-model")
    torch.set_num_threads(1)
    extra = ["data.hard_negatives=1", "train.grad_accum=2", "loss.learnable_temperature=true"]
    train(load_config(None, tiny_run_overrides(tmp_path, steps=4, out="full", batch_size=BATCH) + extra))
    train(load_config(None, tiny_run_overrides(tmp_path, steps=4, out="cached", batch_size=BATCH) + extra
                      + ["train.mini_batch=3"]))
    full, cached = _weights(tmp_path / "full"), _weights(tmp_path / "cached")
    for key, value in full.items():
        torch.testing.assert_close(cached[key], value, rtol=1e-4, atol=1e-5, msg=key)
    assert _losses(tmp_path / "cached") == pytest.approx(_losses(tmp_path / "full"), rel=1e-5)


@pytest.mark.slow
def test_resume_with_mini_batch_is_exact(tmp_path):
    """Dropout on, chunks of 3 of 4 pairs: resuming from a mid-run checkpoint ends bit-identical."""
    torch.set_num_threads(1)
    overrides = tiny_run_overrides(tmp_path, steps=6, out="reference") + [
        "train.mini_batch=3", "train.grad_accum=2", "data.hard_negatives=1", "train.keep_last=5"]
    train(load_config(None, overrides))
    resumed = tmp_path / "resumed"
    shutil.copytree(tmp_path / "reference", resumed)
    shutil.rmtree(resumed / "model")
    for folder in list_checkpoints(resumed / "checkpoints")[1:]:  # keep only step 2
        shutil.rmtree(folder)
    summary = train(load_config(None, overrides + [f"output.dir={resumed}"]), resume=True)
    assert summary["steps"] == 6
    expected, got = _weights(tmp_path / "reference"), _weights(resumed)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    assert _losses(resumed) == _losses(tmp_path / "reference")
