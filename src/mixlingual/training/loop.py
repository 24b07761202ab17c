"""`mixlingual train CONFIG.yaml [--set key=value ...] [--resume]`: the one training loop.

Read top to bottom, `train()` does: validate the config and the data (before any model work),
build the task's model, sampler, AdamW and warmup schedule, restore the latest checkpoint on
`--resume`, then repeat [grad_accum micro-batches (forward + backward through DDP, which averages
gradients across ranks during the last one's backward; with `train.mini_batch` in cached chunks,
see mixlingual.training.gradcache) -> clip -> step -> log -> maybe evaluate -> maybe checkpoint] until max
steps, the epochs, or early stopping.
There are no callbacks: everything that happens in a step is written in the loop.

Outputs (OUT = output.dir)::

    OUT/config.yaml        the resolved config
    OUT/metrics.jsonl      train + eval records (also train_log.csv, eval_log.csv, tensorboard/)
    OUT/checkpoints/       step-XXXXXXXX/ (last K + best), see mixlingual.training.checkpoint
    OUT/batch_counts.json  batch kinds, X-X languages, (query -> passage) language pairs drawn
    OUT/model/             the final model (sentence-transformers layout); with train.merge_with_base: W,
                           (1 - W) * base + W * fine-tuned, with merge.json (see mixlingual.models.merge)
    OUT/model-unmerged/    the fine-tuned model before that merge (train.merge_with_base only)
    OUT/best-model/        the best model by eval.metric, when an evaluation ran
    OUT/summary.json       steps, time, steps/s, best metric and step, early stop, sampler facts

DDP: `torchrun --nproc-per-node N -m mixlingual train CONFIG.yaml` (gloo on CPU, nccl on GPU).

One file on purpose: the training loop reads top to bottom as one function (nanoGPT-style).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from mixlingual.training.checkpoint import latest_checkpoint, prune_checkpoints, resume_checkpoint, save_checkpoint
from mixlingual.training.config import Config, load_config, save_config, validate_against_data
from mixlingual.errors import ConfigError
from mixlingual.training.gradcache import cached_forward_backward, supports_cache
from mixlingual.training.mining import Remining
from mixlingual.training.tasks import make_task
from mixlingual.io import write_atomic
from mixlingual.training.log import MetricsLog, eval_record
from mixlingual.training.setup import (Distributed, build_optimizer, build_sampler, build_scheduler, gradient_sync,
                                    init_distributed, total_steps, wrap_for_training)


@dataclass
class TrainerState:
    """The loop's own counters; saved in every checkpoint so a resumed run continues them."""

    step: int = 0
    best_value: float | None = None
    best_step: int | None = None
    evals_since_best: int = 0
    stopped_early: bool = False
    seconds: float = 0.0  # training time of earlier processes of this run
    kinds: dict = field(default_factory=dict)
    languages: dict = field(default_factory=dict)
    pairs: dict = field(default_factory=dict)
    mined: str | None = None  # file of the items' current mined negatives (data.remine_every)

    def count(self, batch) -> None:
        """Count a batch's kind, its X-X language and its (query -> passage) language pairs."""
        for table, keys in ((self.kinds, [batch.kind]), (self.languages, [batch.language] if batch.language else []),
                            (self.pairs, [f"{p.query_lang}->{p.passage_lang}" for p in batch.pairs])):
            for key in keys:
                table[key] = table.get(key, 0) + 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config (see docs/training.md and configs/)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, YAML-typed (repeatable), e.g. sampling.alpha=0.3")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the latest checkpoint in output.dir (starts fresh if none)")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.set)
    summary = train(config, resume=args.resume)
    if summary.get("rank", 0) == 0:
        print(json.dumps({k: summary[k] for k in ("steps", "seconds", "steps_per_second", "best_metric",
                                                  "best_step", "stopped_early")}, indent=1))
    return 0


def _batches(sampler):
    """Batches forever, epoch after epoch (the sampler's own state says where to start)."""
    while True:
        yield from sampler
        sampler.set_epoch(sampler.epoch + 1)


def _metric(metrics: dict, path: str) -> float:
    value = metrics
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ConfigError(f"eval.metric: '{path}' is not in the evaluation results (stopped at '{part}')")
        value = value[part]
    return float(value)


def _warn_overlap(task, config: Config) -> None:
    leak = task.overlap_report()
    if leak and config.output.overlap == "refuse":
        raise ConfigError(f"output.overlap=refuse: train/eval overlap: {leak}")
    if leak:
        bar = "!" * 78
        print(f"{bar}\nWARNING: train/eval overlap: {leak}.\nScores on this evaluation set are not "
              f"held-out. Set output.overlap=refuse to stop instead.\n{bar}", file=sys.stderr)


def train(config: Config, resume: bool = False) -> dict:
    """Run (or resume) one training run; return its summary. See the module docstring."""
    dist = init_distributed(config.train.device)
    if config.train.threads:
        # On a shared CPU, more threads than idle cores makes OpenMP spin: 10x slower steps.
        torch.set_num_threads(config.train.threads)
    out = Path(config.output.dir)
    checkpoints = out / "checkpoints"
    # --- 1. data and every check that needs it, before any model work --------------------
    task = make_task(config)
    task.load_data()
    validate_against_data(config, task.items, dist.world_size)
    if config.train.mini_batch and not supports_cache(task):
        raise ConfigError(f"train.mini_batch: task '{config.train.task}' cannot embed a batch in cached chunks; "
                          f"unset train.mini_batch")
    if dist.main:
        _warn_overlap(task, config)
    latest = latest_checkpoint(checkpoints)
    if latest is not None and not resume:
        raise ConfigError(f"output.dir: {out} holds checkpoints of an earlier run; pass --resume to continue "
                          f"it or choose another output.dir")
    sampler = build_sampler(config, task.items, dist)
    steps = total_steps(config, len(sampler))
    # --- 2. model, optimizer, schedule; restore on resume --------------------------------
    torch.manual_seed(config.train.seed + dist.rank)  # dropout differs per rank, as data does
    module = task.build_model(dist.device)
    optimizer = build_optimizer(module, config)
    scheduler = build_scheduler(optimizer, config, steps)
    state = TrainerState()
    resumed = resume and latest is not None
    if resumed:  # the newest intact checkpoint; damaged newer ones are skipped with a warning
        latest, saved = resume_checkpoint(checkpoints, module=module, optimizer=optimizer, rank=dist.rank,
                                          warn=dist.main)
        if saved["world_size"] != dist.world_size:
            raise ConfigError(f"cannot resume {latest}: written by {saved['world_size']} rank(s), "
                              f"now {dist.world_size}")
        scheduler.load_state_dict(saved["scheduler"])
        sampler.load_state_dict(saved["sampler"])
        state = TrainerState(**saved["trainer"])
    engine = wrap_for_training(module, dist)  # DDP over ranks; `module` stays the bare one for checkpoints
    remining = Remining(config, task, out, dist.main) if config.data.remine_every else None
    if remining:
        remining.restore(state.mined)
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(config, out / "config.yaml")
    log = MetricsLog(out, enabled=dist.main, tensorboard=config.output.tensorboard,
                     resume_step=state.step if resumed else None)
    config_yaml = yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)

    def evaluate(step: int) -> bool:
        """Evaluate on rank 0, log, track the best; True when this is a new best."""
        result = None
        if dist.main:
            metrics = task.evaluate()
            if metrics is not None:
                log.log({"type": "eval", "step": step, **eval_record(metrics)})
                result = _metric(metrics, config.eval.metric)
        result = dist.broadcast(result)
        if result is None:
            return False
        better = state.best_value is None or (result > state.best_value if config.eval.mode == "max"
                                              else result < state.best_value)
        if better:
            state.best_value, state.best_step, state.evals_since_best = result, step, 0
        else:
            state.evals_since_best += 1
        return better

    def checkpoint() -> None:
        save_checkpoint(checkpoints, state.step, module=module, optimizer=optimizer, config_yaml=config_yaml,
                        state={"scheduler": scheduler.state_dict(), "sampler": sampler.state_dict(),
                               "trainer": dataclasses.asdict(state)},
                        rank=dist.rank, world_size=dist.world_size, barrier=dist.barrier)
        if dist.main:
            prune_checkpoints(checkpoints, config.train.keep_last, state.best_step, newest=state.step)

    # --- 3. the loop ---------------------------------------------------------------------
    use_bf16 = config.train.precision == "bf16"
    accum = config.train.grad_accum
    batches = _batches(sampler)
    if state.step == 0 and config.eval.at_start and not resumed:
        if evaluate(0):  # the untrained model may stay the best: keep its weights for OUT/best-model
            checkpoint()
    from tqdm.auto import tqdm

    progress = tqdm(total=steps, initial=state.step, unit="step", disable=not (dist.main and config.train.progress))
    started = time.perf_counter()
    trainable = [p for p in module.parameters() if p.requires_grad]
    while state.step < steps and not state.stopped_early:
        loss_sum, kinds = 0.0, []
        for micro in range(accum):
            batch = next(batches)
            state.count(batch)
            kinds.append(batch.kind)
            with torch.autocast(dist.device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss, info = _forward_backward(task, batch, engine, config, dist, sync=micro == accum - 1)
            loss_sum += float(loss.detach()) / accum
        grad_norm = (torch.nn.utils.clip_grad_norm_(trainable, config.optim.max_grad_norm)
                     if config.optim.max_grad_norm else None)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state.step += 1
        progress.update(1)
        if remining and remining.due(state.step, steps):
            state.mined = remining.run(state.step)
        if state.step % config.train.log_every == 0 or state.step == steps:
            if dist.world_size > 1:
                total = torch.tensor([loss_sum], device=dist.device)
                torch.distributed.all_reduce(total)
                loss_sum = float(total) / dist.world_size
            progress.set_postfix(loss=f"{loss_sum:.4f}")
            log.log({"type": "train", "step": state.step, "loss": loss_sum, "lr": scheduler.get_last_lr()[0],
                     "kinds": ",".join(kinds), "grad_norm": None if grad_norm is None else float(grad_norm),
                     "seconds": state.seconds + time.perf_counter() - started, **info})
        improved = False
        every = config.eval.every_steps
        if (every and state.step % every == 0) or (state.step == steps and config.eval.at_end):
            improved = evaluate(state.step)
            patience = config.eval.patience
            state.stopped_early = bool(patience and state.evals_since_best >= patience and state.step < steps)
        if state.step % config.train.checkpoint_every == 0 or improved or state.step == steps or state.stopped_early:
            state.seconds += time.perf_counter() - started
            started = time.perf_counter()
            checkpoint()
    progress.close()
    state.seconds += time.perf_counter() - started
    return _finish(task, module, config, dist, state, sampler, log, checkpoints, out)


def _forward_backward(task, batch, engine, config: Config, dist: Distributed, sync: bool):
    """Loss of one micro-batch and its gradient / grad_accum added to `.grad`: in one graph, or
    with `train.mini_batch` in cached chunks (mixlingual.training.gradcache). Under DDP gradients are
    averaged across ranks during the backward of the micro-batch with `sync` (the last one)."""
    accum = config.train.grad_accum
    if config.train.mini_batch:
        return cached_forward_backward(task, batch, config.train.mini_batch, engine=engine, accum=accum,
                                       sync=sync, device=dist.device)
    with gradient_sync(engine, sync):
        loss, info = engine(task.loss, batch)
        (loss / accum).backward()
    return loss, info


def _finish(task, module, config: Config, dist: Distributed, state: TrainerState, sampler, log,
            checkpoints: Path, out: Path) -> dict:
    """Write the final (and best) model, the batch counts and the summary."""
    summary = {"rank": dist.rank, "steps": state.step, "seconds": round(state.seconds, 3),
               "steps_per_second": round(state.step / state.seconds, 4) if state.seconds else None,
               "best_metric": state.best_value, "best_step": state.best_step, "metric": config.eval.metric,
               "stopped_early": state.stopped_early, "world_size": dist.world_size, "sampler": sampler.describe()}
    if dist.main:
        if config.train.merge_with_base is None:
            task.save_model(out / "model")
        else:
            task.save_model(out / "model-unmerged")
            task.save_merged_with_base(out / "model", config.train.merge_with_base)
        best = checkpoints / f"step-{state.best_step:08d}" if state.best_step is not None else None
        if best is not None and best.is_dir():
            from safetensors.torch import load_file

            module.load_state_dict(load_file(str(best / "model.safetensors")), strict=False)
            task.save_model(out / "best-model")
        counts = {"kinds": state.kinds, "languages": state.languages,
                  "pairs": dict(Counter(state.pairs).most_common())}
        write_atomic(out / "batch_counts.json", json.dumps(counts, indent=1))
        write_atomic(out / "summary.json", json.dumps(summary, indent=1))
    log.close()
    dist.barrier()
    return summary
