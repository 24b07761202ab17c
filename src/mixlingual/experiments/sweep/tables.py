"""Print the README's findings tables (markdown) from a sweep's summary.json.

    python scripts/findings_tables.py docs/results/findings/summary.json --label dev-12-23 \
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summary")
    parser.add_argument("--label", required=True, help="evaluation label (split) to show")
    parser.add_argument("--groups", help="comma-separated groups, in order (default: all)")
    parser.add_argument("--vs", default="", help="comma-separated baselines for the effects table")
    args = parser.parse_args()
    summary = json.loads(open(args.summary, encoding="utf-8").read())
    seeds = {g["name"]: len(g["seeds"]) for g in summary["groups"]}
    groups = args.groups.split(",") if args.groups else list(seeds)
    print("| recipe | seeds | " + " | ".join(name for _, name in COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for g in groups:
        stats = summary["metrics"].get(g, {}).get(args.label, {})
        cells = [_mean_std(stats.get(key), 1 if key.startswith("rank") else 3) for key, _ in COLUMNS]
        print(f"| {g} | {seeds.get(g, 0)} | " + " | ".join(cells) + " |")
    comparisons = {(c["group"], c["baseline"], c["setting"], c["metric"]): c for c in summary["comparisons"]
                   if c["label"] == args.label}
    for base in [b for b in args.vs.split(",") if b]:
        print(f"\n| recipe - {base} | " + " | ".join(f"{s} {m.replace('rank_distance', 'rank dist.')}"
                                                    for s, m in EFFECTS) + " |")
        print("|---|" + "---|" * len(EFFECTS))
        for g in groups:
            if g == base:
                continue
            cells = [_effect(comparisons.get((g, base, s, m)), 1 if m == "rank_distance" else 3) for s, m in EFFECTS]
            print(f"| {g} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
