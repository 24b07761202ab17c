"""robustness.png of a robustness summary (matplotlib, Agg backend: no display needed).

One panel per headline measure (multi mAP; multi MRR@10, which the attack also has): x = the
conditions, one point per recipe (side by side) at its drop (perturbed - clean), whiskers = the
95% interval over seeds and question groups.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)

from mixlingual.evaluation.report import save_figure  # noqa: E402
from mixlingual.experiments.robustness_summary_report import measure_name  # noqa: E402

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
