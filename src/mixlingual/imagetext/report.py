"""report.md and a per-language plot for one image-text evaluation (metrics.json structure)."""

from __future__ import annotations

import os
from pathlib import Path


def _fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(metrics: dict) -> str:
    """Summary table, per-language table (t2i / i2t / best rank / CLIPScore) as Markdown."""
    s = metrics["settings"]
    lines = [f"# Image-text evaluation ({metrics['n_images']} images, "
             f"{len(metrics['languages'])} caption languages)", "",
             "| setting | R@1 | R@5 | R@10 | MRR@10 |", "|---|---|---|---|---|"]
    for name, label in (("t2i", "text -> image (macro over languages)"),
                        ("i2t", "image -> text (macro over languages)"),
                        ("i2t_multi", "image -> text, all-language caption pool")):
        row = s[name]
        lines.append(f"| {label} | {_fmt(row['r@1'])} | {_fmt(row['r@5'])} | {_fmt(row['r@10'])} | "
                     f"{_fmt(row['mrr@10'])} |")
    lines += ["", f"Language bias (rank distance, all-language pool): "
              f"**{_fmt(metrics['rank_distance']['mean'], 2)}**; mean CLIPScore "
              f"**{_fmt(metrics['clipscore']['mean'])}**", "",
              "| lang | t2i R@1 | t2i R@10 | i2t R@1 | i2t R@10 | best rank in pool | CLIPScore |",
              "|---|---|---|---|---|---|---|"]
    per = metrics["per_language"]
    for lang in metrics["languages"]:
        t2i, i2t = per["t2i"].get(lang, {}), per["i2t"].get(lang, {})
        lines.append(f"| {lang} | {_fmt(t2i.get('r@1'))} | {_fmt(t2i.get('r@10'))} | {_fmt(i2t.get('r@1'))} | "
                     f"{_fmt(i2t.get('r@10'))} | {_fmt(metrics['best_rank'].get(lang), 1)} | "
                     f"{_fmt(metrics['clipscore']['per_language'].get(lang))} |")
    return "\n".join(lines) + "\n"


def plot(metrics: dict, path: Path) -> None:
    """Grouped bars of t2i / i2t R@1 per caption language."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    langs = metrics["languages"]
    per = metrics["per_language"]
    x = np.arange(len(langs))
    fig, ax = plt.subplots(figsize=(max(4, 0.8 * len(langs) + 2), 3))
    for offset, setting in ((-0.2, "t2i"), (0.2, "i2t")):
        values = [per[setting].get(lang, {}).get("r@1") or 0.0 for lang in langs]
        ax.bar(x + offset, values, width=0.4, label=f"{setting} R@1")
    ax.set_xticks(x, langs)
    ax.set_ylim(0, 1)
    ax.set_ylabel("R@1")
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def write_report(metrics: dict, out_dir) -> None:
    out = Path(out_dir)
    plot(metrics, out / "per_language_r1.png")
    text = markdown(metrics) + "\n![per-language R@1](per_language_r1.png)\n"
    tmp = out / f".report.md.{os.getpid()}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out / "report.md")
