"""report.md and robustness.png of a robustness summary (`summary.summarize_robustness`).

report.md (`render_summary_markdown`): per measure, the drop (perturbed - clean) of each recipe
under each condition with its 95% interval; the difference of drops of each recipe against each
baseline; and, for multi mAP and multi MRR@10, both per query language.

robustness.png (`plot_drops`; matplotlib with the Agg backend, imported on first plot): one panel
per headline measure (multi mAP; multi MRR@10, which the attack also has): x = the conditions,
one point per recipe (side by side) at its drop (perturbed - clean), whiskers = the 95% interval
over seeds and question groups.
"""

from __future__ import annotations

from pathlib import Path

MEASURE_NAMES = {("multi", "map"): "multi mAP", ("mono", "map"): "mono mAP", ("cross", "map"): "cross mAP",
                 ("multi", "mrr@10"): "multi MRR@10", ("multi", "r@1"): "multi R@1 (relevant ranked first)",
                 ("multi", "rank_distance"): "multi rank distance (higher = more language bias)"}
PER_LANGUAGE_MEASURES = (("multi", "map"), ("multi", "mrr@10"))
ALL = "all"


def measure_name(measure: tuple[str, str]) -> str:
    return MEASURE_NAMES.get(tuple(measure), f"{measure[0]} {measure[1]}")


def _spec(metric: str) -> str:
    return ".1f" if metric == "rank_distance" else ".3f"


def _interval(entry: dict | None, value_key: str, metric: str) -> str:
    """'-0.051 [-0.060, -0.043]', with '*' when the interval excludes 0; '-' when missing."""
    if entry is None:
        return "-"
    spec = "+" + _spec(metric)
    if entry["ci_low"] is None:
        return f"{format(entry[value_key], spec)} [one group: no interval]"
    star = "*" if entry["ci_low"] > 0 or entry["ci_high"] < 0 else ""
    return (f"{format(entry[value_key], spec)} [{format(entry['ci_low'], spec)}, "
            f"{format(entry['ci_high'], spec)}]{star}")


def _drop_cell(entry: dict | None, kind: str, metric: str) -> str:
    """An attack's clean level is its own query sample's, not the evaluation's: shown in its cell."""
    cell = _interval(entry, "drop", metric)
    if entry is not None and kind == "attack":
        cell += f" from {format(entry['clean'], _spec(metric))}"
    return cell


def _measures(rows: list[dict]) -> list[tuple[str, str]]:
    seen = dict.fromkeys((r["setting"], r["metric"]) for r in rows)
    return list(seen)


def _index(rows: list[dict], *fields: str) -> dict[tuple, dict]:
    return {tuple(r[f] for f in fields): r for r in rows}


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in body), ""]


def _comparisons(summary: dict) -> list[tuple[str, str]]:
    return list(dict.fromkeys((r["recipe"], r["baseline"]) for r in summary["differences"]))


def _drop_tables(summary: dict) -> list[str]:
    recipes, conditions = list(summary["recipes"]), list(summary["conditions"])
    drops = _index(summary["drops"], "recipe", "condition", "setting", "metric", "lang")
    lines = []
    for setting, metric in _measures(summary["drops"]):
        body = [[name, *(_drop_cell(drops.get((r, name, setting, metric, ALL)), summary["conditions"][name]["kind"],
                                    metric) for r in recipes)]
                for name in conditions if any((r, name, setting, metric, ALL) in drops for r in recipes)]
        clean = next((name for name in conditions if summary["conditions"][name]["kind"] == "perturbation"
                      and any((r, name, setting, metric, ALL) in drops for r in recipes)), None)
        if clean is not None:   # every perturbation of a model shares its clean evaluation
            body.insert(0, ["(clean level)", *(format(drops[(r, clean, setting, metric, ALL)]["clean"], _spec(metric))
                                               if (r, clean, setting, metric, ALL) in drops else "-"
                                               for r in recipes)])
        lines += [f"### Drop: {measure_name((setting, metric))}", "", *_table(["condition", *recipes], body)]
    return lines


def _difference_tables(summary: dict) -> list[str]:
    pairs = _comparisons(summary)
    if not pairs:
        return []
    diffs = _index(summary["differences"], "recipe", "baseline", "condition", "setting", "metric", "lang")
    lines = ["## Difference of drops (recipe - baseline)", "",
             "Positive: the recipe loses less than the baseline (for the rank distance: its bias grows more).", ""]
    for setting, metric in _measures(summary["differences"]):
        body = [[name, *(_interval(diffs.get((r, b, name, setting, metric, ALL)), "difference", metric)
                         for r, b in pairs)]
                for name in summary["conditions"]
                if any((r, b, name, setting, metric, ALL) in diffs for r, b in pairs)]
        lines += [f"### {measure_name((setting, metric))}", "",
                  *_table(["condition", *(f"{r} - {b}" for r, b in pairs)], body)]
    return lines


def _language_tables(summary: dict) -> list[str]:
    drops = _index(summary["drops"], "recipe", "condition", "setting", "metric", "lang")
    diffs = _index(summary["differences"], "recipe", "baseline", "condition", "setting", "metric", "lang")
    lines = []
    for setting, metric in PER_LANGUAGE_MEASURES:
        langs = sorted({r["lang"] for r in summary["drops"]
                        if (r["setting"], r["metric"]) == (setting, metric) and r["lang"] != ALL})
        if not langs:
            continue
        body = [[name, recipe, *(_interval(drops.get((recipe, name, setting, metric, lang)), "drop", metric)
                                 for lang in langs)]
                for name in summary["conditions"] for recipe in summary["recipes"]
                if (recipe, name, setting, metric, ALL) in drops]
        lines += [f"### Drop per query language: {measure_name((setting, metric))}", "",
                  *_table(["condition", "recipe", *langs], body)]
        body = [[name, f"{r} - {b}", *(_interval(diffs.get((r, b, name, setting, metric, lang)), "difference", metric)
                                       for lang in langs)]
                for name in summary["conditions"] for r, b in _comparisons(summary)
                if (r, b, name, setting, metric, ALL) in diffs]
        if body:
            lines += [f"### Difference of drops per query language: {measure_name((setting, metric))}", "",
                      *_table(["condition", "recipe - baseline", *langs], body)]
    return lines


def render_summary_markdown(summary: dict) -> str:
    """The whole report.md."""
    recipes = "; ".join(f"{label} ({len(info['folders'])} seed{'s' * (len(info['folders']) != 1)}: "
                        f"{', '.join(str(s) for s in info['seeds'])})" for label, info in summary["recipes"].items())
    lines = ["# Robustness over recipes", "",
             "Drop = perturbed - clean: mean over query rows of the seed-averaged change of each row (a clean "
             "and a perturbed row of the same query and model are paired). A loss is negative for mAP, MRR@10 "
             "and R@1, positive for the rank distance. [95% interval]: two-level bootstrap, seeds resampled, "
             f"then parallel question groups ({summary['n_resamples']} resamples; docs/statistics.md); "
             "`*`: the interval excludes 0.", "",
             f"Recipes: {recipes}. Baselines: {', '.join(summary['baselines'])}.", "",
             "## Conditions", "", *_table(["condition", "kind", "definition"],
                                          [[name, c["kind"], ", ".join(f"{k}={v}" for k, v in c["spec"].items())]
                                           for name, c in summary["conditions"].items()]),
             "## Drop per recipe", "", *_drop_tables(summary), *_difference_tables(summary),
             "## Per query language", "", *_language_tables(summary)]
    return "\n".join(lines).rstrip() + "\n"


# ----- robustness.png -----------------------------------------------------------------------
PLOT_MEASURES = (("multi", "map"), ("multi", "mrr@10"))


def plot_drops(summary: dict, path: Path) -> Path | None:
    """Write the plot to `path`; None (nothing written) when no drop of PLOT_MEASURES exists."""
    rows = {(r["recipe"], r["condition"], r["setting"], r["metric"]): r for r in summary["drops"] if r["lang"] == "all"}
    recipes = list(summary["recipes"])
    panels = []
    for measure in PLOT_MEASURES:
        conditions = [c for c in summary["conditions"] if any((r, c, *measure) in rows for r in recipes)]
        if conditions:
            panels.append((measure, conditions))
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mixlingual.evaluation.report import save_figure

    fig, axes = plt.subplots(1, len(panels), figsize=(1.2 + 0.9 * max(len(c) for _, c in panels) * len(panels), 4.2),
                             squeeze=False)
    width = 0.8 / max(len(recipes), 1)
    for ax, (measure, conditions) in zip(axes[0], panels):
        for i, recipe in enumerate(recipes):
            points = [(x, rows[(recipe, c, *measure)]) for x, c in enumerate(conditions) if (recipe, c, *measure) in rows]
            if not points:
                continue
            xs = [x - 0.4 + width * (i + 0.5) for x, _ in points]
            drops = [r["drop"] for _, r in points]
            yerr = [[r["drop"] - (r["ci_low"] if r["ci_low"] is not None else r["drop"]) for _, r in points],
                    [(r["ci_high"] if r["ci_high"] is not None else r["drop"]) - r["drop"] for _, r in points]]
            ax.errorbar(xs, drops, yerr=yerr, fmt="o", capsize=3, label=recipe)
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_xticks(range(len(conditions)))
        ax.set_xticklabels(conditions, rotation=35, ha="right")
        ax.set_ylabel(f"drop of {measure_name(measure)} (perturbed - clean)")
        ax.set_title(measure_name(measure))
    axes[0][0].legend(title="recipe (95% CI)", fontsize=8)
    fig.tight_layout()
    save_figure(fig, Path(path))
    plt.close(fig)
    return Path(path)
