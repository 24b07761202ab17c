"""Select, then confirm: the sweep's best recipe is chosen on one split and reported on another.

A recipe chosen and reported on the same data is optimistic (the winner of a noisy race looks
better than it is). A sweep's evaluation benchmarks may therefore carry a role:

* `role: select`  - the best group is the one with the best `select_metric` (mean over seeds,
  averaged over the select benchmarks when there are several); nothing else is read to choose;
* `role: confirm` - that group's numbers and its paired tests are reported here, on data that
  played no part in choosing it;
* no role         - reported in the tables only, as before.

The two roles must not share data, and this is checked before anything runs, in two steps: on
the sweep file alone, a benchmark / path with both roles is refused unless both name disjoint
`articles` of it (xquad-r: disjoint articles are disjoint questions in every language); then
on the data, every select and confirm split on disk is loaded with its options and any shared
query group id or normalized candidate text is refused (`split_content`), which catches a copy
of the same files in another folder or a larger release holding the other split.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from mixlingual.errors import ConfigError
from mixlingual.experiments.sweep.cells import EvalSpec
from mixlingual.experiments.sweep.split_content import check_disjoint_content

LOWER_IS_BETTER_PREFIXES = ("rank_distance.",)


def default_mode(metric: str) -> str:
    """'min' for metrics where lower is better (rank distance), 'max' otherwise."""
    return "min" if metric.startswith(LOWER_IS_BETTER_PREFIXES) else "max"


def check_select_metric(metric: str, mode: str) -> None:
    """The selection metric is a metrics.json path, as `eval.metric` of a training config."""
    if not isinstance(metric, str) or not metric.startswith(("settings.", "rank_distance.", "per_language.")):
        raise ConfigError(f"select_metric: expected a metrics.json path such as settings.multi.map, got {metric!r}")
    if mode not in ("max", "min"):
        raise ConfigError(f"select_mode: expected max or min, got {mode!r}")


def _article_set(spec: EvalSpec) -> set[int] | None:
    """The articles an evaluation keeps (None: all of them)."""
    if "articles" not in spec.options:
        return None
    from mixlingual.data.xquad_r import parse_articles
    from mixlingual.errors import DataError

    try:
        return set(parse_articles(spec.options["articles"]))
    except DataError as err:
        raise ConfigError(f"eval {spec.label}: options.articles: {err}") from err


def _same_data(a: EvalSpec, b: EvalSpec) -> str | None:
    """Why two evaluations share data (None when they do not): same benchmark, one path inside the
    other, and article sets that are not disjoint."""
    if a.benchmark != b.benchmark:
        return None
    pa, pb = Path(a.path or ".").resolve(), Path(b.path or ".").resolve()
    if pa != pb and pa not in pb.parents and pb not in pa.parents:
        return None
    arts_a, arts_b = _article_set(a), _article_set(b)
    if arts_a is not None and arts_b is not None:
        shared = sorted(arts_a & arts_b)
        return f"both keep articles {shared}" if shared else None
    return "the same data" if arts_a is None and arts_b is None else "one keeps every article of the other"


def check_roles(evals: list[EvalSpec]) -> None:
    """Refuse a sweep whose select and confirm benchmarks share data (by path and options, then
    by content), or that confirms without selecting; the error names the sweep's `eval` entries.
    Article options are parsed here too, so a malformed one fails before any training."""
    for spec in evals:
        _article_set(spec)
    select = [e for e in evals if e.role == "select"]
    confirm = [e for e in evals if e.role == "confirm"]
    if confirm and not select:
        raise ConfigError(f"eval {confirm[0].label}: role confirm needs an eval entry with role select "
                          "(the split the recipe is chosen on)")
    for s in select:
        for c in confirm:
            reason = _same_data(s, c)
            if reason:
                raise ConfigError(f"eval: {s.label} (role select) and {c.label} (role confirm) use "
                                  f"{s.benchmark} data with both roles ({reason}); give them disjoint "
                                  "splits, e.g. options: {articles: 0-11} and {articles: 12-23}")
    if select and confirm:
        check_disjoint_content(select, confirm)


def _mean(summary: dict, group: str, label: str, metric: str) -> float | None:
    entry = summary.get(group, {}).get(label, {}).get(metric)
    if not entry or not entry.get("n") or math.isnan(entry["mean"]):
        return None
    return float(entry["mean"])


def _ranked(scores: dict[str, float], mode: str) -> list[str]:
    """Group names best first (ties keep the sweep's group order)."""
    sign = -1.0 if mode == "max" else 1.0
    return sorted(scores, key=lambda name: sign * scores[name])


def seed_scores(groups, labels: list[str], metric: str) -> dict[str, dict[str, dict[int, float]]]:
    """{group: {label: {seed: value}}} of `metric` (a metrics.json path) from every cell's evaluation."""
    from mixlingual.experiments.sweep.aggregate import flatten_numbers

    out: dict = {}
    for group in groups:
        for cell_dir, seed in zip(group.cell_dirs, group.seeds):
            for label in labels:
                path = Path(cell_dir) / "eval" / label / "metrics.json"
                if path.exists():
                    value = flatten_numbers(json.loads(path.read_text(encoding="utf-8"))).get(metric)
                    if value is not None and not math.isnan(value):
                        out.setdefault(group.name, {}).setdefault(label, {})[seed] = value
    return out


def _common_seed_scores(per_seed: dict, names: list[str], select: list[str]) -> tuple[dict[str, float], list]:
    """Each group's score on the seeds that every competing group has on every select split."""
    competing = [n for n in names if all(per_seed.get(n, {}).get(label) for label in select)]
    if not competing:
        return {}, []
    common = set.intersection(*(set(per_seed[n][label]) for n in competing for label in select))
    if not common:
        return {}, []
    scores = {n: sum(sum(per_seed[n][label][s] for s in common) / len(common) for label in select) / len(select)
              for n in competing}
    return scores, sorted(common)


def select_and_confirm(summary: dict, group_names: list[str], evals: list[EvalSpec], *,
                       metric: str, mode: str, per_seed: dict | None = None) -> dict | None:
    """The best group on the select benchmarks and where it stands on each confirm benchmark.

    None when no benchmark has a role. Only groups with the metric on every select benchmark
    compete; the score is the mean of their per-benchmark means over seeds. With `per_seed`
    ({group: {label: {seed: value}}}, `seed_scores`) the means are over the seeds that every
    competing group has: when side recipes ran fewer seeds, a recipe with more seeds is not
    compared by a mean over other runs (and the max of noisier means does not favour the groups
    with fewest seeds). Which seeds were compared is recorded.
    """
    select = [e.label for e in evals if e.role == "select"]
    confirm = [e.label for e in evals if e.role == "confirm"]
    if not select:
        return None
    scores, compared = _common_seed_scores(per_seed, group_names, select) if per_seed else ({}, [])
    if not scores:
        for name in group_names:
            values = [_mean(summary, name, label, metric) for label in select]
            if all(v is not None for v in values):
                scores[name] = sum(values) / len(values)
    ranking = _ranked(scores, mode)
    best = ranking[0] if ranking else None
    result = {"metric": metric, "mode": mode, "selected_on": select, "confirmed_on": confirm,
              "select_scores": scores, "seeds_compared": compared or "all", "best": best, "confirm": {}}
    for label in confirm:
        on_confirm = {n: v for n in group_names if (v := _mean(summary, n, label, metric)) is not None}
        order = _ranked(on_confirm, mode)
        result["confirm"][label] = {
            "evaluated": best in on_confirm, "value": on_confirm.get(best),
            "rank": order.index(best) + 1 if best in on_confirm else None, "n_groups": len(order),
            "best_on_this_split": order[0] if order else None}
    return result
