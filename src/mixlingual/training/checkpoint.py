"""Atomic training checkpoints in safetensors + JSON (no pickle), keeping the last K and the best.

A checkpoint is one folder ``CHECKPOINTS/step-00000120/``::

    model.safetensors        trainable weights and buffers (frozen parameters are rebuilt
                             from the config's model name, which keeps checkpoints small)
    optimizer.safetensors    every optimizer state tensor, flattened as "state.{param}.{name}"
    optimizer.json           param groups and the non-tensor optimizer state
    rng-rank{R}.safetensors  torch CPU (and CUDA) generator states of rank R
    state.json               step, scheduler, sampler, trainer counters, python/numpy RNG per rank
    config.yaml              the resolved config
    manifest.json            size and SHA-256 of every other file (checked on resume)

It is written into a hidden temporary folder and renamed into place with `os.replace`, so a
kill at any moment leaves either the previous checkpoints or a complete new one (the latest
complete one is what `--resume` uses). After each save only the last `keep_last` checkpoints
and the best one survive (besides damaged newer ones a resume skipped, left until overwritten).

A rename cannot protect against a failing disk that truncates or corrupts a file afterwards, so
`resume_checkpoint` checks every file against the manifest first and falls back to the newest
intact checkpoint, warning about each damaged one (older checkpoints without a manifest are
checked structurally: safetensors files must cover their header, JSON files must parse).

One module on purpose: saving, loading, pruning and verifying all follow the folder layout and
manifest above; splitting them would split that one on-disk contract.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import struct
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from mixlingual.errors import CheckpointError

PREFIX = "step-"
MANIFEST = "manifest.json"


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
        _write_json(tmp / "state.json", {**state, "step": step, "world_size": world_size})  # marks complete
        write_manifest(tmp)  # after every other file, the other ranks' RNG files included
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


def prune_checkpoints(root: str | Path, keep_last: int, best_step: int | None,
                      newest: int | None = None) -> list[Path]:
    """Delete all but the newest `keep_last` checkpoints and the best one; return what went.

    `newest` is the step just saved: checkpoints past it are the damaged ones a resume skipped
    (see `resume_checkpoint`); they are left in place and do not count among the last
    `keep_last`, which would otherwise push out the checkpoints the resumed run writes.
    """
    found = list_checkpoints(root)
    if newest is not None:
        found = [p for p in found if p.name <= checkpoint_name(newest)]  # the order list_checkpoints sorts by
    keep = set(found[-keep_last:]) if keep_last > 0 else set()
    if best_step is not None:
        keep.add(Path(root) / checkpoint_name(best_step))
    removed = [p for p in found if p not in keep]
    for p in removed:
        shutil.rmtree(p, ignore_errors=True)
    return removed


# ----- integrity: manifest, verification, resume with fallback ----------------------------
def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def write_manifest(folder: str | Path) -> None:
    """Record the size and SHA-256 of every file in `folder` (but the manifest) in manifest.json."""
    folder = Path(folder)
    files = {p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)}
             for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST}
    _write_json(folder / MANIFEST, {"format": 1, "files": files})


def _manifest_problems(folder: Path) -> list[str]:
    """Files of `folder` that are missing or differ in size or checksum from its manifest."""
    try:
        files = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return [f"{folder / MANIFEST}: unreadable ({err})"]
    problems = []
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.stat().st_size != expected["bytes"]:
            problems.append(f"{path}: {path.stat().st_size} bytes, the manifest says {expected['bytes']}")
        elif _sha256(path) != expected["sha256"]:
            problems.append(f"{path}: SHA-256 differs from the manifest")
    return problems


def _safetensors_problem(path: Path) -> str | None:
    """Whether a safetensors file is as long as its header says (catches truncation)."""
    try:
        with open(path, "rb") as handle:
            (header_len,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(header_len))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    except (OSError, ValueError, KeyError, TypeError, struct.error) as err:
        return f"{path}: unreadable safetensors header ({err})"
    size, expected = path.stat().st_size, 8 + header_len + end
    return None if size == expected else f"{path}: {size} bytes, its header says {expected}"


def _structural_problems(folder: Path) -> list[str]:
    """For checkpoints written before manifests: every safetensors file complete, JSON parsing."""
    problems = [_safetensors_problem(p) for p in sorted(folder.glob("*.safetensors"))]
    for path in sorted(folder.glob("*.json")):
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            problems.append(f"{path}: unreadable JSON ({err})")
    if not (folder / "model.safetensors").is_file():
        problems.append(f"{folder / 'model.safetensors'}: missing")
    return [p for p in problems if p]


def verify_checkpoint(folder: str | Path) -> list[str]:
    """What is damaged in checkpoint `folder` (one line per file, naming it); [] when intact."""
    folder = Path(folder)
    if (folder / MANIFEST).exists():
        return _manifest_problems(folder)
    return _structural_problems(folder)


def resume_checkpoint(root: str | Path, *, module: torch.nn.Module, optimizer, rank: int = 0,
                      warn: bool = True) -> tuple[Path, dict] | None:
    """Restore the newest intact checkpoint under `root`; return (its folder, its JSON state).

    Newer damaged checkpoints are skipped with a warning naming their files (left in place: the
    resumed run overwrites them when it reaches their step). None when there is no checkpoint;
    `CheckpointError` naming every damaged file when none is intact. All ranks reach the same
    choice, since they check the same files.
    """
    damaged = []
    for folder in reversed(list_checkpoints(root)):
        problems = verify_checkpoint(folder)
        if not problems:
            return folder, load_checkpoint(folder, module=module, optimizer=optimizer, rank=rank)
        damaged.extend(problems)
        if warn:
            warnings.warn(f"damaged checkpoint skipped: {'; '.join(problems)}", stacklevel=2)
    if damaged:
        raise CheckpointError(f"no intact checkpoint to resume under {root}; damaged: {'; '.join(damaged)}")
    return None
