"""Convergence of training runs: per-language dev curves and the time to reach 95% of the end, over seeds.

    mixlingual convergence [LABEL=]RUN_DIR [...] --out DIR [--language-groups "NAME=l1,l2;NAME=l3"]
        [--reference hybrid] [--fraction 0.95] [--setting multi]

A run folder is what `mixlingual train` writes (or a sweep cell holding it in `train/`):
`metrics.jsonl` (eval records with `per_language.{setting}.{lang}.{map,mrr@10}`), `config.yaml`
(batch size, gradient accumulation, seed), `summary.json` (world size) and `batch_counts.json`
(the (query -> passage) language pairs drawn). A sweep cell's `cell.json` gives its group and seed.

Runs with the same strategy label (`LABEL=DIR`, else a sweep cell's group, else the folder name)
are seeds of one recipe. Each seed's own curve gives its steps to 95% of its own final value,
the examples seen by then (steps x batch size x world size x gradient accumulation) and the
final value; those are reported per language and per language group as the mean over seeds
with a 95% interval over seeds, and as differences between the reference recipe and each other
one (`convergence_summary`, `convergence_stats`). Language groups come from `--language-groups`
or are derived from the runs' `batch_counts.json` (`convergence_groups`).
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
    seed: int | None = None
    finished: bool = True                            # summary.json written (training ended)
    curves: dict = field(default_factory=dict)
    pairs: dict = field(default_factory=dict)        # "query_lang->passage_lang" -> pairs drawn
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
    seed = cell.get("seed", train.get("seed"))
    run = Run(run_dir, given_label or cell.get("group") or run_dir.name, per_step,
              None if seed is None else int(seed), finished=(folder / "summary.json").exists())
    for _, record in read_json_records(folder / "metrics.jsonl"):
        if not isinstance(record, dict) or record.get("type") != "eval":
            continue
        for setting, langs in (record.get("per_language") or {}).items():
            for lang, values in langs.items():
                for metric in METRICS:
                    if values.get(metric) is not None:
                        run.curves.setdefault((setting, lang, metric), {})[int(record["step"])] = values[metric]
    run.pairs = dict(_read_yaml_or_json(folder / "batch_counts.json").get("pairs", {}))
    for pair, n in run.pairs.items():
        for lang in pair.split("->"):
            run.pair_sides[lang] = run.pair_sides.get(lang, 0) + n
    return run


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
    """Each language's share of all query and passage sides of the runs' drawn pairs."""
    totals: dict[str, int] = defaultdict(int)
    for run in runs:
        for lang, n in run.pair_sides.items():
            totals[lang] += n
    total = sum(totals.values())
    return {lang: n / total for lang, n in totals.items()} if total else {}


def runs_by_label(runs: list[Run], settings) -> tuple[dict[str, list[Run]], list[Run]]:
    """({label: runs with curves in `settings`} in order of first appearance, runs without such curves).

    Raises DataError when two runs of one label have the same seed (one run given twice?).
    """
    grouped: dict[str, list[Run]] = {}
    skipped = []
    for run in runs:
        if not any(setting in settings for setting, _, _ in run.curves):
            skipped.append(run)
            continue
        same = [r for r in grouped.get(run.label, []) if r.seed is not None and r.seed == run.seed]
        if same:
            raise DataError(f"runs of '{run.label}' share seed {run.seed}: {same[0].path} and {run.path}",
                            path=str(run.path))
        grouped.setdefault(run.label, []).append(run)
    return grouped, skipped


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", help="training output folders or sweep cells; 'LABEL=DIR' names the "
                        "recipe (runs sharing a label are its seeds)")
    parser.add_argument("--out", type=Path, required=True, help="folder for convergence.{json,md} and plots")
    parser.add_argument("--language-groups", metavar="'NAME=l1,l2;NAME=l3'",
                        help="language groups in report order, ';'-separated (unlisted languages: 'other'); "
                             "default: from batch_counts.json - passages / queries-only / unseen")
    parser.add_argument("--low-resource", default="", help="shorthand for --language-groups 'low-resource=LIST' "
                        "(comma-separated; the rest: 'other')")
    parser.add_argument("--reference", help="recipe compared with each other one (reference - other); "
                        "default: 'hybrid' if present, else the first recipe")
    parser.add_argument("--fraction", type=float, default=0.95, help="target share of the final value")
    parser.add_argument("--setting", action="append", choices=("mono", "cross", "multi"),
                        help="settings to report (repeatable; default multi)")


def run(args: argparse.Namespace) -> int:
    # imported here: convergence_report builds on this module's readers
    from mixlingual.experiments.convergence_report import write_convergence_report

    report = write_convergence_report(args.runs, args.out, language_groups=args.language_groups,
                                      low_resource=[x for x in args.low_resource.split(",") if x],
                                      reference=args.reference, fraction=args.fraction,
                                      settings=tuple(args.setting or ("multi",)))
    groups = "; ".join(f"{name}: {','.join(langs)}" for name, langs in report["language_groups"].items())
    print(f"{len(report['recipes'])} recipes, {len(report['languages'])} language rows; groups ({groups}); "
          f"wrote {args.out / 'convergence.md'}")
    return 0
