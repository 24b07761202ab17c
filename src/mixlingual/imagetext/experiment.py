"""Batch-composition experiment on the synthetic scenes: caption-X-only vs hybrid vs mixed.

    python -m mixlingual.imagetext.experiment --out runs/imagetext-batches [--seeds 0 1 2] [--steps 600]

Every regime trains the same model from the same config (`--config`, default
configs/imagetext-synthetic.yaml) for the same number of steps, changing only the sampler:

* ``caption-X-only`` - `sampling.kind=mono`: every batch is image-caption, all captions in one
  language X (X drawn uniformly per batch);
* ``hybrid`` - X-X image-caption batches with probability 0.5, otherwise X-Y caption-caption
  batches (captions of the same images in two languages; no images);
* ``mixed`` - image-caption batches whose caption languages are drawn independently per pair;
* ``hybrid+itc`` (opt-in via `--regimes`) - hybrid whose X-Y batches also train ITC (image vs
  caption_X), so it sees as many image batches as the other regimes plus the text alignment.

Each run's final model is evaluated on held-out scenes (another seed). Per regime: mean and
standard deviation over seeds. Between regimes: paired randomization tests
(`mixlingual.stats`) over per-query scores averaged across seeds - t2i R@1
per caption language (queries = captions) and the rank distance per image - with Holm's
correction over the comparisons of one regime pair. Runs that already have their evaluation
are reused, so an interrupted experiment continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
from itertools import combinations
from pathlib import Path

import numpy as np

REGIMES = {
    "caption-X-only": ["sampling.kind=mono"],
    "hybrid": ["sampling.kind=hybrid", "sampling.alpha=0.5"],
    "mixed": ["sampling.kind=mixture", "sampling.ratios={mixed: 1.0}"],
    # hybrid whose X-Y batches also train ITC (image vs caption_X): as many image batches as the others
    "hybrid+itc": ["sampling.kind=hybrid", "sampling.alpha=0.5", "imagetext.xy_image_weight=1.0"],
}
DEFAULT_REGIMES = ["caption-X-only", "hybrid", "mixed"]


def run_one(config_path: str, regime: str, seed: int, steps: int, out: Path, extra: list[str]) -> dict:
    """Train one (regime, seed) unless done; return its per-query scores {key: value}."""
    from mixlingual.training.config import load_config
    from mixlingual.imagetext.evaluate import evaluate_image_text
    from mixlingual.imagetext.formats import load_image_captions
    from mixlingual.imagetext.model import ImageTextModel
    from mixlingual.training.loop import train

    run_dir = out / f"{regime}-seed{seed}"
    per_query = run_dir / "eval" / "per_query.jsonl"
    if not per_query.is_file():
        overrides = REGIMES[regime] + [f"train.seed={seed}", f"train.max_steps={steps}",
                                       f"output.dir={run_dir / 'train'}", "eval.every_steps=0",
                                       "eval.at_start=false", "train.progress=false", *extra]
        config = load_config(config_path, overrides)
        train(config, resume=(run_dir / "train" / "checkpoints").is_dir())
        model = ImageTextModel.load(str(run_dir / "train" / "model"))
        items = load_image_captions(config.eval.data.name, config.eval.data.path, **config.eval.data.options)
        evaluate_image_text(model, items, out_dir=run_dir / "eval")
    scores = {}
    for line in per_query.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["setting"] == "t2i":
            scores[("t2i_r1", row["lang"], row["image"])] = row["r@1"]
        elif row["value"] is not None:
            scores[("rank_distance", "all", row["image"])] = row["value"]
    metrics = json.loads((run_dir / "eval" / "metrics.json").read_text(encoding="utf-8"))
    return {"scores": scores, "metrics": metrics}


def _summary(runs: list[dict]) -> dict:
    """Mean and std over seeds of the headline numbers."""
    def stat(values):
        values = np.asarray(values, dtype=float)
        return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}

    langs = runs[0]["metrics"]["languages"]
    out = {f"{s}_r@1": stat([r["metrics"]["settings"][s]["r@1"] for r in runs]) for s in ("t2i", "i2t", "i2t_multi")}
    out["rank_distance"] = stat([r["metrics"]["rank_distance"]["mean"] for r in runs])
    out["clipscore"] = stat([r["metrics"]["clipscore"]["mean"] for r in runs])
    out["t2i_r@1_per_language"] = {lang: stat([r["metrics"]["per_language"]["t2i"][lang]["r@1"] for r in runs])
                                   for lang in langs}
    return out


def _seed_mean(runs: list[dict]) -> dict:
    keys = set.intersection(*(set(r["scores"]) for r in runs))
    return {k: float(np.mean([r["scores"][k] for r in runs])) for k in keys}


def compare(runs_by_regime: dict[str, list[dict]], n_resamples: int = 10_000) -> list[dict]:
    """Paired randomization tests (B - A) per metric group, Holm-adjusted per regime pair."""
    from mixlingual.stats import holm_adjust, paired_randomization_test

    means = {name: _seed_mean(runs) for name, runs in runs_by_regime.items()}
    rows = []
    for a, b in combinations(runs_by_regime, 2):
        groups = sorted({k[:2] for k in means[a]} & {k[:2] for k in means[b]})
        tests = []
        for metric, lang in groups:
            keys = sorted(k for k in means[a] if k[:2] == (metric, lang) and k in means[b])
            result = paired_randomization_test([means[a][k] for k in keys], [means[b][k] for k in keys],
                                               n_resamples=n_resamples, seed=0)
            tests.append({"a": a, "b": b, "metric": metric, "lang": lang, **result.to_dict()})
        for test, p in zip(tests, holm_adjust([t["p_value"] for t in tests])):
            test["p_holm"] = p
        rows += tests
    return rows


def markdown(summary: dict, tests: list[dict], steps: int, seeds: list[int]) -> str:
    regimes = list(summary)
    langs = list(next(iter(summary.values()))["t2i_r@1_per_language"])
    fmt = lambda s, d=3: f"{s['mean']:.{d}f} ± {s['std']:.{d}f}"  # noqa: E731
    lines = [f"{steps} steps, seeds {seeds}; mean ± std over seeds.", "",
             "| regime | t2i R@1 | i2t R@1 | i2t R@1 (all-language pool) | rank distance | CLIPScore |",
             "|---|---|---|---|---|---|"]
    for name, s in summary.items():
        lines.append(f"| {name} | {fmt(s['t2i_r@1'])} | {fmt(s['i2t_r@1'])} | {fmt(s['i2t_multi_r@1'])} | "
                     f"{fmt(s['rank_distance'], 1)} | {fmt(s['clipscore'])} |")
    lines += ["", "t2i R@1 per caption language:", "", "| regime | " + " | ".join(langs) + " |",
              "|---|" + "---|" * len(langs)]
    for name in regimes:
        per = summary[name]["t2i_r@1_per_language"]
        lines.append(f"| {name} | " + " | ".join(f"{per[lang]['mean']:.3f}" for lang in langs) + " |")
    lines += ["", "Paired randomization tests (B - A, per-query scores averaged over seeds; Holm within each pair):", "",
              "| A | B | metric | lang | mean A | mean B | diff | p | p (Holm) |", "|---|---|---|---|---|---|---|---|---|"]
    for t in tests:
        lines.append(f"| {t['a']} | {t['b']} | {t['metric']} | {t['lang']} | {t['mean_a']:.3f} | {t['mean_b']:.3f} | "
                     f"{t['mean_diff']:+.3f} | {t['p_value']:.4f} | {t['p_holm']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mixlingual.imagetext.experiment", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/imagetext-synthetic.yaml")
    parser.add_argument("--out", default="runs/imagetext-batches")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--regimes", nargs="+", default=DEFAULT_REGIMES, choices=list(REGIMES))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    out = Path(args.out)
    runs = {r: [run_one(args.config, r, s, args.steps, out, args.set) for s in args.seeds] for r in args.regimes}
    summary = {r: _summary(v) for r, v in runs.items()}
    tests = compare(runs)
    from mixlingual.io import write_atomic, write_json_atomic

    write_json_atomic(out / "results.json", {"steps": args.steps, "seeds": args.seeds, "config": args.config,
                                             "overrides": args.set, "summary": summary, "tests": tests})
    text = markdown(summary, tests, args.steps, args.seeds)
    write_atomic(out / "results.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
