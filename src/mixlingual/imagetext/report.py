"""report.md and plots for one image-text evaluation, built with `mixlingual.evaluation.report`'s helpers.

    report.md               summary table, per-language table, language bias, CLIPScore
    per_language_r1.png     t2i / i2t R@1 per caption language
    best_rank.png           mean best rank of an image's caption per language in the all-language
                            pool (language bias: which caption languages the model prefers)
"""

from __future__ import annotations

from pathlib import Path

from mixlingual.io import write_atomic
from mixlingual.evaluation.report import _fmt, _pyplot, save_figure, markdown_table

_SETTINGS = (("t2i", "text -> image (macro over languages)"),
             ("i2t", "image -> text (macro over languages)"),
             ("i2t_multi", "image -> text, all-language caption pool"))


def markdown(metrics: dict) -> str:
    """Summary table and per-language table (t2i / i2t / best rank / CLIPScore) as Markdown."""
    s, per = metrics["settings"], metrics["per_language"]
    summary = markdown_table(["setting", "R@1", "R@5", "R@10", "MRR@10"],
                             [[label] + [_fmt(s[name][m]) for m in ("r@1", "r@5", "r@10", "mrr@10")]
                              for name, label in _SETTINGS])
    rows = []
    for lang in metrics["languages"]:
        t2i, i2t = per["t2i"].get(lang, {}), per["i2t"].get(lang, {})
        rows.append([lang, _fmt(t2i.get("r@1")), _fmt(t2i.get("r@10")), _fmt(i2t.get("r@1")), _fmt(i2t.get("r@10")),
                     _fmt(metrics["best_rank"].get(lang), 1), _fmt(metrics["clipscore"]["per_language"].get(lang))])
    languages = markdown_table(["lang", "t2i R@1", "t2i R@10", "i2t R@1", "i2t R@10", "best rank in pool",
                                "CLIPScore"], rows)
    return (f"# Image-text evaluation ({metrics['n_images']} images, {len(metrics['languages'])} caption "
            f"languages)\n\n{summary}\n\nLanguage bias (rank distance, all-language pool): "
            f"**{_fmt(metrics['rank_distance']['mean'], 2)}**; mean CLIPScore "
            f"**{_fmt(metrics['clipscore']['mean'])}**\n\n{languages}\n")


def plot_recall(metrics: dict, path: Path) -> None:
    """Grouped bars of t2i / i2t R@1 per caption language."""
    import numpy as np

    plt = _pyplot()
    langs, per = metrics["languages"], metrics["per_language"]
    x = np.arange(len(langs))
    fig, ax = plt.subplots(figsize=(max(4, 0.8 * len(langs) + 2), 3))
    for offset, setting in ((-0.2, "t2i"), (0.2, "i2t")):
        ax.bar(x + offset, [per[setting].get(lang, {}).get("r@1") or 0.0 for lang in langs], width=0.4,
               label=f"{setting} R@1")
    ax.set_xticks(x, langs)
    ax.set_ylim(0, 1)
    ax.set_ylabel("R@1")
    ax.legend(fontsize=8)
    save_figure(fig, path)
    plt.close(fig)


def plot_best_rank(metrics: dict, path: Path) -> None:
    """Bars of the mean best rank per caption language in the all-language pool (lower = preferred)."""
    plt = _pyplot()
    best = metrics["best_rank"]
    langs = sorted(best)
    fig, ax = plt.subplots(figsize=(1 + 0.6 * len(langs), 3))
    ax.bar(langs, [best[x] or 0 for x in langs], color="tab:orange")
    ax.set_ylabel("mean best rank")
    ax.set_title(f"language bias: rank distance {_fmt(metrics['rank_distance']['mean'], 1)}")
    save_figure(fig, path)
    plt.close(fig)


def write_report(metrics: dict, out_dir) -> Path:
    """Write report.md and the two plots into `out_dir`; return report.md's path."""
    out = Path(out_dir)
    plot_recall(metrics, out / "per_language_r1.png")
    plot_best_rank(metrics, out / "best_rank.png")
    text = markdown(metrics) + "\n![per-language R@1](per_language_r1.png)\n![best rank](best_rank.png)\n"
    write_atomic(out / "report.md", text)
    return out / "report.md"
