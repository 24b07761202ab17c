"""Plots of a sweep summary (matplotlib, Agg backend: no display needed).

* `plot_against_ratio` - mono / cross / multi mAP and rank distance against one numeric grid key
  (e.g. `sampling.alpha`, or `sampling.ratios[0]` for the first share of a ratio list), one line
  per recipe, error bars = std over seeds.
* `plot_pareto` - mono mAP (x) against multi mAP (y) for every group tried, with error bars in both
  directions; the non-dominated groups (no other group is at least as good on both and better on
  one) are joined as the Pareto front.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)

from mixlingual.experiments.sweep.aggregate import Group  # noqa: E402
from mixlingual.evaluation.report import save_figure  # noqa: E402

PANELS = (("settings.mono.map", "mono mAP"), ("settings.cross.map", "cross mAP"),
          ("settings.multi.map", "multi mAP"), ("rank_distance.mean", "rank distance (lower = less bias)"))
_INDEXED = re.compile(r"^(.*)\[([^\]]+)\]$")


def x_value(overrides: dict, x_key: str) -> float | None:
    """The numeric value of x_key in a group's overrides.

    'key[i]' picks item i of a list value, 'key[name]' entry name of a mapping value (e.g.
    `sampling.ratios[X-X]` for the X-X share of a 3-way mixture)."""
    match = _INDEXED.match(x_key)
    key, index = (match.group(1), match.group(2)) if match else (x_key, None)
    value = overrides.get(key)
    if index is not None:
        if isinstance(value, dict):
            value = value.get(index)
        elif isinstance(value, (list, tuple)) and index.isdigit() and int(index) < len(value):
            value = value[int(index)]
        else:
            value = None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _stat(summary: dict, group: str, label: str, metric: str) -> tuple[float, float] | None:
    entry = summary.get(group, {}).get(label, {}).get(metric)
    if not entry or entry["n"] == 0:
        return None
    return entry["mean"], entry["std"]


def ratio_lines(groups: list[Group], x_key: str) -> dict[str, list[tuple[float, str]]]:
    """{line label: [(x, group name), ...]}: one line per recipe when the grid varies x_key
    inside recipes; one line in all when each recipe sets x_key itself (one point each)."""
    lines: dict[str, list[tuple[float, str]]] = {}
    for group in groups:
        x = x_value(group.overrides, x_key)
        if x is not None:
            lines.setdefault(group.recipe or "sweep", []).append((x, group.name))
    if len(lines) > 1 and all(len(points) == 1 for points in lines.values()):
        lines = {x_key: [point for points in lines.values() for point in points]}
    return lines


def plot_against_ratio(summary: dict, groups: list[Group], label: str, x_key: str, path: Path) -> bool:
    """Write the 4-panel figure; False (nothing written) when no group has a numeric x_key."""
    lines = ratio_lines(groups, x_key)
    if not lines:
        return False
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.6))
    for ax, (metric, title) in zip(axes, PANELS):
        for recipe, points in sorted(lines.items()):
            pts = sorted((x, _stat(summary, name, label, metric)) for x, name in points)
            pts = [(x, s) for x, s in pts if s is not None]
            if pts:
                ax.errorbar([x for x, _ in pts], [s[0] for _, s in pts], yerr=[s[1] for _, s in pts],
                            marker="o", capsize=3, label=recipe)
        ax.set_title(title)
        ax.set_xlabel(x_key)
        ax.grid(alpha=0.3)
    if len(lines) > 1:
        axes[0].legend(fontsize=7)
    fig.suptitle(f"{label}: metrics against {x_key} (mean +- std over seeds)")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return True


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """Names of the non-dominated points (maximizing both coordinates), sorted by x."""
    front = []
    for name, (x, y) in points.items():
        dominated = any(ox >= x and oy >= y and (ox > x or oy > y) for other, (ox, oy) in points.items()
                        if other != name)
        if not dominated:
            front.append(name)
    return sorted(front, key=lambda n: points[n][0])


def plot_pareto(summary: dict, groups: list[Group], label: str, path: Path) -> list[str]:
    """Mono-vs-multi mAP scatter with error bars and the Pareto front; returns the front."""
    stats = {}
    for group in groups:
        mono = _stat(summary, group.name, label, "settings.mono.map")
        multi = _stat(summary, group.name, label, "settings.multi.map")
        if mono and multi:
            stats[group.name] = (mono, multi)
    if not stats:
        return []
    front = pareto_front({n: (m[0], u[0]) for n, (m, u) in stats.items()})
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for name, (mono, multi) in stats.items():
        ax.errorbar(mono[0], multi[0], xerr=mono[1], yerr=multi[1], marker="o", capsize=3,
                    color="tab:red" if name in front else "tab:gray")
        ax.annotate(name, (mono[0], multi[0]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.plot([stats[n][0][0] for n in front], [stats[n][1][0] for n in front], "--", color="tab:red",
            label="Pareto front")
    finish_mono_multi_plot(fig, ax, f"{label}: every recipe tried (mean +- std over seeds)", path)
    return front


def finish_mono_multi_plot(fig, ax, title: str, path: Path) -> None:
    """Label a mono (x) vs multi (y) mAP scatter, add grid and legend, save it to path and close it."""
    ax.set_xlabel("monolingual mAP")
    ax.set_ylabel("multilingual mAP")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
