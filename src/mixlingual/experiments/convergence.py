"""Convergence of training runs: per-language dev curves and the time to reach 95% of the end.

    mixlingual convergence [LABEL=]RUN_DIR [...] --out DIR [--low-resource sw,yo] [--setting multi]

A run folder is what `mixlingual train` writes (or a sweep cell holding it in `train/`):
`metrics.jsonl` (eval records with `per_language.{setting}.{lang}.{map,mrr@10}`), `config.yaml`
(batch size, gradient accumulation), `summary.json` (world size) and `batch_counts.json` (the
(query -> passage) language pairs drawn, which give each language's share of the training data).

Runs with the same strategy label (a sweep cell's group, else the folder name) are seeds of one
strategy: their curves are averaged step by step first, then "steps to 95%" is the first
evaluated step whose value reaches 95% of the last evaluated value (None when the end value is
not positive). Examples seen = steps x batch size x world size x gradient accumulation.

Low-resource languages - given with `--low-resource`, or whose share of the training pairs' sides
is below `--share-threshold` (languages never trained on have share 0) - come first in the
report and get their own plot panel.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from mixlingual.data.jsonl import read_json_records
from mixlingual.errors import DataError
from mixlingual.io import write_atomic

METRICS = ("mrr@10", "map")


@dataclass
class Run:
    """One training run's dev curves: {(setting, lang, metric): {step: value}}."""

    path: Path
    label: str
    examples_per_step: int
    curves: dict = field(default_factory=dict)
    pair_sides: dict = field(default_factory=dict)   # lang -> times it was a query or passage side


def _training_folder(run_dir: Path) -> Path:
    for candidate in (run_dir, run_dir / "train"):
        if (candidate / "metrics.jsonl").exists():
            return candidate
    raise DataError("no metrics.jsonl here or in train/ (is this a `mixlingual train` output folder?)",
                    path=str(run_dir))


def _read_yaml_or_json(path: Path) -> dict:
    if not path.exists():
        return {}
    return (yaml.safe_load if path.suffix == ".yaml" else json.loads)(path.read_text(encoding="utf-8")) or {}


def load_run(run_dir: Path | str) -> Run:
    """Read one run; 'LABEL=DIR' names its strategy (else a sweep cell's group, else the folder)."""
    label, eq, rest = str(run_dir).partition("=")
    given_label = label if eq and not Path(run_dir).exists() else None
    run_dir = Path(rest) if given_label else Path(run_dir)
    folder = _training_folder(run_dir)
    config = _read_yaml_or_json(folder / "config.yaml")
    summary = _read_yaml_or_json(folder / "summary.json")
    train = config.get("train", {})
    per_step = int(train.get("batch_size", 1)) * int(train.get("grad_accum", 1)) * int(summary.get("world_size", 1))
    cell = _read_yaml_or_json(Path(run_dir) / "cell.json")
    run = Run(run_dir, given_label or cell.get("group") or run_dir.name, per_step)
    for _, record in read_json_records(folder / "metrics.jsonl"):
        if not isinstance(record, dict) or record.get("type") != "eval":
            continue
        for setting, langs in (record.get("per_language") or {}).items():
            for lang, values in langs.items():
                for metric in METRICS:
                    if values.get(metric) is not None:
                        run.curves.setdefault((setting, lang, metric), {})[int(record["step"])] = values[metric]
    counts = _read_yaml_or_json(folder / "batch_counts.json").get("pairs", {})
    for pair, n in counts.items():
        for lang in pair.split("->"):
            run.pair_sides[lang] = run.pair_sides.get(lang, 0) + n
    return run


def steps_to_fraction(curve: dict[int, float], fraction: float = 0.95) -> int | None:
    """First step whose value is >= fraction x the last value (None if the last value <= 0)."""
    steps = sorted(curve)
    if not steps or curve[steps[-1]] <= 0:
        return None
    target = fraction * curve[steps[-1]]
    return next(s for s in steps if curve[s] >= target)


def mean_curves(runs: list[Run]) -> dict:
    """Average the curves of runs (seeds) at the steps they all evaluated."""
    out = {}
    for key in set().union(*(r.curves for r in runs)):
        if not all(key in r.curves for r in runs):
            continue
        steps = set.intersection(*(set(r.curves[key]) for r in runs))
        out[key] = {s: float(np.mean([r.curves[key][s] for r in runs])) for s in sorted(steps)}
    return out


def language_shares(runs: list[Run]) -> dict[str, float]:
    totals: dict[str, int] = defaultdict(int)
    for run in runs:
        for lang, n in run.pair_sides.items():
            totals[lang] += n
    total = sum(totals.values())
    return {lang: n / total for lang, n in totals.items()} if total else {}


def convergence_rows(runs: list[Run], *, settings=("multi",), fraction: float = 0.95,
                     low_resource=(), share_threshold: float = 0.05) -> tuple[list[dict], dict]:
    """One row per (strategy, setting, language): final value and steps / examples to `fraction`."""
    by_label: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_label[run.label].append(run)
    shares = language_shares(runs)
    rows = []
    for label, group in by_label.items():
        curves = mean_curves(group)
        per_step = group[0].examples_per_step
        for (setting, lang, metric), curve in curves.items():
            if setting not in settings:
                continue
            share = shares.get(lang, 0.0) if shares else None
            low = lang in low_resource or (share is not None and share < share_threshold)
            step = steps_to_fraction(curve, fraction)
            rows.append({"strategy": label, "seeds": len(group), "setting": setting, "lang": lang, "metric": metric,
                         "low_resource": low, "train_share": share, "final": curve[max(curve)],
                         "final_step": max(curve), "steps_to_target": step,
                         "examples_to_target": None if step is None else step * per_step})
    rows.sort(key=lambda r: (not r["low_resource"], r["setting"], r["lang"], r["metric"], r["strategy"]))
    return rows, {label: mean_curves(group) for label, group in by_label.items()}


def render_markdown(rows: list[dict], fraction: float) -> str:
    lines = ["# Convergence", "", f"Steps (and examples = steps x batch x world size x accumulation) until a "
             f"language's dev value first reaches {fraction:.0%} of its final value; curves averaged over "
             "seeds first. Low-resource languages first.", "",
             "| group | setting | lang | train share | metric | strategy | seeds | final | steps to target | examples |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        share = "-" if r["train_share"] is None else f"{r['train_share']:.1%}"
        lines.append(f"| {'low-resource' if r['low_resource'] else 'other'} | {r['setting']} | {r['lang']} | {share} | "
                     f"{r['metric']} | {r['strategy']} | {r['seeds']} | {r['final']:.3f} | "
                     f"{r['steps_to_target'] if r['steps_to_target'] is not None else '-'} | "
                     f"{r['examples_to_target'] if r['examples_to_target'] is not None else '-'} |")
    return "\n".join(lines) + "\n"


def write_convergence_report(run_dirs, out_dir: Path, *, low_resource=(), share_threshold: float = 0.05,
                             fraction: float = 0.95, settings=("multi",)) -> dict:
    """convergence.json, convergence.md and one plot per (setting, metric) in out_dir."""
    from mixlingual.experiments.convergence_plots import plot_group_curves

    runs = [load_run(d) for d in run_dirs]
    rows, curves = convergence_rows(runs, settings=settings, fraction=fraction, low_resource=set(low_resource),
                                    share_threshold=share_threshold)
    low = sorted({r["lang"] for r in rows if r["low_resource"]})
    plots = []
    for setting in settings:
        for metric in METRICS:
            path = out_dir / f"curves-{setting}-{metric}.png"
            if plot_group_curves(curves, setting, metric, low, path):
                plots.append(path.name)
    report = {"fraction": fraction, "settings": list(settings), "low_resource": low, "share_threshold": share_threshold,
              "runs": [str(r.path) for r in runs], "rows": rows, "plots": plots}
    write_atomic(out_dir / "convergence.json", json.dumps(report, indent=2))
    markdown = render_markdown(rows, fraction) + "".join(f"\n![{p}]({p})\n" for p in plots)
    write_atomic(out_dir / "convergence.md", markdown)
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", help="training output folders or sweep cells; 'LABEL=DIR' names the "
                        "strategy (runs sharing a label are averaged as seeds)")
    parser.add_argument("--out", type=Path, required=True, help="folder for convergence.{json,md} and plots")
    parser.add_argument("--low-resource", default="", help="comma-separated languages to treat as low-resource")
    parser.add_argument("--share-threshold", type=float, default=0.05,
                        help="languages below this share of training pair sides count as low-resource")
    parser.add_argument("--fraction", type=float, default=0.95, help="target share of the final value")
    parser.add_argument("--setting", action="append", choices=("mono", "cross", "multi"),
                        help="settings to report (repeatable; default multi)")


def run(args: argparse.Namespace) -> int:
    report = write_convergence_report(args.runs, args.out, low_resource=[x for x in args.low_resource.split(",") if x],
                                      share_threshold=args.share_threshold, fraction=args.fraction,
                                      settings=tuple(args.setting or ("multi",)))
    print(f"{len(report['rows'])} rows, low-resource: {', '.join(report['low_resource']) or 'none'}; "
          f"wrote {args.out / 'convergence.md'}")
    return 0
