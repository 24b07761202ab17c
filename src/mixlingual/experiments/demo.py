"""`mixlingual demo [--out DIR] [--steps N]`: what hybrid batches do, on the built-in demo set.

Trains the embedded multilingual-e5-small backbone twice on the 60 demo items (en, de, es, fr,
ru, sw) for the same few steps and seed: with hybrid batches (X-X with probability 0.5, X-Y
otherwise) and with X-X batches only. It evaluates on the 22-question demo collection before and
after (mono / cross / multi), prints one table (before | X-X only | hybrid) and one line reading
it (the X-Y half of hybrid batches lowers the rank distance and lifts multilingual mAP), and
writes::

    DIR/model/          the hybrid model (sentence-transformers layout)
    DIR/x-x-only/       the X-X only run (its own model/, metrics.jsonl, ...)
    DIR/metrics.json    {"before": ..., "after": (hybrid), "x_x_only": ..., "steps": .., "wall_seconds": ..}
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
MONO_MAP, CROSS_MAP = ("settings", "mono", "map"), ("settings", "cross", "map")
X_X_ONLY_DIR = "x-x-only"  # the comparison run, inside --out


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


def format_table(columns: dict[str, dict]) -> str:
    """The headline metrics, one column per evaluation (`columns`: heading -> metrics)."""
    lines = [f"{'metric':<30}" + "".join(f" {heading:>9}" for heading in columns)]
    for label, path in TABLE_ROWS:
        values = [_lookup(metrics, path) for metrics in columns.values()]
        if None in values:
            continue
        lines.append(f"{label:<30}" + "".join(f" {value:>9.4f}" for value in values))
    return "\n".join(lines)


def reading_line(before: dict, x_x_only: dict, hybrid: dict, steps: int) -> str:
    """One sentence reading the table: what the X-Y half of hybrid batches did to language bias."""
    def bias(metrics):
        return _lookup(metrics, ("rank_distance", "mean"))

    def multi(metrics):
        return _lookup(metrics, ("settings", "multi", "map"))

    if None in (bias(before), bias(x_x_only), bias(hybrid), multi(x_x_only), multi(hybrid)):
        return "reading: no rank distance or multilingual mAP to compare (evaluate with settings multi)"
    mono = _lookup(hybrid, MONO_MAP) - _lookup(before, MONO_MAP)
    cross = _lookup(hybrid, CROSS_MAP) - _lookup(before, CROSS_MAP)
    if bias(hybrid) < bias(x_x_only) and multi(hybrid) > multi(x_x_only):
        return (f"reading: in the same {steps} steps, hybrid batches (X-Y half the time) cut the language bias "
                f"(rank distance {bias(before):.1f} -> {bias(hybrid):.1f}; X-X only {bias(x_x_only):.1f}) and "
                f"lift multilingual mAP to {multi(hybrid):.3f} (X-X only {multi(x_x_only):.3f}): an answer's "
                f"translations now rank together near the top, while mono / cross mAP move only "
                f"{mono:+.3f} / {cross:+.3f}.")
    return (f"reading: in these {steps} steps hybrid batches did not beat X-X only on language bias "
            f"(rank distance {bias(hybrid):.1f} vs {bias(x_x_only):.1f}) and multilingual mAP "
            f"({multi(hybrid):.3f} vs {multi(x_x_only):.3f}); a run this short is noisy: try more --steps.")


def _train_recipe(out: Path, overrides: list[str], recipe: list[str]) -> tuple[dict, list[dict]]:
    """Train one recipe into `out`; (train summary, its eval records in order)."""
    from mixlingual.training.loop import train

    summary = train(config_from_dict(DEMO_SETTINGS, [f"output.dir={out}", *overrides, *recipe]))
    return summary, [r for _, r in read_json_records(out / "metrics.jsonl") if r["type"] == "eval"]


def _clear_earlier_run(out: Path, overwrite: bool) -> None:
    runs = [folder / "checkpoints" for folder in (out, out / X_X_ONLY_DIR) if (folder / "checkpoints").exists()]
    if runs and not overwrite:
        raise ConfigError(f"--out: {out} holds an earlier run; pass --overwrite or choose another folder")
    for checkpoints in runs:
        shutil.rmtree(checkpoints)


def run(args: argparse.Namespace) -> int:
    if args.task == "image-text":
        from mixlingual.imagetext.cli import run_demo

        return run_demo(args)
    args.steps = args.steps or DEMO_SETTINGS["train"]["max_steps"]
    started = time.perf_counter()
    out = Path(args.out)
    _clear_earlier_run(out, args.overwrite)
    threads = args.threads or idle_cores()
    overrides = [f"train.max_steps={args.steps}", f"train.threads={threads}", *args.set]
    config = config_from_dict(DEMO_SETTINGS, [f"output.dir={out}", *overrides])
    print(f"demo: training {config.model.name} on the demo set twice, {args.steps} steps each "
          f"(batch {config.train.batch_size}, {threads} thread(s)): hybrid batches (X-X with probability "
          f"alpha={config.sampling.alpha}, X-Y otherwise), then X-X batches only")
    summary, hybrid_evals = _train_recipe(out, overrides, ["sampling.kind=hybrid"])
    x_x_summary, x_x_evals = _train_recipe(out / X_X_ONLY_DIR, overrides, ["sampling.kind=mono", "eval.at_start=false"])
    before, hybrid, x_x_only = hybrid_evals[0], hybrid_evals[-1], x_x_evals[-1]
    result = {"before": before, "after": hybrid, "x_x_only": x_x_only, "steps": summary["steps"],
              "train_seconds": round(summary["seconds"] + x_x_summary["seconds"], 1),
              "wall_seconds": round(time.perf_counter() - started, 1), "threads": threads,
              "model": str(out / "model"), "x_x_only_model": str(out / X_X_ONLY_DIR / "model")}
    write_atomic(out / "metrics.json", json.dumps(result, indent=1))
    print(format_table({"before": before, "X-X only": x_x_only, "hybrid": hybrid}))
    print(reading_line(before, x_x_only, hybrid, summary["steps"]))
    print(f"demo: 2 x {summary['steps']} steps in {result['train_seconds']:.0f} s (total {result['wall_seconds']:.0f} s); "
          f"hybrid model in {out / 'model'}, X-X only in {out / X_X_ONLY_DIR / 'model'}, "
          f"metrics in {out / 'metrics.json'}")
    return 0
