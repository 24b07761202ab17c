"""`mixlingual demo [--out DIR] [--steps N]`: hybrid batch training on the built-in demo set.

Trains the embedded multilingual-e5-small backbone with hybrid batches (X-X with probability
0.5, X-Y otherwise) on the 60 demo items (en, de, es, fr, ru, sw) for a few steps, evaluates
on the 22-question demo collection before and after (mono / cross / multi), prints the table
and writes::

    DIR/model/          the trained model (sentence-transformers layout)
    DIR/metrics.json    {"before": ..., "after": ..., "steps": .., "wall_seconds": ..}
    DIR/...             everything `mixlingual train` writes (metrics.jsonl, config.yaml, ...)

Its settings are `DEMO_SETTINGS` (also in configs/demo.yaml, for `mixlingual train`): bf16
autocast and frozen word embeddings (the 250k x 384 matrix would dominate optimizer time and
memory), short max lengths, checkpoints only at the end. On a shared CPU the demo uses only the
idle cores: more OpenMP threads than free cores makes every step several times slower.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from mixlingual.training.config import config_from_dict
from mixlingual.data.jsonl import read_json_records
from mixlingual.errors import ConfigError
from mixlingual.io import write_atomic

DEMO_SETTINGS: dict = {
    "model": {"name": "embedded:multilingual-e5-small", "max_length_query": 32, "max_length_passage": 128,
              "freeze_word_embeddings": True},
    "data": {"train": {"name": "demo"}},
    "sampling": {"kind": "hybrid", "alpha": 0.5},
    "optim": {"lr": 5.0e-5, "warmup_ratio": 0.1},
    "train": {"batch_size": 16, "max_steps": 20, "precision": "bf16", "seed": 42, "log_every": 5,
              "checkpoint_every": 1000, "keep_last": 1},
    "eval": {"data": {"name": "demo"}, "at_start": True, "at_end": True, "metric": "settings.multi.map"},
    "output": {"dir": "runs/demo", "tensorboard": False},
}
TABLE_ROWS = [(f"{s}.{m}", ("settings", s, m)) for s in ("mono", "cross", "multi") for m in ("map", "mrr@10", "r@1")]
TABLE_ROWS.append(("rank distance (lower=better)", ("rank_distance", "mean")))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument("--task", choices=["text", "image-text"], default="text",
                        help="text (default) or image-text (generated scenes, see docs/image_text.md)")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"training steps (default {DEMO_SETTINGS['train']['max_steps']}; image-text 600)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (default: the idle cores, at least 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier demo run in --out")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any training config override, e.g. sampling.alpha=0.3")


def idle_cores() -> int:
    """Cores not busy with other work right now (1-minute load average), at least 1."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        return cores
    return max(1, min(cores, int(cores - load + 0.5)))


def _lookup(record: dict, path: tuple[str, ...]):
    for key in path:
        record = record.get(key, {}) if isinstance(record, dict) else {}
    return record if isinstance(record, (int, float)) else None


def format_table(before: dict, after: dict) -> str:
    """Before / after / change for the headline metrics."""
    lines = [f"{'metric':<30} {'before':>8} {'after':>8} {'change':>8}"]
    for label, path in TABLE_ROWS:
        b, a = _lookup(before, path), _lookup(after, path)
        if b is None or a is None:
            continue
        lines.append(f"{label:<30} {b:>8.4f} {a:>8.4f} {a - b:>+8.4f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from mixlingual.training.loop import train

    if args.task == "image-text":
        from mixlingual.imagetext.cli import run_demo

        return run_demo(args)
    args.steps = args.steps or DEMO_SETTINGS["train"]["max_steps"]
    started = time.perf_counter()
    out = Path(args.out)
    if (out / "checkpoints").exists():
        if not args.overwrite:
            raise ConfigError(f"--out: {out} holds an earlier run; pass --overwrite or choose another folder")
        shutil.rmtree(out / "checkpoints")
    threads = args.threads or idle_cores()
    config = config_from_dict(DEMO_SETTINGS, [f"output.dir={out}", f"train.max_steps={args.steps}",
                                              f"train.threads={threads}", *args.set])
    print(f"demo: training {config.model.name} on the demo set, {args.steps} hybrid steps "
          f"(alpha={config.sampling.alpha}, batch {config.train.batch_size}, {threads} thread(s))")
    summary = train(config)
    evals = [r for _, r in read_json_records(out / "metrics.jsonl") if r["type"] == "eval"]
    before, after = evals[0], evals[-1]
    result = {"before": before, "after": after, "steps": summary["steps"], "train_seconds": summary["seconds"],
              "wall_seconds": round(time.perf_counter() - started, 1), "threads": threads,
              "model": str(out / "model")}
    write_atomic(out / "metrics.json", json.dumps(result, indent=1))
    print(format_table(before, after))
    print(f"demo: {summary['steps']} steps in {summary['seconds']:.0f} s (total {result['wall_seconds']:.0f} s); "
          f"model in {out / 'model'}, metrics in {out / 'metrics.json'}")
    return 0
