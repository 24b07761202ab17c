"""Tables and plots from metrics.json files (`mixlingual report DIR [DIR ...] [--out OUTDIR]`).

Reusable pieces: `summary_table` / `per_language_table` / `pair_table` (markdown),
`text_summary` (compact table for a terminal), `render_report(metrics, out_dir)` (report.md plus a
heatmap of per-pair mAP and a bar chart of rank distance per language) and
`compare(metrics_list, names, out_dir)` (several runs side by side: compare.md, grouped bars of
mono / cross / multi mAP and of rank distance per run).  Every file is written atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mixlingual.io import atomic_open, write_atomic

SETTINGS = ("mono", "cross", "multi")
SUMMARY_METRICS = ("map", "r@1", "r@10", "mrr@10", "ndcg@10", "recall@100")


def _fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def summary_table(metrics: dict) -> str:
    """Settings x metrics, macro-averaged."""
    rows = [[s] + [_fmt((metrics["settings"].get(s) or {}).get(m)) for m in SUMMARY_METRICS]
            for s in SETTINGS if s in metrics["settings"]]
    return markdown_table(["setting", *SUMMARY_METRICS], rows)


def per_language_table(metrics: dict) -> str:
    """Per query language: mAP in each setting, the rank distance and the language preference."""
    per = metrics["per_language"]
    rd = (metrics.get("rank_distance") or {}).get("per_language", {})
    lp = (metrics.get("language_preference") or {}).get("per_language", {})  # absent in older metrics.json
    langs = sorted({lang for table in per.values() for lang in table} | set(rd))
    rows = [[lang] + [_fmt(per.get(s, {}).get(lang, {}).get("map")) for s in SETTINGS]
            + [_fmt(rd.get(lang), 1), _fmt(lp.get(lang), 3)] for lang in langs]
    return markdown_table(["language", "mono mAP", "cross mAP", "multi mAP", "rank distance",
                           "language preference"], rows)


def pair_table(metrics: dict, metric: str = "map") -> str:
    """Query language (rows) x candidate language (columns); the diagonal is monolingual."""
    pairs = metrics["pairs"][metric]
    cols = sorted({y for row in pairs.values() for y in row})
    rows = [[x] + [_fmt(pairs[x].get(y)) for y in cols] for x in sorted(pairs)]
    return markdown_table([f"{metric}: query \\ candidate", *cols], rows)


def text_summary(metrics: dict) -> str:
    """A compact fixed-width table for a terminal."""
    lines = [f"{'setting':<8}" + "".join(f"{m:>11}" for m in SUMMARY_METRICS)]
    for s in SETTINGS:
        values = metrics["settings"].get(s)
        if s in metrics["settings"]:
            lines.append(f"{s:<8}" + "".join(f"{_fmt((values or {}).get(m)):>11}" for m in SUMMARY_METRICS))
    rd = metrics.get("rank_distance") or {}
    lines.append(f"rank distance (macro mean over languages): {_fmt(rd.get('mean'), 1)}")
    lp = metrics.get("language_preference") or {}
    lines.append(f"language preference (top-10 share in the query's language minus relevant share; "
                 f"0 = none): {_fmt(lp.get('mean'), 3)}")
    return "\n".join(lines)


def save_figure(fig, path: Path) -> None:
    """Write a PNG atomically (temp file + rename), creating its folder: never a half image."""
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120, bbox_inches="tight")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def plot_group_bars(groups_by: dict[str, dict[str, dict]], series: list[tuple[str, str]], path: Path, *,
                    ylabel: str, title: str = "", suptitle: str | None = None) -> None:
    """Side-by-side bar panels, one per grouping (e.g. by resource level, by seen status).

    `groups_by[grouping][group]` holds the values (fractions, plotted as %) and `n_languages`;
    `series` lists (key, legend label) pairs drawn as bars next to each other in every group.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(groups_by), figsize=(5 * len(groups_by), 3.5), squeeze=False)
    width = 0.8 / len(series)
    for ax, (by, groups) in zip(axes[0], groups_by.items()):
        names = list(groups)
        for j, (key, label) in enumerate(series):
            offset = (j - (len(series) - 1) / 2) * width
            ax.bar([i + offset for i in range(len(names))],
                   [100 * (groups[n].get(key) or 0) for n in names], width=width, label=label)
        ax.set_xticks(range(len(names)), [f"{n}\n({groups[n]['n_languages']})" for n in names])
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title} by {by}".strip())
        ax.legend(fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_pair_heatmap(metrics: dict, path: Path, metric: str = "map") -> None:
    """Heatmap of a per-pair metric (rows: query language, columns: candidate language)."""
    import numpy as np

    plt = _pyplot()
    pairs = metrics["pairs"][metric]
    rows, cols = sorted(pairs), sorted({y for row in pairs.values() for y in row})
    grid = np.array([[np.nan if pairs[x].get(y) is None else pairs[x][y] for y in cols] for x in rows])
    fig, ax = plt.subplots(figsize=(1 + 0.55 * len(cols), 0.8 + 0.5 * len(rows)))
    image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("candidate language")
    ax.set_ylabel("query language")
    for i in range(len(rows)):
        for j in range(len(cols)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if grid[i, j] < 0.6 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(f"{metric} per language pair: {metrics.get('model', '')}")
    save_figure(fig, path)
    plt.close(fig)


def plot_rank_distance(metrics: dict, path: Path) -> None:
    """Bar chart of the mean rank distance per query language (lower = less language bias)."""
    plt = _pyplot()
    per = (metrics.get("rank_distance") or {}).get("per_language") or {}
    langs = sorted(per)
    fig, ax = plt.subplots(figsize=(1 + 0.5 * len(langs), 3))
    ax.bar(langs, [per[x] or 0 for x in langs], color="tab:orange")
    ax.set_ylabel("mean rank distance")
    ax.set_title("language bias (multilingual setting)")
    save_figure(fig, path)
    plt.close(fig)


def render_report(metrics: dict, out_dir) -> Path:
    """Write report.md, pairs_map.png and rank_distance.png for one evaluation; return report.md."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot_pair_heatmap(metrics, out / "pairs_map.png")
    parts = [f"# Evaluation: {metrics.get('model', '?')} on {metrics.get('collection', '?')}", "",
             f"Languages: {', '.join(metrics.get('langs', []))}; candidates: {metrics.get('candidate', '?')}; "
             f"ties: {metrics.get('tie_rule', '?')}.", "", "## Settings (macro averages)", "",
             summary_table(metrics), "", "## Per language", "", per_language_table(metrics), "",
             "## Per language pair", "", pair_table(metrics, "map"), "", "![mAP per pair](pairs_map.png)", ""]
    if metrics.get("rank_distance"):
        plot_rank_distance(metrics, out / "rank_distance.png")
        parts += ["![rank distance per language](rank_distance.png)", ""]
    no_rel = metrics.get("counts", {}).get("no_relevant", {})
    parts += ["## Counts", "", f"{metrics.get('counts', {}).get('queries', '?')} queries, "
              f"{metrics.get('counts', {}).get('candidates', '?')} candidates; queries with no relevant "
              "candidate (counted, not scored): "
              + ", ".join(f"{s} {v['total']}" for s, v in no_rel.items()), ""]
    path = out / "report.md"
    write_atomic(path, "\n".join(parts))
    return path


def compare(metrics_list: list[dict], names: list[str], out_dir) -> Path:
    """Several evaluations side by side: compare.md + grouped bar charts; return compare.md."""
    import numpy as np

    if len(metrics_list) != len(names) or not names:
        raise ValueError("need one name per metrics dict, and at least one")
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    headers = ["run"] + [f"{s} {m}" for s in SETTINGS for m in ("map", "r@1", "ndcg@10")] \
        + ["rank distance", "language preference"]
    rows = [[name] + [_fmt((m["settings"].get(s) or {}).get(k)) for s in SETTINGS for k in ("map", "r@1", "ndcg@10")]
            + [_fmt((m.get("rank_distance") or {}).get("mean"), 1),
               _fmt((m.get("language_preference") or {}).get("mean"), 3)] for name, m in zip(names, metrics_list)]
    width = 0.8 / len(names)
    fig, (ax_map, ax_rd) = plt.subplots(1, 2, figsize=(10, 3.5))
    for i, (name, m) in enumerate(zip(names, metrics_list)):
        values = [(m["settings"].get(s) or {}).get("map") or 0 for s in SETTINGS]
        ax_map.bar(np.arange(len(SETTINGS)) + i * width, values, width, label=name)
        ax_rd.bar(i, (m.get("rank_distance") or {}).get("mean") or 0, 0.6, label=name)
    ax_map.set_xticks(np.arange(len(SETTINGS)) + width * (len(names) - 1) / 2, SETTINGS)
    ax_map.set_ylabel("mAP")
    ax_map.legend(fontsize=7)
    ax_rd.set_xticks(range(len(names)), names, rotation=20)
    ax_rd.set_ylabel("mean rank distance (lower = less bias)")
    save_figure(fig, out / "compare.png")
    plt.close(fig)
    text = "\n".join(["# Comparison", "", markdown_table(headers, rows), "", "![comparison](compare.png)", ""])
    path = out / "compare.md"
    write_atomic(path, text)
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dirs", nargs="+", help="evaluation folders (each with a metrics.json)")
    parser.add_argument("--out", help="where to write the report (default: the folder, or ./report for several)")
    parser.add_argument("--names", nargs="+", help="run names (default: the folder names)")


def run(args: argparse.Namespace) -> int:
    from mixlingual.errors import ConfigError
    from mixlingual.evaluation.evaluate import load_metrics

    loaded = [load_metrics(d) for d in args.dirs]
    names = args.names or [Path(d).resolve().name for d in args.dirs]
    if len(names) != len(loaded):
        raise ConfigError(f"--names: expected {len(loaded)} names, got {len(names)}")
    if len(loaded) == 1:
        path = render_report(loaded[0], args.out or args.dirs[0])
        print(text_summary(loaded[0]))
    else:
        path = compare(loaded, names, args.out or "report")
        print(Path(path).read_text(encoding="utf-8").split("\n\n")[1])
    print(f"wrote {path}")
    return 0
