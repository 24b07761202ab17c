"""The image-text task inside the one training loop: batch kinds, training, resume, text retrieval after."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mixlingual.training.config import load_config
from mixlingual.data.records import Candidate, Collection, Query
from mixlingual.models.encoder import BiEncoder
from mixlingual.errors import ConfigError
from mixlingual.evaluation.evaluate import evaluate_collection
from mixlingual.imagetext.model import ImageTextModel
from mixlingual.imagetext.synthetic import generate_scenes
from mixlingual.imagetext.task import ImageTextTask
from mixlingual.training.sampling.batch import Batch, Pair
from mixlingual.training.loop import train


def _config(out, *overrides):
    base = ["train.task=image-text", "train.batch_size=16", "train.max_steps=60", "train.precision=fp32",
            "train.device=cpu", "train.progress=false", "train.log_every=10", "train.checkpoint_every=100",
            "data.train.name=synthetic", "data.train.options={n: 240, seed: 0, size: 32}",
            "eval.data.name=synthetic", "eval.data.options={n: 40, seed: 99, size: 32}",
            "eval.metric=settings.t2i.r@1", "eval.at_start=false", "optim.lr=0.003", "loss.temperature=0.07",
            f"output.dir={out}", "output.tensorboard=false",
            "imagetext={image_size: 32, widths: [8, 16], text_tower: scratch, freeze_text: false,"
            " scratch_hidden: 32, embed_dim: 32}"]
    return load_config(None, base + list(overrides))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    torch.set_num_threads(1)


def test_batch_kinds_map_to_image_text_losses(tmp_path):
    task = ImageTextTask(_config(tmp_path / "run"))
    task.load_data()
    task.build_model(torch.device("cpu"))
    pairs_xx = [Pair(i, "ru", "ru") for i in range(8)]
    pairs_xy = [Pair(i, "zh", "de") for i in range(8)]
    loss_xx, info_xx = task.loss(Batch("X-X", pairs_xx, "ru", 0))
    loss_xy, info_xy = task.loss(Batch("X-Y", pairs_xy, None, 0))
    assert "itc_loss" in info_xx and "align_loss" not in info_xx
    assert "align_loss" in info_xy and "itc_loss" not in info_xy  # caption-caption only by default
    assert torch.isfinite(loss_xx) and torch.isfinite(loss_xy)
    # caption variants are drawn deterministically from (seed, step, item, language)
    first = [task._caption(p.item_index, task.image_items[p.item_index], "ru", 5, 0) for p in pairs_xx]
    again = [task._caption(p.item_index, task.image_items[p.item_index], "ru", 5, 0) for p in pairs_xx]
    assert first == again and len(set(first)) == 8


def test_unknown_imagetext_option_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match="imagetext.widht"):
        ImageTextTask(_config(tmp_path, "imagetext.widht=3"))


def _cross_r1(encoder, scenes) -> float:
    """English captions as queries against German captions: a text-text retrieval collection."""
    queries = [Query(f"q{i}", "en", s.captions["en"][0], s.id) for i, s in enumerate(scenes)]
    cands = [Candidate(f"c{i}", "de", s.captions["de"][0], (s.id,)) for i, s in enumerate(scenes)]
    result = evaluate_collection(encoder, Collection("captions", queries, cands), settings=("cross",))
    return result["settings"]["cross"]["r@1"]


def test_training_writes_a_loadable_model_whose_text_tower_still_retrieves(tmp_path):
    out = tmp_path / "run"
    summary = train(_config(out, "sampling.kind=hybrid", "sampling.alpha=0.5", "train.max_steps=200",
                            "imagetext.text_head=linear"))
    assert summary["steps"] == 200
    counts = json.loads((out / "batch_counts.json").read_text())
    assert set(counts["kinds"]) == {"X-X", "X-Y"}
    evals = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any(r["type"] == "eval" and "t2i" in r["settings"] for r in evals)
    model = ImageTextModel.load(str(out / "model"))
    scenes = generate_scenes(40, seed=99, size=32)
    emb = model.encode_images(np.stack([s.image for s in scenes]))
    assert emb.shape == (40, 32) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    # the text tower alone (sentence-transformers folder) ranks translations far above chance
    # (1/40) and above the untrained tower it started from
    trained = _cross_r1(BiEncoder.from_pretrained(str(out / "model" / "text_tower")), scenes)
    untrained = _cross_r1(BiEncoder.from_pretrained(str(out / "caption_tower_init")), scenes)
    assert trained > max(0.4, untrained + 0.2), (trained, untrained)


class _Crash(RuntimeError):
    pass


def test_resume_after_a_crash_gives_the_same_weights(tmp_path, monkeypatch):
    args = ("train.max_steps=16", "train.checkpoint_every=8", "sampling.kind=mixture",
            "sampling.ratios={X-X: 0.4, X-Y: 0.3, mixed: 0.3}", "eval.data.name=null")
    train(_config(tmp_path / "straight", *args))
    original = ImageTextTask.loss
    calls = {"n": 0}

    def crashing(self, batch):
        calls["n"] += 1
        if calls["n"] == 11:
            raise _Crash()
        return original(self, batch)

    monkeypatch.setattr(ImageTextTask, "loss", crashing)
    with pytest.raises(_Crash):
        train(_config(tmp_path / "resumed", *args))
    monkeypatch.setattr(ImageTextTask, "loss", original)
    train(_config(tmp_path / "resumed", *args), resume=True)
    a = load_file(str(tmp_path / "straight" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=key)


def test_text_sampler_over_images_shards_ranks_and_never_repeats_an_image():
    from mixlingual.imagetext.data import to_parallel_items
    from mixlingual.imagetext.formats import load_image_captions
    from mixlingual.training.sampling.mixture import MixtureBatchSampler

    items = to_parallel_items(load_image_captions("synthetic", None, n=60, size=16, langs=["en", "zh", "hi"]))
    ratios = {"X-X": 0.4, "X-Y": 0.3, "mixed": 0.3}
    ranks = [list(MixtureBatchSampler(items, 8, ratios, seed=3, rank=r, world_size=2)) for r in (0, 1)]
    for b0, b1 in zip(*ranks):
        assert b0.kind == b1.kind and b0.language == b1.language  # one global batch, one kind
        images = [items[p.item_index].group for p in b0.pairs + b1.pairs]
        assert len(images) == len(set(images)) == 16  # an image at most once per global batch
    again = list(MixtureBatchSampler(items, 8, ratios, seed=3, rank=0, world_size=2))
    assert [(b.kind, b.pairs) for b in again] == [(b.kind, b.pairs) for b in ranks[0]]


def test_momentum_distillation_trains_and_is_checkpointed(tmp_path):
    out = tmp_path / "albef"
    train(_config(out, "train.max_steps=6", "train.checkpoint_every=3", "eval.data.name=null", "sampling.kind=mono",
                  "imagetext.momentum={enabled: true, queue_size: 48, alpha: 0.4}"))
    checkpoint = load_file(str(out / "checkpoints" / "step-00000006" / "model.safetensors"))
    # the EMA copies and the queues are part of the training state (exact resume)...
    assert "momentum.image_proj.weight" in checkpoint and "momentum.id_queue" in checkpoint
    assert (checkpoint["momentum.id_queue"] >= 0).all()  # 6 steps x 16 > 48 slots: the ring is full
    # ...but not of the exported model, which stays a plain dual encoder
    assert not any(k.startswith("momentum") for k in load_file(str(out / "model" / "model.safetensors")))
    ImageTextModel.load(str(out / "model"))
