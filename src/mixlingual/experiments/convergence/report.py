"""`mixlingual convergence`: write a convergence report - convergence.json (everything),
convergence.md (tables) and curve plots - from training runs (`runs.py`) summarized over seeds
(`summary.py`).

    mixlingual convergence [LABEL=]RUN_DIR [...] --out DIR [--language-groups "NAME=l1,l2;NAME=l3"]
        [--reference hybrid] [--fraction 0.95] [--setting multi]

convergence.json holds:

* `recipes`: per recipe its seeds, examples per optimizer step and run folders;
* `language_groups` (+ `language_groups_source`: `--language-groups`, `--low-resource` or
  `batch_counts.json`);
* `languages`: per (recipe, setting, language, metric) `steps_to_target`, `examples_to_target`
  and `final`, each {mean, low, high, n_seeds, n_missing, per_seed} (low/high: 95% interval
  over seeds, None with one seed), plus `steps_on_mean_curve` / `examples_on_mean_curve` /
  `final_on_mean_curve` from the seed-averaged curve and `train_share`;
* `groups`: the same three quantities per (recipe, setting, group, metric), from the per-seed
  means over the group's languages;
* `differences`: reference recipe minus each other recipe, per group and per language, each
  quantity {mean, low, high, paired, n_seeds_a, n_seeds_b};
* `runs_without_curves`: runs given but without dev curves in the reported settings (skipped);
* `unfinished_runs`: runs without summary.json (still training): their "final" is their latest value.

convergence.md (`render_markdown`): per (setting, metric) one table, rows = language groups (bold,
mean over the group's languages) each followed by its languages, two columns per recipe: steps to
the target and final value, as "mean [low, high]" over seeds ("mean (1 seed)" when there is no
interval), marked ↓ where a seed's curve ended below its start; then one table of reference -
other differences per group.

Curves (`plot_group_bands`, one panel per language group, one line per recipe with a band over
seeds): for each seed, the group curve is the mean over the group's languages of the per-language dev
metric at the steps all of them were evaluated at. The line is the mean of those seed curves at
the steps every seed has; the shaded band runs from the lowest to the highest seed (min-max: with
3-5 seeds it shows every seed rather than an interval drawn from too few values). One seed: a
line without a band.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mixlingual import stats
from mixlingual.errors import ConfigError
from mixlingual.experiments.convergence.runs import (METRICS, language_groups as resolve_groups, language_shares,
                                                     load_run, mean_curves, runs_by_label)
from mixlingual.experiments.convergence.summary import (difference_rows, group_rows, group_seed_values,
                                                         language_rows, per_seed_values, seed_key)
from mixlingual.io import write_atomic

INTERVAL = (f"{stats.LEVEL:.0%} percentile bootstrap over seeds ({stats.RESAMPLES} resamples, "
            f"seed {stats.BOOTSTRAP_SEED}); none with one seed")


def build_report(runs: list, *, language_groups: str | None = None, low_resource=(), reference: str | None = None,
                 fraction: float = 0.95, settings=("multi",)) -> dict:
    """Everything convergence.json holds (see the module docstring), from loaded runs."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"--fraction: expected a share of the final value in (0, 1], got {fraction}")
    grouped, skipped = runs_by_label(runs, settings)
    used = [run for members in grouped.values() for run in members]
    labels = list(grouped)
    langs = sorted({lang for run in used for setting, lang, _ in run.curves if setting in settings})
    groups, source = resolve_groups([run.pairs for run in used], langs, language_groups, list(low_resource))
    if reference is None:
        reference = "hybrid" if "hybrid" in grouped else (labels[0] if labels else None)
    elif reference not in grouped:
        raise ConfigError(f"--reference: no recipe '{reference}' among {', '.join(labels) or 'none'}")
    values = per_seed_values(grouped, settings, fraction)
    per_step = {label: members[0].examples_per_step for label, members in grouped.items()}
    curves = {label: mean_curves(members) for label, members in grouped.items()}
    group_values = group_seed_values(values, groups)
    recipes = [{"name": label, "seeds": [seed_key(r) for r in members],
                "examples_per_step": sorted({r.examples_per_step for r in members}),
                "runs": [str(r.path) for r in members]} for label, members in grouped.items()]
    return {"fraction": fraction, "settings": list(settings), "metrics": list(METRICS), "interval": INTERVAL,
            "recipes": recipes, "reference": reference, "language_groups": groups,
            "language_groups_source": source,
            "languages": language_rows(values, groups, language_shares(used), curves, per_step, fraction),
            "groups": group_rows(group_values, groups),
            "differences": difference_rows(values, group_values, reference, labels) if reference else [],
            "runs": [str(r.path) for r in runs], "runs_without_curves": [str(r.path) for r in skipped],
            "unfinished_runs": [str(r.path) for r in used if not r.finished]}


def write_convergence_report(run_dirs, out_dir: Path, *, language_groups: str | None = None, low_resource=(),
                             reference: str | None = None, fraction: float = 0.95, settings=("multi",)) -> dict:
    """Load the runs, write convergence.json, convergence.md and curves-<setting>-<metric>.png; return the report."""
    runs = [load_run(d) for d in run_dirs]
    report = build_report(runs, language_groups=language_groups, low_resource=low_resource, reference=reference,
                          fraction=fraction, settings=settings)
    grouped, _ = runs_by_label(runs, settings)
    out_dir = Path(out_dir)
    plots = []
    for setting in settings:
        for metric in METRICS:
            path = out_dir / f"curves-{setting}-{metric}.png"
            if plot_group_bands(grouped, setting, metric, report["language_groups"], path):
                plots.append(path.name)
    report["plots"] = plots
    write_atomic(out_dir / "convergence.json", json.dumps(report, indent=2))
    write_atomic(out_dir / "convergence.md", render_markdown(report))
    return report


# ----- convergence.md -----------------------------------------------------------------------
DECLINED = " ↓"   # some seed ended below its first evaluated value: its steps to target are its first step


def _number(x: float, kind: str, signed: bool = False) -> str:
    if kind == "final":
        return f"{x:+.3f}" if signed else f"{x:.3f}"
    text = f"{x:+.1f}" if signed else f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def cell(summary: dict | None, kind: str, signed: bool = False) -> str:
    """'mean [low, high]', 'mean (1 seed)', or '-' when there is no value."""
    if not summary or summary.get("mean") is None:
        return "-"
    text = _number(summary["mean"], kind, signed)
    if summary.get("low") is not None:
        text += f" [{_number(summary['low'], kind, signed)}, {_number(summary['high'], kind, signed)}]"
    elif "n_seeds" in summary:
        text += f" ({summary['n_seeds']} seed{'s' if summary['n_seeds'] != 1 else ''})"
    else:
        text += " (no interval)"
    if summary.get("n_missing"):
        text += f" ({summary['n_missing']} seed(s) without a target)"
    return text


def _declined(lang_rows: dict, label: str, langs: list[str]) -> str:
    """The ↓ mark when a seed of `label` ended below its start in any of `langs`."""
    return DECLINED if any((lang_rows.get((label, x)) or {}).get("seeds_ending_below_start") for x in langs) else ""


def _recipe_table(report: dict, setting: str, metric: str, labels: list[str]) -> list[str]:
    langs = {(r["strategy"], r["lang"]): r for r in report["languages"]
             if r["setting"] == setting and r["metric"] == metric}
    groups = {(r["strategy"], r["group"]): r for r in report["groups"]
              if r["setting"] == setting and r["metric"] == metric}
    lines = ["| group / language | " + " | ".join(f"{x} steps | {x} final" for x in labels) + " |",
             "|---|" + "---|---|" * len(labels)]
    for name, members in report["language_groups"].items():
        rows = [(f"**{name}** ({', '.join(members)})", groups, name, members)]
        rows += [(lang, langs, lang, [lang]) for lang in members]
        for title, table, key, covered in rows:
            found = {x: table.get((x, key)) or {} for x in labels}
            cells = [f"{cell(found[x].get('steps_to_target'), 'steps')}{_declined(langs, x, covered)} | "
                     f"{cell(found[x].get('final'), 'final')}" for x in labels]
            lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return lines


def _difference_table(report: dict, setting: str, metric: str, labels: list[str]) -> list[str]:
    reference = report["reference"]
    diffs = {(d["minus"], d["name"]): d for d in report["differences"]
             if d["level"] == "group" and d["setting"] == setting and d["metric"] == metric}
    others = [x for x in labels if x != reference and any(key[0] == x for key in diffs)]
    if not others:
        return []
    lines = ["", f"{reference} minus each recipe, per group (mean [95% interval] over seeds; "
             "paired by seed where both ran the same seeds):", "",
             "| group | " + " | ".join(f"{reference} - {x} steps | {reference} - {x} final" for x in others) + " |",
             "|---|" + "---|---|" * len(others)]
    for name in report["language_groups"]:
        cells = [f"{cell((diffs.get((x, name)) or {}).get('steps_to_target'), 'steps', True)} | "
                 f"{cell((diffs.get((x, name)) or {}).get('final'), 'final', True)}" for x in others]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def render_markdown(report: dict) -> str:
    """The whole convergence.md: header, one recipe table and one difference table per (setting, metric), plots."""
    labels = [r["name"] for r in report["recipes"]]
    recipes = "; ".join(f"{r['name']}: {len(r['seeds'])} seed(s), "
                        f"{'/'.join(map(str, r['examples_per_step']))} examples per step" for r in report["recipes"])
    lines = ["# Convergence", "",
             f"Steps until a language's dev value first reaches {report['fraction']:.0%} of its final value, "
             "on each seed's own curve; final = last evaluated value. Cells: mean over seeds "
             f"[{report['interval']}]. Group rows: per seed the mean over the group's languages, then over "
             "seeds. Examples to the target (steps x examples per step) and the seed-averaged-curve numbers "
             "are in convergence.json.", "",
             f"Recipes - {recipes or 'none'}.",
             f"Language groups from {report['language_groups_source']}."]
    if report.get("unfinished_runs"):
        lines.append(f"**Unfinished** (no summary.json; final = latest value): {', '.join(report['unfinished_runs'])}.")
    if report.get("runs_without_curves"):
        lines.append(f"Skipped (no dev curves): {len(report['runs_without_curves'])} run(s).")
    for setting in report["settings"]:
        for metric in report["metrics"]:
            if not any(r["setting"] == setting and r["metric"] == metric for r in report["languages"]):
                continue
            table = _recipe_table(report, setting, metric, labels)
            lines += ["", f"## {setting} {metric}", ""] + table
            if any(DECLINED in line for line in table):
                lines += ["", f"{DECLINED.strip()}: at least one seed ended below its first evaluated value (the "
                          "curve fell), so its steps to target are its first step."]
            lines += _difference_table(report, setting, metric, labels)
    lines += [f"\n![{p}]({p})" for p in report.get("plots", [])]
    return "\n".join(lines) + "\n"


# ----- curves (matplotlib, imported on first plot: the report's tables need no display) ----------
def group_curve(curves: dict, setting: str, metric: str, langs: list[str]) -> dict[int, float]:
    """Mean over `langs` of curves[(setting, lang, metric)] at the steps all of them have."""
    present = [curves[(setting, lang, metric)] for lang in langs if (setting, lang, metric) in curves]
    if not present:
        return {}
    steps = sorted(set.intersection(*(set(c) for c in present)))
    return {s: float(np.mean([c[s] for c in present])) for s in steps}


def seed_band(runs: list, setting: str, metric: str, langs: list[str]) -> dict[str, np.ndarray]:
    """{'steps', 'mean', 'low', 'high'} over the runs' (seeds') group curves; empty arrays if none."""
    seed_curves = [c for c in (group_curve(run.curves, setting, metric, langs) for run in runs) if c]
    if not seed_curves:
        return {k: np.array([]) for k in ("steps", "mean", "low", "high")}
    steps = sorted(set.intersection(*(set(c) for c in seed_curves)))
    table = np.array([[c[s] for s in steps] for c in seed_curves])
    return {"steps": np.array(steps), "mean": table.mean(axis=0), "low": table.min(axis=0),
            "high": table.max(axis=0)}


def plot_group_bands(runs_by_label: dict[str, list], setting: str, metric: str,
                     groups: dict[str, list[str]], path: Path) -> bool:
    """Write the figure; False (nothing written) when no recipe has this setting and metric."""
    panels = [(name, langs) for name, langs in groups.items()
              if any(seed_band(runs, setting, metric, langs)["steps"].size for runs in runs_by_label.values())]
    if not panels:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mixlingual.evaluation.report import save_figure

    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.8), squeeze=False, sharey=True)
    for ax, (name, langs) in zip(axes[0], panels):
        for i, (label, runs) in enumerate(runs_by_label.items()):
            band = seed_band(runs, setting, metric, langs)
            if not band["steps"].size:
                continue
            color = f"C{i % 10}"
            ax.plot(band["steps"], band["mean"], marker=".", color=color, label=f"{label} ({len(runs)} seed{'s' if len(runs) != 1 else ''})")
            if len(runs) > 1:
                ax.fill_between(band["steps"], band["low"], band["high"], color=color, alpha=0.2, linewidth=0)
        ax.set_title(f"{name}: {', '.join(langs)}", fontsize=9)
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel(f"{setting} {metric}: mean over languages\n(line: mean of seeds, band: min-max)")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return True


# ----- the command --------------------------------------------------------------------------
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
    report = write_convergence_report(args.runs, args.out, language_groups=args.language_groups,
                                      low_resource=[x for x in args.low_resource.split(",") if x],
                                      reference=args.reference, fraction=args.fraction,
                                      settings=tuple(args.setting or ("multi",)))
    groups = "; ".join(f"{name}: {','.join(langs)}" for name, langs in report["language_groups"].items())
    print(f"{len(report['recipes'])} recipes, {len(report['languages'])} language rows; groups ({groups}); "
          f"wrote {args.out / 'convergence.md'}")
    return 0
