"""Convergence curves: one panel per language group, one line per recipe with a band over seeds.

For each seed, the group curve is the mean over the group's languages of the per-language dev
metric at the steps all of them were evaluated at. The line is the mean of those seed curves at
the steps every seed has; the shaded band runs from the lowest to the highest seed (min-max: with
3-5 seeds it shows every seed rather than an interval drawn from too few values). One seed: a
line without a band.
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
