"""DDP on 2 CPU processes (gloo): the run equals one process with the same global batch.

Also with `train.mini_batch` on the DDP side only (cached chunks, mixlingual.training.gradcache).

With dropout off and fp32, 2 ranks x 4 pairs (passages gathered across ranks, gradients
averaged) must give the weights of 1 process x 8 pairs: the sampler deals the same global batch,
the loss sees the same 8 x (8 + hard negatives) score matrix, and the gradient is the same mean.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers_models import make_tiny_model_dir
from helpers_train import tiny_run_overrides
from safetensors.torch import load_file

from mixlingual.training.config import load_config, save_config
from mixlingual.training.loop import train


def _no_dropout_model(path: Path) -> None:
    make_tiny_model_dir(path)
    config = json.loads((path / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (path / "config.json").write_text(json.dumps(config))


@pytest.mark.slow
@pytest.mark.parametrize("ddp_only, both", [
    ([], []),
    # cached chunks of 3 of each rank's 4 pairs (embeddings gathered across ranks for the loss,
    # DDP's all-reduce once per step), with accumulation, frozen word embeddings and a learnable
    # temperature (a loss parameter whose gradient rides on the last chunk)
    (["train.mini_batch=3"], ["train.grad_accum=2", "model.freeze_word_embeddings=true",
                              "loss.learnable_temperature=true"]),
], ids=["one-graph", "mini-batch"])
def test_two_process_ddp_matches_single_process_with_the_global_batch(tmp_path, ddp_only, both):
    _no_dropout_model(tmp_path / "tiny-model")
    steps = 4
    extra = ["data.hard_negatives=1", "sampling.kind=mixture", "sampling.ratios={X-X: 0.5, X-Y: 0.3, mixed: 0.2}",
             "train.checkpoint_every=100"] + both
    ddp_overrides = tiny_run_overrides(tmp_path, steps=steps, out="ddp", batch_size=4) + extra + ddp_only
    config = tmp_path / "ddp.yaml"
    save_config(load_config(None, ddp_overrides), config)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
               "-m", "mixlingual", "train", str(config)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-4000:]

    torch.set_num_threads(1)
    single = train(load_config(None, tiny_run_overrides(tmp_path, steps=steps, out="single", batch_size=8) + extra))
    assert single["steps"] == steps

    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["sampler"]["global_batch"] == 8
    ddp_counts = json.loads((tmp_path / "ddp" / "batch_counts.json").read_text())
    single_counts = json.loads((tmp_path / "single" / "batch_counts.json").read_text())
    assert ddp_counts["kinds"] == single_counts["kinds"]  # rank 0 counts its steps: same kinds per step
    ddp_weights = load_file(str(tmp_path / "ddp" / "model" / "model.safetensors"))
    single_weights = load_file(str(tmp_path / "single" / "model" / "model.safetensors"))
    initial = load_file(str(tmp_path / "tiny-model" / "model.safetensors"))
    moved = 0
    for key, value in single_weights.items():
        torch.testing.assert_close(ddp_weights[key], value, rtol=1e-4, atol=1e-5, msg=key)
        moved += not torch.equal(value, initial.get(key, value))
    assert moved > 10  # training changed the weights, so the comparison means something
    ddp_loss = [json.loads(x)["loss"] for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    single_loss = [json.loads(x)["loss"] for x in (tmp_path / "single" / "metrics.jsonl").read_text().splitlines()]
    assert ddp_loss == pytest.approx(single_loss, rel=1e-4)
    # checkpoints hold the bare module (no DDP "module." prefix): the same keys as one process
    final = f"checkpoints/step-{steps:08d}/model.safetensors"
    assert load_file(str(tmp_path / "ddp" / final)).keys() == load_file(str(tmp_path / "single" / final)).keys()
