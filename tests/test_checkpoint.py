"""Checkpoints: optimizer state round trip, atomic folders, pruning; kill -9 mid-run then resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers_train import tiny_run_overrides
from safetensors.torch import load_file

from mixlingual.training.checkpoint import (MANIFEST, latest_checkpoint, list_checkpoints, load_checkpoint,
                                   prune_checkpoints, resume_checkpoint, save_checkpoint, verify_checkpoint)
from mixlingual.cli import main
from mixlingual.training.config import load_config, save_config
from mixlingual.errors import CheckpointError
from mixlingual.training.loop import train


def _model_and_optimizer(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_round_trip_restores_weights_optimizer_and_rng(tmp_path):
    model, optimizer = _model_and_optimizer()
    torch.manual_seed(123)
    save_checkpoint(tmp_path, 5, module=model, optimizer=optimizer, state={"x": 1}, config_yaml="a: 1\n")
    expected_next = torch.rand(3)
    other, other_opt = _model_and_optimizer(seed=9)
    torch.manual_seed(0)
    state = load_checkpoint(latest_checkpoint(tmp_path), module=other, optimizer=other_opt)
    assert state["x"] == 1 and state["step"] == 5
    assert torch.equal(torch.rand(3), expected_next)  # torch RNG continues where it was saved
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    saved, loaded = optimizer.state_dict(), other_opt.state_dict()
    assert saved["param_groups"] == loaded["param_groups"]
    for pid, entries in saved["state"].items():
        for name, value in entries.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(loaded["state"][pid][name]))
    files = {p.name for p in latest_checkpoint(tmp_path).iterdir()}
    assert not any(name.endswith((".pt", ".bin", ".pkl")) for name in files)


def test_incomplete_folders_are_ignored_and_pruning_keeps_best(tmp_path):
    model, optimizer = _model_and_optimizer()
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, module=model, optimizer=optimizer, state={}, config_yaml="")
    (tmp_path / ".tmp-step-00000005").mkdir()          # a kill mid-write leaves this
    (tmp_path / "step-00000009").mkdir()                # no state.json: not complete
    assert latest_checkpoint(tmp_path).name == "step-00000004"
    prune_checkpoints(tmp_path, keep_last=2, best_step=1)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000001", "step-00000003", "step-00000004"]


def _truncate(path: Path, keep: int = 100) -> None:
    """What a failing disk leaves: the start of the file only."""
    path.write_bytes(path.read_bytes()[:keep])


def _flip_last_byte(path: Path) -> None:
    """Silent corruption: same size, other content."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_resume_skips_damaged_checkpoints_with_a_warning(tmp_path):
    model, optimizer = _model_and_optimizer()
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, module=model, optimizer=optimizer, state={"at": step}, config_yaml="")
    assert verify_checkpoint(tmp_path / "step-00000003") == []
    manifest = json.loads((tmp_path / "step-00000003" / MANIFEST).read_text())["files"]
    assert {"model.safetensors", "optimizer.safetensors", "state.json", "rng-rank0.safetensors"} <= manifest.keys()
    _truncate(tmp_path / "step-00000003" / "model.safetensors")
    _flip_last_byte(tmp_path / "step-00000002" / "optimizer.safetensors")
    other, other_opt = _model_and_optimizer(seed=9)
    with pytest.warns(UserWarning) as caught:
        folder, state = resume_checkpoint(tmp_path, module=other, optimizer=other_opt)
    assert folder.name == "step-00000001" and state["at"] == 1
    messages = [str(w.message) for w in caught]
    assert "step-00000003" in messages[0] and "model.safetensors" in messages[0] and "bytes" in messages[0]
    assert "step-00000002" in messages[1] and "optimizer.safetensors: SHA-256 differs" in messages[1]
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    _truncate(tmp_path / "step-00000001" / "rng-rank0.safetensors")
    with pytest.warns(UserWarning), pytest.raises(CheckpointError, match="no intact checkpoint") as err:
        resume_checkpoint(tmp_path, module=other, optimizer=other_opt)
    for name in ("step-00000003/model.safetensors", "step-00000002/optimizer.safetensors",
                 "step-00000001/rng-rank0.safetensors"):
        assert name in str(err.value)
    assert resume_checkpoint(tmp_path / "none", module=other, optimizer=other_opt) is None


def test_pruning_after_a_fallback_resume_keeps_the_new_checkpoints(tmp_path):
    """A damaged checkpoint newer than the resumed one is left in place, but it must not count
    among the last `keep_last`: with keep_last=1 it would otherwise delete every new checkpoint
    the moment it is written, and the next resume would find none intact."""
    model, optimizer = _model_and_optimizer()
    for step in (10, 20):
        save_checkpoint(tmp_path, step, module=model, optimizer=optimizer, state={"at": step}, config_yaml="")
    _truncate(tmp_path / "step-00000020" / "model.safetensors")
    other, other_opt = _model_and_optimizer(seed=9)
    with pytest.warns(UserWarning):
        folder, _ = resume_checkpoint(tmp_path, module=other, optimizer=other_opt)
    assert folder.name == "step-00000010"
    save_checkpoint(tmp_path, 11, module=other, optimizer=other_opt, state={"at": 11}, config_yaml="")
    prune_checkpoints(tmp_path, keep_last=1, best_step=None, newest=11)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000011", "step-00000020"]
    with pytest.warns(UserWarning):
        folder, state = resume_checkpoint(tmp_path, module=other, optimizer=other_opt)
    assert folder.name == "step-00000011" and state["at"] == 11


def test_checkpoints_without_a_manifest_are_checked_structurally(tmp_path):
    model, optimizer = _model_and_optimizer()
    for step in (1, 2):
        save_checkpoint(tmp_path, step, module=model, optimizer=optimizer, state={}, config_yaml="")
        (tmp_path / f"step-{step:08d}" / MANIFEST).unlink()  # as written before manifests existed
    assert verify_checkpoint(tmp_path / "step-00000002") == []
    _truncate(tmp_path / "step-00000002" / "model.safetensors")
    (tmp_path / "step-00000001" / "optimizer.json").write_text('{"param_groups": [')
    problems = verify_checkpoint(tmp_path / "step-00000002") + verify_checkpoint(tmp_path / "step-00000001")
    assert len(problems) == 2
    assert "step-00000002/model.safetensors" in problems[0] and "step-00000001/optimizer.json" in problems[1]


def test_resume_of_a_truncated_checkpoint_falls_back_in_the_loop(tmp_path, capsys):
    torch.set_num_threads(1)
    overrides = tiny_run_overrides(tmp_path, steps=4) + ["train.keep_last=2"]
    train(load_config(None, overrides))
    checkpoints = tmp_path / "run" / "checkpoints"
    assert [p.name for p in list_checkpoints(checkpoints)] == ["step-00000002", "step-00000004"]
    _truncate(checkpoints / "step-00000004" / "model.safetensors")  # used to end in a SafetensorError
    longer = load_config(None, overrides[:-1] + ["train.max_steps=6"])
    with pytest.warns(UserWarning, match="damaged checkpoint skipped: .*step-00000004/model.safetensors"):
        summary = train(longer, resume=True)
    assert summary["steps"] == 6
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["type"] == "train"] == [1, 2, 3, 4, 5, 6]  # 3, 4 trained again
    assert verify_checkpoint(checkpoints / "step-00000004") == []  # rewritten by the resumed run
    for folder in list_checkpoints(checkpoints):
        _truncate(folder / "model.safetensors")
    config = _write_config(tmp_path, overrides[:-1] + ["train.max_steps=8"])
    assert main(["train", str(config), "--resume"]) == 2  # one line naming the files, no traceback
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("mixlingual train: error: no intact checkpoint") and "step-00000006/model.safetensors" in err


def _write_config(tmp_path, overrides) -> Path:
    path = tmp_path / "config.yaml"
    save_config(load_config(None, overrides), path)
    return path


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "model" / "model.safetensors"))


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path):
    steps = 80
    extra = ["train.checkpoint_every=7", "train.keep_last=2", "data.hard_negatives=1", "train.grad_accum=2",
             "sampling.kind=mixture", "sampling.ratios={X-X: 0.4, X-Y: 0.4, mixed: 0.2}"]
    torch.set_num_threads(1)
    reference = train(load_config(None, tiny_run_overrides(tmp_path, steps=steps, out="reference") + extra))
    assert reference["steps"] == steps

    config = _write_config(tmp_path, tiny_run_overrides(tmp_path, steps=steps, out="killed") + extra)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "mixlingual", "train", str(config)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run_dir = tmp_path / "killed"
    deadline = time.time() + 60
    while time.time() < deadline and len(list_checkpoints(run_dir / "checkpoints")) < 2 and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.13)  # land somewhere between checkpoints (or inside one)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (run_dir / "model").exists()
    killed_at = json.loads((latest_checkpoint(run_dir / "checkpoints") / "state.json").read_text())["step"]
    assert 0 < killed_at < steps

    resumed = train(load_config(config), resume=True)  # in this process: saves one interpreter start
    assert resumed["steps"] == steps
    expected, got = _weights(tmp_path / "reference"), _weights(run_dir)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), f"{key} differs after resume from step {killed_at}"
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["type"] == "train"] == list(range(1, steps + 1))
    ref_records = [json.loads(line) for line in (tmp_path / "reference" / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in records] == [r["loss"] for r in ref_records]
    counts = json.loads((run_dir / "batch_counts.json").read_text())
    assert counts == json.loads((tmp_path / "reference" / "batch_counts.json").read_text())
    assert sum(counts["kinds"].values()) == steps * 2
