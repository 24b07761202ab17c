"""`mixlingual tables`: print the README's findings tables (markdown) from a sweep's summary.json.

    mixlingual tables docs/results/findings/summary.json --label dev-12-23 \
        --groups x-x,x-y,hybrid,hybrid-0.25,hybrid-0.75,mix-40-40-20 --vs x-x,x-y

First table: one row per group on the split `--label`, mean ± sample std over seeds of mono /
cross / multi mAP, multi R@1, multi MRR@10 and rank distance. Second table: each group's effect
against each `--vs` group (group - vs) with the sweep's clustered 95% interval (two-level
bootstrap over seeds and parallel question groups); `*` marks an interval that excludes 0.
Nothing is computed here that the sweep did not write: this only lays its numbers out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mixlingual.errors import ConfigError, DataError

COLUMNS = (("settings.mono.map", "mono mAP"), ("settings.cross.map", "cross mAP"),
           ("settings.multi.map", "multi mAP"), ("settings.multi.r@1", "multi R@1"),
           ("settings.multi.mrr@10", "multi MRR@10"), ("rank_distance.mean", "rank distance"))
EFFECTS = (("mono", "map"), ("cross", "map"), ("multi", "map"), ("multi", "r@1"), ("multi", "mrr@10"),
           ("multi", "rank_distance"))


def _mean_std(entry: dict | None, digits: int) -> str:
    if not entry or not entry.get("n"):
        return "-"
    text = f"{entry['mean']:.{digits}f}"
    return text + (f" ± {entry['std']:.{digits}f}" if entry["n"] > 1 else "")


def _effect(c: dict | None, digits: int) -> str:
    if c is None:
        return "-"
    star = "*" if c["ci_low"] > 0 or c["ci_high"] < 0 else ""
    return f"{c['mean_diff']:+.{digits}f} [{c['ci_low']:+.{digits}f}, {c['ci_high']:+.{digits}f}]{star}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("summary", type=Path, help="a sweep's summary.json")
    parser.add_argument("--label", required=True, help="evaluation label (split) to show, e.g. dev-12-23")
    parser.add_argument("--groups", help="comma-separated groups, in order (default: all)")
    parser.add_argument("--vs", default="", help="comma-separated baselines for the effects table")


def render_tables(summary: dict, label: str, groups: list[str] | None = None, vs: list[str] = ()) -> str:
    """The markdown: the means table, then one effects table per baseline in `vs`."""
    seeds = {g["name"]: len(g["seeds"]) for g in summary["groups"]}
    groups = list(groups or seeds)
    lines = ["| recipe | seeds | " + " | ".join(name for _, name in COLUMNS) + " |",
             "|---|---|" + "---|" * len(COLUMNS)]
    for g in groups:
        stats = summary["metrics"].get(g, {}).get(label, {})
        cells = [_mean_std(stats.get(key), 1 if key.startswith("rank") else 3) for key, _ in COLUMNS]
        lines.append(f"| {g} | {seeds.get(g, 0)} | " + " | ".join(cells) + " |")
    comparisons = {(c["group"], c["baseline"], c["setting"], c["metric"]): c for c in summary["comparisons"]
                   if c["label"] == label}
    for base in vs:
        lines += ["", f"| recipe - {base} | " + " | ".join(f"{s} {m.replace('rank_distance', 'rank dist.')}"
                                                          for s, m in EFFECTS) + " |",
                  "|---|" + "---|" * len(EFFECTS)]
        for g in groups:
            if g == base:
                continue
            cells = [_effect(comparisons.get((g, base, s, m)), 1 if m == "rank_distance" else 3) for s, m in EFFECTS]
            lines.append(f"| {g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    if not args.summary.is_file():
        raise ConfigError(f"{args.summary}: no such file (a sweep's summary.json)")
    try:
        summary = json.loads(args.summary.read_text(encoding="utf-8"))
        labels = {label for per_group in summary["metrics"].values() for label in per_group}
    except (ValueError, KeyError, AttributeError) as err:
        raise DataError(f"not a sweep summary.json ({err})", path=str(args.summary)) from None
    if args.label not in labels:
        raise ConfigError(f"--label {args.label}: the summary has {', '.join(sorted(labels)) or 'no evaluation'}")
    print(render_tables(summary, args.label, [g for g in (args.groups or "").split(",") if g] or None,
                        [b for b in args.vs.split(",") if b]), end="")
    return 0
