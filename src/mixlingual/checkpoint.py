"""Atomic training checkpoints in safetensors + JSON (no pickle), keeping the last K and the best.

A checkpoint is one folder ``CHECKPOINTS/step-00000120/``::

    model.safetensors        trainable weights and buffers (frozen parameters are rebuilt
                             from the config's model name, which keeps checkpoints small)
    optimizer.safetensors    every optimizer state tensor, flattened as "state.{param}.{name}"
    optimizer.json           param groups and the non-tensor optimizer state
    rng-rank{R}.safetensors  torch CPU (and CUDA) generator states of rank R
    state.json               step, scheduler, sampler, trainer counters, python/numpy RNG per rank
    config.yaml              the resolved config

It is written into a hidden temporary folder and renamed into place with `os.replace`, so a
kill at any moment leaves either the previous checkpoints or a complete new one (the latest
complete one is what `--resume` uses). After each save only the last `keep_last` checkpoints
and the best one survive.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

PREFIX = "step-"


def checkpoint_name(step: int) -> str:
    return f"{PREFIX}{step:08d}"


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoints under `root`, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX)
                  and (p / "state.json").is_file())


def latest_checkpoint(root: str | Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1] if found else None


# ----- state pieces ---------------------------------------------------------------------
def trainable_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The module's state dict without frozen parameters (they come back from the backbone)."""
    frozen = {name for name, p in module.named_parameters() if not p.requires_grad}
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items() if k not in frozen}


def optimizer_to_files(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state dict into flat tensors (safetensors) and JSON."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, entries in state["state"].items():
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"state.{pid}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_files(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = value
    for pid, values in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(values)
    # JSON turned tuples (betas) into lists; torch keeps them as tuples
    groups = [{k: (tuple(v) if isinstance(v, list) and k != "params" else v) for k, v in group.items()}
              for group in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def rng_state() -> tuple[dict, dict[str, torch.Tensor]]:
    """This process's python/numpy RNG states (JSON) and torch generator states (tensors)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for index, value in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{index}"] = value
    return ({"python": [version, list(internal), gauss],
             "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]}, tensors)


def set_rng_state(meta: dict, tensors: dict[str, torch.Tensor]) -> None:
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("torch_cuda_")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")


# ----- save / load ----------------------------------------------------------------------
def save_checkpoint(root: str | Path, step: int, *, module: torch.nn.Module, optimizer, state: dict,
                    config_yaml: str, rank: int = 0, world_size: int = 1, barrier=lambda: None) -> Path | None:
    """Write checkpoint `step` atomically; every rank calls it (each adds its RNG state).

    `state` is the JSON part (scheduler, sampler, trainer counters). `barrier` synchronizes
    ranks (a no-op in one process). Returns the folder on rank 0.
    """
    root = Path(root)
    final = root / checkpoint_name(step)
    tmp = root / f".tmp-{checkpoint_name(step)}"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)  # left over from a kill mid-write
        tmp.mkdir(parents=True)
    barrier()
    rng_meta, rng_tensors = rng_state()
    save_file(rng_tensors, str(tmp / f"rng-rank{rank}.safetensors"))
    _write_json(tmp / f"rng-rank{rank}.json", rng_meta)
    barrier()
    if rank == 0:
        save_file(trainable_state(module), str(tmp / "model.safetensors"))
        tensors, meta = optimizer_to_files(optimizer)
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        _write_json(tmp / "optimizer.json", meta)
        (tmp / "config.yaml").write_text(config_yaml, encoding="utf-8")
        _write_json(tmp / "state.json", {**state, "step": step, "world_size": world_size})  # last: marks complete
        if final.exists():  # same step saved again (e.g. best and periodic): replace it
            shutil.rmtree(final)
        os.replace(tmp, final)
    barrier()
    return final if rank == 0 else None


def load_checkpoint(path: str | Path, *, module: torch.nn.Module, optimizer, rank: int = 0) -> dict:
    """Restore weights, optimizer and this rank's RNG from `path`; return the JSON state."""
    path = Path(path)
    state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    missing, unexpected = module.load_state_dict(load_file(str(path / "model.safetensors")), strict=False)
    frozen = {name for name, p in module.named_parameters() if not p.requires_grad}
    if unexpected or set(missing) - frozen:
        raise RuntimeError(f"checkpoint {path} does not match the model: missing {sorted(set(missing) - frozen)[:5]}, "
                           f"unexpected {sorted(unexpected)[:5]} (was it written with another model or "
                           f"freeze setting?)")
    meta = json.loads((path / "optimizer.json").read_text(encoding="utf-8"))
    optimizer.load_state_dict(optimizer_from_files(load_file(str(path / "optimizer.safetensors")), meta))
    rng_file = path / f"rng-rank{rank}.safetensors"
    if rng_file.is_file():
        rng_meta = json.loads((path / f"rng-rank{rank}.json").read_text(encoding="utf-8"))
        set_rng_state(rng_meta, load_file(str(rng_file)))
    return state


def prune_checkpoints(root: str | Path, keep_last: int, best_step: int | None) -> list[Path]:
    """Delete all but the newest `keep_last` checkpoints and the best one; return what went."""
    found = list_checkpoints(root)
    keep = set(found[-keep_last:]) if keep_last > 0 else set()
    if best_step is not None:
        keep.add(Path(root) / checkpoint_name(best_step))
    removed = [p for p in found if p not in keep]
    for p in removed:
        shutil.rmtree(p, ignore_errors=True)
    return removed
