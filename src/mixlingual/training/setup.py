"""The pieces the training loop is built from: device and DDP set-up, sampler, optimizer, schedule.

Kept apart from `loop.py` so the loop itself reads top to bottom. Nothing here holds state.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from mixlingual.training.config import Config
from mixlingual.errors import ConfigError
from mixlingual.training.sampling.mixture import MixtureBatchSampler

NO_DECAY_MARKERS = ("bias", "layernorm", "layer_norm", "norm.weight", "ln_", "log_scale")


@dataclass
class Distributed:
    """Where this process stands: rank, world size, device (a single process is rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            torch.distributed.barrier()

    def broadcast(self, value):
        """Rank 0's `value` on every rank (any picklable object)."""
        if self.world_size == 1:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]


def init_distributed(device_setting: str) -> Distributed:
    """Join the process group when started by torchrun (gloo on CPU, nccl on GPU)."""
    want_cuda = device_setting == "cuda" or (device_setting == "auto" and torch.cuda.is_available())
    if device_setting == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: 'cuda' requested but no CUDA device is available")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Distributed(0, 1, torch.device("cuda" if want_cuda else "cpu"))
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if want_cuda else "gloo")
    rank = torch.distributed.get_rank()
    if want_cuda:
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    return Distributed(rank, torch.distributed.get_world_size(), device)


def total_steps(config: Config, batches_per_epoch: int) -> int:
    """Optimizer steps of the run: train.max_steps, else epochs x (batches / grad_accum).

    `train.max_steps: 0` is a run without an optimizer step: its model is the starting model, saved
    like any other (a sweep's zero-shot baseline, evaluated and debiased like the trained cells)."""
    if config.train.max_steps is not None:
        return config.train.max_steps
    return config.train.epochs * max(1, batches_per_epoch // config.train.grad_accum)


def build_sampler(config: Config, items, dist: Distributed, steps: int | None = None):
    """The batch sampler the `sampling` section describes, sharded for this rank.

    `items` is the list of training items, or with `data.stream` a function returning a fresh
    iterator over them (a `StreamingBatchSampler` is built then).

    Schedules are laid over micro-batches (steps x grad_accum), the unit the sampler counts.
    """
    s = config.sampling
    if config.data.stream:
        from mixlingual.training.sampling.stream import StreamingBatchSampler

        sampler = StreamingBatchSampler(items, config.train.batch_size, config.ratio_schedule(1),
                                        buffer_size=config.data.buffer_size, languages=config.data.languages,
                                        language_weighting=s.language_weighting, temperature=s.temperature,
                                        seed=config.train.seed, rank=dist.rank, world_size=dist.world_size)
        steps = total_steps(config, len(sampler)) if steps is None else steps
        sampler.schedule = config.ratio_schedule(steps * config.train.grad_accum)
        return sampler
    sampler = MixtureBatchSampler(items, config.train.batch_size, config.ratio_schedule(1),
                                  languages=config.data.languages, language_weighting=s.language_weighting,
                                  temperature=s.temperature, seed=config.train.seed, rank=dist.rank,
                                  world_size=dist.world_size)
    # The kinds a schedule uses do not depend on its length, so lay it over the real run now.
    steps = total_steps(config, len(sampler)) if steps is None else steps
    sampler.schedule = config.ratio_schedule(steps * config.train.grad_accum)
    return sampler


def build_optimizer(module: nn.Module, config: Config) -> torch.optim.AdamW:
    """AdamW over trainable parameters; no weight decay on biases, norms and the temperature."""
    decay, no_decay = [], []
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        lowered = name.lower()
        (no_decay if param.ndim < 2 or any(m in lowered for m in NO_DECAY_MARKERS) else decay).append(param)
    o = config.optim
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    try:  # the fused kernel (CPU and CUDA) is ~4x faster than the per-tensor loop
        return torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas), eps=o.eps, fused=True)
    except (RuntimeError, TypeError):  # a device or dtype the fused kernel does not support
        return torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas), eps=o.eps)


def build_scheduler(optimizer, config: Config, steps: int):
    """Linear warmup then linear / cosine decay to 0 (or constant), from transformers."""
    from transformers import (get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup,
                              get_linear_schedule_with_warmup)

    o = config.optim
    warmup = o.warmup_steps if o.warmup_steps is not None else int(round(o.warmup_ratio * steps))
    if o.scheduler == "constant":
        return get_constant_schedule_with_warmup(optimizer, warmup)
    make = get_linear_schedule_with_warmup if o.scheduler == "linear" else get_cosine_schedule_with_warmup
    return make(optimizer, warmup, steps)


class StepRunner(nn.Module):
    """Runs a function of the training step as its forward, so DDP sees the whole step.

    The task computes embeddings and the loss itself (`task.loss(batch)`); DDP only prepares its
    gradient hooks for a backward that follows a forward through its wrapper, and (with
    `find_unused_parameters`) looks for the parameters the step used in that forward's output.
    Wrapping the task's module in this runner keeps the module itself - its state-dict keys,
    checkpoints and optimizer - untouched: `runner.module` is the task's module.
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, step, *args):
        return step(*args)


def wrap_for_training(module: nn.Module, dist: Distributed) -> nn.Module:
    """The engine the loop runs steps through: `engine(fn, *args)` is `fn(*args)`, under DDP
    with gradients averaged across ranks during the backward.

    - `find_unused_parameters=True`: a task may leave parameters out of a step (the image tower
      on image-text X-Y batches); parameters with requires_grad False (frozen word
      embeddings) are not DDP's concern at all.
    - `broadcast_buffers=False`: buffers here are constants (position ids) or deliberately
      per-rank (momentum queues, batch-norm statistics), as before DDP was used.
    - Averaging is what the loss needs: each rank's gradient holds, through the loss's gathered
      passages, every rank's loss; the mean over ranks is the gradient of the global-batch mean.
    DDP also broadcasts rank 0's parameters at construction, so every rank starts identical.
    """
    runner = StepRunner(module)
    if dist.world_size == 1:
        return runner
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [dist.device.index] if dist.device.type == "cuda" else None
    return DistributedDataParallel(runner, device_ids=device_ids, broadcast_buffers=False,
                                   find_unused_parameters=True)


def gradient_sync(engine: nn.Module, sync: bool):
    """A context for one forward + backward: DDP all-reduces gradients only when `sync`
    (the last micro-batch, or last cached chunk, of an optimizer step); no-op without DDP."""
    if sync or not hasattr(engine, "no_sync"):
        return nullcontext()
    return engine.no_sync()
