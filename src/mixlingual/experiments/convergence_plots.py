"""Convergence curves: one panel per language group (low-resource, other), one line per strategy.

A line is the mean over the group's languages of the per-language dev metric at each evaluated
step (the steps every language of the group was evaluated at).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402

from mixlingual.evaluation.report import save_figure  # noqa: E402


def group_curve(curves: dict, setting: str, metric: str, langs: list[str]) -> dict[int, float]:
    """Mean over `langs` of curves[(setting, lang, metric)] at the steps all of them have."""
    present = [curves[(setting, lang, metric)] for lang in langs if (setting, lang, metric) in curves]
    if not present:
        return {}
    steps = sorted(set.intersection(*(set(c) for c in present)))
    return {s: float(np.mean([c[s] for c in present])) for s in steps}


def plot_group_curves(curves_by_strategy: dict[str, dict], setting: str, metric: str,
                      low_resource: list[str], path: Path) -> bool:
    """Write the figure; False (nothing written) when no strategy has this setting and metric."""
    langs = sorted({lang for curves in curves_by_strategy.values() for (s, lang, m) in curves
                    if s == setting and m == metric})
    if not langs:
        return False
    groups = [("low-resource", [x for x in langs if x in low_resource]),
              ("other languages", [x for x in langs if x not in low_resource])]
    groups = [(name, members) for name, members in groups if members]
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 4), squeeze=False)
    for ax, (name, members) in zip(axes[0], groups):
        for strategy, curves in sorted(curves_by_strategy.items()):
            curve = group_curve(curves, setting, metric, members)
            if curve:
                ax.plot(list(curve), list(curve.values()), marker=".", label=strategy)
        ax.set_title(f"{name}: {', '.join(members)}", fontsize=9)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(f"{setting} {metric} (mean over languages)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return True
