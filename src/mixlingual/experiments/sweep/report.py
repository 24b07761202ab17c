"""A sweep's outputs: summary.json, report.md (mean +- std tables per benchmark, effects and p
against the baselines, the selection) and the plots (`write_outputs`, from the finished cells)."""

from __future__ import annotations

import json
import math

from mixlingual.errors import ConfigError
from mixlingual.experiments.sweep.aggregate import SETTINGS, Group, compare_groups, summarize_groups
from mixlingual.experiments.sweep.cells import CellPlan, is_complete
from mixlingual.experiments.sweep.grid import Cell
from mixlingual.experiments.sweep.plots import plot_against_ratio, plot_pareto
from mixlingual.experiments.sweep.selection import seed_scores, select_and_confirm
from mixlingual.io import write_atomic

TABLE_METRICS = (("settings.mono.map", "mono mAP"), ("settings.cross.map", "cross mAP"),
                 ("settings.multi.map", "multi mAP"), ("settings.multi.r@1", "multi R@1"),
                 ("rank_distance.mean", "rank dist."))
RECALL_METRICS = tuple((f"settings.{setting}.{k}", f"{setting} {k.upper()}") for setting in SETTINGS
                       for k in ("r@1", "r@10", "mrr@10"))


def _fmt(entry: dict | None, digits: int = 3) -> str:
    if not entry or entry["n"] == 0 or math.isnan(entry["mean"]):
        return "-"
    return f"{entry['mean']:.{digits}f} ± {entry['std']:.{digits}f}"


def _fmt_p(p: float | None) -> str:
    if p is None:
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _fmt_effect(c: dict) -> str:
    """effect [95% interval], e.g. '+0.0043 [-0.0012, +0.0098]'."""
    return f"{c['mean_diff']:+.4g} [{c['ci_low']:+.4g}, {c['ci_high']:+.4g}]"


def render_report(summary: dict, groups: list[Group], labels: list[str], comparisons: list[dict], *,
                  baseline: str, metric: str, n_resamples: int, plots: dict[str, list[str]],
                  fronts: dict[str, list[str]], failed: list[str], notes: list[str] = (),
                  title: str = "Sweep report", preface: list[str] = (), roles: dict[str, str] | None = None) -> str:
    """The markdown report; `plots` maps label -> image paths relative to the report; `preface`
    (the selected recipe, `render_selection`) goes first; `roles` marks select / confirm sections."""
    lines = [f"# {title}", ""]
    lines.append(f"{len(groups)} groups x seeds; values are mean ± sample std over seeds (n given per "
                 f"group). Effects of per-query {metric} against the baseline **{baseline}** carry a 95% "
                 f"interval and a two-sided p from one two-level bootstrap ({n_resamples} resamples: seeds, "
                 "then parallel question groups), so p < 0.05 only when the interval excludes 0; "
                 "p_holm = Holm-adjusted over the groups of one setting; see docs/statistics.md.")
    lines.append("")
    if failed:
        lines += ["**Failed cells** (rerun the same command to retry them):", ""]
        lines += [f"- {f}" for f in failed] + [""]
    if notes:
        lines += [f"- {n}" for n in notes] + [""]
    lines += list(preface)
    p_index = {(c["label"], c["setting"], c["group"]): c for c in comparisons
               if c["baseline"] == baseline and c["metric"] == metric}
    for label in labels:
        role = (roles or {}).get(label)
        lines += [f"## {label}" + (f" ({role} split)" if role else ""), ""]
        shown = [g for g in groups if summary.get(g.name, {}).get(label)]   # groups evaluated on it
        header = ["group", "n"] + [name for _, name in TABLE_METRICS] + [f"p {s} (p_holm)" for s in SETTINGS]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for group in shown:
            stats = summary.get(group.name, {}).get(label, {})
            n = max((e["n"] for e in stats.values()), default=0)
            cells = [group.name + (" (baseline)" if group.name == baseline else ""), str(n)]
            cells += [_fmt(stats.get(key)) for key, _ in TABLE_METRICS]
            for setting in SETTINGS:
                row = p_index.get((label, setting, group.name))
                cells.append(f"{_fmt_p(row['p_value'])} ({_fmt_p(row['p_holm'])})" if row else "")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        header = ["group"] + [name for _, name in RECALL_METRICS]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for group in shown:
            stats = summary.get(group.name, {}).get(label, {})
            lines.append("| " + " | ".join([group.name] + [_fmt(stats.get(key)) for key, _ in RECALL_METRICS]) + " |")
        lines.append("")
        tests = [c for c in comparisons if c["label"] == label]
        if tests:
            lines += ["Paired comparisons (effect = group - baseline, mean over paired queries, with its "
                      "95% interval and p over seeds and question groups; rank distance: lower is less "
                      "language bias; dropped: queries some seed of either side lacks, left out):", "",
                      "| group | vs | setting | metric | effect [95% CI] | p | p_holm | questions | "
                      "queries | dropped | seeds |",
                      "|---|---|---|---|---|---|---|---|---|---|---|"]
            for c in tests:
                lines.append(f"| {c['group']} | {c['baseline']} | {c['setting']} | {c['metric']} | "
                             f"{_fmt_effect(c)} | {_fmt_p(c['p_value'])} | {_fmt_p(c['p_holm'])} | "
                             f"{c['n_clusters']} | {c['n_queries']} | {c['dropped_queries']} | "
                             f"{c['n_seeds_b']} vs {c['n_seeds_a']}{' (paired)' if c['seeds_paired'] else ''} |")
            lines.append("")
        if fronts.get(label):
            lines += [f"Pareto front (mono vs multi mAP): {', '.join(fronts[label])}", ""]
        for image in plots.get(label, []):
            lines += [f"![{label}]({image})", ""]
    return "\n".join(lines) + "\n"


def _effect(c: dict) -> str:
    """A comparison's mean difference, with its interval when the comparison has one."""
    text = f"{c.get('mean_diff', float('nan')):+.4g}"
    if c.get("ci_low") is not None and c.get("ci_high") is not None:
        text += f" [{c['ci_low']:+.4g}, {c['ci_high']:+.4g}]"
    return text


def _selection_table(selection: dict, summary: dict) -> list[str]:
    """The selected group's numbers on every select and confirm split, and where it ranks."""
    best, metric = selection["best"], selection["metric"]
    columns = [(key, name) for key, name in TABLE_METRICS if key != metric]
    header = ["split", "role", metric] + [name for _, name in columns] + ["rank among groups"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    several = " (on their mean)" if len(selection["selected_on"]) > 1 else ""
    rows = [(label, "select", f"chosen: best of {len(selection['select_scores'])}{several}")
            for label in selection["selected_on"]]
    for label in selection["confirmed_on"]:
        place = selection["confirm"][label]
        rank = f"{place['rank']} of {place['n_groups']}" if place["rank"] else "not evaluated"
        if place["rank"] and place["rank"] > 1:
            rank += f" (best here: {place['best_on_this_split']})"
        rows.append((label, "confirm", rank))
    for label, role, rank in rows:
        stats = summary.get(best, {}).get(label, {})
        lines.append("| " + " | ".join([label, role, _fmt(stats.get(metric))]
                                        + [_fmt(stats.get(key)) for key, _ in columns] + [rank]) + " |")
    return lines + [""]


def _compared(selection: dict) -> str:
    seeds = selection.get("seeds_compared", "all")
    if seeds == "all" or not seeds:
        return "seeds"
    return f"the seeds every group has: {', '.join(str(s) for s in seeds)}"


def render_selection(selection: dict | None, evals, summary: dict, comparisons: list[dict]) -> list[str]:
    """The report's header on the best recipe: which split selected it, which confirmed it, its
    numbers on each, and its paired tests on the confirm split ([] when no benchmark has a role)."""
    if not selection:
        return []
    described = {e.label: f"`{e.label}` ({e.describe()})" for e in evals}
    best, metric = selection["best"], selection["metric"]
    lines = ["## Selected recipe", ""]
    if best is None:
        return lines + [f"Nothing selected yet: no group has {metric} on every select split "
                        f"({', '.join(selection['selected_on'])}).", ""]
    confirmed = ", ".join(described[label] for label in selection["confirmed_on"])
    lines += [f"**{best}**: selected on {', '.join(described[label] for label in selection['selected_on'])}, "
              f"confirmed on {confirmed or 'nothing (no split has role: confirm)'}; by {metric} "
              f"({'higher' if selection['mode'] == 'max' else 'lower'} is better, mean over "
              f"{_compared(selection)}). The select "
              "split chose the recipe, so its numbers there are optimistic; the confirm split played no part "
              "in the choice.", ""]
    lines += _selection_table(selection, summary)
    tests = [c for c in comparisons if c["label"] in selection["confirmed_on"] and best in (c["group"], c["baseline"])]
    if tests:
        lines += [f"Paired tests of {best} on the confirm split (effect = group - vs; as in the split's "
                  "own section below):", "",
                  "| split | group | vs | setting | metric | effect | p | p_holm |", "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {c['label']} | {c['group']} | {c['baseline']} | {c['setting']} | {c['metric']} | "
                  f"{_effect(c)} | {_fmt_p(c.get('p_value'))} | {_fmt_p(c.get('p_holm'))} |" for c in tests]
        lines.append("")
    return lines


def group_cells(plan: CellPlan, cells: list[Cell]) -> list[Group]:
    """Cells grouped over seeds, in first-seen order; only complete cells count."""
    groups: dict[str, Group] = {}
    for cell in cells:
        group = groups.setdefault(cell.group, Group(cell.group, cell.recipe, cell.override_dict()))
        if is_complete(plan, cell):
            group.cell_dirs.append(plan.cell_dir(cell))
            group.seeds.append(cell.seed)
    return list(groups.values())


def write_outputs(plan: CellPlan, cells: list[Cell], options: dict, failed: list[str]) -> dict:
    """Write DIR/summary.json, DIR/report.md and DIR/plots/; return the summary."""
    groups = [g for g in group_cells(plan, cells) if g.cell_dirs]
    labels = [e.label for e in plan.evals]
    summary = summarize_groups(groups, labels)
    names = [g.name for g in groups]
    wanted = options["baseline"] or (names[:1] if names else [])
    baselines = [b.strip() for b in wanted.split(",")] if isinstance(wanted, str) else [str(b) for b in wanted]
    unknown = sorted(set(baselines) - {c.group for c in cells})
    if unknown:
        raise ConfigError(f"baseline {unknown} is not a group of this sweep; groups: {sorted({c.group for c in cells})}")
    pending = [b for b in baselines if b not in names]   # no finished cell yet: tested next time
    notes = [f"baseline {b}: no finished cell yet, so nothing is tested against it" for b in pending]
    ready = [b for b in baselines if b in names]
    baseline = baselines[0] if baselines else ""
    comparisons = compare_groups(groups, labels, baseline=ready, metric=options["metric"],
                                 n_resamples=options["n_resamples"]) if len(groups) > 1 and ready else []
    x_key = options["x_key"] or next((k for k in options["grid_keys"]
                                      if any(isinstance(g.overrides.get(k), (int, float)) for g in groups)), None)
    plots, fronts = {}, {}
    for label in labels:
        plots[label] = []
        if x_key and plot_against_ratio(summary, groups, label, x_key, plan.out_dir / "plots" / f"{label}-vs-ratio.png"):
            plots[label].append(f"plots/{label}-vs-ratio.png")
        fronts[label] = plot_pareto(summary, groups, label, plan.out_dir / "plots" / f"{label}-pareto.png")
        if fronts[label]:
            plots[label].append(f"plots/{label}-pareto.png")
    select_labels = [e.label for e in plan.evals if e.role == "select"]
    selection = select_and_confirm(summary, names, plan.evals, metric=options["select_metric"],
                                   mode=options["select_mode"],
                                   per_seed=seed_scores(groups, select_labels, options["select_metric"]))
    candidates, candidate_lines = None, []
    if options.get("candidates") is not None and groups:
        from mixlingual.experiments.sweep.candidates import study_candidates

        candidates, candidate_lines = study_candidates(options["candidates"], groups, summary, labels,
                                                       plan.out_dir, n_resamples=options["n_resamples"])
    result = {"selection": selection, "candidates": candidates, "groups": [{"name": g.name, "recipe": g.recipe, "overrides": g.overrides, "seeds": g.seeds,
                          "cells": [str(d) for d in g.cell_dirs]} for g in groups],
              "metrics": summary, "comparisons": comparisons, "pareto": fronts, "failed": failed,
              "baseline": baseline, "baselines": baselines, "significance": {"test": "two-level-bootstrap", "metric": options["metric"][0],
                                              "metrics": options["metric"],
                                                     "n_resamples": options["n_resamples"], "unit": "question group",
                                                     "seed_handling": "interval and p from the same draws: "
                                                     "seeds resampled, then question groups",
                                                     "docs": "docs/statistics.md"}}
    write_atomic(plan.out_dir / "summary.json", json.dumps(result, indent=2, default=str))
    write_atomic(plan.out_dir / "report.md", render_report(
        summary, groups, labels, comparisons, baseline=baseline, metric=options["metric"][0],
        n_resamples=options["n_resamples"], plots=plots, fronts=fronts, failed=failed, notes=notes,
        preface=render_selection(selection, plan.evals, summary, comparisons) + candidate_lines,
        roles={e.label: e.role for e in plan.evals if e.role}))
    return result
