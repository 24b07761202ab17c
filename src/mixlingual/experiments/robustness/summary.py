"""Robustness over recipes: the drop under each perturbation / attack, with intervals over seeds and questions.

Input: `LABEL=DIR` pairs, each DIR one model's robustness folder (`folders.py`); folders
sharing a LABEL are the seeds of one recipe. For each recipe, condition, measure (setting,
metric) and query language ('all' and each one):

* `drop` = perturbed - clean: mean over query rows of the seed-averaged per-row change (a loss is
  negative for mAP / MRR@10 / R@1, positive for the rank distance);
* `ci_low` / `ci_high`: its 95% interval from the two-level bootstrap of
  `mixlingual.stats.clustered_comparison` (seeds resampled, then parallel question groups), clean and
  perturbed of one model paired (`paired_seeds=True`); `p_value`: two-sided p of drop = 0 from
  the same bootstrap draws, so p < .05 only when the interval excludes 0 (docs/statistics.md);
* `per_seed`: each seed's own mean drop.

With a single question group (e.g. one attacked query of a language) there is no interval:
`ci_low`, `ci_high` and `p_value` are None.

And for each recipe against each baseline (two baselines once: the later minus the earlier), the *difference of drops* (recipe's - baseline's; for
the mAP-like metrics positive = the recipe loses less), again with `clustered_comparison`, on the
per-row drops; seeds paired when both recipes ran the same seed list (`mixlingual.stats.same_seeds`).

Refused (DataError naming the folders): seeds of one recipe run on different conditions (a
perturbation or attack missing or defined differently) or on different query rows, and recipes
compared on different query rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mixlingual.errors import ConfigError, DataError
from mixlingual.experiments.robustness.folders import MEASURES, ConditionScores, read_model_folder
from mixlingual.stats import clustered_comparison, same_seeds

ALL = "all"   # the language entry over every query language


def parse_labelled_folders(specs: list[str]) -> dict[str, list[Path]]:
    """['x-x=runs/a', 'x-x=runs/b', 'hybrid=runs/c'] -> {'x-x': [a, b], 'hybrid': [c]} (order kept)."""
    recipes: dict[str, list[Path]] = {}
    for spec in specs:
        label, eq, folder = spec.partition("=")
        if not eq or not label.strip() or not folder.strip():
            raise ConfigError(f"--summarize '{spec}' must look like LABEL=DIR")
        recipes.setdefault(label.strip(), []).append(Path(folder.strip()))
    return recipes


def seed_of(folder: Path) -> int | None:
    """The training seed in a folder name like 'hybrid__seed=3' (the sweep cells' naming); else None."""
    match = re.search(r"seed=(\d+)", Path(folder).name)
    return int(match.group(1)) if match else None


@dataclass
class RecipeRuns:
    """The seeds of one recipe: each folder's conditions, sorted by seed."""

    label: str
    folders: list[Path]
    seeds: list[int | None]
    conditions: list[dict[str, ConditionScores]]   # one {name: ConditionScores} per folder

    @classmethod
    def read(cls, label: str, folders: list[Path]) -> RecipeRuns:
        folders = sorted(folders, key=lambda f: (seed_of(f) is None, seed_of(f) or 0, str(f)))
        runs = cls(label, folders, [seed_of(f) for f in folders], [read_model_folder(f) for f in folders])
        runs.check_same_conditions()
        return runs

    def check_same_conditions(self) -> None:
        """Every seed must have run the same conditions, each defined the same way."""
        first = {name: c.spec for name, c in self.conditions[0].items()}
        for folder, conditions in zip(self.folders[1:], self.conditions[1:]):
            other = {name: c.spec for name, c in conditions.items()}
            if other != first:
                differing = sorted(set(first) ^ set(other)) or sorted(n for n in first if first[n] != other[n])
                raise DataError(f"recipe {self.label}: seeds were run on different perturbations / attacks: "
                                f"{self.folders[0]} has {sorted(first)}, {folder} has {sorted(other)} "
                                f"(differing: {', '.join(differing)}); rerun them alike")

    def condition_names(self) -> list[str]:
        return list(self.conditions[0])


@dataclass
class PairedRows:
    """One recipe, condition and measure: clean and perturbed values, (seeds, rows), on the rows
    every seed defines (a value is undefined when the query has nothing relevant)."""

    keys: list[tuple]
    clean: np.ndarray
    perturbed: np.ndarray
    groups: np.ndarray     # question group of each row
    langs: np.ndarray      # query language of each row
    all_keys: frozenset    # every row, defined or not: what must match between seeds and recipes

    @property
    def drops(self) -> np.ndarray:
        return self.perturbed - self.clean


def paired_rows(runs: RecipeRuns, name: str, measure: tuple[str, str]) -> PairedRows | None:
    """The (seeds, rows) matrices of one condition and measure; None when the folders lack the measure."""
    scores = [conditions[name] for conditions in runs.conditions]
    if any(measure not in s.values for s in scores):
        return None
    all_keys = frozenset(scores[0].values[measure])
    for s in scores[1:]:
        if frozenset(s.values[measure]) != all_keys:
            raise DataError(f"recipe {runs.label}, {name}: {s.source} and {scores[0].source} hold different "
                            f"query rows ({measure[0]} {measure[1]}); evaluate every seed on the same data")
    keys = sorted(k for k in all_keys if all(None not in s.values[measure][k] for s in scores))
    clean = np.array([[s.values[measure][k][0] for k in keys] for s in scores], dtype=np.float64)
    perturbed = np.array([[s.values[measure][k][1] for k in keys] for s in scores], dtype=np.float64)
    info = scores[0].queries
    return PairedRows(keys, clean.reshape(len(scores), len(keys)), perturbed.reshape(len(scores), len(keys)),
                      np.array([info[k[0]][0] for k in keys], dtype=object),
                      np.array([info[k[0]][1] for k in keys], dtype=object), all_keys)


def measures_of(condition: ConditionScores) -> list[tuple[str, str]]:
    """The measures a condition has: MEASURES' order first, then others (an attack in the mono pool)."""
    return [m for m in MEASURES if m in condition.values] + [m for m in condition.values if m not in MEASURES]


def _masks(rows: PairedRows) -> dict[str, np.ndarray]:
    """{'all': every row, lang: that query language's rows}."""
    return {ALL: np.ones(len(rows.keys), bool), **{lang: rows.langs == lang for lang in sorted(set(rows.langs))}}


def compare(a: np.ndarray, b: np.ndarray, groups: np.ndarray, *, paired_seeds: bool, n_resamples: int,
            seed: int) -> dict:
    """`clustered_comparison` of b - a as a dict; with a single question group there is nothing to
    resample: the effect alone, interval and p None."""
    if len(set(groups)) < 2:
        return {"mean_diff": float(b.mean() - a.mean()), "ci_low": None, "ci_high": None, "mean_a": float(a.mean()),
                "mean_b": float(b.mean()), "p_value": None, "n": a.shape[1], "n_clusters": len(set(groups)),
                "seeds_paired": paired_seeds}
    return clustered_comparison(a, b, groups, paired_seeds=paired_seeds, n_resamples=n_resamples, seed=seed).to_dict()


def drop_stats(rows: PairedRows, mask: np.ndarray, *, n_resamples: int, seed: int) -> dict:
    """Drop (perturbed - clean) on the masked rows, its two-level bootstrap interval and the per-seed drops."""
    result = compare(rows.clean[:, mask], rows.perturbed[:, mask], rows.groups[mask],
                     paired_seeds=True, n_resamples=n_resamples, seed=seed)
    return {"drop": result["mean_diff"], "ci_low": result["ci_low"], "ci_high": result["ci_high"],
            "clean": result["mean_a"], "perturbed": result["mean_b"], "p_value": result["p_value"],
            "per_seed": [float(v) for v in rows.drops[:, mask].mean(axis=1)],
            "n_rows": result["n"], "n_groups": result["n_clusters"], "n_seeds": rows.clean.shape[0]}


def difference_stats(base: PairedRows, other: PairedRows, lang: str, *, paired_seeds: bool,
                     n_resamples: int, seed: int) -> dict:
    """Difference of drops, other's - base's, on the rows both define (of query language `lang`)."""
    common = sorted(set(base.keys) & set(other.keys))
    pos_a, pos_b = {k: i for i, k in enumerate(base.keys)}, {k: i for i, k in enumerate(other.keys)}
    cols_a = np.array([pos_a[k] for k in common], dtype=int)
    cols_b = np.array([pos_b[k] for k in common], dtype=int)
    if lang != ALL:
        keep = base.langs[cols_a] == lang
        cols_a, cols_b = cols_a[keep], cols_b[keep]
    result = compare(base.drops[:, cols_a], other.drops[:, cols_b], base.groups[cols_a],
                     paired_seeds=paired_seeds, n_resamples=n_resamples, seed=seed)
    return {"difference": result["mean_diff"], "ci_low": result["ci_low"], "ci_high": result["ci_high"],
            "drop_baseline": result["mean_a"], "drop_recipe": result["mean_b"], "p_value": result["p_value"],
            "seeds_paired": result["seeds_paired"], "n_rows": result["n"], "n_groups": result["n_clusters"]}


def _check_comparable(base: RecipeRuns, other: RecipeRuns, name: str, measure, a: PairedRows, b: PairedRows) -> None:
    if a.all_keys != b.all_keys:
        raise DataError(f"{name} ({measure[0]} {measure[1]}): recipes {base.label} ({base.folders[0]}) and "
                        f"{other.label} ({other.folders[0]}) were evaluated on different query rows; "
                        f"compare recipes run on the same data")
    spec_a, spec_b = base.conditions[0][name].spec, other.conditions[0][name].spec
    if spec_a != spec_b:
        raise DataError(f"{name}: recipes {base.label} and {other.label} ran it differently ({spec_a} vs {spec_b})")


def _conditions(recipes: list[RecipeRuns]) -> dict[str, dict]:
    """{name: {'kind', 'spec'}}: perturbations (by name, rate), then attacks, over all recipes."""
    found = {name: c for runs in recipes for name, c in runs.conditions[0].items()}
    order = sorted(found, key=lambda n: (found[n].kind != "perturbation", str(found[n].spec.get("name")),
                                         found[n].spec.get("rate") or 0, n))
    return {name: {"kind": found[name].kind, "spec": found[name].spec} for name in order}


Matrices = dict[tuple[str, str, tuple[str, str]], PairedRows]   # (recipe, condition, measure) -> rows


def all_drops(recipes: list[RecipeRuns], *, n_resamples: int, seed: int) -> tuple[list[dict], Matrices]:
    """Every recipe's drop per condition, measure and language, and the paired rows they came from."""
    drops, matrices = [], {}
    for runs in recipes:
        for name in runs.condition_names():
            for measure in measures_of(runs.conditions[0][name]):
                rows = paired_rows(runs, name, measure)
                if rows is None or not rows.keys:
                    continue
                matrices[(runs.label, name, measure)] = rows
                for lang, mask in _masks(rows).items():
                    drops.append({"recipe": runs.label, "condition": name, "setting": measure[0],
                                  "metric": measure[1], "lang": lang,
                                  **drop_stats(rows, mask, n_resamples=n_resamples, seed=seed)})
    return drops, matrices


def all_differences(recipes: list[RecipeRuns], baselines: list[str], matrices: Matrices, *,
                    n_resamples: int, seed: int) -> list[dict]:
    """Each recipe's drop minus each baseline's, per condition, measure and language (two baselines
    once: the later minus the earlier)."""
    by_label = {r.label: r for r in recipes}
    differences = []
    for base_label in baselines:
        base = by_label[base_label]
        for runs in recipes:
            if runs.label in baselines and baselines.index(runs.label) <= baselines.index(base_label):
                continue    # itself, or two baselines already compared the other way round
            paired = same_seeds(base.seeds, runs.seeds)
            for (label, name, measure), b in matrices.items():
                a = matrices.get((base_label, name, measure))
                if label != runs.label or a is None:
                    continue
                _check_comparable(base, runs, name, measure, a, b)
                for lang in _masks(a):
                    differences.append({"recipe": runs.label, "baseline": base_label, "condition": name,
                                        "setting": measure[0], "metric": measure[1], "lang": lang,
                                        **difference_stats(a, b, lang, paired_seeds=paired,
                                                           n_resamples=n_resamples, seed=seed)})
    return differences


def summarize_robustness(recipe_folders: dict[str, list[Path]], *, baselines: list[str] | None = None,
                         n_resamples: int = 10_000, seed: int = 0) -> dict:
    """The summary.json structure: recipes, conditions, `drops` and `differences` (flat lists of rows
    with recipe, condition, setting, metric and lang; see the module docstring)."""
    if not recipe_folders:
        raise ConfigError("--summarize: give at least one LABEL=DIR")
    baselines = list(baselines or [next(iter(recipe_folders))])
    unknown = [b for b in baselines if b not in recipe_folders]
    if unknown:
        raise ConfigError(f"--baseline {', '.join(unknown)}: no such recipe label (have: {', '.join(recipe_folders)})")
    if n_resamples < 1:
        raise ConfigError(f"--n-resamples must be at least 1, got {n_resamples}")
    recipes = [RecipeRuns.read(label, folders) for label, folders in recipe_folders.items()]
    drops, matrices = all_drops(recipes, n_resamples=n_resamples, seed=seed)
    differences = all_differences(recipes, baselines, matrices, n_resamples=n_resamples, seed=seed)
    return {"recipes": {r.label: {"folders": [str(f) for f in r.folders], "seeds": r.seeds} for r in recipes},
            "baselines": baselines, "conditions": _conditions(recipes),
            "measures": [list(m) for m in dict.fromkeys(k[2] for k in matrices)], "confidence": 0.95,
            "n_resamples": n_resamples, "bootstrap_seed": seed, "drops": drops, "differences": differences}
