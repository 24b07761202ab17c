"""Small sweep-cell folders in the formats `mixlingual train` and `mixlingual sweep` write.

cells/<recipe>__seed=<seed>/cell.json            {"recipe", "group", "seed", ...}
cells/<recipe>__seed=<seed>/train/metrics.jsonl   train records + eval records with per_language
cells/<recipe>__seed=<seed>/train/config.yaml     resolved config (train.batch_size, grad_accum, seed)
cells/<recipe>__seed=<seed>/train/summary.json    rank, steps, world_size, ...
cells/<recipe>__seed=<seed>/train/batch_counts.json  kinds, X-X languages, query->passage pairs
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

# ar and hi only ever ask (queries), de and es also answer (passages); el and en are never drawn
PAIRS = {"de->de": 40, "es->es": 30, "ar->de": 12, "hi->es": 10, "de->es": 8}


def write_cell(root: Path, recipe: str, seed: int, curves: dict[str, dict[int, float]], *,
               batch: int = 16, accum: int = 1, world: int = 1, pairs: dict | None = None,
               finished: bool = True, map_scale: float = 1.0) -> Path:
    """curves: {lang: {step: mrr@10}}; mAP = mrr@10 x map_scale. Returns the cell folder."""
    cell = root / f"{recipe}__seed={seed}"
    train = cell / "train"
    train.mkdir(parents=True)
    steps = sorted({s for points in curves.values() for s in points})
    records = [{"type": "train", "step": 1, "loss": 3.0, "lr": 1e-5}]
    for step in steps:
        per_lang = {lang: {"map": points[step] * map_scale, "mrr@10": points[step]}
                    for lang, points in curves.items() if step in points}
        multi = {"map": sum(v["map"] for v in per_lang.values()) / len(per_lang)}
        records.append({"type": "eval", "step": step, "settings": {"multi": multi},
                        "per_language": {"multi": per_lang, "mono": per_lang}})
    (train / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (train / "config.yaml").write_text(yaml.safe_dump(
        {"train": {"batch_size": batch, "grad_accum": accum, "seed": seed, "max_steps": steps[-1]},
         "sampling": {"kind": "hybrid"}}))
    if finished:
        (train / "summary.json").write_text(json.dumps(
            {"rank": 0, "steps": steps[-1], "seconds": 1.0, "world_size": world, "metric": "map"}))
    (train / "batch_counts.json").write_text(json.dumps(
        {"kinds": {"X-X": 3, "X-Y": 3}, "languages": {"de": 2, "es": 1},
         "pairs": PAIRS if pairs is None else pairs}, indent=1))
    (cell / "cell.json").write_text(json.dumps(
        {"recipe": recipe, "group": recipe, "seed": seed, "overrides": {}, "common_sets": {}}))
    return cell


def ramp(final: float, reach: int, steps=(0, 25, 50, 75, 100), start: float = 0.5) -> dict[int, float]:
    """A curve from `start` x final at step 0 that is at `final` from step `reach` on (reach in steps)."""
    return {s: final if s >= reach else final * start for s in steps}
