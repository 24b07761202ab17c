"""Aggregate finished sweep cells: mean +- std over seeds, and paired tests between recipes.

Reads only what the cells left on disk (`eval/<label>/metrics.json` and `per_query.jsonl`).

Significance protocol (docs/statistics.md; docs/experiments.md): for each benchmark and setting,
every group is compared with each baseline group (the first one, or `baseline`: one name or a
list). Per-query rows are paired on query key; a row missing from any seed of either group is
left out and counted in `dropped_queries`. The unit of analysis is the parallel question group
(`question_group`: all language versions of a question, and in cross all its (query, target
language) rows). Each comparison reports the effect (mean row difference of the seed-averaged
scores) with a 95% interval and a two-sided p-value from one two-level bootstrap (seeds, then
question groups; `mixlingual.stats.clustered_comparison`), so p < .05 only when the interval excludes
0; Holm-adjusted p-values (over the groups compared with one baseline on one benchmark, setting
and metric) are reported next to the raw ones. Seeds pair only when both groups ran the same seed
list. The per-query metric (AP by default) is tested in every setting, and the per-query rank
distance in the multilingual setting when the evaluation wrote it.
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
from mixlingual.stats import clustered_comparison, holm_adjust

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


def question_group(row: dict) -> str:
    """The parallel question group of a per-query row: the unit the clustered test resamples.

    `mixlingual evaluate` writes it as `group` (the query's parallel group; every (query, target
    language) row of one question in cross shares it). Files written before that carry none:
    then the query id without its '<qlang>:' prefix (how the xquad-r, mlqa-r, sib200 and ntrex
    loaders name queries), else the row's own key - the row is its own group.
    """
    if isinstance(row.get("group"), str):
        return row["group"]
    query = row.get("query", row.get("query_id"))
    if not isinstance(query, str):
        return repr(_row_key(row))
    prefix = f"{row.get('qlang', row.get('lang'))}:"
    return query[len(prefix):] if query.startswith(prefix) else query


def _row_key(row: dict) -> tuple:
    """What pairs a row across systems: every string field but the setting and the group (so that
    files written with and without `group` still pair)."""
    return tuple(sorted((k, v) for k, v in row.items() if k not in ("setting", "group") and isinstance(v, str)))


def load_per_query(path: Path, metric: str = "map",
                   settings: tuple[str, ...] | None = None) -> dict[str, dict[tuple, tuple[float, str]]]:
    """per_query.jsonl -> {setting: {query key: (score, question group)}} (only `settings`, when given).

    A row names its setting in `setting`; its score is the first of PER_QUERY_FIELDS[metric]
    present; its key is every other string field (query id, query and candidate language, ...)
    except `group`; its question group is `question_group(row)`.
    Rows whose score is null (no relevant candidate: undefined) are left out of the test.
    """
    fields = PER_QUERY_FIELDS.get(metric, (metric,))
    out: dict[str, dict[tuple, tuple[float, str]]] = defaultdict(dict)
    for line_no, row in read_json_records(path):
        if settings is not None and isinstance(row, dict) and row.get("setting") not in settings:
            continue
        score_field = next((f for f in fields if f in row), None) if isinstance(row, dict) else None
        if score_field is None or "setting" not in row:
            raise DataError(f"expected 'setting' and one of {list(fields)}", path=str(path), line=line_no)
        if row[score_field] is not None:
            out[row["setting"]][_row_key(row)] = (float(row[score_field]), question_group(row))
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


@dataclass
class SeedRuns:
    """Per-query scores of every seed of a group in one setting, on the keys all seeds have."""

    keys: list[tuple]            # sorted
    scores: np.ndarray           # (seeds, keys)
    clusters: list[str]          # question group of each key
    seeds: list                  # the seed of each row of `scores` (None where unknown)
    seen: frozenset              # every key any seed had: what a comparison can lose


def seed_runs(group: Group, label: str, metric: str, settings: tuple[str, ...] | None = None) -> dict[str, SeedRuns]:
    """{setting: SeedRuns} of the group's seeds whose per_query.jsonl exists."""
    found = [(seed, d / "eval" / label / "per_query.jsonl")
             for d, seed in zip(group.cell_dirs, group.seeds or [None] * len(group.cell_dirs))]
    per_seed = [(seed, load_per_query(path, metric, settings)) for seed, path in found if path.exists()]
    runs = {}
    for setting in set().union(*(rows for _, rows in per_seed)):
        key_sets = [set(rows.get(setting, {})) for _, rows in per_seed]
        common = sorted(set.intersection(*key_sets), key=str)
        first = per_seed[0][1][setting]
        runs[setting] = SeedRuns(common, np.array([[rows[setting][k][0] for k in common] for _, rows in per_seed]),
                                 [first[k][1] for k in common], [seed for seed, _ in per_seed],
                                 frozenset().union(*key_sets))
    return runs


def compare_runs(base: SeedRuns, other: SeedRuns, *, n_resamples: int, seed: int) -> dict:
    """The clustered comparison of `other` minus `base` on the keys every seed of both has.

    `dropped_queries` counts every key seen in some seed of either side but not compared: lost
    within the baseline's seeds, within the other group's seeds, or present on one side only."""
    common = sorted(set(base.keys) & set(other.keys), key=str)
    if not common:
        raise DataError("the two groups share no query key; cannot pair their scores")
    pos_a, pos_b = {k: i for i, k in enumerate(base.keys)}, {k: i for i, k in enumerate(other.keys)}
    a = base.scores[:, [pos_a[k] for k in common]]
    b = other.scores[:, [pos_b[k] for k in common]]
    clusters = [base.clusters[pos_a[k]] for k in common]
    result = clustered_comparison(a, b, clusters, seeds_a=base.seeds, seeds_b=other.seeds,
                                  n_resamples=n_resamples, seed=seed)
    return {"n_queries": len(common), "dropped_queries": len(base.seen | other.seen) - len(common),
            **result.to_dict()}


def _has_field(group: Group, label: str, name: str) -> bool:
    """Whether the first per_query.jsonl of the group has a multilingual row with field `name`."""
    for d in group.cell_dirs:
        path = d / "eval" / label / "per_query.jsonl"
        if path.exists():
            return any(row.get("setting") == "multi" and name in row
                       for _, row in read_json_records(path) if isinstance(row, dict))
    return False


def compare_groups(groups: list[Group], labels: list[str], *, baseline: str | list[str],
                   metric: str | list[str] = "map", n_resamples: int = 10_000, seed: int = 0) -> list[dict]:
    """Clustered comparison (`compare_runs`) of every group against each baseline, per label and
    setting: each of `metric` (one name or a list, e.g. map, r@1, mrr@10) in every setting, plus
    the rank distance in the multilingual setting."""
    by_name = {g.name: g for g in groups}
    baselines = [baseline] if isinstance(baseline, str) else list(baseline)
    metrics = [metric] if isinstance(metric, str) else list(metric)
    rows: list[dict] = []
    loaded: dict[tuple, dict[str, SeedRuns]] = {}

    def runs_of(group: Group, label: str, test_metric: str, only) -> dict[str, SeedRuns]:
        # every group is compared with several baselines and every baseline with every group: read
        # each group's per_query.jsonl files once per metric, not once per comparison
        key = (group.name, label, test_metric, only)
        if key not in loaded:
            loaded[key] = seed_runs(group, label, test_metric, only)
        return loaded[key]

    for label in labels:
        tests = [(m, None) for m in metrics if m != "rank_distance"]
        if groups and _has_field(groups[0], label, "rank_distance"):
            tests.append(("rank_distance", ("multi",)))
        for base in baselines:
            for test_metric, only in tests:
                base_runs = runs_of(by_name[base], label, test_metric, only)
                for group in groups:
                    if group.name == base:
                        continue
                    runs = runs_of(group, label, test_metric, only)
                    for setting in SETTINGS:
                        if setting not in runs or setting not in base_runs:
                            continue
                        result = compare_runs(base_runs[setting], runs[setting], n_resamples=n_resamples, seed=seed)
                        rows.append({"label": label, "setting": setting, "metric": test_metric, "baseline": base,
                                     "group": group.name, **result})
    families = {(r["label"], r["setting"], r["metric"], r["baseline"]) for r in rows}
    for family in families:
        subset = [r for r in rows if (r["label"], r["setting"], r["metric"], r["baseline"]) == family]
        for row, adj in zip(subset, holm_adjust([r["p_value"] for r in subset])):
            row["p_holm"] = adj
    return rows
