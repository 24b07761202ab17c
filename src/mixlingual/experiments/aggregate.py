"""Aggregate finished sweep cells: mean +- std over seeds, and paired tests between recipes.

Reads only what the cells left on disk (`eval/<label>/metrics.json` and `per_query.jsonl`).

Significance protocol (documented in docs/experiments.md): for each benchmark and setting, every
group is compared with each baseline group (the first one, or `baseline`: one name or a list). A
query's score is first averaged over the seeds of a group (queries missing from a seed are
dropped and counted), then the two groups' per-query vectors are paired on query key and tested
with the paired randomization (sign-flip) test; Holm-adjusted p-values (over the groups compared
with one baseline on one benchmark, setting and metric) are reported next to the raw ones. The
per-query metric (AP by default) is tested in every setting, and the per-query rank distance in
the multilingual setting when the evaluation wrote it. Because averaging over seeds first tests
query sampling only, each row also carries `p_seeds`: a Welch t-test over the groups' per-seed
benchmark numbers (run-to-run noise; weak with 3 seeds, None below 2).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mixlingual.data.jsonl import read_json_records
from mixlingual.errors import DataError
from mixlingual.experiments.significance import holm_adjust, pair_scores, paired_randomization_test

SETTINGS = ("mono", "cross", "multi")
# Per-query field names tried, in order, for each aggregate metric name.
PER_QUERY_FIELDS = {"map": ("map", "ap", "average_precision"), "mrr@10": ("mrr@10", "rr@10", "rr"),
                    "r@1": ("r@1",), "r@10": ("r@10",), "ndcg@10": ("ndcg@10",),
                    "rank_distance": ("rank_distance",)}


def flatten_numbers(tree: dict, prefix: str = "", skip: tuple[str, ...] = ("pairs", "counts", "timing_s")) -> dict[str, float]:
    """Every numeric leaf of a nested dict as 'a.b.c' -> value (subtrees named in `skip` left out)."""
    out: dict[str, float] = {}
    for key, value in tree.items():
        if key in skip:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_numbers(value, name + ".", skip))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def mean_std(values: list[float]) -> dict:
    """Mean and sample standard deviation (ddof=1; 0 for one value), ignoring NaN."""
    finite = [v for v in values if v is not None and not math.isnan(v)]
    if not finite:
        return {"mean": float("nan"), "std": float("nan"), "n": 0, "values": values}
    arr = np.asarray(finite)
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return {"mean": float(arr.mean()), "std": std, "n": int(arr.size), "values": values}


def load_per_query(path: Path, metric: str = "map",
                   settings: tuple[str, ...] | None = None) -> dict[str, dict[tuple, float]]:
    """per_query.jsonl -> {setting: {query key: score}} (only `settings`, when given).

    A row names its setting in `setting`; its score is the first of PER_QUERY_FIELDS[metric]
    present; its key is every other string field (query id, query and candidate language, ...).
    Rows whose score is null (no relevant candidate: undefined) are left out of the test.
    """
    fields = PER_QUERY_FIELDS.get(metric, (metric,))
    out: dict[str, dict[tuple, float]] = defaultdict(dict)
    for line_no, row in read_json_records(path):
        if settings is not None and isinstance(row, dict) and row.get("setting") not in settings:
            continue
        score_field = next((f for f in fields if f in row), None) if isinstance(row, dict) else None
        if score_field is None or "setting" not in row:
            raise DataError(f"expected 'setting' and one of {list(fields)}", path=str(path), line=line_no)
        key = tuple(sorted((k, v) for k, v in row.items()
                           if k != "setting" and isinstance(v, str)))
        if row[score_field] is not None:
            out[row["setting"]][key] = float(row[score_field])
    return dict(out)


@dataclass
class Group:
    """All seeds of one recipe / grid point."""

    name: str
    recipe: str
    overrides: dict
    cell_dirs: list[Path] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)


def summarize_groups(groups: list[Group], labels: list[str]) -> dict:
    """{group: {label: {metric: mean_std}}} over the seeds whose evaluation exists."""
    out: dict = {}
    for group in groups:
        per_label: dict = {}
        for label in labels:
            values: dict[str, list[float]] = defaultdict(list)
            for cell_dir in group.cell_dirs:
                path = cell_dir / "eval" / label / "metrics.json"
                if not path.exists():
                    continue
                for name, value in flatten_numbers(json.loads(path.read_text(encoding="utf-8"))).items():
                    values[name].append(value)
            per_label[label] = {name: mean_std(v) for name, v in sorted(values.items())}
        out[group.name] = per_label
    return out


def seed_averaged_scores(group: Group, label: str, metric: str,
                         settings: tuple[str, ...] | None = None) -> tuple[dict[str, dict], int]:
    """{setting: {query key: score averaged over seeds}}, and how many keys were dropped
    because some seed lacked them."""
    per_seed = [load_per_query(d / "eval" / label / "per_query.jsonl", metric, settings)
                for d in group.cell_dirs if (d / "eval" / label / "per_query.jsonl").exists()]
    if not per_seed:
        return {}, 0
    averaged, dropped = {}, 0
    for setting in set().union(*per_seed):
        key_sets = [set(s.get(setting, {})) for s in per_seed]
        common = set.intersection(*key_sets)
        dropped += len(set.union(*key_sets) - common)
        averaged[setting] = {k: float(np.mean([s[setting][k] for s in per_seed])) for k in common}
    return averaged, dropped


def _has_field(group: Group, label: str, name: str) -> bool:
    """Whether the first per_query.jsonl of the group has a multilingual row with field `name`."""
    for d in group.cell_dirs:
        path = d / "eval" / label / "per_query.jsonl"
        if path.exists():
            return any(row.get("setting") == "multi" and name in row
                       for _, row in read_json_records(path) if isinstance(row, dict))
    return False


def seed_values(group: Group, label: str, setting: str, metric: str) -> list[float]:
    """The benchmark-level number of every seed of a group (metrics.json), for the run-level test."""
    key = "rank_distance.mean" if metric == "rank_distance" else f"settings.{setting}.{metric}"
    values = []
    for d in group.cell_dirs:
        path = d / "eval" / label / "metrics.json"
        if path.exists():
            value = flatten_numbers(json.loads(path.read_text(encoding="utf-8"))).get(key)
            if value is not None:
                values.append(value)
    return values


def welch_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided Welch t-test over seeds; None with fewer than 2 seeds a side or no variance."""
    from scipy.stats import ttest_ind

    if len(a) < 2 or len(b) < 2 or (np.var(a) == 0 and np.var(b) == 0):
        return None
    return float(ttest_ind(a, b, equal_var=False).pvalue)


def compare_groups(groups: list[Group], labels: list[str], *, baseline: str | list[str], metric: str = "map",
                   n_resamples: int = 10_000, seed: int = 0) -> list[dict]:
    """Paired randomization test of every group against each baseline, per label and setting:
    `metric` in every setting, plus the rank distance in the multilingual setting."""
    by_name = {g.name: g for g in groups}
    baselines = [baseline] if isinstance(baseline, str) else list(baseline)
    rows: list[dict] = []
    for label in labels:
        tests = [(metric, None)]
        if metric != "rank_distance" and groups and _has_field(groups[0], label, "rank_distance"):
            tests.append(("rank_distance", ("multi",)))
        for base in baselines:
            for test_metric, only in tests:
                base_scores, _ = seed_averaged_scores(by_name[base], label, test_metric, only)
                for group in groups:
                    if group.name == base:
                        continue
                    scores, dropped = seed_averaged_scores(group, label, test_metric, only)
                    for setting in SETTINGS:
                        if setting not in scores or setting not in base_scores:
                            continue
                        keys, a, b = pair_scores(base_scores[setting], scores[setting])
                        result = paired_randomization_test(a, b, n_resamples=n_resamples, seed=seed)
                        p_seeds = welch_p(seed_values(by_name[base], label, setting, test_metric),
                                          seed_values(group, label, setting, test_metric))
                        rows.append({"label": label, "setting": setting, "metric": test_metric, "baseline": base,
                                     "group": group.name, "n_queries": len(keys), "dropped_queries": dropped,
                                     "p_seeds": p_seeds,
                                     **{k: v for k, v in result.to_dict().items() if k not in ("ci_low", "ci_high")}})
    families = {(r["label"], r["setting"], r["metric"], r["baseline"]) for r in rows}
    for family in families:
        subset = [r for r in rows if (r["label"], r["setting"], r["metric"], r["baseline"]) == family]
        for row, adj in zip(subset, holm_adjust([r["p_value"] for r in subset])):
            row["p_holm"] = adj
    return rows
